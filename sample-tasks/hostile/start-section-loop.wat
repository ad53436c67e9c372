;; Hostile: the module's start function loops forever. It runs during
;; instantiation, before `_start` is called, so the host's limits (fuel,
;; deadline) must already apply while instantiating.
(module
  (memory (export "memory") 1)
  (func $spin
    (loop $forever
      (br $forever)))
  (start $spin)
  (func (export "_start")))
