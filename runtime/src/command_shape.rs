//! Checks that a compiled module is a task wasmgrid can run: a WASI command
//! (exports `_start: [] -> []`) without a start function.
//!
//! A wasm `start` function runs during instantiation, before metering begins
//! at `_start` (instantiation fuel differs between platforms, wasmtime issue
//! #14331, so it is not billed): a module could do all its work there for
//! free. WASI commands never need one, so such modules are refused.

use wasmtime::{ExternType, Module};

/// Why a module is not a runnable task, or `Ok`.
pub(crate) fn check(bytes: &[u8], module: &Module) -> Result<(), String> {
    match module.get_export("_start") {
        Some(ExternType::Func(func)) if func.params().len() == 0 && func.results().len() == 0 => {}
        Some(_) => return Err("export `_start` is not a function `[] -> []`".into()),
        None => {
            return Err("module does not export `_start`: not a WASI command".into());
        }
    }
    if has_start_section(bytes) {
        return Err(
            "module has a wasm start function; tasks must do their work in `_start`".into(),
        );
    }
    Ok(())
}

/// The id of the start section in the binary format.
const START_SECTION: u8 = 8;

/// Walks the section headers of an already validated module.
fn has_start_section(bytes: &[u8]) -> bool {
    let mut at = 8; // magic and version
    while at < bytes.len() {
        let id = bytes[at];
        at += 1;
        let Some((size, used)) = read_leb_u32(&bytes[at..]) else {
            return false;
        };
        if id == START_SECTION {
            return true;
        }
        at = at.saturating_add(used).saturating_add(size as usize);
    }
    false
}

/// Decodes an unsigned LEB128 u32, returning the value and bytes used.
fn read_leb_u32(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut value: u32 = 0;
    for (i, &byte) in bytes.iter().take(5).enumerate() {
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb_decodes_multi_byte_values() {
        assert_eq!(read_leb_u32(&[0xe5, 0x8e, 0x26]), Some((624_485, 3)));
        assert_eq!(read_leb_u32(&[0x80, 0x80]), None);
    }

    #[test]
    fn finds_start_section_only_when_present() {
        let with = wat::parse_str("(module (func $f) (start $f))").expect("wat");
        let without = wat::parse_str("(module (func $f))").expect("wat");
        assert!(has_start_section(&with));
        assert!(!has_start_section(&without));
    }
}
