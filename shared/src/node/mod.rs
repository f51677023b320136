//! The membership state machine of one node: joining, gossip, failure detection,
//! leader actions and the split-brain resolver, with no I/O.
//!
//! The caller feeds it messages, commands and the current time, and collects what it
//! must send, the events it raised, and when it wants to be called again:
//!
//! ```
//! use shared::{Address, Node, Settings, UniqueAddress};
//! let me = UniqueAddress::new(Address::new("127.0.0.1", 2551), 42);
//! let seeds = vec![me.address.clone()];
//! let mut node = Node::new(me, Default::default(), seeds, Settings::demo("demo"), 7, 0);
//! let mut now = 0;
//! while !node.is_available() {
//!     now = node.next_deadline().unwrap();
//!     node.tick(now);
//!     for output in node.take_outputs() {
//!         // send `Output::Send` over the network, publish events, exit on shutdown
//!         let _ = output;
//!     }
//! }
//! assert!(now < 2_000, "a lone first seed forms its cluster at once");
//! ```
//!
//! The tokio runtime and the deterministic simulator drive this same type, so what
//! the simulator proves holds for real nodes. Randomness (the gossip peer choice) comes
//! from a seeded generator.
//!
//! This file holds the types, construction and the read-only accessors; each section
//! of the protocol has a file of its own, all of them methods of [`Node`]: `inputs`
//! (the entry points), `joining`, `gossiping`, `detection` (failure detection),
//! `leader`, `resolver`, `timers` and `changes` (every edit of the state).

use crate::address::{Address, UniqueAddress};
use crate::events::{
    ClusterEvent, ClusterSnapshot, ResolverStatus, ShutdownReason, UnreachableInfo,
};
use crate::failure_detector::Monitor;
use crate::gossip::Gossip;
use crate::member::MemberStatus;
use crate::sbr::{self, Stability};
use crate::settings::Settings;
use crate::wire::{Acquaintance, Message};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};

mod changes;
mod detection;
mod gossiping;
mod inputs;
mod joining;
mod leader;
mod local_health;
mod probing;
mod resolver;
mod timers;

/// Milliseconds on the caller's clock (monotonic; roughly wall-clock in real nodes).
pub type Millis = u64;

/// What the caller must do after feeding the node.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Send `message` to the node listening at `to`.
    Send {
        /// Destination address.
        to: Address,
        /// The message.
        message: Message,
    },
    /// Publish an event to subscribers.
    Event(ClusterEvent),
    /// The node's membership has ended; the process should stop (exit non-zero when
    /// downed, so a supervisor restarts it as a new incarnation).
    Shutdown(ShutdownReason),
}

/// A request from an operator or the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Join the cluster through this contact (when no seeds were given).
    Join(Address),
    /// Make the member at this address leave gracefully.
    Leave(Address),
    /// Mark the member at this address Down.
    Down(Address),
}

/// Why a command was not applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// This node is not a member, so it cannot change membership.
    #[error("this node is not a member of a cluster yet")]
    NotAMember,
    /// No current member has that address.
    #[error("no member at {0}")]
    UnknownMember(Address),
    /// The member cannot make that move from its status.
    #[error("member at {0} is {1} and cannot {2}")]
    NotAllowed(Address, MemberStatus, &'static str),
    /// The node is joining or already in a cluster.
    #[error("already joining or in a cluster")]
    AlreadyJoining,
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
}

/// Where the node is in joining.
#[derive(Clone, Debug, PartialEq)]
enum Phase {
    /// No seeds; waiting for a `Command::Join`.
    Idle,
    /// Asking contacts whether they are in a cluster.
    Seeking {
        contacts: Vec<Address>,
        /// Only the first seed may form a new cluster, after this time.
        form_self_at: Option<Millis>,
        next_attempt: Millis,
        /// Seeds that answered "not in a cluster": once all other seeds have, the
        /// first seed forms at once instead of waiting out the timeout (as Akka does).
        nacked: BTreeSet<Address>,
    },
    /// Join sent; waiting for a welcome.
    AwaitingWelcome {
        contact: Address,
        give_up_at: Millis,
    },
    /// In the cluster.
    Member,
    /// Finished.
    Stopped(ShutdownReason),
}

/// The largest phi a snapshot reports.
pub const PHI_CAP: f64 = 1000.0;

/// Timers the node asks to be called back for.
#[derive(Clone, Debug, Default)]
struct Timers {
    gossip: Millis,
    heartbeat: Millis,
    reaper: Millis,
    leader: Millis,
    exiting_deadline: Option<Millis>,
    /// While a cluster this node formed alone is still alone: when to ask the other
    /// seeds again whether a cluster exists elsewhere.
    probe_seeds: Option<Millis>,
    /// With indirect probes on: when to end, retry and start probe rounds.
    indirect_probes: Option<Millis>,
}

/// A resolver decision that keeps this side, waiting until every member it counts
/// on has proved, by answering a heartbeat sent after the decision, that it is still
/// on this side.
#[derive(Clone, Debug)]
struct PendingDecision {
    decided_at: Millis,
    stable_since: Millis,
    resolution: sbr::Resolution,
}

