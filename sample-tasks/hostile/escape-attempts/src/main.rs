//! Hostile: tries every way out of the sandbox and reports what happened.
//!
//! Outputs one JSON object, each field the result of one attempt: a string
//! starting with `ok:` or `error:` for file, network and raw-WASI attempts,
//! and the observed values for the environment and arguments. Exits 0 even
//! though (in a correct sandbox) every attempt fails, so a test can assert
//! on each result: no file is read or created, `env_count` is 0, `args` is
//! just the program name, and nothing connects or listens.

use std::collections::BTreeMap;
use std::env;
use std::fs;
use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::process;

use serde_json::{Value, json};

#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    /// WASI `sock_accept`: accepts a connection on listening socket `fd`.
    fn sock_accept(fd: u32, flags: u16, result_fd: *mut u32) -> u16;
    /// WASI `path_open`: opens `path` relative to directory `fd`.
    fn path_open(
        fd: u32,
        dirflags: u32,
        path: *const u8,
        path_len: usize,
        oflags: u16,
        fs_rights_base: u64,
        fs_rights_inheriting: u64,
        fdflags: u16,
        opened_fd: *mut u32,
    ) -> u16;
}

/// The file descriptor a WASI runtime gives its first preopened directory
/// or socket, right after stdin, stdout and stderr.
const FIRST_PREOPEN_FD: u32 = 3;

/// Formats the outcome of one attempt.
fn outcome<T, E: std::fmt::Display>(result: Result<T, E>, ok: impl FnOnce(T) -> String) -> Value {
    match result {
        Ok(value) => Value::String(format!("ok: {}", ok(value))),
        Err(error) => Value::String(format!("error: {error}")),
    }
}

/// Formats a WASI errno result, where 0 is success.
fn errno_outcome(errno: u16, fd: u32) -> Value {
    if errno == 0 {
        Value::String(format!("ok: fd {fd}"))
    } else {
        Value::String(format!("error: errno {errno}"))
    }
}

fn raw_sock_accept() -> Value {
    let mut fd = 0;
    // SAFETY: `result_fd` points to a live u32.
    let errno = unsafe { sock_accept(FIRST_PREOPEN_FD, 0, &mut fd) };
    errno_outcome(errno, fd)
}

fn raw_path_open() -> Value {
    let path = b"etc/passwd";
    let mut fd = 0;
    // SAFETY: `path` and its length describe a live byte string, and
    // `opened_fd` points to a live u32. Rights ask for reading only.
    let errno = unsafe {
        path_open(
            FIRST_PREOPEN_FD,
            0,
            path.as_ptr(),
            path.len(),
            0,
            u64::MAX,
            u64::MAX,
            0,
            &mut fd,
        )
    };
    errno_outcome(errno, fd)
}

fn main() {
    let mut attempts = BTreeMap::new();
    attempts.insert(
        "read_file",
        outcome(fs::read_to_string("/etc/passwd"), |text| {
            format!("{} bytes", text.len())
        }),
    );
    attempts.insert(
        "list_root",
        outcome(fs::read_dir("/"), |entries| {
            format!("{} entries", entries.count())
        }),
    );
    attempts.insert(
        "create_file",
        outcome(fs::File::create("x"), |_| "created".to_owned()),
    );
    attempts.insert("env_path", outcome(env::var("PATH"), |path| path));
    attempts.insert("env_count", json!(env::vars_os().count()));
    attempts.insert(
        "args",
        json!(
            env::args_os()
                .map(|arg| arg.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        ),
    );
    attempts.insert(
        "tcp_connect",
        outcome(TcpStream::connect("127.0.0.1:80"), |_| {
            "connected".to_owned()
        }),
    );
    attempts.insert(
        "tcp_bind",
        outcome(TcpListener::bind("127.0.0.1:8080"), |_| "bound".to_owned()),
    );
    attempts.insert("sock_accept", raw_sock_accept());
    attempts.insert("path_open", raw_path_open());

    let report = json!(attempts).to_string();
    let mut stdout = io::stdout().lock();
    if let Err(error) = stdout
        .write_all(report.as_bytes())
        .and_then(|()| stdout.flush())
    {
        eprintln!("cannot write output: {error}");
        process::exit(3);
    }
}
