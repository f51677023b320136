//! The replicated cluster state that gossip spreads, and the pure functions over it:
//! merge, convergence, leader, role leaders and oldest.
//!
//! One `Gossip` holds the members, the reachability table, a version vector, the set of
//! nodes that have seen this exact version, and tombstones of removed incarnations.
//! Merging two concurrent versions unions the members (higher status priority wins),
//! merges reachability per observer, takes the pointwise-max version, drops
//! tombstoned incarnations everywhere, and resets the seen set: nobody has seen the
//! merged state yet.

use crate::address::{Address, UniqueAddress};
use crate::member::{Member, MemberStatus};
use crate::reachability::Reachability;
use crate::vclock::{Fnv, VectorClock};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The cluster state that gossip replicates. On the wire it takes the compact form
/// of [`crate::wire::GossipWire`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "crate::wire::GossipWire", try_from = "crate::wire::GossipWire")]
pub struct Gossip {
    /// Current members (never Removed: removal turns a member into a tombstone).
    pub members: BTreeMap<UniqueAddress, Member>,
    /// Who sees whom as unreachable.
    pub reachability: Reachability,
    /// Version of this state.
    pub version: VectorClock,
    /// Nodes known to have seen exactly `version`.
    pub seen: BTreeSet<UniqueAddress>,
    /// Removed incarnations with the time (ms) of removal; never readmitted.
    pub tombstones: BTreeMap<UniqueAddress, u64>,
    /// Which cluster this is: the uid of the incarnation that formed it. A joiner
    /// adopts it with its welcome; states of different lineages belong to different
    /// clusters and are never merged (islands meet by restart, not by merge).
    pub lineage: u64,
}

impl Gossip {
    /// A state with one joining member, as a node that forms a new cluster has: the
    /// cluster's lineage is that member's incarnation.
    pub fn with_member(member: Member) -> Self {
        let mut gossip = Gossip {
            lineage: member.node.uid,
            ..Gossip::default()
        };
        gossip.members.insert(member.node.clone(), member);
        gossip
    }

    /// The member with this incarnation.
    pub fn member(&self, node: &UniqueAddress) -> Option<&Member> {
        self.members.get(node)
    }

    /// The member currently at this address (whatever incarnation).
    pub fn member_at(&self, address: &Address) -> Option<&Member> {
        self.members.values().find(|m| &m.node.address == address)
    }

    /// Whether `node` is a current member.
    pub fn has_member(&self, node: &UniqueAddress) -> bool {
        self.members.contains_key(node)
    }

    /// Whether `node` has seen this version.
    pub fn seen_by(&self, node: &UniqueAddress) -> bool {
        self.seen.contains(node)
    }

    /// Marks this version as seen by `node`.
    pub fn mark_seen(&mut self, node: &UniqueAddress) {
        if self.members.contains_key(node) {
            self.seen.insert(node.clone());
        }
    }

    /// A 64-bit digest of the seen set (for status-only gossip).
    pub fn seen_digest(&self) -> u64 {
        let mut hash = Fnv::new();
        for node in &self.seen {
            hash.unique_address(node);
        }
        hash.finish()
    }

    /// Records a local change: bumps `by` in the version and resets seen to `by` alone.
    pub fn bump(&mut self, by: &UniqueAddress) {
        self.version.increment(by);
        self.seen.clear();
        self.mark_seen(by);
    }

    /// Merge of two concurrent states. The seen set of the result is empty.
    pub fn merge(&self, other: &Gossip) -> Gossip {
        let mut tombstones = self.tombstones.clone();
        for (node, &at) in &other.tombstones {
            let slot = tombstones.entry(node.clone()).or_insert(at);
            *slot = (*slot).max(at);
        }
        let mut version = self.version.merge(&other.version);
        for node in tombstones.keys() {
            version.prune(node);
        }
        let mut members = BTreeMap::new();
        for (node, member) in self.members.iter().chain(other.members.iter()) {
            if tombstones.contains_key(node) || members.contains_key(node) {
                continue;
            }
            let chosen = match (self.members.get(node), other.members.get(node)) {
                (Some(a), Some(b)) => Member::pick_highest_priority(a, b),
                _ => member,
            };
            members.insert(node.clone(), chosen.clone());
        }
        let member_set: BTreeSet<UniqueAddress> = members.keys().cloned().collect();
        let reachability = self.reachability.merge(&other.reachability, &member_set);
        Gossip {
            members,
            reachability,
            version,
            seen: BTreeSet::new(),
            tombstones,
            lineage: self.lineage,
        }
    }

    /// Whether this state, merged from `a` and `b`, needs a version entry of its own
    /// author. The merge drops the entries of removed incarnations, and a change that
    /// only such an entry recorded (a Down authored by a member removed since) is then
    /// recorded nowhere: a later state that never saw it could dominate the merged one
    /// and be adopted whole, undoing it (seed 9300049814: Down -> Up). No author is
    /// needed when nothing was dropped, or when the merge equals an input that held
    /// none of the dropped entries (its own version still records all it holds).
    pub fn merge_needs_author(&self, a: &Gossip, b: &Gossip) -> bool {
        let dropped = |input: &Gossip| {
            input
                .version
                .entries()
                .any(|(node, _)| self.tombstones.contains_key(node))
        };
        if !dropped(a) && !dropped(b) {
            return false;
        }
        ![a, b]
            .into_iter()
            .any(|input| !dropped(input) && self.same_content(input))
    }