/// A member's answer to `InitJoin` (see `Message::InitJoinAck`).
#[derive(Clone, Debug)]
struct ProbeAnswer {
    cluster_size: u32,
    lowest_member: Address,
    lineage: u64,
    knows_you: Acquaintance,
}

/// One node's membership core.
#[derive(Clone)]
pub struct Node {
    settings: Settings,
    self_node: UniqueAddress,
    roles: BTreeSet<String>,
    seeds: Vec<Address>,
    rng: SmallRng,
    phase: Phase,
    gossip: Gossip,
    monitor: Monitor,
    /// Indirect probe rounds in flight (see `probing`).
    probes: probing::Probes,
    heartbeat_seq: u64,
    /// Heartbeats answered at this node's next heartbeat tick, or with the next message
    /// to that peer, whichever is first: per peer, the newest unanswered sequence.
    owed_answers: BTreeMap<Address, u64>,
    stability: Stability,
    timers: Timers,
    /// Since when the leader has been unable to reach convergence (for WeaklyUp).
    not_converged_since: Option<Millis>,
    /// Since when this node has been a member that was never Up (Joining, WeaklyUp;
    /// see `stuck_joining_after`).
    joining_since: Option<Millis>,
    /// A "we survive" decision waiting for confirmation (see `confirmed`).
    pending_decision: Option<PendingDecision>,
    /// When this node last applied a decision of its own that downed others and kept
    /// itself (see `concedes_at_once`).
    kept_ourselves_at: Option<Millis>,
    /// The members this node's own row marked unreachable when it kept itself: only
    /// members it lost since can be a partition that overtook that decision.
    unreachable_when_kept: BTreeSet<UniqueAddress>,
    /// Members of our lineage outside our view that do not know us, since when they
    /// first answered a probe so (see `on_init_join_ack`).
    strangers_since: BTreeMap<UniqueAddress, Millis>,
    /// Members another observer holds a proof of death against that this node has
    /// sent a heartbeat to, to see for itself (see `look_for_ourselves`).
    looked_at: BTreeSet<UniqueAddress>,
    /// Up to when this node's time away has been excused (see `local_health`).
    absent_through: Millis,
    /// When this member last woke from an absence longer than the acceptable pause
    /// (see `local_health`).
    woke_from_long_absence_at: Option<Millis>,
    /// Total time away found so far (see `local_health`).
    time_away_ms: Millis,
    outputs: Vec<Output>,
    now: Millis,
}

impl Node {
    /// A node that will join through `seeds` (if any). Every node of a cluster must
    /// use the same seed list: only its first entry may form a new cluster.
    pub fn new(
        self_node: UniqueAddress,
        roles: BTreeSet<String>,
        seeds: Vec<Address>,
        settings: Settings,
        rng_seed: u64,
        now: Millis,
    ) -> Node {
        let mut rng = SmallRng::seed_from_u64(rng_seed);
        let jitter = |rng: &mut SmallRng, interval: u64| now + rng.random_range(0..interval.max(1));
        let heartbeat = jitter(&mut rng, settings.heartbeat_interval_ms);
        let gossip = jitter(&mut rng, settings.gossip_interval_ms);
        let timers = Timers {
            // In step with the heartbeats when the intervals match (see `member_tick`).
            gossip: if settings.gossip_interval_ms == settings.heartbeat_interval_ms {
                heartbeat
            } else {
                gossip
            },
            heartbeat,
            reaper: jitter(&mut rng, settings.unreachable_nodes_reaper_interval_ms),
            leader: jitter(&mut rng, settings.leader_actions_interval_ms),
            exiting_deadline: None,
            probe_seeds: None,
            indirect_probes: (settings.indirect_probe_helpers > 0).then_some(heartbeat),
        };
        let mut monitor = Monitor::new(settings.phi());
        if settings.indirect_probe_helpers > 0 {
            monitor = monitor.with_vouching(probing::vouching(&settings));
        }
        let mut node = Node {
            monitor,
            probes: probing::Probes::default(),
            settings,
            self_node,
            roles,
            seeds: Vec::new(),
            rng,
            phase: Phase::Idle,
            gossip: Gossip::default(),
            strangers_since: BTreeMap::new(),
            looked_at: BTreeSet::new(),
            absent_through: now,
            woke_from_long_absence_at: None,
            time_away_ms: 0,
            heartbeat_seq: 0,
            owed_answers: BTreeMap::new(),
            stability: Stability::new(now),
            timers,
            not_converged_since: None,
            joining_since: None,
            pending_decision: None,
            kept_ourselves_at: None,
            unreachable_when_kept: BTreeSet::new(),
            outputs: Vec::new(),
            now,
        };
        let mut unique_seeds = Vec::new();
        for seed in seeds {
            if !unique_seeds.contains(&seed) {
                unique_seeds.push(seed);
            }
        }
        node.seeds = unique_seeds;
        if !node.seeds.is_empty() {
            node.start_seeking(node.seeds.clone(), now);
        }
        node
    }

