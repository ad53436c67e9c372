//! Descriptors 0, 1 and 2: stdin is the task's input, stdout its result and
//! stderr its diagnostics, both captured in memory up to their caps.

use wasmtime::{Caller, Linker};

use super::errno::{
    BADF, Errno, FAULT, FILETYPE_CHARACTER_DEVICE, RIGHT_FD_READ, RIGHT_FD_WRITE,
    RIGHT_POLL_FD_READWRITE, SPIPE, STDERR, STDIN, STDOUT, SUCCESS,
};
use super::{OutputCapExceeded, TaskState, WASI, charge, errno, guest};

pub(super) fn add_to_linker(linker: &mut Linker<TaskState>) -> wasmtime::Result<()> {
    linker.func_wrap(WASI, "fd_read", fd_read)?;
    linker.func_wrap(WASI, "fd_write", fd_write)?;
    linker.func_wrap(WASI, "fd_fdstat_get", fd_fdstat_get)?;
    linker.func_wrap(WASI, "fd_filestat_get", fd_filestat_get)?;
    linker.func_wrap(WASI, "fd_close", fd_close)?;
    linker.func_wrap(WASI, "fd_prestat_get", fd_prestat_get)?;
    linker.func_wrap(WASI, "fd_prestat_dir_name", fd_prestat_dir_name)?;
    linker.func_wrap(WASI, "fd_seek", fd_seek)?;
    linker.func_wrap(WASI, "fd_tell", fd_tell)?;
    linker.func_wrap(WASI, "fd_pread", fd_pread)?;
    linker.func_wrap(WASI, "fd_pwrite", fd_pwrite)?;
    Ok(())
}

fn is_stdio(fd: i32) -> bool {
    (STDIN..=STDERR).contains(&fd)
}

fn fd_read(
    mut caller: Caller<'_, TaskState>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    nread_ptr: i32,
) -> wasmtime::Result<i32> {
    if fd != STDIN {
        charge(&mut caller, 0)?;
        return Ok(BADF);
    }
    let result = {
        let Some((mut mem, state)) = guest(&mut caller) else {
            return Ok(FAULT);
        };
        let mut copy = || -> Result<usize, Errno> {
            let mut total = 0usize;
            for (buf, len) in mem.iovecs(iovs, iovs_len)? {
                let available = &state.stdin[state.stdin_pos..];
                let n = len.min(available.len());
                mem.slice_mut(buf, n)?.copy_from_slice(&available[..n]);
                state.stdin_pos += n;
                total += n;
                if n < len {
                    break;
                }
            }
            mem.write_u32(nread_ptr, total as u32)?;
            Ok(total)
        };
        copy()
    };
    match result {
        Ok(bytes) => {
            charge(&mut caller, bytes)?;
            Ok(SUCCESS)
        }
        Err(code) => {
            charge(&mut caller, 0)?;
            Ok(code)
        }
    }
}

fn fd_write(
    mut caller: Caller<'_, TaskState>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    nwritten_ptr: i32,
) -> wasmtime::Result<i32> {
    if fd != STDOUT && fd != STDERR {
        charge(&mut caller, 0)?;
        return Ok(BADF);
    }
    let result = {
        let Some((mut mem, state)) = guest(&mut caller) else {
            return Ok(FAULT);
        };
        let (sink, cap) = if fd == STDOUT {
            (&mut state.stdout, state.max_stdout)
        } else {
            (&mut state.stderr, state.max_stderr)
        };
        let mut copy = || -> Result<Result<usize, OutputCapExceeded>, Errno> {
            let iovecs = mem.iovecs(iovs, iovs_len)?;
            let mut total = 0usize;
            for &(buf, len) in &iovecs {
                mem.slice(buf, len)?;
                total = total.saturating_add(len);
            }
            if (sink.len() as u64).saturating_add(total as u64) > cap {
                return Ok(Err(OutputCapExceeded));
            }
            for (buf, len) in iovecs {
                sink.extend_from_slice(mem.slice(buf, len)?);
            }
            mem.write_u32(nwritten_ptr, total as u32)?;
            Ok(Ok(total))
        };
        copy()
    };
    match result {
        Ok(Ok(bytes)) => {
            charge(&mut caller, bytes)?;
            Ok(SUCCESS)
        }
        Ok(Err(over_cap)) => Err(wasmtime::Error::new(over_cap)),
        Err(code) => {
            charge(&mut caller, 0)?;
            Ok(code)
        }
    }
}

