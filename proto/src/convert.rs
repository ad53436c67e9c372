//! Conversions between the runtime's types and their wire form.

use std::time::Duration;

use wasmgrid_runtime::{Limits, Status, Usage};

use crate::v1;

/// A wire message that does not describe a valid value.
#[derive(Debug, thiserror::Error)]
pub enum ConversionError {
    /// A required field was absent.
    #[error("missing field `{0}`")]
    Missing(&'static str),
    /// A field's value is out of range.
    #[error("invalid field `{field}`: {why}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        why: String,
    },
}

/// Limits to the wire.
pub fn limits_to_wire(limits: &Limits) -> v1::Limits {
    v1::Limits {
        memory_bytes: limits.memory_bytes,
        fuel: limits.fuel,
        wall_time_ms: u64::try_from(limits.wall_time.as_millis()).unwrap_or(u64::MAX),
        max_output_bytes: limits.max_output_bytes,
        max_stack_bytes: limits.max_stack_bytes as u64,
    }
}

/// Limits from the wire (ranges are checked by whoever runs the task).
pub fn limits_from_wire(limits: Option<&v1::Limits>) -> Result<Limits, ConversionError> {
    let limits = limits.ok_or(ConversionError::Missing("limits"))?;
    Ok(Limits {
        memory_bytes: limits.memory_bytes,
        fuel: limits.fuel,
        wall_time: Duration::from_millis(limits.wall_time_ms),
        max_output_bytes: limits.max_output_bytes,
        max_stack_bytes: usize::try_from(limits.max_stack_bytes).map_err(|_| {
            ConversionError::Invalid {
                field: "max_stack_bytes",
                why: "does not fit this machine".into(),
            }
        })?,
    })
}

/// Usage to the wire.
pub fn usage_to_wire(usage: &Usage) -> v1::Usage {
    v1::Usage {
        fuel_consumed: usage.fuel_consumed,
        peak_memory_bytes: usage.peak_memory_bytes,
        wall_time_ms: u64::try_from(usage.wall_time.as_millis()).unwrap_or(u64::MAX),
        output_bytes: usage.output_bytes,
        metering_version: usage.metering_version.to_owned(),
    }
}

/// Usage from the wire; the metering version is returned apart, as the
/// runtime's `Usage` only carries its own (static) version.
pub fn usage_from_wire(usage: Option<&v1::Usage>) -> Result<(Usage, String), ConversionError> {
    let usage = usage.ok_or(ConversionError::Missing("usage"))?;
    Ok((
        Usage {
            fuel_consumed: usage.fuel_consumed,
            peak_memory_bytes: usage.peak_memory_bytes,
            wall_time: Duration::from_millis(usage.wall_time_ms),
            output_bytes: usage.output_bytes,
            metering_version: "",
        },
        usage.metering_version.clone(),
    ))
}

/// Status to the wire.
pub fn status_to_wire(status: &Status) -> v1::TaskStatus {
    use v1::TaskStatusKind as Kind;
    let (kind, exit_code, message) = match status {
        Status::Ok => (Kind::Ok, 0, String::new()),
        Status::ExitCode(code) => (Kind::ExitCode, *code, String::new()),
        Status::OutOfFuel => (Kind::OutOfFuel, 0, String::new()),
        Status::MemoryLimit => (Kind::MemoryLimit, 0, String::new()),
        Status::Timeout => (Kind::Timeout, 0, String::new()),
        Status::OutputLimit => (Kind::OutputLimit, 0, String::new()),
        Status::Trap(msg) => (Kind::Trap, 0, msg.clone()),
        Status::InvalidModule(msg) => (Kind::InvalidModule, 0, msg.clone()),
    };
    v1::TaskStatus {
        kind: kind as i32,
        exit_code,
        message,
    }
}

/// Status from the wire.
pub fn status_from_wire(status: Option<&v1::TaskStatus>) -> Result<Status, ConversionError> {
    use v1::TaskStatusKind as Kind;
    let status = status.ok_or(ConversionError::Missing("status"))?;
    let kind = Kind::try_from(status.kind).map_err(|_| ConversionError::Invalid {
        field: "status.kind",
        why: format!("unknown value {}", status.kind),
    })?;
    Ok(match kind {
        Kind::Unspecified => {
            return Err(ConversionError::Invalid {
                field: "status.kind",
                why: "unspecified".into(),
            });
        }
        Kind::Ok => Status::Ok,
        Kind::ExitCode => Status::ExitCode(status.exit_code),
        Kind::OutOfFuel => Status::OutOfFuel,
        Kind::MemoryLimit => Status::MemoryLimit,
        Kind::Timeout => Status::Timeout,
        Kind::OutputLimit => Status::OutputLimit,
        Kind::Trap => Status::Trap(status.message.clone()),
        Kind::InvalidModule => Status::InvalidModule(status.message.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for status in [
            Status::Ok,
            Status::ExitCode(-3),
            Status::OutOfFuel,
            Status::MemoryLimit,
            Status::Timeout,
            Status::OutputLimit,
            Status::Trap("unreachable".into()),
            Status::InvalidModule("no _start".into()),
        ] {
            let wire = status_to_wire(&status);
            assert_eq!(status_from_wire(Some(&wire)).expect("valid"), status);
        }
        let bogus = v1::TaskStatus {
            kind: 99,
            ..v1::TaskStatus::default()
        };
        assert!(status_from_wire(Some(&bogus)).is_err());
        assert!(status_from_wire(None).is_err());
    }

    #[test]
    fn limits_round_trip() {
        let limits = Limits::default();
        assert_eq!(
            limits_from_wire(Some(&limits_to_wire(&limits))).expect("valid"),
            limits
        );
    }
}
