//! Phi-accrual failure detection (Hayashibara et al., as in Akka) and the hashed
//! heartbeat ring that decides who monitors whom.
//!
//! Phi is the suspicion level `-log10(1 - F(t))`, where `F` is the normal CDF fitted to
//! recent heartbeat inter-arrival times, its mean raised by the acceptable pause and its
//! standard deviation floored. It grows smoothly with silence, so one threshold works on
//! fast and on jittery links. Each node monitors only the next few members on a ring
//! ordered by a hash of their unique address, so heartbeat traffic per node stays
//! constant as the cluster grows.

use crate::address::UniqueAddress;
use crate::vclock::Fnv;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Settings of one phi-accrual detector (Akka's names, milliseconds).
#[derive(Clone, Debug, PartialEq)]
pub struct PhiSettings {
    /// Phi above which the subject is suspected.
    pub threshold: f64,
    /// Inter-arrival samples kept.
    pub max_sample_size: usize,
    /// Floor for the standard deviation, so a very regular link is not over-sensitive.
    pub min_std_deviation_ms: f64,
    /// Added to the mean: a pause this long is tolerated without raising phi much.
    pub acceptable_heartbeat_pause_ms: f64,
    /// Expected interval before any sample exists (the heartbeat interval).
    pub first_heartbeat_estimate_ms: f64,
}

/// Phi-accrual detector for one monitored node.
#[derive(Clone, Debug)]
pub struct PhiAccrualDetector {
    settings: PhiSettings,
    intervals: VecDeque<f64>,
    sum: f64,
    sum_of_squares: f64,
    last_heartbeat_ms: Option<u64>,
    /// Silence since the last heartbeat that the monitoring node caused itself by not
    /// running (see `excuse`): neither phi nor the next interval counts it.
    excused_ms: u64,
}

impl PhiAccrualDetector {
    /// A detector with no heartbeat yet. Its history is seeded, as Akka does, with two
    /// intervals around the first estimate (std dev a quarter of it).
    pub fn new(settings: PhiSettings) -> Self {
        let mean = settings.first_heartbeat_estimate_ms;
        let std_dev = mean / 4.0;
        let mut detector = PhiAccrualDetector {
            settings,
            intervals: VecDeque::new(),
            sum: 0.0,
            sum_of_squares: 0.0,
            last_heartbeat_ms: None,
            excused_ms: 0,
        };
        detector.add_interval(mean - std_dev);
        detector.add_interval(mean + std_dev);
        detector
    }

    fn add_interval(&mut self, interval: f64) {
        if self.intervals.len() >= self.settings.max_sample_size.max(1) {
            if let Some(old) = self.intervals.pop_front() {
                self.sum -= old;
                self.sum_of_squares -= old * old;
            }
        }
        self.intervals.push_back(interval);
        self.sum += interval;
        self.sum_of_squares += interval * interval;
    }

    /// Records a heartbeat arriving at `now_ms`.
    pub fn heartbeat(&mut self, now_ms: u64) {
        if let Some(last) = self.last_heartbeat_ms {
            if now_ms >= last {
                let interval = (now_ms - last).saturating_sub(self.excused_ms);
                self.add_interval(interval as f64);
            }
        }
        self.last_heartbeat_ms = Some(now_ms);
        self.excused_ms = 0;
    }

    /// The monitoring node did not run for `ms` (paused, starved): that silence is its
    /// own, not the subject's, so phi and the next interval leave it out.
    pub fn excuse(&mut self, ms: u64) {
        if self.last_heartbeat_ms.is_some() {
            self.excused_ms += ms;
        }
    }

    /// Whether any heartbeat was recorded.
    pub fn is_monitoring(&self) -> bool {
        self.last_heartbeat_ms.is_some()
    }

    /// Current suspicion level (0 before the first heartbeat).
    pub fn phi(&self, now_ms: u64) -> f64 {
        let Some(last) = self.last_heartbeat_ms else {
            return 0.0;
        };
        let elapsed = now_ms.saturating_sub(last).saturating_sub(self.excused_ms) as f64;
        let n = self.intervals.len() as f64;
        let mean = self.sum / n;
        let variance = (self.sum_of_squares / n - mean * mean).max(0.0);
        let std_dev = variance.sqrt().max(self.settings.min_std_deviation_ms);
        phi(
            elapsed,
            mean + self.settings.acceptable_heartbeat_pause_ms,
            std_dev,
        )
    }

    /// Whether the subject is considered available at `now_ms`.
    pub fn is_available(&self, now_ms: u64) -> bool {
        self.phi(now_ms) < self.settings.threshold
    }

    /// How long the subject has been silent at `now_ms`, leaving out excused time
    /// (`None` before the first heartbeat).
    pub fn silence_ms(&self, now_ms: u64) -> Option<u64> {
        self.last_heartbeat_ms
            .map(|last| now_ms.saturating_sub(last).saturating_sub(self.excused_ms))
    }
}

/// How long another member's word that it reached a node keeps that node available
/// when it has not answered this one (indirect probes, ALGORITHM.md section 9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vouching {
    /// A report that the node was reached keeps it available this long.
    pub valid_ms: u64,
    /// However it is vouched for, a node that has not answered this one directly for
    /// this long is unavailable: a link that stays broken is seen, as Akka sees it.
    pub direct_silence_limit_ms: u64,
}

