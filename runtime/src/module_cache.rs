//! Compiled modules, cached by (stack class, module sha256): compiled once,
//! even when many tasks of the same workload arrive at once, and kept in
//! memory up to a count (least recently used dropped), optionally backed by
//! an [`ArtifactDir`] on disk. A module is checked by Cranelift's engine,
//! then compiled by the baseline engine if there is one, by Cranelift's if
//! not or if the baseline compiler fails on it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use wasmtime::{InstancePre, Module};

use crate::artifact_dir::ArtifactDir;
use crate::engine::EngineClass;
use crate::module_check;
use crate::module_hash::{ModuleHash, TaskModule};
use crate::wasi::TaskState;

/// A module ready to instantiate: compiled, checked and linked.
pub(crate) struct Prepared {
    pub(crate) instance_pre: InstancePre<TaskState>,
    /// The engine that compiled it, which its runs use.
    pub(crate) class: Arc<EngineClass>,
}

/// A prepared module, or why the module cannot run (an `InvalidModule`
/// status). Failures are cached too: a broken module is rejected once.
pub(crate) type Preparation = Result<Arc<Prepared>, String>;

type Key = (usize, ModuleHash);

struct Entry {
    cell: Arc<OnceLock<Preparation>>,
    last_used: u64,
}

pub(crate) struct ModuleCache {
    capacity: usize,
    entries: Mutex<(HashMap<Key, Entry>, u64)>,
    disk: Option<ArtifactDir>,
}

impl ModuleCache {
    pub(crate) fn new(capacity: usize, disk: Option<ArtifactDir>) -> Self {
        ModuleCache {
            capacity: capacity.max(1),
            entries: Mutex::new((HashMap::new(), 0)),
            disk,
        }
    }

    /// The prepared module, compiling it (once) if needed: checked by
    /// `class` (Cranelift's engine), compiled by `baseline` if given.
    pub(crate) fn get(
        &self,
        class: &Arc<EngineClass>,
        baseline: Option<&Arc<EngineClass>>,
        module: &TaskModule,
    ) -> Preparation {
        let cell = {
            let mut guard = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            let (entries, clock) = &mut *guard;
            *clock += 1;
            let key = (class.stack_bytes, module.hash());
            if !entries.contains_key(&key) && entries.len() >= self.capacity {
                evict_least_recent(entries);
            }
            let entry = entries.entry(key).or_insert_with(|| Entry {
                cell: Arc::new(OnceLock::new()),
                last_used: 0,
            });
            entry.last_used = *clock;
            Arc::clone(&entry.cell)
        };
        cell.get_or_init(|| self.prepare(class, baseline, module))
            .clone()
    }

    /// True if the module is compiled and in memory for this class.
    pub(crate) fn contains(&self, class: &EngineClass, hash: ModuleHash) -> bool {
        let guard = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        guard
            .0
            .get(&(class.stack_bytes, hash))
            .is_some_and(|entry| entry.cell.get().is_some())
    }

    fn prepare(
        &self,
        class: &Arc<EngineClass>,
        baseline: Option<&Arc<EngineClass>>,
        module: &TaskModule,
    ) -> Preparation {
        module_check::check(class, module.bytes())?;
        if let Some(baseline) = baseline {
            match self.compile_and_link(baseline, module) {
                Ok(prepared) => return Ok(prepared),
                // Valid for Cranelift, so a wasm feature or an
                // implementation limit of Winch's.
                Err(error) => tracing::info!(
                    module = %module.hash(),
                    %error,
                    "the baseline compiler cannot compile this module; Cranelift compiles it"
                ),
            }
        }
        self.compile_and_link(class, module)
    }

    fn compile_and_link(&self, class: &Arc<EngineClass>, module: &TaskModule) -> Preparation {
        let compiled = self.compile(class, module)?;
        let instance_pre = class
            .linker
            .instantiate_pre(&compiled)
            .map_err(|e| format!("{e:#}"))?;
        Ok(Arc::new(Prepared {
            instance_pre,
            class: Arc::clone(class),
        }))
    }

    fn compile(&self, class: &EngineClass, module: &TaskModule) -> Result<Module, String> {
        if let Some(compiled) = self
            .disk
            .as_ref()
            .and_then(|d| d.load(class, module.hash()))
        {
            return Ok(compiled);
        }
        let compiled = Module::new(&class.engine, module.bytes()).map_err(|e| format!("{e:#}"))?;
        if let Some(disk) = &self.disk {
            disk.store(class, module.hash(), &compiled);
        }
        Ok(compiled)
    }
}

fn evict_least_recent(entries: &mut HashMap<Key, Entry>) {
    if let Some(oldest) = entries
        .iter()
        .min_by_key(|(_, entry)| entry.last_used)
        .map(|(key, _)| *key)
    {
        entries.remove(&oldest);
    }
}
