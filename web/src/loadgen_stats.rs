//! The load generator's arithmetic: pacing a request rate on a coarse timer, picking
//! targets round-robin and users at random, and per-second statistics (success rate,
//! p50 and p99 latency over the last minute) with the chart's coordinates.
//!
//! Pure so the numbers a person reads while breaking the cluster are tested.

use std::collections::VecDeque;

/// Seconds of history the chart shows.
pub const WINDOW_SECONDS: u64 = 60;
/// Highest request rate the page offers.
pub const MAX_RATE: u32 = 200;
/// Users in MovieLens 100k: the load generator's range until a node says otherwise
/// (`DashboardInfo::max_user_id`).
pub const USERS: u32 = 943;

/// How one request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A personal or popularity answer from a worker.
    Ok,
    /// Answered, but the api node fell back to the popularity list.
    Degraded,
    /// An error status, a network error or a timeout.
    Failed,
}

/// One second's requests.
#[derive(Clone, Debug, Default, PartialEq)]
struct Bucket {
    second: u64,
    ok: u32,
    degraded: u32,
    failed: u32,
    latencies: Vec<f64>,
}

/// One point of the chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Seconds since the epoch.
    pub second: u64,
    /// Requests completed in that second.
    pub requests: u32,
    /// Answered (ok or degraded) over all, 0 to 1; `None` with no request.
    pub success_rate: Option<f64>,
    /// Median latency (ms) of every request completed in that second, failures
    /// (timeouts included) alike.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency (ms).
    pub p99_ms: Option<f64>,
}

/// Counters and per-second buckets.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadStats {
    buckets: VecDeque<Bucket>,
    /// Ok answers since the last reset.
    pub ok: u64,
    /// Degraded answers.
    pub degraded: u64,
    /// Failures: no node answered within the overall deadline.
    pub failed: u64,
    /// Attempts that failed and were retried on another node (not failures: the
    /// request may still have been answered).
    pub retries: u64,
    /// The latest answered requests' latencies (ms), for the p99 since the reset.
    recent: VecDeque<f64>,
}

/// How many latencies the overall p99 is taken over (the newest).
const RECENT_KEPT: usize = 20_000;

/// The order in which one request tries the targets: from `start`, round the list.
pub fn failover_order(targets: &[String], start: usize) -> Vec<String> {
    if targets.is_empty() {
        return Vec::new();
    }
    (0..targets.len())
        .map(|i| targets[(start + i) % targets.len()].clone())
        .collect()
}

/// The `q` quantile (0..=1) of sorted values, nearest rank.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

impl LoadStats {
    /// Records a request that completed at `now_ms` after `latency_ms`.
    pub fn record(&mut self, now_ms: u64, latency_ms: f64, outcome: Outcome) {
        let second = now_ms / 1000;
        match self.buckets.back() {
            Some(b) if b.second == second => {}
            _ => self.buckets.push_back(Bucket {
                second,
                ..Bucket::default()
            }),
        }
        // Completions arrive in time order, except across a clock step: those land in
        // the newest bucket, which is close enough for a chart.
        let bucket = self.buckets.back_mut().expect("just pushed");
        match outcome {
            Outcome::Ok => {
                bucket.ok += 1;
                self.ok += 1;
            }
            Outcome::Degraded => {
                bucket.degraded += 1;
                self.degraded += 1;
            }
            Outcome::Failed => {
                bucket.failed += 1;
                self.failed += 1;
            }
        }
        bucket.latencies.push(latency_ms.max(0.0));
        if outcome != Outcome::Failed {
            self.recent.push_back(latency_ms.max(0.0));
            if self.recent.len() > RECENT_KEPT {
                self.recent.pop_front();
            }
        }
        while self
            .buckets
            .front()
            .is_some_and(|b| b.second + WINDOW_SECONDS * 2 < second)
        {
            self.buckets.pop_front();
        }
    }

