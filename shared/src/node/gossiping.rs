//! Gossip: receiving full states and status digests, merging, answering, and the
//! periodic round that picks a peer.

use super::changes::down_at_once;
use super::{Millis, Node};
use crate::address::UniqueAddress;
use crate::gossip::Gossip;
use crate::member::MemberStatus;
use crate::vclock::VersionOrder;
use crate::wire::Message;
use rand::Rng;
use std::collections::BTreeSet;

/// Up to this many members, a node's own changes go to everyone at once: a full state
/// to each member costs little next to waiting rounds for it to spread.
pub(super) const PUSH_CHANGES_UP_TO_MEMBERS: usize = 32;

impl Node {
    /// Full gossip from `from`: checked (see `admits_gossip`), then compared by version
    /// and adopted, merged or answered (ALGORITHM.md section 4).
    pub(super) fn on_gossip(
        &mut self,
        from: UniqueAddress,
        to: UniqueAddress,
        remote: Gossip,
        now: Millis,
    ) {
        if to != self.self_node || !self.is_member() || !self.admits_gossip(&from, &remote) {
            return;
        }
        let old = self.gossip.clone();
        let talk_back = match remote.version.compare(&self.gossip.version) {
            VersionOrder::Same => {
                let union: BTreeSet<UniqueAddress> =
                    self.gossip.seen.union(&remote.seen).cloned().collect();
                let talk_back = union != remote.seen;
                let news = union != self.gossip.seen;
                let was_converged = self.is_converged();
                self.gossip.seen = union;
                self.gossip.mark_seen(&self.self_node);
                self.finish_gossip(from, talk_back);
                if news {
                    self.act_if_leader(now);
                    if !was_converged {
                        self.tell_leader_of_convergence();
                    }
                }
                return;
            }
            VersionOrder::Before => true,
            VersionOrder::After => {
                // As Akka: a sender that did not know we lacked its state learns at
                // once that we have seen it, so its leader need not wait a round.
                let talk_back = !remote.seen_by(&self.self_node);
                self.gossip = remote;
                self.gossip.mark_seen(&self.self_node);
                talk_back
            }
            VersionOrder::Concurrent => {
                let merged = self.gossip.merge(&remote);
                let needs_author = merged.merge_needs_author(&self.gossip, &remote);
                self.gossip = merged;
                if needs_author {
                    self.gossip.bump(&self.self_node);
                }
                self.gossip.mark_seen(&self.self_node);
                true
            }
        };
        self.after_change(&old, now);
        if self.is_member() {
            self.finish_gossip(from, talk_back);
            self.act_if_leader(now);
        }
    }

    /// Runs the leader's actions now rather than at its next round, when gossip
    /// brought news: a convergence or a proof of death is acted on as it arrives.
    fn act_if_leader(&mut self, now: Millis) {
        if self.is_member() && self.leader().as_ref() == Some(&self.self_node) {
            self.leader_actions(now);
        }
    }

    /// A member that pushed a change collects the talk-backs, so it is the first to
    /// know that everyone has seen it. In a small cluster it tells the leader at once,
    /// which can then act on the convergence (move a joiner Up, remove a member).
    fn tell_leader_of_convergence(&mut self) {
        if self.gossip.members.len() > PUSH_CHANGES_UP_TO_MEMBERS || !self.is_converged() {
            return;
        }
        match self.leader() {
            Some(leader) if leader != self.self_node => self.send_gossip(&leader),
            _ => {}
        }
    }

    /// In a small cluster, a change this node made is pushed to every member it
    /// reaches at once instead of waiting for gossip rounds to carry it (Akka waits).
    pub(super) fn push_change(&mut self) {
        if !self.is_member() || self.gossip.members.len() > PUSH_CHANGES_UP_TO_MEMBERS {
            return;
        }
        let me = &self.self_node;
        let peers: Vec<UniqueAddress> = self
            .gossip
            .members
            .keys()
            .filter(|n| *n != me && self.gossip.reachability.is_reachable_by(me, n))
            .cloned()
            .collect();
        for peer in peers {
            self.send_gossip(&peer);
        }
    }

    /// Whether gossip from `from` may be compared with ours. Answers what must be
    /// answered on the way: `Elsewhere` to another cluster's state that names us,
    /// `Quarantined` to a sender we hold Down; and stops this node if the remote
    /// state removed it.
    fn admits_gossip(&mut self, from: &UniqueAddress, remote: &Gossip) -> bool {
        if remote.lineage != self.gossip.lineage {
            // Another cluster's state. If it names us, its entry is stale (we took
            // another welcome, or formed our own cluster): say so, and it downs it.
            if remote.has_member(&self.self_node) {
                self.send(
                    from.address.clone(),
                    Message::Elsewhere {
                        from: self.self_node.clone(),
                        to: from.clone(),
                    },
                );
            }
            return false;
        }
        if remote.tombstones.contains_key(&self.self_node) {
            let reason = self.reason_for_removal();
            self.shut_down(reason);
            return false;
        }
        let Some(sender) = self.gossip.member(from) else {
            return !self.quarantine_if_gone(from) && self.admits_unheard_joiner(from, remote);
        };
        if sender.status == MemberStatus::Down {
            self.send(
                from.address.clone(),
                Message::Quarantined {
                    from: self.self_node.clone(),
                    to: from.clone(),
                },
            );
            return false;
        }
        remote.has_member(&self.self_node)
            && self
                .gossip
                .reachability
                .is_reachable_by(&self.self_node, from)
    }

