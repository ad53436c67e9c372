//! The wasmtime engines, one per stack size class and compiler, all
//! configured for determinism and metering, and the epoch ticker that paces
//! unmetered tasks (metered ones yield on fuel instead: see `sandbox`).
//!
//! wasmtime fixes the wasm stack limit per engine, so each stack class
//! ([`Limits::stack_class`](crate::Limits)) gets its own engine, created on
//! first use; at most eight classes exist (64 KiB … 8 MiB). Cranelift's
//! engine of a class is the authority on what runs: it checks modules, and
//! compiles whatever the baseline engine (Winch, when configured) cannot.

use std::collections::HashMap;
use std::hash::Hasher;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, Linker, OperatorCost, PoolingAllocationConfig,
    Strategy,
};

use crate::command_shape::ProvidedImports;
use crate::limiter::MAX_TABLE_ELEMENTS;
use crate::outcome::{BASELINE_METERING_VERSION, METERING_VERSION};
use crate::wasi::{self, TaskState};
use crate::{Compiler, RuntimeConfig, RuntimeError};

/// How often the epoch advances, when tasks are not metered: an unmetered
/// task yields at each tick, so its wall-time limit is enforced to within
/// one tick; 5 ms keeps that tight while costing one atomic add per engine.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Fuel per 64 KiB page requested by `memory.grow` (wasmtime charges none by
/// default): growing memory makes the host map and later zero pages.
const MEMORY_GROW_FUEL_PER_PAGE: u8 = 64;

/// An engine for one stack class and compiler, with the WASI linker built
/// for it.
pub(crate) struct EngineClass {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<TaskState>,
    pub(crate) stack_bytes: usize,
    /// The fuel rules of the code this engine compiles.
    pub(crate) metering_version: &'static str,
    /// What `linker` defines, with types: a module's imports are checked
    /// against it without compiling the module.
    pub(crate) imports: ProvidedImports,
    /// Identifies the engine's code generation settings: a compiled artifact
    /// is only reused by an engine with the same fingerprint.
    pub(crate) fingerprint: String,
}

/// An engine's stack size and compiler.
type ClassKey = (usize, Compiler);

/// All engines of a runtime.
pub(crate) struct Engines {
    config: RuntimeConfig,
    /// By stack class and compiler; `None` where wasmtime refused the
    /// baseline compiler's engine.
    classes: Mutex<HashMap<ClassKey, Option<Arc<EngineClass>>>>,
    /// Only without fuel metering: metered tasks yield on fuel.
    ticker: Option<EpochTicker>,
}

impl Engines {
    pub(crate) fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let ticker = if config.fuel_metering {
            None
        } else {
            Some(EpochTicker::start()?)
        };
        Ok(Engines {
            config,
            classes: Mutex::new(HashMap::new()),
            ticker,
        })
    }

    /// Cranelift's engine for `stack_bytes` (a power of two), created on
    /// first use: the one that checks modules, and compiles them unless
    /// [`Engines::baseline`] does.
    pub(crate) fn class(&self, stack_bytes: usize) -> Result<Arc<EngineClass>, RuntimeError> {
        self.engine_for(stack_bytes, Compiler::Optimizing)?
            .ok_or_else(|| RuntimeError::Engine("Cranelift's engine could not be created".into()))
    }

    /// Winch's engine for `stack_bytes`, when the runtime is configured for
    /// [`Compiler::Baseline`] and Winch can compile for this machine; else
    /// `None`, and Cranelift compiles.
    pub(crate) fn baseline(&self, stack_bytes: usize) -> Option<Arc<EngineClass>> {
        if self.config.compiler != Compiler::Baseline || !BASELINE_AVAILABLE {
            return None;
        }
        match self.engine_for(stack_bytes, Compiler::Baseline) {
            Ok(class) => class,
            Err(error) => {
                tracing::warn!(%error, "the baseline compiler is unavailable; Cranelift compiles");
                None
            }
        }
    }

    /// The engine of `compiler` for `stack_bytes`, created on first use;
    /// `None` if the baseline compiler's was refused before.
    fn engine_for(
        &self,
        stack_bytes: usize,
        compiler: Compiler,
    ) -> Result<Option<Arc<EngineClass>>, RuntimeError> {
        let mut classes = self.classes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(class) = classes.get(&(stack_bytes, compiler)) {
            return Ok(class.clone());
        }
        let class = match new_class(&self.config, stack_bytes, compiler) {
            Ok(class) => Arc::new(class),
            Err(error) => {
                // Not tried again (nor logged again): Winch refuses the same
                // settings on the same machine every time.
                if compiler == Compiler::Baseline {
                    classes.insert((stack_bytes, compiler), None);
                }
                return Err(error);
            }
        };
        if let Some(ticker) = &self.ticker {
            ticker.tick(class.engine.clone());
        }
        classes.insert((stack_bytes, compiler), Some(Arc::clone(&class)));
        Ok(Some(class))
    }
}

