//! Hostile modules on a real grid: one broker and ONE agent process, every
//! hostile module of the suite submitted as its own workload (one attempt,
//! small limits), all running at once. Each must end in its own status on
//! the agent — or be refused at submit with `InvalidArgument` when the
//! broker's compile check can tell it cannot run — that status must reach
//! the broker (the run is `reported` with it, the workload's failures name
//! it), and afterwards the same agent process must still be there and
//! count the primes exactly. The list of cases, where each is caught and
//! why: `docs/hostile.md`.
//!
//! The Rust hostile programs come from `sample-tasks/hostile/`; the modules
//! that must be exact to the page or element (memory and table at and one
//! past the cap, data segments, the 50 MB module, the compile-heavy module,
//! raw WASI calls) are built here, byte by byte, by `mod wasm`.

use std::time::{Duration, Instant};

use tonic::Code as GrpcCode;
use wasmgrid_proto::v1;
use wasmgrid_runtime::{Limits, Status};
use wasmgrid_tests::prime_counts::PI_OF_1E6;
use wasmgrid_tests::{AgentProcess, BrokerProcess, Submission, admin, issuer, wait_until_final};

/// A wasm page.
const PAGE: u32 = 64 << 10;
/// The memory cap of most cases: 16 MiB, 256 pages.
const CAP_BYTES: u64 = 16 << 20;
const CAP_PAGES: u32 = (CAP_BYTES / PAGE as u64) as u32;
/// The sandbox's table cap (`wasmgrid_runtime`'s limiter): 2^20 elements.
const TABLE_CAP: u32 = 1 << 20;
/// Fuel of most cases: far more than any of them needs to reach its end.
const FUEL: u64 = 2_000_000_000;
/// Wall time of most cases: far more than any needs (compilation excluded).
const WALL: Duration = Duration::from_secs(10);
/// Size of the data segment of the "module of 50 MB".
const BIG_DATA_BYTES: u32 = 50_000_000;
/// How long any one workload may take to end.
const FINAL_TIMEOUT: Duration = Duration::from_secs(90);

/// A minimal encoder of wasm binary modules: enough for the hostile modules
/// below, so that each is exact (to the page, the element, the byte) and
/// needs neither a build step nor a text-format parser.
mod wasm {
    pub const I32: u8 = 0x7f;
    pub const I64: u8 = 0x7e;

    /// Opcodes used here.
    pub mod op {
        pub const UNREACHABLE: u8 = 0x00;
        pub const LOOP: u8 = 0x03;
        pub const IF: u8 = 0x04;
        pub const END: u8 = 0x0b;
        pub const BR: u8 = 0x0c;
        pub const BR_IF: u8 = 0x0d;
        pub const CALL: u8 = 0x10;
        pub const DROP: u8 = 0x1a;
        pub const LOCAL_GET: u8 = 0x20;
        pub const LOCAL_SET: u8 = 0x21;
        pub const I32_LOAD: u8 = 0x28;
        pub const I32_STORE: u8 = 0x36;
        pub const MEMORY_GROW: u8 = 0x40;
        pub const I32_CONST: u8 = 0x41;
        pub const I64_CONST: u8 = 0x42;
        pub const I32_EQ: u8 = 0x46;
        pub const I32_LT_U: u8 = 0x49;
        pub const I32_ADD: u8 = 0x6a;
        pub const REF_NULL: u8 = 0xd0;
        pub const PREFIX_FC: u8 = 0xfc;
        pub const TABLE_GROW: u32 = 15;
        /// Block type "no result".
        pub const EMPTY: u8 = 0x40;
        pub const FUNCREF: u8 = 0x70;
    }