    /// One point per second for the `WINDOW_SECONDS` complete seconds before `now_ms`
    /// (the current second is still filling), oldest first; empty seconds included.
    pub fn series(&self, now_ms: u64) -> Vec<Point> {
        let current = now_ms / 1000;
        let first = current.saturating_sub(WINDOW_SECONDS);
        (first..current)
            .map(
                |second| match self.buckets.iter().find(|b| b.second == second) {
                    Some(b) => {
                        let mut sorted = b.latencies.clone();
                        shared::sorting::sort_by(&mut sorted, f64::total_cmp);
                        let requests = b.ok + b.degraded + b.failed;
                        Point {
                            second,
                            requests,
                            success_rate: Some(f64::from(b.ok + b.degraded) / f64::from(requests)),
                            p50_ms: percentile(&sorted, 0.5),
                            p99_ms: percentile(&sorted, 0.99),
                        }
                    }
                    None => Point {
                        second,
                        requests: 0,
                        success_rate: None,
                        p50_ms: None,
                        p99_ms: None,
                    },
                },
            )
            .collect()
    }

    /// Total requests completed.
    pub fn total(&self) -> u64 {
        self.ok + self.degraded + self.failed
    }

    /// The `q` quantile of answered requests' latency since the reset (the newest
    /// `RECENT_KEPT`), in ms.
    pub fn overall(&self, q: f64) -> Option<f64> {
        let mut sorted: Vec<f64> = self.recent.iter().copied().collect();
        shared::sorting::sort_by(&mut sorted, f64::total_cmp);
        percentile(&sorted, q)
    }

    /// Forgets everything.
    pub fn reset(&mut self) {
        *self = LoadStats::default();
    }
}

/// Turns a rate into whole requests per timer tick, carrying the fraction over so the
/// long-run rate is exact whatever the tick length.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pacer {
    carry: f64,
}

impl Pacer {
    /// Requests due after `elapsed_ms` at `rate` per second. A long stall (a
    /// background tab) does not turn into a burst: at most one second's worth is due.
    pub fn due(&mut self, rate: f64, elapsed_ms: f64) -> u32 {
        if rate <= 0.0 || elapsed_ms <= 0.0 {
            self.carry = 0.0;
            return 0;
        }
        let owed = (self.carry + rate * elapsed_ms / 1000.0).min(rate.max(1.0));
        let whole = owed.floor();
        self.carry = owed - whole;
        whole as u32
    }
}

/// Cycles through a list that may change between picks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoundRobin {
    next: usize,
}

impl RoundRobin {
    /// Where the next request starts in a list of `len` items (0 for an empty list).
    pub fn next_start(&mut self, len: usize) -> usize {
        if len == 0 {
            return 0;
        }
        let start = self.next % len;
        self.next = (start + 1) % len;
        start
    }
}

/// A small xorshift generator for picking users (no need for a crypto-grade source).
#[derive(Clone, Debug, PartialEq)]
pub struct XorShift(u64);

