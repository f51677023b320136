//! State changes: every edit of the gossip goes through `change`, which bumps the
//! version; `after_change` publishes the events, follows stops, and rearms timers.

use super::{Millis, Node, Output, Phase};
use crate::address::{Address, UniqueAddress};
use crate::events::{diff, ClusterEvent, ShutdownReason};
use crate::gossip::Gossip;
use crate::member::MemberStatus;
use crate::wire::Message;
use std::collections::BTreeMap;

impl Node {
    /// Applies a local change: new version, seen only by this node, then events.
    pub(super) fn change(&mut self, now: Millis, edit: impl FnOnce(&mut Gossip, &UniqueAddress)) {
        let old = self.gossip.clone();
        edit(&mut self.gossip, &self.self_node);
        if self.gossip == old {
            return;
        }
        self.gossip.bump(&self.self_node);
        self.after_change(&old, now);
        self.push_change();
    }

    /// Publishes events and reacts to this node's own status after any change.
    pub(super) fn after_change(&mut self, old: &Gossip, now: Millis) {
        for event in diff(old, &self.gossip, &self.self_node) {
            self.outputs.push(Output::Event(event));
        }
        self.stability.observe(&self.gossip, now);
        self.refresh_heartbeat_receivers(now);
        self.look_for_ourselves();
        match self.status() {
            None if old.has_member(&self.self_node) => {
                let was = old.member(&self.self_node).map(|m| m.status);
                self.shut_down(removal_reason(was));
            }
            Some(MemberStatus::Down) => {
                // Tell the others before stopping, so a side that downed itself
                // learns it together.
                let peers: Vec<UniqueAddress> = self
                    .gossip
                    .members
                    .keys()
                    .filter(|n| {
                        *n != &self.self_node
                            && self.gossip.reachability.is_reachable_by(&self.self_node, n)
                    })
                    .cloned()
                    .collect();
                for peer in peers {
                    self.send_gossip(&peer);
                }
                self.shut_down(ShutdownReason::Downed);
            }
            Some(MemberStatus::Exiting) if self.timers.exiting_deadline.is_none() => {
                self.timers.exiting_deadline = Some(now + self.settings.exiting_timeout_ms);
            }
            _ => {}
        }
        if matches!(
            self.status(),
            Some(MemberStatus::Joining | MemberStatus::WeaklyUp)
        ) {
            self.joining_since.get_or_insert(now);
        } else {
            self.joining_since = None;
        }
        // While some seed address has no member in this cluster, the leader keeps
        // asking it whether another cluster exists there (see `on_init_join_ack`).
        if self.is_member()
            && self.timers.probe_seeds.is_none()
            && !self.seeds_outside_cluster().is_empty()
        {
            self.timers.probe_seeds = Some(now + self.settings.seed_node_timeout_ms);
        }
    }

    pub(super) fn reason_for_removal(&self) -> ShutdownReason {
        removal_reason(self.status())
    }

    pub(super) fn shut_down(&mut self, reason: ShutdownReason) {
        if matches!(self.phase, Phase::Stopped(_)) {
            return;
        }
        self.phase = Phase::Stopped(reason);
        self.outputs
            .push(Output::Event(ClusterEvent::SelfShutdown { reason }));
        self.outputs.push(Output::Shutdown(reason));
    }

    pub(super) fn send(&mut self, to: Address, message: Message) {
        self.answer_owed_heartbeat(&to);
        self.outputs.push(Output::Send { to, message });
    }

    /// Phi per monitored node at `now`.
    pub fn phis(&self, now: Millis) -> BTreeMap<UniqueAddress, f64> {
        self.monitor.phis(now)
    }
}

/// Downs `node` with no wait for the detector or the resolver, for an incarnation
/// known to be gone from this cluster: `me` records it unreachable, so the leader
/// removes it at the next convergence.
pub(super) fn down_at_once(g: &mut Gossip, me: &UniqueAddress, node: &UniqueAddress) {
    g.reachability.mark_unreachable(me, node);
    g.move_member(node, MemberStatus::Down);
}

/// Why a member that was last `status` stops on finding itself removed.
fn removal_reason(status: Option<MemberStatus>) -> ShutdownReason {
    match status {
        Some(MemberStatus::Leaving | MemberStatus::Exiting) => ShutdownReason::Left,
        Some(MemberStatus::Down) => ShutdownReason::Downed,
        _ => ShutdownReason::Removed,
    }
}
