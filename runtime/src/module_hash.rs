//! Modules are addressed by the sha256 of their bytes, everywhere in wasmgrid.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// The sha256 of a module's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleHash(pub [u8; 32]);

impl ModuleHash {
    /// Hashes module bytes.
    pub fn of(bytes: &[u8]) -> Self {
        ModuleHash(Sha256::digest(bytes).into())
    }

    /// Lower-case hex, as used in file names and on the wire.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(ModuleHash(bytes))
    }
}

impl fmt::Debug for ModuleHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModuleHash({})", self.to_hex())
    }
}

impl fmt::Display for ModuleHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Module bytes with their hash, computed once. Cheap to clone: tasks of one
/// workload share one module, and hashing megabytes per task would dominate
/// sandbox start.
#[derive(Clone)]
pub struct TaskModule {
    hash: ModuleHash,
    bytes: Arc<[u8]>,
}

impl TaskModule {
    /// Wraps module bytes, hashing them.
    pub fn new(bytes: impl Into<Arc<[u8]>>) -> Self {
        let bytes = bytes.into();
        TaskModule {
            hash: ModuleHash::of(&bytes),
            bytes,
        }
    }

    /// The module's sha256.
    pub fn hash(&self) -> ModuleHash {
        self.hash
    }

    /// The module's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for TaskModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskModule")
            .field("hash", &self.hash)
            .field("len", &self.bytes.len())
            .finish()
    }
}
