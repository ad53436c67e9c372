//! Getting a lease's module: from the store if it is there and intact, else
//! streamed from the broker with `FetchModule`, assembled and verified
//! (sha256 and announced size) before it is stored.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tonic::Status;
use wasmgrid_proto::v1::FetchModuleRequest;
use wasmgrid_runtime::{ModuleHash, TaskModule};

use crate::backoff::Backoff;
use crate::client::{BrokerClient, Failure, Retry, classify};
use crate::module_store::{MAX_MODULE_BYTES, ModuleStore};

/// Longest wait for the next chunk of a module (or of an agent build). A
/// stalled stream (a broker or link that hangs) is abandoned and retried
/// instead of holding a slot.
pub(crate) const CHUNK_TIMEOUT: Duration = Duration::from_secs(30);

/// Downloads of a module whose bytes do not match its hash (or announced
/// size) before giving up on the lease: one bad transfer is retried, a broker
/// that keeps serving wrong bytes is not.
const MAX_CORRUPT_DOWNLOADS: u32 = 3;

/// Up-front allocation for a module being downloaded, whatever size the
/// broker announces: a lie costs at most this before the bytes arrive.
const MAX_PREALLOCATION: u64 = 16 << 20;

/// Why a lease's module could not be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// The broker will not serve the module (unknown, not this agent's).
    #[error("the broker refused the module: {}", .0.message())]
    Refused(Status),
    /// Every download was corrupt.
    #[error("the module kept arriving corrupt: {0}")]
    Corrupt(String),
    /// The broker announced a module too large to accept.
    #[error("the module is {0} bytes, more than the {MAX_MODULE_BYTES} bytes accepted")]
    TooLarge(u64),
    /// The module store failed (disk full, permissions).
    #[error("cannot store the module: {0}")]
    Store(#[source] io::Error),
}

/// One download's failure.
enum DownloadError {
    Call(Status),
    Corrupt(String),
    TooLarge(u64),
}

/// Returns the module `hash`, fetching it if the store lacks it. Retries a
/// broker that is away for as long as the caller waits.
pub(crate) async fn ensure_module(
    store: &Arc<ModuleStore>,
    client: &BrokerClient,
    hash: ModuleHash,
) -> Result<TaskModule, FetchError> {
    let lock = store.fetch_lock(hash);
    let _fetching = lock.lock().await;
    let cached = {
        let store = Arc::clone(store);
        blocking(move || store.get(hash)).await
    };
    if let Some(module) = cached.map_err(FetchError::Store)? {
        return Ok(module);
    }
    let mut backoff = Backoff::new(client.backoff);
    let mut corrupt_downloads = 0;
    loop {
        let corruption = match download(client, hash).await {
            Ok(bytes) => {
                let size = bytes.len();
                let store = Arc::clone(store);
                match blocking(move || store.put(hash, bytes)).await {
                    Ok(module) => {
                        tracing::info!(module = %hash, size, "module fetched");
                        return Ok(module);
                    }
                    Err(error) if error.kind() == io::ErrorKind::InvalidData => error.to_string(),
                    Err(error) => return Err(FetchError::Store(error)),
                }
            }
            Err(DownloadError::Corrupt(why)) => why,
            Err(DownloadError::TooLarge(size)) => return Err(FetchError::TooLarge(size)),
            Err(DownloadError::Call(status)) => {
                if classify(&status) == Failure::Permanent {
                    return Err(FetchError::Refused(status));
                }
                tracing::debug!(module = %hash, code = ?status.code(), detail = status.message(), "module download failed; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        corrupt_downloads += 1;
        tracing::warn!(module = %hash, attempt = corrupt_downloads, why = %corruption, "downloaded module is corrupt");
        if corrupt_downloads >= MAX_CORRUPT_DOWNLOADS {
            return Err(FetchError::Corrupt(corruption));
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// Streams the module once and checks its size against the announcement.
async fn download(client: &BrokerClient, hash: ModuleHash) -> Result<Vec<u8>, DownloadError> {
    let request = FetchModuleRequest {
        sha256: hash.to_hex(),
    };
    let mut stream = client
        .call("fetch module", Retry::Once, |mut grpc| {
            let request = request.clone();
            async move { grpc.fetch_module(request).await }
        })
        .await
        .map_err(DownloadError::Call)?;
    let mut bytes = Vec::new();
    let mut announced: Option<u64> = None;
    loop {
        let chunk = tokio::time::timeout(CHUNK_TIMEOUT, stream.message())
            .await
            .map_err(|_| DownloadError::Call(Status::deadline_exceeded("module stream stalled")))?
            .map_err(DownloadError::Call)?;
        let Some(chunk) = chunk else { break };
        let total = *announced.get_or_insert(chunk.total_size);
        if total > MAX_MODULE_BYTES {
            return Err(DownloadError::TooLarge(total));
        }
        if bytes.is_empty() {
            bytes.reserve(usize::try_from(total.min(MAX_PREALLOCATION)).unwrap_or(0));
        }
        if (bytes.len() + chunk.data.len()) as u64 > total {
            return Err(DownloadError::Corrupt(format!(
                "more bytes than the announced {total}"
            )));
        }
        bytes.extend_from_slice(&chunk.data);
    }
    let total = announced.unwrap_or(0);
    if bytes.len() as u64 != total {
        return Err(DownloadError::Corrupt(format!(
            "received {} bytes, {total} announced",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// Runs disk work (reading and hashing megabytes) off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|error| Err(io::Error::other(error)))
}
