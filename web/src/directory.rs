//! Where every node is: cluster address to HTTP address, learned from `/api/dashboard`
//! (the node itself and the peers it heard from) and from the demo launcher's slots
//! (which list dead nodes too), plus the link faults each node reports.
//!
//! The page streams from every HTTP address it knows, so it keeps working when the node
//! it was loaded from dies; this module decides what those addresses are.

use serde::Deserialize;
use shared::api::{DashboardInfo, SlotState, SlotView};
use std::collections::{BTreeMap, BTreeSet};

/// The faults one node applies to its link with one peer (`GET /faults`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LinkFaultState {
    /// Everything to the peer is dropped.
    pub cut_outbound: bool,
    /// Everything from the peer is dropped.
    pub cut_inbound: bool,
    /// Extra delay to the peer (ms).
    pub delay_ms: u64,
    /// Random extra delay (ms).
    pub jitter_ms: u64,
    /// Drop probability to the peer.
    pub loss: f64,
}

/// One row of `GET /faults`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct FaultRow {
    /// The peer's cluster address.
    pub peer: String,
    /// The faults toward it.
    pub fault: LinkFaultState,
}

/// `GET /faults`: `{"links": [{"peer", "fault"}]}`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct FaultsListing {
    /// Every faulty link of the node.
    #[serde(default)]
    pub links: Vec<FaultRow>,
}

/// The state of the link between two nodes `a` and `b`, from both nodes' fault tables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkState {
    /// Messages from `a` to `b` are dropped.
    pub a_to_b_cut: bool,
    /// Messages from `b` to `a` are dropped.
    pub b_to_a_cut: bool,
    /// Extra delay on either direction (ms, the larger).
    pub delay_ms: u64,
    /// Random drop probability on some direction.
    pub lossy: bool,
}

impl LinkState {
    /// Whether nothing is injected.
    pub fn is_healthy(&self) -> bool {
        *self == LinkState::default()
    }

    /// A short description: `healthy`, `cut`, `a→b cut`, `slow 300 ms`...
    pub fn label(&self, a: &str, b: &str) -> String {
        let mut parts = Vec::new();
        match (self.a_to_b_cut, self.b_to_a_cut) {
            (true, true) => parts.push("cut".to_string()),
            (true, false) => parts.push(format!("{a}→{b} cut")),
            (false, true) => parts.push(format!("{b}→{a} cut")),
            (false, false) => {}
        }
        if self.delay_ms > 0 {
            parts.push(format!("slow +{} ms", self.delay_ms));
        }
        if self.lossy {
            parts.push("lossy".into());
        }
        if parts.is_empty() {
            "healthy".into()
        } else {
            parts.join(", ")
        }
    }
}

/// Addresses and launcher slots.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Directory {
    /// The page's own host (`location.host`): the first guess at a node.
    pub seed: String,
    /// The HTTP address of the node the page came from, once `/api/dashboard` said it.
    pub origin: Option<String>,
    /// The origin's cluster address.
    pub origin_cluster: Option<String>,
    /// The demo launcher, when there is one.
    pub launcher: Option<String>,
    /// Demo mode (no token needed).
    pub demo: Option<bool>,
    http_by_cluster: BTreeMap<String, String>,
    /// The launcher's slots, as last polled.
    pub slots: Vec<SlotView>,
    /// Each node's link faults (by the node's cluster address, then the peer's).
    pub faults: BTreeMap<String, BTreeMap<String, LinkFaultState>>,
}

impl Directory {
    /// A directory that knows only the page's host.
    pub fn new(seed: impl Into<String>) -> Self {
        Directory {
            seed: seed.into(),
            ..Directory::default()
        }
    }

    /// Learns from a `/api/dashboard` answer; `from_origin` when it came from the page's
    /// own host (relative URL), which makes its node the origin.
    pub fn learn_info(&mut self, info: &DashboardInfo, from_origin: bool) {
        if from_origin {
            self.origin = Some(info.http.clone());
            self.origin_cluster = Some(info.self_node.clone());
        }
        if info.launcher.is_some() {
            self.launcher = info.launcher.clone();
        }
        if self.demo.is_none() || from_origin {
            self.demo = Some(info.demo);
        }
        self.learn(&info.self_node, &info.http);
        for peer in &info.peers {
            self.learn(&peer.node, &peer.http);
        }
    }

