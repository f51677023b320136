//! Counters the transport and runtime update, rendered in Prometheus text format.
//!
//! Plain atomics behind a mutex-free map of message kinds: the hot path (every frame)
//! only increments, and `/metrics` reads a consistent enough copy. Membership gauges
//! (members by status, unreachable, phi) come from the current snapshot at render time.
//! What runs on top of the cluster adds its own figures as a section (`add_section`),
//! so this module knows nothing of it.

use shared::{ClusterSnapshot, MemberStatus};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Traffic counters of one node.
#[derive(Default)]
pub struct Metrics {
    sent: Mutex<BTreeMap<&'static str, (u64, u64)>>,
    received: Mutex<BTreeMap<&'static str, (u64, u64)>>,
    dropped: Mutex<BTreeMap<&'static str, u64>>,
    refused: AtomicU64,
    wire_sent: AtomicU64,
    sections: Mutex<Vec<Section>>,
}

/// Renders more Prometheus text, appended after the cluster's own.
type Section = Box<dyn Fn() -> String + Send + Sync>;

impl Metrics {
    /// A frame of `kind` and `bytes` was queued for sending.
    pub fn sent(&self, kind: &'static str, bytes: usize) {
        let mut map = self.sent.lock().expect("metrics lock");
        let e = map.entry(kind).or_default();
        e.0 += 1;
        e.1 += bytes as u64;
    }

    /// A frame arrived and decoded.
    pub fn received(&self, kind: &'static str, bytes: usize) {
        let mut map = self.received.lock().expect("metrics lock");
        let e = map.entry(kind).or_default();
        e.0 += 1;
        e.1 += bytes as u64;
    }

    /// A message was dropped (fault or full queue).
    pub fn dropped(&self, kind: &'static str) {
        *self
            .dropped
            .lock()
            .expect("metrics lock")
            .entry(kind)
            .or_default() += 1;
    }

    /// Appends `render`'s text to every exposition from now on.
    pub fn add_section(&self, render: impl Fn() -> String + Send + Sync + 'static) {
        self.sections
            .lock()
            .expect("metrics lock")
            .push(Box::new(render));
    }

    /// A connection was refused or closed for bad input.
    pub fn refused_connection(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Bytes written to peers' connections: frames as they go on the wire (sealed, on
    /// an encrypted link) with their length prefixes.
    pub fn wire_sent(&self, bytes: usize) {
        self.wire_sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Bytes sent of the given kinds.
    pub fn sent_bytes(&self, kinds: &[&str]) -> u64 {
        let map = self.sent.lock().expect("metrics lock");
        kinds
            .iter()
            .filter_map(|k| map.get(k))
            .map(|(_, b)| b)
            .sum()
    }

    /// Prometheus exposition of the counters and of `snapshot`'s gauges.
    pub fn render(&self, snapshot: &ClusterSnapshot) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP cluster_members Members by status in this node's view.\n# TYPE cluster_members gauge");
        for status in MemberStatus::ALL {
            let count = snapshot
                .members
                .iter()
                .filter(|m| m.status == status)
                .count();
            let _ = writeln!(out, "cluster_members{{status=\"{status}\"}} {count}");
        }
        let _ = writeln!(out, "# HELP cluster_unreachable_members Members some observer sees as unreachable.\n# TYPE cluster_unreachable_members gauge");
        let _ = writeln!(
            out,
            "cluster_unreachable_members {}",
            snapshot.unreachable.len()
        );
        let _ = writeln!(out, "# HELP cluster_converged Whether gossip has converged in this view.\n# TYPE cluster_converged gauge");
        let _ = writeln!(out, "cluster_converged {}", u8::from(snapshot.converged));
        let _ = writeln!(
            out,
            "# HELP cluster_phi Suspicion level of each monitored node.\n# TYPE cluster_phi gauge"
        );
        for (node, phi) in &snapshot.phi {
            let phi = if phi.is_finite() { *phi } else { 1e9 };
            let _ = writeln!(out, "cluster_phi{{peer=\"{}\"}} {phi:.3}", node.address);
        }
        let _ = writeln!(out, "# HELP cluster_time_away_ms_total Time this node found it was not running when its timers were due (paused or starved; local health).\n# TYPE cluster_time_away_ms_total counter");
        let _ = writeln!(out, "cluster_time_away_ms_total {}", snapshot.time_away_ms);
        let traffic = [("sent", &self.sent), ("received", &self.received)];
        let _ = writeln!(out, "# HELP cluster_messages_total Cluster messages by direction and kind.\n# TYPE cluster_messages_total counter");
        for (direction, map) in traffic {
            for (kind, (messages, _)) in map.lock().expect("metrics lock").iter() {
                let _ = writeln!(out, "cluster_messages_total{{direction=\"{direction}\",kind=\"{kind}\"}} {messages}");
            }
        }
        let _ = writeln!(out, "# HELP cluster_bytes_total Cluster bytes by direction and kind.\n# TYPE cluster_bytes_total counter");
        for (direction, map) in traffic {
            for (kind, (_, bytes)) in map.lock().expect("metrics lock").iter() {
                let _ = writeln!(
                    out,
                    "cluster_bytes_total{{direction=\"{direction}\",kind=\"{kind}\"}} {bytes}"
                );
            }
        }
        let _ = writeln!(out, "# HELP cluster_dropped_total Messages dropped by faults or full queues.\n# TYPE cluster_dropped_total counter");
        for (kind, count) in self.dropped.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "cluster_dropped_total{{kind=\"{kind}\"}} {count}");
        }
        let _ = writeln!(out, "# HELP cluster_refused_connections_total Connections closed for failed handshakes or bad frames.\n# TYPE cluster_refused_connections_total counter");
        let _ = writeln!(
            out,
            "cluster_refused_connections_total {}",
            self.refused.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP cluster_wire_bytes_sent_total Bytes written to peers, as on the wire (sealed frames and length prefixes).\n# TYPE cluster_wire_bytes_sent_total counter");
        let _ = writeln!(
            out,
            "cluster_wire_bytes_sent_total {}",
            self.wire_sent.load(Ordering::Relaxed)
        );
        for section in self.sections.lock().expect("metrics lock").iter() {
            out.push_str(&section());
        }
        out
    }
}
