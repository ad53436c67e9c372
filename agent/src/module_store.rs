//! Task modules on disk, `STATE/modules/<sha256>.wasm`, verified against
//! their name every time they are read: a corrupt file is removed and the
//! module fetched again, never run.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use wasmgrid_runtime::{ModuleHash, TaskModule};

use crate::durable_file::{remove_leftover_temp_files, write_replacing};

/// Largest module the agent accepts. Modules are streamed in chunks, so no
/// message limit bounds them; this keeps a broken or hostile broker from
/// filling the agent's memory and disk. Real task modules are a few MiB.
pub const MAX_MODULE_BYTES: u64 = 256 << 20;

/// Modules kept in memory after their first use. Every task of a workload
/// runs the same module: reading and hashing it from disk for each task would
/// cost more than starting the sandbox. Bounded because each copy is the
/// whole module.
const MODULES_IN_MEMORY: usize = 16;

/// A module's bytes did not hash to the expected sha256.
#[derive(Debug, thiserror::Error)]
#[error("module bytes hash to {actual}, expected {expected}")]
pub(crate) struct HashMismatch {
    pub(crate) expected: ModuleHash,
    pub(crate) actual: ModuleHash,
}

/// The verified module cache.
#[derive(Debug)]
pub(crate) struct ModuleStore {
    dir: PathBuf,
    /// Most recently used last.
    in_memory: Mutex<VecDeque<TaskModule>>,
    /// One lock per module being fetched, so leases of the same workload
    /// that arrive together fetch its module once.
    fetching: Mutex<HashMap<ModuleHash, Arc<tokio::sync::Mutex<()>>>>,
}

impl ModuleStore {
    /// Opens (creating) the store in `dir`.
    pub(crate) fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        remove_leftover_temp_files(dir)?;
        Ok(ModuleStore {
            dir: dir.to_owned(),
            in_memory: Mutex::new(VecDeque::new()),
            fetching: Mutex::new(HashMap::new()),
        })
    }

    /// Where `hash`'s module lives on disk.
    pub(crate) fn path(&self, hash: ModuleHash) -> PathBuf {
        self.dir.join(format!("{hash}.wasm"))
    }

    /// The module `hash`, if it is stored and intact. A file whose bytes do
    /// not hash to its name is removed (logged), so it is fetched again.
    pub(crate) fn get(&self, hash: ModuleHash) -> io::Result<Option<TaskModule>> {
        if let Some(module) = self.recall(hash) {
            return Ok(Some(module));
        }
        let path = self.path(hash);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        let module = TaskModule::new(bytes);
        if module.hash() != hash {
            tracing::warn!(module = %hash, actual = %module.hash(), file = %path.display(), "stored module is corrupt; removing it to fetch it again");
            std::fs::remove_file(&path)?;
            return Ok(None);
        }
        self.remember(module.clone());
        Ok(Some(module))
    }

    /// Stores `bytes` as module `hash`, if they hash to it.
    pub(crate) fn put(&self, hash: ModuleHash, bytes: Vec<u8>) -> io::Result<TaskModule> {
        let module = TaskModule::new(bytes);
        if module.hash() != hash {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                HashMismatch {
                    expected: hash,
                    actual: module.hash(),
                },
            ));
        }
        // Not synced: the file is checked against its name at every read,
        // so one a machine crash left torn or empty is fetched again.
        write_replacing(&self.path(hash), module.bytes())?;
        self.remember(module.clone());
        Ok(module)
    }

    /// The lock to hold while fetching `hash`.
    pub(crate) fn fetch_lock(&self, hash: ModuleHash) -> Arc<tokio::sync::Mutex<()>> {
        let mut fetching = self.fetching.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(fetching.entry(hash).or_default())
    }

    fn recall(&self, hash: ModuleHash) -> Option<TaskModule> {
        let mut modules = self
            .in_memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let position = modules.iter().position(|module| module.hash() == hash)?;
        let module = modules.remove(position)?;
        modules.push_back(module.clone());
        Some(module)
    }

    fn remember(&self, module: TaskModule) {
        let mut modules = self
            .in_memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        modules.retain(|known| known.hash() != module.hash());
        modules.push_back(module);
        while modules.len() > MODULES_IN_MEMORY {
            modules.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_module_is_read_back() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = ModuleStore::open(dir.path())?;
        let hash = ModuleHash::of(b"\0asm module");
        assert!(store.get(hash)?.is_none());
        store.put(hash, b"\0asm module".to_vec())?;

        let reopened = ModuleStore::open(dir.path())?;
        let module = reopened.get(hash)?;
        assert_eq!(
            module.map(|m| m.bytes().to_vec()),
            Some(b"\0asm module".to_vec())
        );
        Ok(())
    }

    #[test]
    fn bytes_that_do_not_match_the_hash_are_refused() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = ModuleStore::open(dir.path())?;
        let hash = ModuleHash::of(b"expected");
        let error = store.put(hash, b"something else".to_vec());
        assert!(matches!(error, Err(e) if e.kind() == io::ErrorKind::InvalidData));
        assert!(!store.path(hash).exists());
        Ok(())
    }

    #[test]
    fn corrupt_file_is_removed_so_it_is_fetched_again() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let hash = ModuleHash::of(b"\0asm original");
        {
            let store = ModuleStore::open(dir.path())?;
            store.put(hash, b"\0asm original".to_vec())?;
            std::fs::write(store.path(hash), b"\0asm flipped bits")?;
        }
        // A fresh store (a restarted agent) has nothing in memory.
        let store = ModuleStore::open(dir.path())?;
        assert!(store.get(hash)?.is_none());
        assert!(!store.path(hash).exists());
        // The refetched bytes are stored and read back.
        store.put(hash, b"\0asm original".to_vec())?;
        assert!(store.get(hash)?.is_some());
        Ok(())
    }

    #[test]
    fn memory_copy_is_bounded() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = ModuleStore::open(dir.path())?;
        for i in 0..(MODULES_IN_MEMORY + 4) {
            let bytes = format!("module {i}").into_bytes();
            store.put(ModuleHash::of(&bytes), bytes)?;
        }
        let in_memory = store.in_memory.lock().map(|m| m.len()).unwrap_or_default();
        assert_eq!(in_memory, MODULES_IN_MEMORY);
        Ok(())
    }
}
