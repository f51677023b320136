//! The reachability table: which observer currently sees which subject as unreachable.
//!
//! Unreachable is an observation, not a decision. Each observer owns its own rows and a
//! version it bumps on every change, so merging two tables per observer by that version
//! is exact: the newer observation of an observer replaces the older one. A subject is
//! unreachable while at least one observer still has a row for it, and becomes
//! reachable again only when every such observer has cleared its row.
//!
//! A row can also say how the observer knows: `refused` marks the subjects whose
//! address refused a connection (nothing listened there, so the process is gone),
//! as opposed to ones that only fell silent. The resolver's fast path counts these
//! first-hand proofs (`sbr::decide_on_proof_of_death`).

use crate::address::UniqueAddress;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One observer's current unreachable observations.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObserverRows {
    /// Bumped by the observer on every change of its rows.
    pub version: u64,
    /// Subjects this observer sees as unreachable.
    pub unreachable: BTreeSet<UniqueAddress>,
    /// The subset of `unreachable` whose address refused this observer's connection
    /// after the subject's last answer to it.
    #[serde(default)]
    pub refused: BTreeSet<UniqueAddress>,
}

/// Observer -> its rows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reachability {
    observers: BTreeMap<UniqueAddress, ObserverRows>,
}

impl Reachability {
    /// An empty table: everyone is reachable.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `observer` sees `subject` as unreachable. Returns whether it changed.
    pub fn mark_unreachable(&mut self, observer: &UniqueAddress, subject: &UniqueAddress) -> bool {
        let rows = self.observers.entry(observer.clone()).or_default();
        if rows.unreachable.insert(subject.clone()) {
            rows.version += 1;
            true
        } else {
            false
        }
    }

    /// Records that `observer` found nothing listening at `subject`'s address (and so
    /// sees it unreachable). Returns whether it changed.
    pub fn mark_refused(&mut self, observer: &UniqueAddress, subject: &UniqueAddress) -> bool {
        let rows = self.observers.entry(observer.clone()).or_default();
        let newly_unreachable = rows.unreachable.insert(subject.clone());
        let newly_refused = rows.refused.insert(subject.clone());
        let changed = newly_unreachable || newly_refused;
        if changed {
            rows.version += 1;
        }
        changed
    }

    /// Records that `observer` sees `subject` again. Returns whether it changed.
    pub fn mark_reachable(&mut self, observer: &UniqueAddress, subject: &UniqueAddress) -> bool {
        let Some(rows) = self.observers.get_mut(observer) else {
            return false;
        };
        rows.refused.remove(subject);
        let changed = rows.unreachable.remove(subject);
        if changed {
            rows.version += 1;
        }
        changed
    }

    /// Whether no observer sees `subject` as unreachable.
    pub fn is_reachable(&self, subject: &UniqueAddress) -> bool {
        !self
            .observers
            .values()
            .any(|rows| rows.unreachable.contains(subject))
    }

    /// Whether `observer` itself sees `subject` as reachable.
    pub fn is_reachable_by(&self, observer: &UniqueAddress, subject: &UniqueAddress) -> bool {
        self.observers
            .get(observer)
            .is_none_or(|rows| !rows.unreachable.contains(subject))
    }

    /// Whether `observer` found nothing listening at `subject`'s address.
    pub fn is_refused_by(&self, observer: &UniqueAddress, subject: &UniqueAddress) -> bool {
        self.observers
            .get(observer)
            .is_some_and(|rows| rows.refused.contains(subject))
    }

    /// Every subject some observer found nothing listening for.
    pub fn refused_subjects(&self) -> BTreeSet<UniqueAddress> {
        self.observers
            .values()
            .flat_map(|rows| rows.refused.iter().cloned())
            .collect()
    }

    /// Whether nothing is unreachable.
    pub fn is_all_reachable(&self) -> bool {
        self.observers
            .values()
            .all(|rows| rows.unreachable.is_empty())
    }

    /// Every subject some observer sees as unreachable.
    pub fn all_unreachable(&self) -> BTreeSet<UniqueAddress> {
        self.observers
            .values()
            .flat_map(|rows| rows.unreachable.iter().cloned())
            .collect()
    }

    /// Subjects unreachable by the observers that `count_observer` accepts.
    pub fn unreachable_excluding_observers(
        &self,
        count_observer: impl Fn(&UniqueAddress) -> bool,
    ) -> BTreeSet<UniqueAddress> {
        self.observers
            .iter()
            .filter(|(observer, _)| count_observer(observer))
            .flat_map(|(_, rows)| rows.unreachable.iter().cloned())
            .collect()
    }

    /// Observers that see `subject` as unreachable.
    pub fn observers_of(&self, subject: &UniqueAddress) -> BTreeSet<UniqueAddress> {
        self.observers
            .iter()
            .filter(|(_, rows)| rows.unreachable.contains(subject))
            .map(|(observer, _)| observer.clone())
            .collect()
    }

    /// Observers that have at least one unreachable row.
    pub fn active_observers(&self) -> BTreeSet<UniqueAddress> {
        self.observers
            .iter()
            .filter(|(_, rows)| !rows.unreachable.is_empty())
            .map(|(observer, _)| observer.clone())
            .collect()
    }

