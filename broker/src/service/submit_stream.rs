//! Reading a streamed submission: one header, then module and reducer chunks
//! and input batches in any order, then the end marker. The stream is
//! checked against the header (sizes, sha256s, task count); a stream that
//! stops before its end marker stores nothing.

use tokio_stream::StreamExt;
use tonic::Streaming;
use wasmgrid_proto::limits_from_wire;
use wasmgrid_proto::v1::submit_workload_request::Part;
use wasmgrid_proto::v1::{SubmitWorkloadRequest, WorkloadHeader};
use wasmgrid_runtime::ModuleHash;

use crate::config::BrokerConfig;
use crate::core::parse_sha256;
use crate::core::{Caller, NewWorkload};
use crate::error::{BrokerError, BrokerResult};

/// Reads a whole submission from the stream.
pub async fn receive(
    stream: &mut Streaming<SubmitWorkloadRequest>,
    config: &BrokerConfig,
    caller: &Caller,
) -> BrokerResult<NewWorkload> {
    let mut header = match next_part(stream).await? {
        Some(Part::Header(header)) => header,
        Some(_) => {
            return Err(BrokerError::invalid(
                "a submission must start with its header",
            ));
        }
        None => return Err(truncated()),
    };
    // Refused before a byte of the module is read: an issuer's token pays
    // only for its own issuer's workloads.
    header.issuer = caller.acting_for(&header.issuer)?;
    let expected = Expected::of(&header, config)?;
    let mut module = Vec::new();
    let mut reducer = Vec::new();
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    let mut input_bytes = 0u64;
    loop {
        match next_part(stream).await? {
            None => return Err(truncated()),
            Some(Part::Header(_)) => {
                return Err(BrokerError::invalid("a submission has one header"));
            }
            Some(Part::ModuleChunk(chunk)) => {
                append(&mut module, &chunk, header.module_size, "module")?
            }
            Some(Part::ReducerChunk(chunk)) => {
                append(&mut reducer, &chunk, header.reducer_size, "reducer")?
            }
            Some(Part::Inputs(batch)) => {
                for input in batch.inputs {
                    input_bytes += input.len() as u64;
                    if input_bytes > config.max_workload_input_bytes {
                        return Err(BrokerError::invalid(format!(
                            "task inputs exceed {} bytes in total",
                            config.max_workload_input_bytes
                        )));
                    }
                    if inputs.len() as u64 >= u64::from(config.max_tasks_per_workload) {
                        return Err(BrokerError::invalid(format!(
                            "at most {} tasks per workload",
                            config.max_tasks_per_workload
                        )));
                    }
                    inputs.push(input);
                }
            }
            Some(Part::End(end)) => {
                if end.task_count as usize != inputs.len() {
                    return Err(BrokerError::invalid(format!(
                        "end marker says {} tasks but {} inputs arrived",
                        end.task_count,
                        inputs.len()
                    )));
                }
                break;
            }
        }
    }
    check_complete(&module, header.module_size, expected.module, "module")?;
    let reducer = match expected.reducer {
        Some(hash) => {
            check_complete(&reducer, header.reducer_size, hash, "reducer")?;
            Some(reducer)
        }
        None if reducer.is_empty() => None,
        None => {
            return Err(BrokerError::invalid(
                "reducer chunks sent without a reducer in the header",
            ));
        }
    };
    Ok(NewWorkload {
        issuer: header.issuer,
        name: header.name,
        limits: limits_from_wire(header.limits.as_ref())
            .map_err(|e| BrokerError::invalid(e.to_string()))?,
        replicas: header.replicas,
        quorum: header.quorum,
        adaptive: header.adaptive_replication,
        max_attempts: header.max_attempts,
        credits_per_fuel: header.credits_per_fuel,
        credits_per_mib_second: header.credits_per_mib_second,
        module,
        reducer,
        inputs,
    })
}

struct Expected {
    module: ModuleHash,
    reducer: Option<ModuleHash>,
}

impl Expected {
    fn of(header: &WorkloadHeader, config: &BrokerConfig) -> BrokerResult<Self> {
        for (size, what) in [
            (header.module_size, "module"),
            (header.reducer_size, "reducer"),
        ] {
            if size > config.max_module_bytes {
                return Err(BrokerError::invalid(format!(
                    "{what} of {size} bytes exceeds the limit of {} bytes",
                    config.max_module_bytes
                )));
            }
        }
        if header.module_size == 0 {
            return Err(BrokerError::invalid("the module is empty"));
        }
        let reducer = if header.reducer_sha256.is_empty() {
            None
        } else {
            Some(parse_sha256(&header.reducer_sha256, "reducer_sha256")?)
        };
        Ok(Expected {
            module: parse_sha256(&header.module_sha256, "module_sha256")?,
            reducer,
        })
    }
}

async fn next_part(stream: &mut Streaming<SubmitWorkloadRequest>) -> BrokerResult<Option<Part>> {
    match stream.next().await {
        None => Ok(None),
        Some(Err(status)) => Err(BrokerError::invalid(format!(
            "submit stream broke: {}; nothing was stored",
            status.message()
        ))),
        Some(Ok(message)) => match message.part {
            Some(part) => Ok(Some(part)),
            None => Err(BrokerError::invalid("empty submit message")),
        },
    }
}

fn truncated() -> BrokerError {
    BrokerError::invalid("submit stream ended before its end marker; nothing was stored")
}

fn append(buffer: &mut Vec<u8>, chunk: &[u8], declared: u64, what: &str) -> BrokerResult<()> {
    if buffer.len() as u64 + chunk.len() as u64 > declared {
        return Err(BrokerError::invalid(format!(
            "{what} is larger than the {declared} bytes declared"
        )));
    }
    buffer.extend_from_slice(chunk);
    Ok(())
}

fn check_complete(bytes: &[u8], declared: u64, hash: ModuleHash, what: &str) -> BrokerResult<()> {
    if bytes.len() as u64 != declared {
        return Err(BrokerError::invalid(format!(
            "{what} truncated: {} of {declared} bytes arrived",
            bytes.len()
        )));
    }
    if ModuleHash::of(bytes) != hash {
        return Err(BrokerError::invalid(format!(
            "{what} does not match its sha256"
        )));
    }
    Ok(())
}
