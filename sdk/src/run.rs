//! The entry points a task's `main` calls: stdin in, stdout out, and on
//! failure a message on stderr plus a deliberate exit code.
//!
//! Each `run_*` returns normally on success so `main` ends and the process
//! exits 0; on failure it never returns.

use std::fmt::Display;
use std::io::{self, Write};
use std::process;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::execute::{execute_bytes, execute_json, execute_postcard};
use crate::failure::TaskFailure;

/// Runs a task on raw bytes: all of stdin in, the returned bytes to stdout.
///
/// On failure prints the reason to stderr and exits with the code of
/// [`TaskFailure::exit_code`]: 1 when `f` fails, 2 when stdin cannot be read.
pub fn run_bytes<F, E>(f: F)
where
    F: FnOnce(Vec<u8>) -> Result<Vec<u8>, E>,
    E: Display,
{
    finish(execute_bytes(io::stdin().lock(), io::stdout().lock(), f));
}

/// Runs a task on JSON: stdin decoded as `I`, the result encoded to stdout.
///
/// Undecodable input ends the task with "invalid input: …" on stderr and
/// exit code 2, before `f` runs.
pub fn run_json<I, O, E, F>(f: F)
where
    I: DeserializeOwned,
    O: Serialize,
    F: FnOnce(I) -> Result<O, E>,
    E: Display,
{
    finish(execute_json(io::stdin().lock(), io::stdout().lock(), f));
}

/// Runs a task on postcard-encoded input and output, for inputs too large
/// or too numeric for JSON to be cheap; failures as in [`run_json`].
pub fn run_postcard<I, O, E, F>(f: F)
where
    I: DeserializeOwned,
    O: Serialize,
    F: FnOnce(I) -> Result<O, E>,
    E: Display,
{
    finish(execute_postcard(io::stdin().lock(), io::stdout().lock(), f));
}

/// Turns a failure into stderr + exit code; returns on success.
pub(crate) fn finish(result: Result<(), TaskFailure>) {
    if let Err(failure) = result {
        // Nothing more can be done if stderr is gone too: the exit code
        // still tells the host what happened.
        let _ = writeln!(io::stderr(), "{failure}");
        process::exit(failure.exit_code());
    }
}
