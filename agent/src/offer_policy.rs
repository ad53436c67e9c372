//! Which offers the agent takes: a pluggable [`OfferPolicy`], the default
//! [`BestReturn`], and [`choose_offers`], which applies the agent's minimum
//! rate before any policy and holds every policy to the free capacity.

use std::collections::HashSet;
use std::fmt;

use wasmgrid_proto::v1::{Offer, TaskRef};

/// Fuel per second the agent assumes before it has timed a run of its own:
/// the rate of the tasks' virtual clock (1 ns per unit of fuel).
pub const DEFAULT_FUEL_PER_SECOND: f64 = 1e9;

/// Bytes in a MiB, the unit memory is priced in.
const MIB: f64 = (1u64 << 20) as f64;

/// Units of fuel per second of a task's virtual clock, on which memory is
/// billed (credits per MiB-second of virtual time).
const VIRTUAL_FUEL_PER_SECOND: f64 = 1e9;

/// Slots and memory: what the agent has in total, or what is free now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capacity {
    /// Tasks the agent runs at once (in total), or can start now (free).
    pub slots: usize,
    /// Memory for tasks, in bytes: in total, or not promised to running
    /// tasks (free).
    pub memory_bytes: u64,
}

/// What a policy knows about the agent besides what is free now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AgentProfile {
    /// Everything the agent gives (its declared memory and slots).
    pub total: Capacity,
    /// The agent's own speed, in fuel per second: a running estimate from
    /// its completed runs, [`DEFAULT_FUEL_PER_SECOND`] before the first.
    pub fuel_per_second: f64,
}

/// Chooses, among the broker's offers, the tasks to accept.
///
/// A policy must not choose more tasks than `free.slots`, nor tasks whose
/// `limits.memory_bytes` add up to more than `free.memory_bytes`: the agent
/// never promises memory it does not have (`choose_offers` drops whatever
/// goes beyond). The offers it sees already pay at least the agent's minimum
/// rate. Every offer it does not choose is declined at once.
pub trait OfferPolicy: Send + Sync + fmt::Debug {
    /// The tasks to accept, best first.
    fn choose(&self, offers: &[Offer], free: Capacity, profile: &AgentProfile) -> Vec<TaskRef>;
}

/// The default policy: the most credits per second of the agent's capacity.
///
/// An offer is expected to earn, per second the task runs here,
/// `fuel_per_second × (credits_per_fuel + credits_per_mib_second × MiB / 1e9)`
/// credits, where MiB is the offer's estimated peak memory (its memory limit
/// when the broker gives no estimate) and 1e9 converts fuel to seconds of the
/// virtual clock memory is billed on. While it runs, the task holds a share
/// of the agent, `max(memory limit / total memory, 1 / total slots)`: the
/// offers are ranked by earnings divided by that share, and taken greedily,
/// best first, while free slots and memory allow. Totals (not what is free
/// now) are used, so a low-memory agent prefers small-memory tasks that let
/// it fill all its slots, while a big-memory agent, bound by its slots,
/// prefers the best rate. The agent's speed scales every offer alike: it
/// gives the estimate its unit, not its order.
///
/// Offers without a task or limits, or with a NaN, infinite or negative
/// rate (a broker bug), are skipped.
#[derive(Clone, Copy, Debug, Default)]
pub struct BestReturn;

