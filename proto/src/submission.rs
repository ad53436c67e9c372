//! A workload as the `SubmitWorkload` client stream: the header, the module
//! and reducer in chunks, the inputs in batches, then the end marker. Built
//! as a plain list so every client (the CLI, tests) sends the same stream
//! and it can be checked without a broker.

use sha2::{Digest, Sha256};
use wasmgrid_runtime::Limits;

use crate::v1::submit_workload_request::Part;
use crate::v1::{SubmitEnd, SubmitWorkloadRequest, TaskInputs, WorkloadHeader};
use crate::{MAX_MESSAGE_BYTES, MODULE_CHUNK_BYTES, limits_to_wire};

/// A workload that cannot be sent as a stream.
#[derive(Debug, thiserror::Error)]
pub enum SubmissionError {
    /// More tasks than a task count can say.
    #[error("{0} tasks are too many")]
    TooManyTasks(usize),
    /// One input cannot fit in a message the broker accepts.
    #[error(
        "input {index} is {len} bytes, above the largest message the broker accepts ({MAX_MESSAGE_BYTES} bytes)"
    )]
    InputTooLarge {
        /// The input's index.
        index: usize,
        /// Its size in bytes.
        len: usize,
    },
}

/// Encoded size at which an inputs batch is closed: far enough under
/// [`MAX_MESSAGE_BYTES`] that a batch never nears the limit, large enough
/// that the per-message overhead does not matter.
pub const INPUT_BATCH_BYTES: usize = 4 << 20;

/// Inputs per batch at most, so many tiny inputs still arrive in steps the
/// broker can check and store as they come.
pub const INPUT_BATCH_COUNT: usize = 1000;

/// Bytes a message may hold beyond one input's own bytes: the field tags and
/// length prefixes of `SubmitWorkloadRequest.inputs.inputs[0]`.
const SINGLE_INPUT_OVERHEAD: usize = 32;

/// Everything the broker needs to run a workload.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Shown in listings; need not be unique.
    pub name: String,
    /// Who pays for the workload.
    pub issuer: String,
    /// The task module.
    pub module: Vec<u8>,
    /// Combines all task outputs into the end result, if given.
    pub reducer: Option<Vec<u8>>,
    /// One per task, in task order.
    pub inputs: Vec<Vec<u8>>,
    /// What each task run may use.
    pub limits: Limits,
    /// Independent runs per task whose results must agree.
    pub replicas: u32,
    /// Runs a task may take before it counts as failed.
    pub max_attempts: u32,
    /// Agreeing results a task needs (at most `replicas`); 0 means all.
    pub quorum: u32,
    /// Accept a trusted agent's run alone, save for spot checks.
    pub adaptive_replication: bool,
    /// The price the issuer offers agents, in credits per unit of fuel.
    pub credits_per_fuel: f64,
    /// The price of memory, in credits per MiB-second of peak memory; 0
    /// prices fuel only.
    pub credits_per_mib_second: f64,
}

