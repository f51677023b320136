//! Cluster settings: Akka's defaults, and a faster demo profile.
//!
//! Every duration is in milliseconds so the settings serialise the same everywhere (the
//! node reads them from flags, environment and TOML; the dashboard shows them).
//! Rules of thumb are given per field; the defaults are Akka's (identical in Akka 2.10,
//! Pekko and Akka.NET 1.5).

use crate::failure_detector::PhiSettings;
use crate::tagged::required;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How the split-brain resolver decides which side survives.
///
/// Read through `StrategyFields`, as `ClusterEvent` is (see there why).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "kebab-case",
    tag = "strategy",
    try_from = "StrategyFields"
)]
pub enum DowningStrategy {
    /// The side with more members survives; on a tie, the side holding the lowest address.
    KeepMajority,
    /// A side survives when it has at least `quorum_size` members. Never run more
    /// than `quorum_size * 2 - 1` members.
    StaticQuorum {
        /// Members a side needs to survive.
        quorum_size: usize,
    },
    /// The side with the oldest member survives.
    KeepOldest {
        /// If the oldest is alone on its side, it is downed and the other side survives.
        down_if_alone: bool,
    },
    /// Every member is downed (for systems that restart everything on any partition).
    DownAll,
}

/// A [`DowningStrategy`] as read: its name, and every field any strategy has.
#[derive(Deserialize)]
struct StrategyFields {
    strategy: String,
    quorum_size: Option<usize>,
    down_if_alone: Option<bool>,
}

impl TryFrom<StrategyFields> for DowningStrategy {
    type Error = String;

    fn try_from(f: StrategyFields) -> Result<Self, String> {
        Ok(match f.strategy.as_str() {
            "keep-majority" => DowningStrategy::KeepMajority,
            "static-quorum" => DowningStrategy::StaticQuorum {
                quorum_size: required(f.quorum_size, "quorum_size")?,
            },
            "keep-oldest" => DowningStrategy::KeepOldest {
                down_if_alone: required(f.down_if_alone, "down_if_alone")?,
            },
            "down-all" => DowningStrategy::DownAll,
            other => return Err(format!("unknown downing strategy `{other}`")),
        })
    }
}

/// Split-brain resolver settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DowningSettings {
    /// The strategy.
    pub strategy: DowningStrategy,
    /// Membership and reachability must be unchanged this long before a decision.
    /// Akka: 20 s; 7 s suits 5 nodes. Rule of thumb: several detection times.
    pub stable_after_ms: u64,
    /// If no stable decision was possible for `stable_after + this`, down all.
    /// `None` disables it. Default: max(4 s, 3/4 of stable-after).
    pub down_all_when_unstable_ms: Option<u64>,
    /// Count only members with this role when comparing sides.
    pub role: Option<String>,
    /// The shorter stable-after of a corroborated view: one in which every unreachable
    /// member is marked by as many observers as watch it (`sbr::corroborated`). `None`
    /// (Akka) waits `stable_after_ms` whatever the evidence.
    #[serde(default)]
    pub corroborated_stable_after_ms: Option<u64>,
}

impl DowningSettings {
    /// Keep-majority with the given stable-after and the default unstable limit.
    pub fn keep_majority(stable_after_ms: u64) -> Self {
        DowningSettings {
            strategy: DowningStrategy::KeepMajority,
            stable_after_ms,
            down_all_when_unstable_ms: Some(Self::default_down_all_when_unstable(stable_after_ms)),
            role: None,
            corroborated_stable_after_ms: None,
        }
    }

    /// How long the view must be stable before a decision: shorter when `corroborated`.
    pub fn stable_after(&self, corroborated: bool) -> u64 {
        match self.corroborated_stable_after_ms {
            Some(ms) if corroborated => ms.min(self.stable_after_ms),
            _ => self.stable_after_ms,
        }
    }

    /// max(4 s, 3/4 of stable-after), as Akka's `down-all-when-unstable = on`.
    pub fn default_down_all_when_unstable(stable_after_ms: u64) -> u64 {
        (stable_after_ms * 3 / 4).max(4000)
    }
}

