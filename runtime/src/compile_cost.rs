//! A static bound on what compiling a module may cost, checked before
//! Cranelift sees it.
//!
//! Compiling is not metered: a small module can make Cranelift run for
//! minutes and take gigabytes (docs/hostile.md, "Compile bombs"). The cost
//! that explodes is SSA construction and register allocation over a
//! function with many locals and many branches: every merge of control flow
//! can need a value of every local, so the work grows with locals ×
//! branches. Measured on the 2-core CI machine (one function of one-armed
//! `if`s, each assigning a local): 500 × 5 000 = 2.5 M compiles in 2.3 s,
//! 1 000 × 10 000 = 10 M in 7.4 s, 2 000 × 15 000 = 30 M in 29 s,
//! 5 000 × 20 000 = 100 M in 99 s and 3.2 GB.
//!
//! The bound is deterministic (the same module is refused on every
//! machine, at the broker's submit already) and far above real tasks:
//! compiled Rust keeps its functions' locals few or their branches few.

use wasmparser::{Operator, Parser, Payload};

/// Most locals × branches in one function: about 7 s of compiling here.
pub(crate) const MAX_FUNCTION_COMPILE_COST: u64 = 8_000_000;

/// Most locals × branches summed over a module's functions: functions
/// compile in parallel, so about 15 s on two cores at worst.
pub(crate) const MAX_MODULE_COMPILE_COST: u64 = 32_000_000;

/// Why compiling `bytes` would cost too much, or `Ok`. A module that
/// cannot be parsed passes: compiling it fails with the parser's message.
pub(crate) fn check(bytes: &[u8]) -> Result<(), String> {
    let mut total: u64 = 0;
    let mut index: u32 = 0;
    let mut imported_functions: u32 = 0;
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else { return Ok(()) };
        match payload {
            Payload::ImportSection(imports) => {
                imported_functions = imports
                    .into_imports()
                    .flatten()
                    .filter(|import| matches!(import.ty, wasmparser::TypeRef::Func(_)))
                    .count()
                    .try_into()
                    .unwrap_or(u32::MAX);
            }
            Payload::CodeSectionEntry(body) => {
                let Some(cost) = function_cost(&body) else {
                    return Ok(());
                };
                let function = imported_functions.saturating_add(index);
                if cost.product() > MAX_FUNCTION_COMPILE_COST {
                    return Err(format!(
                        "function {function} would cost too much to compile: {} locals × {} \
                         branches = {} is above {MAX_FUNCTION_COMPILE_COST}",
                        cost.locals,
                        cost.branches,
                        cost.product()
                    ));
                }
                total = total.saturating_add(cost.product());
                if total > MAX_MODULE_COMPILE_COST {
                    return Err(format!(
                        "the module would cost too much to compile: locals × branches summed \
                         over its functions is above {MAX_MODULE_COMPILE_COST} at function \
                         {function}"
                    ));
                }
                index = index.saturating_add(1);
            }
            _ => {}
        }
    }
    Ok(())
}

/// One function's locals (parameters not counted: they are few) and
/// branches (control structures and branch targets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FunctionCost {
    locals: u64,
    branches: u64,
}

impl FunctionCost {
    fn product(self) -> u64 {
        self.locals.saturating_mul(self.branches)
    }
}

fn function_cost(body: &wasmparser::FunctionBody<'_>) -> Option<FunctionCost> {
    let mut locals: u64 = 0;
    for group in body.get_locals_reader().ok()? {
        let (count, _) = group.ok()?;
        locals = locals.saturating_add(u64::from(count));
    }
    let mut branches: u64 = 0;
    let mut operators = body.get_operators_reader().ok()?;
    while !operators.eof() {
        branches = branches.saturating_add(match operators.read().ok()? {
            Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::Else
            | Operator::Br { .. }
            | Operator::BrIf { .. }
            | Operator::BrOnNull { .. }
            | Operator::BrOnNonNull { .. } => 1,
            Operator::BrTable { targets } => u64::from(targets.len()).saturating_add(1),
            _ => 0,
        });
    }
    Some(FunctionCost { locals, branches })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One function with `locals` i32 locals and `ifs` one-armed `if`s,
    /// each assigning a local: the shape of the measured bombs.
    fn ifs(locals: u32, ifs: u32) -> Vec<u8> {
        let body: String = (0..ifs)
            .map(|i| {
                format!(
                    "(if (local.get {}) (then (local.set {} (local.get {}))))",
                    i % locals,
                    (i * 7 + 1) % locals,
                    (i * 3 + 2) % locals
                )
            })
            .collect();
        wat::parse_str(format!(
            "(module (func (local {}) {body}))",
            "i32 ".repeat(locals as usize)
        ))
        .expect("wat")
    }

    /// The sample tasks (real Rust, std and the SDK) are far below the
    /// bounds: the largest function and the module's sum, with the margin.
    #[test]
    fn the_sample_tasks_are_far_below_the_bounds() {
        for name in wasmgrid_sample_tasks::TASKS {
            let bytes = wasmgrid_sample_tasks::read_wasm(name);
            let mut largest = 0;
            let mut sum = 0;
            for payload in Parser::new(0).parse_all(&bytes) {
                if let Ok(Payload::CodeSectionEntry(body)) = payload {
                    let cost = function_cost(&body).expect("parses").product();
                    largest = largest.max(cost);
                    sum += cost;
                }
            }
            println!("{name}: largest {largest}, sum {sum}");
            assert!(
                largest * 20 < MAX_FUNCTION_COMPILE_COST,
                "{name}: {largest}"
            );
            assert!(sum * 20 < MAX_MODULE_COMPILE_COST, "{name}: {sum}");
            assert!(check(&bytes).is_ok(), "{name}");
        }
    }

    #[test]
    fn ordinary_functions_pass() {
        assert!(check(&ifs(50, 500)).is_ok());
        assert!(check(&ifs(500, 5_000)).is_ok(), "2.5 M: about 2 s here");
        assert!(check(b"not wasm").is_ok(), "left to the compiler");
    }

    #[test]
    fn a_function_of_many_locals_and_branches_is_refused() {
        let error = check(&ifs(2_000, 4_001)).expect_err("8 002 000");
        assert!(error.contains("function 0"), "{error}");
        assert!(error.contains("2000 locals × 4001 branches"), "{error}");
    }

    #[test]
    fn many_functions_below_the_bound_add_up() {
        let function = |_| {
            format!(
                "(func (local {}) {})",
                "i32 ".repeat(1_000),
                "(block)".repeat(7_000)
            )
        };
        let module = format!("(module {})", (0..5).map(function).collect::<String>());
        let error = check(&wat::parse_str(module).expect("wat")).expect_err("35 M in all");
        assert!(error.contains("summed over its functions"), "{error}");
        assert!(error.contains("at function 4"), "{error}");
    }
}
