//! [`Runtime`]: the public entry point. Validates limits, finds or compiles
//! the module, and runs the task on an executor thread.

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::artifact_dir::ArtifactDir;
use crate::declared_sizes;
use crate::engine::{EngineClass, Engines};
use crate::executor::Executor;
use crate::limits::{MAX_STACK_BYTES, MIN_STACK_BYTES};
use crate::module_cache::{ModuleCache, Preparation};
use crate::module_check;
use crate::module_hash::TaskModule;
use crate::outcome::{METERING_VERSION, Outcome, Status, Usage};
use crate::{Limits, RuntimeConfig, RuntimeError, sandbox};

/// Largest fuel limit: wasmtime keeps fuel in an `i64`.
pub const MAX_FUEL: u64 = i64::MAX as u64;

/// The sandbox. One per process: it owns the engines, the compiled-module
/// cache and the task threads. Cheap to clone and safe to share between
/// threads and async tasks.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    config: RuntimeConfig,
    engines: Engines,
    modules: ModuleCache,
    executor: Executor,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Sets up the engines, the module cache and the task threads.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let disk = config
            .cache_dir
            .as_deref()
            .map(ArtifactDir::open)
            .transpose()?;
        let inner = Inner {
            engines: Engines::new(config.clone())?,
            modules: ModuleCache::new(config.max_cached_modules, disk),
            executor: Executor::start(config.max_concurrent_tasks.get())?,
            config,
        };
        Ok(Runtime {
            inner: Arc::new(inner),
        })
    }

    /// The runtime's setup.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// The fuel rules tasks are metered by (see [`METERING_VERSION`]): those
    /// of [`Compiler::Optimizing`](crate::Compiler). A module compiled with
    /// the baseline compiler says so in its outcome's
    /// [`Usage::metering_version`].
    pub fn metering_version(&self) -> &'static str {
        METERING_VERSION
    }

    /// Runs one task: `module` with `input` on stdin, under `limits`, with
    /// `random_get` seeded by `seed`. Waits for a free task thread.
    ///
    /// A task's own failure (bad module, trap, limit) is an `Ok` outcome with
    /// its [`Status`]; `Err` means the host could not run it at all.
    pub async fn run(
        &self,
        module: &TaskModule,
        input: Vec<u8>,
        limits: &Limits,
        seed: u64,
    ) -> Result<Outcome, RuntimeError> {
        let (done, outcome) = oneshot::channel();
        self.submit(module, input, limits, seed, move |result| {
            let _ = done.send(result);
        })?;
        outcome.await.map_err(|_| RuntimeError::TaskPanicked)?
    }

    /// [`Runtime::run`] for callers without an async runtime; blocks.
    pub fn run_blocking(
        &self,
        module: &TaskModule,
        input: Vec<u8>,
        limits: &Limits,
        seed: u64,
    ) -> Result<Outcome, RuntimeError> {
        let (done, outcome) = std::sync::mpsc::channel();
        self.submit(module, input, limits, seed, move |result| {
            let _ = done.send(result);
        })?;
        outcome.recv().map_err(|_| RuntimeError::TaskPanicked)?
    }

    /// Checks, without compiling it, that `module` can run under `limits`:
    /// valid wasm for this runtime, within the compile-cost bound and the
    /// table cap, a WASI command importing only what the sandbox provides.
    /// Milliseconds where [`Runtime::prepare`] takes a compile. What it
    /// cannot see is a module Cranelift itself refuses (an implementation
    /// limit); `prepare` and every run still report that as `InvalidModule`.
    pub async fn check(&self, module: &TaskModule, limits: &Limits) -> Result<(), RuntimeError> {
        self.on_task_thread(module, limits, |_, class, module, _| {
            module_check::check(class, module.bytes())
        })
        .await
    }

    /// Compiles `module` for `limits`' stack class ahead of its first task,
    /// e.g. when an agent fetches it. Returns why it cannot run, if it cannot.
    pub async fn prepare(&self, module: &TaskModule, limits: &Limits) -> Result<(), RuntimeError> {
        self.on_task_thread(module, limits, |inner, class, module, limits| {
            if initial_memory_above_cap(class, module, limits) {
                // Runnable: its runs end in `MemoryLimit`, as `run` says.
                return Ok(());
            }
            inner.prepared(class, module).map(|_| ())
        })
        .await
    }

    /// Runs `job` on a task thread with the engine of `limits`' stack class;
    /// its `Err` is why the module cannot run.
    async fn on_task_thread(
        &self,
        module: &TaskModule,
        limits: &Limits,
        job: fn(&Inner, &Arc<EngineClass>, &TaskModule, &Limits) -> Result<(), String>,
    ) -> Result<(), RuntimeError> {
        let (done, finished) = oneshot::channel();
        let inner = Arc::clone(&self.inner);
        let module = module.clone();
        let limits = limits.clone();
        self.inner.executor.submit(move || {
            let result = inner
                .engines
                .class(limits.stack_class())
                .map(|class| job(&inner, &class, &module, &limits));
            let _ = done.send(result);
        })?;
        match finished.await.map_err(|_| RuntimeError::TaskPanicked)?? {
            Ok(()) => Ok(()),
            Err(reason) => Err(RuntimeError::InvalidModule(reason)),
        }
    }

    /// True if `module` is compiled and in memory for `limits`' stack class.
    pub fn is_prepared(&self, module: &TaskModule, limits: &Limits) -> bool {
        self.inner
            .engines
            .class(limits.stack_class())
            .is_ok_and(|class| self.inner.modules.contains(&class, module.hash()))
    }

    fn submit(
        &self,
        module: &TaskModule,
        input: Vec<u8>,
        limits: &Limits,
        seed: u64,
        done: impl FnOnce(Result<Outcome, RuntimeError>) + Send + 'static,
    ) -> Result<(), RuntimeError> {
        self.check_limits(limits)?;
        let inner = Arc::clone(&self.inner);
        let module = module.clone();
        let limits = limits.clone();
        self.inner
            .executor
            .submit(move || done(inner.execute(&module, input, &limits, seed)))
    }

    fn check_limits(&self, limits: &Limits) -> Result<(), RuntimeError> {
        let config = &self.inner.config;
        let invalid = |why: String| Err(RuntimeError::InvalidLimits(why));
        if limits.memory_bytes > config.max_memory_bytes {
            return invalid(format!(
                "memory {} bytes is above this runtime's maximum of {}",
                limits.memory_bytes, config.max_memory_bytes
            ));
        }
        if limits.fuel > MAX_FUEL {
            return invalid(format!(
                "fuel {} is above the maximum {MAX_FUEL}",
                limits.fuel
            ));
        }
        if !(MIN_STACK_BYTES..=MAX_STACK_BYTES).contains(&limits.max_stack_bytes) {
            return invalid(format!(
                "stack {} bytes is outside {MIN_STACK_BYTES}..={MAX_STACK_BYTES}",
                limits.max_stack_bytes
            ));
        }
        Ok(())
    }
}

