//! Compiled modules on disk, so an agent restart does not recompile.
//!
//! Loading compiled code is `unsafe` in wasmtime: the bytes are trusted to be
//! machine code wasmtime produced. So a file is only used when it carries the
//! sha256 of the module it was compiled from and the sha256 of its own
//! artifact bytes, both matching; wasmtime then checks engine compatibility
//! itself. Anything else (truncated, corrupted, another engine's) is deleted
//! and recompiled, never run. The directory must be private to this host
//! (created 0700): files in it are code this machine compiled.
//!
//! File layout: `MAGIC`, module sha256 (32 bytes), artifact sha256 (32
//! bytes), artifact. Named `<module sha256>-<engine fingerprint>.cwasm`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Module;

use crate::RuntimeError;
use crate::engine::EngineClass;
use crate::module_hash::ModuleHash;

const MAGIC: &[u8; 8] = b"WGCWASM1";
const HEADER_LEN: usize = MAGIC.len() + 32 + 32;

/// A directory of compiled modules.
#[derive(Debug)]
pub(crate) struct ArtifactDir {
    dir: PathBuf,
}

impl ArtifactDir {
    pub(crate) fn open(dir: &Path) -> Result<Self, RuntimeError> {
        let cache_error = |source| RuntimeError::Cache {
            path: dir.to_path_buf(),
            source,
        };
        fs::create_dir_all(dir).map_err(cache_error)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(cache_error)?;
        }
        Ok(ArtifactDir {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, class: &EngineClass, hash: ModuleHash) -> PathBuf {
        self.dir.join(format!("{hash}-{}.cwasm", class.fingerprint))
    }

    /// The compiled module, if a valid artifact for it exists.
    pub(crate) fn load(&self, class: &EngineClass, hash: ModuleHash) -> Option<Module> {
        let path = self.path(class, hash);
        let file = fs::read(&path).ok()?;
        match verified_artifact(&file, hash) {
            Some(artifact) => {
                // SAFETY: the artifact's sha256 matches the digest this host
                // wrote beside it when it serialized a module it compiled
                // itself, in a directory private to this host; wasmtime
                // checks the engine compatibility of the header.
                match unsafe { Module::deserialize(&class.engine, artifact) } {
                    Ok(module) => return Some(module),
                    Err(error) => tracing::warn!(
                        path = %path.display(),
                        error = %format!("{error:#}"),
                        "compiled module incompatible, recompiling"
                    ),
                }
            }
            None => tracing::warn!(path = %path.display(), "compiled module corrupt, recompiling"),
        }
        let _ = fs::remove_file(&path);
        None
    }

    /// Stores a compiled module; failures only cost a later recompile.
    pub(crate) fn store(&self, class: &EngineClass, hash: ModuleHash, module: &Module) {
        let path = self.path(class, hash);
        let result = module
            .serialize()
            .map_err(|e| std::io::Error::other(format!("{e:#}")))
            .and_then(|artifact| {
                let mut temp = tempfile_in(&self.dir)?;
                temp.1.write_all(MAGIC)?;
                temp.1.write_all(&hash.0)?;
                temp.1.write_all(&Sha256::digest(&artifact))?;
                temp.1.write_all(&artifact)?;
                // Not synced: `load` checks the digest, so a file a machine
                // crash left torn only costs a recompile.
                fs::rename(&temp.0, &path)
            });
        if let Err(error) = result {
            tracing::warn!(path = %path.display(), %error, "cannot store compiled module");
        }
    }
}

/// The artifact bytes of `file` if its header matches `hash` and its digest.
fn verified_artifact(file: &[u8], hash: ModuleHash) -> Option<&[u8]> {
    if file.len() < HEADER_LEN || &file[..MAGIC.len()] != MAGIC {
        return None;
    }
    let (module_digest, rest) = file[MAGIC.len()..].split_at(32);
    let (artifact_digest, artifact) = rest.split_at(32);
    if module_digest != hash.0 || artifact_digest != Sha256::digest(artifact).as_slice() {
        return None;
    }
    Some(artifact)
}

/// A new uniquely named file in `dir`, for an atomic write-then-rename.
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, fs::File)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        ".tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let path = dir.join(name);
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((path, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact_file(hash: ModuleHash, artifact: &[u8]) -> Vec<u8> {
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&hash.0);
        file.extend_from_slice(&Sha256::digest(artifact));
        file.extend_from_slice(artifact);
        file
    }

    #[test]
    fn accepts_only_intact_files_for_the_right_module() {
        let hash = ModuleHash::of(b"module");
        let file = artifact_file(hash, b"machine code");
        assert_eq!(verified_artifact(&file, hash), Some(&b"machine code"[..]));
        assert_eq!(verified_artifact(&file, ModuleHash::of(b"other")), None);
        let mut flipped = file.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(verified_artifact(&flipped, hash), None);
        assert_eq!(verified_artifact(&file[..HEADER_LEN - 1], hash), None);
        assert_eq!(verified_artifact(&file[..file.len() - 1], hash), None);
    }
}