/// Phi for `elapsed` given a normal distribution, with the logistic approximation of
/// the CDF that Akka uses (error below 0.0002 and no overflow for large `y`).
pub fn phi(elapsed: f64, mean: f64, std_dev: f64) -> f64 {
    let y = (elapsed - mean) / std_dev;
    let e = (-y * (1.5976 + 0.070566 * y * y)).exp();
    if elapsed > mean {
        -(e / (1.0 + e)).log10()
    } else {
        -(1.0 - 1.0 / (1.0 + e)).log10()
    }
}

/// Ring position of a node: a stable hash of its unique address.
fn ring_hash(node: &UniqueAddress) -> u64 {
    let mut hash = Fnv::new();
    hash.unique_address(node);
    hash.finish()
}

/// `nodes` and `also` in ring order (by hash of the unique address), without duplicates.
fn hashed_ring<'a>(
    nodes: &'a BTreeSet<UniqueAddress>,
    also: &'a UniqueAddress,
) -> Vec<(u64, &'a UniqueAddress)> {
    let mut ring: Vec<(u64, &UniqueAddress)> = nodes
        .iter()
        .chain(std::iter::once(also))
        .map(|n| (ring_hash(n), n))
        .collect();
    crate::sorting::sort(&mut ring);
    ring.dedup();
    ring
}

/// Who `self_node` monitors: the next `monitored_by` nodes after it on the hashed ring.
/// Unreachable nodes on the way are monitored too (to see them come back) but do not
/// count toward the limit, so a few failures never leave a node unwatched.
pub fn heartbeat_receivers(
    self_node: &UniqueAddress,
    nodes: &BTreeSet<UniqueAddress>,
    unreachable: &BTreeSet<UniqueAddress>,
    monitored_by: usize,
) -> BTreeSet<UniqueAddress> {
    let ring = hashed_ring(nodes, self_node);
    let start = ring.iter().position(|(_, n)| *n == self_node).unwrap_or(0);
    let mut receivers = BTreeSet::new();
    let mut counted = 0;
    for offset in 1..ring.len() {
        if counted >= monitored_by {
            break;
        }
        let node = ring[(start + offset) % ring.len()].1;
        receivers.insert(node.clone());
        if !unreachable.contains(node) {
            counted += 1;
        }
    }
    receivers
}

/// Whom `self_node` sends heartbeats to, given its view: its [`heartbeat_receivers`]
/// among `monitored` (the members not Down, itself excluded), plus every member it
/// marked unreachable itself (`own_marks`: it keeps watching them so it can clear the
/// mark), and everyone once it has marked `monitored_by` of them. The node and the
/// dashboard's drawing of the ring use this one rule.
pub fn monitoring_plan(
    self_node: &UniqueAddress,
    monitored: &BTreeSet<UniqueAddress>,
    unreachable: &BTreeSet<UniqueAddress>,
    own_marks: &BTreeSet<UniqueAddress>,
    monitored_by: usize,
) -> BTreeSet<UniqueAddress> {
    let mut receivers = heartbeat_receivers(self_node, monitored, unreachable, monitored_by);
    let marked: Vec<&UniqueAddress> = own_marks
        .iter()
        .filter(|m| monitored.contains(*m))
        .collect();
    if marked.len() >= monitored_by {
        return monitored.clone();
    }
    receivers.extend(marked.into_iter().cloned());
    receivers
}

/// Who monitors `subject` on the ring: the up to `monitored_by` nodes before it (the
/// ones whose next `monitored_by` include it when nobody is unreachable).
pub fn ring_monitors(
    nodes: &BTreeSet<UniqueAddress>,
    subject: &UniqueAddress,
    monitored_by: usize,
) -> Vec<UniqueAddress> {
    let ring = hashed_ring(nodes, subject);
    let Some(at) = ring.iter().position(|(_, n)| *n == subject) else {
        return Vec::new();
    };
    (1..ring.len())
        .take(monitored_by)
        .map(|back| ring[(at + ring.len() - back) % ring.len()].1.clone())
        .collect()
}

