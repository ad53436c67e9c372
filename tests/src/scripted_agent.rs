//! [`ScriptedAgent`]: a test-only agent that speaks the real agent protocol
//! to a real broker process over loopback, runs tasks for real in the
//! sandbox, and reports what its [`Behaviour`] says: the truth, a wrong
//! output, or inflated fuel. It is how the verification tests put a cheater
//! on the grid next to honest `wasmgrid-agent` processes.
//!
//! One cycle ([`ScriptedAgent::step`]): `RequestWork` (capacity 1), accept
//! the first offer, which declines the others ([`ScriptedAgent::take_lease`]);
//! `FetchModule` unless the module is cached, run, `ReportResult`
//! ([`ScriptedAgent::run_and_report`]). [`ScriptedAgent::spawn`] repeats it
//! on a tokio task until [`RunningAgent::stop`].
//!
//! Unexpected gRPC errors panic with the agent's name and the call: the
//! broker under test misbehaved, and a test must say so rather than retry.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use wasmgrid_proto::v1::{self, Lease};
use wasmgrid_proto::{limits_from_wire, status_to_wire, usage_to_wire};
use wasmgrid_runtime::{Outcome, Runtime, RuntimeConfig, TaskModule};

use crate::client::{AgentClient, agent_client, register_request};

/// Memory the agent declares, and offers free for tasks.
const MEMORY_BYTES: u64 = 1 << 30;
/// Longest pause between two requests for work when none is offered.
const MAX_IDLE: Duration = Duration::from_millis(100);

type Client = AgentClient;

/// What a scripted agent reports about the tasks it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// The true outcome.
    Honest,
    /// A plausible wrong result with the true fuel: a count off by one when
    /// the output is a number, else the output with one bit flipped.
    WrongOutput,
    /// The true output with twice the fuel consumed: an agent padding its
    /// bill.
    InflatedFuel,
}

impl Behaviour {
    /// Applies the behaviour to a true outcome.
    pub fn apply(self, outcome: &mut Outcome) {
        match self {
            Behaviour::Honest => {}
            Behaviour::WrongOutput => outcome.output = wrong_output(&outcome.output),
            Behaviour::InflatedFuel => {
                outcome.usage.fuel_consumed = outcome.usage.fuel_consumed.saturating_mul(2);
            }
        }
    }
}

/// A different output that still looks right: `n + 1` for a decimal `n`
/// (whitespace kept), else the first byte with its low bit flipped.
fn wrong_output(output: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(output);
    let trimmed = text.trim();
    if let Ok(n) = trimmed.parse::<u64>() {
        return text
            .replacen(trimmed, &n.wrapping_add(1).to_string(), 1)
            .into_bytes();
    }
    let mut wrong = output.to_vec();
    match wrong.first_mut() {
        Some(byte) => *byte ^= 1,
        None => wrong.push(b'0'),
    }
    wrong
}

/// One run the agent reported.
#[derive(Clone, Debug)]
pub struct Reported {
    pub lease_id: String,
    pub workload_id: String,
    pub index: u32,
    /// The fuel the run really consumed, and what the agent reported.
    pub true_fuel: u64,
    pub reported_fuel: u64,
    /// The broker's answer: false when the lease had already ended.
    pub counted: bool,
}

/// A registered agent driven by the test.
#[derive(Debug)]
pub struct ScriptedAgent {
    pub id: String,
    pub name: String,
    pub owner: String,
    client: Client,
    runtime: Runtime,
    /// Fetched modules by sha256.
    modules: HashMap<String, TaskModule>,
}

