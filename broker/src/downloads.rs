//! The agent builds on the HTTP port, for volunteers who have no agent yet:
//! `GET /downloads` lists them (JSON), `GET /downloads/{file}` serves one,
//! `GET /install.sh` is a script that fetches and checks the right one. No
//! token: the builds are public. Plain HTTP, so the sha256s guard against a
//! damaged download, not against a network attacker (docs/distribution.md);
//! agents update over gRPC and TLS (`FetchAgentBuild`).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::core::Broker;
use crate::install_script::{self, shell_safe};

/// The routes, for the HTTP port's router.
pub fn routes() -> Router<Arc<Broker>> {
    Router::new()
        .route("/downloads", get(list))
        .route("/downloads/{file}", get(download))
        .route("/install.sh", get(install))
}

/// One build in `/downloads`.
#[derive(Debug, serde::Serialize)]
struct Listed<'a> {
    file: &'a str,
    version: String,
    os: &'a str,
    arch: &'a str,
    sha256: &'a str,
    size: u64,
    /// The newest of its platform: what `/install.sh` and `update` fetch.
    newest: bool,
}

async fn list(State(broker): State<Arc<Broker>>) -> Response {
    let builds = broker.agent_builds();
    let newest = builds.newest_per_platform();
    let listed: Vec<Listed> = builds
        .builds()
        .iter()
        .map(|build| Listed {
            file: &build.file,
            version: build.name.version.to_string(),
            os: &build.name.os,
            arch: &build.name.arch,
            sha256: &build.sha256,
            size: build.size,
            newest: newest
                .get(&(build.name.os.as_str(), build.name.arch.as_str()))
                .is_some_and(|newest| newest.file == build.file),
        })
        .collect();
    match serde_json::to_string_pretty(&listed) {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

async fn download(State(broker): State<Arc<Broker>>, Path(file): Path<String>) -> Response {
    // Only names in the catalogue are opened: `..` or a path is not one.
    let Some(build) = broker.agent_builds().by_file(&file) else {
        return (
            StatusCode::NOT_FOUND,
            "no such agent build: see /downloads\n",
        )
            .into_response();
    };
    let opened = match build.open().await {
        Ok(opened) => opened,
        Err(error) => {
            tracing::error!(%error, "cannot serve an agent build");
            return (StatusCode::SERVICE_UNAVAILABLE, format!("{error}\n")).into_response();
        }
    };
    let body = Body::from_stream(crate::agent_dist::chunks(opened, build.size));
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, build.size.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", build.file),
            ),
        ],
        body,
    )
        .into_response()
}

async fn install(State(broker): State<Arc<Broker>>, headers: HeaderMap) -> Response {
    if broker.agent_builds().builds().is_empty() {
        return (
            StatusCode::NOT_FOUND,
            "this broker hosts no agent builds (its operator can add them with --agent-dist)\n",
        )
            .into_response();
    }
    let Some(base_url) = base_url(&headers) else {
        return (
            StatusCode::BAD_REQUEST,
            "the request needs a Host header of letters, digits, dots and a port\n",
        )
            .into_response();
    };
    let script = install_script::render(
        &base_url,
        broker.agent_builds(),
        broker.config().public_url.as_deref(),
    );
    // text/plain: a browser shows the script, to be read, instead of saving it.
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        script,
    )
        .into_response()
}

/// The HTTP port's URL as the volunteer reached it: the Host header (so it
/// works whatever address the broker listens on), over https when a proxy
/// in front says so in `X-Forwarded-Proto`. `None` when the host is not
/// safe to write into a script.
fn base_url(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    shell_safe(host)
        .then(|| format!("{scheme}://{host}"))
        .filter(|url| shell_safe(url))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn the_base_url_is_the_host_the_volunteer_used() {
        let mut headers = HeaderMap::new();
        assert_eq!(base_url(&headers), None);
        headers.insert(
            header::HOST,
            HeaderValue::from_static("broker.example:8080"),
        );
        assert_eq!(
            base_url(&headers).as_deref(),
            Some("http://broker.example:8080")
        );
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert_eq!(
            base_url(&headers).as_deref(),
            Some("https://broker.example:8080")
        );
        headers.insert(header::HOST, HeaderValue::from_static("x';rm -rf ~;'"));
        assert_eq!(base_url(&headers), None);
    }
}
