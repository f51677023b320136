//! One sort for every element type, and ordered maps built by insertion.
//!
//! The standard library's stable sort is generic: every element type and comparator
//! it is used with compiles to a copy of its own, about 4 KB of wasm each. The
//! dashboard's page carries the membership core and the simulator, and eighteen such
//! copies made 77 KB of its code (6.5%). Here the standard sort runs once, on
//! positions, through a comparator behind `dyn`, and the elements are then moved
//! into their places: one copy of the sort for the whole program, and a few dozen
//! bytes per element type. The order is the standard stable sort's.
//!
//! `collect()` into a `BTreeMap` sorts its input first, so each map type collected
//! brings a sort of its own too; [`map_from`] inserts the pairs one by one instead
//! (on equal keys the last value wins, as with `collect()`).

use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Sorts `items` stably by `compare`.
pub fn sort_by<T>(items: &mut [T], mut compare: impl FnMut(&T, &T) -> Ordering) {
    let order = sorted_positions(items.len(), &mut |a, b| compare(&items[a], &items[b]));
    move_into_place(items, order);
}

/// Sorts `items` stably by the key `key` gives each.
pub fn sort_by_key<T, K: Ord>(items: &mut [T], mut key: impl FnMut(&T) -> K) {
    sort_by(items, |a, b| key(a).cmp(&key(b)));
}

/// Sorts `items` stably in their natural order.
pub fn sort<T: Ord>(items: &mut [T]) {
    sort_by(items, T::cmp);
}

/// The ordered map of `pairs`, inserted one by one.
pub fn map_from<K: Ord, V>(pairs: impl IntoIterator<Item = (K, V)>) -> BTreeMap<K, V> {
    let mut map = BTreeMap::new();
    map.extend(pairs);
    map
}

/// The positions `0..len` in the order `compare` gives them (stable).
fn sorted_positions(len: usize, compare: &mut dyn FnMut(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.sort_by(|a, b| compare(*a, *b));
    order
}

/// Puts the item at `order[i]` at position `i`, walking each cycle of the
/// permutation once (`order` marks the positions done).
fn move_into_place<T>(items: &mut [T], mut order: Vec<usize>) {
    for start in 0..items.len() {
        let mut at = start;
        loop {
            let source = order[at];
            order[at] = at;
            if source == start {
                break;
            }
            items.swap(at, source);
            at = source;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn sorts_as_the_standard_stable_sort(items in proptest::collection::vec((0u8..6, any::<u16>()), 0..60)) {
            let mut ours = items.clone();
            let mut standard = items;
            sort_by_key(&mut ours, |(key, _)| *key);
            standard.sort_by_key(|(key, _)| *key);
            prop_assert_eq!(ours, standard);
        }

        #[test]
        fn builds_the_map_collect_builds(pairs in proptest::collection::vec((0u8..10, any::<u16>()), 0..40)) {
            let collected: BTreeMap<u8, u16> = pairs.clone().into_iter().collect();
            prop_assert_eq!(map_from(pairs), collected);
        }
    }

    #[test]
    fn sorts_in_natural_order_and_by_comparator() {
        let mut words = vec!["pear", "apple", "fig", "apple"];
        sort(&mut words);
        assert_eq!(words, ["apple", "apple", "fig", "pear"]);
        sort_by(&mut words, |a, b| b.len().cmp(&a.len()));
        assert_eq!(
            words,
            ["apple", "apple", "pear", "fig"],
            "longest first, stable"
        );
    }
}