/// Whether a valid `module` declares more initial memory than `limits`
/// allow. Such a run ends as the growth past the cap would, in
/// `MemoryLimit`, without compiling: whether compiling it succeeds depends
/// on this machine's memory slots (the pooling allocator's are sized by the
/// runtime's largest memory), and the status must not.
fn initial_memory_above_cap(class: &EngineClass, module: &TaskModule, limits: &Limits) -> bool {
    // Reading the sections before the code is cheap; validating the whole
    // module is not, and is needed only for a module over the cap.
    declared_sizes::read(module.bytes()).min_memory_bytes > limits.memory_bytes
        && declared_sizes::is_valid(&class.engine, module.bytes())
}

impl Inner {
    /// `module` ready to run in `class`'s stack size, compiled once: checked
    /// by `class` (Cranelift's engine), compiled by the baseline engine when
    /// the runtime is configured for one (see `module_cache`).
    fn prepared(&self, class: &Arc<EngineClass>, module: &TaskModule) -> Preparation {
        let baseline = self.engines.baseline(class.stack_bytes);
        self.modules.get(class, baseline.as_ref(), module)
    }

    /// Runs on a task thread.
    fn execute(
        &self,
        module: &TaskModule,
        input: Vec<u8>,
        limits: &Limits,
        seed: u64,
    ) -> Result<Outcome, RuntimeError> {
        let class = self.engines.class(limits.stack_class())?;
        if initial_memory_above_cap(&class, module, limits) {
            return Ok(Outcome {
                status: Status::MemoryLimit,
                output: Vec::new(),
                stderr: Vec::new(),
                usage: Usage {
                    metering_version: METERING_VERSION,
                    ..Usage::default()
                },
            });
        }
        match self.prepared(&class, module) {
            Ok(prepared) => Ok(sandbox::run(&prepared, &self.config, input, limits, seed)),
            Err(reason) => Ok(Outcome {
                status: Status::InvalidModule(reason),
                output: Vec::new(),
                stderr: Vec::new(),
                usage: Usage {
                    metering_version: METERING_VERSION,
                    ..Usage::default()
                },
            }),
        }
    }
}
