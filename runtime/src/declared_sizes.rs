//! The smallest memory and tables a module declares, read from its import,
//! table and memory sections before it is compiled.
//!
//! Checked before compiling, a module's declared sizes end in the same
//! status on every machine: whether wasmtime refuses such a module at
//! compile time depends on the instance allocator (the pooling allocator's
//! slots are sized by each agent's `--memory`; the on-demand fallback has no
//! slots), so without this check one module could be `InvalidModule` on one
//! agent and `MemoryLimit` on another.

use wasmparser::{Parser, Payload, TypeRef};
use wasmtime::{Engine, Module};

/// The wasm page size, for memories without a custom page size.
const DEFAULT_PAGE_SIZE_LOG2: u32 = 16;

/// The largest initial sizes among a module's memories and tables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct DeclaredSizes {
    /// Bytes of the largest memory's initial size.
    pub(crate) min_memory_bytes: u64,
    /// Elements of the largest table's initial size.
    pub(crate) min_table_elements: u64,
}

/// What `bytes` declare. A module that cannot be parsed declares nothing
/// here: compiling it fails with the parser's own message.
pub(crate) fn read(bytes: &[u8]) -> DeclaredSizes {
    let mut sizes = DeclaredSizes::default();
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else { break };
        match payload {
            Payload::ImportSection(imports) => {
                for import in imports.into_imports().flatten() {
                    match import.ty {
                        TypeRef::Memory(memory) => sizes.add_memory(&memory),
                        TypeRef::Table(table) => sizes.add_table(table.initial),
                        _ => {}
                    }
                }
            }
            Payload::TableSection(tables) => {
                for table in tables.into_iter().flatten() {
                    sizes.add_table(table.ty.initial);
                }
            }
            Payload::MemorySection(memories) => {
                for memory in memories.into_iter().flatten() {
                    sizes.add_memory(&memory);
                }
            }
            // Imports, tables and memories come before the code.
            Payload::CodeSectionStart { .. } => break,
            _ => {}
        }
    }
    sizes
}

/// Whether `bytes` are a valid module for `engine` (validation only, no
/// compiling). Asked only of a module whose declared sizes are over a cap:
/// an invalid one is left to the compiler, whose error names what is wrong.
pub(crate) fn is_valid(engine: &Engine, bytes: &[u8]) -> bool {
    Module::validate(engine, bytes).is_ok()
}

impl DeclaredSizes {
    fn add_memory(&mut self, memory: &wasmparser::MemoryType) {
        let log2 = memory.page_size_log2.unwrap_or(DEFAULT_PAGE_SIZE_LOG2);
        let bytes = memory.initial.checked_shl(log2).unwrap_or(u64::MAX);
        let bytes = if bytes >> log2 == memory.initial {
            bytes
        } else {
            u64::MAX
        };
        self.min_memory_bytes = self.min_memory_bytes.max(bytes);
    }

    fn add_table(&mut self, initial: u64) {
        self.min_table_elements = self.min_table_elements.max(initial);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(wat: &str) -> DeclaredSizes {
        read(&wat::parse_str(wat).expect("wat"))
    }

    #[test]
    fn reads_the_largest_initial_memory_and_table() {
        assert_eq!(
            sizes("(module (memory 3) (table 7 funcref) (table 2 funcref))"),
            DeclaredSizes {
                min_memory_bytes: 3 << 16,
                min_table_elements: 7,
            }
        );
        assert_eq!(
            sizes(r#"(module (import "a" "m" (memory 5)) (import "a" "t" (table 9 funcref)))"#),
            DeclaredSizes {
                min_memory_bytes: 5 << 16,
                min_table_elements: 9,
            }
        );
        assert_eq!(sizes("(module (memory 65536))").min_memory_bytes, 4 << 30);
        assert_eq!(sizes("(module)"), DeclaredSizes::default());
    }

    #[test]
    fn garbage_declares_nothing() {
        assert_eq!(read(b"\0asm\x01\0\0\0\x05\xff"), DeclaredSizes::default());
        assert_eq!(read(b"not wasm"), DeclaredSizes::default());
    }
}
