//! Safety invariants checked after every simulation step.
//!
//! - In every node's view, a member's status only moves along the transition table,
//!   and an incarnation that left a view never comes back into it. A view whose owner
//!   was Joining or WeaklyUp, which convergence does not wait for, may skip a step
//!   forward (WeaklyUp -> Exiting) but never move back.
//! - No split brain: no two running members each hold the other Down or removed
//!   while both still consider themselves in the cluster (after the resolver acts on a
//!   partition, only one side keeps members). Incarnations an operator downed by hand
//!   are exempt: that decision is the operator's, not the resolver's.
//! - Two running members with the same converged state agree on one leader, and it is
//!   a member of that state.
//!
//! The liveness half (everything converges once faults heal) is checked by the
//! schedule runner, since it needs a time bound.

use super::{Sim, Slot};
use crate::address::UniqueAddress;
use crate::member::MemberStatus;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A broken invariant, with enough context to understand it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which invariant.
    pub invariant: &'static str,
    /// What was seen.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)
    }
}

/// Remembers what each view held, to check how it moves.
#[derive(Default)]
pub struct Checker {
    /// Per observing slot: status last seen of each incarnation.
    statuses: BTreeMap<Slot, BTreeMap<UniqueAddress, MemberStatus>>,
    /// Per observing slot: incarnations that left its view.
    gone: BTreeMap<Slot, BTreeSet<UniqueAddress>>,
    /// Incarnation whose view each slot's record belongs to.
    owner: BTreeMap<Slot, UniqueAddress>,
    /// Per slot whose view is converged and fully reachable: its version digest and
    /// the leader it names (kept between checks: an unchanged view keeps its entry).
    converged: BTreeMap<Slot, (u64, Option<UniqueAddress>)>,
}

impl Checker {
    /// A new incarnation at `slot`: its view starts from nothing.
    pub fn forget_view(&mut self, slot: Slot) {
        self.statuses.remove(&slot);
        self.gone.remove(&slot);
        self.owner.remove(&slot);
        self.converged.remove(&slot);
    }

    /// Checks every invariant against the simulator's current state, given the slots
    /// whose node ran since the last check. Every other view is as it was when it last
    /// passed, so only `changed` views can break a transition, and only pairs with a
    /// changed member can newly be a split brain (the set of operator-downed
    /// incarnations only grows, which only exempts more pairs).
    pub fn check_step(&mut self, sim: &Sim, changed: &BTreeSet<Slot>) -> Result<(), Violation> {
        let members = sim.running_members();
        for &slot in members.iter().filter(|s| changed.contains(s)) {
            self.check_transitions(sim, slot)?;
        }
        check_no_split_brain(sim, &members, changed)?;
        self.check_single_leader(sim, &members, changed)
    }

    /// Members with converged, fully reachable states of the same version name the
    /// same leader, a member of that state. Only a changed view can newly disagree.
    fn check_single_leader(
        &mut self,
        sim: &Sim,
        members: &[Slot],
        changed: &BTreeSet<Slot>,
    ) -> Result<(), Violation> {
        self.converged.retain(|slot, _| members.contains(slot));
        for &slot in members.iter().filter(|s| changed.contains(s)) {
            let node = sim.node(slot).expect("member");
            if !node.is_converged() || !node.gossip().reachability.is_all_reachable() {
                self.converged.remove(&slot);
                continue;
            }
            let leader = node.leader();
            if let Some(l) = &leader {
                if !node.gossip().has_member(l) {
                    return Err(Violation {
                        invariant: "leader is not a member",
                        detail: format!("n{slot} names {l}"),
                    });
                }
            }
            let digest = node.gossip().version.digest();
            let disagreeing = self
                .converged
                .iter()
                .find(|(other, (d, l))| **other != slot && *d == digest && *l != leader);
            if let Some((other, (_, other_leader))) = disagreeing {
                return Err(Violation {
                    invariant: "two leaders for one converged state",
                    detail: format!("n{other} says {other_leader:?}, n{slot} says {leader:?}"),
                });
            }
            self.converged.insert(slot, (digest, leader));
        }
        Ok(())
    }

    fn check_transitions(&mut self, sim: &Sim, slot: Slot) -> Result<(), Violation> {
        let node = sim.node(slot).expect("running member");
        let me = node.self_node().clone();
        if self.owner.get(&slot) != Some(&me) {
            self.forget_view(slot);
            self.owner.insert(slot, me.clone());
        }
        let view = node.gossip();
        let statuses = self.statuses.entry(slot).or_default();
        let gone = self.gone.entry(slot).or_default();
        // Convergence waits only for Up and Leaving members, so a view whose owner was
        // Joining or WeaklyUp may miss a step (seed 9300015051: WeaklyUp -> Exiting,
        // Leaving unseen), but never move back.
        let owner_counted = statuses.get(&me).is_some_and(|s| s.is_convergence_member());
        for (node_id, member) in &view.members {
            if gone.contains(node_id) {
                return Err(Violation {
                    invariant: "removed incarnation reappeared",
                    detail: format!("n{slot} sees {node_id} again as {:?}", member.status),
                });
            }
            if let Some(before) = statuses.get(node_id) {
                let allowed = if owner_counted {
                    before.can_move_to(member.status)
                } else {
                    before.priority() <= member.status.priority()
                };
                if !allowed {
                    return Err(Violation {
                        invariant: "illegal status transition",
                        detail: format!(
                            "n{slot} saw {node_id} move {before:?} -> {:?}",
                            member.status
                        ),
                    });
                }
            }
            statuses.insert(node_id.clone(), member.status);
        }
        let vanished: Vec<UniqueAddress> = statuses
            .keys()
            .filter(|n| !view.members.contains_key(*n))
            .cloned()
            .collect();
        for node_id in vanished {
            statuses.remove(&node_id);
            gone.insert(node_id);
        }
        Ok(())
    }
}

/// Whether `observer`'s view holds `subject` as Down or removed.
fn holds_gone(sim: &Sim, observer: Slot, subject: &UniqueAddress) -> bool {
    let Some(view) = sim.view(observer) else {
        return false;
    };
    view.tombstones.contains_key(subject)
        || view
            .member(subject)
            .is_some_and(|m| m.status == MemberStatus::Down)
}

fn considers_itself_in(sim: &Sim, slot: Slot) -> bool {
    sim.node(slot)
        .and_then(|n| n.status())
        .is_some_and(|s| !s.is_departing())
}

fn check_no_split_brain(
    sim: &Sim,
    members: &[Slot],
    changed: &BTreeSet<Slot>,
) -> Result<(), Violation> {
    for (i, &a) in members.iter().enumerate() {
        for &b in &members[i + 1..] {
            if !changed.contains(&a) && !changed.contains(&b) {
                continue;
            }
            let (Some(ua), Some(ub)) = (sim.unique(a), sim.unique(b)) else {
                continue;
            };
            if sim.operator_downed(&ua) || sim.operator_downed(&ub) {
                continue;
            }
            if considers_itself_in(sim, a)
                && considers_itself_in(sim, b)
                && holds_gone(sim, a, &ub)
                && holds_gone(sim, b, &ua)
            {
                return Err(Violation {
                    invariant: "split brain",
                    detail: format!("n{a} and n{b} each downed the other and both live on"),
                });
            }
        }
    }
    Ok(())
}
