//! The web dashboard on the broker's HTTP port: a page (`/`, with its
//! script and style, embedded in the binary) and the read-only JSON API it
//! reads (`/api/...`), behind the same tokens as the gRPC API: an issuer
//! sees its own workloads, account and the agents that worked for it; an
//! admin sees everything.
//!
//! # Layout
//! - `api`: the JSON handlers and who may read what.
//! - `assets/`: `index.html`, `app.js`, `style.css`; no build step, no
//!   third-party script.

mod api;

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::core::Broker;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// The dashboard's routes, to merge into the HTTP router.
pub fn routes() -> Router<Arc<Broker>> {
    Router::new()
        .route("/", get(|| asset("text/html; charset=utf-8", INDEX_HTML)))
        .route(
            "/app.js",
            get(|| asset("text/javascript; charset=utf-8", APP_JS)),
        )
        .route(
            "/style.css",
            get(|| asset("text/css; charset=utf-8", STYLE_CSS)),
        )
        .merge(api::routes())
}

async fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // The page holds no data: that comes from the API, per token.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
            ),
        ],
        body,
    )
}