    /// A node that starts as a member of a known cluster state (used to set up large
    /// simulated clusters without forming them join by join). `gossip` must contain
    /// `self_node`.
    pub fn with_state(
        self_node: UniqueAddress,
        gossip: Gossip,
        settings: Settings,
        rng_seed: u64,
        now: Millis,
    ) -> Node {
        let roles = gossip
            .member(&self_node)
            .map(|m| m.roles.clone())
            .unwrap_or_default();
        let mut node = Node::new(self_node, roles, Vec::new(), settings, rng_seed, now);
        node.gossip = gossip;
        node.phase = Phase::Member;
        node.refresh_heartbeat_receivers(now);
        node.stability.observe(&node.gossip, now);
        node
    }

    // ----- accessors -------------------------------------------------------------

    /// This incarnation.
    pub fn self_node(&self) -> &UniqueAddress {
        &self.self_node
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The current cluster state as this node sees it.
    pub fn gossip(&self) -> &Gossip {
        &self.gossip
    }

    /// This node's own status, once it is a member.
    pub fn status(&self) -> Option<MemberStatus> {
        self.gossip.member(&self.self_node).map(|m| m.status)
    }

    /// Whether the node is Up or WeaklyUp (ready to serve).
    pub fn is_available(&self) -> bool {
        self.status().is_some_and(MemberStatus::is_available)
    }

    /// Whether the node has joined a cluster (and not stopped).
    pub fn is_member(&self) -> bool {
        self.phase == Phase::Member
    }

    /// Why the node stopped, if it did.
    pub fn stopped(&self) -> Option<ShutdownReason> {
        match self.phase {
            Phase::Stopped(reason) => Some(reason),
            _ => None,
        }
    }

    /// The leader as this node sees it.
    pub fn leader(&self) -> Option<UniqueAddress> {
        self.gossip.leader(&self.self_node)
    }

    /// Whether gossip has converged in this node's view.
    pub fn is_converged(&self) -> bool {
        self.gossip.convergence(&self.self_node)
    }

    /// Nodes this node sends heartbeats to.
    pub fn heartbeat_receivers(&self) -> BTreeSet<UniqueAddress> {
        self.monitor.receivers().cloned().collect()
    }

    /// The whole view, for a new subscriber.
    pub fn snapshot(&self) -> ClusterSnapshot {
        let g = &self.gossip;
        let unreachable = g
            .reachability
            .all_unreachable()
            .into_iter()
            .filter(|n| g.has_member(n))
            .map(|node| UnreachableInfo {
                observed_by: g.reachability.observers_of(&node).into_iter().collect(),
                node,
            })
            .collect();
        let role_leaders = crate::sorting::map_from(g.roles().into_iter().map(|role| {
            let leader = g.role_leader(&self.self_node, &role);
            (role, leader)
        }));
        ClusterSnapshot {
            time_away_ms: self.time_away_ms,
            self_node: self.self_node.clone(),
            self_status: self.status(),
            members: g.members.values().cloned().collect(),
            unreachable,
            seen_by: g.seen.iter().cloned().collect(),
            leader: self.leader(),
            role_leaders,
            oldest: g.oldest(None).map(|m| m.node.clone()),
            converged: self.is_converged(),
            version_digest: g.version.digest(),
            resolver: self.resolver_status(),
            // Capped: an infinite phi (a long silence) has no JSON form, and past a
            // few dozen it means the same thing: certainly failed.
            phi: self
                .monitor
                .phis(self.now)
                .into_iter()
                .map(|(node, phi)| {
                    (
                        node,
                        if phi.is_finite() {
                            phi.min(PHI_CAP)
                        } else {
                            PHI_CAP
                        },
                    )
                })
                .collect(),
        }
    }

    fn resolver_status(&self) -> ResolverStatus {
        let unreachable = sbr::decide(&self.gossip, &self.self_node, &self.settings.downing)
            .map(|r| r.to_down.len())
            .unwrap_or(0);
        let since = self.stability.stable_since_ms();
        ResolverStatus {
            responsible: self.is_member() && self.leader().as_ref() == Some(&self.self_node),
            unreachable,
            stable_since_ms: since,
            decision_due_ms: (unreachable > 0)
                .then(|| since + self.settings.downing.stable_after(self.corroborated())),
        }
    }

    /// Everything produced since the last call.
    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    /// When the node next wants `tick` to be called; `None` once stopped.
    pub fn next_deadline(&self) -> Option<Millis> {
        let t = &self.timers;
        match &self.phase {
            Phase::Stopped(_) => None,
            Phase::Idle => None,
            Phase::Seeking {
                form_self_at,
                next_attempt,
                ..
            } => Some(form_self_at.map_or(*next_attempt, |f| f.min(*next_attempt))),
            Phase::AwaitingWelcome { give_up_at, .. } => Some(*give_up_at),
            Phase::Member => {
                let mut next = t.gossip.min(t.heartbeat).min(t.reaper).min(t.leader);
                let extras = [t.exiting_deadline, t.probe_seeds, t.indirect_probes];
                for extra in extras.into_iter().flatten() {
                    next = next.min(extra);
                }
                Some(next)
            }
        }
    }
}
