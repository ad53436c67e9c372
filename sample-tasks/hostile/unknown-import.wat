;; Hostile: a command that imports a function no sandbox provides. The host
;; must reject it before running anything (at link time), naming the import.
(module
  (import "env" "launch_missiles" (func $launch_missiles (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $launch_missiles (i32.const 1)))))
