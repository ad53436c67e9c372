//! Bounds-checked access to the task's linear memory from host calls. Every
//! pointer a task passes is untrusted: out of bounds means `EFAULT`, never a
//! host panic.

use super::errno::{Errno, FAULT, INVAL};

/// Most iovecs one `fd_read`/`fd_write` may pass (POSIX `IOV_MAX`).
pub(crate) const IOV_MAX: usize = 1024;

/// A view of the task's memory during one host call.
pub(crate) struct GuestMemory<'a>(pub(crate) &'a mut [u8]);

impl GuestMemory<'_> {
    fn range(&self, ptr: i32, len: usize) -> Result<std::ops::Range<usize>, Errno> {
        let start = ptr as u32 as usize;
        let end = start.checked_add(len).ok_or(FAULT)?;
        if end > self.0.len() {
            return Err(FAULT);
        }
        Ok(start..end)
    }

    /// The `len` bytes at `ptr`.
    pub(crate) fn slice(&self, ptr: i32, len: usize) -> Result<&[u8], Errno> {
        let range = self.range(ptr, len)?;
        Ok(&self.0[range])
    }

    /// The `len` bytes at `ptr`, writable.
    pub(crate) fn slice_mut(&mut self, ptr: i32, len: usize) -> Result<&mut [u8], Errno> {
        let range = self.range(ptr, len)?;
        Ok(&mut self.0[range])
    }

    pub(crate) fn read_u32(&self, ptr: i32) -> Result<u32, Errno> {
        let bytes = self.slice(ptr, 4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    pub(crate) fn read_u64(&self, ptr: i32) -> Result<u64, Errno> {
        let bytes = self.slice(ptr, 8)?;
        let mut word = [0u8; 8];
        word.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(word))
    }

    pub(crate) fn read_u16(&self, ptr: i32) -> Result<u16, Errno> {
        let bytes = self.slice(ptr, 2)?;
        Ok(u16::from_le_bytes([bytes[0], bytes[1]]))
    }

    pub(crate) fn read_u8(&self, ptr: i32) -> Result<u8, Errno> {
        Ok(self.slice(ptr, 1)?[0])
    }

    pub(crate) fn write_bytes(&mut self, ptr: i32, bytes: &[u8]) -> Result<(), Errno> {
        self.slice_mut(ptr, bytes.len())?.copy_from_slice(bytes);
        Ok(())
    }

    pub(crate) fn write_u32(&mut self, ptr: i32, value: u32) -> Result<(), Errno> {
        self.write_bytes(ptr, &value.to_le_bytes())
    }

    pub(crate) fn write_u64(&mut self, ptr: i32, value: u64) -> Result<(), Errno> {
        self.write_bytes(ptr, &value.to_le_bytes())
    }

    /// The (pointer, length) pairs of an iovec array of `count` entries, at
    /// most [`IOV_MAX`] of them (as POSIX allows), so a task cannot make the
    /// host allocate in proportion to its memory.
    pub(crate) fn iovecs(&self, ptr: i32, count: i32) -> Result<Vec<(i32, usize)>, Errno> {
        let count = count as u32 as usize;
        if count > IOV_MAX {
            return Err(INVAL);
        }
        (0..count)
            .map(|i| {
                let at = ptr.wrapping_add((i * 8) as i32);
                let buf = self.read_u32(at)? as i32;
                let len = self.read_u32(at.wrapping_add(4))? as usize;
                Ok((buf, len))
            })
            .collect()
    }
}