fn fd_fdstat_get(mut caller: Caller<'_, TaskState>, fd: i32, buf: i32) -> wasmtime::Result<i32> {
    charge(&mut caller, 0)?;
    let rights = match fd {
        STDIN => RIGHT_FD_READ | RIGHT_POLL_FD_READWRITE,
        STDOUT | STDERR => RIGHT_FD_WRITE | RIGHT_POLL_FD_READWRITE,
        _ => return Ok(BADF),
    };
    let Some((mut mem, _)) = guest(&mut caller) else {
        return Ok(FAULT);
    };
    // struct fdstat { filetype: u8, flags: u16 @2, rights_base: u64 @8,
    // rights_inheriting: u64 @16 }, 24 bytes.
    let mut fdstat = [0u8; 24];
    fdstat[0] = FILETYPE_CHARACTER_DEVICE;
    fdstat[8..16].copy_from_slice(&rights.to_le_bytes());
    Ok(errno(mem.write_bytes(buf, &fdstat)))
}

fn fd_filestat_get(mut caller: Caller<'_, TaskState>, fd: i32, buf: i32) -> wasmtime::Result<i32> {
    charge(&mut caller, 0)?;
    if !is_stdio(fd) {
        return Ok(BADF);
    }
    let Some((mut mem, _)) = guest(&mut caller) else {
        return Ok(FAULT);
    };
    // struct filestat, 64 bytes: only the file type (@16) is not zero.
    let mut filestat = [0u8; 64];
    filestat[16] = FILETYPE_CHARACTER_DEVICE;
    Ok(errno(mem.write_bytes(buf, &filestat)))
}

fn fd_close(mut caller: Caller<'_, TaskState>, fd: i32) -> wasmtime::Result<i32> {
    charge(&mut caller, 0)?;
    // Closing stdio is allowed and has no effect: the host owns the streams.
    Ok(if is_stdio(fd) { SUCCESS } else { BADF })
}

/// There are no preopened directories: libc stops its scan at the first
/// `EBADF`, so the task sees an empty filesystem.
fn fd_prestat_get(mut caller: Caller<'_, TaskState>, _fd: i32, _buf: i32) -> wasmtime::Result<i32> {
    charge(&mut caller, 0)?;
    Ok(BADF)
}

fn fd_prestat_dir_name(
    mut caller: Caller<'_, TaskState>,
    _fd: i32,
    _path: i32,
    _len: i32,
) -> wasmtime::Result<i32> {
    charge(&mut caller, 0)?;
    Ok(BADF)
}

fn fd_seek(
    mut caller: Caller<'_, TaskState>,
    fd: i32,
    _offset: i64,
    _whence: i32,
    _new_offset: i32,
) -> wasmtime::Result<i32> {
    charge(&mut caller, 0)?;
    Ok(if is_stdio(fd) { SPIPE } else { BADF })
}

fn fd_tell(mut caller: Caller<'_, TaskState>, fd: i32, _offset: i32) -> wasmtime::Result<i32> {
    charge(&mut caller, 0)?;
    Ok(if is_stdio(fd) { SPIPE } else { BADF })
}

fn fd_pread(
    mut caller: Caller<'_, TaskState>,
    fd: i32,
    _iovs: i32,
    _iovs_len: i32,
    _offset: i64,
    _nread: i32,
) -> wasmtime::Result<i32> {
    charge(&mut caller, 0)?;
    Ok(if is_stdio(fd) { SPIPE } else { BADF })
}

fn fd_pwrite(
    mut caller: Caller<'_, TaskState>,
    fd: i32,
    _iovs: i32,
    _iovs_len: i32,
    _offset: i64,
    _nwritten: i32,
) -> wasmtime::Result<i32> {
    charge(&mut caller, 0)?;
    Ok(if is_stdio(fd) { SPIPE } else { BADF })
}
