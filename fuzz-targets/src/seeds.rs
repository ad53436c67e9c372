//! Seed inputs of every target: valid inputs that reach deep into the code,
//! and a few near misses. `cargo run -p wasmgrid-fuzz-targets --bin
//! write-seeds -- fuzz/corpus` writes them where `cargo fuzz` looks.

use std::path::{Path, PathBuf};
use std::time::Duration;

use prost::Message;
use wasmgrid_proto::submission::Workload;
use wasmgrid_proto::v1::{self, submit_workload_request::Part};
use wasmgrid_runtime::Limits;

use crate::fixture::{ISSUER, LEASE, MODULE, WORKLOAD, noop_module};
use crate::services::{encode_parts, grpc_body};

/// The seeds of `target`, generated; empty for an unknown target.
pub fn for_target(target: &str) -> Vec<Vec<u8>> {
    match target {
        "module_loading" => modules(),
        "request_decoding" => request_messages(),
        "agent_service" => agent_requests(),
        "issuer_service" => issuer_requests(),
        "admin_service" => admin_requests(),
        "submit_workload" => submissions(),
        _ => Vec::new(),
    }
}

/// Seed files of `target` kept in the repository, beyond the generated
/// ones: for `module_loading`, the hand-written hostile modules of
/// `sample-tasks/hostile/` (`.wat` compiled, `.wasm` as is).
pub fn repository_files(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    if target != "module_loading" {
        return Vec::new();
    }
    let dir = repository_root().join("sample-tasks/hostile");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let bytes = match path.extension()?.to_str()? {
                "wat" => wat::parse_file(&path).ok()?,
                "wasm" => std::fs::read(&path).ok()?,
                _ => return None,
            };
            Some((path, bytes))
        })
        .collect()
}

/// The repository this crate is in.
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap_or_else(|error| panic!("seed module: {error}\n{text}"))
}