    /// Every (observer, subject) unreachable pair.
    pub fn unreachable_pairs(&self) -> impl Iterator<Item = (&UniqueAddress, &UniqueAddress)> {
        self.observers
            .iter()
            .flat_map(|(observer, rows)| rows.unreachable.iter().map(move |s| (observer, s)))
    }

    /// Each observer with its rows.
    pub fn observers(&self) -> impl Iterator<Item = (&UniqueAddress, &ObserverRows)> {
        self.observers.iter()
    }

    /// Rebuilds a table from observer rows (used when decoding).
    pub fn from_observers(observers: BTreeMap<UniqueAddress, ObserverRows>) -> Self {
        Reachability { observers }
    }

    /// Per observer, the rows with the higher version win; equal versions (which a
    /// well-behaved observer never produces with different rows) take the union, so
    /// the merge is a join whatever the inputs. Rows about or by nodes outside
    /// `members` are dropped.
    pub fn merge(&self, other: &Reachability, members: &BTreeSet<UniqueAddress>) -> Reachability {
        let mut observers = BTreeMap::new();
        let all = self.observers.keys().chain(other.observers.keys());
        for observer in all {
            if !members.contains(observer) || observers.contains_key(observer) {
                continue;
            }
            let mut rows = match (self.observers.get(observer), other.observers.get(observer)) {
                (Some(a), Some(b)) if a.version == b.version => ObserverRows {
                    version: a.version,
                    unreachable: a.unreachable.union(&b.unreachable).cloned().collect(),
                    refused: a.refused.union(&b.refused).cloned().collect(),
                },
                (Some(a), Some(b)) => {
                    if a.version > b.version {
                        a.clone()
                    } else {
                        b.clone()
                    }
                }
                (Some(a), None) => a.clone(),
                (None, Some(b)) => b.clone(),
                (None, None) => continue,
            };
            rows.unreachable.retain(|s| members.contains(s));
            rows.refused.retain(|s| members.contains(s));
            observers.insert(observer.clone(), rows);
        }
        Reachability { observers }
    }

    /// Forgets `node` as observer and as subject (it was removed). Versions are left
    /// alone: only an observer bumps its own version, and every merge filters rows by
    /// the member set in the same way, so all nodes drop the same rows.
    pub fn remove_node(&mut self, node: &UniqueAddress) {
        self.observers.remove(node);
        for rows in self.observers.values_mut() {
            rows.unreachable.remove(node);
            rows.refused.remove(node);
        }
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
    fn a_subject_is_reachable_again_only_when_every_observer_clears_it() {
        let (a, b, c) = (node(1), node(2), node(3));
        let mut r = Reachability::new();
        assert!(r.mark_unreachable(&a, &c));
        assert!(!r.mark_unreachable(&a, &c), "second mark is no change");
        assert!(r.mark_unreachable(&b, &c));
        assert!(!r.is_reachable(&c));
        assert_eq!(r.observers_of(&c), [a.clone(), b.clone()].into());
        assert!(r.mark_reachable(&a, &c));
        assert!(!r.is_reachable(&c), "b still sees it unreachable");
        assert!(r.mark_reachable(&b, &c));
        assert!(r.is_reachable(&c));
        assert!(r.is_all_reachable());
    }

    #[test]
    fn a_refusal_is_an_unreachable_row_that_says_how_it_is_known() {
        let (a, b) = (node(1), node(2));
        let mut r = Reachability::new();
        assert!(r.mark_refused(&a, &b));
        assert!(!r.is_reachable_by(&a, &b));
        assert!(r.is_refused_by(&a, &b));
        assert!(!r.mark_refused(&a, &b), "second proof is no change");
        assert!(r.mark_reachable(&a, &b));
        assert!(
            !r.is_refused_by(&a, &b),
            "an answer clears the proof with the row"
        );
        r.mark_unreachable(&a, &b);
        assert!(!r.is_refused_by(&a, &b), "silence alone is no proof");
        assert!(
            r.mark_refused(&a, &b),
            "a proof added to a silent row is a change"
        );
    }

    #[test]
    fn merge_takes_each_observers_newest_rows() {
        let (a, b, c) = (node(1), node(2), node(3));
        let members: BTreeSet<_> = [a.clone(), b.clone(), c.clone()].into();
        let mut old = Reachability::new();
        old.mark_unreachable(&a, &c);
        let mut new = old.clone();
        new.mark_reachable(&a, &c);
        let mut other_observer = Reachability::new();
        other_observer.mark_unreachable(&b, &c);
        let merged = old.merge(&new, &members).merge(&other_observer, &members);
        assert!(
            merged.is_reachable_by(&a, &c),
            "a's newer row (cleared) wins"
        );
        assert!(!merged.is_reachable_by(&b, &c));
        let without_c = merged.merge(&merged, &[a.clone(), b.clone()].into());
        assert!(
            without_c.is_all_reachable(),
            "rows about non-members are dropped"
        );
    }
}