/// Phi detectors for the nodes this node currently monitors.
#[derive(Clone, Debug)]
pub struct Monitor {
    settings: PhiSettings,
    detectors: BTreeMap<UniqueAddress, PhiAccrualDetector>,
    /// When monitoring of each node began and no response has come yet.
    awaiting_first: BTreeMap<UniqueAddress, u64>,
    /// Nodes the transport proved gone (nothing listens at their address), and when;
    /// unavailable until a response arrives after that.
    refused: BTreeMap<UniqueAddress, u64>,
    /// When another member last reported reaching each node (see `vouch`).
    vouched: BTreeMap<UniqueAddress, u64>,
    /// Nodes that the helpers of an indirect probe could not reach either (see
    /// `silence`): unavailable until they answer.
    silenced: BTreeSet<UniqueAddress>,
    /// How far vouching goes; `None` ignores it.
    vouching: Option<Vouching>,
    /// Per node, when the oldest heartbeat it has not answered was sent.
    unanswered_since: BTreeMap<UniqueAddress, u64>,
}

impl Monitor {
    /// An empty monitor.
    pub fn new(settings: PhiSettings) -> Self {
        Monitor {
            settings,
            detectors: BTreeMap::new(),
            awaiting_first: BTreeMap::new(),
            refused: BTreeMap::new(),
            vouched: BTreeMap::new(),
            silenced: BTreeSet::new(),
            vouching: None,
            unanswered_since: BTreeMap::new(),
        }
    }

    /// The same monitor, counting other members' reports that they reached a node.
    pub fn with_vouching(mut self, vouching: Vouching) -> Self {
        self.vouching = Some(vouching);
        self
    }

    /// Sets the monitored set; new nodes wait for a first response.
    pub fn set_receivers(&mut self, receivers: &BTreeSet<UniqueAddress>, now_ms: u64) {
        self.detectors.retain(|n, _| receivers.contains(n));
        self.awaiting_first.retain(|n, _| receivers.contains(n));
        self.refused.retain(|n, _| receivers.contains(n));
        self.vouched.retain(|n, _| receivers.contains(n));
        self.silenced.retain(|n| receivers.contains(n));
        self.unanswered_since.retain(|n, _| receivers.contains(n));
        for node in receivers {
            if !self.detectors.contains_key(node) && !self.awaiting_first.contains_key(node) {
                self.awaiting_first.insert(node.clone(), now_ms);
            }
        }
    }

    /// Monitored nodes.
    pub fn receivers(&self) -> impl Iterator<Item = &UniqueAddress> {
        self.detectors.keys().chain(self.awaiting_first.keys())
    }

    /// Whether `node` is monitored.
    pub fn is_monitoring(&self, node: &UniqueAddress) -> bool {
        self.detectors.contains_key(node) || self.awaiting_first.contains_key(node)
    }

    /// A heartbeat response from `node` arrived.
    pub fn heartbeat(&mut self, node: &UniqueAddress, now_ms: u64) {
        self.refused.remove(node);
        self.silenced.remove(node);
        self.vouched.remove(node);
        self.unanswered_since.remove(node);
        if self.awaiting_first.remove(node).is_some() {
            self.detectors
                .insert(node.clone(), PhiAccrualDetector::new(self.settings.clone()));
        }
        if let Some(detector) = self.detectors.get_mut(node) {
            detector.heartbeat(now_ms);
        }
    }

    /// Starts the clock for nodes that never answered within `expected_response_ms`,
    /// so a node that is dead from the start is still detected.
    pub fn start_overdue(&mut self, now_ms: u64, expected_response_ms: u64) {
        let overdue: Vec<UniqueAddress> = self
            .awaiting_first
            .iter()
            .filter(|(_, since)| now_ms.saturating_sub(**since) >= expected_response_ms)
            .map(|(n, _)| n.clone())
            .collect();
        for node in overdue {
            self.awaiting_first.remove(&node);
            let mut detector = PhiAccrualDetector::new(self.settings.clone());
            detector.heartbeat(now_ms);
            self.detectors.insert(node, detector);
        }
    }

