//! The rules of the public demo, where strangers press the buttons: every client may
//! take a few actions a minute, at most a minority of nodes may be impaired at once,
//! and every fault heals itself after a while. Outside public mode nothing is
//! limited. Pure bookkeeping over the times it is given, so it is tested without
//! processes or a clock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Public-mode limits.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Link faults and partitions heal after this long.
    pub fault_ttl: Duration,
    /// Paused nodes resume after this long.
    pub pause_max: Duration,
    /// Actions per client per minute (also the burst).
    pub actions_per_minute: u32,
    /// Nodes visitors may add beyond the initial ones.
    pub extra_nodes: usize,
}

/// Something the launcher must undo later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Undo {
    /// Heal every fault between these slots (both ways).
    HealLinks(Vec<(usize, usize)>),
    /// Resume a paused slot.
    Resume(usize),
    /// Stop a visitor-added slot (it leaves gracefully).
    Retire(usize),
}

/// Why an action is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The client used up its actions.
    #[error("too many actions: try again in {0} s")]
    RateLimited(u64),
    /// Impairing one more node would leave no majority.
    #[error("at most {max} of {total} nodes may be impaired at once in the public demo (impaired now: {now})")]
    Minority {
        /// Allowed.
        max: usize,
        /// Nodes in service.
        total: usize,
        /// Impaired now.
        now: usize,
    },
    /// Operator only.
    #[error("{0} needs the operator token in the public demo")]
    OperatorOnly(String),
}

/// A token bucket per client.
#[derive(Clone, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The public demo's bookkeeping.
#[derive(Debug, Default)]
pub struct Policy {
    /// `None` outside public mode.
    pub limits: Option<Limits>,
    buckets: HashMap<IpAddr, Bucket>,
    /// Slots impaired by an action, until when.
    impaired_until: HashMap<usize, Instant>,
    undo: Vec<(Instant, Undo)>,
}

impl Policy {
    /// A policy; `limits` is `None` outside public mode.
    pub fn new(limits: Option<Limits>) -> Policy {
        Policy {
            limits,
            ..Policy::default()
        }
    }

    /// Whether the public rules apply.
    pub fn is_public(&self) -> bool {
        self.limits.is_some()
    }

