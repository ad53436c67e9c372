//! The hard memory cap: wasmtime asks this limiter before any linear memory
//! or table grows (including at instantiation), and it refuses with an error
//! that ends the task as `MemoryLimit`.

use wasmtime::ResourceLimiter;

/// Cap on table elements. A table entry costs the host a pointer or more,
/// and no real task needs more than a few thousand indirect-call targets; a
/// million is generous and bounds a table bomb to a few MiB.
pub(crate) const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// The task tried to grow memory or a table past its cap.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (wanted {wanted})")]
pub(crate) struct MemoryCapExceeded {
    pub(crate) limit: u64,
    pub(crate) wanted: u64,
}

/// Enforces [`Limits::memory_bytes`](crate::Limits::memory_bytes) and records
/// the peak.
#[derive(Debug)]
pub(crate) struct MemoryCap {
    limit: u64,
    pub(crate) peak: u64,
}

impl MemoryCap {
    pub(crate) fn new(limit: u64) -> Self {
        MemoryCap { limit, peak: 0 }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let wanted = desired as u64;
        if wanted > self.limit {
            return Err(wasmtime::Error::new(MemoryCapExceeded {
                limit: self.limit,
                wanted,
            }));
        }
        self.peak = self.peak.max(wanted);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            return Err(wasmtime::Error::new(MemoryCapExceeded {
                limit: MAX_TABLE_ELEMENTS as u64,
                wanted: desired as u64,
            }));
        }
        Ok(true)
    }

    /// A task is one module instance: one memory, a few tables.
    fn instances(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }
}
