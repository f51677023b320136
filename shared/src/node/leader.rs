//! Leader actions: moving joiners up (WeaklyUp while convergence is blocked),
//! leavers to Exiting, and removing Down and Exiting members on convergence.

use super::{Millis, Node};
use crate::address::UniqueAddress;
use crate::member::{Member, MemberStatus};
use crate::sbr;
use crate::wire::Message;

impl Node {
    pub(super) fn min_nr_of_members_fulfilled(&self) -> bool {
        let counted: Vec<&Member> = self
            .gossip
            .members
            .values()
            .filter(|m| !m.status.is_departing())
            .collect();
        counted.len() >= self.settings.min_nr_of_members
            && self
                .settings
                .min_nr_of_members_of_role
                .iter()
                .all(|(role, min)| counted.iter().filter(|m| m.has_role(role)).count() >= *min)
    }

    pub(super) fn leader_actions(&mut self, now: Millis) {
        if self.leader().as_ref() != Some(&self.self_node) {
            self.not_converged_since = None;
            // Keep the resolver's bookkeeping current on every node, so a node that
            // becomes leader judges stability from the same history.
            let has_unreachable =
                sbr::decide(&self.gossip, &self.self_node, &self.settings.downing).is_some();
            let corroborated = self.corroborated();
            self.stability
                .verdict(&self.settings.downing, has_unreachable, corroborated, now);
            return;
        }
        if self.is_converged() {
            self.not_converged_since = None;
            self.leader_actions_on_convergence(now);
        } else {
            let since = *self.not_converged_since.get_or_insert(now);
            if let Some(after) = self.settings.weakly_up_after_ms {
                if now.saturating_sub(since) >= after {
                    self.move_joining_to_weakly_up(now);
                }
            }
        }
        self.resolve_split_brain(now);
    }

    /// On convergence: joiners Up, leavers Exiting, Down and Exiting members removed.
    ///
    /// A Down member that was once Up is removed only once every joiner has seen the
    /// state too. Convergence does not wait for Joining or WeaklyUp members, yet one
    /// may be Up on the far side of a partition beside the Down member, alive there if
    /// the Down was an operator's on this side. Removing it here takes it out of this
    /// side's weighed total (`sbr::weighed_total`), which must contain every member Up
    /// over there (seed 9800014009: n1, cut off, downed n0 by command, removed it at
    /// once with joiner n2 unaware, and then kept itself by a 1 | 1 tie).
    pub(super) fn leader_actions_on_convergence(&mut self, now: Millis) {
        let g = &self.gossip;
        let joiners_saw = g
            .members
            .values()
            .filter(|m| matches!(m.status, MemberStatus::Joining | MemberStatus::WeaklyUp))
            .all(|m| g.seen.contains(&m.node));
        let to_remove: Vec<UniqueAddress> = g
            .members
            .values()
            .filter(|m| m.status.is_departing())
            .filter(|m| joiners_saw || !(m.status == MemberStatus::Down && m.up_number > 0))
            .map(|m| m.node.clone())
            .collect();
        let move_up = self.min_nr_of_members_fulfilled();
        let to_up: Vec<UniqueAddress> = g
            .members
            .values()
            .filter(|m| {
                move_up && matches!(m.status, MemberStatus::Joining | MemberStatus::WeaklyUp)
            })
            .map(|m| m.node.clone())
            .collect();
        let to_exit: Vec<UniqueAddress> = g
            .members
            .values()
            .filter(|m| m.status == MemberStatus::Leaving)
            .map(|m| m.node.clone())
            .collect();
        if to_remove.is_empty() && to_up.is_empty() && to_exit.is_empty() {
            return;
        }
        let exiting_removed: Vec<UniqueAddress> = to_remove
            .iter()
            .filter(|n| {
                g.member(n)
                    .is_some_and(|m| m.status == MemberStatus::Exiting)
            })
            .cloned()
            .collect();
        self.change(now, |g, _| {
            let mut up_number = g.max_up_number();
            for node in &to_up {
                if g.move_member(node, MemberStatus::Up) {
                    up_number += 1;
                    if let Some(m) = g.members.get_mut(node) {
                        m.up_number = up_number;
                    }
                }
            }
            for node in &to_exit {
                g.move_member(node, MemberStatus::Exiting);
            }
            for node in &to_remove {
                g.remove_member(node, now);
            }
        });
        // Tell members that left that they are gone, so they can stop at once.
        for node in exiting_removed {
            if node != self.self_node {
                self.send(
                    node.address.clone(),
                    Message::Quarantined {
                        from: self.self_node.clone(),
                        to: node,
                    },
                );
            }
        }
    }

    /// How long a member may stay Joining before it concludes its cluster is gone:
    /// longer than WeaklyUp, a stable decision, down-all-when-unstable and a join retry
    /// together. `None` (never) when WeaklyUp is disabled, since then a blocked
    /// cluster legitimately keeps joiners waiting.
    pub(super) fn stuck_joining_after(&self) -> Option<Millis> {
        let downing = &self.settings.downing;
        self.settings.weakly_up_after_ms.map(|weakly_up| {
            weakly_up
                + downing.stable_after_ms
                + downing
                    .down_all_when_unstable_ms
                    .unwrap_or(downing.stable_after_ms)
                + self.settings.retry_unsuccessful_join_after_ms
        })
    }

    pub(super) fn move_joining_to_weakly_up(&mut self, now: Millis) {
        let to_weakly_up: Vec<UniqueAddress> = self
            .gossip
            .members
            .values()
            .filter(|m| {
                m.status == MemberStatus::Joining && self.gossip.reachability.is_reachable(&m.node)
            })
            .map(|m| m.node.clone())
            .collect();
        if to_weakly_up.is_empty() || !self.min_nr_of_members_fulfilled() {
            return;
        }
        self.change(now, |g, _| {
            for node in &to_weakly_up {
                g.move_member(node, MemberStatus::WeaklyUp);
            }
        });
    }
}