/// Modules: every kind of ending a task can have, every host function the
/// sandbox provides (with sane and hostile arguments), and modules the
/// runtime must refuse.
fn modules() -> Vec<Vec<u8>> {
    let mut seeds = vec![
        Vec::new(),
        b"\0asm".to_vec(),
        b"\0asm\x01\0\0\0".to_vec(),
        noop_module(),
    ];
    let texts = [
        // Hello on stdout and stderr.
        r#"(module
            (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 1)
            (data (i32.const 16) "hello\n")
            (func (export "_start")
              (i32.store (i32.const 0) (i32.const 16))
              (i32.store (i32.const 4) (i32.const 6))
              (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
              (drop (call $w (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        // Echo: stdin to stdout, in 16-byte reads.
        r#"(module
            (import "wasi_snapshot_preview1" "fd_read" (func $r (param i32 i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 1)
            (func (export "_start")
              (loop $more
                (i32.store (i32.const 0) (i32.const 64))
                (i32.store (i32.const 4) (i32.const 16))
                (drop (call $r (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
                (if (i32.gt_u (i32.load (i32.const 8)) (i32.const 0))
                  (then
                    (i32.store (i32.const 4) (i32.load (i32.const 8)))
                    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 12)))
                    (br $more))))))"#,
        // Every host function, with sane arguments, then hostile ones.
        r#"(module
            (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "fd_pread" (func $fd_pread (param i32 i32 i32 i64 i32) (result i32)))
            (import "wasi_snapshot_preview1" "fd_pwrite" (func $fd_pwrite (param i32 i32 i32 i64 i32) (result i32)))
            (import "wasi_snapshot_preview1" "fd_seek" (func $fd_seek (param i32 i64 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "fd_tell" (func $fd_tell (param i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
            (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fd_fdstat_get (param i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "fd_filestat_get" (func $fd_filestat_get (param i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "fd_prestat_dir_name" (func $fd_prestat_dir_name (param i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "clock_res_get" (func $clock_res_get (param i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
            (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "sched_yield" (func $sched_yield (result i32)))
            (import "wasi_snapshot_preview1" "proc_raise" (func $proc_raise (param i32) (result i32)))
            (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
            (memory (export "memory") 1)
            (data (i32.const 256) "data")
            (func (export "_start")
              (i32.store (i32.const 0) (i32.const 256))
              (i32.store (i32.const 4) (i32.const 4))
              (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
              (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
              (drop (call $fd_pread (i32.const 0) (i32.const 0) (i32.const 1) (i64.const 0) (i32.const 8)))
              (drop (call $fd_pwrite (i32.const 1) (i32.const 0) (i32.const 1) (i64.const 0) (i32.const 8)))
              (drop (call $fd_seek (i32.const 0) (i64.const 1) (i32.const 0) (i32.const 8)))
              (drop (call $fd_tell (i32.const 0) (i32.const 8)))
              (drop (call $fd_fdstat_get (i32.const 1) (i32.const 32)))
              (drop (call $fd_filestat_get (i32.const 1) (i32.const 64)))
              (drop (call $fd_prestat_get (i32.const 3) (i32.const 32)))
              (drop (call $fd_prestat_dir_name (i32.const 3) (i32.const 32) (i32.const 8)))
              (drop (call $args_sizes_get (i32.const 32) (i32.const 36)))
              (drop (call $args_get (i32.const 32) (i32.const 64)))
              (drop (call $environ_sizes_get (i32.const 32) (i32.const 36)))
              (drop (call $environ_get (i32.const 32) (i32.const 64)))
              (drop (call $clock_res_get (i32.const 0) (i32.const 32)))
              (drop (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 32)))
              (drop (call $poll_oneoff (i32.const 512) (i32.const 1024) (i32.const 1) (i32.const 32)))
              (drop (call $random_get (i32.const 2048) (i32.const 64)))
              (drop (call $sched_yield))
              (drop (call $fd_close (i32.const 5)))
              ;; Hostile: pointers at and past the end of memory, huge lengths.
              (drop (call $fd_write (i32.const 1) (i32.const 65532) (i32.const 2) (i32.const 65535)))
              (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const -1) (i32.const 8)))
              (drop (call $fd_read (i32.const 0) (i32.const -8) (i32.const 1) (i32.const 8)))
              (drop (call $random_get (i32.const 65000) (i32.const 1000)))
              (drop (call $random_get (i32.const 0) (i32.const -1)))
              (drop (call $poll_oneoff (i32.const 0) (i32.const 0) (i32.const 100000) (i32.const 32)))
              (drop (call $clock_time_get (i32.const 7) (i64.const -1) (i32.const 65535)))
              (drop (call $args_get (i32.const -4) (i32.const -4)))
              (drop (call $fd_prestat_dir_name (i32.const 3) (i32.const 65535) (i32.const 65535)))
              (drop (call $proc_raise (i32.const 9)))
              (call $proc_exit (i32.const 0))))"#,
        // Grows memory until refused.
        r#"(module
            (memory (export "memory") 1)
            (func (export "_start")
              (loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))))"#,
        // Grows memory by a huge amount at once.
        r#"(module
            (memory (export "memory") 1)
            (func (export "_start") (drop (memory.grow (i32.const 65535)))))"#,
        // Initial memory above the 1 MiB limit.
        r#"(module (memory (export "memory") 32) (func (export "_start")))"#,
        // A data segment past the end of memory.
        r#"(module (memory (export "memory") 1) (data (i32.const 65534) "abcd") (func (export "_start")))"#,
        // No memory export at all, yet writes.
        r#"(module
            (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
            (func (export "_start") (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        // Loops forever.
        r#"(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))"#,
        // Traps.
        r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#,
        r#"(module (memory (export "memory") 1)
            (func (export "_start") (drop (i32.div_s (i32.const 1) (i32.const 0)))))"#,
        r#"(module (memory (export "memory") 1)
            (func (export "_start") (drop (i32.load (i32.const 70000)))))"#,
        // Exits with a code.
        r#"(module
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (memory (export "memory") 1)
            (func (export "_start") (call $exit (i32.const 3))))"#,
        // Writes until the output cap.
        r#"(module
            (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 1)
            (func (export "_start")
              (i32.store (i32.const 0) (i32.const 0))
              (i32.store (i32.const 4) (i32.const 65536))
              (loop $l (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))) (br $l))))"#,
        // Recurses without end.
        r#"(module
            (memory (export "memory") 1)
            (func $r (param i32) (result i32) (i32.add (call $r (local.get 0)) (i32.const 1)))
            (func (export "_start") (drop (call $r (i32.const 0)))))"#,
        // Grows a table until refused.
        r#"(module
            (table $t 0 funcref)
            (memory (export "memory") 1)
            (func (export "_start")
              (loop $l (br_if $l (i32.ne (table.grow $t (ref.null func) (i32.const 100000)) (i32.const -1))))))"#,
        // Indirect calls, globals, bulk memory, SIMD and floats.
        r#"(module
            (type $t (func (param i32) (result i32)))
            (table 2 funcref)
            (elem (i32.const 0) $double $inc)
            (global $g (mut i32) (i32.const 1))
            (memory (export "memory") 1)
            (func $double (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))
            (func $inc (param i32) (result i32) (i32.add (local.get 0) (global.get $g)))
            (func (export "_start")
              (global.set $g (call_indirect (type $t) (i32.const 20) (i32.const 1)))
              (memory.fill (i32.const 0) (i32.const 7) (i32.const 1024))
              (memory.copy (i32.const 2048) (i32.const 0) (i32.const 1024))
              (v128.store (i32.const 64) (i32x4.add (v128.load (i32.const 0)) (v128.load (i32.const 16))))
              (f64.store (i32.const 128) (f64.sqrt (f64.const -1)))
              (drop (call_indirect (type $t) (i32.const 1) (i32.const 5)))))"#,
        // Refused: a start function, an unknown import, no `_start`, a
        // `_start` of the wrong type.
        r#"(module (memory (export "memory") 1) (func $s) (start $s) (func (export "_start")))"#,
        r#"(module
            (import "env" "launch" (func $launch))
            (memory (export "memory") 1)
            (func (export "_start") (call $launch)))"#,
        r#"(module
            (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32) (result i32)))
            (memory (export "memory") 1)
            (func (export "_start") (drop (call $w (i32.const 0)))))"#,
        r#"(module (func (export "main")))"#,
        r#"(module (func (export "_start") (param i32) (result i32) (local.get 0)))"#,
        r#"(module (global (export "_start") i32 (i32.const 0)))"#,
        // Features the sandbox turns off.
        r#"(module (memory (export "memory") i64 1) (func (export "_start")))"#,
        r#"(module (memory (export "memory") 1) (memory 1) (func (export "_start")))"#,
        r#"(module (memory (export "memory") 1 1 shared) (func (export "_start")))"#,
        r#"(module (memory (export "memory") 1)
            (func (export "_start") (drop (f32x4.relaxed_madd (v128.const i32x4 0 0 0 0) (v128.const i32x4 0 0 0 0) (v128.const i32x4 0 0 0 0)))))"#,
    ];
    seeds.extend(texts.iter().map(|text| wat(text)));
    seeds
}

/// Every request message, with ordinary and extreme values.
fn request_messages() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    seeds.push(Vec::new());
    seeds.extend(agent_messages().into_iter().map(|(_, message)| message));
    seeds.extend(issuer_messages().into_iter().map(|(_, message)| message));
    seeds.extend(admin_messages().into_iter().map(|(_, message)| message));
    seeds.extend(submit_messages().iter().map(Message::encode_to_vec));
    seeds.push(small_wire_limits().encode_to_vec());
    seeds.push(
        v1::Limits {
            memory_bytes: u64::MAX,
            fuel: u64::MAX,
            wall_time_ms: u64::MAX,
            max_output_bytes: u64::MAX,
            max_stack_bytes: u64::MAX,
        }
        .encode_to_vec(),
    );
    seeds.extend(statuses().iter().map(Message::encode_to_vec));
    seeds.push(usage().encode_to_vec());
    seeds
}

/// `(RPC number, message)` of [`crate::agent_service`].
fn agent_messages() -> Vec<(u8, Vec<u8>)> {
    let register = v1::RegisterRequest {
        name: "seed-agent".into(),
        os: "linux".into(),
        arch: "x86_64".into(),
        cores: 8,
        memory_bytes: 8 << 30,
        slots: 4,
        version: "0.1.0".into(),
        owner: "seed@example.invalid".into(),
        enrolment_secret: String::new(),
    };
    let mut messages = vec![
        (0, register.encode_to_vec()),
        (
            0,
            v1::RegisterRequest {
                name: "n".repeat(300),
                ..register
            }
            .encode_to_vec(),
        ),
        (
            1,
            v1::RequestWorkRequest {
                capacity: 2,
                free_memory_bytes: 1 << 30,
            }
            .encode_to_vec(),
        ),
        (
            1,
            v1::RequestWorkRequest {
                capacity: u32::MAX,
                free_memory_bytes: u64::MAX,
            }
            .encode_to_vec(),
        ),
        (
            2,
            v1::AcceptOffersRequest {
                tasks: vec![
                    task_ref(WORKLOAD, 0),
                    task_ref(WORKLOAD, 1),
                    task_ref("w-unknown", u32::MAX),
                ],
            }
            .encode_to_vec(),
        ),
        (2, v1::AcceptOffersRequest { tasks: vec![] }.encode_to_vec()),
        (3, fetch(MODULE)),
        (3, fetch(&"ab".repeat(32))),
        (3, fetch("not hex")),
        (
            4,
            v1::ExtendLeaseRequest {
                lease_id: LEASE.into(),
            }
            .encode_to_vec(),
        ),
        (
            4,
            v1::ExtendLeaseRequest {
                lease_id: "l-unknown".into(),
            }
            .encode_to_vec(),
        ),
        (
            6,
            v1::ReleaseLeaseRequest {
                lease_id: LEASE.into(),
                reason: "stopping".into(),
            }
            .encode_to_vec(),
        ),
        (7, v1::EarningsRequest {}.encode_to_vec()),
    ];
    for status in statuses() {
        messages.push((
            5,
            v1::ReportResultRequest {
                lease_id: LEASE.into(),
                status: Some(status),
                output: b"42\n".to_vec(),
                stderr: b"note\n".to_vec(),
                usage: Some(usage()),
                task: Some(v1::TaskRef {
                    workload_id: "w-0000000000000000".into(),
                    index: 0,
                }),
            }
            .encode_to_vec(),
        ));
    }
    messages.push((
        5,
        v1::ReportResultRequest {
            lease_id: LEASE.into(),
            status: Some(statuses()[0].clone()),
            output: Vec::new(),
            stderr: Vec::new(),
            task: None,
            usage: Some(v1::Usage {
                fuel_consumed: u64::MAX,
                peak_memory_bytes: u64::MAX,
                wall_time_ms: u64::MAX,
                output_bytes: u64::MAX,
                metering_version: String::new(),
            }),
        }
        .encode_to_vec(),
    ));
    messages.push((5, v1::ReportResultRequest::default().encode_to_vec()));
    messages
}

fn agent_requests() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = agent_messages()
        .into_iter()
        .map(|(rpc, message)| selected(rpc, &message))
        .collect();
    // The other ways of (not) authenticating, on a call that needs it.
    let earnings = v1::EarningsRequest {}.encode_to_vec();
    for auth in 1..4u8 {
        seeds.push(selected(7 | auth << 3, &earnings));
    }
    seeds
}

/// `(RPC number, message)` of [`crate::issuer_service`] but SubmitWorkload.
fn issuer_messages() -> Vec<(u8, Vec<u8>)> {
    let mut messages = Vec::new();
    for rpc in 0..5 {
        for id in [WORKLOAD, "w-unknown", ""] {
            messages.push((
                rpc,
                v1::WorkloadRequest {
                    workload_id: id.into(),
                }
                .encode_to_vec(),
            ));
        }
    }
    for issuer in [ISSUER, "nobody", ""] {
        messages.push((
            5,
            v1::BalanceRequest {
                issuer: issuer.into(),
            }
            .encode_to_vec(),
        ));
    }
    for (workload_id, limit) in [(WORKLOAD, 10), ("", 0), ("", u32::MAX)] {
        messages.push((
            6,
            v1::LedgerRequest {
                issuer: ISSUER.into(),
                workload_id: workload_id.into(),
                limit,
            }
            .encode_to_vec(),
        ));
    }
    messages
}

fn issuer_requests() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = issuer_messages()
        .into_iter()
        .map(|(rpc, message)| selected(rpc, &message))
        .collect();
    seeds.extend(
        submissions()
            .into_iter()
            .take(4)
            .map(|submission| selected(7, &submission)),
    );
    // The other callers (the fixture issuer, no token, an unknown token) on
    // every RPC but SubmitWorkload.
    for (rpc, message) in issuer_messages() {
        for auth in 1..4u8 {
            seeds.push(selected(rpc | auth << 3, &message));
        }
    }
    seeds
}

/// `(RPC number, message)` of [`crate::admin_service`].
fn admin_messages() -> Vec<(u8, Vec<u8>)> {
    let grant = |issuer: &str, amount_micro: i64, memo: &str| v1::GrantCreditsRequest {
        issuer: issuer.into(),
        amount_micro,
        memo: memo.into(),
    };
    vec![
        (0, v1::ListAgentsRequest {}.encode_to_vec()),
        (1, v1::ListWorkloadsRequest {}.encode_to_vec()),
        (2, grant(ISSUER, 1_000_000, "seed").encode_to_vec()),
        (2, grant("other", i64::MAX, "").encode_to_vec()),
        (2, grant("", -1, &"m".repeat(2000)).encode_to_vec()),
        (3, v1::ListAccountsRequest {}.encode_to_vec()),
    ]
}

fn admin_requests() -> Vec<Vec<u8>> {
    // Every caller: the admin, the fixture issuer, no token, an unknown one.
    admin_messages()
        .into_iter()
        .flat_map(|(rpc, message)| (0..4u8).map(move |auth| selected(rpc | auth << 2, &message)))
        .collect()
}

/// Submissions, in both forms of [`crate::submit_workload`].
fn submissions() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    let valid = workload(None).into_requests().unwrap_or_default();
    let reduced = workload(Some(noop_module()))
        .into_requests()
        .unwrap_or_default();
    for requests in [&valid, &reduced] {
        seeds.push(form(0, grpc_body(requests)));
        seeds.push(form(1, encode_parts(requests)));
    }
    // Near misses: no header, two headers, no end, a lying end marker, a
    // module that is not a task, limits out of range, an empty stream.
    let header = valid[0].clone();
    let rest = &valid[1..];
    let broken: Vec<Vec<v1::SubmitWorkloadRequest>> = vec![
        rest.to_vec(),
        [vec![header.clone(), header.clone()], rest.to_vec()].concat(),
        valid[..valid.len() - 1].to_vec(),
        [
            valid.clone(),
            vec![v1::SubmitWorkloadRequest {
                part: Some(Part::End(v1::SubmitEnd { task_count: 9 })),
            }],
        ]
        .concat(),
        Vec::new(),
    ];
    for requests in &broken {
        seeds.push(form(0, grpc_body(requests)));
    }
    let mut not_a_task = workload(None);
    not_a_task.module = b"\0asm\x01\0\0\0".to_vec();
    let mut huge_limits = workload(None);
    huge_limits.limits.memory_bytes = u64::MAX;
    huge_limits.limits.max_stack_bytes = 1;
    huge_limits.replicas = 1000;
    let mut pricey = workload(None);
    pricey.credits_per_fuel = 1e30;
    pricey.credits_per_mib_second = f64::NAN;
    for workload in [not_a_task, huge_limits, pricey] {
        if let Ok(requests) = workload.into_requests() {
            seeds.push(form(1, encode_parts(&requests)));
        }
    }
    // A compressed frame and a frame longer than the body.
    seeds.push(form(0, vec![1, 0, 0, 0, 2, 8, 1]));
    seeds.push(form(0, vec![0, 0xff, 0xff, 0xff, 0xff, 0]));
    seeds
}

