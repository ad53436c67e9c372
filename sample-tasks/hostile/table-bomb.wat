;; Hostile: grows a funcref table by 100 000 elements per iteration, forever.
;; The table has no declared maximum, so only the sandbox's table limit stops
;; the growth (table.grow then returns -1) and fuel or the deadline ends the
;; loop. Table memory lives outside linear memory: a memory limit alone does
;; not catch this.
(module
  (table $table 0 funcref)
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $grow
      (drop (table.grow $table (ref.null func) (i32.const 100000)))
      (br $grow))))
