//! Checks that a valid module is a task wasmgrid can run: a WASI command
//! (exports `_start: [] -> []`) without a start function, importing only
//! functions the sandbox provides, each with the type it provides.
//!
//! A wasm `start` function runs during instantiation, before metering begins
//! at `_start` (instantiation fuel differs between platforms, wasmtime issue
//! #14331, so it is not billed): a module could do all its work there for
//! free. WASI commands never need one, so such modules are refused.
//!
//! Read from the module's bytes, not from a compiled module, so that a
//! module can be checked without compiling it (`Runtime::check`, the
//! broker's check at submit).

use std::collections::HashMap;
use std::fmt;

use wasmparser::{ExternalKind, FuncType, Parser, Payload, TypeRef, ValType};
use wasmtime::{Engine, Extern, Linker, Store};

use crate::limiter::MemoryCap;
use crate::wasi::TaskState;

/// A function type in wasmparser's terms, whoever defined it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Signature {
    params: Vec<ValType>,
    results: Vec<ValType>,
}

impl From<&FuncType> for Signature {
    fn from(ty: &FuncType) -> Self {
        Signature {
            params: ty.params().to_vec(),
            results: ty.results().to_vec(),
        }
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |types: &[ValType]| {
            types
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(f, "[{}] -> [{}]", list(&self.params), list(&self.results))
    }
}

/// The functions a linker defines, by module and name, with their types.
#[derive(Debug, Default)]
pub(crate) struct ProvidedImports(HashMap<(String, String), Signature>);

impl ProvidedImports {
    /// What `linker` defines. A store is needed to read the definitions'
    /// types; this one runs nothing.
    pub(crate) fn of(engine: &Engine, linker: &Linker<TaskState>) -> Self {
        let mut store = Store::new(
            engine,
            TaskState::new(Vec::new(), 0, 0, 0, MemoryCap::new(0)),
        );
        let definitions: Vec<(String, String, Extern)> = linker
            .iter(&mut store)
            .map(|(module, name, item)| (module.to_owned(), name.to_owned(), item))
            .collect();
        let mut provided = HashMap::new();
        for (module, name, item) in definitions {
            let Extern::Func(func) = item else { continue };
            let ty = func.ty(&store);
            // WASI preview 1 passes only numbers; a definition with any
            // other type could not be imported by a task anyway.
            let params: Option<Vec<ValType>> = ty.params().map(|t| numeric(&t)).collect();
            let results: Option<Vec<ValType>> = ty.results().map(|t| numeric(&t)).collect();
            if let (Some(params), Some(results)) = (params, results) {
                provided.insert((module, name), Signature { params, results });
            }
        }
        ProvidedImports(provided)
    }
}

/// A wasmtime number type as wasmparser spells it; `None` for references.
fn numeric(ty: &wasmtime::ValType) -> Option<ValType> {
    match ty {
        wasmtime::ValType::I32 => Some(ValType::I32),
        wasmtime::ValType::I64 => Some(ValType::I64),
        wasmtime::ValType::F32 => Some(ValType::F32),
        wasmtime::ValType::F64 => Some(ValType::F64),
        wasmtime::ValType::V128 => Some(ValType::V128),
        wasmtime::ValType::Ref(_) => None,
    }
}

/// What a module's sections say about its shape.
#[derive(Default)]
struct Shape {
    /// The type section's function types.
    types: Vec<FuncType>,
    /// The type index of every function, imported ones first.
    functions: Vec<u32>,
    /// What `_start` exports, if anything: its kind and index.
    start_export: Option<(ExternalKind, u32)>,
    start_section: bool,
    /// The first import the sandbox does not provide, and why.
    bad_import: Option<String>,
}

/// Why `bytes`, a module already validated, is not a runnable task, or `Ok`.
pub(crate) fn check(bytes: &[u8], provided: &ProvidedImports) -> Result<(), String> {
    let shape = read(bytes, provided).map_err(|e| format!("{e}"))?;
    let start = match shape.start_export {
        Some((ExternalKind::Func | ExternalKind::FuncExact, index)) => shape
            .functions
            .get(index as usize)
            .and_then(|&ty| shape.types.get(ty as usize)),
        Some(_) => None,
        None => return Err("module does not export `_start`: not a WASI command".into()),
    };
    if !start.is_some_and(|ty| ty.params().is_empty() && ty.results().is_empty()) {
        return Err("export `_start` is not a function `[] -> []`".into());
    }
    if shape.start_section {
        return Err(
            "module has a wasm start function; tasks must do their work in `_start`".into(),
        );
    }
    match shape.bad_import {
        Some(why) => Err(why),
        None => Ok(()),
    }
}

/// Reads the sections that come before the code.
fn read(bytes: &[u8], provided: &ProvidedImports) -> wasmparser::Result<Shape> {
    let mut shape = Shape::default();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload? {
            Payload::TypeSection(types) => {
                for ty in types.into_iter_err_on_gc_types() {
                    shape.types.push(ty?);
                }
            }
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    let import = import?;
                    let problem = match import.ty {
                        TypeRef::Func(ty) | TypeRef::FuncExact(ty) => {
                            shape.functions.push(ty);
                            import_problem(&import, shape.types.get(ty as usize), provided)
                        }
                        TypeRef::Memory(_) => Some(not_provided(&import, "a memory")),
                        TypeRef::Table(_) => Some(not_provided(&import, "a table")),
                        TypeRef::Global(_) => Some(not_provided(&import, "a global")),
                        TypeRef::Tag(_) => Some(not_provided(&import, "a tag")),
                    };
                    if shape.bad_import.is_none() {
                        shape.bad_import = problem;
                    }
                }
            }
            Payload::FunctionSection(functions) => {
                for ty in functions {
                    shape.functions.push(ty?);
                }
            }
            Payload::ExportSection(exports) => {
                for export in exports {
                    let export = export?;
                    if export.name == "_start" {
                        shape.start_export = Some((export.kind, export.index));
                    }
                }
            }
            Payload::StartSection { .. } => shape.start_section = true,
            // Types, imports, functions, exports and the start function all
            // come before the code.
            Payload::CodeSectionStart { .. } => break,
            _ => {}
        }
    }
    Ok(shape)
}