    /// The transport found nothing listening at `node`'s address: its process is
    /// gone. It is monitored from now on (if it was not) and unavailable until it
    /// answers again, which a dead process cannot; one that only looked dead (a
    /// firewall that rejects) is back with its next response.
    pub fn refused(&mut self, node: &UniqueAddress, now_ms: u64) {
        if !self.is_monitoring(node) {
            self.awaiting_first.insert(node.clone(), now_ms);
        }
        self.refused.entry(node.clone()).or_insert(now_ms);
    }

    /// Another member reports that `node` answered it at about `now_ms`, though it has
    /// not answered this one: it stays available for `Vouching::valid_ms` more, up to
    /// the direct-silence limit.
    pub fn vouch(&mut self, node: &UniqueAddress, now_ms: u64) {
        if self.is_monitoring(node) {
            self.silenced.remove(node);
            self.vouched.insert(node.clone(), now_ms);
        }
    }

    /// `node` did not answer this one and the members asked could not reach it
    /// either: unavailable at once, until it answers.
    pub fn silence(&mut self, node: &UniqueAddress) {
        if self.is_monitoring(node) {
            self.vouched.remove(node);
            self.silenced.insert(node.clone());
        }
    }

    /// A heartbeat went to `node` at `now_ms`.
    pub fn heartbeat_sent(&mut self, node: &UniqueAddress, now_ms: u64) {
        if self.is_monitoring(node) {
            self.unanswered_since.entry(node.clone()).or_insert(now_ms);
        }
    }

    /// How long a timed `node` has left this node's oldest unanswered heartbeat
    /// unanswered (`None` if it owes none). A member answers at its next tick, so
    /// this stays under an interval and the round trip while it runs.
    pub fn overdue_ms(&self, node: &UniqueAddress, now_ms: u64) -> Option<u64> {
        if !self.detectors.contains_key(node) {
            return None;
        }
        let since = self.unanswered_since.get(node)?;
        Some(now_ms.saturating_sub(*since))
    }

    /// Whether the transport proved `node` gone and it has not answered since.
    pub fn is_refused(&self, node: &UniqueAddress) -> bool {
        self.refused.contains_key(node)
    }

    /// This node did not run for `ms` (see `PhiAccrualDetector::excuse`): no detector
    /// counts that silence, and nodes awaiting a first answer wait that much longer.
    /// The raw answer times that vouch for freshness (`answered_within`,
    /// `answered_after`) are left as they are: excusing makes nobody look fresher.
    pub fn excuse(&mut self, ms: u64) {
        for detector in self.detectors.values_mut() {
            detector.excuse(ms);
        }
        for since in self.awaiting_first.values_mut() {
            *since = since.saturating_add(ms);
        }
        for at in self
            .vouched
            .values_mut()
            .chain(self.unanswered_since.values_mut())
        {
            *at = at.saturating_add(ms);
        }
    }

    /// Whether `node` is available: not refused or silenced, and either its phi is
    /// below the threshold (nodes not yet timed are) or another member vouched for it
    /// recently and it has not been silent toward this one past the limit.
    pub fn is_available(&self, node: &UniqueAddress, now_ms: u64) -> bool {
        if self.refused.contains_key(node) || self.silenced.contains(node) {
            return false;
        }
        let Some(detector) = self.detectors.get(node) else {
            return true;
        };
        detector.is_available(now_ms) || self.vouched_for(node, detector, now_ms)
    }

    fn vouched_for(
        &self,
        node: &UniqueAddress,
        detector: &PhiAccrualDetector,
        now_ms: u64,
    ) -> bool {
        let (Some(vouching), Some(at)) = (self.vouching, self.vouched.get(node)) else {
            return false;
        };
        now_ms.saturating_sub(*at) <= vouching.valid_ms
            && detector
                .silence_ms(now_ms)
                .is_some_and(|silent| silent < vouching.direct_silence_limit_ms)
    }

    /// Whether `node` answered recently: within `window_ms` for a timed node, never
    /// for one that has not answered yet, always for one not monitored here.
    pub fn answered_within(&self, node: &UniqueAddress, now_ms: u64, window_ms: u64) -> bool {
        if self.awaiting_first.contains_key(node) {
            return false;
        }
        self.detectors.get(node).is_none_or(|d| {
            d.last_heartbeat_ms
                .is_some_and(|last| now_ms.saturating_sub(last) <= window_ms)
        })
    }

    /// Whether `node` answered a heartbeat after `since_ms` (true for a node not
    /// monitored here: there is nothing to check).
    pub fn answered_after(&self, node: &UniqueAddress, since_ms: u64) -> bool {
        if self.awaiting_first.contains_key(node) {
            return false;
        }
        self.detectors
            .get(node)
            .is_none_or(|d| d.last_heartbeat_ms.is_some_and(|last| last > since_ms))
    }

