//! Filesystem and socket calls. They exist so that every WASI program links,
//! and each one fails: a task has no directories (no preopens) and no
//! sockets. A call on stdio gets `ENOTSUP`, on any other descriptor `EBADF`,
//! and path calls `ENOTCAPABLE`.

use wasmtime::{Caller, Linker};

use super::errno::{NOTCAPABLE, NOTSOCK, unsupported_on};
use super::{TaskState, WASI, charge};

type Call<'a> = Caller<'a, TaskState>;
type Ret = wasmtime::Result<i32>;

/// Charges the call and answers `code`.
fn refuse(caller: &mut Call<'_>, code: i32) -> Ret {
    charge(caller, 0)?;
    Ok(code)
}

fn socket_errno(fd: i32) -> i32 {
    if (0..=2).contains(&fd) {
        NOTSOCK
    } else {
        unsupported_on(fd)
    }
}

pub(super) fn add_to_linker(linker: &mut Linker<TaskState>) -> wasmtime::Result<()> {
    // Descriptor operations only files support.
    linker.func_wrap(
        WASI,
        "fd_advise",
        |mut c: Call<'_>, fd: i32, _: i64, _: i64, _: i32| -> Ret {
            refuse(&mut c, unsupported_on(fd))
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_allocate",
        |mut c: Call<'_>, fd: i32, _: i64, _: i64| -> Ret { refuse(&mut c, unsupported_on(fd)) },
    )?;
    linker.func_wrap(WASI, "fd_datasync", |mut c: Call<'_>, fd: i32| -> Ret {
        refuse(&mut c, unsupported_on(fd))
    })?;
    linker.func_wrap(WASI, "fd_sync", |mut c: Call<'_>, fd: i32| -> Ret {
        refuse(&mut c, unsupported_on(fd))
    })?;
    linker.func_wrap(
        WASI,
        "fd_fdstat_set_flags",
        |mut c: Call<'_>, fd: i32, _: i32| -> Ret { refuse(&mut c, unsupported_on(fd)) },
    )?;
    linker.func_wrap(
        WASI,
        "fd_fdstat_set_rights",
        |mut c: Call<'_>, fd: i32, _: i64, _: i64| -> Ret { refuse(&mut c, unsupported_on(fd)) },
    )?;
    linker.func_wrap(
        WASI,
        "fd_filestat_set_size",
        |mut c: Call<'_>, fd: i32, _: i64| -> Ret { refuse(&mut c, unsupported_on(fd)) },
    )?;
    linker.func_wrap(
        WASI,
        "fd_filestat_set_times",
        |mut c: Call<'_>, fd: i32, _: i64, _: i64, _: i32| -> Ret {
            refuse(&mut c, unsupported_on(fd))
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_readdir",
        |mut c: Call<'_>, fd: i32, _: i32, _: i32, _: i64, _: i32| -> Ret {
            refuse(&mut c, unsupported_on(fd))
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_renumber",
        |mut c: Call<'_>, fd: i32, _: i32| -> Ret { refuse(&mut c, unsupported_on(fd)) },
    )?;

    // Paths: there is no directory to resolve them in.
    linker.func_wrap(
        WASI,
        "path_create_directory",
        |mut c: Call<'_>, _: i32, _: i32, _: i32| -> Ret { refuse(&mut c, NOTCAPABLE) },
    )?;
    linker.func_wrap(
        WASI,
        "path_filestat_get",
        |mut c: Call<'_>, _: i32, _: i32, _: i32, _: i32, _: i32| -> Ret {
            refuse(&mut c, NOTCAPABLE)
        },
    )?;
    linker.func_wrap(
        WASI,
        "path_filestat_set_times",
        |mut c: Call<'_>, _: i32, _: i32, _: i32, _: i32, _: i64, _: i64, _: i32| -> Ret {
            refuse(&mut c, NOTCAPABLE)
        },
    )?;
    linker.func_wrap(
        WASI,
        "path_link",
        |mut c: Call<'_>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| -> Ret {
            refuse(&mut c, NOTCAPABLE)
        },
    )?;
    linker.func_wrap(
        WASI,
        "path_open",
        |mut c: Call<'_>,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i64,
         _: i64,
         _: i32,
         _: i32|
         -> Ret { refuse(&mut c, NOTCAPABLE) },
    )?;
    linker.func_wrap(
        WASI,
        "path_readlink",
        |mut c: Call<'_>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| -> Ret {
            refuse(&mut c, NOTCAPABLE)
        },
    )?;
    linker.func_wrap(
        WASI,
        "path_remove_directory",
        |mut c: Call<'_>, _: i32, _: i32, _: i32| -> Ret { refuse(&mut c, NOTCAPABLE) },
    )?;
    linker.func_wrap(
        WASI,
        "path_rename",
        |mut c: Call<'_>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| -> Ret {
            refuse(&mut c, NOTCAPABLE)
        },
    )?;
    linker.func_wrap(
        WASI,
        "path_symlink",
        |mut c: Call<'_>, _: i32, _: i32, _: i32, _: i32, _: i32| -> Ret {
            refuse(&mut c, NOTCAPABLE)
        },
    )?;
    linker.func_wrap(
        WASI,
        "path_unlink_file",
        |mut c: Call<'_>, _: i32, _: i32, _: i32| -> Ret { refuse(&mut c, NOTCAPABLE) },
    )?;

    // Sockets: a task has none.
    linker.func_wrap(
        WASI,
        "sock_accept",
        |mut c: Call<'_>, fd: i32, _: i32, _: i32| -> Ret { refuse(&mut c, socket_errno(fd)) },
    )?;
    linker.func_wrap(
        WASI,
        "sock_recv",
        |mut c: Call<'_>, fd: i32, _: i32, _: i32, _: i32, _: i32, _: i32| -> Ret {
            refuse(&mut c, socket_errno(fd))
        },
    )?;
    linker.func_wrap(
        WASI,
        "sock_send",
        |mut c: Call<'_>, fd: i32, _: i32, _: i32, _: i32, _: i32| -> Ret {
            refuse(&mut c, socket_errno(fd))
        },
    )?;
    linker.func_wrap(
        WASI,
        "sock_shutdown",
        |mut c: Call<'_>, fd: i32, _: i32| -> Ret { refuse(&mut c, socket_errno(fd)) },
    )?;
    Ok(())
}
