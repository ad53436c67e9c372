;; Unbounded recursion with no linear-memory shadow stack: every frame lives
;; on the wasm (native) call stack, so this hits the engine's stack limit
;; (`max_wasm_stack`), not a guard in linear memory as Rust code does.
(module
  (func $recurse (param i32) (result i32)
    local.get 0
    i32.const 1
    i32.add
    call $recurse
    i32.const 1
    i32.add)
  (func (export "_start")
    i32.const 0
    call $recurse
    drop)
  (memory (export "memory") 1))