    /// Learns the launcher's slots (dead ones included).
    pub fn learn_slots(&mut self, slots: Vec<SlotView>) {
        for s in &slots {
            self.learn(&s.cluster, &s.http);
        }
        self.slots = slots;
    }

    /// Learns one node's HTTP address.
    pub fn learn(&mut self, cluster: &str, http: &str) {
        if !cluster.is_empty() && !http.is_empty() {
            self.http_by_cluster
                .insert(cluster.to_string(), http.to_string());
        }
    }

    /// Learns one node's HTTP address unless one is already known.
    pub fn learn_if_unknown(&mut self, cluster: &str, http: &str) {
        if !self.http_by_cluster.contains_key(cluster) {
            self.learn(cluster, http);
        }
    }

    /// Records what `GET /faults` on the node at `cluster` said.
    pub fn learn_faults(&mut self, cluster: &str, listing: FaultsListing) {
        self.faults.insert(
            cluster.to_string(),
            shared::sorting::map_from(listing.links.into_iter().map(|row| (row.peer, row.fault))),
        );
    }

    /// The HTTP address of the node at cluster address `cluster`.
    pub fn http_of(&self, cluster: &str) -> Option<&str> {
        self.http_by_cluster.get(cluster).map(String::as_str)
    }

    /// The cluster address of the node at `http`.
    pub fn cluster_of(&self, http: &str) -> Option<&str> {
        self.http_by_cluster
            .iter()
            .find(|(_, h)| h.as_str() == http)
            .map(|(c, _)| c.as_str())
    }

    /// The launcher slot running (or having run) the node at `cluster`.
    pub fn slot_of(&self, cluster: &str) -> Option<&SlotView> {
        self.slots.iter().find(|s| s.cluster == cluster)
    }

    /// Every cluster address with a known HTTP address.
    pub fn known_clusters(&self) -> impl Iterator<Item = &str> {
        self.http_by_cluster.keys().map(String::as_str)
    }

    /// Every HTTP address to stream from: every known node (each through the origin's
    /// relay). Nothing until `/api/dashboard` or the launcher named one: the page's
    /// own host is the relay, not a node.
    pub fn targets(&self) -> BTreeSet<String> {
        self.http_by_cluster.values().cloned().collect()
    }

    /// Whether the launcher says the node at `http` is not running (paused, stopped,
    /// exited): an open WebSocket to a SIGSTOPped process says nothing.
    pub fn is_blocked(&self, http: &str) -> bool {
        self.slots
            .iter()
            .any(|s| s.http == http && s.state != SlotState::Running)
    }

