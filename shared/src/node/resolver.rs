//! The split-brain resolver as this node applies it: down members proven dead at
//! once; otherwise, when the unreachable set has been stable, decide (see `sbr`),
//! confirm a decision that keeps us, and down.

use super::{Millis, Node, Output, PendingDecision};
use crate::address::UniqueAddress;
use crate::events::ClusterEvent;
use crate::member::MemberStatus;
use crate::sbr;
use crate::sbr::StabilityVerdict;
use std::collections::BTreeSet;

impl Node {
    pub(super) fn resolve_split_brain(&mut self, now: Millis) {
        if !self.is_member() {
            return;
        }
        let window =
            self.settings.acceptable_heartbeat_pause_ms + 2 * self.settings.heartbeat_interval_ms;
        let monitor = &self.monitor;
        let fresh = |n: &UniqueAddress| monitor.answered_within(n, now, window);
        if let Some(proven) = sbr::decide_on_proof_of_death(
            &self.gossip,
            &self.self_node,
            &self.settings.downing,
            fresh,
        ) {
            self.apply_resolution(now, proven);
            return;
        }
        let monitor = &self.monitor;
        let monitored_by = self.settings.monitored_by_nr_of_members;
        let resolution = sbr::decide_with_evidence(
            &self.gossip,
            &self.self_node,
            &self.settings.downing,
            monitored_by,
            |n| monitor.answered_within(n, now, window),
        );
        let verdict = self
            .stability
            .verdict(&self.settings.downing, resolution.is_some(), now);
        let resolution = match (verdict, resolution) {
            (StabilityVerdict::Decide, Some(r)) if !r.to_down.contains(&self.self_node) => {
                match self.confirmed(r, now) {
                    Some(r) => r,
                    None => return,
                }
            }
            (StabilityVerdict::Decide, Some(r)) => r,
            (StabilityVerdict::DownAll, _) => sbr::Resolution {
                decision: sbr::Decision::DownAll,
                to_down: self
                    .gossip
                    .members
                    .values()
                    .filter(|m| !m.status.is_departing())
                    .map(|m| m.node.clone())
                    .collect(),
                indirectly_connected: BTreeSet::new(),
            },
            _ => return,
        };
        self.pending_decision = None;
        self.stability.reset(now);
        self.apply_resolution(now, resolution);
    }

    fn apply_resolution(&mut self, now: Millis, resolution: sbr::Resolution) {
        self.outputs
            .push(Output::Event(ClusterEvent::ResolverDecision {
                decision: resolution.decision,
                downed: resolution.to_down.iter().cloned().collect(),
                indirectly_connected: resolution.indirectly_connected.iter().cloned().collect(),
            }));
        self.down_members(now, &resolution.to_down);
    }

    /// A decision that keeps this node is applied only once every Up member it counts
    /// on (that this node monitors) has answered a heartbeat sent after the decision.
    /// A partition that began just before the decision, too recently for the detector
    /// to have seen it, shows up as a member that never answers; the view then changes
    /// and the decision is taken again on the new view. (The simulator found the race,
    /// seed 9954: both sides kept themselves.)
    pub(super) fn confirmed(
        &mut self,
        resolution: sbr::Resolution,
        now: Millis,
    ) -> Option<sbr::Resolution> {
        let stable_since = self.stability.stable_since_ms();
        let pending = match self.pending_decision.take() {
            Some(p)
                if p.stable_since == stable_since && p.resolution.to_down == resolution.to_down =>
            {
                p
            }
            _ => PendingDecision {
                decided_at: now,
                stable_since,
                resolution,
            },
        };
        let all_answered = self
            .gossip
            .members
            .values()
            .filter(|m| m.status == MemberStatus::Up && m.node != self.self_node)
            .filter(|m| !pending.resolution.to_down.contains(&m.node))
            .all(|m| self.monitor.answered_after(&m.node, pending.decided_at));
        if all_answered {
            Some(pending.resolution)
        } else {
            self.pending_decision = Some(pending);
            None
        }
    }

    pub(super) fn down_members(&mut self, now: Millis, nodes: &BTreeSet<UniqueAddress>) {
        if nodes.is_empty() {
            return;
        }
        self.change(now, |g, _| {
            for node in nodes {
                g.move_member(node, MemberStatus::Down);
            }
        });
    }
}
