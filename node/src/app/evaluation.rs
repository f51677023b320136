//! Offline evaluation: a per-user stratified split (each user's ratings shuffled with a
//! seed, the first 75% for training) and ranking metrics at k: precision, recall,
//! nDCG (binary relevance) and MAP as Microsoft Recommenders computes it (the sum of
//! precision at each hit divided by the number of relevant items), the definition
//! behind the published SAR figures we compare with.

use crate::app::catalog::Rating;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::{BTreeMap, BTreeSet};

/// Training and test ratings.
pub struct Split {
    /// 75% of each user's ratings.
    pub train: Vec<Rating>,
    /// The rest, by user.
    pub test: BTreeMap<u32, BTreeSet<u32>>,
}

/// Splits each user's ratings `ratio` / `1 - ratio` after a seeded shuffle.
pub fn stratified_split(ratings: &[Rating], ratio: f64, seed: u64) -> Split {
    let mut by_user: BTreeMap<u32, Vec<Rating>> = BTreeMap::new();
    for r in ratings {
        by_user.entry(r.user).or_default().push(*r);
    }
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut split = Split {
        train: Vec::new(),
        test: BTreeMap::new(),
    };
    for (user, mut list) in by_user {
        list.sort_by_key(|r| r.item);
        list.shuffle(&mut rng);
        let cut = ((list.len() as f64) * ratio).round() as usize;
        let (train, test) = list.split_at(cut.min(list.len()));
        split.train.extend_from_slice(train);
        if !test.is_empty() {
            split
                .test
                .insert(user, test.iter().map(|r| r.item).collect());
        }
    }
    split
}

/// Mean ranking metrics over users.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Metrics {
    /// Precision@k.
    pub precision: f64,
    /// Recall@k.
    pub recall: f64,
    /// nDCG@k.
    pub ndcg: f64,
    /// MAP@k (Microsoft Recommenders' definition).
    pub map: f64,
    /// Users evaluated.
    pub users: usize,
}

/// Scores ranked lists against the relevant items, per user, at `k`.
pub fn evaluate(
    ranked: &BTreeMap<u32, Vec<u32>>,
    relevant: &BTreeMap<u32, BTreeSet<u32>>,
    k: usize,
) -> Metrics {
    let mut m = Metrics::default();
    for (user, truth) in relevant {
        let list = ranked.get(user).map(Vec::as_slice).unwrap_or(&[]);
        let (mut hits, mut dcg, mut ap) = (0usize, 0f64, 0f64);
        for (rank, item) in list.iter().take(k).enumerate() {
            if truth.contains(item) {
                hits += 1;
                dcg += 1.0 / ((rank + 2) as f64).log2();
                ap += hits as f64 / (rank + 1) as f64;
            }
        }
        let ideal: f64 = (0..truth.len().min(k))
            .map(|r| 1.0 / ((r + 2) as f64).log2())
            .sum();
        m.precision += hits as f64 / k as f64;
        m.recall += hits as f64 / truth.len() as f64;
        m.ndcg += if ideal > 0.0 { dcg / ideal } else { 0.0 };
        m.map += ap / truth.len() as f64;
        m.users += 1;
    }
    let n = m.users.max(1) as f64;
    Metrics {
        precision: m.precision / n,
        recall: m.recall / n,
        ndcg: m.ndcg / n,
        map: m.map / n,
        users: m.users,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_match_hand_computed_values() {
        let ranked = BTreeMap::from([(1, vec![10, 20, 30]), (2, vec![40, 50, 60])]);
        let relevant = BTreeMap::from([(1, BTreeSet::from([10, 30])), (2, BTreeSet::from([99]))]);
        let m = evaluate(&ranked, &relevant, 3);
        assert!((m.precision - (2.0 / 3.0) / 2.0).abs() < 1e-9);
        assert!((m.recall - 0.5).abs() < 1e-9);
        let dcg = 1.0 + 1.0 / 4f64.log2();
        let ideal = 1.0 + 1.0 / 3f64.log2();
        assert!((m.ndcg - (dcg / ideal) / 2.0).abs() < 1e-9);
        assert!((m.map - ((1.0 + 2.0 / 3.0) / 2.0) / 2.0).abs() < 1e-9);
    }

    #[test]
    fn the_split_keeps_three_quarters_of_each_user_and_is_reproducible() {
        let ratings: Vec<Rating> = (0..40)
            .map(|i| Rating {
                user: 1 + i % 2,
                item: i,
                rating: 4.0,
                timestamp: 0,
            })
            .collect();
        let a = stratified_split(&ratings, 0.75, 42);
        let b = stratified_split(&ratings, 0.75, 42);
        assert_eq!(a.train.len(), 30);
        assert_eq!(a.test[&1].len() + a.test[&2].len(), 10);
        assert_eq!(a.test, b.test);
    }
}
