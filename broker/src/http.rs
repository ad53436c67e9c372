//! The broker's HTTP port (`--http`), beside gRPC: `/metrics` for
//! Prometheus (counts and totals only, no ids, names or results, no token)
//! and the web dashboard (`/`, and its API under `/api/`, behind issuer and
//! admin tokens). Plain HTTP: bind it to loopback, or put a TLS proxy in
//! front of it before tokens cross a network.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::core::Broker;
use crate::dashboard;
use crate::error::{BrokerError, BrokerResult};
use crate::metrics;

/// The file in the data dir where a broker serving HTTP writes its address.
pub const HTTP_ADDRESS_FILE: &str = "broker.http.addr";

/// Serves the HTTP routes on `listener` until `shutdown` resolves.
pub async fn serve_http(
    listener: TcpListener,
    broker: Arc<Broker>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> BrokerResult<()> {
    let app = Router::new()
        .route("/metrics", get(scrape))
        .merge(dashboard::routes())
        .merge(crate::downloads::routes())
        .with_state(broker);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| BrokerError::Io {
            context: "serving HTTP".into(),
            source,
        })
}

async fn scrape(State(broker): State<Arc<Broker>>) -> Response {
    match metrics::render(&broker).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(error) => {
            tracing::warn!(%error, "cannot read the metrics");
            (StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response()
        }
    }
}
