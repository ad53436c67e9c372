//! The agent's free slots and memory: reserved when a lease is taken, given
//! back when its worker ends.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

use crate::offer_policy::Capacity;

/// Free capacity, shared by the work loop (which asks for work that fits)
/// and the workers (which give their share back when they end).
#[derive(Debug)]
pub(crate) struct CapacityPool {
    free: Mutex<Capacity>,
    /// Wakes the work loop when a worker gave capacity back.
    freed: Notify,
}

impl CapacityPool {
    pub(crate) fn new(total: Capacity) -> Arc<Self> {
        Arc::new(CapacityPool {
            free: Mutex::new(total),
            freed: Notify::new(),
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
        let slots = usize::from(free.slots > 0);
        let memory_bytes = memory_bytes.min(free.memory_bytes);
        free.slots -= slots;
        free.memory_bytes -= memory_bytes;
        Reservation {
            pool: Arc::clone(self),
            taken: Capacity {
                slots,
                memory_bytes,
            },
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
