//! Hostile: panics. With `panic = "abort"` the message is printed to stderr,
//! then the module traps: the host must report the trap and keep the
//! message in the captured stderr.

fn main() {
    panic!("wasmgrid sample panic: this task always panics");
}
