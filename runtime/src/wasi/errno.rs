//! WASI preview-1 error numbers the sandbox returns, and rights/file types.

/// A WASI `errno` value, returned as the i32 result of a host call.
pub(crate) type Errno = i32;

pub(crate) const SUCCESS: Errno = 0;
pub(crate) const BADF: Errno = 8;
pub(crate) const FAULT: Errno = 21;
pub(crate) const INVAL: Errno = 28;
pub(crate) const NOSYS: Errno = 52;
pub(crate) const NOTSOCK: Errno = 57;
pub(crate) const NOTSUP: Errno = 58;
pub(crate) const SPIPE: Errno = 70;
pub(crate) const NOTCAPABLE: Errno = 76;

/// `filetype::character_device`: what stdin, stdout and stderr look like.
pub(crate) const FILETYPE_CHARACTER_DEVICE: u8 = 2;
/// `rights::fd_read`.
pub(crate) const RIGHT_FD_READ: u64 = 1 << 1;
/// `rights::fd_write`.
pub(crate) const RIGHT_FD_WRITE: u64 = 1 << 6;
/// `rights::poll_fd_readwrite`.
pub(crate) const RIGHT_POLL_FD_READWRITE: u64 = 1 << 27;

/// The three descriptors a task has. There is nothing else: no preopened
/// directories, no sockets.
pub(crate) const STDIN: i32 = 0;
pub(crate) const STDOUT: i32 = 1;
pub(crate) const STDERR: i32 = 2;

/// The answer for an operation on a descriptor that cannot do it: stdio
/// exists but does not support it; any other descriptor does not exist.
pub(crate) fn unsupported_on(fd: i32) -> Errno {
    if (STDIN..=STDERR).contains(&fd) {
        NOTSUP
    } else {
        BADF
    }
}
