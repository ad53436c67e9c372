//! Process-level calls: argv (just `task`), an empty environment, exit,
//! `sched_yield`, and the seeded `random_get`.

use wasmtime::{Caller, Linker};

use super::errno::{self, Errno, FAULT, NOSYS};
use super::{ProcExit, TaskState, WASI, charge, guest};

/// The task's `argv[0]`, and its only argument.
const ARGV0: &[u8] = b"task\0";

pub(super) fn add_to_linker(linker: &mut Linker<TaskState>) -> wasmtime::Result<()> {
    linker.func_wrap(WASI, "args_sizes_get", args_sizes_get)?;
    linker.func_wrap(WASI, "args_get", args_get)?;
    linker.func_wrap(WASI, "environ_sizes_get", environ_sizes_get)?;
    linker.func_wrap(WASI, "environ_get", environ_get)?;
    linker.func_wrap(WASI, "proc_exit", proc_exit)?;
    linker.func_wrap(WASI, "proc_raise", proc_raise)?;
    linker.func_wrap(WASI, "sched_yield", sched_yield)?;
    linker.func_wrap(WASI, "random_get", random_get)?;
    Ok(())
}

fn args_sizes_get(
    mut caller: Caller<'_, TaskState>,
    argc_ptr: i32,
    buf_size_ptr: i32,
) -> wasmtime::Result<i32> {
    charge(&mut caller, 0)?;
    let Some((mut mem, _)) = guest(&mut caller) else {
        return Ok(FAULT);
    };
    Ok(super::errno(mem.write_u32(argc_ptr, 1).and_then(|()| {
        mem.write_u32(buf_size_ptr, ARGV0.len() as u32)
    })))
}

fn args_get(
    mut caller: Caller<'_, TaskState>,
    argv_ptr: i32,
    buf_ptr: i32,
) -> wasmtime::Result<i32> {
    charge(&mut caller, ARGV0.len())?;
    let Some((mut mem, _)) = guest(&mut caller) else {
        return Ok(FAULT);
    };
    Ok(super::errno(
        mem.write_u32(argv_ptr, buf_ptr as u32)
            .and_then(|()| mem.write_bytes(buf_ptr, ARGV0)),
    ))
}

fn environ_sizes_get(
    mut caller: Caller<'_, TaskState>,
    count_ptr: i32,
    buf_size_ptr: i32,
) -> wasmtime::Result<i32> {
    charge(&mut caller, 0)?;
    let Some((mut mem, _)) = guest(&mut caller) else {
        return Ok(FAULT);
    };
    Ok(super::errno(
        mem.write_u32(count_ptr, 0)
            .and_then(|()| mem.write_u32(buf_size_ptr, 0)),
    ))
}

fn environ_get(
    mut caller: Caller<'_, TaskState>,
    _environ: i32,
    _buf: i32,
) -> wasmtime::Result<i32> {
    charge(&mut caller, 0)?;
    Ok(errno::SUCCESS)
}

fn proc_exit(_caller: Caller<'_, TaskState>, code: i32) -> wasmtime::Result<()> {
    Err(wasmtime::Error::new(ProcExit(code)))
}

fn proc_raise(mut caller: Caller<'_, TaskState>, _signal: i32) -> wasmtime::Result<i32> {
    charge(&mut caller, 0)?;
    Ok(NOSYS)
}

fn sched_yield(mut caller: Caller<'_, TaskState>) -> wasmtime::Result<i32> {
    charge(&mut caller, 0)?;
    Ok(errno::SUCCESS)
}

fn random_get(mut caller: Caller<'_, TaskState>, buf: i32, len: i32) -> wasmtime::Result<i32> {
    let len = len as u32 as usize;
    charge(&mut caller, len)?;
    let Some((mut mem, state)) = guest(&mut caller) else {
        return Ok(FAULT);
    };
    let result: Result<(), Errno> = mem.slice_mut(buf, len).map(|out| state.random.fill(out));
    Ok(super::errno(result))
}
