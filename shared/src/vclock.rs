//! A version vector over node incarnations: who changed the cluster state, how often.
//!
//! Every node that changes the gossip (a join it accepts, a leader action, a
//! reachability observation, a down or leave) increments its own entry. Comparing two
//! vectors tells whether one state descends from the other or whether they are
//! concurrent and must be merged. Entries of removed members are pruned so the vector
//! does not grow with churn.

use crate::address::UniqueAddress;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// How two versions relate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionOrder {
    /// Identical.
    Same,
    /// `self` happened before `other`.
    Before,
    /// `self` happened after `other`.
    After,
    /// Neither descends from the other.
    Concurrent,
}

/// Node -> counter. Absent entries count as zero.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VectorClock {
    entries: BTreeMap<UniqueAddress, u64>,
}

impl VectorClock {
    /// The empty clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bumps `node`'s counter by one.
    pub fn increment(&mut self, node: &UniqueAddress) {
        *self.entries.entry(node.clone()).or_insert(0) += 1;
    }

    /// Pointwise maximum.
    pub fn merge(&self, other: &VectorClock) -> VectorClock {
        let mut entries = self.entries.clone();
        for (node, &count) in &other.entries {
            let slot = entries.entry(node.clone()).or_insert(0);
            *slot = (*slot).max(count);
        }
        VectorClock { entries }
    }

    /// Drops `node`'s entry (it was removed from the cluster).
    pub fn prune(&mut self, node: &UniqueAddress) {
        self.entries.remove(node);
    }

    /// Iterates the entries in node order.
    pub fn entries(&self) -> impl Iterator<Item = (&UniqueAddress, u64)> {
        self.entries.iter().map(|(n, c)| (n, *c))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is set.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Builds a clock from entries (zero counters are dropped).
    pub fn from_entries(entries: impl IntoIterator<Item = (UniqueAddress, u64)>) -> Self {
        VectorClock {
            entries: crate::sorting::map_from(entries.into_iter().filter(|(_, c)| *c > 0)),
        }
    }

    /// Causal comparison of `self` against `other`.
    pub fn compare(&self, other: &VectorClock) -> VersionOrder {
        let mut self_bigger = false;
        let mut other_bigger = false;
        let keys = self.entries.keys().chain(other.entries.keys());
        for key in keys {
            let a = self.entries.get(key).copied().unwrap_or(0);
            let b = other.entries.get(key).copied().unwrap_or(0);
            match a.cmp(&b) {
                Ordering::Greater => self_bigger = true,
                Ordering::Less => other_bigger = true,
                Ordering::Equal => {}
            }
            if self_bigger && other_bigger {
                return VersionOrder::Concurrent;
            }
        }
        match (self_bigger, other_bigger) {
            (false, false) => VersionOrder::Same,
            (true, false) => VersionOrder::After,
            (false, true) => VersionOrder::Before,
            (true, true) => VersionOrder::Concurrent,
        }
    }

    /// A 64-bit digest (FNV-1a) used by status-only gossip to compare versions cheaply.
    pub fn digest(&self) -> u64 {
        let mut hash = Fnv::new();
        for (node, count) in &self.entries {
            hash.unique_address(node);
            hash.u64(*count);
        }
        hash.finish()
    }
}

/// FNV-1a, enough to tell versions apart in status gossip (not a security measure).
pub(crate) struct Fnv(u64);

impl Fnv {
    pub(crate) fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    pub(crate) fn unique_address(&mut self, node: &UniqueAddress) {
        self.bytes(node.address.host.as_bytes());
        self.bytes(&node.address.port.to_le_bytes());
        self.u64(node.uid);
    }
    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Address;

    fn node(port: u16) -> UniqueAddress {
        UniqueAddress::new(Address::new("h", port), 1)
    }

    #[test]
    fn increments_order_versions_and_concurrent_edits_are_detected() {
        let (a, b) = (node(1), node(2));
        let mut v1 = VectorClock::new();
        v1.increment(&a);
        let mut v2 = v1.clone();
        assert_eq!(v1.compare(&v2), VersionOrder::Same);
        v2.increment(&b);
        assert_eq!(v1.compare(&v2), VersionOrder::Before);
        assert_eq!(v2.compare(&v1), VersionOrder::After);
        v1.increment(&a);
        assert_eq!(v1.compare(&v2), VersionOrder::Concurrent);
        let merged = v1.merge(&v2);
        assert_eq!(merged.compare(&v1), VersionOrder::After);
        assert_eq!(merged.compare(&v2), VersionOrder::After);
        assert_ne!(v1.digest(), v2.digest());
    }
}