    /// The state of the link between `a` and `b` (cluster addresses).
    pub fn link(&self, a: &str, b: &str) -> LinkState {
        let none = LinkFaultState::default();
        let on_a = self.faults.get(a).and_then(|f| f.get(b)).unwrap_or(&none);
        let on_b = self.faults.get(b).and_then(|f| f.get(a)).unwrap_or(&none);
        LinkState {
            a_to_b_cut: on_a.cut_outbound || on_b.cut_inbound,
            b_to_a_cut: on_b.cut_outbound || on_a.cut_inbound,
            delay_ms: (on_a.delay_ms + on_a.jitter_ms).max(on_b.delay_ms + on_b.jitter_ms),
            lossy: on_a.loss > 0.0 || on_b.loss > 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::api::PeerHttp;

    pub fn info(node: &str, http: &str, peers: &[(&str, &str)]) -> DashboardInfo {
        DashboardInfo {
            self_node: node.into(),
            http: http.into(),
            roles: vec!["api".into()],
            demo: true,
            launcher: Some("127.0.0.1:8550".into()),
            peers: peers
                .iter()
                .map(|(n, h)| PeerHttp {
                    node: n.to_string(),
                    http: h.to_string(),
                })
                .collect(),
            max_user_id: 0,
            monitored_by: None,
        }
    }

    fn slot(i: usize, state: SlotState) -> SlotView {
        SlotView {
            slot: i,
            cluster: format!("127.0.0.1:{}", 2551 + i),
            http: format!("127.0.0.1:{}", 8551 + i),
            pid: None,
            state,
            last_exit: None,
            starts: 1,
        }
    }

    #[test]
    fn before_the_dashboard_answers_nothing_is_streamed() {
        // The page's host is the relay, not a node: streaming "from" it would ask the
        // relay for a node it does not know.
        let d = Directory::new("demo.example:443");
        assert!(d.targets().is_empty());
    }

    #[test]
    fn the_dashboard_names_the_origin_and_its_peers() {
        let mut d = Directory::new("localhost:8080");
        d.learn_info(
            &info(
                "127.0.0.1:2551",
                "127.0.0.1:8551",
                &[("127.0.0.1:2552", "127.0.0.1:8552")],
            ),
            true,
        );
        assert_eq!(d.origin.as_deref(), Some("127.0.0.1:8551"));
        assert_eq!(d.http_of("127.0.0.1:2552"), Some("127.0.0.1:8552"));
        assert_eq!(d.cluster_of("127.0.0.1:8552"), Some("127.0.0.1:2552"));
        let targets: Vec<_> = d.targets().into_iter().collect();
        assert_eq!(
            targets,
            ["127.0.0.1:8551", "127.0.0.1:8552"],
            "a proxy host is dropped once the origin is known"
        );
        assert_eq!(d.launcher.as_deref(), Some("127.0.0.1:8550"));
    }

    #[test]
    fn a_node_behind_a_port_mapping_is_streamed_once() {
        // The page came from 127.0.0.1:8551, a host port mapped to a container that
        // advertises 172.28.0.4:8558; its stream's snapshot names it by the page's host.
        let mut d = Directory::new("127.0.0.1:8551");
        d.learn("172.28.0.4:2551", "127.0.0.1:8551");
        d.learn_info(
            &info(
                "172.28.0.4:2551",
                "172.28.0.4:8558",
                &[("172.28.0.2:2551", "172.28.0.2:8558")],
            ),
            true,
        );
        let targets: Vec<_> = d.targets().into_iter().collect();
        assert_eq!(targets, ["172.28.0.2:8558", "172.28.0.4:8558"]);
        d.learn("172.28.0.4:2551", "127.0.0.1:8551");
        assert_eq!(
            d.targets().len(),
            2,
            "one stream per node, whichever address"
        );
    }

    #[test]
    fn a_member_whose_http_is_unknown_is_found_through_the_launcher_slots() {
        let mut d = Directory::new("127.0.0.1:8551");
        assert_eq!(d.http_of("127.0.0.1:2553"), None);
        d.learn_slots(vec![
            slot(0, SlotState::Running),
            slot(1, SlotState::Running),
            slot(2, SlotState::Exited),
        ]);
        assert_eq!(d.http_of("127.0.0.1:2553"), Some("127.0.0.1:8553"));
        assert!(
            d.targets().contains("127.0.0.1:8553"),
            "dead slots stay targets: they come back"
        );
        assert!(d.is_blocked("127.0.0.1:8553"));
        assert!(!d.is_blocked("127.0.0.1:8551"));
        assert_eq!(d.slot_of("127.0.0.1:2552").map(|s| s.slot), Some(1));
    }

    #[test]
    fn link_state_combines_both_ends_fault_tables() {
        let mut d = Directory::new("h");
        let listing: FaultsListing = serde_json::from_str(
            r#"{"links":[{"peer":"b","fault":{"cutOutbound":true,"cutInbound":false,"delayMs":0,"jitterMs":0,"loss":0.0}}]}"#,
        )
        .unwrap();
        d.learn_faults("a", listing);
        assert_eq!(d.link("a", "b").label("a", "b"), "a→b cut");
        assert_eq!(d.link("b", "a").label("b", "a"), "a→b cut");
        d.learn_faults(
            "b",
            FaultsListing {
                links: vec![FaultRow {
                    peer: "a".into(),
                    fault: LinkFaultState {
                        cut_outbound: true,
                        delay_ms: 300,
                        jitter_ms: 100,
                        ..Default::default()
                    },
                }],
            },
        );
        assert_eq!(d.link("a", "b").label("a", "b"), "cut, slow +400 ms");
        d.learn_faults("a", FaultsListing::default());
        d.learn_faults("b", FaultsListing::default());
        assert!(d.link("a", "b").is_healthy());
    }
}