impl Workload {
    /// The request stream, in order: header, module chunks, reducer chunks,
    /// inputs batches (each at most [`INPUT_BATCH_COUNT`] inputs and, unless
    /// a single input is larger, [`INPUT_BATCH_BYTES`] encoded), end.
    pub fn into_requests(self) -> Result<Vec<SubmitWorkloadRequest>, SubmissionError> {
        let task_count = u32::try_from(self.inputs.len())
            .map_err(|_| SubmissionError::TooManyTasks(self.inputs.len()))?;
        let (reducer_size, reducer_sha256) = match &self.reducer {
            Some(reducer) => (reducer.len() as u64, sha256_hex(reducer)),
            None => (0, String::new()),
        };
        let header = WorkloadHeader {
            issuer: self.issuer,
            name: self.name,
            limits: Some(limits_to_wire(&self.limits)),
            replicas: self.replicas,
            max_attempts: self.max_attempts,
            module_size: self.module.len() as u64,
            module_sha256: sha256_hex(&self.module),
            reducer_size,
            reducer_sha256,
            credits_per_fuel: self.credits_per_fuel,
            quorum: self.quorum,
            credits_per_mib_second: self.credits_per_mib_second,
            adaptive_replication: self.adaptive_replication,
        };
        let mut requests = vec![request(Part::Header(header))];
        requests.extend(
            self.module
                .chunks(MODULE_CHUNK_BYTES)
                .map(|chunk| request(Part::ModuleChunk(chunk.to_vec()))),
        );
        if let Some(reducer) = &self.reducer {
            requests.extend(
                reducer
                    .chunks(MODULE_CHUNK_BYTES)
                    .map(|chunk| request(Part::ReducerChunk(chunk.to_vec()))),
            );
        }
        requests.extend(input_batches(self.inputs)?);
        requests.push(request(Part::End(SubmitEnd { task_count })));
        Ok(requests)
    }
}

fn input_batches(inputs: Vec<Vec<u8>>) -> Result<Vec<SubmitWorkloadRequest>, SubmissionError> {
    let mut batches = Vec::new();
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut batch_bytes = 0;
    for (index, input) in inputs.into_iter().enumerate() {
        if input.len() + SINGLE_INPUT_OVERHEAD > MAX_MESSAGE_BYTES {
            return Err(SubmissionError::InputTooLarge {
                index,
                len: input.len(),
            });
        }
        let input_bytes = repeated_bytes_len(input.len());
        if !batch.is_empty()
            && (batch.len() == INPUT_BATCH_COUNT || batch_bytes + input_bytes > INPUT_BATCH_BYTES)
        {
            batches.push(inputs_request(std::mem::take(&mut batch)));
            batch_bytes = 0;
        }
        batch_bytes += input_bytes;
        batch.push(input);
    }
    if !batch.is_empty() {
        batches.push(inputs_request(batch));
    }
    Ok(batches)
}

/// Encoded size of one element of a `repeated bytes` field of `len` bytes.
fn repeated_bytes_len(len: usize) -> usize {
    1 + prost::length_delimiter_len(len) + len
}

fn inputs_request(inputs: Vec<Vec<u8>>) -> SubmitWorkloadRequest {
    request(Part::Inputs(TaskInputs { inputs }))
}

