//! Indirect probes (SWIM's ping-req; ALGORITHM.md section 9): before phi gives up on
//! a silent member, ask a few others to reach it.
//!
//! A monitored member that has left a heartbeat unanswered for
//! `indirect_probe_after_ms` (it answers at its next tick, so within an interval and
//! a round trip while it runs) is sent a probe of its own
//! (answered at once, not at the next tick) and `indirect_probe_helpers` other members
//! are asked to probe it too. Each helper reports within half a round whether it was
//! answered. What the round shows:
//! - a helper reached it: the member is alive and only this link is lossy or slow, so
//!   the report vouches for it (`Monitor::vouch`) and phi's silence does not count
//!   against it for a while. A link that stays silent past the direct-silence limit
//!   is still marked, so a one-way cut is seen, later.
//! - helpers answered that they could not reach it, and no one did: several observers
//!   agree, so it is marked unreachable now rather than after the acceptable pause.
//! - no helper answered at all: this node may be the one cut off, so the round proves
//!   nothing and phi decides as before. A member cut off from the rest therefore
//!   accuses them no sooner than it did, while they find it out quickly.
//!
//! Unreachable is still not down: downing goes through the resolver as before.

use super::{Millis, Node};
use crate::address::UniqueAddress;
use crate::failure_detector::Vouching;
use crate::member::MemberStatus;
use crate::settings::Settings;
use crate::wire::Message;
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};

/// At most this many probes run for other members at once; requests beyond are
/// ignored (the requester then relies on phi).
const MAX_HELPING: usize = 64;

/// A round this node runs for a silent member it monitors.
#[derive(Clone, Debug)]
struct Asking {
    round: u64,
    ends_at: Millis,
    helpers: BTreeSet<UniqueAddress>,
    not_reached: BTreeSet<UniqueAddress>,
}

/// A probe this node runs for another member's round.
#[derive(Clone, Debug)]
struct Helping {
    requester: UniqueAddress,
    target: UniqueAddress,
    round: u64,
    report_at: Millis,
}

/// The probe rounds in flight, asked and helped.
#[derive(Clone, Debug, Default)]
pub(super) struct Probes {
    asking: BTreeMap<UniqueAddress, Asking>,
    /// By the sequence number of the probe sent to the target.
    helping: BTreeMap<u64, Helping>,
    rounds: u64,
}

impl Probes {
    /// Forgets the rounds this node asked for: after time away their evidence is stale.
    pub(super) fn forget_rounds(&mut self) {
        self.asking.clear();
    }
}

/// How far a helper's report vouches for a member (see the module header).
pub(super) fn vouching(settings: &Settings) -> Vouching {
    Vouching {
        valid_ms: 2 * settings.indirect_probe_timeout_ms + probe_tick_ms(settings),
        direct_silence_limit_ms: settings.acceptable_heartbeat_pause_ms
            + 10 * settings.heartbeat_interval_ms,
    }
}

/// How often rounds are started, ended and retried.
pub(super) fn probe_tick_ms(settings: &Settings) -> Millis {
    (settings.heartbeat_interval_ms / 4).max(1)
}

impl Node {
    /// Ends, retries and starts probe rounds; runs every `probe_tick_ms`.
    pub(super) fn probe_tick(&mut self, now: Millis) {
        self.report_or_retry_helping(now);
        let silenced = self.end_rounds(now);
        self.start_rounds(now);
        if silenced {
            self.reap_unreachable(now);
        }
    }

    fn report_or_retry_helping(&mut self, now: Millis) {
        let helping = std::mem::take(&mut self.probes.helping);
        for (seq, help) in helping {
            if now >= help.report_at {
                self.report(&help, false);
            } else {
                self.send_probe(help.target.clone(), seq);
                self.probes.helping.insert(seq, help);
            }
        }
    }

    /// Ends the rounds whose time is up; true if one silenced its member.
    fn end_rounds(&mut self, now: Millis) -> bool {
        let ended: Vec<UniqueAddress> = self
            .probes
            .asking
            .iter()
            .filter(|(_, a)| now >= a.ends_at)
            .map(|(target, _)| target.clone())
            .collect();
        let mut silenced = false;
        for target in ended {
            let Some(asking) = self.probes.asking.remove(&target) else {
                continue;
            };
            if !asking.not_reached.is_empty() {
                self.monitor.silence(&target);
                silenced = true;
            }
        }
        silenced
    }

    fn start_rounds(&mut self, now: Millis) {
        let me = self.self_node.clone();
        let silent: Vec<UniqueAddress> = self
            .monitor
            .receivers()
            .filter(|n| !self.probes.asking.contains_key(*n))
            .filter(|n| self.gossip.reachability.is_reachable_by(&me, n))
            .filter(|n| {
                self.monitor
                    .overdue_ms(n, now)
                    .is_some_and(|ms| ms >= self.settings.indirect_probe_after_ms)
            })
            .cloned()
            .collect();
        for target in silent {
            self.start_round(target, now);
        }
    }

