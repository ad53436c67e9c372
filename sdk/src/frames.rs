//! The framing of a reducer's input: every task output of a workload, in
//! task order.
//!
//! Format: for each output, its length as a `u32` little-endian followed by
//! its bytes, concatenated, nothing else — no count, no padding, no trailer.
//! It is trivial to write in any language and lets a reducer borrow each
//! output without copying. An empty input is a workload with no tasks.

use std::fmt::{self, Display};
use std::io::{self, Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::execute::{decode_json, read_all, write_all};
use crate::failure::TaskFailure;
use crate::run::finish;

/// Size of the length prefix of each frame.
const HEADER_BYTES: usize = 4;

/// Why a reducer input is not a valid sequence of frames.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The input ends inside a length prefix.
    TruncatedHeader {
        /// Index of the frame whose header is cut.
        frame: usize,
        /// Bytes left where 4 were needed.
        available: usize,
    },
    /// The input ends before the bytes a length prefix announced.
    TruncatedBody {
        /// Index of the frame whose body is cut.
        frame: usize,
        /// Length announced by the frame's header.
        declared: u32,
        /// Bytes actually left after the header.
        available: usize,
    },
}

impl Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TruncatedHeader { frame, available } => write!(
                f,
                "frame {frame}: truncated length header ({available} of {HEADER_BYTES} bytes)"
            ),
            Self::TruncatedBody {
                frame,
                declared,
                available,
            } => write!(
                f,
                "frame {frame}: truncated body ({available} of {declared} bytes)"
            ),
        }
    }
}

impl std::error::Error for FrameError {}

/// Frames `items` in order, as the broker does with a workload's outputs.
///
/// # Panics
///
/// If an item is longer than `u32::MAX` bytes: task outputs are capped far
/// below that, so this is a bug of the caller, not a data error.
pub fn encode<T: AsRef<[u8]>>(items: &[T]) -> Vec<u8> {
    let total = items
        .iter()
        .map(|item| HEADER_BYTES + item.as_ref().len())
        .sum();
    let mut framed = Vec::with_capacity(total);
    for item in items {
        let item = item.as_ref();
        let length = u32::try_from(item.len()).expect("a frame is at most u32::MAX bytes");
        framed.extend_from_slice(&length.to_le_bytes());
        framed.extend_from_slice(item);
    }
    framed
}

/// Splits a reducer input into its frames, borrowing from `bytes`.
///
/// Every byte must belong to a frame: a cut header or body is an error, as it
/// means the input was damaged or is not framed at all.
pub fn decode(bytes: &[u8]) -> Result<Vec<&[u8]>, FrameError> {
    let mut frames = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let frame = frames.len();
        let Some((header, after_header)) = rest.split_first_chunk::<HEADER_BYTES>() else {
            return Err(FrameError::TruncatedHeader {
                frame,
                available: rest.len(),
            });
        };
        let declared = u32::from_le_bytes(*header);
        // On 16-bit targets a length may not fit usize; it cannot fit the
        // input either, so report it as truncated.
        let body_length = usize::try_from(declared).unwrap_or(usize::MAX);
        if after_header.len() < body_length {
            return Err(FrameError::TruncatedBody {
                frame,
                declared,
                available: after_header.len(),
            });
        }
        let (body, after_body) = after_header.split_at(body_length);
        frames.push(body);
        rest = after_body;
    }
    Ok(frames)
}

/// Runs a reducer whose task outputs are JSON values of type `O`: stdin is
/// decoded as frames, each frame as `O`, and `f`'s result goes to stdout as
/// JSON.
///
/// A malformed frame or an undecodable output is invalid input (exit 2),
/// with the frame index in the message; an error from `f` exits 1.
pub fn run_reducer_json<O, R, E, F>(f: F)
where
    O: DeserializeOwned,
    R: Serialize,
    F: FnOnce(Vec<O>) -> Result<R, E>,
    E: Display,
{
    finish(execute_reducer_json(
        io::stdin().lock(),
        io::stdout().lock(),
        f,
    ));
}

