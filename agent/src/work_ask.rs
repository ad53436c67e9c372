//! Asking for work with reports: while the work loop waits for a lease's
//! capacity to come back, the reporter, whose report gives it back, asks for
//! work in the same `ReportResults` call and hands the answer to the work
//! loop, which then takes the offers without a `RequestWork` of its own. One
//! round trip per finished task fewer, for the agent and the broker.
//!
//! Exactly one of the two asks for any freed capacity: the reporter only
//! when it finds the work loop parked (and marks it claimed before it gives
//! the capacity back), the work loop only when it was not claimed. Every
//! claim gets exactly one answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::mpsc;
use wasmgrid_proto::v1::{AcceptOffersRequest, RequestWorkRequest, RequestWorkResponse};

use crate::capacity::{CapacityPool, Reservation};
use crate::client::{BrokerClient, Retry};

/// The work loop is running: it asks for work itself.
const BUSY: u8 = 0;
/// The work loop waits for capacity: the reporter may ask for it.
const PARKED: u8 = 1;
/// The reporter asks; the work loop waits for its answer.
const CLAIMED: u8 = 2;

/// What the reporter heard when it asked for work with reports: the offers,
/// or `None` when the call failed or the broker does not answer work there.
pub(crate) type WorkAnswer = Option<RequestWorkResponse>;

/// Who asks for work next, shared by the work loop and the reporter.
#[derive(Debug)]
pub(crate) struct WorkAsk {
    state: AtomicU8,
    /// The lease pool, whose free capacity is asked for.
    pool: Arc<CapacityPool>,
    /// No single task may need more than this (the volunteer's memory).
    max_task_memory: u64,
    answers: mpsc::UnboundedSender<WorkAnswer>,
}

impl WorkAsk {
    /// The shared state, and where the work loop receives the answers.
    pub(crate) fn new(
        pool: Arc<CapacityPool>,
        max_task_memory: u64,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<WorkAnswer>) {
        let (answers, received) = mpsc::unbounded_channel();
        let ask = WorkAsk {
            state: AtomicU8::new(BUSY),
            pool,
            max_task_memory,
            answers,
        };
        (Arc::new(ask), received)
    }

    /// The work loop waits for capacity: a report that frees some may ask.
    pub(crate) fn park(&self) {
        self.state.store(PARKED, Ordering::SeqCst);
    }

    /// The work loop is awake and asks itself from now on; true if the
    /// reporter claimed the asking meanwhile (one answer comes for it).
    pub(crate) fn unpark(&self) -> bool {
        self.state.swap(BUSY, Ordering::SeqCst) == CLAIMED
    }

    /// The reporter gives `freeing` back; if the work loop was parked, it
    /// claims the asking first and returns the request for what is free
    /// then. `None` (nothing claimed) when nothing is freed or the work
    /// loop is busy. A claim must be followed by [`WorkAsk::answer`].
    pub(crate) fn claim(&self, freeing: Vec<Reservation>) -> Option<RequestWorkRequest> {
        if freeing.is_empty() {
            return None;
        }
        // Claimed before the capacity comes back, so the work loop, woken
        // by it, knows not to ask as well.
        let claimed = self
            .state
            .compare_exchange(PARKED, CLAIMED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        drop(freeing);
        if !claimed {
            return None;
        }
        let free = self.pool.free();
        Some(RequestWorkRequest {
            capacity: u32::try_from(free.slots).unwrap_or(u32::MAX),
            free_memory_bytes: free.memory_bytes.min(self.max_task_memory),
        })
    }

    /// The answer to the reporter's claim, for the work loop. Returns it
    /// back when the work loop is gone (the agent is stopping), so offers
    /// in it can be declined.
    pub(crate) fn answer(&self, answer: WorkAnswer) -> WorkAnswer {
        self.answers.send(answer).err().and_then(|gone| gone.0)
    }
}

/// Declines the offers of an answer that will not be taken (the agent is
/// stopping or paused, or the capacity went elsewhere), so the broker gives
/// them to other agents at once: an empty `AcceptOffers`, sent once, since
/// offers not answered expire anyway.
pub(crate) async fn decline(client: &BrokerClient, unused: WorkAnswer) {
    if unused.is_none_or(|answer| answer.offers.is_empty()) {
        return;
    }
    let declined = client
        .call("decline offers", Retry::Once, |mut grpc| async move {
            grpc.accept_offers(AcceptOffersRequest { tasks: Vec::new() })
                .await
        })
        .await;
    if let Err(status) = declined {
        tracing::debug!(code = ?status.code(), detail = status.message(), "cannot decline offers; they expire");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offer_policy::Capacity;

    fn pool() -> Arc<CapacityPool> {
        CapacityPool::new(Capacity {
            slots: 2,
            memory_bytes: 1 << 30,
        })
    }

    #[test]
    fn a_report_asks_only_while_the_work_loop_is_parked() {
        let pool = pool();
        let (ask, _answers) = WorkAsk::new(Arc::clone(&pool), 1 << 20);
        // Busy: the capacity comes back, nobody is claimed.
        assert_eq!(ask.claim(vec![pool.reserve(1 << 20)]), None);
        assert!(!ask.unpark());
        // Parked: claimed, for everything free once the lease is given back.
        ask.park();
        let held = pool.reserve(1 << 20);
        let asked = ask.claim(vec![pool.reserve(1 << 20)]).expect("claimed");
        assert_eq!(asked.capacity, 1);
        // Capped to what one task may have.
        assert_eq!(asked.free_memory_bytes, 1 << 20);
        assert!(ask.unpark(), "the work loop learns the reporter asks");
        assert!(!ask.unpark(), "and asks itself afterwards");
        drop(held);
    }

    #[test]
    fn nothing_freed_claims_nothing() {
        let (ask, _answers) = WorkAsk::new(pool(), 1 << 20);
        ask.park();
        assert_eq!(ask.claim(Vec::new()), None);
        assert!(!ask.unpark());
    }

    #[test]
    fn an_answer_reaches_the_work_loop_or_comes_back() {
        let (ask, mut answers) = WorkAsk::new(pool(), 1 << 20);
        let offers = RequestWorkResponse {
            offers: Vec::new(),
            retry_after_ms: 7,
        };
        assert_eq!(ask.answer(Some(offers.clone())), None);
        assert_eq!(answers.try_recv().ok(), Some(Some(offers.clone())));
        drop(answers);
        assert_eq!(ask.answer(Some(offers.clone())), Some(offers));
    }
}