    /// Takes one action from the client's allowance.
    pub fn admit(&mut self, client: IpAddr, now: Instant) -> Result<(), Refusal> {
        let Some(limits) = &self.limits else {
            return Ok(());
        };
        let per_minute = f64::from(limits.actions_per_minute.max(1));
        if self.buckets.len() > 10_000 {
            // Forget idle clients rather than grow without bound.
            self.buckets
                .retain(|_, b| now.duration_since(b.at) < Duration::from_secs(60));
        }
        let bucket = self.buckets.entry(client).or_insert(Bucket {
            tokens: per_minute,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * per_minute / 60.0;
        bucket.tokens = (bucket.tokens + refill).min(per_minute);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - bucket.tokens) * 60.0 / per_minute).ceil() as u64;
            Err(Refusal::RateLimited(wait.max(1)))
        }
    }

    /// Slots impaired by recent actions (still counting at `now`).
    pub fn recently_impaired(&self, now: Instant) -> impl Iterator<Item = usize> + '_ {
        self.impaired_until
            .iter()
            .filter(move |(_, until)| **until > now)
            .map(|(slot, _)| *slot)
    }

    /// Checks that impairing `slot` leaves a majority of the `in_service` slots
    /// healthy, given those `impaired` now.
    pub fn may_impair(
        &self,
        slot: usize,
        impaired: &[usize],
        in_service: usize,
    ) -> Result<(), Refusal> {
        if self.limits.is_none() {
            return Ok(());
        }
        let max = in_service.saturating_sub(1) / 2;
        let after = impaired.len() + usize::from(!impaired.contains(&slot));
        if after > max {
            return Err(Refusal::Minority {
                max,
                total: in_service,
                now: impaired.len(),
            });
        }
        Ok(())
    }

    /// Notes that `slot` is impaired until `until`.
    pub fn impair(&mut self, slot: usize, until: Instant) {
        let entry = self.impaired_until.entry(slot).or_insert(until);
        *entry = (*entry).max(until);
    }

    /// Forgets that `slot` is impaired (it was healed).
    pub fn cleared(&mut self, slot: usize) {
        self.impaired_until.remove(&slot);
    }

    /// Schedules an undo (public mode only).
    pub fn schedule(&mut self, at: Instant, undo: Undo) {
        if self.is_public() {
            self.undo.push((at, undo));
        }
    }

    /// Undos due at `now`, removed from the schedule.
    pub fn due(&mut self, now: Instant) -> Vec<Undo> {
        let (due, later): (Vec<_>, Vec<_>) = self.undo.drain(..).partition(|(at, _)| *at <= now);
        self.undo = later;
        due.into_iter().map(|(_, u)| u).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public() -> Policy {
        Policy::new(Some(Limits {
            fault_ttl: Duration::from_secs(30),
            pause_max: Duration::from_secs(20),
            actions_per_minute: 6,
            extra_nodes: 2,
        }))
    }

    #[test]
    fn a_client_gets_its_burst_then_waits_while_others_are_unaffected() {
        let mut p = public();
        let t0 = Instant::now();
        let (me, other): (IpAddr, IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..6 {
            p.admit(me, t0).unwrap();
        }
        assert!(matches!(p.admit(me, t0), Err(Refusal::RateLimited(10))));
        p.admit(other, t0).unwrap();
        // One action a minute / 6 = every 10 s.
        p.admit(me, t0 + Duration::from_secs(10)).unwrap();
        assert!(p.admit(me, t0 + Duration::from_secs(11)).is_err());
    }

    #[test]
    fn at_most_a_minority_may_be_impaired() {
        let p = public();
        assert!(p.may_impair(0, &[], 3).is_ok());
        assert!(matches!(
            p.may_impair(1, &[0], 3),
            Err(Refusal::Minority { max: 1, .. })
        ));
        // Acting again on the node already impaired is allowed.
        assert!(p.may_impair(0, &[0], 3).is_ok());
        assert!(p.may_impair(1, &[0], 5).is_ok());
        assert!(p.may_impair(2, &[0, 1], 5).is_err());
        // Outside public mode nothing is limited.
        assert!(Policy::new(None).may_impair(2, &[0, 1], 3).is_ok());
    }

    #[test]
    fn undos_come_due_in_time_and_once() {
        let mut p = public();
        let t0 = Instant::now();
        p.schedule(t0 + Duration::from_secs(30), Undo::HealLinks(vec![(0, 1)]));
        p.schedule(t0 + Duration::from_secs(20), Undo::Resume(2));
        assert!(p.due(t0 + Duration::from_secs(5)).is_empty());
        assert_eq!(p.due(t0 + Duration::from_secs(25)), vec![Undo::Resume(2)]);
        assert_eq!(
            p.due(t0 + Duration::from_secs(60)),
            vec![Undo::HealLinks(vec![(0, 1)])]
        );
        assert!(p.due(t0 + Duration::from_secs(90)).is_empty());
        let mut open = Policy::new(None);
        open.schedule(t0, Undo::Resume(1));
        assert!(
            open.due(t0 + Duration::from_secs(1)).is_empty(),
            "nothing heals itself outside public mode"
        );
    }

    #[test]
    fn impairment_expires() {
        let mut p = public();
        let t0 = Instant::now();
        p.impair(1, t0 + Duration::from_secs(10));
        assert_eq!(p.recently_impaired(t0).collect::<Vec<_>>(), vec![1]);
        assert!(p
            .recently_impaired(t0 + Duration::from_secs(11))
            .next()
            .is_none());
    }
}