/// The testable core of [`run_reducer_json`].
pub fn execute_reducer_json<O, R, E, F>(
    input: impl Read,
    output: impl Write,
    f: F,
) -> Result<(), TaskFailure>
where
    O: DeserializeOwned,
    R: Serialize,
    F: FnOnce(Vec<O>) -> Result<R, E>,
    E: Display,
{
    let bytes = read_all(input)?;
    let frames = decode(&bytes).map_err(|error| TaskFailure::InvalidInput(error.to_string()))?;
    let values = frames
        .iter()
        .enumerate()
        .map(|(index, frame)| {
            decode_json(frame).map_err(|failure| match failure {
                TaskFailure::InvalidInput(message) => {
                    TaskFailure::InvalidInput(format!("frame {index}: {message}"))
                }
                other => other,
            })
        })
        .collect::<Result<Vec<O>, _>>()?;
    let result = f(values).map_err(|error| TaskFailure::Task(error.to_string()))?;
    let encoded = serde_json::to_vec(&result)
        .map_err(|error| TaskFailure::EncodeOutput(error.to_string()))?;
    write_all(output, &encoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_list_is_empty_input() {
        let framed = encode::<&[u8]>(&[]);
        assert!(framed.is_empty());
        assert_eq!(decode(&framed), Ok(vec![]));
    }

    #[test]
    fn empty_item_is_just_a_header() {
        let framed = encode(&[b""]);
        assert_eq!(framed, [0, 0, 0, 0]);
        assert_eq!(decode(&framed), Ok(vec![&b""[..]]));
    }

    #[test]
    fn round_trip_keeps_order_and_bytes() {
        let items: Vec<Vec<u8>> = vec![b"one".to_vec(), vec![], vec![0xff; 300], b"4".to_vec()];
        let framed = encode(&items);
        assert_eq!(framed.len(), 4 * 4 + 3 + 300 + 1);
        let decoded = decode(&framed).expect("well framed");
        assert_eq!(decoded, items.iter().map(Vec::as_slice).collect::<Vec<_>>());
    }

    #[test]
    fn length_is_little_endian() {
        let framed = encode(&[vec![7u8; 258]]);
        assert_eq!(&framed[..4], &[2, 1, 0, 0]);
    }

    #[test]
    fn truncated_header_is_an_error() {
        let mut framed = encode(&[b"ab"]);
        framed.extend_from_slice(&[1, 0]);
        assert_eq!(
            decode(&framed),
            Err(FrameError::TruncatedHeader {
                frame: 1,
                available: 2
            })
        );
    }

    #[test]
    fn truncated_body_is_an_error() {
        let framed = encode(&[&b"abc"[..], b"defg"]);
        let cut = &framed[..framed.len() - 1];
        let error = decode(cut).expect_err("body cut");
        assert_eq!(
            error,
            FrameError::TruncatedBody {
                frame: 1,
                declared: 4,
                available: 3
            }
        );
        assert_eq!(error.to_string(), "frame 1: truncated body (3 of 4 bytes)");
    }

    #[test]
    fn huge_declared_length_is_truncated_not_a_panic() {
        assert!(matches!(
            decode(&[0xff, 0xff, 0xff, 0xff, 1]),
            Err(FrameError::TruncatedBody {
                declared: u32::MAX,
                ..
            })
        ));
    }

    #[test]
    fn reducer_sums_json_outputs() {
        let framed = encode(&[&b"1"[..], b"20", b" 300 "]);
        let mut output = Vec::new();
        execute_reducer_json(&framed[..], &mut output, |values: Vec<u64>| {
            Ok::<_, String>(values.iter().sum::<u64>())
        })
        .expect("valid frames");
        assert_eq!(output, b"321");
    }

    #[test]
    fn reducer_of_no_tasks_gets_an_empty_list() {
        let mut output = Vec::new();
        execute_reducer_json(&b""[..], &mut output, |values: Vec<u64>| {
            Ok::<_, String>(values.len())
        })
        .expect("empty input is valid");
        assert_eq!(output, b"0");
    }

    #[test]
    fn reducer_names_the_bad_frame() {
        let framed = encode(&[&b"1"[..], b"oops"]);
        let failure = execute_reducer_json(&framed[..], Vec::new(), |values: Vec<u64>| {
            Ok::<_, String>(values.len())
        })
        .expect_err("frame 1 is not a number");
        assert_eq!(failure.exit_code(), 2);
        let message = failure.to_string();
        assert!(message.starts_with("invalid input: frame 1: "), "{message}");
    }

    #[test]
    fn reducer_rejects_bad_framing() {
        let failure = execute_reducer_json(&[1, 0][..], Vec::new(), |values: Vec<u64>| {
            Ok::<_, String>(values.len())
        })
        .expect_err("cut header");
        assert_eq!(
            failure.to_string(),
            "invalid input: frame 0: truncated length header (2 of 4 bytes)"
        );
    }
}