impl ScriptedAgent {
    /// Registers with the broker at `url` as `name`, run by `owner`.
    pub async fn register(url: &str, name: &str, owner: &str) -> ScriptedAgent {
        let response = agent_client(url, "")
            .await
            .register(v1::RegisterRequest {
                memory_bytes: MEMORY_BYTES,
                version: "scripted".to_owned(),
                owner: owner.to_owned(),
                ..register_request(name)
            })
            .await
            .unwrap_or_else(|status| panic!("scripted agent {name}: Register failed: {status}"))
            .into_inner();
        let runtime = Runtime::new(RuntimeConfig {
            max_concurrent_tasks: NonZeroUsize::MIN,
            ..RuntimeConfig::default()
        })
        .unwrap_or_else(|e| panic!("scripted agent {name}: no sandbox: {e}"));
        ScriptedAgent {
            id: response.agent_id,
            name: name.to_owned(),
            owner: owner.to_owned(),
            client: agent_client(url, &response.token).await,
            runtime,
            modules: HashMap::new(),
        }
    }

    /// One cycle: asks for one task and, if one is leased, runs and reports
    /// it with `behaviour` applied. `Err` carries how long to wait before
    /// asking again when nothing was leased.
    pub async fn step(&mut self, behaviour: Behaviour) -> Result<Reported, Duration> {
        let lease = self.take_lease().await?;
        Ok(self.run_and_report(lease, behaviour).await)
    }

    /// Asks for one task (capacity 1) and accepts the first offer, which
    /// declines the others. `Err` carries how long to wait before asking
    /// again when nothing was leased.
    pub async fn take_lease(&mut self) -> Result<Lease, Duration> {
        let offers = self
            .client
            .request_work(v1::RequestWorkRequest {
                capacity: 1,
                free_memory_bytes: MEMORY_BYTES,
            })
            .await
            .unwrap_or_else(|status| self.fail("RequestWork", &status))
            .into_inner();
        let idle = Duration::from_millis(offers.retry_after_ms.into()).min(MAX_IDLE);
        let Some(task) = offers.offers.first().and_then(|offer| offer.task.clone()) else {
            return Err(idle);
        };
        let accepted = self
            .client
            .accept_offers(v1::AcceptOffersRequest { tasks: vec![task] })
            .await
            .unwrap_or_else(|status| self.fail("AcceptOffers", &status))
            .into_inner();
        // The offer may have gone meanwhile (expired, task settled).
        accepted.leases.into_iter().next().ok_or(Duration::ZERO)
    }

    /// Runs a leased task for real and reports it with `behaviour` applied
    /// (also after its deadline: the broker decides whether it counts).
    pub async fn run_and_report(&mut self, lease: Lease, behaviour: Behaviour) -> Reported {
        let task = lease
            .task
            .clone()
            .unwrap_or_else(|| panic!("scripted agent {}: a lease without a task", self.name));
        let limits = limits_from_wire(lease.limits.as_ref())
            .unwrap_or_else(|e| panic!("scripted agent {}: bad lease limits: {e}", self.name));
        let module = self.module(&lease.module_sha256).await;
        let mut outcome = self
            .runtime
            .run(&module, lease.input, &limits, lease.seed)
            .await
            .unwrap_or_else(|e| panic!("scripted agent {}: the sandbox failed: {e}", self.name));
        let true_fuel = outcome.usage.fuel_consumed;
        behaviour.apply(&mut outcome);
        let counted = self
            .client
            .report_result(v1::ReportResultRequest {
                lease_id: lease.lease_id.clone(),
                status: Some(status_to_wire(&outcome.status)),
                output: outcome.output,
                stderr: outcome.stderr,
                usage: Some(usage_to_wire(&outcome.usage)),
                task: lease.task.clone(),
            })
            .await
            .unwrap_or_else(|status| self.fail("ReportResult", &status))
            .into_inner()
            .counted;
        Reported {
            lease_id: lease.lease_id,
            workload_id: task.workload_id,
            index: task.index,
            true_fuel,
            reported_fuel: outcome.usage.fuel_consumed,
            counted,
        }
    }