impl XorShift {
    /// Seeded; a zero seed is replaced (xorshift would stay at zero).
    pub fn new(seed: u64) -> Self {
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// Next raw value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A user id from 1 to `users`.
    pub fn user(&mut self, users: u32) -> u32 {
        (self.next_u64() % u64::from(users.max(1))) as u32 + 1
    }
}

/// The chart's polyline `points` for values in `0..=max`, one x step per point, in a
/// `width` x `height` box (y grows downwards). Points without a value break nothing:
/// they are skipped, so the line joins its neighbours.
pub fn polyline(values: &[Option<f64>], max: f64, width: f64, height: f64) -> String {
    let step = if values.len() > 1 {
        width / (values.len() - 1) as f64
    } else {
        0.0
    };
    let max = if max > 0.0 { max } else { 1.0 };
    values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            v.map(|v| {
                let y = height - (v.clamp(0.0, max) / max) * height;
                format!("{:.1},{:.1}", i as f64 * step, y)
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A round upper bound for the latency axis: the smallest of 10, 20, 50, 100, ... ms
/// at or above `highest`.
pub fn latency_axis_max(highest: f64) -> f64 {
    let mut bound = 10.0;
    loop {
        for factor in [1.0, 2.0, 5.0] {
            if highest <= bound * factor {
                return bound * factor;
            }
        }
        bound *= 10.0;
        if bound > 1e9 {
            return bound;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_by_outcome() {
        let mut s = LoadStats::default();
        s.record(1_000, 5.0, Outcome::Ok);
        s.record(1_100, 7.0, Outcome::Degraded);
        s.record(1_200, 5_000.0, Outcome::Failed);
        assert_eq!((s.ok, s.degraded, s.failed, s.total()), (1, 1, 1, 3));
        s.reset();
        assert_eq!(s.total(), 0);
    }

    #[test]
    fn each_second_has_its_success_rate_and_latency_percentiles() {
        let mut s = LoadStats::default();
        for i in 0..100 {
            let outcome = if i < 90 { Outcome::Ok } else { Outcome::Failed };
            s.record(100_000 + i, f64::from(i as u32 + 1), outcome);
        }
        s.record(101_500, 3.0, Outcome::Degraded);
        let series = s.series(102_000);
        assert_eq!(series.len(), WINDOW_SECONDS as usize);
        let at_10 = &series[series.len() - 2];
        assert_eq!(at_10.second, 100);
        assert_eq!(at_10.requests, 100);
        assert_eq!(at_10.success_rate, Some(0.9));
        assert_eq!(at_10.p50_ms, Some(50.0));
        assert_eq!(at_10.p99_ms, Some(99.0));
        let at_11 = series.last().unwrap();
        assert_eq!(
            at_11.success_rate,
            Some(1.0),
            "a degraded answer is still an answer"
        );
    }

    #[test]
    fn the_current_second_and_seconds_without_requests_have_no_value() {
        let mut s = LoadStats::default();
        s.record(20_100, 1.0, Outcome::Ok);
        let series = s.series(20_500);
        assert!(series.iter().all(|p| p.second < 20));
        assert!(series.iter().all(|p| p.success_rate.is_none()));
        let later = s.series(22_000);
        assert_eq!(later[later.len() - 2].requests, 1);
        assert_eq!(later.last().unwrap().requests, 0);
    }

    #[test]
    fn old_seconds_are_forgotten() {
        let mut s = LoadStats::default();
        s.record(0, 1.0, Outcome::Ok);
        s.record(500_000, 1.0, Outcome::Ok);
        assert_eq!(s.buckets.len(), 1);
        assert_eq!(s.ok, 2, "counters are totals, not windowed");
    }

    #[test]
    fn the_overall_p99_counts_answered_requests_only() {
        let mut stats = LoadStats::default();
        for i in 1..=100 {
            stats.record(1_000, f64::from(i), Outcome::Ok);
        }
        stats.record(1_000, 4_000.0, Outcome::Failed);
        assert_eq!(stats.overall(0.99), Some(99.0));
        assert_eq!(stats.overall(0.5), Some(50.0));
        stats.reset();
        assert_eq!(stats.overall(0.99), None);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[4.0], 0.99), Some(4.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.5), Some(2.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.99), Some(4.0));
    }

    #[test]
    fn the_pacer_keeps_the_long_run_rate_on_a_coarse_timer() {
        let mut p = Pacer::default();
        let sent: u32 = (0..100).map(|_| p.due(15.0, 100.0)).sum();
        assert_eq!(sent, 150);
        let mut p = Pacer::default();
        assert_eq!(p.due(200.0, 60_000.0), 200, "a stall is not a burst");
        assert_eq!(p.due(0.0, 100.0), 0);
    }

    #[test]
    fn requests_start_round_robin_and_fail_over_round_the_list() {
        let mut rr = RoundRobin::default();
        let starts: Vec<_> = (0..4).map(|_| rr.next_start(3)).collect();
        assert_eq!(starts, [0, 1, 2, 0]);
        assert_eq!(rr.next_start(1), 0, "survives a shrinking list");
        assert_eq!(rr.next_start(0), 0);
        let three: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(failover_order(&three, 1), ["b", "c", "a"]);
        assert!(failover_order(&[], 0).is_empty());
    }

    #[test]
    fn random_users_are_in_range() {
        let mut r = XorShift::new(0);
        for _ in 0..10_000 {
            let u = r.user(USERS);
            assert!((1..=USERS).contains(&u));
        }
    }

    #[test]
    fn chart_points_map_values_into_the_box_and_skip_gaps() {
        let line = polyline(&[Some(0.0), None, Some(1.0)], 1.0, 100.0, 50.0);
        assert_eq!(line, "0.0,50.0 100.0,0.0");
        assert_eq!(polyline(&[Some(2.0)], 1.0, 100.0, 50.0), "0.0,0.0");
        assert_eq!(latency_axis_max(0.0), 10.0);
        assert_eq!(latency_axis_max(11.0), 20.0);
        assert_eq!(latency_axis_max(300.0), 500.0);
        assert_eq!(latency_axis_max(5_000.0), 5_000.0);
    }
}
