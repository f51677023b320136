//! Member status, its transition table, and the priority that makes merging monotonic.
//!
//! The table is Akka's: user actions are join, leave and down; everything else is a
//! leader action. When two versions of the same member meet in a merge, the status
//! with the higher priority wins (Removed > Down > Exiting > Leaving > Up > WeaklyUp >
//! Joining), so a merge can only move a member forward.

use crate::address::{Address, UniqueAddress};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// Most roles one member may carry; keeps decoded gossip bounded.
pub const MAX_ROLES: usize = 16;
/// Longest role name accepted.
pub const MAX_ROLE_LEN: usize = 64;

/// Where a member is in its life cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum MemberStatus {
    /// Asked to join; not yet moved up by the leader.
    Joining,
    /// Moved up without convergence (after `weakly_up_after`); usable, not counted.
    WeaklyUp,
    /// A full member.
    Up,
    /// Asked to leave; the leader will make it Exiting once gossip converges.
    Leaving,
    /// Leaving is agreed; removed once every member has seen this.
    Exiting,
    /// Decided dead (by an operator or the split-brain resolver); will be removed.
    Down,
    /// Gone; kept only as a tombstone so it never comes back.
    Removed,
}

impl MemberStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [MemberStatus; 7] = [
        MemberStatus::Joining,
        MemberStatus::WeaklyUp,
        MemberStatus::Up,
        MemberStatus::Leaving,
        MemberStatus::Exiting,
        MemberStatus::Down,
        MemberStatus::Removed,
    ];

    /// Merge priority: the higher wins when two versions of a member disagree.
    pub fn priority(self) -> u8 {
        match self {
            MemberStatus::Joining => 0,
            MemberStatus::WeaklyUp => 1,
            MemberStatus::Up => 2,
            MemberStatus::Leaving => 3,
            MemberStatus::Exiting => 4,
            MemberStatus::Down => 5,
            MemberStatus::Removed => 6,
        }
    }

    /// Whether `self -> next` is an allowed move (staying put is always allowed).
    pub fn can_move_to(self, next: MemberStatus) -> bool {
        use MemberStatus::*;
        if self == next {
            return true;
        }
        match self {
            Joining => matches!(next, WeaklyUp | Up | Leaving | Down | Removed),
            WeaklyUp => matches!(next, Up | Leaving | Down | Removed),
            Up => matches!(next, Leaving | Down | Removed),
            Leaving => matches!(next, Exiting | Down | Removed),
            Exiting => matches!(next, Removed | Down),
            Down => matches!(next, Removed),
            Removed => false,
        }
    }

    /// Whether `self` can come to `next` by allowed moves, one or several.
    pub fn can_reach(self, next: MemberStatus) -> bool {
        use MemberStatus::*;
        self.can_move_to(next)
            || [WeaklyUp, Up, Leaving, Exiting, Down]
                .iter()
                .any(|&via| self != via && self.can_move_to(via) && via.can_move_to(next))
    }

    /// Down, Exiting or Removed: out of the cluster, or on the way out whatever it does
    /// next. Such a member is not counted live, takes no joiners, and does not block
    /// convergence while unreachable.
    pub fn is_departing(self) -> bool {
        matches!(
            self,
            MemberStatus::Down | MemberStatus::Exiting | MemberStatus::Removed
        )
    }

    /// Joining, WeaklyUp or Up: a member that means to stay, so that its process ending
    /// is a death, not a departure.
    pub fn is_staying(self) -> bool {
        matches!(
            self,
            MemberStatus::Joining | MemberStatus::WeaklyUp | MemberStatus::Up
        )
    }

    /// Up or Leaving: the members whose view must agree for convergence, and who may lead.
    pub fn is_convergence_member(self) -> bool {
        matches!(self, MemberStatus::Up | MemberStatus::Leaving)
    }

    /// Statuses a node can serve with (what `/ready` reports as ready).
    pub fn is_available(self) -> bool {
        matches!(self, MemberStatus::Up | MemberStatus::WeaklyUp)
    }
}

