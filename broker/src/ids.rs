//! Identifiers and time: how workload, lease and agent ids, tokens and task
//! seeds are made, and the broker's clock.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A new workload id, `w-` and 16 hex digits.
pub fn new_workload_id() -> String {
    format!("w-{}", random_hex(8))
}

/// A new lease id, `l-` and 24 hex digits: the creation time in ms (12
/// digits), then 48 random bits. Ids made later sort later, so the store's
/// index of lease ids grows at its end, in pages that stay in the cache,
/// instead of at random places of an index larger than the cache (at 10^6
/// leases, every insert and every report's lookup read a page from disk).
/// Ownership is checked by the agent's token, not by the id being secret.
pub fn new_lease_id() -> String {
    let ms = u64::try_from(now_ms()).unwrap_or(0) & 0xffff_ffff_ffff;
    format!("l-{ms:012x}{}", random_hex(6))
}

/// A new agent id, `a-` and 16 hex digits.
pub fn new_agent_id() -> String {
    format!("a-{}", random_hex(8))
}

/// A new bearer token: 256 random bits.
pub fn new_token() -> String {
    random_hex(32)
}

/// What the store keeps of a token.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The random seed of a task: the same for every replica (they must agree),
/// different for every task.
pub fn task_seed(workload_id: &str, index: u32) -> u64 {
    let digest = Sha256::new()
        .chain_update(workload_id.as_bytes())
        .chain_update(index.to_le_bytes())
        .finalize();
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_ids_keep_their_format_and_sort_by_creation() {
        let first = new_lease_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = new_lease_id();
        for id in [&first, &second] {
            assert_eq!(id.len(), 26, "{id}");
            assert!(id.starts_with("l-"), "{id}");
            assert!(id[2..].chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        }
        assert!(first < second, "{first} {second}");
        assert_ne!(new_lease_id(), new_lease_id());
    }
}
