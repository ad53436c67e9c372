//! Write a wasmgrid task in one line.
//!
//! A task is a `wasm32-wasip1` command module: it reads its whole input from
//! stdin, writes its output to stdout, may explain a failure on stderr and
//! exits 0 on success (see "Task ABI" in `DESIGN.md`). This crate does that
//! plumbing so a task is just a function from input to output.
//!
//! # Layout
//!
//! - [`failure`]: [`TaskFailure`], everything that can end a task early, and
//!   the exit code each case maps to.
//! - [`execute`]: the testable core, `execute_*` functions taking any
//!   [`Read`](std::io::Read) / [`Write`](std::io::Write) pair.
//! - [`run`]: the `run_*` entry points a task's `main` calls; they bind the
//!   core to stdin/stdout and turn a failure into stderr + exit code.
//! - [`frames`]: the framing of a reducer's input (all task outputs of a
//!   workload, in task order) and [`run_reducer_json`].
//!
//! Everything works natively as well as on `wasm32-wasip1`, so a task's
//! logic can be unit-tested on the host.
//!
//! # Example
//!
//! A task that counts the words of a list of sentences:
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Input {
//!     sentences: Vec<String>,
//! }
//!
//! #[derive(Serialize)]
//! struct Output {
//!     words: usize,
//! }
//!
//! fn main() {
//!     wasmgrid_sdk::run_json(|input: Input| {
//!         let words = input.sentences.iter().map(|s| s.split_whitespace().count()).sum();
//!         Ok::<_, String>(Output { words })
//!     });
//! }
//! ```
//!
//! The same logic, driven in memory as a test would:
//!
//! ```
//! let mut output = Vec::new();
//! wasmgrid_sdk::execute_json(&br#"[1, 2, 3]"#[..], &mut output, |values: Vec<u64>| {
//!     Ok::<_, String>(values.iter().sum::<u64>())
//! })?;
//! assert_eq!(output, b"6");
//! # Ok::<(), wasmgrid_sdk::TaskFailure>(())
//! ```

pub mod execute;
pub mod failure;
pub mod frames;
pub mod run;

pub use execute::{execute_bytes, execute_json, execute_postcard};
pub use failure::TaskFailure;
pub use frames::run_reducer_json;
pub use run::{run_bytes, run_json, run_postcard};
