//! Thousands of seeded random fault schedules on 3 to 7 simulated nodes, with the
//! invariant checker after every step and a liveness check after healing.
//!
//! `SIM_SEEDS` sets how many seeds run (default 1000) and `SIM_SEED_START` the first;
//! `SIM_SEED=n` replays one seed with its full trace. A failure prints the seed, the
//! schedule, the trace and every node's view.

use shared::sim::schedule::{random_schedule, run_schedule};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn random_fault_schedules_stay_safe_and_heal() {
    let start = env_u64("SIM_SEED_START", 0);
    let count = env_u64("SIM_SEEDS", 1000);
    let next = AtomicU64::new(start);
    let failures = Mutex::new(Vec::new());
    let settle = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    let began = std::time::Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= start + count {
                    break;
                }
                match run_schedule(&random_schedule(seed)) {
                    Ok(outcome) => settle.lock().unwrap().push(outcome.settle_ms),
                    Err(failure) => failures.lock().unwrap().push(failure),
                }
            });
        }
    });
    let mut settle = settle.into_inner().unwrap();
    settle.sort_unstable();
    let failures = failures.into_inner().unwrap();
    if !settle.is_empty() {
        println!(
            "{} schedules in {:.1} s; settle after healing: median {} ms, p99 {} ms, max {} ms",
            count,
            began.elapsed().as_secs_f64(),
            settle[settle.len() / 2],
            settle[settle.len() * 99 / 100],
            settle[settle.len() - 1]
        );
    }
    if let Some(first) = failures.iter().min_by_key(|f| f.schedule.seed) {
        let seeds: Vec<u64> = failures.iter().map(|f| f.schedule.seed).collect();
        panic!(
            "{} of {count} schedules failed (seeds {seeds:?}); first:\n{first}",
            failures.len()
        );
    }
}

/// A replay tool, not a check: `SIM_SEED=n cargo test --release -p shared --test
/// simulation replay_one_seed -- --ignored --nocapture`.
#[test]
#[ignore = "replay tool: set SIM_SEED and pass --ignored"]
fn replay_one_seed() {
    let seed: u64 = std::env::var("SIM_SEED")
        .expect("set SIM_SEED to the seed to replay")
        .parse()
        .expect("SIM_SEED is a number");
    let schedule = random_schedule(seed);
    println!("{schedule}");
    match run_schedule(&schedule) {
        Ok(outcome) => println!(
            "seed {seed} passed: settled {} ms after healing",
            outcome.settle_ms
        ),
        Err(failure) => panic!("{failure}"),
    }
}
