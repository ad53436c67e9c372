//! Everything that decides whether a module can run, short of compiling
//! it: valid wasm for the engine's features, tables within the cap, a
//! bounded compile cost (`compile_cost`), and the shape of a WASI command
//! importing only what the sandbox provides (`command_shape`).
//!
//! Every compile runs it first (`module_cache`), and the broker runs only
//! this at submit (`Runtime::check`): it never runs the task, and compiling
//! it there took 100–250 ms of both cores per submit. A module that passes
//! compiles, unless Cranelift itself refuses it (an implementation limit,
//! which the compile-cost bound keeps far away); its runs then end in
//! `InvalidModule` on the agents, as a module refused here would.

use wasmtime::Module;

use crate::command_shape;
use crate::compile_cost;
use crate::declared_sizes;
use crate::engine::EngineClass;
use crate::limiter::MAX_TABLE_ELEMENTS;

/// Why `bytes` cannot run on `class`'s engine, or `Ok`.
pub(crate) fn check(class: &EngineClass, bytes: &[u8]) -> Result<(), String> {
    Module::validate(&class.engine, bytes).map_err(|e| format!("{e:#}"))?;
    // Whether the pooling allocator would refuse such a table depends on
    // the machine; this refusal does not.
    let declared = declared_sizes::read(bytes);
    if declared.min_table_elements > MAX_TABLE_ELEMENTS as u64 {
        return Err(format!(
            "module declares a table of {} elements; tables are capped at {MAX_TABLE_ELEMENTS}",
            declared.min_table_elements
        ));
    }
    compile_cost::check(bytes)?;
    command_shape::check(bytes, &class.imports)
}