fn new_class(
    config: &RuntimeConfig,
    stack_bytes: usize,
    compiler: Compiler,
) -> Result<EngineClass, RuntimeError> {
    let engine = build_engine(config, stack_bytes, compiler)?;
    let mut linker = Linker::new(&engine);
    wasi::add_to_linker(&mut linker).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
    let metering_version = match compiler {
        Compiler::Optimizing => METERING_VERSION,
        Compiler::Baseline => BASELINE_METERING_VERSION,
    };
    Ok(EngineClass {
        imports: ProvidedImports::of(&engine, &linker),
        fingerprint: fingerprint(&engine, metering_version),
        engine,
        linker,
        stack_bytes,
        metering_version,
    })
}

/// Winch compiles for x86-64 only (its aarch64 backend is unfinished).
const BASELINE_AVAILABLE: bool = cfg!(target_arch = "x86_64");

fn build_engine(
    config: &RuntimeConfig,
    stack_bytes: usize,
    compiler: Compiler,
) -> Result<Engine, RuntimeError> {
    let mut wasm = base_config(config, stack_bytes);
    if compiler == Compiler::Baseline {
        wasm.strategy(Strategy::Winch);
    }
    if config.pooling {
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling(config)));
        match Engine::new(&wasm) {
            Ok(engine) => return Ok(engine),
            Err(error) => tracing::warn!(
                error = %format!("{error:#}"),
                "pooling allocator unavailable, falling back to on-demand allocation"
            ),
        }
        wasm.allocation_strategy(InstanceAllocationStrategy::OnDemand);
    }
    Engine::new(&wasm).map_err(|e| RuntimeError::Engine(format!("{e:#}")))
}

/// Settings that make a task deterministic and metered.
fn base_config(config: &RuntimeConfig, stack_bytes: usize) -> Config {
    let mut wasm = Config::new();
    wasm.consume_fuel(config.fuel_metering)
        // A metered task yields every `sandbox::FUEL_PER_SLICE` of fuel, where
        // its time is kept; an epoch check in every loop and function would
        // only repeat the fuel check, and cost a quarter of a tight loop.
        .epoch_interruption(!config.fuel_metering)
        .max_wasm_stack(stack_bytes)
        // Tasks run on a fiber stack of this size (they are futures, polled
        // by the task thread): the wasm stack plus room for host calls.
        .async_stack_size(stack_bytes + (1 << 20))
        // NaN bit patterns are the one non-determinism of scalar and SIMD
        // float arithmetic across CPUs. (Winch honours the flag too.)
        .cranelift_nan_canonicalization(true)
        .wasm_relaxed_simd(false)
        .wasm_memory64(false)
        .wasm_multi_memory(false)
        // Backtraces cost time on every trap and name host internals;
        // the trap kind is what the status reports.
        .wasm_backtrace_max_frames(None);
    if config.fuel_metering {
        let mut costs = OperatorCost::new();
        costs.variable.memory_grow_per_page = MEMORY_GROW_FUEL_PER_PAGE;
        wasm.operator_cost(costs);
    }
    wasm
}

/// Slots for as many tasks as may run at once; each slot reserves address
/// space (not memory) for a task's largest allowed linear memory.
fn pooling(config: &RuntimeConfig) -> PoolingAllocationConfig {
    let slots = u32::try_from(config.max_concurrent_tasks.get()).unwrap_or(u32::MAX);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(slots)
        .total_stacks(slots)
        .total_memories(slots)
        .total_tables(slots.saturating_mul(4))
        .max_memories_per_module(1)
        .max_tables_per_module(4)
        .table_elements(MAX_TABLE_ELEMENTS)
        .max_memory_size(usize::try_from(config.max_memory_bytes).unwrap_or(usize::MAX));
    pool
}

/// A stable digest of what makes compiled code compatible with an engine:
/// its settings (the compiler among them) and the fuel rules of its code.
fn fingerprint(engine: &Engine, metering_version: &str) -> String {
    struct ShaHasher(Sha256);
    impl Hasher for ShaHasher {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = ShaHasher(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    hasher.write(metering_version.as_bytes());
    hex::encode(&hasher.0.finalize()[..16])
}

/// A thread that advances every engine's epoch each [`EPOCH_TICK`]; it stops
/// when dropped.
struct EpochTicker {
    /// The engines it advances.
    engines: Arc<Mutex<Vec<Engine>>>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start() -> Result<Self, RuntimeError> {
        let engines = Arc::new(Mutex::new(Vec::<Engine>::new()));
        let ticked = Arc::clone(&engines);
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("wasmgrid-epoch".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EPOCH_TICK) {
                    for engine in ticked.lock().unwrap_or_else(PoisonError::into_inner).iter() {
                        engine.increment_epoch();
                    }
                }
            })
            .map_err(RuntimeError::Thread)?;
        Ok(EpochTicker {
            engines,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Advances `engine`'s epoch from now on.
    fn tick(&self, engine: Engine) {
        self.engines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(engine);
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