fn request(part: Part) -> SubmitWorkloadRequest {
    SubmitWorkloadRequest { part: Some(part) }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    fn workload(inputs: Vec<Vec<u8>>, reducer: Option<Vec<u8>>) -> Workload {
        Workload {
            name: "test".into(),
            issuer: "alice".into(),
            module: vec![7; MODULE_CHUNK_BYTES * 2 + 10],
            reducer,
            inputs,
            limits: Limits::default(),
            replicas: 2,
            max_attempts: 3,
            quorum: 0,
            adaptive_replication: false,
            credits_per_fuel: 1e-9,
            credits_per_mib_second: 0.0,
        }
    }

    fn parts(requests: &[SubmitWorkloadRequest]) -> Vec<&Part> {
        requests
            .iter()
            .map(|request| request.part.as_ref().expect("every request has a part"))
            .collect()
    }

    #[test]
    fn the_stream_is_header_module_reducer_inputs_end() {
        let inputs = vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()];
        let requests = workload(inputs.clone(), Some(vec![9; 5]))
            .into_requests()
            .expect("requests");
        let parts = parts(&requests);
        let Part::Header(header) = parts[0] else {
            panic!("first part is {:?}", parts[0]);
        };
        assert_eq!(header.module_size, (MODULE_CHUNK_BYTES * 2 + 10) as u64);
        assert_eq!(
            header.module_sha256,
            sha256_hex(&vec![7; MODULE_CHUNK_BYTES * 2 + 10])
        );
        assert_eq!(header.reducer_size, 5);
        assert_eq!(header.reducer_sha256, sha256_hex(&[9; 5]));
        assert_eq!(header.limits, Some(limits_to_wire(&Limits::default())));
        assert_eq!((header.replicas, header.max_attempts), (2, 3));
        assert_eq!(header.issuer, "alice");
        let module_chunks: Vec<usize> = parts
            .iter()
            .filter_map(|part| match part {
                Part::ModuleChunk(chunk) => Some(chunk.len()),
                _ => None,
            })
            .collect();
        assert_eq!(module_chunks, [MODULE_CHUNK_BYTES, MODULE_CHUNK_BYTES, 10]);
        assert!(matches!(parts[4], Part::ReducerChunk(chunk) if chunk == &vec![9; 5]));
        assert!(matches!(parts[5], Part::Inputs(batch) if batch.inputs == inputs));
        assert!(matches!(parts[6], Part::End(SubmitEnd { task_count: 3 })));
        assert_eq!(parts.len(), 7);
    }

    #[test]
    fn without_a_reducer_there_are_no_reducer_chunks() {
        let requests = workload(vec![b"x".to_vec()], None)
            .into_requests()
            .expect("requests");
        let parts = parts(&requests);
        let Part::Header(header) = parts[0] else {
            panic!("first part is {:?}", parts[0]);
        };
        assert_eq!(
            (header.reducer_size, header.reducer_sha256.as_str()),
            (0, "")
        );
        assert!(
            !parts
                .iter()
                .any(|part| matches!(part, Part::ReducerChunk(_)))
        );
    }

    #[test]
    fn many_small_inputs_are_batched_by_count() {
        let inputs: Vec<Vec<u8>> = (0..2500).map(|i| format!("{i}").into_bytes()).collect();
        let batches = input_batches(inputs.clone()).expect("batches");
        let sizes: Vec<usize> = parts(&batches)
            .iter()
            .map(|part| match part {
                Part::Inputs(batch) => batch.inputs.len(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(sizes, [1000, 1000, 500]);
        let rejoined: Vec<Vec<u8>> = parts(&batches)
            .into_iter()
            .flat_map(|part| match part {
                Part::Inputs(batch) => batch.inputs.clone(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(rejoined, inputs);
    }

    #[test]
    fn large_inputs_are_batched_by_encoded_size() {
        let inputs = vec![vec![1u8; 1 << 20]; 10];
        let batches = input_batches(inputs).expect("batches");
        let sizes: Vec<usize> = parts(&batches)
            .iter()
            .map(|part| match part {
                Part::Inputs(batch) => batch.inputs.len(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(sizes, [3, 3, 3, 1]);
        for batch in &batches {
            assert!(
                batch.encoded_len() <= INPUT_BATCH_BYTES + 16,
                "{}",
                batch.encoded_len()
            );
        }
    }

    #[test]
    fn an_input_above_the_batch_size_travels_alone_and_one_above_the_message_size_is_refused() {
        let inputs = vec![
            vec![1u8; 10],
            vec![2u8; INPUT_BATCH_BYTES + 1],
            vec![3u8; 10],
        ];
        let batches = input_batches(inputs).expect("batches");
        assert_eq!(batches.len(), 3);
        for batch in &batches {
            assert!(batch.encoded_len() <= MAX_MESSAGE_BYTES);
        }
        let error = input_batches(vec![vec![0u8; MAX_MESSAGE_BYTES]]).expect_err("too big");
        assert!(error.to_string().contains("input 0 is"), "{error}");
    }

    #[test]
    fn the_overhead_bound_holds_for_the_largest_accepted_input() {
        let largest = MAX_MESSAGE_BYTES - SINGLE_INPUT_OVERHEAD;
        let batches = input_batches(vec![vec![0u8; largest]]).expect("accepted");
        assert!(batches[0].encoded_len() <= MAX_MESSAGE_BYTES);
    }
}