    /// Same members, reachability and tombstones (version and seen set aside).
    fn same_content(&self, other: &Gossip) -> bool {
        self.members == other.members
            && self.reachability == other.reachability
            && self.tombstones == other.tombstones
    }

    /// Moves `node` to `next` (see [`Member::move_to`]); whether it now has that
    /// status. A member not in this state, or a move the table refuses, changes nothing.
    pub fn move_member(&mut self, node: &UniqueAddress, next: MemberStatus) -> bool {
        self.members
            .get_mut(node)
            .is_some_and(|m| m.move_to(next).is_ok())
    }

    /// Removes a member for good: tombstone, no version entry, no reachability rows.
    pub fn remove_member(&mut self, node: &UniqueAddress, now_ms: u64) {
        self.members.remove(node);
        self.seen.remove(node);
        self.version.prune(node);
        self.reachability.remove_node(node);
        self.tombstones.insert(node.clone(), now_ms);
    }

    /// Forgets tombstones older than `keep_ms`. The member itself can no longer come
    /// back by then: every live member saw it Down or Exiting before it was removed.
    pub fn prune_tombstones(&mut self, now_ms: u64, keep_ms: u64) {
        self.tombstones
            .retain(|_, at| now_ms.saturating_sub(*at) < keep_ms);
    }

    /// Whether `node`'s status is Down (observations by downed observers are ignored).
    fn is_down(&self, node: &UniqueAddress) -> bool {
        self.members
            .get(node)
            .is_some_and(|m| m.status == MemberStatus::Down)
    }

    /// Members unreachable by at least one observer that is not itself Down.
    pub fn unreachable_excluding_downed_observers(&self) -> BTreeSet<UniqueAddress> {
        self.reachability
            .unreachable_excluding_observers(|observer| !self.is_down(observer))
            .into_iter()
            .filter(|n| self.members.contains_key(n))
            .collect()
    }

    /// Whether gossip has converged from `self_node`'s point of view: every Up or
    /// Leaving member has seen this version (also Joining and WeaklyUp ones while no
    /// member is Up yet), and every unreachable member (other than `self_node`) is
    /// Down or Exiting.
    pub fn convergence(&self, self_node: &UniqueAddress) -> bool {
        let forming = !self
            .members
            .values()
            .any(|m| m.status.is_convergence_member());
        let unreachable_ok = self
            .unreachable_excluding_downed_observers()
            .iter()
            .filter(|n| *n != self_node)
            .all(|n| self.members.get(n).is_none_or(|m| m.status.is_departing()));
        if !unreachable_ok {
            return false;
        }
        self.members.values().all(|m| {
            let must_have_seen = m.status.is_convergence_member()
                || (forming && matches!(m.status, MemberStatus::Joining | MemberStatus::WeaklyUp));
            !must_have_seen || self.seen.contains(&m.node)
        })
    }

    /// The leader as `self_node` sees it: the first reachable Up or Leaving member in
    /// address order (`self_node` counts as reachable to itself). While nobody is Up
    /// yet, the first reachable member that is not Down or Exiting, so a cluster can form.
    pub fn leader(&self, self_node: &UniqueAddress) -> Option<UniqueAddress> {
        self.leader_among(self_node, |_| true)
    }

    /// The leader among members with `role`.
    pub fn role_leader(&self, self_node: &UniqueAddress, role: &str) -> Option<UniqueAddress> {
        self.leader_among(self_node, |m| m.has_role(role))
    }

    fn leader_among(
        &self,
        self_node: &UniqueAddress,
        include: impl Fn(&Member) -> bool,
    ) -> Option<UniqueAddress> {
        let all_reachable = self.reachability.is_all_reachable();
        let candidates = self.members.values().filter(|m| {
            include(m)
                && m.status != MemberStatus::Down
                && (all_reachable
                    || &m.node == self_node
                    || self.reachability.is_reachable(&m.node))
        });
        let mut fallback: Option<&Member> = None;
        for m in candidates {
            if m.status.is_convergence_member() {
                return Some(m.node.clone());
            }
            let better = match fallback {
                None => true,
                Some(f) => f.status == MemberStatus::Exiting && m.status != MemberStatus::Exiting,
            };
            if better {
                fallback = Some(m);
            }
        }
        fallback.map(|m| m.node.clone())
    }

    /// Every role any member has.
    pub fn roles(&self) -> BTreeSet<String> {
        self.members
            .values()
            .flat_map(|m| m.roles.iter().cloned())
            .collect()
    }

    /// The oldest Up or Leaving member (lowest up-number, then address), optionally
    /// within a role.
    pub fn oldest(&self, role: Option<&str>) -> Option<&Member> {
        self.members
            .values()
            .filter(|m| m.status.is_convergence_member())
            .filter(|m| role.is_none_or(|r| m.has_role(r)))
            .min_by(|a, b| a.age_cmp(b))
    }

