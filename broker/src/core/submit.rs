//! Validating and storing a new workload: nothing is stored unless all of it
//! checks out, and everything is stored in one transaction before the
//! workload id is returned.

use std::sync::Arc;
use std::time::Duration;

use wasmgrid_proto::MAX_OUTPUT_BYTES;
use wasmgrid_runtime::{
    Limits, MAX_FUEL, MAX_STACK_BYTES, MIN_STACK_BYTES, ModuleHash, RuntimeError, TaskModule,
};

use crate::core::{Broker, billing};
use crate::error::{BrokerError, BrokerResult};
use crate::ids::{new_workload_id, now_ms};
use crate::pricing::{Pricing, credits_text};
use crate::scheduler::PendingTask;
use crate::store::ledger;
use crate::store::workloads::{WorkloadRow, WorkloadState};
use crate::store::{modules, tasks, workloads};

/// Most replicas of one task: each is a full run on another machine.
pub const MAX_REPLICAS: u32 = 16;
/// Most attempts of one task.
pub const MAX_ATTEMPTS: u32 = 100;
/// Longest wall time of one task: a day.
const MAX_WALL_TIME: Duration = Duration::from_secs(24 * 3600);
/// Replicas when the issuer says 0.
const DEFAULT_REPLICAS: u32 = 1;
/// Attempts when the issuer says 0.
const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// A complete, received submission.
#[derive(Debug)]
pub struct NewWorkload {
    pub issuer: String,
    pub name: String,
    pub limits: Limits,
    pub replicas: u32,
    /// Agreeing results needed; 0 means all replicas.
    pub quorum: u32,
    pub adaptive: bool,
    pub max_attempts: u32,
    pub credits_per_fuel: f64,
    pub credits_per_mib_second: f64,
    pub module: Vec<u8>,
    pub reducer: Option<Vec<u8>>,
    pub inputs: Vec<Vec<u8>>,
}

impl Broker {
    /// Checks and stores a workload; returns its id and task count.
    pub async fn submit(&self, new: NewWorkload) -> BrokerResult<(String, u32)> {
        let replicas = if new.replicas == 0 {
            DEFAULT_REPLICAS
        } else {
            new.replicas
        };
        let max_attempts = if new.max_attempts == 0 {
            DEFAULT_MAX_ATTEMPTS
        } else {
            new.max_attempts
        };
        let quorum = if new.quorum == 0 {
            replicas
        } else {
            new.quorum
        };
        self.check_submission(&new, replicas, max_attempts)?;
        if quorum > replicas {
            return Err(BrokerError::invalid(format!(
                "quorum ({quorum}) must be at most the replicas ({replicas})"
            )));
        }
        let pricing = Pricing::from_rates(
            new.credits_per_fuel,
            new.credits_per_mib_second,
            self.config.fee_basis_points,
        )?;
        let task_count =
            u32::try_from(new.inputs.len()).map_err(|_| BrokerError::invalid("too many tasks"))?;
        let escrow_micro =
            pricing.escrow(task_count, quorum, new.limits.fuel, new.limits.memory_bytes)?;
        self.check_balance(&new.issuer, escrow_micro).await?;
        let checking = std::time::Instant::now();
        let module = TaskModule::new(new.module);
        self.check_module(&module, &new.limits, "module").await?;
        let reducer = new.reducer.map(TaskModule::new);
        if let Some(reducer) = &reducer {
            self.check_module(reducer, &new.limits, "reducer").await?;
        }
        let checked = checking.elapsed();
        let now = now_ms();
        let row = WorkloadRow {
            id: new_workload_id(),
            issuer: new.issuer,
            name: new.name,
            module_sha256: module.hash().to_hex(),
            reducer_sha256: reducer.as_ref().map(|r| r.hash().to_hex()),
            limits: new.limits,
            replicas,
            quorum,
            adaptive: new.adaptive,
            max_attempts,
            credits_per_fuel: new.credits_per_fuel,
            credits_per_mib_second: new.credits_per_mib_second,
            fee_basis_points: pricing.fee_basis_points,
            escrow_micro,
            task_count,
            state: WorkloadState::Running,
            error: None,
            reduced: false,
            created_ms: now,
            finished_ms: None,
        };
        // The scheduler is not locked while the tasks are stored (up to
        // seconds for 10^6 tasks): agents go on being served. Nobody knows
        // the workload's id before this returns, so nothing can touch it
        // between the commit and the scheduler learning of it.
        let mut tx = self.store.write().await?;
        modules::insert(&mut tx, &row.module_sha256, module.bytes(), now).await?;
        if let (Some(reducer), Some(sha)) = (&reducer, &row.reducer_sha256) {
            modules::insert(&mut tx, sha, reducer.bytes(), now).await?;
        }
        workloads::insert(&mut tx, &row).await?;
        billing::escrow(&mut tx, &row, now).await?;
        tasks::insert_all(&mut tx, &row.id, &new.inputs).await?;
        tx.commit().await?;
        let stored = checking.elapsed() - checked;
        let id = row.id.clone();
        if let Some(reducer) = reducer {
            self.compile_reducer_ahead(reducer, row.limits.clone());
        }
        let pending = (0..task_count)
            .map(|index| PendingTask {
                index,
                ..PendingTask::default()
            })
            .collect();
        self.scheduler
            .lock()
            .await
            .add_workload(Arc::new(row), pending);
        self.changed();
        tracing::info!(
            workload = %id,
            tasks = task_count,
            checked_ms = checked.as_millis(),
            stored_ms = stored.as_millis(),
            "workload submitted"
        );
        Ok((id, task_count))
    }