impl fmt::Display for MemberStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A status change the transition table does not allow; the member was left as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a member cannot move from {from} to {to}")]
pub struct IllegalTransition {
    /// Its status.
    pub from: MemberStatus,
    /// The refused one.
    pub to: MemberStatus,
}

/// One member as the gossip knows it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    /// The incarnation.
    pub node: UniqueAddress,
    /// Where it is in its life cycle.
    pub status: MemberStatus,
    /// Roles given at start (routing and role leaders use them).
    pub roles: BTreeSet<String>,
    /// Order in which the leader moved members Up; lower is older. 0 until Up.
    pub up_number: u32,
}

impl Member {
    /// A member that has just asked to join.
    pub fn joining(node: UniqueAddress, roles: BTreeSet<String>) -> Self {
        Member {
            node,
            status: MemberStatus::Joining,
            roles,
            up_number: 0,
        }
    }

    /// Moves to `next` if the transition table allows it (staying put is allowed);
    /// otherwise refuses and changes nothing. Every status change in the core goes
    /// through here, so an illegal step is refused where it is taken.
    pub fn move_to(&mut self, next: MemberStatus) -> Result<(), IllegalTransition> {
        if !self.status.can_move_to(next) {
            return Err(IllegalTransition {
                from: self.status,
                to: next,
            });
        }
        self.status = next;
        Ok(())
    }

    /// The member's address.
    pub fn address(&self) -> &Address {
        &self.node.address
    }

    /// Whether it carries `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains(role)
    }

    /// Age order: lower up-number first, then address. `Less` means `self` is older.
    pub fn age_cmp(&self, other: &Member) -> std::cmp::Ordering {
        let key = |m: &Member| {
            (
                if m.up_number == 0 {
                    u32::MAX
                } else {
                    m.up_number
                },
                m.node.clone(),
            )
        };
        key(self).cmp(&key(other))
    }

    /// Of two versions of the same member, the one a merge keeps: higher status
    /// priority first; for equal status the lower (earlier) up-number, then the
    /// larger role set, so the choice is the same whichever side merges.
    pub fn pick_highest_priority<'a>(a: &'a Member, b: &'a Member) -> &'a Member {
        let rank = |m: &Member| {
            (
                m.status.priority(),
                std::cmp::Reverse(if m.up_number == 0 {
                    u32::MAX
                } else {
                    m.up_number
                }),
                m.roles.clone(),
            )
        };
        if rank(b) > rank(a) {
            b
        } else {
            a
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MemberStatus::*;
    use super::*;

    #[test]
    fn transition_table_matches_akka() {
        let allowed = [
            (Joining, vec![WeaklyUp, Up, Leaving, Down, Removed]),
            (WeaklyUp, vec![Up, Leaving, Down, Removed]),
            (Up, vec![Leaving, Down, Removed]),
            (Leaving, vec![Exiting, Down, Removed]),
            (Exiting, vec![Removed, Down]),
            (Down, vec![Removed]),
            (Removed, vec![]),
        ];
        for (from, tos) in allowed {
            for to in MemberStatus::ALL {
                let expected = from == to || tos.contains(&to);
                assert_eq!(from.can_move_to(to), expected, "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn a_move_the_table_refuses_changes_nothing() {
        let node = UniqueAddress::new(Address::new("10.0.0.1", 2552), 1);
        let mut m = Member::joining(node, Default::default());
        m.move_to(Up).unwrap();
        m.move_to(Down).unwrap();
        assert_eq!(m.move_to(Up), Err(IllegalTransition { from: Down, to: Up }));
        assert_eq!(m.status, Down);
        assert!(Down.is_departing() && Exiting.is_departing() && Removed.is_departing());
        assert!(!Leaving.is_departing());
    }

    #[test]
    fn every_allowed_move_raises_priority_so_merges_are_monotonic() {
        for from in MemberStatus::ALL {
            for to in MemberStatus::ALL {
                if from != to && from.can_move_to(to) {
                    assert!(to.priority() > from.priority(), "{from:?} -> {to:?}");
                }
            }
        }
    }
}