    /// The module with this sha256, fetched once and checked.
    async fn module(&mut self, sha256: &str) -> TaskModule {
        if let Some(module) = self.modules.get(sha256) {
            return module.clone();
        }
        let mut stream = self
            .client
            .fetch_module(v1::FetchModuleRequest {
                sha256: sha256.to_owned(),
            })
            .await
            .unwrap_or_else(|status| self.fail("FetchModule", &status))
            .into_inner();
        let mut bytes = Vec::new();
        let mut total = None;
        while let Some(chunk) = stream
            .message()
            .await
            .unwrap_or_else(|status| self.fail("FetchModule (stream)", &status))
        {
            total.get_or_insert(chunk.total_size);
            bytes.extend_from_slice(&chunk.data);
        }
        assert_eq!(
            total,
            Some(bytes.len() as u64),
            "scripted agent {}: module {sha256} arrived with a wrong size",
            self.name
        );
        let module = TaskModule::new(bytes);
        assert_eq!(
            module.hash().to_hex(),
            sha256,
            "scripted agent {}: module bytes do not match their sha256",
            self.name
        );
        self.modules.insert(sha256.to_owned(), module.clone());
        module
    }

    /// The agent's balance, record and latest payments (`GetEarnings`).
    pub async fn earnings(&mut self) -> v1::Earnings {
        self.client
            .get_earnings(v1::EarningsRequest {})
            .await
            .unwrap_or_else(|status| self.fail("GetEarnings", &status))
            .into_inner()
    }

    fn fail(&self, call: &str, status: &tonic::Status) -> ! {
        panic!(
            "scripted agent {} ({}): {call} failed: {status}",
            self.name, self.id
        )
    }

    /// Runs cycles until `count` runs are reported; panics after `timeout`.
    pub async fn run_until(
        &mut self,
        behaviour: Behaviour,
        count: usize,
        timeout: Duration,
    ) -> Vec<Reported> {
        let started = Instant::now();
        let mut reported = Vec::new();
        while reported.len() < count {
            assert!(
                started.elapsed() < timeout,
                "scripted agent {} reported {} of {count} runs within {timeout:?}",
                self.name,
                reported.len()
            );
            match self.step(behaviour).await {
                Ok(run) => reported.push(run),
                Err(idle) => tokio::time::sleep(idle).await,
            }
        }
        reported
    }

    /// Runs cycles on a tokio task until stopped.
    pub fn spawn(mut self, behaviour: Behaviour) -> RunningAgent {
        let stop = Arc::new(AtomicBool::new(false));
        let reports = Arc::new(Mutex::new(Vec::new()));
        let (id, name, owner) = (self.id.clone(), self.name.clone(), self.owner.clone());
        let task = {
            let (stop, reports) = (Arc::clone(&stop), Arc::clone(&reports));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match self.step(behaviour).await {
                        Ok(run) => lock(&reports).push(run),
                        Err(idle) => tokio::time::sleep(idle).await,
                    }
                }
                self
            })
        };
        RunningAgent {
            id,
            name,
            owner,
            behaviour,
            stop,
            reports,
            task: Some(task),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A scripted agent working on its own tokio task. Dropping it stops the
/// loop after the current cycle.
#[derive(Debug)]
pub struct RunningAgent {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub behaviour: Behaviour,
    stop: Arc<AtomicBool>,
    reports: Arc<Mutex<Vec<Reported>>>,
    task: Option<JoinHandle<ScriptedAgent>>,
}

impl RunningAgent {
    /// The runs reported so far.
    pub fn reports(&self) -> Vec<Reported> {
        lock(&self.reports).clone()
    }

    /// False once the loop has ended (it panicked, unless stopped).
    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|task| !task.is_finished())
    }

    /// Stops after the current cycle; returns the agent, or resumes the
    /// loop's panic.
    pub async fn stop(mut self) -> ScriptedAgent {
        self.stop.store(true, Ordering::Relaxed);
        let task = self.task.take().expect("a running agent has its task");
        match task.await {
            Ok(agent) => agent,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => panic!("scripted agent {}: its task ended: {error}", self.name),
        }
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_output_looks_right_but_differs() {
        assert_eq!(wrong_output(b"664579"), b"664580");
        assert_eq!(wrong_output(b"41\n"), b"42\n");
        assert_eq!(wrong_output(b"{\"a\":1}"), b"z\"a\":1}");
        assert_eq!(wrong_output(b""), b"0");
    }
}
