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

use crate::address::{Address, UniqueAddress};
use crate::events::{
    diff, ClusterEvent, ClusterSnapshot, ResolverStatus, ShutdownReason, UnreachableInfo,
};
use crate::failure_detector::{heartbeat_receivers, Monitor};
use crate::gossip::Gossip;
use crate::member::{Member, MemberStatus, MAX_ROLES, MAX_ROLE_LEN};
use crate::sbr::{self, Stability, StabilityVerdict};
use crate::settings::Settings;
use crate::vclock::VersionOrder;
use crate::wire::{Acquaintance, Message};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};

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
pub struct Node {
    settings: Settings,
    self_node: UniqueAddress,
    roles: BTreeSet<String>,
    seeds: Vec<Address>,
    rng: SmallRng,
    phase: Phase,
    gossip: Gossip,
    monitor: Monitor,
    heartbeat_seq: u64,
    stability: Stability,
    timers: Timers,
    /// Since when the leader has been unable to reach convergence (for WeaklyUp).
    not_converged_since: Option<Millis>,
    /// Since when this node has been a member that was never Up (Joining, WeaklyUp;
    /// see `stuck_joining_after`).
    joining_since: Option<Millis>,
    /// A "we survive" decision waiting for confirmation (see `confirmed`).
    pending_decision: Option<PendingDecision>,
    /// Members of our lineage outside our view that do not know us, since when they
    /// first answered a probe so (see `on_init_join_ack`).
    strangers_since: BTreeMap<UniqueAddress, Millis>,
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
        let timers = Timers {
            gossip: jitter(&mut rng, settings.gossip_interval_ms),
            heartbeat: jitter(&mut rng, settings.heartbeat_interval_ms),
            reaper: jitter(&mut rng, settings.unreachable_nodes_reaper_interval_ms),
            leader: jitter(&mut rng, settings.leader_actions_interval_ms),
            exiting_deadline: None,
            probe_seeds: None,
        };
        let mut node = Node {
            monitor: Monitor::new(settings.phi()),
            settings,
            self_node,
            roles,
            seeds: Vec::new(),
            rng,
            phase: Phase::Idle,
            gossip: Gossip::default(),
            strangers_since: BTreeMap::new(),
            heartbeat_seq: 0,
            stability: Stability::new(now),
            timers,
            not_converged_since: None,
            joining_since: None,
            pending_decision: None,
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
        let role_leaders = g
            .roles()
            .into_iter()
            .map(|role| {
                let leader = g.role_leader(&self.self_node, &role);
                (role, leader)
            })
            .collect();
        ClusterSnapshot {
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
                .then(|| since + self.settings.downing.stable_after_ms),
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
                for extra in [t.exiting_deadline, t.probe_seeds].into_iter().flatten() {
                    next = next.min(extra);
                }
                Some(next)
            }
        }
    }

    // ----- inputs ----------------------------------------------------------------

    /// Runs every timer that is due at `now`.
    pub fn tick(&mut self, now: Millis) {
        self.now = self.now.max(now);
        let now = self.now;
        match self.phase.clone() {
            Phase::Stopped(_) | Phase::Idle => {}
            Phase::Seeking {
                contacts,
                form_self_at,
                next_attempt,
                ..
            } => {
                if form_self_at.is_some_and(|t| now >= t) {
                    self.form_new_cluster(now);
                } else if now >= next_attempt {
                    self.send_init_joins(&contacts);
                    let retry_at = now + self.join_retry_interval();
                    if let Phase::Seeking { next_attempt, .. } = &mut self.phase {
                        *next_attempt = retry_at;
                    }
                }
            }
            Phase::AwaitingWelcome { give_up_at, .. } => {
                if now >= give_up_at {
                    let contacts = if self.seeds.is_empty() {
                        match &self.phase {
                            Phase::AwaitingWelcome { contact, .. } => vec![contact.clone()],
                            _ => Vec::new(),
                        }
                    } else {
                        self.seeds.clone()
                    };
                    self.start_seeking(contacts, now);
                }
            }
            Phase::Member => self.member_tick(now),
        }
    }

    /// Handles one message from the network.
    pub fn handle_message(&mut self, now: Millis, message: Message) {
        self.now = self.now.max(now);
        let now = self.now;
        if matches!(self.phase, Phase::Stopped(_)) {
            return;
        }
        match message {
            Message::InitJoin { from, cluster } => self.on_init_join(from, cluster),
            Message::InitJoinAck {
                from,
                cluster_size,
                lowest_member,
                lineage,
                knows_you,
            } => {
                let answer = ProbeAnswer {
                    cluster_size,
                    lowest_member,
                    lineage,
                    knows_you,
                };
                self.on_init_join_ack(from, answer, now)
            }
            Message::InitJoinNack { from } => self.on_init_join_nack(from, now),
            Message::Join {
                node,
                roles,
                cluster,
            } => self.on_join(node, roles, cluster, now),
            Message::Welcome { from, to, gossip } => self.on_welcome(from, to, gossip, now),
            Message::JoinRefused { from, reason } => {
                if !self.is_member() {
                    self.outputs.push(Output::Event(ClusterEvent::JoinRefused {
                        by: from.address,
                        reason,
                    }));
                }
            }
            Message::Gossip { from, to, gossip } => self.on_gossip(from, to, gossip, now),
            Message::GossipStatus {
                from,
                to,
                version_digest,
                seen_digest,
            } => self.on_gossip_status(from, to, version_digest, seen_digest),
            Message::Heartbeat { from, seq } => self.on_heartbeat(from, seq),
            Message::HeartbeatRsp { from, .. } => {
                if self.monitor.is_monitoring(&from) {
                    self.monitor.heartbeat(&from, now);
                }
            }
            Message::Quarantined { from, to } if to == self.self_node => {
                if !self.is_member() {
                    // Still joining, but the cluster already removed this incarnation.
                    self.shut_down(ShutdownReason::Rejoin);
                } else if self.gossip.has_member(&from) {
                    let reason = self.reason_for_removal();
                    self.shut_down(reason);
                }
            }
            Message::Quarantined { .. } => {}
            Message::Elsewhere { from, to } if to == self.self_node => self.on_elsewhere(from, now),
            Message::Elsewhere { .. } => {}
            // The node routes service messages elsewhere; one arriving here is ignored.
            Message::Service { .. } => {}
        }
    }

    /// Replaces the seed list (for seeds given as a DNS name, re-resolved while
    /// joining). A node still looking for its cluster asks the new seeds from its next
    /// attempt on; whether it may form a cluster itself follows the new list (only the
    /// first seed may). A member ignores its seeds except to probe for islands.
    pub fn update_seeds(&mut self, now: Millis, seeds: Vec<Address>) {
        let mut unique: Vec<Address> = Vec::new();
        for seed in seeds {
            if !unique.contains(&seed) {
                unique.push(seed);
            }
        }
        if unique == self.seeds {
            return;
        }
        self.seeds = unique;
        let first = self.seeds.first() == Some(&self.self_node.address);
        let timeout = self.settings.seed_node_timeout_ms;
        match &mut self.phase {
            Phase::Seeking {
                contacts,
                form_self_at,
                ..
            } => {
                *contacts = self.seeds.clone();
                match (first, form_self_at.is_some()) {
                    (true, false) => *form_self_at = Some(now + timeout),
                    (false, true) => *form_self_at = None,
                    _ => {}
                }
            }
            Phase::Idle if !self.seeds.is_empty() => self.start_seeking(self.seeds.clone(), now),
            _ => {}
        }
    }

    /// Applies an operator or application command.
    pub fn handle_command(&mut self, now: Millis, command: Command) -> Result<(), CommandError> {
        self.now = self.now.max(now);
        let now = self.now;
        if matches!(self.phase, Phase::Stopped(_)) {
            return Err(CommandError::Stopped);
        }
        match command {
            Command::Join(contact) => {
                if self.phase != Phase::Idle {
                    return Err(CommandError::AlreadyJoining);
                }
                self.start_seeking(vec![contact], now);
                Ok(())
            }
            Command::Leave(address) => {
                let member = self.member_at(&address)?;
                if !matches!(
                    member.status,
                    MemberStatus::Joining | MemberStatus::WeaklyUp | MemberStatus::Up
                ) {
                    if member.status == MemberStatus::Leaving
                        || member.status == MemberStatus::Exiting
                    {
                        return Ok(());
                    }
                    return Err(CommandError::NotAllowed(address, member.status, "leave"));
                }
                let node = member.node.clone();
                self.change(now, |g, _| {
                    if let Some(m) = g.members.get_mut(&node) {
                        m.status = MemberStatus::Leaving;
                    }
                });
                Ok(())
            }
            Command::Down(address) => {
                let member = self.member_at(&address)?;
                if member.status == MemberStatus::Down {
                    return Ok(());
                }
                let node = member.node.clone();
                self.down_members(now, &[node].into());
                Ok(())
            }
        }
    }

    fn member_at(&self, address: &Address) -> Result<Member, CommandError> {
        if !self.is_member() {
            return Err(CommandError::NotAMember);
        }
        self.gossip
            .member_at(address)
            .cloned()
            .ok_or_else(|| CommandError::UnknownMember(address.clone()))
    }

    // ----- joining ---------------------------------------------------------------

    /// How often a joining node asks the seeds again: a fifth of the seed-node
    /// timeout (200 ms in the demo profile, 1 s with Akka's defaults), so a node that
    /// asked just before the first seed formed the cluster joins soon after.
    fn join_retry_interval(&self) -> Millis {
        (self.settings.seed_node_timeout_ms / 5).max(50)
    }

    fn start_seeking(&mut self, contacts: Vec<Address>, now: Millis) {
        let i_am_first_seed = self.seeds.first() == Some(&self.self_node.address);
        if i_am_first_seed && self.seeds.len() == 1 {
            self.form_new_cluster(now);
            return;
        }
        let form_self_at = i_am_first_seed.then(|| now + self.settings.seed_node_timeout_ms);
        self.send_init_joins(&contacts);
        self.phase = Phase::Seeking {
            contacts,
            form_self_at,
            next_attempt: now + self.join_retry_interval(),
            nacked: BTreeSet::new(),
        };
    }

    /// Seed addresses (other than this node's) where this cluster has no member.
    fn seeds_outside_cluster(&self) -> Vec<Address> {
        self.seeds
            .iter()
            .filter(|s| *s != &self.self_node.address && self.gossip.member_at(s).is_none())
            .cloned()
            .collect()
    }

    fn send_init_joins(&mut self, contacts: &[Address]) {
        for contact in contacts {
            if contact != &self.self_node.address {
                self.send(
                    contact.clone(),
                    Message::InitJoin {
                        from: self.self_node.clone(),
                        cluster: self.settings.cluster_name.clone(),
                    },
                );
            }
        }
    }

    /// The first seed found no running cluster: it joins itself.
    fn form_new_cluster(&mut self, now: Millis) {
        let old = std::mem::take(&mut self.gossip);
        self.gossip =
            Gossip::with_member(Member::joining(self.self_node.clone(), self.roles.clone()));
        self.gossip.bump(&self.self_node);
        self.phase = Phase::Member;
        self.after_change(&old, now);
    }

    fn on_init_join(&mut self, from: UniqueAddress, cluster: String) {
        if cluster != self.settings.cluster_name {
            self.refuse(&from, format!("cluster name `{cluster}` does not match"));
            return;
        }
        // A removed incarnation still gets an Ack: if it is joining, its Join is then
        // answered with Quarantined (see `on_join`); if it is a member of another
        // cluster probing for islands, the Ack's size is what it needs (seed 2280).
        let accepting = self.is_member()
            && self
                .status()
                .is_some_and(|s| !matches!(s, MemberStatus::Down | MemberStatus::Exiting));
        let reply = if accepting {
            Message::InitJoinAck {
                from: self.self_node.clone(),
                cluster_size: self.live_member_count(),
                lowest_member: self.lowest_member(),
                lineage: self.gossip.lineage,
                knows_you: self.acquaintance(&from),
            }
        } else {
            Message::InitJoinNack {
                from: self.self_node.clone(),
            }
        };
        self.send(from.address, reply);
    }

    fn refuse(&mut self, to: &UniqueAddress, reason: String) {
        self.send(
            to.address.clone(),
            Message::JoinRefused {
                from: self.self_node.clone(),
                reason,
            },
        );
    }

    /// Members that count when islands compare sizes: neither Down nor Exiting.
    fn live_member_count(&self) -> u32 {
        let live = self
            .gossip
            .members
            .values()
            .filter(|m| !matches!(m.status, MemberStatus::Down | MemberStatus::Exiting));
        live.count() as u32
    }

    fn lowest_member(&self) -> Address {
        self.gossip
            .members
            .keys()
            .next()
            .map_or_else(|| self.self_node.address.clone(), |n| n.address.clone())
    }

    fn on_init_join_nack(&mut self, from: UniqueAddress, now: Millis) {
        let Phase::Seeking {
            form_self_at: Some(_),
            nacked,
            ..
        } = &mut self.phase
        else {
            return;
        };
        nacked.insert(from.address);
        let me = &self.self_node.address;
        let all_nacked = self
            .seeds
            .iter()
            .filter(|s| *s != me)
            .all(|s| nacked.contains(s));
        if all_nacked {
            self.form_new_cluster(now);
        }
    }

    /// What our view holds of `node` (told to a member that probes us).
    fn acquaintance(&self, node: &UniqueAddress) -> Acquaintance {
        match self.gossip.member(node) {
            Some(m) if m.status != MemberStatus::Down => Acquaintance::Member,
            Some(_) => Acquaintance::Gone,
            None if self.gossip.tombstones.contains_key(node) => Acquaintance::Gone,
            None => Acquaintance::Stranger,
        }
    }

    /// Whether a probe answer of our own lineage is our own cluster, seen from a view
    /// that has not merged with ours yet (or an old incarnation's stale view of it),
    /// rather than an island that parted from us.
    fn is_our_cluster(&mut self, from: &UniqueAddress, answer: &ProbeAnswer, now: Millis) -> bool {
        if answer.lineage != self.gossip.lineage {
            return false;
        }
        let strangers = &mut self.strangers_since;
        strangers.retain(|n, _| self.gossip.member_at(&n.address).is_none());
        match answer.knows_you {
            // It holds us as a member: one cluster, views not merged yet (seen in a
            // five-process start where a member joined through another, and its
            // view's lowest member was itself: the prober downed its whole cluster).
            Acquaintance::Member => true,
            // It holds us Down or removed: two clusters of one lineage (seed 63366381).
            Acquaintance::Gone => false,
            // Neither knows the other. Its lowest member is one of ours: a stale view
            // of this cluster (seed 63366856; another cluster may hold a stale entry
            // for a member of ours that never took its welcome). Otherwise it may be a
            // member that joined through another while we did not hear of it; gossip
            // brings it into our view within rounds, so it is an island only once it
            // has stayed outside for three seed-node timeouts.
            Acquaintance::Stranger => {
                if self.gossip.member_at(&answer.lowest_member).is_some() {
                    return true;
                }
                let since = *strangers.entry(from.clone()).or_insert(now);
                now < since + 3 * self.settings.seed_node_timeout_ms
            }
        }
    }

    fn on_init_join_ack(&mut self, from: UniqueAddress, answer: ProbeAnswer, now: Millis) {
        if self.is_member() && self.is_our_cluster(&from, &answer, now) {
            // Not another cluster. (An incarnation we removed that still holds a view
            // of ours is told so. Its uid being one of our tombstones says nothing on
            // its own: an island may have downed a node that lives on elsewhere.)
            self.quarantine_if_gone(&from);
            return;
        }
        let ProbeAnswer {
            cluster_size,
            lowest_member,
            ..
        } = answer;
        if self.is_member() && !self.gossip.has_member(&from) {
            // A seed answered a probe from another cluster: one of the two is an
            // island (formed, or left over, while the other was unreachable). The
            // smaller one yields (ties: the one whose lowest member address is higher)
            // by downing all its members; supervisors restart them into the other.
            let ours = (
                self.live_member_count(),
                std::cmp::Reverse(self.lowest_member()),
            );
            let theirs = (cluster_size, std::cmp::Reverse(lowest_member));
            if theirs > ours {
                if self.gossip.members.len() == 1 {
                    self.shut_down(ShutdownReason::Rejoin);
                } else {
                    let everyone: BTreeSet<UniqueAddress> =
                        self.gossip.members.keys().cloned().collect();
                    self.outputs
                        .push(Output::Event(ClusterEvent::ResolverDecision {
                            decision: sbr::Decision::DownAll,
                            downed: everyone.iter().cloned().collect(),
                            indirectly_connected: Vec::new(),
                        }));
                    self.down_members(now, &everyone);
                }
            }
            return;
        }
        if let Phase::Seeking { .. } = self.phase {
            self.send(
                from.address.clone(),
                Message::Join {
                    node: self.self_node.clone(),
                    roles: self.roles.clone(),
                    cluster: self.settings.cluster_name.clone(),
                },
            );
            self.phase = Phase::AwaitingWelcome {
                contact: from.address,
                give_up_at: now + self.settings.retry_unsuccessful_join_after_ms,
            };
        }
    }

    fn on_join(
        &mut self,
        node: UniqueAddress,
        roles: BTreeSet<String>,
        cluster: String,
        now: Millis,
    ) {
        if cluster != self.settings.cluster_name {
            self.refuse(&node, format!("cluster name `{cluster}` does not match"));
            return;
        }
        if roles.len() > MAX_ROLES || roles.iter().any(|r| r.is_empty() || r.len() > MAX_ROLE_LEN) {
            self.refuse(&node, "roles out of bounds".into());
            return;
        }
        if !self.is_member()
            || self
                .status()
                .is_some_and(|s| matches!(s, MemberStatus::Down | MemberStatus::Exiting))
        {
            return;
        }
        if self.gossip.tombstones.contains_key(&node) {
            // Removed before it ever got its welcome: it must restart as a new one.
            self.quarantine_if_gone(&node);
            return;
        }
        if !self.gossip.has_member(&node) {
            let previous = self
                .gossip
                .member_at(&node.address)
                .filter(|m| m.node != node)
                .map(|m| m.node.clone());
            self.change(now, |g, me| {
                if let Some(old) = &previous {
                    // A new incarnation at the same address: the old one is gone for
                    // sure, so it is downed (and so removed) at once.
                    down_at_once(g, me, old);
                }
                g.members
                    .insert(node.clone(), Member::joining(node.clone(), roles));
            });
        }
        if self.is_member() {
            self.send(
                node.address.clone(),
                Message::Welcome {
                    from: self.self_node.clone(),
                    to: node,
                    gossip: self.gossip.clone(),
                },
            );
        }
    }

    fn on_welcome(&mut self, _from: UniqueAddress, to: UniqueAddress, gossip: Gossip, now: Millis) {
        let waiting = matches!(
            self.phase,
            Phase::AwaitingWelcome { .. } | Phase::Seeking { .. }
        );
        if !waiting || to != self.self_node || !gossip.has_member(&self.self_node) {
            return;
        }
        let old = std::mem::take(&mut self.gossip);
        self.gossip = gossip;
        self.gossip.mark_seen(&self.self_node);
        self.phase = Phase::Member;
        self.after_change(&old, now);
    }

    // ----- gossip ----------------------------------------------------------------

    fn on_gossip(&mut self, from: UniqueAddress, to: UniqueAddress, remote: Gossip, now: Millis) {
        if to != self.self_node || !self.is_member() {
            return;
        }
        if remote.lineage != self.gossip.lineage {
            // Another cluster's state. If it names us, its entry is stale (we took
            // another welcome, or formed our own cluster): say so, and it downs it.
            if remote.has_member(&self.self_node) {
                self.send(
                    from.address.clone(),
                    Message::Elsewhere {
                        from: self.self_node.clone(),
                        to: from,
                    },
                );
            }
            return;
        }
        if remote.tombstones.contains_key(&self.self_node) {
            let reason = self.reason_for_removal();
            self.shut_down(reason);
            return;
        }
        if !self.gossip.has_member(&from) {
            self.quarantine_if_gone(&from);
            return;
        }
        if self
            .gossip
            .member(&from)
            .is_some_and(|m| m.status == MemberStatus::Down)
        {
            self.send(
                from.address.clone(),
                Message::Quarantined {
                    from: self.self_node.clone(),
                    to: from,
                },
            );
            return;
        }
        if !remote.has_member(&self.self_node)
            || !self
                .gossip
                .reachability
                .is_reachable_by(&self.self_node, &from)
        {
            return;
        }
        let old = self.gossip.clone();
        let mut talk_back = false;
        match remote.version.compare(&self.gossip.version) {
            VersionOrder::Same => {
                let union: BTreeSet<UniqueAddress> =
                    self.gossip.seen.union(&remote.seen).cloned().collect();
                talk_back = union != remote.seen;
                self.gossip.seen = union;
                self.gossip.mark_seen(&self.self_node);
                return self.finish_gossip(from, talk_back);
            }
            VersionOrder::Before => talk_back = true,
            VersionOrder::After => {
                self.gossip = remote;
                self.gossip.mark_seen(&self.self_node);
            }
            VersionOrder::Concurrent => {
                let merged = self.gossip.merge(&remote);
                let needs_author = merged.merge_needs_author(&self.gossip, &remote);
                self.gossip = merged;
                if needs_author {
                    self.gossip.bump(&self.self_node);
                }
                self.gossip.mark_seen(&self.self_node);
                talk_back = true;
            }
        }
        self.after_change(&old, now);
        if self.is_member() {
            self.finish_gossip(from, talk_back);
        }
    }

    /// A member of ours says it belongs to another cluster. Only that incarnation can
    /// say so (messages are bound to their authenticated sender), so its entry is
    /// downed at once, as for a new incarnation at a known address.
    fn on_elsewhere(&mut self, from: UniqueAddress, now: Millis) {
        let listed = self
            .gossip
            .member(&from)
            .is_some_and(|m| m.status != MemberStatus::Down);
        if !self.is_member() || !listed || from == self.self_node {
            return;
        }
        self.change(now, |g, me| down_at_once(g, me, &from));
    }

    /// Answers with the full state when the sender has not seen it (it sent an older
    /// or concurrent version, or a smaller seen set).
    fn finish_gossip(&mut self, from: UniqueAddress, talk_back: bool) {
        if talk_back {
            self.send_gossip(&from);
        }
    }

    fn quarantine_if_gone(&mut self, node: &UniqueAddress) {
        if self.gossip.tombstones.contains_key(node) {
            self.send(
                node.address.clone(),
                Message::Quarantined {
                    from: self.self_node.clone(),
                    to: node.clone(),
                },
            );
        }
    }

    fn on_gossip_status(
        &mut self,
        from: UniqueAddress,
        to: UniqueAddress,
        version_digest: u64,
        seen_digest: u64,
    ) {
        if to != self.self_node || !self.is_member() {
            return;
        }
        if !self.gossip.has_member(&from) {
            self.quarantine_if_gone(&from);
            return;
        }
        if !self
            .gossip
            .reachability
            .is_reachable_by(&self.self_node, &from)
        {
            return;
        }
        let same_version = version_digest == self.gossip.version.digest();
        if !same_version || seen_digest != self.gossip.seen_digest() {
            self.send_gossip(&from);
        }
    }

    fn send_gossip(&mut self, to: &UniqueAddress) {
        self.send(
            to.address.clone(),
            Message::Gossip {
                from: self.self_node.clone(),
                to: to.clone(),
                gossip: self.gossip.clone(),
            },
        );
    }

    fn send_gossip_status(&mut self, to: &UniqueAddress) {
        self.send(
            to.address.clone(),
            Message::GossipStatus {
                from: self.self_node.clone(),
                to: to.clone(),
                version_digest: self.gossip.version.digest(),
                seen_digest: self.gossip.seen_digest(),
            },
        );
    }

    /// Akka's gossip-different-view probability, reduced for large clusters.
    fn different_view_probability(&self) -> f64 {
        let p = self.settings.gossip_different_view_probability;
        let size = self.gossip.members.len();
        let low = self.settings.reduce_gossip_different_view_probability;
        let high = low * 3;
        if size <= low {
            p
        } else {
            let min_p = p / 3.0;
            if size >= high {
                min_p
            } else {
                p + (size - low) as f64 * (min_p - p) / (high - low) as f64
            }
        }
    }

    /// One gossip round: to a member that has not seen this version (probably), or to
    /// any member, with a status digest only if it has seen it.
    fn gossip_round(&mut self) {
        let me = &self.self_node;
        let candidates: Vec<&UniqueAddress> = self
            .gossip
            .members
            .keys()
            .filter(|n| *n != me && self.gossip.reachability.is_reachable_by(me, n))
            .collect();
        if candidates.is_empty() {
            return;
        }
        let prefer_unseen = self
            .rng
            .random_bool(self.different_view_probability().clamp(0.0, 1.0));
        let unseen: Vec<&UniqueAddress> = candidates
            .iter()
            .copied()
            .filter(|n| !self.gossip.seen_by(n))
            .collect();
        if prefer_unseen && !unseen.is_empty() {
            let peer = unseen[self.rng.random_range(0..unseen.len())].clone();
            self.send_gossip(&peer);
        } else {
            let peer = candidates[self.rng.random_range(0..candidates.len())].clone();
            if self.gossip.seen_by(&peer) {
                self.send_gossip_status(&peer);
            } else {
                self.send_gossip(&peer);
            }
        }
    }

    // ----- failure detection -----------------------------------------------------

    fn on_heartbeat(&mut self, from: UniqueAddress, seq: u64) {
        let gone = self.gossip.tombstones.contains_key(&from)
            || self
                .gossip
                .member(&from)
                .is_some_and(|m| m.status == MemberStatus::Down);
        if gone && self.is_member() {
            self.send(
                from.address.clone(),
                Message::Quarantined {
                    from: self.self_node.clone(),
                    to: from,
                },
            );
            return;
        }
        self.send(
            from.address,
            Message::HeartbeatRsp {
                from: self.self_node.clone(),
                seq,
            },
        );
    }

    fn refresh_heartbeat_receivers(&mut self, now: Millis) {
        let monitored: BTreeSet<UniqueAddress> = self
            .gossip
            .members
            .values()
            .filter(|m| m.status != MemberStatus::Down)
            .map(|m| m.node.clone())
            .filter(|n| n != &self.self_node)
            .collect();
        let unreachable = self.gossip.reachability.all_unreachable();
        let mut receivers = heartbeat_receivers(
            &self.self_node,
            &monitored,
            &unreachable,
            self.settings.monitored_by_nr_of_members,
        );
        // Keep watching whatever this node itself marked unreachable, so it can clear it.
        for (observer, subject) in self.gossip.reachability.unreachable_pairs() {
            if observer == &self.self_node && monitored.contains(subject) {
                receivers.insert(subject.clone());
            }
        }
        self.monitor.set_receivers(&receivers, now);
    }

    fn send_heartbeats(&mut self, now: Millis) {
        self.monitor
            .start_overdue(now, self.settings.expected_response_after_ms);
        let receivers: Vec<UniqueAddress> = self.monitor.receivers().cloned().collect();
        for node in receivers {
            self.heartbeat_seq += 1;
            self.send(
                node.address,
                Message::Heartbeat {
                    from: self.self_node.clone(),
                    seq: self.heartbeat_seq,
                },
            );
        }
    }

    /// Turns detector verdicts into this node's reachability observations.
    fn reap_unreachable(&mut self, now: Millis) {
        let me = self.self_node.clone();
        let receivers: Vec<UniqueAddress> = self.monitor.receivers().cloned().collect();
        let mut newly_unreachable = Vec::new();
        let mut newly_reachable = Vec::new();
        for node in receivers {
            if !self.gossip.has_member(&node) {
                continue;
            }
            let available = self.monitor.is_available(&node, now);
            let marked = !self.gossip.reachability.is_reachable_by(&me, &node);
            if !available && !marked {
                newly_unreachable.push(node);
            } else if available && marked {
                newly_reachable.push(node);
            }
        }
        if newly_unreachable.is_empty() && newly_reachable.is_empty() {
            return;
        }
        self.change(now, |g, me| {
            for node in &newly_unreachable {
                g.reachability.mark_unreachable(me, node);
            }
            for node in &newly_reachable {
                g.reachability.mark_reachable(me, node);
            }
        });
    }

    // ----- leader ----------------------------------------------------------------

    fn min_nr_of_members_fulfilled(&self) -> bool {
        let counted: Vec<&Member> = self
            .gossip
            .members
            .values()
            .filter(|m| !matches!(m.status, MemberStatus::Down | MemberStatus::Exiting))
            .collect();
        counted.len() >= self.settings.min_nr_of_members
            && self
                .settings
                .min_nr_of_members_of_role
                .iter()
                .all(|(role, min)| counted.iter().filter(|m| m.has_role(role)).count() >= *min)
    }

    fn leader_actions(&mut self, now: Millis) {
        if self.leader().as_ref() != Some(&self.self_node) {
            self.not_converged_since = None;
            // Keep the resolver's bookkeeping current on every node, so a node that
            // becomes leader judges stability from the same history.
            let has_unreachable =
                sbr::decide(&self.gossip, &self.self_node, &self.settings.downing).is_some();
            self.stability
                .verdict(&self.settings.downing, has_unreachable, now);
            return;
        }
        if self.is_converged() {
            self.not_converged_since = None;
            self.leader_actions_on_convergence(now);
        } else {
            let since = *self.not_converged_since.get_or_insert(now);
            if let Some(after) = self.settings.weakly_up_after_ms {
                if now.saturating_sub(since) >= after {
                    self.move_joining_to_weakly_up(now);
                }
            }
        }
        self.resolve_split_brain(now);
    }

    fn leader_actions_on_convergence(&mut self, now: Millis) {
        let g = &self.gossip;
        let to_remove: Vec<UniqueAddress> = g
            .members
            .values()
            .filter(|m| matches!(m.status, MemberStatus::Down | MemberStatus::Exiting))
            .map(|m| m.node.clone())
            .collect();
        let move_up = self.min_nr_of_members_fulfilled();
        let to_up: Vec<UniqueAddress> = g
            .members
            .values()
            .filter(|m| {
                move_up && matches!(m.status, MemberStatus::Joining | MemberStatus::WeaklyUp)
            })
            .map(|m| m.node.clone())
            .collect();
        let to_exit: Vec<UniqueAddress> = g
            .members
            .values()
            .filter(|m| m.status == MemberStatus::Leaving)
            .map(|m| m.node.clone())
            .collect();
        if to_remove.is_empty() && to_up.is_empty() && to_exit.is_empty() {
            return;
        }
        let exiting_removed: Vec<UniqueAddress> = to_remove
            .iter()
            .filter(|n| {
                g.member(n)
                    .is_some_and(|m| m.status == MemberStatus::Exiting)
            })
            .cloned()
            .collect();
        self.change(now, |g, _| {
            let mut up_number = g.max_up_number();
            for node in &to_up {
                if let Some(m) = g.members.get_mut(node) {
                    up_number += 1;
                    m.status = MemberStatus::Up;
                    m.up_number = up_number;
                }
            }
            for node in &to_exit {
                if let Some(m) = g.members.get_mut(node) {
                    m.status = MemberStatus::Exiting;
                }
            }
            for node in &to_remove {
                g.remove_member(node, now);
            }
        });
        // Tell members that left that they are gone, so they can stop at once.
        for node in exiting_removed {
            if node != self.self_node {
                self.send(
                    node.address.clone(),
                    Message::Quarantined {
                        from: self.self_node.clone(),
                        to: node,
                    },
                );
            }
        }
    }

    /// How long a member may stay Joining before it concludes its cluster is gone:
    /// longer than WeaklyUp, a stable decision, down-all-when-unstable and a join retry
    /// together. `None` (never) when WeaklyUp is disabled, since then a blocked
    /// cluster legitimately keeps joiners waiting.
    fn stuck_joining_after(&self) -> Option<Millis> {
        let downing = &self.settings.downing;
        self.settings.weakly_up_after_ms.map(|weakly_up| {
            weakly_up
                + downing.stable_after_ms
                + downing
                    .down_all_when_unstable_ms
                    .unwrap_or(downing.stable_after_ms)
                + self.settings.retry_unsuccessful_join_after_ms
        })
    }

    fn move_joining_to_weakly_up(&mut self, now: Millis) {
        let to_weakly_up: Vec<UniqueAddress> = self
            .gossip
            .members
            .values()
            .filter(|m| {
                m.status == MemberStatus::Joining && self.gossip.reachability.is_reachable(&m.node)
            })
            .map(|m| m.node.clone())
            .collect();
        if to_weakly_up.is_empty() || !self.min_nr_of_members_fulfilled() {
            return;
        }
        self.change(now, |g, _| {
            for node in &to_weakly_up {
                if let Some(m) = g.members.get_mut(node) {
                    m.status = MemberStatus::WeaklyUp;
                }
            }
        });
    }

    fn resolve_split_brain(&mut self, now: Millis) {
        if !self.is_member() {
            return;
        }
        let window =
            self.settings.acceptable_heartbeat_pause_ms + 2 * self.settings.heartbeat_interval_ms;
        let monitor = &self.monitor;
        let monitored_by = self.settings.monitored_by_nr_of_members;
        let resolution = sbr::decide_with_evidence(
            &self.gossip,
            &self.self_node,
            &self.settings.downing,
            monitored_by,
            |n| monitor.answered_within(n, now, window),
        );
        let verdict = self
            .stability
            .verdict(&self.settings.downing, resolution.is_some(), now);
        let resolution = match (verdict, resolution) {
            (StabilityVerdict::Decide, Some(r)) if !r.to_down.contains(&self.self_node) => {
                match self.confirmed(r, now) {
                    Some(r) => r,
                    None => return,
                }
            }
            (StabilityVerdict::Decide, Some(r)) => r,
            (StabilityVerdict::DownAll, _) => sbr::Resolution {
                decision: sbr::Decision::DownAll,
                to_down: self
                    .gossip
                    .members
                    .values()
                    .filter(|m| !matches!(m.status, MemberStatus::Down | MemberStatus::Exiting))
                    .map(|m| m.node.clone())
                    .collect(),
                indirectly_connected: BTreeSet::new(),
            },
            _ => return,
        };
        self.pending_decision = None;
        self.stability.reset(now);
        self.outputs
            .push(Output::Event(ClusterEvent::ResolverDecision {
                decision: resolution.decision,
                downed: resolution.to_down.iter().cloned().collect(),
                indirectly_connected: resolution.indirectly_connected.iter().cloned().collect(),
            }));
        self.down_members(now, &resolution.to_down);
    }

    /// A decision that keeps this node is applied only once every Up member it counts
    /// on (that this node monitors) has answered a heartbeat sent after the decision.
    /// A partition that began just before the decision, too recently for the detector
    /// to have seen it, shows up as a member that never answers; the view then changes
    /// and the decision is taken again on the new view. (The simulator found the race,
    /// seed 9954: both sides kept themselves.)
    fn confirmed(&mut self, resolution: sbr::Resolution, now: Millis) -> Option<sbr::Resolution> {
        let stable_since = self.stability.stable_since_ms();
        let pending = match self.pending_decision.take() {
            Some(p)
                if p.stable_since == stable_since && p.resolution.to_down == resolution.to_down =>
            {
                p
            }
            _ => PendingDecision {
                decided_at: now,
                stable_since,
                resolution,
            },
        };
        let all_answered = self
            .gossip
            .members
            .values()
            .filter(|m| m.status == MemberStatus::Up && m.node != self.self_node)
            .filter(|m| !pending.resolution.to_down.contains(&m.node))
            .all(|m| self.monitor.answered_after(&m.node, pending.decided_at));
        if all_answered {
            Some(pending.resolution)
        } else {
            self.pending_decision = Some(pending);
            None
        }
    }

    fn down_members(&mut self, now: Millis, nodes: &BTreeSet<UniqueAddress>) {
        if nodes.is_empty() {
            return;
        }
        self.change(now, |g, _| {
            for node in nodes {
                if let Some(m) = g.members.get_mut(node) {
                    if m.status != MemberStatus::Down {
                        m.status = MemberStatus::Down;
                    }
                }
            }
        });
    }

    // ----- timers ----------------------------------------------------------------

    fn member_tick(&mut self, now: Millis) {
        if now >= self.timers.heartbeat {
            self.send_heartbeats(now);
            self.timers.heartbeat = now + self.settings.heartbeat_interval_ms;
        }
        if now >= self.timers.reaper {
            self.reap_unreachable(now);
            self.timers.reaper = now + self.settings.unreachable_nodes_reaper_interval_ms;
        }
        if !self.is_member() {
            return;
        }
        if now >= self.timers.leader {
            self.leader_actions(now);
            self.timers.leader = now + self.settings.leader_actions_interval_ms;
        }
        if !self.is_member() {
            return;
        }
        if now >= self.timers.gossip {
            self.gossip
                .prune_tombstones(now, self.settings.prune_gossip_tombstones_after_ms);
            self.gossip_round();
            // Speed up while fewer than half have seen the current state.
            let speed_up = self.gossip.seen.len() * 2 < self.gossip.members.len();
            let interval = if speed_up {
                self.settings.gossip_interval_ms / 3
            } else {
                self.settings.gossip_interval_ms
            };
            self.timers.gossip = now + interval.max(1);
        }
        if self.timers.exiting_deadline.is_some_and(|t| now >= t) {
            self.shut_down(ShutdownReason::Left);
        }
        if let (Some(since), Some(limit)) = (self.joining_since, self.stuck_joining_after()) {
            // WeaklyUp members already serve, so they get twice as long.
            let limit = if self.status() == Some(MemberStatus::WeaklyUp) {
                2 * limit
            } else {
                limit
            };
            if now.saturating_sub(since) > limit
                && self.min_nr_of_members_fulfilled()
                && !self.is_converged()
            {
                // No leader has moved this node Up in far longer than any decision
                // takes: the cluster it joined is gone (its Up members were all downed,
                // or its contacts downed themselves right after letting it in).
                // Restarting to join again costs little.
                self.shut_down(ShutdownReason::Rejoin);
                return;
            }
        }
        if self.timers.probe_seeds.is_some_and(|t| now >= t) {
            let outside = self.seeds_outside_cluster();
            if outside.is_empty() {
                self.timers.probe_seeds = None;
            } else {
                if self.leader().as_ref() == Some(&self.self_node) {
                    self.send_init_joins(&outside);
                }
                self.timers.probe_seeds = Some(now + self.settings.seed_node_timeout_ms);
            }
        }
    }

    // ----- state changes ---------------------------------------------------------

    /// Applies a local change: new version, seen only by this node, then events.
    fn change(&mut self, now: Millis, edit: impl FnOnce(&mut Gossip, &UniqueAddress)) {
        let old = self.gossip.clone();
        edit(&mut self.gossip, &self.self_node);
        if self.gossip == old {
            return;
        }
        self.gossip.bump(&self.self_node);
        self.after_change(&old, now);
    }

    /// Publishes events and reacts to this node's own status after any change.
    fn after_change(&mut self, old: &Gossip, now: Millis) {
        for event in diff(old, &self.gossip, &self.self_node) {
            self.outputs.push(Output::Event(event));
        }
        self.stability.observe(&self.gossip, now);
        self.refresh_heartbeat_receivers(now);
        match self.status() {
            None if old.has_member(&self.self_node) => {
                let reason = match old.member(&self.self_node).map(|m| m.status) {
                    Some(MemberStatus::Leaving | MemberStatus::Exiting) => ShutdownReason::Left,
                    _ => ShutdownReason::Removed,
                };
                self.shut_down(reason);
            }
            Some(MemberStatus::Down) => {
                // Tell the others before stopping, so a side that downed itself
                // learns it together.
                let peers: Vec<UniqueAddress> = self
                    .gossip
                    .members
                    .keys()
                    .filter(|n| {
                        *n != &self.self_node
                            && self.gossip.reachability.is_reachable_by(&self.self_node, n)
                    })
                    .cloned()
                    .collect();
                for peer in peers {
                    self.send_gossip(&peer);
                }
                self.shut_down(ShutdownReason::Downed);
            }
            Some(MemberStatus::Exiting) if self.timers.exiting_deadline.is_none() => {
                self.timers.exiting_deadline = Some(now + self.settings.exiting_timeout_ms);
            }
            _ => {}
        }
        if matches!(
            self.status(),
            Some(MemberStatus::Joining | MemberStatus::WeaklyUp)
        ) {
            self.joining_since.get_or_insert(now);
        } else {
            self.joining_since = None;
        }
        // While some seed address has no member in this cluster, the leader keeps
        // asking it whether another cluster exists there (see `on_init_join_ack`).
        if self.is_member()
            && self.timers.probe_seeds.is_none()
            && !self.seeds_outside_cluster().is_empty()
        {
            self.timers.probe_seeds = Some(now + self.settings.seed_node_timeout_ms);
        }
    }

    fn reason_for_removal(&self) -> ShutdownReason {
        match self.status() {
            Some(MemberStatus::Leaving | MemberStatus::Exiting) => ShutdownReason::Left,
            Some(MemberStatus::Down) => ShutdownReason::Downed,
            _ => ShutdownReason::Removed,
        }
    }

    fn shut_down(&mut self, reason: ShutdownReason) {
        if matches!(self.phase, Phase::Stopped(_)) {
            return;
        }
        self.phase = Phase::Stopped(reason);
        self.outputs
            .push(Output::Event(ClusterEvent::SelfShutdown { reason }));
        self.outputs.push(Output::Shutdown(reason));
    }

    fn send(&mut self, to: Address, message: Message) {
        self.outputs.push(Output::Send { to, message });
    }

    /// Phi per monitored node at `now`.
    pub fn phis(&self, now: Millis) -> BTreeMap<UniqueAddress, f64> {
        self.monitor.phis(now)
    }
}

/// Downs `node` with no wait for the detector or the resolver, for an incarnation
/// known to be gone from this cluster: `me` records it unreachable, so the leader
/// removes it at the next convergence.
fn down_at_once(g: &mut Gossip, me: &UniqueAddress, node: &UniqueAddress) {
    g.reachability.mark_unreachable(me, node);
    if let Some(m) = g.members.get_mut(node) {
        m.status = MemberStatus::Down;
    }
}