    /// Gossip from a joiner we have not heard of, in a state of our lineage that names us
    /// (a member welcomed it, and we have not yet had that member's gossip): merged like
    /// any other, so the joiner becomes ours through us as well as through its welcomer.
    ///
    /// Without this, a joiner welcomed into a stale state (by a member on the far side
    /// of a healed partition, which then stopped) could never be heard: that state
    /// names us Up, so it waits for us to see it, we ignored it, and each restart it
    /// welcomed inherited the same wait (seed 5700003960). Only a sender that is
    /// Joining or WeaklyUp in its own state qualifies: one that claims Up unknown to us
    /// was removed here (moving Up needs our seen mark), and a tombstoned one is told
    /// it is gone.
    fn admits_unheard_joiner(&self, from: &UniqueAddress, remote: &Gossip) -> bool {
        let joining = remote
            .member(from)
            .is_some_and(|m| matches!(m.status, MemberStatus::Joining | MemberStatus::WeaklyUp));
        joining
            && remote
                .member(&self.self_node)
                .is_some_and(|m| m.status != MemberStatus::Down)
    }

    /// A member of ours says it belongs to another cluster. Only that incarnation can
    /// say so (messages are bound to their authenticated sender), so its entry is
    /// downed at once, as for a new incarnation at a known address.
    pub(super) fn on_elsewhere(&mut self, from: UniqueAddress, now: Millis) {
        let listed = self
            .gossip
            .member(&from)
            .is_some_and(|m| m.status != MemberStatus::Down);
        if !self.is_member() || !listed || from == self.self_node {
            return;
        }
        self.change(now, |g, me| down_at_once(g, me, &from));
    }

    /// Answers with the full state when the sender has not seen it (it sent an older
    /// or concurrent version, or a smaller seen set).
    pub(super) fn finish_gossip(&mut self, from: UniqueAddress, talk_back: bool) {
        if talk_back {
            self.send_gossip(&from);
        }
    }

    /// Tells a tombstoned incarnation it is gone; whether it was one.
    pub(super) fn quarantine_if_gone(&mut self, node: &UniqueAddress) -> bool {
        let gone = self.gossip.tombstones.contains_key(node);
        if gone {
            self.send(
                node.address.clone(),
                Message::Quarantined {
                    from: self.self_node.clone(),
                    to: node.clone(),
                },
            );
        }
        gone
    }

    pub(super) fn on_gossip_status(
        &mut self,
        from: UniqueAddress,
        to: UniqueAddress,
        version_digest: u64,
        seen_digest: u64,
    ) {
        if to != self.self_node || !self.is_member() {
            return;
        }
        if !self.gossip.has_member(&from) {
            self.quarantine_if_gone(&from);
            return;
        }
        if !self
            .gossip
            .reachability
            .is_reachable_by(&self.self_node, &from)
        {
            return;
        }
        let same_version = version_digest == self.gossip.version.digest();
        if !same_version || seen_digest != self.gossip.seen_digest() {
            self.send_gossip(&from);
        }
    }

    pub(super) fn send_gossip(&mut self, to: &UniqueAddress) {
        self.send(
            to.address.clone(),
            Message::Gossip {
                from: self.self_node.clone(),
                to: to.clone(),
                gossip: self.gossip.clone(),
            },
        );
    }

    pub(super) fn send_gossip_status(&mut self, to: &UniqueAddress) {
        self.send(
            to.address.clone(),
            Message::GossipStatus {
                from: self.self_node.clone(),
                to: to.clone(),
                version_digest: self.gossip.version.digest(),
                seen_digest: self.gossip.seen_digest(),
            },
        );
    }

    /// Akka's gossip-different-view probability, reduced for large clusters.
    pub(super) fn different_view_probability(&self) -> f64 {
        let p = self.settings.gossip_different_view_probability;
        let size = self.gossip.members.len();
        let low = self.settings.reduce_gossip_different_view_probability;
        let high = low * 3;
        if size <= low {
            p
        } else {
            let min_p = p / 3.0;
            if size >= high {
                min_p
            } else {
                p + (size - low) as f64 * (min_p - p) / (high - low) as f64
            }
        }
    }

    /// One gossip round: to a member that has not seen this version (probably), or to
    /// any member, with a status digest only if it has seen it.
    pub(super) fn gossip_round(&mut self) {
        let me = &self.self_node;
        let candidates: Vec<&UniqueAddress> = self
            .gossip
            .members
            .keys()
            .filter(|n| *n != me && self.gossip.reachability.is_reachable_by(me, n))
            .collect();
        if candidates.is_empty() {
            return;
        }
        let prefer_unseen = self
            .rng
            .random_bool(self.different_view_probability().clamp(0.0, 1.0));
        let unseen: Vec<&UniqueAddress> = candidates
            .iter()
            .copied()
            .filter(|n| !self.gossip.seen_by(n))
            .collect();
        if prefer_unseen && !unseen.is_empty() {
            let peer = unseen[self.rng.random_range(0..unseen.len())].clone();
            self.send_gossip(&peer);
        } else {
            let peer = candidates[self.rng.random_range(0..candidates.len())].clone();
            if self.gossip.seen_by(&peer) {
                self.send_gossip_status(&peer);
            } else {
                self.send_gossip(&peer);
            }
        }
    }
}