    fn start_round(&mut self, target: UniqueAddress, now: Millis) {
        let helpers = self.choose_helpers(&target);
        if helpers.is_empty() {
            return;
        }
        self.probes.rounds += 1;
        let round = self.probes.rounds;
        for helper in &helpers {
            let request = Message::ProbeRequest {
                from: self.self_node.clone(),
                target: target.clone(),
                round,
            };
            self.send(helper.address.clone(), request);
        }
        self.heartbeat_seq += 1;
        self.send_probe(target.clone(), self.heartbeat_seq);
        let asking = Asking {
            round,
            ends_at: now + self.settings.indirect_probe_timeout_ms,
            helpers,
            not_reached: BTreeSet::new(),
        };
        self.probes.asking.insert(target, asking);
    }

    /// Up to `indirect_probe_helpers` members, at random, that this node still reaches
    /// and nobody has proved dead.
    fn choose_helpers(&mut self, target: &UniqueAddress) -> BTreeSet<UniqueAddress> {
        let me = &self.self_node;
        let refused = self.gossip.reachability.refused_subjects();
        let mut candidates: Vec<UniqueAddress> = self
            .gossip
            .members
            .values()
            .filter(|m| matches!(m.status, MemberStatus::Up | MemberStatus::WeaklyUp))
            .map(|m| &m.node)
            .filter(|n| *n != me && *n != target && !refused.contains(*n))
            .filter(|n| self.gossip.reachability.is_reachable_by(me, n))
            .cloned()
            .collect();
        // A partial Fisher-Yates shuffle: the first `k` are a uniform sample.
        let k = self.settings.indirect_probe_helpers.min(candidates.len());
        for i in 0..k {
            let j = self.rng.random_range(i..candidates.len());
            candidates.swap(i, j);
        }
        candidates.truncate(k);
        candidates.into_iter().collect()
    }

    fn send_probe(&mut self, target: UniqueAddress, seq: u64) {
        let probe = Message::Probe {
            from: self.self_node.clone(),
            seq,
        };
        self.send(target.address, probe);
    }

    /// Another member asks this one to reach `target` for its round.
    pub(super) fn on_probe_request(
        &mut self,
        from: UniqueAddress,
        target: UniqueAddress,
        round: u64,
        now: Millis,
    ) {
        let known =
            |n: &UniqueAddress| self.gossip.member(n).is_some_and(|m| m.status.is_staying());
        if !self.is_member()
            || target == self.self_node
            || !known(&from)
            || !known(&target)
            || self.probes.helping.len() >= MAX_HELPING
        {
            return;
        }
        self.heartbeat_seq += 1;
        let seq = self.heartbeat_seq;
        self.send_probe(target.clone(), seq);
        let help = Helping {
            requester: from,
            target,
            round,
            report_at: now + self.settings.indirect_probe_timeout_ms / 2,
        };
        self.probes.helping.insert(seq, help);
    }

    /// A heartbeat answer: it ends this node's own round for `from`, and if it answers
    /// a probe this node runs for another member, that member hears at once that the
    /// target was reached.
    pub(super) fn on_probe_answer(&mut self, from: &UniqueAddress, seq: u64) {
        self.probes.asking.remove(from);
        if self
            .probes
            .helping
            .get(&seq)
            .is_some_and(|h| &h.target == from)
        {
            if let Some(help) = self.probes.helping.remove(&seq) {
                self.report(&help, true);
            }
        }
    }

    fn report(&mut self, help: &Helping, reached: bool) {
        let report = Message::ProbeReport {
            from: self.self_node.clone(),
            target: help.target.clone(),
            round: help.round,
            reached,
        };
        self.send(help.requester.address.clone(), report);
    }

    /// A helper's report on a round this node asked for.
    pub(super) fn on_probe_report(
        &mut self,
        from: UniqueAddress,
        target: UniqueAddress,
        round: u64,
        reached: bool,
        now: Millis,
    ) {
        let Some(asking) = self.probes.asking.get_mut(&target) else {
            return;
        };
        if asking.round != round || !asking.helpers.contains(&from) {
            return;
        }
        if reached {
            self.probes.asking.remove(&target);
            self.monitor.vouch(&target, now);
            return;
        }
        asking.not_reached.insert(from);
        if asking.not_reached == asking.helpers {
            self.probes.asking.remove(&target);
            self.monitor.silence(&target);
            self.reap_unreachable(now);
        }
    }
}
