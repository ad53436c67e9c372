;; Hostile: a valid module that is not a WASI command. It exports only a
;; function `add` and no `_start`, so the host must refuse it as an invalid
;; task instead of looking for something else to call.
(module
  (func (export "add") (param i32 i32) (result i32)
    local.get 0
    local.get 1
    i32.add))
