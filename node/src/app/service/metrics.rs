//! The service's own figures, in Prometheus text beside the cluster's (`/metrics`):
//! requests by endpoint and outcome, attempts that were sent again to another worker,
//! quorum latency per operation (a histogram), whether this replica is still catching
//! up, and anti-entropy exchanges.
//!
//! A layer on the service router counts every answer by its matched route and status;
//! a handler marks a degraded answer or its extra attempts on the response
//! ([`Degraded`], [`Attempts`]), so the layer needs no knowledge of the handlers.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use shared::anti_entropy::Phase;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the quorum latency buckets (seconds).
const BUCKETS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0];

/// Marks a 200 answer as degraded (the popularity list instead of a personal one).
#[derive(Clone, Copy, Debug)]
pub struct Degraded;

/// How many workers a routed request was sent to (more than 1: it was retried).
#[derive(Clone, Copy, Debug)]
pub struct Attempts(pub u32);

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The service's counters.
#[derive(Default)]
pub struct ServiceMetrics {
    /// Endpoint (route) -> outcome -> answers.
    requests: Mutex<BTreeMap<String, BTreeMap<&'static str, u64>>>,
    retried: Mutex<BTreeMap<String, u64>>,
    quorum: Mutex<BTreeMap<&'static str, Histogram>>,
    catch_up_exchanges: AtomicU64,
    periodic_exchanges: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
}

impl ServiceMetrics {
    /// An answer to `endpoint` (its route) with this outcome and extra attempts.
    pub fn request(&self, endpoint: &str, outcome: &'static str, retries: u32) {
        // On every answer: the endpoint is copied only the first time it is seen.
        let mut requests = self.requests.lock().expect("metrics lock");
        let by_outcome = match requests.get_mut(endpoint) {
            Some(known) => known,
            None => requests.entry(endpoint.to_string()).or_default(),
        };
        *by_outcome.entry(outcome).or_default() += 1;
        drop(requests);
        if retries > 0 {
            let mut retried = self.retried.lock().expect("metrics lock");
            match retried.get_mut(endpoint) {
                Some(n) => *n += u64::from(retries),
                None => {
                    retried.insert(endpoint.to_string(), u64::from(retries));
                }
            }
        }
    }

    /// A quorum `op` ("read" or "write") that reached a majority after `took`.
    pub fn quorum(&self, op: &'static str, took: Duration) {
        let seconds = took.as_secs_f64();
        let mut quorum = self.quorum.lock().expect("metrics lock");
        let h = quorum.entry(op).or_default();
        for (count, bound) in h.counts.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *count += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// Digests sent to `to` replicas in one exchange round.
    pub fn exchanged(&self, kind: Phase, to: usize) {
        let counter = match kind {
            Phase::CatchUp => &self.catch_up_exchanges,
            Phase::Periodic => &self.periodic_exchanges,
        };
        counter.fetch_add(to as u64, Ordering::Relaxed);
    }

    /// A recommendation served from the cache (`hit`) or scored.
    pub fn cache(&self, hit: bool) {
        let counter = if hit {
            &self.cache_hits
        } else {
            &self.cache_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text; `catching_up`: this replica does not count toward reads yet.
    pub fn render(&self, catching_up: bool) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP service_requests_total Service answers by endpoint and outcome (ok, degraded, rejected: 4xx, failed: 5xx).\n# TYPE service_requests_total counter");
        for (endpoint, by_outcome) in self.requests.lock().expect("metrics lock").iter() {
            for (outcome, n) in by_outcome {
                let _ = writeln!(
                    out,
                    "service_requests_total{{endpoint=\"{endpoint}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        let _ = writeln!(out, "# HELP service_retried_attempts_total Attempts sent again to another worker.\n# TYPE service_retried_attempts_total counter");
        for (endpoint, n) in self.retried.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "service_retried_attempts_total{{endpoint=\"{endpoint}\"}} {n}"
            );
        }
        self.render_quorum(&mut out);
        let _ = writeln!(out, "# HELP service_replica_catching_up 1 while this replica has not caught up with a majority since start.\n# TYPE service_replica_catching_up gauge");
        let _ = writeln!(out, "service_replica_catching_up {}", u8::from(catching_up));
        let _ = writeln!(out, "# HELP service_anti_entropy_exchanges_total Digests sent to other replicas, by phase.\n# TYPE service_anti_entropy_exchanges_total counter");
        for (phase, counter) in [
            ("catch-up", &self.catch_up_exchanges),
            ("periodic", &self.periodic_exchanges),
        ] {
            let n = counter.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "service_anti_entropy_exchanges_total{{phase=\"{phase}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# HELP service_recommendation_cache_total Recommendations served from the cache (hit) or scored (miss).\n# TYPE service_recommendation_cache_total counter");
        for (result, counter) in [("hit", &self.cache_hits), ("miss", &self.cache_misses)] {
            let n = counter.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "service_recommendation_cache_total{{result=\"{result}\"}} {n}"
            );
        }
        out
    }

    fn render_quorum(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP service_quorum_seconds Time for a read or write to reach a majority of replicas.\n# TYPE service_quorum_seconds histogram");
        for (op, h) in self.quorum.lock().expect("metrics lock").iter() {
            for (count, bound) in h.counts.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "service_quorum_seconds_bucket{{op=\"{op}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "service_quorum_seconds_bucket{{op=\"{op}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "service_quorum_seconds_sum{{op=\"{op}\"}} {:.6}",
                h.sum
            );
            let _ = writeln!(
                out,
                "service_quorum_seconds_count{{op=\"{op}\"}} {}",
                h.count
            );
        }
    }
}

/// The outcome of an answer: ok or degraded (2xx), rejected (4xx), failed (5xx).
fn outcome(response: &Response) -> &'static str {
    let status = response.status();
    if status.is_server_error() {
        "failed"
    } else if status.is_client_error() {
        "rejected"
    } else if response.extensions().get::<Degraded>().is_some() {
        "degraded"
    } else {
        "ok"
    }
}

/// The layer's function: counts the answer by route and outcome.
pub async fn count(
    axum::extract::State(service): axum::extract::State<std::sync::Arc<super::Service>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    let retries = response
        .extensions()
        .get::<Attempts>()
        .map_or(0, |a| a.0.saturating_sub(1));
    let endpoint = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    service
        .metrics
        .request(endpoint, outcome(&response), retries);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_quorums_and_exchanges_are_rendered_as_prometheus_text() {
        let m = ServiceMetrics::default();
        m.request("/api/recommendations/{user}", "ok", 0);
        m.request("/api/recommendations/{user}", "degraded", 2);
        m.quorum("write", Duration::from_millis(3));
        m.exchanged(Phase::CatchUp, 2);
        let text = m.render(true);
        for line in [
            "service_requests_total{endpoint=\"/api/recommendations/{user}\",outcome=\"ok\"} 1",
            "service_requests_total{endpoint=\"/api/recommendations/{user}\",outcome=\"degraded\"} 1",
            "service_retried_attempts_total{endpoint=\"/api/recommendations/{user}\"} 2",
            "service_quorum_seconds_bucket{op=\"write\",le=\"0.002\"} 0",
            "service_quorum_seconds_bucket{op=\"write\",le=\"0.005\"} 1",
            "service_quorum_seconds_count{op=\"write\"} 1",
            "service_replica_catching_up 1",
            "service_anti_entropy_exchanges_total{phase=\"catch-up\"} 2",
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
    }
}
