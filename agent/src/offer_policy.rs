//! Which offers the agent takes: a pluggable [`OfferPolicy`], and the
//! default [`BestRateFirst`].

use std::cmp::Ordering;
use std::fmt;

use wasmgrid_proto::v1::{Offer, TaskRef};

/// What the agent can take on right now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capacity {
    /// Tasks the agent can start now (free slots).
    pub slots: usize,
    /// Memory not promised to running tasks, in bytes.
    pub memory_bytes: u64,
}

/// Chooses, among the broker's offers, the tasks to accept.
///
/// A policy must not choose more tasks than `free.slots`, nor tasks whose
/// `limits.memory_bytes` add up to more than `free.memory_bytes`: the agent
/// never promises memory it does not have.
pub trait OfferPolicy: Send + Sync + fmt::Debug {
    /// The tasks to accept, best first.
    fn choose(&self, offers: &[Offer], free: Capacity) -> Vec<TaskRef>;
}

/// The default policy: the highest `credits_per_fuel` first (at equal rate,
/// the smaller memory first), taking every offer whose memory still fits
/// while slots remain. An agent with little memory thus ends up with the
/// small-memory offers, even when bigger ones pay better.
#[derive(Clone, Copy, Debug, Default)]
pub struct BestRateFirst;

impl OfferPolicy for BestRateFirst {
    fn choose(&self, offers: &[Offer], free: Capacity) -> Vec<TaskRef> {
        let mut candidates: Vec<(&TaskRef, u64, f64)> = offers
            .iter()
            .filter_map(|offer| {
                let task = offer.task.as_ref()?;
                let memory = offer.limits.as_ref()?.memory_bytes;
                Some((task, memory, rate(offer)))
            })
            .collect();
        candidates.sort_by(|(_, mem_a, rate_a), (_, mem_b, rate_b)| {
            rate_b
                .partial_cmp(rate_a)
                .unwrap_or(Ordering::Equal)
                .then(mem_a.cmp(mem_b))
        });
        let mut chosen = Vec::new();
        let mut memory_left = free.memory_bytes;
        for (task, memory, _) in candidates {
            if chosen.len() >= free.slots {
                break;
            }
            if memory <= memory_left {
                memory_left -= memory;
                chosen.push(task.clone());
            }
        }
        chosen
    }
}

/// An offer's rate; a NaN or negative rate (a broker bug) ranks last.
fn rate(offer: &Offer) -> f64 {
    if offer.credits_per_fuel.is_nan() || offer.credits_per_fuel < 0.0 {
        f64::NEG_INFINITY
    } else {
        offer.credits_per_fuel
    }
}

#[cfg(test)]
mod tests {
    use wasmgrid_proto::v1::Limits;

    use super::*;

    const MIB: u64 = 1 << 20;

    fn offer(index: u32, memory_bytes: u64, credits_per_fuel: f64) -> Offer {
        Offer {
            task: Some(TaskRef {
                workload_id: "w".into(),
                index,
            }),
            limits: Some(Limits {
                memory_bytes,
                ..Limits::default()
            }),
            credits_per_fuel,
            ..Offer::default()
        }
    }

    fn indices(tasks: &[TaskRef]) -> Vec<u32> {
        tasks.iter().map(|task| task.index).collect()
    }

    #[test]
    fn higher_rate_first() {
        let offers = [offer(0, MIB, 1.0), offer(1, MIB, 3.0), offer(2, MIB, 2.0)];
        let free = Capacity {
            slots: 2,
            memory_bytes: 1024 * MIB,
        };
        assert_eq!(indices(&BestRateFirst.choose(&offers, free)), [1, 2]);
    }

    #[test]
    fn little_memory_picks_small_memory_offers() {
        let offers = [
            offer(0, 512 * MIB, 5.0),
            offer(1, 64 * MIB, 1.0),
            offer(2, 256 * MIB, 4.0),
            offer(3, 64 * MIB, 2.0),
        ];
        let free = Capacity {
            slots: 4,
            memory_bytes: 200 * MIB,
        };
        assert_eq!(indices(&BestRateFirst.choose(&offers, free)), [3, 1]);
    }

    #[test]
    fn memory_is_shared_between_chosen_offers() {
        let offers = [
            offer(0, 300 * MIB, 3.0),
            offer(1, 300 * MIB, 2.0),
            offer(2, 100 * MIB, 1.0),
        ];
        let free = Capacity {
            slots: 8,
            memory_bytes: 512 * MIB,
        };
        assert_eq!(indices(&BestRateFirst.choose(&offers, free)), [0, 2]);
    }

    #[test]
    fn nothing_without_slots_and_broken_offers_are_skipped() {
        let offers = [
            offer(0, MIB, 1.0),
            Offer::default(),
            offer(2, MIB, f64::NAN),
        ];
        let none = Capacity {
            slots: 0,
            memory_bytes: 1024 * MIB,
        };
        assert!(BestRateFirst.choose(&offers, none).is_empty());
        let some = Capacity {
            slots: 5,
            memory_bytes: 1024 * MIB,
        };
        assert_eq!(indices(&BestRateFirst.choose(&offers, some)), [0, 2]);
    }
}
