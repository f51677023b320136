//! Recommendations already computed, keyed by the user, the count asked for and a
//! digest of the user's merged recorded history.
//!
//! The model and the dataset's histories never change while a node runs, so the list
//! for a given recorded history is always the same: a hit is exactly what scoring
//! again would give, never stale. A new watch changes the digest, and so the key. The
//! quorum read still happens on every request (the digest comes from it); only the
//! scoring is saved.
//!
//! Bounded by two generations: when the current one is full it becomes the previous
//! one and a fresh one starts, so memory stays under twice the capacity and entries in
//! use survive (a hit in the previous generation moves to the current one).

use shared::service::Watch;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Entries per generation.
const CAPACITY: usize = 16_384;

/// `(video, score)`, best first, and whether the list is personal.
pub type Recommended = Arc<(Vec<(u32, f32)>, bool)>;

type Key = (u32, u32, u64);

#[derive(Default)]
struct Generations {
    current: HashMap<Key, Recommended>,
    previous: HashMap<Key, Recommended>,
}

/// The cache of one node.
#[derive(Default)]
pub struct RecommendationCache {
    generations: Mutex<Generations>,
}

/// The digest of a recorded history's videos (their times do not change the list):
/// order-independent, so any replica's merge of the same watches gives the same key.
pub fn history_digest(recorded: &[Watch]) -> u64 {
    recorded.iter().fold(recorded.len() as u64, |d, w| {
        d ^ Watch { at_ms: 0, ..*w }.fingerprint()
    })
}

impl RecommendationCache {
    /// The list for `user` and `n` with this recorded history, if computed before.
    pub fn get(&self, user: u32, n: u32, digest: u64) -> Option<Recommended> {
        let key = (user, n, digest);
        let mut g = self.generations.lock().expect("cache");
        if let Some(hit) = g.current.get(&key) {
            return Some(Arc::clone(hit));
        }
        let hit = g.previous.remove(&key)?;
        g.insert(key, Arc::clone(&hit));
        Some(hit)
    }

    /// Remembers a computed list.
    pub fn put(&self, user: u32, n: u32, digest: u64, list: Recommended) {
        self.generations
            .lock()
            .expect("cache")
            .insert((user, n, digest), list);
    }
}

impl Generations {
    fn insert(&mut self, key: Key, value: Recommended) {
        if self.current.len() >= CAPACITY {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(video: u32, at_ms: u64) -> Watch {
        Watch {
            user: 1,
            video,
            at_ms,
        }
    }

    #[test]
    fn a_new_watch_changes_the_key_and_order_and_times_do_not() {
        let a = [watch(1, 5), watch(2, 6)];
        let b = [watch(2, 9), watch(1, 5)];
        assert_eq!(history_digest(&a), history_digest(&b));
        assert_ne!(history_digest(&a), history_digest(&a[..1]));
        assert_ne!(history_digest(&[]), history_digest(&a[..1]));
        let cache = RecommendationCache::default();
        cache.put(1, 10, history_digest(&a), Arc::new((vec![(7, 1.0)], true)));
        assert!(cache.get(1, 10, history_digest(&b)).is_some());
        assert!(cache.get(1, 10, history_digest(&a[..1])).is_none());
        assert!(
            cache.get(1, 5, history_digest(&a)).is_none(),
            "another count"
        );
    }

    #[test]
    fn memory_stays_bounded_and_entries_in_use_survive() {
        let cache = RecommendationCache::default();
        let list: Recommended = Arc::new((vec![], false));
        cache.put(0, 1, 0, Arc::clone(&list));
        for user in 1..(2 * CAPACITY as u32) {
            cache.put(user, 1, 0, Arc::clone(&list));
            if user % 1000 == 0 {
                assert!(cache.get(0, 1, 0).is_some(), "kept while in use");
            }
        }
        let g = cache.generations.lock().unwrap();
        assert!(g.current.len() + g.previous.len() <= 2 * CAPACITY);
    }
}