/// Why the sandbox cannot satisfy the function `import` of type `ty`.
fn import_problem(
    import: &wasmparser::Import<'_>,
    ty: Option<&FuncType>,
    provided: &ProvidedImports,
) -> Option<String> {
    let key = (import.module.to_owned(), import.name.to_owned());
    let Some(defined) = provided.0.get(&key) else {
        return Some(format!(
            "module imports function `{}::{}`, which the sandbox does not provide",
            import.module, import.name
        ));
    };
    let wanted = ty.map(Signature::from);
    if wanted.as_ref() == Some(defined) {
        return None;
    }
    Some(format!(
        "module imports function `{}::{}` as {}, but the sandbox provides it as {defined}",
        import.module,
        import.name,
        wanted.map_or_else(|| "an unknown type".to_owned(), |ty| ty.to_string()),
    ))
}

fn not_provided(import: &wasmparser::Import<'_>, what: &str) -> String {
    format!(
        "module imports {what} `{}::{}`; the sandbox provides only WASI functions",
        import.module, import.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RuntimeConfig;
    use crate::engine::Engines;

    fn shape_of(wat: &str) -> Result<(), String> {
        let engines = Engines::new(RuntimeConfig::default()).expect("engines");
        let class = engines.class(1 << 20).expect("engine class");
        let bytes = wat::parse_str(wat).expect("wat");
        check(&bytes, &class.imports)
    }

    #[test]
    fn a_wasi_command_passes() {
        let wat = r#"(module
            (import "wasi_snapshot_preview1" "fd_write"
                (func (param i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 1)
            (func (export "_start")))"#;
        assert_eq!(shape_of(wat), Ok(()));
    }

    #[test]
    fn start_must_be_an_exported_function_of_no_values() {
        let missing = shape_of("(module (func (export \"main\")))");
        assert!(missing.is_err_and(|e| e.contains("does not export `_start`")));
        let typed = shape_of("(module (func (export \"_start\") (param i32)))");
        assert!(typed.is_err_and(|e| e.contains("[] -> []")));
        let memory = shape_of("(module (memory (export \"_start\") 1))");
        assert!(memory.is_err_and(|e| e.contains("[] -> []")));
    }

    #[test]
    fn a_start_section_is_refused() {
        let wat = "(module (func $f) (start $f) (func (export \"_start\")))";
        assert!(shape_of(wat).is_err_and(|e| e.contains("start function")));
    }

    #[test]
    fn imports_must_be_provided_functions_of_the_provided_type() {
        let unknown = shape_of(
            r#"(module (import "env" "launch_missiles" (func))
                (func (export "_start")))"#,
        );
        assert!(unknown.is_err_and(|e| e.contains("`env::launch_missiles`")));
        let mistyped = shape_of(
            r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32)))
                (func (export "_start")))"#,
        );
        assert!(mistyped.is_err_and(|e| e.contains("as [i32] -> []")
            && e.contains("provides it as [i32, i32, i32, i32] -> [i32]")));
        let memory = shape_of(
            r#"(module (import "env" "memory" (memory 1))
                (func (export "_start")))"#,
        );
        assert!(memory.is_err_and(|e| e.contains("imports a memory `env::memory`")));
    }
}
