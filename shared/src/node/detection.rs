//! Failure detection: heartbeats out and in, the set of nodes this one monitors,
//! and turning phi into reachability records.

use super::{Millis, Node, Output};
use crate::address::{Address, UniqueAddress};
use crate::failure_detector::monitoring_plan;
use crate::member::MemberStatus;
use crate::wire::Message;
use std::collections::BTreeSet;

impl Node {
    pub(super) fn on_heartbeat(&mut self, from: UniqueAddress, seq: u64) {
        if self.quarantines(&from) {
            return;
        }
        if !self.is_member() {
            // No heartbeat tick runs outside membership: answer at once.
            self.answer_heartbeat(from.address, seq);
            return;
        }
        // The answer waits for this node's next heartbeat tick (at most one interval),
        // so each tick writes one message per peer instead of a heartbeat and a separate
        // answer. The requester's detector still sees one answer per interval: what it
        // loses is a fixed phase, not a sample. A second heartbeat while one is owed
        // sends the older answer now, so no answer waits longer than an interval.
        if let Some(older) = self.owed_answers.insert(from.address.clone(), seq) {
            self.answer_heartbeat(from.address, older);
        }
    }

    /// An indirect probe (see `probing`): answered at once.
    pub(super) fn on_probe(&mut self, from: UniqueAddress, seq: u64) {
        if !self.quarantines(&from) {
            self.answer_heartbeat(from.address, seq);
        }
    }

    /// A member tells an incarnation this cluster downed or removed to stop; true if
    /// `from` is one.
    fn quarantines(&mut self, from: &UniqueAddress) -> bool {
        let gone = self.gossip.tombstones.contains_key(from)
            || self
                .gossip
                .member(from)
                .is_some_and(|m| m.status == MemberStatus::Down);
        if gone && self.is_member() {
            self.send(
                from.address.clone(),
                Message::Quarantined {
                    from: self.self_node.clone(),
                    to: from.clone(),
                },
            );
        }
        gone && self.is_member()
    }

    fn answer_heartbeat(&mut self, to: Address, seq: u64) {
        self.outputs.push(Output::Send {
            to,
            message: Message::HeartbeatRsp {
                from: self.self_node.clone(),
                seq,
            },
        });
    }

    /// Sends every owed heartbeat answer (see `on_heartbeat`).
    pub(super) fn answer_owed_heartbeats(&mut self) {
        for (to, seq) in std::mem::take(&mut self.owed_answers) {
            self.answer_heartbeat(to, seq);
        }
    }

    /// The owed answer to `to`, if any, goes out with a message this node sends it anyway.
    pub(super) fn answer_owed_heartbeat(&mut self, to: &Address) {
        if let Some(seq) = self.owed_answers.remove(to) {
            self.answer_heartbeat(to.clone(), seq);
        }
    }

    /// Who this node heartbeats: its ring successors (`heartbeat_receivers`), and every
    /// member once it has itself marked a whole ring's worth unreachable. A member cut
    /// off from the rest otherwise finds them out one ring's worth at a time, each after
    /// a detection period, while the rest it does not watch still look reachable and
    /// count for its side: with three monitors in a cluster of 25 it took eight periods
    /// and, its view never stable, ended in down-all after 61 s. Watching everyone, it
    /// sees itself alone after a second period and downs itself after stable-after.
    pub(super) fn refresh_heartbeat_receivers(&mut self, now: Millis) {
        let monitored: BTreeSet<UniqueAddress> = self
            .gossip
            .members
            .values()
            .filter(|m| m.status != MemberStatus::Down)
            .map(|m| m.node.clone())
            .filter(|n| n != &self.self_node)
            .collect();
        let unreachable = self.gossip.reachability.all_unreachable();
        let own_marks: BTreeSet<UniqueAddress> = self
            .gossip
            .reachability
            .unreachable_pairs()
            .filter(|(observer, _)| *observer == &self.self_node)
            .map(|(_, subject)| subject.clone())
            .collect();
        let receivers = monitoring_plan(
            &self.self_node,
            &monitored,
            &unreachable,
            &own_marks,
            self.settings.monitored_by_nr_of_members,
        );
        self.monitor.set_receivers(&receivers, now);
    }

    pub(super) fn send_heartbeats(&mut self, now: Millis) {
        self.monitor
            .start_overdue(now, self.settings.expected_response_after_ms);
        let receivers: Vec<UniqueAddress> = self.monitor.receivers().cloned().collect();
        for node in receivers {
            self.monitor.heartbeat_sent(&node, now);
            self.send_heartbeat(node.address);
        }
        self.answer_owed_heartbeats();
    }

    fn send_heartbeat(&mut self, to: Address) {
        self.heartbeat_seq += 1;
        let heartbeat = Message::Heartbeat {
            from: self.self_node.clone(),
            seq: self.heartbeat_seq,
        };
        self.send(to, heartbeat);
    }

    /// Proofs of death (ALGORITHM.md section 10) count only when a majority holds them,
    /// and by themselves only the dead member's monitors find them. A member that
    /// learns from gossip of another's proof against a live member it does not monitor
    /// sends it one heartbeat of its own: if nothing listens there, its transport
    /// reports the refusal and it holds the proof too, so in a cluster larger than the
    /// monitors a majority of witnesses forms as fast as gossip spreads the first proof
    /// (ALGORITHM.md section 10 has the figures). A member
    /// that is alive answers, and the answer is ignored (this node does not monitor it).
    pub(super) fn look_for_ourselves(&mut self) {
        let gossip = &self.gossip;
        self.looked_at.retain(|node| gossip.has_member(node));
        if !self.is_member() {
            return;
        }
        let to_look: Vec<UniqueAddress> = gossip
            .reachability
            .refused_subjects()
            .into_iter()
            .filter(|node| node != &self.self_node && !self.looked_at.contains(node))
            .filter(|node| !self.monitor.is_monitoring(node))
            .filter(|node| gossip.member(node).is_some_and(|m| m.status.is_staying()))
            .collect();
        for node in to_look {
            self.send_heartbeat(node.address.clone());
            self.looked_at.insert(node);
        }
    }

    /// Turns detector verdicts into this node's reachability observations.
    pub(super) fn reap_unreachable(&mut self, now: Millis) {
        let me = self.self_node.clone();
        let receivers: Vec<UniqueAddress> = self.monitor.receivers().cloned().collect();
        let mut newly_unreachable = Vec::new();
        let mut newly_refused = Vec::new();
        let mut newly_reachable = Vec::new();
        for node in receivers {
            if !self.gossip.has_member(&node) {
                continue;
            }
            let available = self.monitor.is_available(&node, now);
            let marked = !self.gossip.reachability.is_reachable_by(&me, &node);
            if self.monitor.is_refused(&node) {
                if !self.gossip.reachability.is_refused_by(&me, &node) {
                    newly_refused.push(node);
                }
            } else if !available && !marked {
                newly_unreachable.push(node);
            } else if available && marked {
                newly_reachable.push(node);
            }
        }
        if newly_unreachable.is_empty() && newly_refused.is_empty() && newly_reachable.is_empty() {
            return;
        }
        self.change(now, |g, me| {
            for node in &newly_unreachable {
                g.reachability.mark_unreachable(me, node);
            }
            for node in &newly_refused {
                g.reachability.mark_refused(me, node);
            }
            for node in &newly_reachable {
                g.reachability.mark_reachable(me, node);
            }
        });
        if self.watches_its_decision(now) && self.leader().as_ref() == Some(&self.self_node) {
            self.resolve_split_brain(now);
        }
    }
}