/// Everything the membership core needs to know about timing and policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Name of the cluster; a node presenting another name is refused.
    pub cluster_name: String,
    /// Gossip tick. Akka: 1 s.
    pub gossip_interval_ms: u64,
    /// Chance of gossiping to a member that has not seen the current version. Akka: 0.8.
    pub gossip_different_view_probability: f64,
    /// Above this many members the probability above is lowered, linearly to a third of it at three times this size. Akka: 400.
    pub reduce_gossip_different_view_probability: usize,
    /// Leader-action tick. Akka: 1 s.
    pub leader_actions_interval_ms: u64,
    /// How often unreachability is evaluated. Akka: 1 s.
    pub unreachable_nodes_reaper_interval_ms: u64,
    /// Heartbeat request interval. Akka: 1 s.
    pub heartbeat_interval_ms: u64,
    /// Phi threshold. Akka: 8.0.
    pub phi_threshold: f64,
    /// Samples kept per monitored node. Akka: 1000.
    pub max_sample_size: usize,
    /// Floor of the inter-arrival std deviation. Akka: 100 ms.
    pub min_std_deviation_ms: u64,
    /// Pause tolerated without suspicion (GC, scheduling). Akka: 3 s.
    pub acceptable_heartbeat_pause_ms: u64,
    /// After this long without a first response, start suspecting. Akka: 1 s.
    pub expected_response_after_ms: u64,
    /// How many members monitor each member. Akka: 9.
    pub monitored_by_nr_of_members: usize,
    /// Indirect probes (SWIM's ping-req, ALGORITHM.md section 9): how many other
    /// members a monitor asks to reach a silent member before it may mark it
    /// unreachable ahead of phi. 0 turns them off. Akka has none: 0.
    #[serde(default)]
    pub indirect_probe_helpers: usize,
    /// A monitored member that has left a heartbeat unanswered this long is probed
    /// directly and through the helpers (it answers by its next tick while it runs).
    #[serde(default)]
    pub indirect_probe_after_ms: u64,
    /// How long a probe round waits for the helpers' reports; helpers report "not
    /// reached" after half of it.
    #[serde(default)]
    pub indirect_probe_timeout_ms: u64,
    /// How long the first seed waits for another seed before forming a new cluster. Akka: 5 s.
    pub seed_node_timeout_ms: u64,
    /// A join without a welcome is restarted after this. Akka: 10 s.
    pub retry_unsuccessful_join_after_ms: u64,
    /// Joining members become WeaklyUp after this without convergence. `None` disables. Akka: 7 s.
    pub weakly_up_after_ms: Option<u64>,
    /// Members needed before the leader moves anyone Up. Akka: 1.
    pub min_nr_of_members: usize,
    /// Per role: members with the role needed before the leader moves anyone Up.
    pub min_nr_of_members_of_role: BTreeMap<String, usize>,
    /// The split-brain resolver.
    pub downing: DowningSettings,
    /// A member that sees itself Exiting stops waiting for removal after this.
    pub exiting_timeout_ms: u64,
    /// Tombstones of removed members are kept this long. Akka: 24 h.
    pub prune_gossip_tombstones_after_ms: u64,
}

impl Settings {
    /// Akka's defaults.
    pub fn akka_defaults(cluster_name: impl Into<String>) -> Self {
        Settings {
            cluster_name: cluster_name.into(),
            gossip_interval_ms: 1000,
            gossip_different_view_probability: 0.8,
            reduce_gossip_different_view_probability: 400,
            leader_actions_interval_ms: 1000,
            unreachable_nodes_reaper_interval_ms: 1000,
            heartbeat_interval_ms: 1000,
            phi_threshold: 8.0,
            max_sample_size: 1000,
            min_std_deviation_ms: 100,
            acceptable_heartbeat_pause_ms: 3000,
            expected_response_after_ms: 1000,
            monitored_by_nr_of_members: 9,
            indirect_probe_helpers: 0,
            indirect_probe_after_ms: 1500,
            indirect_probe_timeout_ms: 1000,
            seed_node_timeout_ms: 5000,
            retry_unsuccessful_join_after_ms: 10_000,
            weakly_up_after_ms: Some(7000),
            min_nr_of_members: 1,
            min_nr_of_members_of_role: BTreeMap::new(),
            downing: DowningSettings::keep_majority(20_000),
            exiting_timeout_ms: 10_000,
            prune_gossip_tombstones_after_ms: 24 * 3600 * 1000,
        }
    }

    /// The demo profile: the same semantics, about five times faster, with indirect
    /// probes. A crash is seen in under a second and a crashed member is removed within
    /// about five seconds, at the price of more false alarms on a badly overloaded
    /// machine.
    pub fn demo(cluster_name: impl Into<String>) -> Self {
        Settings {
            gossip_interval_ms: 200,
            leader_actions_interval_ms: 200,
            unreachable_nodes_reaper_interval_ms: 100,
            heartbeat_interval_ms: 200,
            min_std_deviation_ms: 50,
            acceptable_heartbeat_pause_ms: 300,
            expected_response_after_ms: 400,
            seed_node_timeout_ms: 1000,
            retry_unsuccessful_join_after_ms: 2000,
            weakly_up_after_ms: Some(2000),
            downing: DowningSettings::keep_majority(3000),
            exiting_timeout_ms: 3000,
            ..Settings::akka_defaults(cluster_name)
        }
        .with_indirect_probes(3)
    }

    /// Indirect probes with `helpers` helpers, timed from the heartbeat interval: a
    /// member silent for one and a half intervals is probed, and a round lasts one.
    pub fn with_indirect_probes(mut self, helpers: usize) -> Self {
        self.indirect_probe_helpers = helpers;
        self.indirect_probe_after_ms = self.heartbeat_interval_ms * 3 / 2;
        self.indirect_probe_timeout_ms = self.heartbeat_interval_ms;
        self
    }

    /// A corroborated view is stable after the acceptable pause and two heartbeat
    /// intervals: the view has settled (every observer agrees), and a member paused for
    /// less than that after it was found out is still forgiven.
    pub fn with_corroborated_stable_after(mut self) -> Self {
        let ms = self.acceptable_heartbeat_pause_ms + 2 * self.heartbeat_interval_ms;
        self.downing.corroborated_stable_after_ms = Some(ms);
        self
    }

    /// The phi detector settings these cluster settings imply.
    pub fn phi(&self) -> PhiSettings {
        PhiSettings {
            threshold: self.phi_threshold,
            max_sample_size: self.max_sample_size,
            min_std_deviation_ms: self.min_std_deviation_ms as f64,
            acceptable_heartbeat_pause_ms: self.acceptable_heartbeat_pause_ms as f64,
            first_heartbeat_estimate_ms: self.heartbeat_interval_ms as f64,
        }
    }
}