    fn check_submission(
        &self,
        new: &NewWorkload,
        replicas: u32,
        max_attempts: u32,
    ) -> BrokerResult<()> {
        let invalid = |why: String| Err(BrokerError::InvalidArgument(why));
        let limits = &new.limits;
        let max_memory = self.runtime.config().max_memory_bytes;
        if new.issuer.is_empty() || new.issuer.len() > 128 {
            return invalid("issuer must be 1 to 128 bytes".into());
        }
        if new.name.len() > 256 {
            return invalid("name must be at most 256 bytes".into());
        }
        if new.inputs.is_empty() {
            return invalid("a workload needs at least one task input".into());
        }
        if new.inputs.len() as u64 > u64::from(self.config.max_tasks_per_workload) {
            return invalid(format!(
                "at most {} tasks per workload",
                self.config.max_tasks_per_workload
            ));
        }
        if !(64 << 10..=max_memory).contains(&limits.memory_bytes) {
            return invalid(format!(
                "memory must be between 64 KiB and {max_memory} bytes"
            ));
        }
        if !(1..=MAX_FUEL).contains(&limits.fuel) {
            return invalid(format!("fuel must be between 1 and {MAX_FUEL}"));
        }
        if limits.wall_time.is_zero() || limits.wall_time > MAX_WALL_TIME {
            return invalid("timeout must be between 1 ms and 24 h".into());
        }
        if !(1..=MAX_OUTPUT_BYTES).contains(&limits.max_output_bytes) {
            return invalid(format!(
                "max output must be between 1 and {MAX_OUTPUT_BYTES} bytes"
            ));
        }
        if !(MIN_STACK_BYTES..=MAX_STACK_BYTES).contains(&limits.max_stack_bytes) {
            return invalid(format!(
                "stack must be between {MIN_STACK_BYTES} and {MAX_STACK_BYTES} bytes"
            ));
        }
        if replicas > MAX_REPLICAS {
            return invalid(format!("replicas must be at most {MAX_REPLICAS}"));
        }
        if max_attempts > MAX_ATTEMPTS {
            return invalid(format!("max attempts must be at most {MAX_ATTEMPTS}"));
        }
        Ok(())
    }

    /// Refuses early, before compiling anything, a submit whose issuer
    /// cannot cover the escrow (the submit's transaction checks again).
    async fn check_balance(&self, issuer: &str, escrow: i64) -> BrokerResult<()> {
        if escrow == 0 {
            return Ok(());
        }
        let mut conn = self.store.conn().await?;
        let balance = ledger::balance(&mut conn, &ledger::issuer_account(issuer)).await?;
        if balance < escrow {
            return Err(BrokerError::FailedPrecondition(format!(
                "insufficient credits: the workload needs an escrow of {} credits (every task \
                 paid at its limits, plus the broker's fee) but issuer {issuer} holds {}; \
                 ask the broker's admin for a grant, or lower --fuel, --memory or the rates",
                credits_text(escrow),
                credits_text(balance)
            )));
        }
        Ok(())
    }

    /// Checks the module in the broker's sandbox without compiling it
    /// (`Runtime::check`): a module that cannot run is refused at submit,
    /// not discovered by every agent. The broker never runs a task module,
    /// and compiling one took 100–250 ms of both cores per submit.
    async fn check_module(
        &self,
        module: &TaskModule,
        limits: &Limits,
        what: &str,
    ) -> BrokerResult<()> {
        match self.runtime.check(module, limits).await {
            Ok(()) => Ok(()),
            Err(RuntimeError::InvalidModule(reason)) => Err(BrokerError::invalid(format!(
                "{what} is not a runnable wasmgrid task: {reason}"
            ))),
            Err(other) => Err(other.into()),
        }
    }

    /// Compiles a workload's reducer in the background, so that its end
    /// result does not wait for the compile once the last task is in. A
    /// failure here is the reducer's run's to report (`aggregate`).
    fn compile_reducer_ahead(&self, reducer: TaskModule, limits: Limits) {
        let runtime = self.runtime.clone();
        tokio::spawn(async move {
            if let Err(error) = runtime.prepare(&reducer, &limits).await {
                tracing::warn!(
                    reducer = %reducer.hash().to_hex(),
                    %error,
                    "compiling the reducer ahead failed; its run at the workload's end \
                     compiles it again or reports why it cannot run"
                );
            }
        });
    }
}

/// Parses a hex sha256 sent by a client.
pub fn parse_sha256(text: &str, what: &str) -> BrokerResult<ModuleHash> {
    ModuleHash::from_hex(text)
        .ok_or_else(|| BrokerError::invalid(format!("{what} is not a sha256 in hex")))
}
