//! The split-brain resolver as this node applies it: down members proven dead at
//! once; otherwise, when the unreachable set has been stable, decide (see `sbr`),
//! confirm a decision that keeps us, and down.

use super::{Millis, Node, Output, PendingDecision};
use crate::address::UniqueAddress;
use crate::events::{ClusterEvent, DecisionGrounds, DecisionTrigger};
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
        let proven = (!self.just_woke_from_long_absence(now))
            .then(|| {
                sbr::decide_on_proof_of_death(
                    &self.gossip,
                    &self.self_node,
                    &self.settings.downing,
                    fresh,
                )
            })
            .flatten();
        if let Some(proven) = proven {
            self.apply_resolution(now, proven, DecisionTrigger::ProvenDead);
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
        let corroborated = self.corroborated();
        let verdict = self.stability.verdict(
            &self.settings.downing,
            resolution.is_some(),
            corroborated,
            now,
        );
        let concedes = self.concedes_at_once(now, resolution.as_ref());
        let verdict = if concedes {
            StabilityVerdict::Decide
        } else {
            verdict
        };
        let trigger = match verdict {
            _ if concedes => DecisionTrigger::ConcededAtOnce,
            StabilityVerdict::DownAll => DecisionTrigger::UnstableTooLong,
            _ => DecisionTrigger::Stable {
                stable_for_ms: now.saturating_sub(self.stability.stable_since_ms()),
                corroborated,
            },
        };
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
                weighing: None,
            },
            _ => return,
        };
        self.pending_decision = None;
        self.stability.reset(now);
        self.apply_resolution(now, resolution, trigger);
    }

    /// Whether this node's view is corroborated (`sbr::corroborated`).
    pub(super) fn corroborated(&self) -> bool {
        let monitored_by = self.settings.monitored_by_nr_of_members;
        sbr::corroborated(&self.gossip, &self.self_node, monitored_by)
    }

    fn apply_resolution(
        &mut self,
        now: Millis,
        resolution: sbr::Resolution,
        trigger: DecisionTrigger,
    ) {
        if !resolution.to_down.contains(&self.self_node) {
            self.kept_ourselves_at = Some(now);
            self.unreachable_when_kept = self.own_unreachable_marks();
        }
        let grounds = DecisionGrounds {
            strategy: self.settings.downing.strategy.clone(),
            trigger,
            unreachable: self
                .gossip
                .reachability
                .all_unreachable()
                .into_iter()
                .filter(|n| self.gossip.has_member(n))
                .collect(),
            weighing: resolution.weighing.clone(),
        };
        self.outputs
            .push(Output::Event(ClusterEvent::ResolverDecision {
                decision: resolution.decision,
                downed: resolution.to_down.iter().cloned().collect(),
                indirectly_connected: resolution.indirectly_connected.iter().cloned().collect(),
                grounds: Some(Box::new(grounds)),
            }));
        self.down_members(now, &resolution.to_down);
    }

    /// Whether a decision that downs this node's side is taken at once, without waiting
    /// for stable-after: only just after this node kept itself on a decision of its own,
    /// only when its own rows mark every unreachable member, and only if its view now
    /// loses even counting every reachable member as ours while the unreachable would
    /// win (`sbr::outweighed_by_the_unreachable`).
    ///
    /// The decision that kept us was confirmed by answers sent before a partition that
    /// may have begun since. The far side may hold proofs of death against us and down
    /// us within a heartbeat (a rejecting firewall fakes them), or simply finish its
    /// stable-after before ours, which restarts with each member we find gone. Waiting
    /// would leave us running with the far side's members downed while the far side has
    /// downed us (seed 6600018048: n1 downed n2 on a confirmed cover 111 ms into a
    /// rejecting partition that isolated n1, and the rest downed n1 46 ms later; seed
    /// 6800003684, the same with a dropping partition). On this view we would lose after
    /// stable-after anyway. A node that decided nothing waits as before, so a short cut
    /// around it is still forgiven; and a view whose unreachable members this node does
    /// not itself mark can lose for a moment on its way to another decision (broken links
    /// between others not yet judged indirect: seed 6600002935 downed a side a majority
    /// reached).
    fn concedes_at_once(&self, now: Millis, resolution: Option<&sbr::Resolution>) -> bool {
        let downs_us = |r: &sbr::Resolution| r.to_down.contains(&self.self_node);
        self.watches_its_decision(now)
            && resolution.is_some_and(downs_us)
            && self.lost_a_member_since_it_kept_itself()
            && self.own_rows_cover_every_unreachable_member()
            && sbr::outweighed_by_the_unreachable(
                &self.gossip,
                &self.self_node,
                &self.settings.downing,
            )
    }

    /// The members this node's own row marks unreachable.
    fn own_unreachable_marks(&self) -> BTreeSet<UniqueAddress> {
        let me = &self.self_node;
        self.gossip
            .reachability
            .unreachable_pairs()
            .filter(|(observer, _)| *observer == me)
            .map(|(_, subject)| subject.clone())
            .collect()
    }

    /// Whether this node's own row marks a member unreachable that it did not mark
    /// when it kept itself. A partition that overtook that decision shows as members
    /// lost since; members it had already lost were weighed by the decision itself
    /// (seed 7000011037: a leader that downed a dead member while a frozen one was
    /// unreachable conceded when an operator's Down of a third made the Down members
    /// and the frozen one outweigh its side, and downed the side a majority reached).
    fn lost_a_member_since_it_kept_itself(&self) -> bool {
        self.own_unreachable_marks()
            .iter()
            .any(|n| !self.unreachable_when_kept.contains(n))
    }

    /// Whether this node's own row marks every staying member its view shows unreachable
    /// (silent or refused): this node is the one cut off, not a witness of broken links
    /// between others, whose view can lose for a moment on its way to another decision.
    fn own_rows_cover_every_unreachable_member(&self) -> bool {
        let me = &self.self_node;
        let g = &self.gossip;
        g.unreachable_excluding_downed_observers()
            .iter()
            .filter(|n| *n != me && g.member(n).is_some_and(|m| m.status.is_staying()))
            .all(|n| !g.reachability.is_reachable_by(me, n))
    }

    /// Whether this node, having just kept itself on a decision of its own (see
    /// `concedes_at_once`), should run the resolver as soon as its view changes rather
    /// than at its next leader round.
    pub(super) fn watches_its_decision(&self, now: Millis) -> bool {
        self.kept_ourselves_at
            .is_some_and(|at| now < at + self.settings.downing.stable_after_ms)
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
