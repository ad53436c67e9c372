//! The simulated agents' gRPC connections: one HTTP/2 connection each,
//! driven by hyper directly (tonic's `Channel` is built on the same hyper
//! client), without the `Channel`'s request buffer — a task per connection
//! that every call passes through — and its reconnection, which a load
//! generator does not need. Both cost CPU on the machine the broker is
//! measured on; the broker sees the same HTTP/2 and gRPC either way.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use anyhow::{Context as _, Result};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

/// One HTTP/2 connection to the broker, for a tonic client.
#[derive(Clone, Debug)]
pub struct Connection {
    send: http2::SendRequest<tonic::body::Body>,
    /// `http://host:port`, which each request's path is put after.
    origin: String,
}

impl Connection {
    /// Connects to `url` (`http://host:port`, no TLS: the bench's broker
    /// runs `--insecure`), with Nagle's algorithm off as tonic's own
    /// connections have it.
    pub async fn open(url: &str) -> Result<Connection> {
        let origin = url.trim_end_matches('/').to_owned();
        let address = origin
            .strip_prefix("http://")
            .with_context(|| format!("{url}: not an http:// URL"))?;
        let stream = TcpStream::connect(address)
            .await
            .with_context(|| format!("connect to {address}"))?;
        stream.set_nodelay(true).context("TCP_NODELAY")?;
        let (send, connection) = http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(stream))
            .await
            .context("HTTP/2 handshake")?;
        tokio::spawn(async move {
            // Ends with the bench's last call on it, or the broker's exit.
            let _ = connection.await;
        });
        Ok(Connection { send, origin })
    }
}

type Answer =
    Pin<Box<dyn Future<Output = Result<http::Response<tonic::body::Body>, hyper::Error>> + Send>>;

impl tower_service::Service<http::Request<tonic::body::Body>> for Connection {
    type Response = http::Response<tonic::body::Body>;
    type Error = hyper::Error;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.send.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        // tonic gives the path only; HTTP/2 needs the scheme and authority.
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |path| path.as_str());
        if let Ok(uri) = format!("{}{path}", self.origin).parse() {
            *request.uri_mut() = uri;
        }
        let answer = self.send.send_request(request);
        Box::pin(async move { Ok(answer.await?.map(tonic::body::Body::new)) })
    }
}
