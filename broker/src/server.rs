//! Serving a broker on a listener the caller brings (tests bind
//! `127.0.0.1:0`), until the shutdown future resolves; with the lease-expiry
//! loop running beside it.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Server, ServerTlsConfig};
use wasmgrid_proto::MAX_MESSAGE_BYTES;
use wasmgrid_proto::v1::admin_service_server::AdminServiceServer;
use wasmgrid_proto::v1::agent_service_server::AgentServiceServer;
use wasmgrid_proto::v1::issuer_service_server::IssuerServiceServer;

use crate::core::Broker;
use crate::error::BrokerResult;
use crate::service::{AdminApi, AgentApi, IssuerApi};

/// Serves `broker` on `listener` until `shutdown` resolves; over TLS with
/// `tls`, in plain text without.
pub async fn serve(
    listener: TcpListener,
    broker: Arc<Broker>,
    tls: Option<ServerTlsConfig>,
    shutdown: impl Future<Output = ()> + Send,
) -> BrokerResult<()> {
    let expiry = tokio::spawn(expire_leases(Arc::clone(&broker)));
    let agent = AgentServiceServer::new(AgentApi::new(Arc::clone(&broker)))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let issuer = IssuerServiceServer::new(IssuerApi::new(Arc::clone(&broker)))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let admin = AdminServiceServer::new(AdminApi::new(Arc::clone(&broker)))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let stop_streams = Arc::clone(&broker);
    let (stopping, stopped) = tokio::sync::oneshot::channel();
    let shutdown = async move {
        shutdown.await;
        stop_streams.begin_shutdown();
        let _ = stopping.send(());
    };
    let mut builder = Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    let server = builder
        .add_service(agent)
        .add_service(issuer)
        .add_service(admin)
        .serve_with_incoming_shutdown(without_nagle(listener), shutdown);
    let grace = broker.config().shutdown_grace;
    // Graceful shutdown waits for every connection to finish; a client that
    // never does must not keep the broker up. Everything acknowledged is
    // already committed, so cutting connections after the grace loses nothing.
    let served = tokio::select! {
        served = server => served,
        () = async {
            let _ = stopped.await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(?grace, "connections still open after the shutdown grace; closing them");
            Ok(())
        }
    };
    expiry.abort();
    served?;
    Ok(())
}

/// The listener's connections with Nagle's algorithm off. tonic ignores its
/// own `tcp_nodelay` for a listener the caller brings; without it, an
/// answer whose trailers follow its body in a second write waits for the
/// client's delayed ACK, ~40 ms.
fn without_nagle(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    TcpListenerStream::new(listener).map(|accepted| {
        let stream = accepted?;
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        Ok(stream)
    })
}

async fn expire_leases(broker: Arc<Broker>) {
    let mut tick = tokio::time::interval(broker.config().expiry_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(error) = broker.expire_due().await {
            tracing::error!(%error, "expiring leases failed; retrying");
        }
    }
}