    pub fn uleb(out: &mut Vec<u8>, mut value: u64) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    pub fn sleb(out: &mut Vec<u8>, mut value: i64) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            let done = (value == 0 && byte & 0x40 == 0) || (value == -1 && byte & 0x40 != 0);
            if done {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn name(out: &mut Vec<u8>, text: &str) {
        uleb(out, text.len() as u64);
        out.extend_from_slice(text.as_bytes());
    }

    /// A function body under construction.
    #[derive(Debug, Default)]
    pub struct Code {
        locals: Vec<(u32, u8)>,
        bytes: Vec<u8>,
    }

    impl Code {
        pub fn new() -> Self {
            Code::default()
        }

        pub fn locals(mut self, count: u32, ty: u8) -> Self {
            self.locals.push((count, ty));
            self
        }

        /// Raw opcode bytes.
        pub fn op(mut self, bytes: &[u8]) -> Self {
            self.bytes.extend_from_slice(bytes);
            self
        }

        pub fn i32(mut self, value: i32) -> Self {
            self.bytes.push(op::I32_CONST);
            sleb(&mut self.bytes, i64::from(value));
            self
        }

        pub fn i64(mut self, value: i64) -> Self {
            self.bytes.push(op::I64_CONST);
            sleb(&mut self.bytes, value);
            self
        }

        fn with_index(mut self, opcode: u8, index: u32) -> Self {
            self.bytes.push(opcode);
            uleb(&mut self.bytes, u64::from(index));
            self
        }

        pub fn call(self, function: u32) -> Self {
            self.with_index(op::CALL, function)
        }

        pub fn local_get(self, local: u32) -> Self {
            self.with_index(op::LOCAL_GET, local)
        }

        pub fn local_set(self, local: u32) -> Self {
            self.with_index(op::LOCAL_SET, local)
        }

        pub fn br(self, depth: u32) -> Self {
            self.with_index(op::BR, depth)
        }

        pub fn br_if(self, depth: u32) -> Self {
            self.with_index(op::BR_IF, depth)
        }

        /// `i32.load` / `i32.store` with natural alignment and offset 0.
        pub fn load(self) -> Self {
            self.op(&[op::I32_LOAD, 2, 0])
        }

        pub fn store(self) -> Self {
            self.op(&[op::I32_STORE, 2, 0])
        }

        /// `if <then> end`, no result.
        pub fn if_then(self, then: impl FnOnce(Code) -> Code) -> Self {
            then(self.op(&[op::IF, op::EMPTY])).op(&[op::END])
        }

        /// `table.grow` of table 0.
        pub fn table_grow(mut self) -> Self {
            self.bytes.push(op::PREFIX_FC);
            uleb(&mut self.bytes, u64::from(op::TABLE_GROW));
            self.bytes.push(0);
            self
        }

        fn encode(&self) -> Vec<u8> {
            let mut body = Vec::new();
            uleb(&mut body, self.locals.len() as u64);
            for &(count, ty) in &self.locals {
                uleb(&mut body, u64::from(count));
                body.push(ty);
            }
            body.extend_from_slice(&self.bytes);
            body.push(op::END);
            body
        }
    }

    /// A module under construction. Imports must all be added before the
    /// first function, as they come first in the function index space.
    #[derive(Debug, Default)]
    pub struct Module {
        types: Vec<(Vec<u8>, Vec<u8>)>,
        imports: Vec<(String, String, u32)>,
        functions: Vec<(u32, Vec<u8>)>,
        table_min: Option<u32>,
        memory_min: Option<u32>,
        exports: Vec<(String, u8, u32)>,
        start: Option<u32>,
        data: Vec<(u32, Vec<u8>)>,
    }

    impl Module {
        pub fn new() -> Self {
            Module::default()
        }

        /// The index of the function type `params -> results`.
        pub fn ty(&mut self, params: &[u8], results: &[u8]) -> u32 {
            let wanted = (params.to_vec(), results.to_vec());
            if let Some(index) = self.types.iter().position(|ty| *ty == wanted) {
                return index as u32;
            }
            self.types.push(wanted);
            (self.types.len() - 1) as u32
        }

        /// Imports a function; returns its function index.
        pub fn import(&mut self, module: &str, name: &str, params: &[u8], results: &[u8]) -> u32 {
            assert!(self.functions.is_empty(), "imports come before functions");
            let ty = self.ty(params, results);
            self.imports.push((module.into(), name.into(), ty));
            (self.imports.len() - 1) as u32
        }

        /// Imports a `wasi_snapshot_preview1` function.
        pub fn wasi(&mut self, name: &str, params: &[u8], results: &[u8]) -> u32 {
            self.import("wasi_snapshot_preview1", name, params, results)
        }

        /// Adds a function; returns its function index.
        pub fn function(&mut self, params: &[u8], results: &[u8], code: Code) -> u32 {
            let ty = self.ty(params, results);
            self.functions.push((ty, code.encode()));
            (self.imports.len() + self.functions.len() - 1) as u32
        }

        /// Adds `code` as the exported `_start: [] -> []`.
        pub fn start_function(&mut self, code: Code) -> u32 {
            let index = self.function(&[], &[], code);
            self.export_function("_start", index);
            index
        }

        pub fn export_function(&mut self, name: &str, index: u32) {
            self.exports.push((name.into(), 0, index));
        }

        /// Memory 0 with `min_pages` pages and no maximum, exported as
        /// `memory` (the sandbox's WASI calls need that name).
        pub fn memory(&mut self, min_pages: u32) {
            self.memory_min = Some(min_pages);
            self.exports.push(("memory".into(), 2, 0));
        }

        /// A funcref table 0 of `min` elements and no maximum.
        pub fn table(&mut self, min: u32) {
            self.table_min = Some(min);
        }

        /// A wasm start section: runs `index` at instantiation.
        pub fn start_section(&mut self, index: u32) {
            self.start = Some(index);
        }

        /// An active data segment of memory 0 at `offset`.
        pub fn data(&mut self, offset: u32, bytes: Vec<u8>) {
            self.data.push((offset, bytes));
        }

        pub fn encode(&self) -> Vec<u8> {
            let mut out = b"\0asm\x01\0\0\0".to_vec();
            let mut types = Vec::new();
            for (params, results) in &self.types {
                types.push(0x60);
                for list in [params, results] {
                    uleb(&mut types, list.len() as u64);
                    types.extend_from_slice(list);
                }
            }
            section(&mut out, 1, self.types.len(), types);
            let mut imports = Vec::new();
            for (module, field, ty) in &self.imports {
                name(&mut imports, module);
                name(&mut imports, field);
                imports.push(0);
                uleb(&mut imports, u64::from(*ty));
            }
            section(&mut out, 2, self.imports.len(), imports);
            let mut functions = Vec::new();
            for (ty, _) in &self.functions {
                uleb(&mut functions, u64::from(*ty));
            }
            section(&mut out, 3, self.functions.len(), functions);
            if let Some(min) = self.table_min {
                let mut table = vec![op::FUNCREF, 0];
                uleb(&mut table, u64::from(min));
                section(&mut out, 4, 1, table);
            }
            if let Some(min) = self.memory_min {
                let mut memory = vec![0];
                uleb(&mut memory, u64::from(min));
                section(&mut out, 5, 1, memory);
            }
            let mut exports = Vec::new();
            for (field, kind, index) in &self.exports {
                name(&mut exports, field);
                exports.push(*kind);
                uleb(&mut exports, u64::from(*index));
            }
            section(&mut out, 7, self.exports.len(), exports);
            if let Some(start) = self.start {
                // The start section holds one index, not a vector.
                let mut index = Vec::new();
                uleb(&mut index, u64::from(start));
                out.push(8);
                uleb(&mut out, index.len() as u64);
                out.extend(index);
            }
            let mut code = Vec::new();
            for (_, body) in &self.functions {
                uleb(&mut code, body.len() as u64);
                code.extend_from_slice(body);
            }
            section(&mut out, 10, self.functions.len(), code);
            let mut data = Vec::new();
            for (offset, bytes) in &self.data {
                data.push(0);
                data.push(op::I32_CONST);
                sleb(&mut data, i64::from(*offset as i32));
                data.push(op::END);
                uleb(&mut data, bytes.len() as u64);
                data.extend_from_slice(bytes);
            }
            section(&mut out, 11, self.data.len(), data);
            out
        }
    }

    /// Appends section `id` holding a vector of `count` encoded `items`;
    /// nothing when there are none.
    fn section(out: &mut Vec<u8>, id: u8, count: usize, items: Vec<u8>) {
        if count == 0 {
            return;
        }
        let mut payload = Vec::new();
        uleb(&mut payload, count as u64);
        payload.extend(items);
        out.push(id);
        uleb(out, payload.len() as u64);
        out.extend(payload);
    }
}

use wasm::{Code, I32, I64, Module, op};

/// A code tail that calls `fd_write` (function index `fd_write`) on stdout
/// with the `count` iovecs (pointer, length pairs) at `iovecs`, storing the
/// count written at `nwritten`, and drops its errno.
fn write_stdout(
    fd_write: u32,
    iovecs: u32,
    count: u32,
    nwritten: u32,
) -> impl FnOnce(Code) -> Code {
    move |code| {
        code.i32(1)
            .i32(iovecs as i32)
            .i32(count as i32)
            .i32(nwritten as i32)
            .call(fd_write)
            .op(&[op::DROP])
    }
}

fn import_fd_write(module: &mut Module) -> u32 {
    module.wasi("fd_write", &[I32; 4], &[I32])
}

/// Grows memory from 1 page to `pages` in one `memory.grow`, traps with
/// `unreachable` if the grow returns -1, then writes `grown`.
fn memory_grow_to(pages: u32) -> Vec<u8> {
    let mut module = Module::new();
    let fd_write = import_fd_write(&mut module);
    module.memory(1);
    // iovec at 0 → "grown" at 16; nwritten at 8.
    module.data(0, [16u32.to_le_bytes(), 5u32.to_le_bytes()].concat());
    module.data(16, b"grown".to_vec());
    let code = Code::new()
        .i32(pages as i32 - 1)
        .op(&[op::MEMORY_GROW, 0])
        .i32(-1)
        .op(&[op::I32_EQ])
        .if_then(|code| code.op(&[op::UNREACHABLE]));
    module.start_function(write_stdout(fd_write, 0, 1, 8)(code));
    module.encode()
}

/// Grows table 0 from 0 to `elements` in one `table.grow`, traps if the
/// grow returns -1, then writes `grown`.
fn table_grow_to(elements: u32) -> Vec<u8> {
    let mut module = Module::new();
    let fd_write = import_fd_write(&mut module);
    module.table(0);
    module.memory(1);
    module.data(0, [16u32.to_le_bytes(), 5u32.to_le_bytes()].concat());
    module.data(16, b"grown".to_vec());
    let code = Code::new()
        .op(&[op::REF_NULL, op::FUNCREF])
        .i32(elements as i32)
        .table_grow()
        .i32(-1)
        .op(&[op::I32_EQ])
        .if_then(|code| code.op(&[op::UNREACHABLE]));
    module.start_function(write_stdout(fd_write, 0, 1, 8)(code));
    module.encode()
}

/// `sample-tasks/hostile/table-bomb.wat`, built here: grows a table by
/// 100 000 elements per iteration, forever, ignoring failures.
fn table_bomb() -> Vec<u8> {
    let mut module = Module::new();
    module.table(0);
    module.memory(1);
    let code = Code::new()
        .op(&[op::LOOP, op::EMPTY, op::REF_NULL, op::FUNCREF])
        .i32(100_000)
        .table_grow()
        .op(&[op::DROP])
        .br(0)
        .op(&[op::END]);
    module.start_function(code);
    module.encode()
}

/// A module whose table is declared with `min` elements.
fn table_declared(min: u32) -> Vec<u8> {
    let mut module = Module::new();
    module.table(min);
    module.memory(1);
    module.start_function(Code::new());
    module.encode()
}

/// `sample-tasks/hostile/native-stack-overflow.wat`, built here: unbounded
/// recursion on the wasm stack itself.
fn native_stack_overflow() -> Vec<u8> {
    let mut module = Module::new();
    module.memory(1);
    // Function 0 calls itself: its index is known before it is added.
    let recurse = Code::new()
        .local_get(0)
        .i32(1)
        .op(&[op::I32_ADD])
        .call(0)
        .i32(1)
        .op(&[op::I32_ADD]);
    let index = module.function(&[I32], &[I32], recurse);
    assert_eq!(index, 0);
    module.start_function(Code::new().i32(0).call(0).op(&[op::DROP]));
    module.encode()
}

/// A module with `pages` pages of initial memory and one data segment of
/// `bytes` at `offset`; `_start` writes the segment's bytes to stdout.
fn data_segment(pages: u32, offset: u32, bytes: Vec<u8>) -> Vec<u8> {
    let mut module = Module::new();
    let fd_write = import_fd_write(&mut module);
    module.memory(pages);
    let length = bytes.len() as u32;
    module.data(0, [offset.to_le_bytes(), length.to_le_bytes()].concat());
    module.data(offset, bytes);
    module.start_function(write_stdout(fd_write, 0, 1, 8)(Code::new()));
    module.encode()
}

/// The bytes of the big data segment: a pattern no run of zeros or short
/// period could fake.
fn big_data() -> Vec<u8> {
    let mut state: u32 = 0x9e37_79b9;
    let mut block = Vec::with_capacity(1 << 16);
    for _ in 0..(1 << 14) {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        block.extend_from_slice(&state.to_le_bytes());
    }
    let mut data = Vec::with_capacity(BIG_DATA_BYTES as usize);
    let mut round = 0u8;
    while data.len() < BIG_DATA_BYTES as usize {
        let take = block.len().min(BIG_DATA_BYTES as usize - data.len());
        data.extend(block[..take].iter().map(|byte| byte ^ round));
        round = round.wrapping_add(1);
    }
    data
}

/// The wrapping sum of the little-endian u32 words of `data`.
fn word_sum(data: &[u8]) -> u32 {
    data.chunks_exact(4)
        .map(|word| u32::from_le_bytes([word[0], word[1], word[2], word[3]]))
        .fold(0, u32::wrapping_add)
}

/// The module of about 50 MB: `data` as one segment at 64 KiB, and a
/// `_start` that sums every word of it and writes the sum (4 bytes LE), so
/// the output proves the whole segment reached the sandbox intact.
fn big_module(data: Vec<u8>) -> Vec<u8> {
    let start = PAGE;
    let end = start + data.len() as u32;
    let pages = end.div_ceil(PAGE);
    let mut module = Module::new();
    let fd_write = import_fd_write(&mut module);
    module.memory(pages);
    // iovec at 0 → the sum at 32, 4 bytes; nwritten at 8.
    module.data(0, [32u32.to_le_bytes(), 4u32.to_le_bytes()].concat());
    module.data(start, data);
    // locals: 0 = address, 1 = sum
    let code = Code::new()
        .locals(2, I32)
        .i32(start as i32)
        .local_set(0)
        .op(&[op::LOOP, op::EMPTY])
        .local_get(1)
        .local_get(0)
        .load()
        .op(&[op::I32_ADD])
        .local_set(1)
        .local_get(0)
        .i32(4)
        .op(&[op::I32_ADD])
        .local_set(0)
        .local_get(0)
        .i32(end as i32)
        .op(&[op::I32_LT_U])
        .br_if(0)
        .op(&[op::END])
        .i32(32)
        .local_get(1)
        .store();
    module.start_function(write_stdout(fd_write, 0, 1, 8)(code));
    module.encode()
}

/// A module that is small but slow to compile: one function with `locals`
/// i32 locals and `branches` one-armed `if`s, each assigning a local from
/// two others. Every `if` merges a local, so the compiler's SSA form and
/// register allocation grow with locals × branches (see docs/hostile.md
/// for measurements). At run time every condition is 0: `_start` returns
/// at once.
fn compile_heavy(locals: u32, branches: u32) -> Vec<u8> {
    let mut code = Code::new().locals(locals, I32);
    for round in 0..branches {
        let (a, b, c, d) = (
            round * 13 % locals,
            (round * 7 + 1) % locals,
            (round * 3 + 2) % locals,
            (round * 11 + 3) % locals,
        );
        code = code.local_get(a).if_then(|code| {
            code.local_get(b)
                .local_get(c)
                .op(&[op::I32_ADD])
                .local_set(d)
        });
    }
    let mut module = Module::new();
    module.memory(1);
    module.start_function(code);
    module.encode()
}

/// The WASI errno values the probe expects.
const ERRNO_SUCCESS: u32 = 0;
const ERRNO_BADF: u32 = 8;
const ERRNO_NOTSOCK: u32 = 57;
const ERRNO_NOTCAPABLE: u32 = 76;

/// Raw WASI calls on files, sockets, the environment and the arguments,
/// each result stored as a u32 in a table; `_start` then writes the first
/// 160 bytes of memory: the table (slots 0..16), then the out-parameters.
/// Memory map: 64 env count, 68 env bytes, 72 argc, 76 argv bytes,
/// 80 argv[0] pointer, 96 argv buffer, 128 prestat, 136 opened fd,
/// 140 accepted fd, 144 data length, 148 flags, 152/156 environ_get
/// buffers, 160 path, 176 an iovec, 240 the output iovec, 248 nwritten.
fn wasi_probe() -> (Vec<u8>, Vec<(&'static str, u32)>) {
    let mut module = Module::new();
    let fd_write = import_fd_write(&mut module);
    let fd_prestat_get = module.wasi("fd_prestat_get", &[I32; 2], &[I32]);
    let fd_prestat_dir_name = module.wasi("fd_prestat_dir_name", &[I32; 3], &[I32]);
    let path_open = module.wasi(
        "path_open",
        &[I32, I32, I32, I32, I32, I64, I64, I32, I32],
        &[I32],
    );
    let sock_accept = module.wasi("sock_accept", &[I32; 3], &[I32]);
    let sock_recv = module.wasi("sock_recv", &[I32; 6], &[I32]);
    let sock_send = module.wasi("sock_send", &[I32; 5], &[I32]);
    let sock_shutdown = module.wasi("sock_shutdown", &[I32; 2], &[I32]);
    let environ_sizes_get = module.wasi("environ_sizes_get", &[I32; 2], &[I32]);
    let environ_get = module.wasi("environ_get", &[I32; 2], &[I32]);
    let args_sizes_get = module.wasi("args_sizes_get", &[I32; 2], &[I32]);
    let args_get = module.wasi("args_get", &[I32; 2], &[I32]);
    module.memory(1);
    module.data(160, b"etc/passwd".to_vec());
    module.data(176, [200u32.to_le_bytes(), 16u32.to_le_bytes()].concat());
    module.data(240, [0u32.to_le_bytes(), 160u32.to_le_bytes()].concat());

    type Call = Box<dyn Fn(Code) -> Code>;
    let calls: Vec<(&'static str, u32, Call)> = vec![
        (
            "fd_prestat_get(3): no preopened directory",
            ERRNO_BADF,
            Box::new(move |c: Code| c.i32(3).i32(128).call(fd_prestat_get)),
        ),
        (
            "fd_prestat_get(0): stdin is no directory",
            ERRNO_BADF,
            Box::new(move |c: Code| c.i32(0).i32(128).call(fd_prestat_get)),
        ),
        (
            "fd_prestat_dir_name(3)",
            ERRNO_BADF,
            Box::new(move |c: Code| c.i32(3).i32(200).i32(16).call(fd_prestat_dir_name)),
        ),
        (
            "path_open(3, \"etc/passwd\")",
            ERRNO_NOTCAPABLE,
            Box::new(move |c: Code| {
                c.i32(3)
                    .i32(0)
                    .i32(160)
                    .i32(10)
                    .i32(0)
                    .i64(-1)
                    .i64(-1)
                    .i32(0)
                    .i32(136)
                    .call(path_open)
            }),
        ),
        (
            "path_open(0, \"etc/passwd\", O_CREAT)",
            ERRNO_NOTCAPABLE,
            Box::new(move |c: Code| {
                c.i32(0)
                    .i32(0)
                    .i32(160)
                    .i32(10)
                    .i32(1)
                    .i64(-1)
                    .i64(-1)
                    .i32(0)
                    .i32(136)
                    .call(path_open)
            }),
        ),
        (
            "sock_accept(3)",
            ERRNO_BADF,
            Box::new(move |c: Code| c.i32(3).i32(0).i32(140).call(sock_accept)),
        ),
        (
            "sock_accept(0): stdin is no socket",
            ERRNO_NOTSOCK,
            Box::new(move |c: Code| c.i32(0).i32(0).i32(140).call(sock_accept)),
        ),
        (
            "sock_recv(3)",
            ERRNO_BADF,
            Box::new(move |c: Code| {
                c.i32(3)
                    .i32(176)
                    .i32(1)
                    .i32(0)
                    .i32(144)
                    .i32(148)
                    .call(sock_recv)
            }),
        ),
        (
            "sock_recv(0)",
            ERRNO_NOTSOCK,
            Box::new(move |c: Code| {
                c.i32(0)
                    .i32(176)
                    .i32(1)
                    .i32(0)
                    .i32(144)
                    .i32(148)
                    .call(sock_recv)
            }),
        ),
        (
            "sock_send(1)",
            ERRNO_NOTSOCK,
            Box::new(move |c: Code| c.i32(1).i32(176).i32(1).i32(0).i32(144).call(sock_send)),
        ),
        (
            "sock_shutdown(3)",
            ERRNO_BADF,
            Box::new(move |c: Code| c.i32(3).i32(2).call(sock_shutdown)),
        ),
        (
            "environ_sizes_get",
            ERRNO_SUCCESS,
            Box::new(move |c: Code| c.i32(64).i32(68).call(environ_sizes_get)),
        ),
        (
            "environ_get",
            ERRNO_SUCCESS,
            Box::new(move |c: Code| c.i32(152).i32(156).call(environ_get)),
        ),
        (
            "args_sizes_get",
            ERRNO_SUCCESS,
            Box::new(move |c: Code| c.i32(72).i32(76).call(args_sizes_get)),
        ),
        (
            "args_get",
            ERRNO_SUCCESS,
            Box::new(move |c: Code| c.i32(80).i32(96).call(args_get)),
        ),
    ];
    assert!(calls.len() <= 16, "the result table has 16 slots");
    let mut code = Code::new();
    let mut expected = Vec::new();
    for (slot, (what, errno, call)) in calls.into_iter().enumerate() {
        code = call(code.i32(slot as i32 * 4)).store();
        expected.push((what, errno));
    }
    module.start_function(write_stdout(fd_write, 240, 1, 248)(code));
    (module.encode(), expected)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Checks the probe's output against the errnos expected and the
/// out-parameters the sandbox promises: no environment, `argv = ["task"]`,
/// no descriptor opened or accepted.
fn check_probe(output: &[u8], expected: &[(&str, u32)]) {
    assert_eq!(output.len(), 160, "probe output: {output:?}");
    for (slot, (what, errno)) in expected.iter().enumerate() {
        assert_eq!(u32_at(output, slot * 4), *errno, "{what}");
    }
    assert_eq!(
        (u32_at(output, 64), u32_at(output, 68)),
        (0, 0),
        "environment"
    );
    assert_eq!(
        (u32_at(output, 72), u32_at(output, 76)),
        (1, 5),
        "argc, argv bytes"
    );
    assert_eq!(u32_at(output, 80), 96, "argv[0] points into its buffer");
    assert_eq!(&output[96..101], b"task\0", "argv[0]");
    assert_eq!(u32_at(output, 136), 0, "no file was opened");
    assert_eq!(u32_at(output, 140), 0, "no connection was accepted");
    assert_eq!(u32_at(output, 152), 0, "environ_get wrote no pointer");
}

/// `sample-tasks/hostile/start-section-loop.wat`, built here.
fn start_section_loop() -> Vec<u8> {
    let mut module = Module::new();
    module.memory(1);
    let spin = module.function(
        &[],
        &[],
        Code::new().op(&[op::LOOP, op::EMPTY]).br(0).op(&[op::END]),
    );
    module.start_section(spin);
    module.start_function(Code::new());
    module.encode()
}

/// `sample-tasks/hostile/unknown-import.wat`, built here.
fn unknown_import() -> Vec<u8> {
    let mut module = Module::new();
    let missiles = module.import("env", "launch_missiles", &[I32], &[I32]);
    module.memory(1);
    module.start_function(Code::new().i32(1).call(missiles).op(&[op::DROP]));
    module.encode()
}

/// `sample-tasks/hostile/not-a-command.wat`, built here: no `_start`.
fn not_a_command() -> Vec<u8> {
    let mut module = Module::new();
    let add = module.function(
        &[I32, I32],
        &[I32],
        Code::new().local_get(0).local_get(1).op(&[op::I32_ADD]),
    );
    module.export_function("add", add);
    module.encode()
}

/// How the output of a task that ends `Ok` is checked.
enum Output {
    Exactly(Vec<u8>),
    /// `escape-attempts`: every attempt failed, no environment, `argv = ["task"]`.
    EscapeReport,
    /// The raw WASI probe, with the errno each call must return.
    Probe(Vec<(&'static str, u32)>),
}

/// What one task must end with.
enum Want {
    Ok(Output),
    /// Exactly this status (`OutOfFuel` also checks that the run consumed
    /// exactly the fuel limit; `Timeout` that it ran the wall time).
    Status(Status),
    /// A trap whose message contains one of these.
    Trap(&'static [&'static str]),
}

/// What a case expects.
enum Expect {
    /// Refused at submit with `InvalidArgument`; the message contains these.
    Refused(&'static [&'static str]),
    /// One entry per task input, in order.
    Tasks(Vec<Want>),
}

struct Case {
    name: &'static str,
    submission: Submission,
    expect: Expect,
    /// Set when the submit's header is altered after encoding: a declared
    /// module size, to be refused before any byte of the module is read.
    declared_module_size: Option<u64>,
}

fn limits(memory_bytes: u64, fuel: u64, wall_time: Duration) -> Limits {
    Limits {
        memory_bytes,
        fuel,
        wall_time,
        max_output_bytes: 1 << 20,
        max_stack_bytes: 1 << 20,
    }
}

fn case(name: &'static str, module: Vec<u8>, limits: Limits, expect: Expect) -> Case {
    let inputs = match &expect {
        Expect::Tasks(wants) => wants.iter().map(|_| Vec::new()).collect(),
        Expect::Refused(_) => vec![Vec::new()],
    };
    let mut submission = Submission::new(module, inputs);
    submission.limits = limits;
    submission.max_attempts = 1;
    Case {
        name,
        submission,
        expect,
        declared_module_size: None,
    }
}

fn one(want: Want) -> Expect {
    Expect::Tasks(vec![want])
}

fn sample(name: &str) -> Vec<u8> {
    wasmgrid_sample_tasks::read_wasm(name)
}

/// Every case of the suite; see docs/hostile.md.
fn cases() -> Vec<Case> {
    let default = || limits(CAP_BYTES, FUEL, WALL);
    let last_bytes = b"lastword".to_vec();
    let big = big_data();
    let big_sum = word_sum(&big).to_le_bytes().to_vec();
    let big_module = big_module(big);
    let (probe, probe_expected) = wasi_probe();
    let exit_codes = [3, 256, -1, i32::MAX, i32::MIN, 0];

    let mut cases = vec![
        // Fuel, wall time.
        case(
            "fuel: tight loop",
            sample("infinite-loop"),
            limits(CAP_BYTES, 50_000_000, WALL),
            one(Want::Status(Status::OutOfFuel)),
        ),
        case(
            "fuel: loop of host calls",
            sample("hostcall-loop"),
            // Each call fills 64 KiB in the host, in the (unoptimised) debug
            // agent: 20 M fuel runs out in about a second, far from the wall
            // limit even on a loaded machine (100 M took 5 s idle, 10 s
            // under a parallel build).
            limits(CAP_BYTES, 20_000_000, WALL),
            one(Want::Status(Status::OutOfFuel)),
        ),
        case(
            "wall time: tight loop with fuel for hours",
            sample("infinite-loop"),
            limits(CAP_BYTES, 10_000_000_000_000, Duration::from_secs(1)),
            one(Want::Status(Status::Timeout)),
        ),
        // Memory.
        case(
            "memory: grown to exactly the cap",
            memory_grow_to(CAP_PAGES),
            default(),
            one(Want::Ok(Output::Exactly(b"grown".to_vec()))),
        ),
        case(
            "memory: grown to one page over the cap",
            memory_grow_to(CAP_PAGES + 1),
            default(),
            one(Want::Status(Status::MemoryLimit)),
        ),
        case(
            "memory: allocation bomb",
            sample("memory-bomb"),
            default(),
            one(Want::Status(Status::MemoryLimit)),
        ),
        // Tables.
        case(
            "table: grown to exactly the cap",
            table_grow_to(TABLE_CAP),
            default(),
            one(Want::Ok(Output::Exactly(b"grown".to_vec()))),
        ),
        case(
            "table: grown to one element over the cap",
            table_grow_to(TABLE_CAP + 1),
            default(),
            one(Want::Status(Status::MemoryLimit)),
        ),
        case(
            "table: growth bomb",
            table_bomb(),
            default(),
            one(Want::Status(Status::MemoryLimit)),
        ),
        case(
            "table: declared one element over the cap",
            table_declared(TABLE_CAP + 1),
            default(),
            Expect::Refused(&["not a runnable wasmgrid task", "1048577"]),
        ),
        // Stacks.
        case(
            "recursion: Rust, stack in linear memory",
            sample("deep-recursion"),
            default(),
            one(Want::Trap(&["out of bounds", "stack"])),
        ),
        case(
            "recursion: on the wasm stack",
            native_stack_overflow(),
            default(),
            one(Want::Status(Status::Trap("call stack exhausted".into()))),
        ),
        // Data segments and the module of 50 MB.
        case(
            "data segment: ends exactly at the cap",
            data_segment(CAP_PAGES, CAP_PAGES * PAGE - 8, last_bytes.clone()),
            default(),
            one(Want::Ok(Output::Exactly(last_bytes.clone()))),
        ),
        case(
            "data segment: needs one page over the cap",
            data_segment(
                CAP_PAGES + 1,
                (CAP_PAGES + 1) * PAGE - 8,
                last_bytes.clone(),
            ),
            default(),
            one(Want::Status(Status::MemoryLimit)),
        ),
        case(
            "data segment: past the end of its memory",
            data_segment(1, PAGE - 4, last_bytes),
            default(),
            one(Want::Trap(&["out of bounds memory access"])),
        ),
        case(
            "module of 50 MB: runs within a 64 MiB cap",
            big_module.clone(),
            limits(64 << 20, FUEL, WALL),
            one(Want::Ok(Output::Exactly(big_sum))),
        ),
        case(
            "module of 50 MB: its data needs more than a 32 MiB cap",
            big_module,
            limits(32 << 20, FUEL, WALL),
            one(Want::Status(Status::MemoryLimit)),
        ),
        case(
            "compile-heavy module (seconds to compile)",
            compile_heavy(500, 5_000),
            default(),
            one(Want::Ok(Output::Exactly(Vec::new()))),
        ),
        // Output, traps, exits.
        case(
            "output: 1 MiB chunks forever",
            sample("huge-output"),
            default(),
            one(Want::Status(Status::OutputLimit)),
        ),
        case(
            "trap: unreachable",
            sample("trap"),
            default(),
            one(Want::Trap(&["unreachable"])),
        ),
        case(
            "trap: Rust panic",
            sample("panic"),
            default(),
            one(Want::Trap(&["unreachable"])),
        ),
        exit_code_case(&exit_codes),
        // WASI: files, sockets, environment, arguments.
        case(
            "WASI: escape attempts through Rust std",
            sample("escape-attempts"),
            default(),
            one(Want::Ok(Output::EscapeReport)),
        ),
        case(
            "WASI: raw calls on files, sockets, env, args",
            probe,
            default(),
            one(Want::Ok(Output::Probe(probe_expected))),
        ),
        // Refused at submit: the broker's compile check.
        case(
            "invalid: garbage after a valid header",
            std::fs::read(wasmgrid_sample_tasks::hostile_file("garbage.wasm"))
                .expect("garbage.wasm"),
            default(),
            Expect::Refused(&["not a runnable wasmgrid task"]),
        ),
        case(
            "invalid: imports a function no sandbox provides",
            unknown_import(),
            default(),
            Expect::Refused(&["not a runnable wasmgrid task", "launch_missiles"]),
        ),
        case(
            "invalid: not a WASI command (no _start)",
            not_a_command(),
            default(),
            Expect::Refused(&["not a runnable wasmgrid task", "_start"]),
        ),
        case(
            "invalid: a start section that loops forever",
            start_section_loop(),
            default(),
            Expect::Refused(&["not a runnable wasmgrid task", "start function"]),
        ),
    ];
    let mut oversized = case(
        "oversized: module declared at 129 MiB",
        sample("echo"),
        default(),
        Expect::Refused(&["module of 135266304 bytes exceeds the limit of 134217728 bytes"]),
    );
    oversized.declared_module_size = Some(129 << 20);
    cases.push(oversized);
    cases
}

/// `tasks/exit-code`, one task per code: it calls `process::exit(code)`,
/// which is `proc_exit(code as u32)` — so -1 is `proc_exit(u32::MAX)` and
/// `i32::MIN` is `proc_exit(2^31)`.
fn exit_code_case(codes: &[i32]) -> Case {
    let wants = codes
        .iter()
        .map(|&code| match code {
            0 => Want::Ok(Output::Exactly(Vec::new())),
            code => Want::Status(Status::ExitCode(code)),
        })
        .collect();
    let mut case = case(
        "proc_exit: codes in and out of the usual range",
        sample("exit-code"),
        limits(CAP_BYTES, FUEL, WALL),
        Expect::Tasks(wants),
    );
    case.submission.inputs = codes
        .iter()
        .map(|code| code.to_string().into_bytes())
        .collect();
    case
}

/// Submits `case`; `Ok(workload id)` or the refusal.
async fn submit(
    client: &mut wasmgrid_tests::IssuerClient,
    case: &Case,
) -> Result<String, tonic::Status> {
    let mut messages = case.submission.messages();
    if let Some(size) = case.declared_module_size
        && let Some(v1::submit_workload_request::Part::Header(header)) = &mut messages[0].part
    {
        header.module_size = size;
    }
    let response = client.submit_workload(tokio_stream::iter(messages)).await?;
    Ok(response.into_inner().workload_id)
}

fn check_output(name: &str, index: usize, output: &[u8], check: &Output) {
    match check {
        Output::Exactly(expected) => {
            assert!(
                output == expected.as_slice(),
                "{name}, task {index}: output {:?} (expected {:?})",
                String::from_utf8_lossy(&output[..output.len().min(64)]),
                String::from_utf8_lossy(expected),
            );
        }
        Output::EscapeReport => {
            let text = String::from_utf8_lossy(output);
            assert!(text.contains(r#""args":["task"]"#), "{name}: {text}");
            assert!(text.contains(r#""env_count":0"#), "{name}: {text}");
            assert!(
                !text.contains(r#""ok:"#),
                "{name}: an attempt succeeded: {text}"
            );
            assert_eq!(text.matches(r#""error:"#).count(), 8, "{name}: {text}");
        }
        Output::Probe(expected) => check_probe(output, expected),
    }
}

/// What one case ended with, for the summary printed at the end.
struct Ended {
    name: &'static str,
    submit: Duration,
    to_final: Duration,
    outcome: String,
}

/// What [`run_cases`] saw.
#[derive(Default)]
struct Checked {
    ended: Vec<Ended>,
    /// Workloads the broker accepted.
    accepted: usize,
    /// Runs expected to end `Ok`, and otherwise.
    expect_ok: u64,
    expect_failed: u64,
    /// The agent of every run.
    agent_ids: Vec<String>,
}

/// Submits every case, then waits for each workload to end and checks it:
/// refused at submit as expected, or every task run once, on the agent,
/// reported with the status expected, named in the workload's failures
/// when it failed, and with the output expected when it succeeded.
async fn run_cases(url: &str, agent: &AgentProcess, cases: &[Case]) -> Checked {
    let mut client = issuer(url).await;
    // Submit everything; the agent starts on the first workloads at once.
    let mut submitted = Vec::new();
    for case in cases {
        let at = Instant::now();
        let result = submit(&mut client, case).await;
        submitted.push((result, at.elapsed(), at));
    }

    let mut checked = Checked::default();
    for (case, (result, submit_time, at)) in cases.iter().zip(submitted) {
        let name = case.name;
        let wants = match (&case.expect, result) {
            (Expect::Refused(fragments), Err(status)) => {
                assert_eq!(status.code(), GrpcCode::InvalidArgument, "{name}: {status}");
                for fragment in *fragments {
                    assert!(
                        status.message().contains(fragment),
                        "{name}: refusal {:?} does not say {fragment:?}",
                        status.message()
                    );
                }
                checked.ended.push(Ended {
                    name,
                    submit: submit_time,
                    to_final: submit_time,
                    outcome: format!("refused: {}", status.message()),
                });
                continue;
            }
            (Expect::Refused(_), Ok(id)) => {
                panic!("{name}: accepted as {id}, but it should be refused at submit")
            }
            (Expect::Tasks(_), Err(status)) => panic!("{name}: refused at submit: {status}"),
            (Expect::Tasks(wants), Ok(id)) => (wants, id),
        };
        let (wants, workload_id) = wants;
        checked.accepted += 1;
        let status = wait_until_final(&mut client, &workload_id, FINAL_TIMEOUT).await;
        let to_final = at.elapsed();
        let all_ok = wants.iter().all(|want| matches!(want, Want::Ok(_)));
        let failing = wants
            .iter()
            .filter(|want| !matches!(want, Want::Ok(_)))
            .count();
        checked.expect_failed += failing as u64;
        checked.expect_ok += (wants.len() - failing) as u64;
        let expected_state = if all_ok {
            v1::WorkloadState::Done
        } else {
            v1::WorkloadState::Failed
        };
        assert_eq!(
            status.state,
            expected_state as i32,
            "{name}: {status:?}\nagent log:\n{}",
            agent.log_tail()
        );
        assert_eq!(status.failures.len(), failing, "{name}: {status:?}");

        let tasks = client
            .list_tasks(v1::WorkloadRequest {
                workload_id: workload_id.clone(),
            })
            .await
            .expect("tasks")
            .into_inner()
            .tasks;
        assert_eq!(tasks.len(), wants.len(), "{name}");
        let results = if all_ok {
            Some(
                wasmgrid_tests::results(&mut client, &workload_id)
                    .await
                    .expect("results")
                    .0,
            )
        } else {
            None
        };
        let mut outcomes = Vec::new();
        for (index, (task, want)) in tasks.iter().zip(wants).enumerate() {
            // One run, on the agent, reported with its status.
            assert_eq!(task.history.len(), 1, "{name}, task {index}: {task:?}");
            let run = &task.history[0];
            assert_eq!(run.state, "reported", "{name}, task {index}: {run:?}");
            checked.agent_ids.push(run.agent_id.clone());
            let got = wasmgrid_proto::status_from_wire(run.status.as_ref())
                .unwrap_or_else(|e| panic!("{name}, task {index}: {e}: {run:?}"));
            outcomes.push(got.to_string());
            match want {
                Want::Ok(check) => {
                    assert_eq!(got, Status::Ok, "{name}, task {index}: {run:?}");
                    assert_eq!(task.state, v1::TaskState::Done as i32, "{name}");
                    if let Some(results) = &results {
                        check_output(name, index, &results[index].output, check);
                    }
                }
                Want::Status(expected) => {
                    assert_eq!(&got, expected, "{name}, task {index}: {run:?}");
                    match expected {
                        Status::OutOfFuel => assert_eq!(
                            run.fuel_consumed, case.submission.limits.fuel,
                            "{name}: out of fuel exactly at the limit"
                        ),
                        Status::Timeout => {
                            let wall = case.submission.limits.wall_time;
                            let ran = Duration::from_millis(run.wall_time_ms);
                            assert!(
                                ran >= wall && ran < wall + Duration::from_secs(5),
                                "{name}: ran {ran:?} for a wall time of {wall:?}"
                            );
                        }
                        _ => {}
                    }
                }
                Want::Trap(fragments) => {
                    let Status::Trap(message) = &got else {
                        panic!("{name}, task {index}: {got:?}, expected a trap");
                    };
                    assert!(
                        fragments.iter().any(|f| message.contains(f)),
                        "{name}, task {index}: trap {message:?}, expected one of {fragments:?}"
                    );
                }
            }
            if !matches!(want, Want::Ok(_)) {
                // The workload's failures name the task and its status.
                let failure = status
                    .failures
                    .iter()
                    .find(|failure| failure.index as usize == index)
                    .unwrap_or_else(|| panic!("{name}: task {index} not in {status:?}"));
                assert!(
                    failure
                        .reason
                        .contains(&format!("{got} on {}", run.agent_id)),
                    "{name}, task {index}: failure {:?} does not name {got}",
                    failure.reason
                );
            }
        }
        // The 50 MB module ran at its full initial memory.
        if name.starts_with("module of 50 MB: runs")
            && let Some(results) = &results
        {
            let peak = results[0].usage.as_ref().map_or(0, |u| u.peak_memory_bytes);
            assert_eq!(
                peak,
                u64::from((PAGE + BIG_DATA_BYTES).div_ceil(PAGE) * PAGE),
                "{name}"
            );
        }
        if name == "memory: grown to exactly the cap"
            && let Some(results) = &results
        {
            let peak = results[0].usage.as_ref().map_or(0, |u| u.peak_memory_bytes);
            assert_eq!(peak, CAP_BYTES, "{name}: peak memory is the cap");
        }
        checked.ended.push(Ended {
            name,
            submit: submit_time,
            to_final,
            outcome: outcomes.join(", "),
        });
    }
    checked
}

/// The issue's suite: every hostile module ends in its status on the agent,
/// the status reaches the broker, and the agent keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_modules_end_in_their_status_and_the_agent_keeps_working() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(&dir.path().join("broker"), &[]);
    let url = broker.url();
    let agent = AgentProcess::start(&url, &dir.path().join("agent"), "hostile", 2, &[]);
    let cases = cases();
    let built = started.elapsed();
    let Checked {
        ended,
        accepted,
        expect_ok,
        expect_failed,
        mut agent_ids,
    } = run_cases(&url, &agent, &cases).await;
    let hostile_done = started.elapsed();

    // One agent did everything, and the broker knows its results.
    agent_ids.sort();
    agent_ids.dedup();
    assert_eq!(agent_ids.len(), 1, "runs by {agent_ids:?}");
    let agent_id = agent_ids.remove(0);
    let agents = admin(&url)
        .await
        .list_agents(v1::ListAgentsRequest {})
        .await
        .expect("agents")
        .into_inner()
        .agents;
    assert_eq!(agents.len(), 1, "the agent registered once: {agents:?}");
    assert_eq!(agents[0].agent_id, agent_id);
    assert_eq!(
        (agents[0].tasks_ok, agents[0].tasks_failed),
        (expect_ok, expect_failed),
        "{:?}",
        agents[0]
    );
    let workloads = admin(&url)
        .await
        .list_workloads(v1::ListWorkloadsRequest {})
        .await
        .expect("workloads")
        .into_inner()
        .workloads;
    assert_eq!(workloads.len(), accepted, "refused submits stored nothing");

    // The same agent process still works, and exactly.
    let mut client = issuer(&url).await;
    let mut primes = Submission::primes(1_000_000, 4);
    primes.max_attempts = 1;
    let primes_id = primes.submit(&mut client).await.expect("submit primes");
    let status = wait_until_final(&mut client, &primes_id, FINAL_TIMEOUT).await;
    assert_eq!(
        status.state,
        v1::WorkloadState::Done as i32,
        "{status:?}\n{}",
        agent.log_tail()
    );
    let (_, end) = wasmgrid_tests::results(&mut client, &primes_id)
        .await
        .expect("results");
    assert!(end.reduced);
    assert_eq!(String::from_utf8_lossy(&end.output), PI_OF_1E6.to_string());
    let tasks = client
        .list_tasks(v1::WorkloadRequest {
            workload_id: primes_id,
        })
        .await
        .expect("tasks")
        .into_inner()
        .tasks;
    assert!(
        tasks
            .iter()
            .all(|task| task.history.len() == 1 && task.history[0].agent_id == agent_id),
        "{tasks:?}"
    );

    // Nothing panicked, nothing was handed back unrun.
    let agent_log = std::fs::read_to_string(&agent.log).expect("agent log");
    let broker_log = std::fs::read_to_string(&broker.log).expect("broker log");
    for (who, log) in [("agent", &agent_log), ("broker", &broker_log)] {
        assert!(!log.contains("panicked"), "{who} panicked:\n{log}");
    }
    for sign in ["lease released", "sandbox failure", "agent stopped"] {
        assert!(
            !agent_log.contains(sign),
            "agent log has {sign:?}:\n{agent_log}"
        );
    }

    eprintln!(
        "hostile grid: modules built in {built:?}, hostile cases ended after {hostile_done:?}, \
         all done in {:?}",
        started.elapsed()
    );
    for ended in &ended {
        eprintln!(
            "  {:<55} submit {:>6} ms, final {:>6} ms: {}",
            ended.name,
            ended.submit.as_millis(),
            ended.to_final.as_millis(),
            ended.outcome
        );
    }
}

/// A module that would compile for tens of seconds and about a GiB of
/// memory: 236 KB, far under the 128 MiB module limit (measured on a 2-core
/// machine: 29 s and 1.1 GB with `wasmgrid run`; 5000 locals × 20 000
/// branches, 318 KB, took 99 s and 3.2 GB). Compiling is not metered, and
/// the broker compiles every module at submit on its one sandbox thread:
/// such a submit used to hold every other issuer's submit until it was
/// done. The runtime now bounds locals × branches per function and per
/// module before compiling (`runtime/src/compile_cost.rs`), so the broker
/// refuses it at once, and so would an agent given it anyway.
///
/// The contract tested: a submit is answered (refused, or accepted) within
/// `COMPILE_BOUND`; another issuer's submit meanwhile is answered within
/// `OTHER_SUBMIT_BOUND`; and if accepted, the task ends within its wall
/// time plus `COMPILE_BOUND` with a status, while the agent keeps running
/// other work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compile_bomb_is_refused_or_bounded_and_blocks_no_one() {
    const COMPILE_BOUND: Duration = Duration::from_secs(10);
    const OTHER_SUBMIT_BOUND: Duration = Duration::from_secs(5);
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(&dir.path().join("broker"), &[]);
    let url = broker.url();
    let agent = AgentProcess::start(&url, &dir.path().join("agent"), "bombed", 2, &[]);
    let mut bomb = case(
        "compile bomb",
        compile_heavy(2_000, 15_000),
        limits(CAP_BYTES, FUEL, Duration::from_secs(2)),
        one(Want::Ok(Output::Exactly(Vec::new()))),
    );
    bomb.submission.issuer = "bomber".into();
    let bomb_url = url.clone();
    let started = Instant::now();
    let bomb_submit = tokio::spawn(async move {
        let mut client = issuer(&bomb_url).await;
        let result = submit(&mut client, &bomb).await;
        (result, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Another issuer's plain submit is not held up by the bomb.
    let mut client = issuer(&url).await;
    let echo = Submission::new(sample("echo"), vec![b"still here".to_vec()]);
    let other = tokio::time::timeout(OTHER_SUBMIT_BOUND, echo.submit(&mut client)).await;
    let bomb_answer =
        tokio::time::timeout(COMPILE_BOUND.saturating_sub(started.elapsed()), bomb_submit).await;
    let mut problems = Vec::new();
    if other.is_err() {
        problems.push(format!(
            "another issuer's submit of echo was not answered within {OTHER_SUBMIT_BOUND:?} \
             while the bomb was compiling (the broker compiles every submit on one thread)"
        ));
    }
    let bomb_result = match bomb_answer {
        Err(_) => {
            problems.push(format!(
                "the bomb's submit was neither refused nor accepted within {COMPILE_BOUND:?}: \
                 the broker is still compiling it"
            ));
            None
        }
        Ok(joined) => Some(joined.expect("bomb submit task")),
    };
    assert!(
        problems.is_empty(),
        "{}\nbroker log:\n{}",
        problems.join("\n"),
        broker.log_tail()
    );

    // Refused, or accepted and bounded on the agent.
    let (result, answered_after) = bomb_result.expect("answered");
    if let Ok(bomb_id) = result {
        let bound = Duration::from_secs(2) + COMPILE_BOUND;
        let ended = tokio::time::timeout(
            bound,
            wait_until_final(&mut client, &bomb_id, FINAL_TIMEOUT),
        )
        .await;
        assert!(
            ended.is_ok(),
            "accepted after {answered_after:?}, the bomb still runs on the agent after {bound:?}:\n{}",
            agent.log_tail()
        );
    } else if let Err(status) = result {
        assert_eq!(status.code(), GrpcCode::InvalidArgument, "{status}");
        assert!(
            status.message().contains("too much to compile")
                && status.message().contains("2000 locals × 15000 branches"),
            "{status}"
        );
    }
    let echo_id = match other {
        Ok(Ok(id)) => id,
        other => panic!("echo submit: {other:?}"),
    };
    let status = wait_until_final(&mut client, &echo_id, FINAL_TIMEOUT).await;
    assert_eq!(status.state, v1::WorkloadState::Done as i32, "{status:?}");
}

/// A module that declares 2 GiB of initial memory, run under a 16 MiB cap,
/// must end in `MemoryLimit` on every machine (docs/runtime.md: the limiter
/// refuses the initial size too; `runtime/tests/sandbox/hostile.rs` pins
/// it for a runtime with the default 4 GiB memory slots). The broker, with
/// 4 GiB slots, accepts it at submit. An agent sizes its pooling
/// allocator's memory slots by its `--memory` (1 GiB for `AgentProcess`),
/// and wasmtime refuses to compile a module whose declared minimum exceeds
/// a slot; so the runtime compares the declared minimum with the task's cap
/// before compiling (`runtime/src/declared_sizes.rs`), and the status does
/// not depend on the agent's `--memory`. (Regression test: the run used to
/// end `InvalidModule("module memory does not fit in pooling allocator
/// requirements …")`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_memory_above_an_agents_memory_slot_is_a_memory_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(&dir.path().join("broker"), &[]);
    let url = broker.url();
    let agent = AgentProcess::start(&url, &dir.path().join("agent"), "one-gib", 1, &[]);
    let cases = [case(
        "memory: 2 GiB declared as initial memory",
        data_segment(32_768, 0, b"x".to_vec()),
        limits(CAP_BYTES, FUEL, WALL),
        one(Want::Status(Status::MemoryLimit)),
    )];
    run_cases(&url, &agent, &cases).await;
}
