//! Message size limits, shared by every server and client so both ends agree.

/// Largest gRPC message either side accepts, encoded. Big enough for a task
/// output at [`MAX_OUTPUT_BYTES`] plus its envelope and a batch of inputs;
/// small enough that one message cannot exhaust a broker's memory. Modules
/// travel in [`MODULE_CHUNK_BYTES`] chunks, so their size is not bound by it.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Largest `max_output_bytes` a workload may ask for: an output must fit in
/// one report message, with room to spare for stderr and the envelope.
pub const MAX_OUTPUT_BYTES: u64 = 32 << 20;

/// Size of the chunks modules are streamed in, on submit and on fetch; agent
/// builds too (`FetchAgentBuild`).
pub const MODULE_CHUNK_BYTES: usize = 1 << 20;

/// Most reports in one `ReportResults` call.
pub const MAX_REPORTS_PER_CALL: usize = 256;

/// Most bytes of outputs and stderr an agent puts in one `ReportResults`
/// call; a report bigger than this goes alone (by `ReportResult`).
pub const REPORT_BATCH_BYTES: usize = 8 << 20;