    /// Phi of every timed node (for metrics and the dashboard).
    pub fn phis(&self, now_ms: u64) -> BTreeMap<UniqueAddress, f64> {
        crate::sorting::map_from(
            self.detectors
                .iter()
                .map(|(n, d)| (n.clone(), d.phi(now_ms))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Address;

    fn akka_defaults() -> PhiSettings {
        PhiSettings {
            threshold: 8.0,
            max_sample_size: 1000,
            min_std_deviation_ms: 100.0,
            acceptable_heartbeat_pause_ms: 3000.0,
            first_heartbeat_estimate_ms: 1000.0,
        }
    }

    #[test]
    fn time_the_monitor_was_not_running_neither_raises_phi_nor_is_learned() {
        let mut d = PhiAccrualDetector::new(akka_defaults());
        for t in 0..20 {
            d.heartbeat(t * 1000);
        }
        // The monitor slept 10 s after the last heartbeat and was excused for it.
        d.excuse(10_000);
        assert!(d.is_available(19_000 + 10_500));
        let mut unexcused = d.clone();
        unexcused.excused_ms = 0;
        assert!(!unexcused.is_available(19_000 + 10_500));
        // The next interval it learns is 1 s, not 11 s.
        d.heartbeat(19_000 + 11_000);
        assert!((d.sum / d.intervals.len() as f64 - 1000.0).abs() < 1.0);
        assert!(
            !d.is_available(30_000 + 6_000),
            "a silence of its own is still seen"
        );
    }

    #[test]
    fn phi_grows_with_silence_and_crosses_the_threshold_after_about_four_and_a_half_seconds() {
        let mut d = PhiAccrualDetector::new(akka_defaults());
        for i in 0..20 {
            d.heartbeat(i * 1000);
        }
        let last = 19_000;
        assert!(d.phi(last + 1000) < 0.5);
        assert!(d.is_available(last + 4000));
        let crossing = (last..last + 10_000)
            .step_by(50)
            .find(|t| !d.is_available(*t))
            .unwrap();
        let after = crossing - last;
        assert!((4300..=4800).contains(&after), "crossed after {after} ms");
    }

    #[test]
    fn a_pause_shorter_than_the_acceptable_pause_keeps_phi_low() {
        let mut d = PhiAccrualDetector::new(akka_defaults());
        for i in 0..10 {
            d.heartbeat(i * 1000);
        }
        assert!(d.phi(9000 + 3500) < 1.0);
    }

    #[test]
    fn ring_monitors_the_next_nodes_and_skips_unreachable_ones_in_the_count() {
        let nodes: BTreeSet<UniqueAddress> = (1..=20)
            .map(|p| UniqueAddress::new(Address::new("h", p), 7))
            .collect();
        let me = nodes.iter().next().unwrap().clone();
        let receivers = heartbeat_receivers(&me, &nodes, &BTreeSet::new(), 9);
        assert_eq!(receivers.len(), 9);
        assert!(!receivers.contains(&me));
        let down: BTreeSet<_> = receivers.iter().take(2).cloned().collect();
        let more = heartbeat_receivers(&me, &nodes, &down, 9);
        assert_eq!(more.len(), 11, "two unreachable ones plus nine counted");
        assert!(down.is_subset(&more));
        let small: BTreeSet<_> = nodes.iter().take(5).cloned().collect();
        assert_eq!(
            heartbeat_receivers(&me, &small, &BTreeSet::new(), 9).len(),
            4
        );
    }

    #[test]
    fn a_refused_node_is_unavailable_at_once_until_it_answers_again() {
        let node = UniqueAddress::new(Address::new("h", 2), 7);
        let stranger = UniqueAddress::new(Address::new("h", 3), 8);
        let mut monitor = Monitor::new(akka_defaults());
        monitor.set_receivers(&BTreeSet::from([node.clone()]), 0);
        for t in 0..5 {
            monitor.heartbeat(&node, t * 1000);
        }
        assert!(monitor.is_available(&node, 4_100));
        monitor.refused(&node, 4_100);
        assert!(!monitor.is_available(&node, 4_100), "phi alone would wait");
        assert!(!monitor.is_available(&node, 4_200));
        monitor.heartbeat(&node, 4_300);
        assert!(monitor.is_available(&node, 4_300), "an answer clears it");
        monitor.refused(&stranger, 4_400);
        assert!(monitor.is_monitoring(&stranger), "watched from now on");
        assert!(!monitor.is_available(&stranger, 4_400));
    }
}
