//! Reading a wasm module the issuer names on the command line.

use std::path::Path;

use anyhow::{Context, bail};

/// The bytes of the module at `path`, checked to start with the wasm magic
/// number so a wrong file is caught here and not by a far-away agent.
/// `role` names it in errors: "module", "reducer".
pub fn read_module(path: &Path, role: &str) -> anyhow::Result<Vec<u8>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read {role} {}", path.display()))?;
    if !bytes.starts_with(b"\0asm") {
        bail!(
            "{} is not a WebAssembly module (it does not start with the \\0asm header)",
            path.display()
        );
    }
    Ok(bytes)
}
