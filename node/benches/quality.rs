//! Recommendation quality on MovieLens 100k (fetched by `scripts/fetch-data.sh`):
//! per-user stratified 75/25 split, top 10, for the popularity baseline and for our
//! item-item model, beside the published SAR and BPR rows.
//!
//! Run: `cargo bench -p node --bench quality` (after `scripts/fetch-data.sh`).

use node::catalog::Dataset;
use node::evaluation::{evaluate, stratified_split, Metrics};
use node::recommender::ItemItem;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

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
    let k = 10;
    let split = stratified_split(&data.ratings, 0.75, 42);
    let began = Instant::now();
    let interactions: Vec<(u32, u32, f32)> = split
        .train
        .iter()
        .map(|r| (r.user, r.item, r.rating))
        .collect();
    let model = ItemItem::train(data.videos.keys().copied(), &interactions);
    let trained = began.elapsed();
    let mut history: BTreeMap<u32, Vec<(u32, f32)>> = BTreeMap::new();
    for r in &split.train {
        history.entry(r.user).or_default().push((r.item, r.rating));
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
                    .recommend(&h, k)
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
                    .popular(k, &seen)
                    .into_iter()
                    .map(|s| s.item)
                    .collect(),
            )
        })
        .collect();
    let row = |name: &str, m: Metrics| {
        println!(
            "{name:<34} {:>7.3} {:>7.3} {:>7.3} {:>7.3}",
            m.precision, m.recall, m.ndcg, m.map
        );
    };
    println!(
        "MovieLens 100k: {} ratings, {} users, {} videos; per-user stratified 75/25 split (seed 42), k = {k}",
        data.ratings.len(),
        split.test.len(),
        data.videos.len()
    );
    println!(
        "{:<34} {:>7} {:>7} {:>7} {:>7}",
        "", "P@10", "R@10", "nDCG@10", "MAP@10"
    );
    row("popularity (ours)", evaluate(&popular, &split.test, k));
    row("item-item, Jaccard (ours)", evaluate(&ours, &split.test, k));
    println!(
        "{:<34} {:>7.3} {:>7.3} {:>7.3} {:>7.3}",
        "SAR (published)", 0.331, 0.176, 0.382, 0.111
    );
    println!(
        "{:<34} {:>7.3} {:>7} {:>7.3} {:>7}",
        "BPR (published)", 0.388, "", 0.442, ""
    );
    println!(
        "training {:.0} ms; {:.0} µs per recommendation",
        trained.as_secs_f64() * 1e3,
        per_user.as_secs_f64() * 1e6
    );
}