/// The messages of a valid submission, one by one (request decoding seeds).
fn submit_messages() -> Vec<v1::SubmitWorkloadRequest> {
    workload(Some(noop_module()))
        .into_requests()
        .unwrap_or_default()
}

fn workload(reducer: Option<Vec<u8>>) -> Workload {
    Workload {
        name: "seed".into(),
        issuer: ISSUER.into(),
        module: noop_module(),
        reducer,
        inputs: vec![b"1".to_vec(), b"2".to_vec(), Vec::new()],
        limits: Limits {
            memory_bytes: 1 << 20,
            fuel: 1_000_000,
            wall_time: Duration::from_secs(10),
            max_output_bytes: 1 << 20,
            max_stack_bytes: 1 << 20,
        },
        replicas: 1,
        max_attempts: 3,
        quorum: 0,
        adaptive_replication: false,
        credits_per_fuel: 1e-9,
        credits_per_mib_second: 0.0,
    }
}

fn small_wire_limits() -> v1::Limits {
    v1::Limits {
        memory_bytes: 1 << 20,
        fuel: 1_000_000,
        wall_time_ms: 10_000,
        max_output_bytes: 1 << 20,
        max_stack_bytes: 1 << 20,
    }
}

fn statuses() -> Vec<v1::TaskStatus> {
    let mut statuses: Vec<v1::TaskStatus> = (0..=8)
        .map(|kind| v1::TaskStatus {
            kind,
            exit_code: if kind == 2 { -3 } else { 0 },
            message: if kind >= 7 {
                "why".into()
            } else {
                String::new()
            },
        })
        .collect();
    // Kind 1 (OK) first: the common report.
    statuses.swap(0, 1);
    statuses.push(v1::TaskStatus {
        kind: 99,
        exit_code: i32::MIN,
        message: String::new(),
    });
    statuses
}

fn usage() -> v1::Usage {
    v1::Usage {
        fuel_consumed: 1234,
        peak_memory_bytes: 65536,
        wall_time_ms: 3,
        output_bytes: 3,
        metering_version: wasmgrid_runtime::METERING_VERSION.into(),
    }
}

fn task_ref(workload_id: &str, index: u32) -> v1::TaskRef {
    v1::TaskRef {
        workload_id: workload_id.into(),
        index,
    }
}

fn fetch(sha256: &str) -> Vec<u8> {
    v1::FetchModuleRequest {
        sha256: sha256.into(),
    }
    .encode_to_vec()
}

fn selected(selector: u8, message: &[u8]) -> Vec<u8> {
    [&[selector][..], message].concat()
}

fn form(mode: u8, body: Vec<u8>) -> Vec<u8> {
    [vec![mode], body].concat()
}
