//! The testable core of a task: input from any reader, output to any writer.
//!
//! The `run_*` entry points in [`crate::run`] are thin wrappers binding these
//! to stdin/stdout, so everything that can go wrong is observable here as a
//! [`TaskFailure`] instead of a process exit.

use std::fmt::Display;
use std::io::{Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::failure::TaskFailure;

/// Runs `f` on all bytes of `input` and writes its result to `output`.
///
/// Nothing is written when `f` fails, so the host never mistakes a partial
/// output for a result. The output is flushed before returning because a
/// task exits right after, possibly without running destructors.
pub fn execute_bytes<F, E>(input: impl Read, output: impl Write, f: F) -> Result<(), TaskFailure>
where
    F: FnOnce(Vec<u8>) -> Result<Vec<u8>, E>,
    E: Display,
{
    let bytes = read_all(input)?;
    let result = f(bytes).map_err(|error| TaskFailure::Task(error.to_string()))?;
    write_all(output, &result)
}

/// Like [`execute_bytes`] with JSON input and output, the codec of choice when
/// issuers write inputs by hand or read results with any tool.
pub fn execute_json<I, O, E, F>(
    input: impl Read,
    output: impl Write,
    f: F,
) -> Result<(), TaskFailure>
where
    I: DeserializeOwned,
    O: Serialize,
    F: FnOnce(I) -> Result<O, E>,
    E: Display,
{
    let bytes = read_all(input)?;
    let value = decode_json(&bytes)?;
    let result = f(value).map_err(|error| TaskFailure::Task(error.to_string()))?;
    let encoded = serde_json::to_vec(&result)
        .map_err(|error| TaskFailure::EncodeOutput(error.to_string()))?;
    write_all(output, &encoded)
}

/// Like [`execute_json`] with the compact binary codec postcard, for large
/// numeric inputs and outputs where JSON's size and parsing cost would
/// dominate the bill.
///
/// Trailing bytes after the encoded input are rejected: they mean the issuer
/// and the task disagree on the input type.
pub fn execute_postcard<I, O, E, F>(
    input: impl Read,
    output: impl Write,
    f: F,
) -> Result<(), TaskFailure>
where
    I: DeserializeOwned,
    O: Serialize,
    F: FnOnce(I) -> Result<O, E>,
    E: Display,
{
    let bytes = read_all(input)?;
    let (value, rest) = postcard::take_from_bytes::<I>(&bytes)
        .map_err(|error| TaskFailure::InvalidInput(error.to_string()))?;
    if !rest.is_empty() {
        return Err(TaskFailure::InvalidInput(format!(
            "{} trailing bytes after the encoded value",
            rest.len()
        )));
    }
    let result = f(value).map_err(|error| TaskFailure::Task(error.to_string()))?;
    let encoded = postcard::to_allocvec(&result)
        .map_err(|error| TaskFailure::EncodeOutput(error.to_string()))?;
    write_all(output, &encoded)
}

/// Decodes one JSON value, reporting a failure as invalid input.
pub(crate) fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, TaskFailure> {
    serde_json::from_slice(bytes).map_err(|error| TaskFailure::InvalidInput(error.to_string()))
}

/// Reads the whole input: a task gets its input at once, never streamed.
pub(crate) fn read_all(mut input: impl Read) -> Result<Vec<u8>, TaskFailure> {
    let mut bytes = Vec::new();
    input
        .read_to_end(&mut bytes)
        .map_err(TaskFailure::ReadInput)?;
    Ok(bytes)
}

/// Writes and flushes the output, because the task may exit right after.
pub(crate) fn write_all(mut output: impl Write, bytes: &[u8]) -> Result<(), TaskFailure> {
    output.write_all(bytes).map_err(TaskFailure::WriteOutput)?;
    output.flush().map_err(TaskFailure::WriteOutput)
}

#[cfg(test)]
mod tests {
    use std::io;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Point {
        x: i64,
        y: i64,
    }

    /// A reader that always fails, standing in for a broken stdin.
    struct BrokenReader;

    impl Read for BrokenReader {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("stdin closed"))
        }
    }

    /// A writer that always fails, standing in for a closed stdout.
    struct BrokenWriter;

    impl Write for BrokenWriter {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("stdout closed"))
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn reverse(bytes: Vec<u8>) -> Result<Vec<u8>, String> {
        Ok(bytes.into_iter().rev().collect())
    }

    #[test]
    fn bytes_round_trip() {
        let mut output = Vec::new();
        execute_bytes(&b"abc"[..], &mut output, reverse).expect("reverse never fails");
        assert_eq!(output, b"cba");
    }

    #[test]
    fn bytes_empty_input_is_fine() {
        let mut output = Vec::new();
        execute_bytes(&b""[..], &mut output, reverse).expect("reverse never fails");
        assert!(output.is_empty());
    }

    #[test]
    fn task_error_writes_nothing_and_exits_1() {
        let mut output = Vec::new();
        let failure = execute_bytes(&b"abc"[..], &mut output, |_| Err::<Vec<u8>, _>("no luck"))
            .expect_err("the task fails");
        assert!(matches!(&failure, TaskFailure::Task(message) if message == "no luck"));
        assert_eq!(failure.exit_code(), 1);
        assert!(output.is_empty());
    }

    #[test]
    fn read_failure_exits_2() {
        let failure = execute_bytes(BrokenReader, Vec::new(), reverse).expect_err("stdin fails");
        assert!(matches!(failure, TaskFailure::ReadInput(_)));
        assert_eq!(failure.exit_code(), 2);
    }

    #[test]
    fn write_failure_is_reported() {
        let failure = execute_bytes(&b"abc"[..], BrokenWriter, reverse).expect_err("stdout fails");
        assert!(matches!(failure, TaskFailure::WriteOutput(_)));
    }

    #[test]
    fn json_round_trip() {
        let mut output = Vec::new();
        execute_json(&br#"{"x": 1, "y": -2}"#[..], &mut output, |p: Point| {
            Ok::<_, String>(Point { x: p.y, y: p.x })
        })
        .expect("valid input");
        assert_eq!(output, br#"{"x":-2,"y":1}"#);
    }

    #[test]
    fn json_invalid_input_exits_2_with_message() {
        let mut output = Vec::new();
        let failure = execute_json(&br#"{"x": 1}"#[..], &mut output, |p: Point| {
            Ok::<_, String>(p.x)
        })
        .expect_err("missing field");
        assert_eq!(failure.exit_code(), 2);
        let message = failure.to_string();
        assert!(message.starts_with("invalid input: "), "{message}");
        assert!(message.contains("missing field `y`"), "{message}");
        assert!(output.is_empty());
    }

    #[test]
    fn json_trailing_garbage_is_invalid() {
        let failure = execute_json(&b"1 2"[..], Vec::new(), |n: u64| Ok::<_, String>(n))
            .expect_err("two values");
        assert!(matches!(failure, TaskFailure::InvalidInput(_)));
    }

    #[test]
    fn json_task_error_keeps_its_message() {
        let failure = execute_json(&b"7"[..], Vec::new(), |n: u64| {
            Err::<u64, _>(format!("{n} is odd"))
        })
        .expect_err("the task fails");
        assert_eq!(failure.to_string(), "7 is odd");
        assert_eq!(failure.exit_code(), 1);
    }

    #[test]
    fn json_unencodable_output_is_reported() {
        use std::collections::HashMap;
        // JSON object keys must be strings; a tuple key cannot be encoded.
        let failure = execute_json(&b"null"[..], Vec::new(), |(): ()| {
            Ok::<_, String>(HashMap::from([((1, 2), 3)]))
        })
        .expect_err("tuple keys");
        assert!(matches!(failure, TaskFailure::EncodeOutput(_)));
    }

    #[test]
    fn postcard_round_trip() {
        let input = postcard::to_allocvec(&Point { x: 3, y: 4 }).expect("encodable");
        let mut output = Vec::new();
        execute_postcard(&input[..], &mut output, |p: Point| {
            Ok::<_, String>(p.x * p.x + p.y * p.y)
        })
        .expect("valid input");
        let distance: i64 = postcard::from_bytes(&output).expect("decodable");
        assert_eq!(distance, 25);
    }

    #[test]
    fn postcard_truncated_input_is_invalid() {
        let input = postcard::to_allocvec(&Point { x: 300, y: 400 }).expect("encodable");
        let failure = execute_postcard(&input[..input.len() - 1], Vec::new(), |p: Point| {
            Ok::<_, String>(p.x)
        })
        .expect_err("truncated");
        assert_eq!(failure.exit_code(), 2);
        assert!(failure.to_string().starts_with("invalid input: "));
    }

    #[test]
    fn postcard_trailing_bytes_are_invalid() {
        let mut input = postcard::to_allocvec(&Point { x: 1, y: 2 }).expect("encodable");
        input.push(0);
        let failure = execute_postcard(&input[..], Vec::new(), |p: Point| Ok::<_, String>(p.x))
            .expect_err("trailing byte");
        assert!(failure.to_string().contains("1 trailing bytes"));
    }
}