    /// Highest up-number handed out so far.
    pub fn max_up_number(&self) -> u32 {
        self.members
            .values()
            .map(|m| m.up_number)
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vclock::VersionOrder;

    fn node(port: u16) -> UniqueAddress {
        UniqueAddress::new(Address::new("h", port), u64::from(port))
    }

    fn member(port: u16, status: MemberStatus) -> Member {
        Member {
            node: node(port),
            status,
            roles: BTreeSet::new(),
            up_number: if status == MemberStatus::Joining {
                0
            } else {
                u32::from(port)
            },
        }
    }

    fn gossip(members: &[Member]) -> Gossip {
        let mut g = Gossip::default();
        for m in members {
            g.members.insert(m.node.clone(), m.clone());
        }
        g
    }

    #[test]
    fn merge_keeps_the_highest_priority_status_and_drops_tombstoned_members() {
        let mut a = gossip(&[member(1, MemberStatus::Up), member(2, MemberStatus::Up)]);
        a.bump(&node(1));
        let mut b = a.clone();
        b.members.get_mut(&node(2)).unwrap().status = MemberStatus::Leaving;
        b.bump(&node(2));
        a.members.insert(node(3), member(3, MemberStatus::Joining));
        a.bump(&node(1));
        assert_eq!(a.version.compare(&b.version), VersionOrder::Concurrent);
        let merged = a.merge(&b);
        assert_eq!(merged.members[&node(2)].status, MemberStatus::Leaving);
        assert!(merged.has_member(&node(3)));
        assert!(merged.seen.is_empty());

        let mut c = merged.clone();
        c.remove_member(&node(2), 10);
        let stale = merged.merge(&c);
        assert!(
            !stale.has_member(&node(2)),
            "a tombstone beats a stale copy"
        );
        assert!(stale.version.entries().all(|(n, _)| n != &node(2)));
    }

    #[test]
    fn a_merge_that_drops_the_only_record_of_a_change_needs_an_author() {
        let mut base = gossip(&[
            member(1, MemberStatus::Up),
            member(2, MemberStatus::Exiting),
            member(3, MemberStatus::Up),
        ]);
        base.bump(&node(1));
        base.bump(&node(2));
        // n2, on its way out, downs n3: only n2's entry records it.
        let mut downed_by_leaver = base.clone();
        downed_by_leaver.members.get_mut(&node(3)).unwrap().status = MemberStatus::Down;
        downed_by_leaver.bump(&node(2));
        // Meanwhile the leader removes n2.
        let mut removed = base.clone();
        removed.remove_member(&node(2), 5);
        removed.bump(&node(1));
        let merged = removed.merge(&downed_by_leaver);
        assert_eq!(merged.members[&node(3)].status, MemberStatus::Down);
        assert!(merged.merge_needs_author(&removed, &downed_by_leaver));
        // A removal merged with a state that adds nothing needs no author.
        let plain = removed.merge(&base);
        assert!(!plain.merge_needs_author(&removed, &base));
        // Nor does a merge that drops nothing.
        let mut left = base.clone();
        left.bump(&node(3));
        assert!(!left.merge(&base).merge_needs_author(&left, &base));
    }

    #[test]
    fn convergence_needs_every_up_member_to_have_seen_and_unreachables_downed() {
        let mut g = gossip(&[member(1, MemberStatus::Up), member(2, MemberStatus::Up)]);
        g.bump(&node(1));
        assert!(!g.convergence(&node(1)));
        g.mark_seen(&node(2));
        assert!(g.convergence(&node(1)));
        g.members.insert(node(3), member(3, MemberStatus::Up));
        g.mark_seen(&node(3));
        g.reachability.mark_unreachable(&node(1), &node(3));
        assert!(!g.convergence(&node(1)), "an unreachable Up member blocks");
        g.members.get_mut(&node(3)).unwrap().status = MemberStatus::Down;
        assert!(g.convergence(&node(1)), "downed, it no longer blocks");
    }

    #[test]
    fn leader_is_the_first_reachable_up_member_in_address_order() {
        let mut g = gossip(&[
            member(1, MemberStatus::Joining),
            member(2, MemberStatus::Up),
            member(3, MemberStatus::Up),
        ]);
        assert_eq!(g.leader(&node(3)), Some(node(2)));
        g.reachability.mark_unreachable(&node(3), &node(2));
        assert_eq!(g.leader(&node(3)), Some(node(3)));
        assert_eq!(
            g.leader(&node(2)),
            Some(node(2)),
            "self counts as reachable"
        );
        let forming = gossip(&[
            member(5, MemberStatus::Joining),
            member(4, MemberStatus::Joining),
        ]);
        assert_eq!(forming.leader(&node(5)), Some(node(4)));
    }

    #[test]
    fn oldest_is_the_lowest_up_number() {
        let mut g = gossip(&[member(1, MemberStatus::Up), member(2, MemberStatus::Up)]);
        g.members.get_mut(&node(1)).unwrap().up_number = 7;
        assert_eq!(g.oldest(None).unwrap().node, node(2));
    }
}