impl OfferPolicy for BestReturn {
    fn choose(&self, offers: &[Offer], free: Capacity, profile: &AgentProfile) -> Vec<TaskRef> {
        let mut candidates: Vec<(&TaskRef, u64, f64)> = offers
            .iter()
            .filter_map(|offer| {
                let task = offer.task.as_ref()?;
                let memory = offer.limits.as_ref()?.memory_bytes;
                Some((task, memory, return_per_share(offer, profile)?))
            })
            .collect();
        // Stable: at equal return and memory, the broker's order stands.
        candidates.sort_by(|(_, memory_a, return_a), (_, memory_b, return_b)| {
            return_b.total_cmp(return_a).then(memory_a.cmp(memory_b))
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

/// Expected credits per second the offer earns on this agent, or `None` for
/// a broken offer (no limits, a rate that is not a finite number ≥ 0).
pub fn expected_credits_per_second(offer: &Offer, fuel_per_second: f64) -> Option<f64> {
    let limits = offer.limits.as_ref()?;
    let fuel_rate = valid_rate(offer.credits_per_fuel)?;
    let memory_rate = valid_rate(offer.credits_per_mib_second)?;
    let memory = match offer.estimated_memory_bytes {
        0 => limits.memory_bytes,
        estimated => estimated,
    };
    let fuel_per_second = valid_rate(fuel_per_second)
        .filter(|speed| *speed > 0.0)
        .unwrap_or(DEFAULT_FUEL_PER_SECOND);
    let per_fuel = fuel_rate + memory_rate * (memory as f64 / MIB) / VIRTUAL_FUEL_PER_SECOND;
    Some(fuel_per_second * per_fuel).filter(|credits| credits.is_finite())
}

/// The offer's expected credits per second divided by the share of the
/// agent it holds while it runs; `None` for a broken offer.
fn return_per_share(offer: &Offer, profile: &AgentProfile) -> Option<f64> {
    let credits = expected_credits_per_second(offer, profile.fuel_per_second)?;
    let memory = offer.limits.as_ref()?.memory_bytes;
    let memory_share = match profile.total.memory_bytes {
        0 => 1.0,
        total => memory as f64 / total as f64,
    };
    let slot_share = 1.0 / profile.total.slots.max(1) as f64;
    Some(credits / memory_share.max(slot_share)).filter(|value| value.is_finite())
}

/// `rate` if it is a finite number ≥ 0.
fn valid_rate(rate: f64) -> Option<f64> {
    (rate.is_finite() && rate >= 0.0).then_some(rate)
}

/// Runs `policy` on the offers paying at least `min_rate` credits per unit
/// of fuel, then keeps what it chose within `free`: only offered tasks, each
/// once, no more than the free slots, memory limits adding up to no more than
/// the free memory. An empty result declines every offer.
pub(crate) fn choose_offers(
    policy: &dyn OfferPolicy,
    offers: &[Offer],
    free: Capacity,
    profile: &AgentProfile,
    min_rate: f64,
) -> Vec<TaskRef> {
    let eligible: Vec<Offer> = offers
        .iter()
        .filter(|offer| pays_enough(offer, min_rate))
        .cloned()
        .collect();
    if eligible.is_empty() || free.slots == 0 {
        return Vec::new();
    }
    let chosen = policy.choose(&eligible, free, profile);
    let mut taken = HashSet::new();
    let mut memory_left = free.memory_bytes;
    let mut kept = Vec::new();
    for task in chosen {
        if kept.len() >= free.slots {
            break;
        }
        let Some(offer) = eligible
            .iter()
            .find(|offer| offer.task.as_ref() == Some(&task))
        else {
            tracing::warn!(workload = %task.workload_id, task = task.index, "the offer policy chose a task not offered; ignored");
            continue;
        };
        let memory = offer
            .limits
            .as_ref()
            .map_or(u64::MAX, |limits| limits.memory_bytes);
        if memory > memory_left || !taken.insert(task.clone()) {
            continue;
        }
        memory_left -= memory;
        kept.push(task);
    }
    kept
}

/// Whether the offer's rate is a number ≥ `min_rate` (NaN never is).
fn pays_enough(offer: &Offer, min_rate: f64) -> bool {
    offer.credits_per_fuel >= min_rate
}

#[cfg(test)]
mod tests {
    use wasmgrid_proto::v1::Limits;

    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

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

    /// An agent with `memory_bytes` and `slots`, all free, of default speed.
    fn agent(memory_bytes: u64, slots: usize) -> (Capacity, AgentProfile) {
        let total = Capacity {
            slots,
            memory_bytes,
        };
        let profile = AgentProfile {
            total,
            fuel_per_second: DEFAULT_FUEL_PER_SECOND,
        };
        (total, profile)
    }

    fn indices(tasks: &[TaskRef]) -> Vec<u32> {
        tasks.iter().map(|task| task.index).collect()
    }

    fn best_return(offers: &[Offer], free: Capacity, profile: &AgentProfile) -> Vec<u32> {
        indices(&BestReturn.choose(offers, free, profile))
    }

    #[test]
    fn higher_rate_first() {
        let offers = [offer(0, MIB, 1.0), offer(1, MIB, 3.0), offer(2, MIB, 2.0)];
        let (_, profile) = agent(1024 * MIB, 4);
        let free = Capacity {
            slots: 2,
            memory_bytes: 1024 * MIB,
        };
        assert_eq!(best_return(&offers, free, &profile), [1, 2]);
    }

    #[test]
    fn little_memory_picks_small_memory_offers() {
        let offers = [
            offer(0, 512 * MIB, 5.0),
            offer(1, 64 * MIB, 1.0),
            offer(2, 256 * MIB, 4.0),
            offer(3, 64 * MIB, 2.0),
        ];
        let (free, profile) = agent(200 * MIB, 4);
        assert_eq!(best_return(&offers, free, &profile), [3, 1]);
    }

    #[test]
    fn memory_is_shared_between_chosen_offers() {
        let offers = [
            offer(0, 300 * MIB, 3.0),
            offer(1, 300 * MIB, 2.0),
            offer(2, 100 * MIB, 1.5),
        ];
        let (free, profile) = agent(512 * MIB, 8);
        // Per share of the agent: 2 earns 1.5 / (100/512) = 7.68, 0 earns
        // 3 / (300/512) = 5.12, 1 earns 3.41 but no longer fits.
        assert_eq!(best_return(&offers, free, &profile), [2, 0]);
    }

    #[test]
    fn agents_of_different_profiles_choose_different_offers() {
        // A pays better but needs 200 MiB; B pays less in 16 MiB.
        let offers: Vec<Offer> = (0..4)
            .map(|index| offer(index, 200 * MIB, 1.0))
            .chain((4..8).map(|index| offer(index, 16 * MIB, 0.6)))
            .collect();

        // 256 MiB / 4 slots: one A would hold 78% of the agent for 1.0,
        // four Bs earn 4 × 0.6 in the same room.
        let (free, small) = agent(256 * MIB, 4);
        assert_eq!(best_return(&offers, free, &small), [4, 5, 6, 7]);

        // 8 GiB / 4 slots: bound by slots, so the best rate.
        let (free, big) = agent(8 * GIB, 4);
        assert_eq!(best_return(&offers, free, &big), [0, 1, 2, 3]);

        // With one slot free, each takes its favourite.
        let one_slot = |total: Capacity| Capacity { slots: 1, ..total };
        assert_eq!(best_return(&offers, one_slot(small.total), &small), [4]);
        assert_eq!(best_return(&offers, one_slot(big.total), &big), [0]);
    }

    #[test]
    fn total_capacity_not_free_capacity_sets_the_share() {
        // Same free room, different agents: 100 MiB of a 128 MiB agent is
        // most of it, of a 4 GiB agent one slot's worth.
        let offers = [offer(0, 100 * MIB, 1.0), offer(1, 8 * MIB, 0.5)];
        let free = Capacity {
            slots: 1,
            memory_bytes: 120 * MIB,
        };
        let (_, small) = agent(128 * MIB, 4);
        let (_, big) = agent(4 * GIB, 4);
        assert_eq!(best_return(&offers, free, &small), [1]);
        assert_eq!(best_return(&offers, free, &big), [0]);
    }

    #[test]
    fn priced_memory_counts_at_the_estimated_peak() {
        // Rates per second of the virtual clock (1e9 fuel): the first offer
        // pays 1 credit for fuel; the second 0.5 for fuel plus 0.01 per MiB.
        let priced = |index, estimated_memory_bytes| Offer {
            credits_per_mib_second: 0.01,
            estimated_memory_bytes,
            ..offer(index, 64 * MIB, 0.5e-9)
        };
        // Without an estimate, the 64 MiB limit: 0.5 + 0.64 = 1.14 > 1.
        let offers = [offer(0, 64 * MIB, 1e-9), priced(1, 0)];
        let (free, profile) = agent(8 * GIB, 4);
        let one_slot = Capacity { slots: 1, ..free };
        assert_eq!(best_return(&offers, one_slot, &profile), [1]);
        let credits = expected_credits_per_second(&offers[1], 2e9).expect("valid");
        assert!((credits - 2.28).abs() < 1e-9, "{credits}");

        // Estimated at 16 MiB: 0.5 + 0.16 = 0.66 < 1.
        let offers = [offer(0, 64 * MIB, 1e-9), priced(1, 16 * MIB)];
        assert_eq!(best_return(&offers, one_slot, &profile), [0]);

        // The agent's speed scales every offer alike.
        let slow = AgentProfile {
            fuel_per_second: 1e6,
            ..profile
        };
        assert_eq!(best_return(&offers, one_slot, &slow), [0]);
        let credits = expected_credits_per_second(&offers[1], 1e6).expect("valid");
        assert!((credits - 0.66e-3).abs() < 1e-12, "{credits}");
    }

    #[test]
    fn nothing_without_slots_and_broken_offers_are_skipped() {
        let offers = [
            offer(0, MIB, 1.0),
            Offer::default(),
            offer(2, MIB, f64::NAN),
            offer(3, MIB, -1.0),
            offer(4, MIB, f64::INFINITY),
            Offer {
                credits_per_mib_second: f64::NAN,
                ..offer(5, MIB, 1.0)
            },
            Offer {
                limits: None,
                ..offer(6, MIB, 1.0)
            },
            offer(7, MIB, 0.0),
        ];
        let (total, profile) = agent(1024 * MIB, 8);
        let none = Capacity { slots: 0, ..total };
        assert!(BestReturn.choose(&offers, none, &profile).is_empty());
        assert_eq!(best_return(&offers, total, &profile), [0, 7]);

        let odd = AgentProfile {
            total: Capacity::default(),
            fuel_per_second: f64::NAN,
        };
        assert_eq!(best_return(&offers, total, &odd), [0, 7]);
    }

    #[test]
    fn offers_below_the_min_rate_are_refused() {
        let offers = [
            offer(0, MIB, 0.5),
            offer(1, MIB, 2.0),
            offer(2, MIB, 1.0),
            offer(3, MIB, f64::NAN),
        ];
        let (free, profile) = agent(1024 * MIB, 4);
        let choose = |min_rate| {
            indices(&choose_offers(
                &BestReturn,
                &offers,
                free,
                &profile,
                min_rate,
            ))
        };
        assert_eq!(choose(0.0), [1, 2, 0]);
        assert_eq!(choose(1.0), [1, 2]);
        assert_eq!(choose(1.5), [1]);
        assert!(choose(5.0).is_empty());
    }

    /// Takes every offer, whatever the capacity.
    #[derive(Debug)]
    struct Greedy;

    impl OfferPolicy for Greedy {
        fn choose(&self, offers: &[Offer], _: Capacity, _: &AgentProfile) -> Vec<TaskRef> {
            let mut all: Vec<TaskRef> = offers.iter().filter_map(|o| o.task.clone()).collect();
            all.extend(all.clone());
            all.push(TaskRef {
                workload_id: "not offered".into(),
                index: 0,
            });
            all
        }
    }

    #[test]
    fn a_policy_is_held_to_the_free_capacity() {
        let offers = [
            offer(0, 300 * MIB, 1.0),
            offer(1, 300 * MIB, 1.0),
            offer(2, 100 * MIB, 1.0),
            offer(3, 10 * MIB, 1.0),
        ];
        let (total, profile) = agent(512 * MIB, 8);
        let free = Capacity { slots: 3, ..total };
        assert_eq!(
            indices(&choose_offers(&Greedy, &offers, free, &profile, 0.0)),
            [0, 2, 3]
        );
        let free = Capacity { slots: 2, ..total };
        assert_eq!(
            indices(&choose_offers(&Greedy, &offers, free, &profile, 0.0)),
            [0, 2]
        );
    }
}
