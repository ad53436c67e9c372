//! Why a task ended early, and the exit code the host sees for it.
//!
//! The host only observes an exit code and stderr. Keeping "the input was
//! bad" (exit 2) apart from "the task's own computation failed" (exit 1)
//! lets an issuer tell a broken workload from a broken task without parsing
//! messages.

use std::fmt;
use std::io;

/// Exit code when the task function itself returned an error.
pub const EXIT_TASK_ERROR: i32 = 1;

/// Exit code when the input could not be read or decoded: the issuer sent
/// something the task does not understand, rerunning it will not help.
pub const EXIT_INVALID_INPUT: i32 = 2;

/// Exit code when the output could not be encoded or written, e.g. because
/// the host closed stdout after the output limit.
pub const EXIT_OUTPUT_ERROR: i32 = 3;

/// Everything that can stop a task before it has written its output.
///
/// Returned by the `execute_*` functions so tests can inspect it; the `run_*`
/// entry points print it to stderr and exit with [`TaskFailure::exit_code`].
#[derive(Debug)]
#[non_exhaustive]
pub enum TaskFailure {
    /// Reading stdin failed.
    ReadInput(io::Error),
    /// The input bytes were read but could not be decoded.
    InvalidInput(String),
    /// The task function returned an error; holds its message.
    Task(String),
    /// The task's result could not be encoded (a bug in the task).
    EncodeOutput(String),
    /// Writing or flushing stdout failed.
    WriteOutput(io::Error),
}

impl TaskFailure {
    /// The process exit code for this failure, so the host can classify it
    /// without reading stderr.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::ReadInput(_) | Self::InvalidInput(_) => EXIT_INVALID_INPUT,
            Self::Task(_) => EXIT_TASK_ERROR,
            Self::EncodeOutput(_) | Self::WriteOutput(_) => EXIT_OUTPUT_ERROR,
        }
    }
}

impl fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReadInput(error) => write!(f, "cannot read input: {error}"),
            Self::InvalidInput(message) => write!(f, "invalid input: {message}"),
            Self::Task(message) => f.write_str(message),
            Self::EncodeOutput(message) => write!(f, "cannot encode output: {message}"),
            Self::WriteOutput(error) => write!(f, "cannot write output: {error}"),
        }
    }
}

impl std::error::Error for TaskFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::ReadInput(error) | Self::WriteOutput(error) => Some(error),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_separate_input_task_and_output_failures() {
        let read = TaskFailure::ReadInput(io::Error::other("gone"));
        assert_eq!(read.exit_code(), 2);
        assert_eq!(TaskFailure::InvalidInput("x".into()).exit_code(), 2);
        assert_eq!(TaskFailure::Task("x".into()).exit_code(), 1);
        assert_eq!(TaskFailure::EncodeOutput("x".into()).exit_code(), 3);
        let write = TaskFailure::WriteOutput(io::Error::other("closed"));
        assert_eq!(write.exit_code(), 3);
    }

    #[test]
    fn messages_name_the_stage() {
        assert_eq!(
            TaskFailure::InvalidInput("eof".into()).to_string(),
            "invalid input: eof"
        );
        assert_eq!(TaskFailure::Task("too big".into()).to_string(), "too big");
        let read = TaskFailure::ReadInput(io::Error::other("gone"));
        assert_eq!(read.to_string(), "cannot read input: gone");
    }
}
