//! Recommendation quality on MovieLens 100k (fetched by `scripts/fetch-data.sh`):
//! per-user stratified 75/25 splits, top 10, for the popularity baseline and for our
//! item-item model, beside the published SAR and BPR rows. Our split is our own seeded
//! shuffle (the published rows used Microsoft Recommenders' split of the same shape),
//! so the program reports the mean and the range over three split seeds.
//!
//! Run: `cargo bench -p node --bench quality` (after `scripts/fetch-data.sh`).

use node::app::catalog::Dataset;
use node::app::evaluation::{evaluate, stratified_split, Metrics};
use node::app::recommender::ItemItem;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const K: usize = 10;
const SEEDS: [u64; 3] = [42, 43, 44];

/// Trains on one split and evaluates both rankers; returns (popularity, ours, timings).
fn run(data: &Dataset, seed: u64) -> (Metrics, Metrics, Duration, Duration) {
    let split = stratified_split(&data.ratings, 0.75, seed);
    let began = Instant::now();
    let interactions: Vec<(u32, u32, f32)> =
        split.train.iter().map(|r| (r.user, r.item, 1.0)).collect();
    let model = ItemItem::train(data.videos.keys().copied(), &interactions);
    let trained = began.elapsed();
    let mut history: BTreeMap<u32, Vec<(u32, f32)>> = BTreeMap::new();
    for r in &split.train {
        history.entry(r.user).or_default().push((r.item, 1.0));
    }
    let began = Instant::now();
    let ours: BTreeMap<u32, Vec<u32>> = split
        .test
        .keys()
        .map(|u| {
            let h = history.get(u).cloned().unwrap_or_default();
            (
                *u,
                model
                    .recommend(&h, K)
                    .0
                    .into_iter()
                    .map(|s| s.item)
                    .collect(),
            )
        })
        .collect();
    let per_user = began.elapsed() / split.test.len().max(1) as u32;
    let popular: BTreeMap<u32, Vec<u32>> = split
        .test
        .keys()
        .map(|u| {
            let seen: BTreeSet<u32> = history
                .get(u)
                .map(|h| h.iter().map(|(i, _)| *i).collect())
                .unwrap_or_default();
            (
                *u,
                model
                    .popular(K, &seen)
                    .into_iter()
                    .map(|s| s.item)
                    .collect(),
            )
        })
        .collect();
    (
        evaluate(&popular, &split.test, K),
        evaluate(&ours, &split.test, K),
        trained,
        per_user,
    )
}

fn summary(name: &str, runs: &[Metrics]) {
    let cell = |f: fn(&Metrics) -> f64| {
        let v: Vec<f64> = runs.iter().map(f).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let spread =
            v.iter().cloned().fold(f64::MIN, f64::max) - v.iter().cloned().fold(f64::MAX, f64::min);
        format!("{mean:.3}±{:.3}", spread / 2.0)
    };
    println!(
        "{name:<34} {:>12} {:>12} {:>12} {:>12}",
        cell(|m| m.precision),
        cell(|m| m.recall),
        cell(|m| m.ndcg),
        cell(|m| m.map)
    );
}

fn main() {
    let dir = std::env::var("DATA_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../data/ml-100k").into());
    let data = match Dataset::load(std::path::Path::new(&dir)) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("quality: {e}");
            std::process::exit(1);
        }
    };
    let results: Vec<_> = SEEDS.iter().map(|s| run(&data, *s)).collect();
    let users: BTreeSet<u32> = data.ratings.iter().map(|r| r.user).collect();
    println!(
        "MovieLens 100k: {} ratings, {} users, {} videos; per-user stratified 75/25 splits (seeds {SEEDS:?}), k = {K}",
        data.ratings.len(),
        users.len(),
        data.videos.len()
    );
    println!(
        "{:<34} {:>12} {:>12} {:>12} {:>12}",
        "", "P@10", "R@10", "nDCG@10", "MAP@10"
    );
    summary(
        "popularity (ours)",
        &results.iter().map(|r| r.0).collect::<Vec<_>>(),
    );
    summary(
        "item-item, cosine, watches (ours)",
        &results.iter().map(|r| r.1).collect::<Vec<_>>(),
    );
    println!(
        "{:<34} {:>12.3} {:>12.3} {:>12.3} {:>12.3}",
        "SAR (published)", 0.331, 0.176, 0.382, 0.111
    );
    println!(
        "{:<34} {:>12.3} {:>12} {:>12.3} {:>12}",
        "BPR (published)", 0.388, "", 0.442, ""
    );
    let (_, _, trained, per_user) = results[0];
    println!(
        "training {:.0} ms; {:.0} µs per recommendation",
        trained.as_secs_f64() * 1e3,
        per_user.as_secs_f64() * 1e6
    );
}
