//! Slots and memory, reserved and given back: the agent keeps two pools of
//! this kind. One counts leases (the slots plus the work buffer), reserved
//! when a lease is taken and given back when its worker ends; the other
//! counts what running tasks use (the slots and the volunteer's memory),
//! reserved when a task starts and given back when it ends.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

use crate::offer_policy::Capacity;

/// Free capacity, shared by the work loop (which asks for work that fits)
/// and the workers (which give their share back when they end).
#[derive(Debug)]
pub(crate) struct CapacityPool {
    total: Capacity,
    free: Mutex<Capacity>,
    /// Wakes the work loop when a worker gave capacity back.
    freed: Notify,
    /// Wakes every task waiting in [`CapacityPool::acquire`].
    given_back: Notify,
}

impl CapacityPool {
    pub(crate) fn new(total: Capacity) -> Arc<Self> {
        Arc::new(CapacityPool {
            total,
            free: Mutex::new(total),
            freed: Notify::new(),
            given_back: Notify::new(),
        })
    }

    /// What is free now.
    pub(crate) fn free(&self) -> Capacity {
        *self.free.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes one slot and `memory_bytes` for a lease, until the returned
    /// reservation is dropped. Takes what is left if less is free (the
    /// broker leased more than offered): never goes below zero.
    pub(crate) fn reserve(self: &Arc<Self>, memory_bytes: u64) -> Reservation {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        let taken = Capacity {
            slots: usize::from(free.slots > 0),
            memory_bytes: memory_bytes.min(free.memory_bytes),
        };
        self.take(&mut free, taken)
    }

    /// Takes `taken` (no more than is `free`) out of the pool.
    fn take(self: &Arc<Self>, free: &mut Capacity, taken: Capacity) -> Reservation {
        free.slots -= taken.slots;
        free.memory_bytes -= taken.memory_bytes;
        Reservation {
            pool: Arc::clone(self),
            taken,
        }
    }

    /// Takes one slot and `memory_bytes` (at most the pool's total, so any
    /// task can eventually start), waiting until both are free.
    pub(crate) async fn acquire(self: &Arc<Self>, memory_bytes: u64) -> Reservation {
        let memory_bytes = memory_bytes.min(self.total.memory_bytes);
        loop {
            // Registered before the check, so a reservation given back in
            // between still wakes this wait.
            let given_back = self.given_back.notified();
            {
                let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
                if free.slots > 0 && free.memory_bytes >= memory_bytes {
                    let taken = Capacity {
                        slots: 1,
                        memory_bytes,
                    };
                    return self.take(&mut free, taken);
                }
            }
            given_back.await;
        }
    }

    /// Waits until a reservation is given back (returns at once if one was
    /// given back since the last wait).
    pub(crate) async fn freed(&self) {
        self.freed.notified().await;
    }
}

/// One lease's share of the capacity, given back on drop.
#[derive(Debug)]
pub(crate) struct Reservation {
    pool: Arc<CapacityPool>,
    taken: Capacity,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        {
            let mut free = self
                .pool
                .free
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            free.slots += self.taken.slots;
            free.memory_bytes += self.taken.memory_bytes;
        }
        self.pool.freed.notify_one();
        self.pool.given_back.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn acquiring_waits_for_a_slot_and_the_memory() {
        let pool = CapacityPool::new(Capacity {
            slots: 2,
            memory_bytes: 100,
        });
        let first = pool.acquire(70).await;
        // A slot is free but not the memory: the second waits for the first.
        let waiting = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.acquire(70).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        drop(first);
        let second = waiting.await.expect("acquired");
        assert_eq!(
            pool.free(),
            Capacity {
                slots: 1,
                memory_bytes: 30
            }
        );
        // More than the whole pool takes the whole pool, once it is free.
        drop(second);
        let all = pool.acquire(1_000).await;
        assert_eq!(pool.free().memory_bytes, 0);
        drop(all);
        assert_eq!(
            pool.free(),
            Capacity {
                slots: 2,
                memory_bytes: 100
            }
        );
    }

    #[test]
    fn reservations_are_given_back_on_drop() {
        let pool = CapacityPool::new(Capacity {
            slots: 2,
            memory_bytes: 100,
        });
        let first = pool.reserve(60);
        let second = pool.reserve(60);
        assert_eq!(
            pool.free(),
            Capacity {
                slots: 0,
                memory_bytes: 0
            }
        );
        drop(first);
        assert_eq!(
            pool.free(),
            Capacity {
                slots: 1,
                memory_bytes: 60
            }
        );
        drop(second);
        assert_eq!(
            pool.free(),
            Capacity {
                slots: 2,
                memory_bytes: 100
            }
        );
    }
}
