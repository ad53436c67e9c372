//! Decoding requests and the wire conversions the broker applies to them,
//! with the invariants both must keep.

use prost::Message;
use wasmgrid_broker::core::parse_sha256;
use wasmgrid_proto::v1::{self, submit_workload_request::Part};
use wasmgrid_proto::{
    limits_from_wire, limits_to_wire, status_from_wire, status_to_wire, usage_from_wire,
    usage_to_wire,
};

/// `bytes` as an `M`, as tonic's prost codec decodes a request, or `None`.
/// A message that decodes must re-encode to bytes that decode to the same
/// message (compared encoded, as doubles may be NaN).
pub(crate) fn decode<M: Message + Default>(bytes: &[u8]) -> Option<M> {
    let message = M::decode(bytes).ok()?;
    let encoded = message.encode_to_vec();
    assert_eq!(encoded.len(), message.encoded_len(), "encoded_len is wrong");
    let again = M::decode(encoded.as_slice())
        .unwrap_or_else(|error| panic!("a re-encoded message does not decode: {error}"));
    assert_eq!(
        again.encode_to_vec(),
        encoded,
        "re-encoding a decoded message is not stable"
    );
    Some(message)
}

/// `limits_from_wire`, as the submit stream applies it to a header; limits
/// it accepts go back to the same wire limits.
pub(crate) fn check_limits(wire: Option<&v1::Limits>) {
    let Ok(limits) = limits_from_wire(wire) else {
        return;
    };
    let back = limits_to_wire(&limits);
    assert_eq!(Some(&back), wire, "limits do not round-trip");
}

/// `status_from_wire`, as `ReportResult` applies it; a status it accepts
/// goes to the wire and back unchanged.
pub(crate) fn check_status(wire: Option<&v1::TaskStatus>) {
    let Ok(status) = status_from_wire(wire) else {
        return;
    };
    let back = status_to_wire(&status);
    assert_eq!(
        wire.map(|wire| wire.kind),
        Some(back.kind),
        "status kind changes on the way back"
    );
    let again = status_from_wire(Some(&back))
        .unwrap_or_else(|error| panic!("a status sent back is refused: {error}"));
    assert_eq!(again, status, "status does not round-trip");
}

/// `usage_from_wire`, as `ReportResult` applies it (including the wall
/// time in whole milliseconds it stores).
pub(crate) fn check_usage(wire: Option<&v1::Usage>) {
    let Ok((usage, metering_version)) = usage_from_wire(wire) else {
        return;
    };
    let Some(wire) = wire else {
        panic!("usage_from_wire accepted a missing usage");
    };
    assert_eq!(metering_version, wire.metering_version);
    let wall_time_ms = u64::try_from(usage.wall_time.as_millis()).unwrap_or(u64::MAX);
    assert_eq!(wall_time_ms, wire.wall_time_ms, "wall time changes");
    let back = usage_to_wire(&usage);
    assert_eq!(
        (
            back.fuel_consumed,
            back.peak_memory_bytes,
            back.wall_time_ms,
            back.output_bytes
        ),
        (
            wire.fuel_consumed,
            wire.peak_memory_bytes,
            wire.wall_time_ms,
            wire.output_bytes
        ),
        "usage does not round-trip"
    );
}

/// `parse_sha256`, as `FetchModule` and the submit stream apply it.
pub(crate) fn check_sha256(text: &str) {
    if let Ok(hash) = parse_sha256(text, "sha256") {
        assert!(
            hash.to_hex().eq_ignore_ascii_case(text),
            "{text:?} parsed as {hash}"
        );
    }
}

/// The checks the broker makes on a part of a submit stream before it
/// touches the store.
pub(crate) fn check_submit_part(request: &v1::SubmitWorkloadRequest) {
    if let Some(Part::Header(header)) = &request.part {
        check_limits(header.limits.as_ref());
        check_sha256(&header.module_sha256);
        check_sha256(&header.reducer_sha256);
    }
}

/// `ReportResult`'s conversions.
pub(crate) fn check_report(request: &v1::ReportResultRequest) {
    check_status(request.status.as_ref());
    check_usage(request.usage.as_ref());
}

/// `data` decoded as every request message of `AgentService`,
/// `IssuerService` and `AdminService`; each one that decodes goes through
/// the conversions and checks its RPC applies before touching the store.
/// No broker is involved: this target is fast and exhaustive over types.
pub fn request_decoding(data: &[u8]) {
    // AgentService.
    decode::<v1::RegisterRequest>(data);
    decode::<v1::RequestWorkRequest>(data);
    decode::<v1::AcceptOffersRequest>(data);
    if let Some(request) = decode::<v1::FetchModuleRequest>(data) {
        check_sha256(&request.sha256);
    }
    decode::<v1::ExtendLeaseRequest>(data);
    if let Some(request) = decode::<v1::ReportResultRequest>(data) {
        check_report(&request);
    }
    decode::<v1::ReleaseLeaseRequest>(data);
    decode::<v1::EarningsRequest>(data);
    // IssuerService.
    if let Some(request) = decode::<v1::SubmitWorkloadRequest>(data) {
        check_submit_part(&request);
    }
    decode::<v1::WorkloadRequest>(data);
    decode::<v1::BalanceRequest>(data);
    decode::<v1::LedgerRequest>(data);
    // AdminService.
    decode::<v1::ListAgentsRequest>(data);
    decode::<v1::ListWorkloadsRequest>(data);
    decode::<v1::GrantCreditsRequest>(data);
    decode::<v1::ListAccountsRequest>(data);
    // The common messages the requests embed, on their own.
    if let Some(limits) = decode::<v1::Limits>(data) {
        check_limits(Some(&limits));
    }
    if let Some(status) = decode::<v1::TaskStatus>(data) {
        check_status(Some(&status));
    }
    if let Some(usage) = decode::<v1::Usage>(data) {
        check_usage(Some(&usage));
    }
}
