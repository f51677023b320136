//! A deterministic simulator: many membership cores, one simulated clock, an
//! in-process network that can drop, delay, duplicate, reorder and cut messages, and
//! nodes that can crash, freeze (a paused process) and restart as new incarnations.
//!
//! Everything is driven from one seeded generator and one event queue ordered by
//! (time, sequence), so a run replays exactly from its seed. Every message is encoded
//! and decoded with the real wire format, so frame limits and sizes are those of real
//! nodes, and bytes are counted per message kind. After every step an invariant
//! checker (see [`invariants`]) looks at every node's view.

pub mod invariants;
pub mod quorum;
pub mod schedule;

use crate::address::{Address, UniqueAddress};
use crate::events::{ClusterEvent, ShutdownReason};
use crate::gossip::Gossip;
use crate::link_form::{self, LinkEnds};
use crate::member::MemberStatus;
use crate::node::{Command, CommandError, Millis, Node, Output};
use crate::settings::Settings;
use crate::wire;
use invariants::{Checker, Violation};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fmt::Write as _;

/// Whether the diagnostics are compiled in (feature `diagnostics`, on by default): the
/// invariant checker and the trace of steps for failure reports. The dashboard's wasm
/// build leaves them out, for size and so that a long run in the page does not grow a
/// trace nobody reads; `check_invariants` then has no effect and `trace` stays empty.
const CHECKS: bool = cfg!(feature = "diagnostics");

/// Index of a node slot (a fixed address that incarnations come and go at).
pub type Slot = usize;

/// How a simulation is set up.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Settings every node uses.
    pub settings: Settings,
    /// Number of slots (addresses).
    pub nodes: usize,
    /// How many of the first slots are seeds (every node gets the same list).
    pub seed_nodes: usize,
    /// Seed of the simulation's generator.
    pub seed: u64,
    /// Roles per slot (missing: none).
    pub roles: BTreeMap<Slot, BTreeSet<String>>,
    /// Base one-way network latency (ms).
    pub base_latency_ms: Millis,
    /// Random extra latency up to this (ms); produces reordering.
    pub jitter_ms: Millis,
    /// Run the invariant checker after every step (with feature `diagnostics`).
    pub check_invariants: bool,
    /// The host every slot's address has (slots differ by port).
    pub host: String,
}

impl SimConfig {
    /// `nodes` nodes with the demo profile, three seeds, 1-3 ms latency.
    pub fn demo(nodes: usize, seed: u64) -> Self {
        SimConfig {
            settings: Settings::demo("sim"),
            nodes,
            seed_nodes: nodes.min(3),
            seed,
            roles: BTreeMap::new(),
            base_latency_ms: 1,
            jitter_ms: 2,
            check_invariants: true,
            host: "10.0.0.1".into(),
        }
    }
}

/// Per directed link faults.
#[derive(Clone, Debug, Default)]
struct LinkFaults {
    cut: bool,
    /// A cut link that rejects (a firewall's REJECT) rather than drops: the sender's
    /// connection is refused, as if nothing listened. Fake evidence of death.
    refuse: bool,
    extra_delay_ms: Millis,
    extra_jitter_ms: Millis,
    /// Chance that a message on this link is dropped.
    loss: f64,
}

/// The faults on one directed link, as [`Sim::link_condition`] reports them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinkCondition {
    /// Messages are not delivered.
    pub cut: bool,
    /// A cut that refuses connections rather than dropping them.
    pub refuse: bool,
    /// Added delay (ms).
    pub extra_delay_ms: Millis,
    /// Added random delay, up to (ms).
    pub extra_jitter_ms: Millis,
    /// Chance that a message is dropped.
    pub loss: f64,
}

#[derive(Clone, Debug, Default)]
struct Network {
    links: BTreeMap<(Slot, Slot), LinkFaults>,
    loss: f64,
    duplicate: f64,
    extra_jitter_ms: Millis,
}

/// When each fault last changed, so the checker can tell a member that has been
/// healthy and connected for a while from one whose trouble only just ended.
#[derive(Clone, Debug, Default)]
pub(crate) struct FaultTimes {
    /// Directed link -> last change of its faults.
    pub(crate) links: BTreeMap<(Slot, Slot), Millis>,
    /// Slot -> last start, crash, pause or resume there.
    pub(crate) slots: BTreeMap<Slot, Millis>,
    /// Last change of a network-wide fault (loss, duplication, jitter).
    pub(crate) network: Millis,
}

/// One slot: a fixed address, and the incarnation running there (if any).
#[derive(Clone)]
struct NodeSlot {
    address: Address,
    node: Option<Node>,
    frozen_until: Option<Millis>,
    /// The slot's host is off: with no process there, connections to it time out
    /// rather than being refused.
    host_down: bool,
    /// Frames that arrived while frozen, with the slot that sent each.
    backlog: Vec<(Slot, Vec<u8>)>,
    exit: Option<ShutdownReason>,
    left: bool,
    events: Vec<(Millis, ClusterEvent)>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Deliver {
        to: Slot,
        from: Slot,
        bytes: Vec<u8>,
    },
    Timer {
        slot: Slot,
    },
    Unfreeze {
        slot: Slot,
    },
    /// The transport of `to` found a connection to `address` refused.
    Refused {
        to: Slot,
        address: Address,
    },
}

/// Counts of what crossed the simulated network.
#[derive(Clone, Debug, Default)]
pub struct Traffic {
    /// Message kind -> (messages, bytes), for messages handed to the network.
    pub by_kind: BTreeMap<&'static str, (u64, u64)>,
    /// Writes: what one step of a node sends one peer, which the node's runtime puts
    /// in one write (and, on an encrypted link, one sealed message).
    pub writes: u64,
}

impl Traffic {
    /// Bytes of gossip (full and status) sent.
    pub fn gossip_bytes(&self) -> u64 {
        ["gossip", "gossip_status"]
            .iter()
            .filter_map(|k| self.by_kind.get(k))
            .map(|(_, b)| b)
            .sum()
    }

    /// Bytes of heartbeats (requests and responses) sent.
    pub fn heartbeat_bytes(&self) -> u64 {
        ["heartbeat", "heartbeat_rsp"]
            .iter()
            .filter_map(|k| self.by_kind.get(k))
            .map(|(_, b)| b)
            .sum()
    }

    /// Gossip rounds' messages (full and status) sent.
    pub fn gossip_messages(&self) -> u64 {
        ["gossip", "gossip_status"]
            .iter()
            .filter_map(|k| self.by_kind.get(k))
            .map(|(m, _)| m)
            .sum()
    }
}

/// The simulator. Cloning it copies the whole run (every node, the queue, the
/// generator), so a clone goes on exactly as the original would: a checkpoint.
#[derive(Clone)]
pub struct Sim {
    /// Current simulated time (ms).
    pub now: Millis,
    config: SimConfig,
    rng: SmallRng,
    slots: Vec<NodeSlot>,
    seeds: Vec<Address>,
    queue: BinaryHeap<Reverse<(Millis, u64, Event)>>,
    sequence: u64,
    network: Network,
    fault_times: FaultTimes,
    /// What crossed the network.
    pub traffic: Traffic,
    checker: Option<Checker>,
    /// Slots whose node ran (and so may have changed its view) since the last check:
    /// the checker looks again only at what they can have changed.
    dirty: BTreeSet<Slot>,
    /// Incarnations an operator downed by command: a manual decision the resolver
    /// does not own (Akka warns that downing across a partition can split a cluster).
    operator_downed: BTreeSet<UniqueAddress>,
    trace: Vec<String>,
    violation: Option<Violation>,
}

impl Sim {
    /// A simulation with `config.nodes` empty slots at `config.host:(2551 + slot)`.
    pub fn new(config: SimConfig) -> Sim {
        let slots: Vec<NodeSlot> = (0..config.nodes)
            .map(|i| NodeSlot {
                address: Address::new(config.host.clone(), 2551 + i as u16),
                node: None,
                frozen_until: None,
                host_down: false,
                backlog: Vec::new(),
                exit: None,
                left: false,
                events: Vec::new(),
            })
            .collect();
        let seeds = slots
            .iter()
            .take(config.seed_nodes)
            .map(|s| s.address.clone())
            .collect();
        Sim {
            now: 0,
            rng: SmallRng::seed_from_u64(config.seed),
            checker: (CHECKS && config.check_invariants).then(Checker::default),
            dirty: BTreeSet::new(),
            config,
            slots,
            seeds,
            queue: BinaryHeap::new(),
            sequence: 0,
            network: Network::default(),
            fault_times: FaultTimes::default(),
            traffic: Traffic::default(),
            operator_downed: BTreeSet::new(),
            trace: Vec::new(),
            violation: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no slots.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The address of a slot.
    pub fn address(&self, slot: Slot) -> &Address {
        &self.slots[slot].address
    }

    /// The incarnation currently running at `slot`.
    pub fn node(&self, slot: Slot) -> Option<&Node> {
        self.slots[slot].node.as_ref()
    }

    /// The unique address of the incarnation at `slot`.
    pub fn unique(&self, slot: Slot) -> Option<UniqueAddress> {
        self.node(slot).map(|n| n.self_node().clone())
    }

    /// The cluster state as `slot` sees it.
    pub fn view(&self, slot: Slot) -> Option<&Gossip> {
        self.node(slot)
            .filter(|n| n.is_member())
            .map(|n| n.gossip())
    }

    /// The status of `target`'s current incarnation in `observer`'s view.
    pub fn status_seen_by(&self, observer: Slot, target: Slot) -> Option<MemberStatus> {
        let target = self.unique(target)?;
        self.view(observer)?.member(&target).map(|m| m.status)
    }

    /// Events raised at `slot` (all incarnations), with their times.
    pub fn events(&self, slot: Slot) -> &[(Millis, ClusterEvent)] {
        &self.slots[slot].events
    }

    /// Why the last incarnation at `slot` stopped, if it did.
    pub fn exit_reason(&self, slot: Slot) -> Option<ShutdownReason> {
        self.slots[slot].exit
    }

    /// Whether a node runs at `slot` (frozen counts as running).
    pub fn is_running(&self, slot: Slot) -> bool {
        self.slots[slot].node.is_some()
    }

    /// Whether the node at `slot` is frozen.
    pub fn is_frozen(&self, slot: Slot) -> bool {
        self.slots[slot].frozen_until.is_some()
    }

    /// Whether the slot's node left gracefully (and should not be restarted).
    pub fn has_left(&self, slot: Slot) -> bool {
        self.slots[slot].left
    }

    /// The steps taken so far (faults and commands), for failure reports.
    pub fn trace(&self) -> &[String] {
        &self.trace
    }

    /// Whether an operator downed this incarnation by command.
    pub fn operator_downed(&self, node: &UniqueAddress) -> bool {
        self.operator_downed.contains(node)
    }

    /// The first invariant violation, if any.
    pub fn violation(&self) -> Option<&Violation> {
        self.violation.as_ref()
    }

    /// Adds a line to the step trace. `step` runs only when the trace is kept
    /// (feature `diagnostics`): without it, as in the page, no line is formatted, and
    /// the formatting code is left out of the build.
    fn note(&mut self, step: impl FnOnce() -> String) {
        if !CHECKS {
            return;
        }
        let line = format!("t={:>7}ms {}", self.now, step());
        self.trace.push(line);
    }

    fn push(&mut self, at: Millis, event: Event) {
        self.sequence += 1;
        self.queue.push(Reverse((at, self.sequence, event)));
    }

    // ----- node life cycle -------------------------------------------------------

    /// Starts a new incarnation at `slot` (a fresh uid), joining through the seeds.
    pub fn start(&mut self, slot: Slot) {
        let uid = self.rng.random::<u64>();
        let rng_seed = self.rng.random::<u64>();
        let roles = self.config.roles.get(&slot).cloned().unwrap_or_default();
        let me = UniqueAddress::new(self.slots[slot].address.clone(), uid);
        let node = Node::new(
            me,
            roles,
            self.seeds.clone(),
            self.config.settings.clone(),
            rng_seed,
            self.now,
        );
        let s = &mut self.slots[slot];
        s.node = Some(node);
        s.frozen_until = None;
        s.host_down = false;
        s.backlog.clear();
        s.exit = None;
        s.left = false;
        if let Some(checker) = self.checker.as_mut().filter(|_| CHECKS) {
            checker.forget_view(slot);
        }
        self.slot_changed(slot);
        self.note(|| format!("start n{slot} (uid {uid})"));
        self.after_node(slot);
    }

    /// Starts a node at `slot` from a known cluster state (large simulated clusters).
    pub fn start_with_state(&mut self, slot: Slot, me: UniqueAddress, gossip: Gossip) {
        let rng_seed = self.rng.random::<u64>();
        let node = Node::with_state(me, gossip, self.config.settings.clone(), rng_seed, self.now);
        self.slots[slot].node = Some(node);
        self.after_node(slot);
    }

    /// Starts every slot.
    pub fn start_all(&mut self) {
        for slot in 0..self.slots.len() {
            self.start(slot);
        }
    }

    /// Kills the node at `slot` (like SIGKILL): in-flight messages to it are lost,
    /// and its host's kernel refuses connections to its address from then on.
    pub fn crash(&mut self, slot: Slot) {
        self.note(|| format!("crash n{slot}"));
        self.slot_changed(slot);
        let s = &mut self.slots[slot];
        s.node = None;
        s.frozen_until = None;
        s.backlog.clear();
    }

    /// Turns off the host of `slot`: its node dies and nothing answers there, not even
    /// with a refusal (connections time out), as when a machine or a VM is lost.
    pub fn power_off(&mut self, slot: Slot) {
        self.crash(slot);
        self.note(|| format!("n{slot}'s host is off"));
        self.slots[slot].host_down = true;
    }

    /// Pauses the node at `slot` for `duration` (like SIGSTOP then SIGCONT):
    /// messages to it wait, its timers do not fire.
    pub fn freeze(&mut self, slot: Slot, duration: Millis) {
        if self.slots[slot].node.is_none() {
            return;
        }
        self.note(|| format!("freeze n{slot} for {duration}ms"));
        self.slot_changed(slot);
        let until = self.now + duration;
        let current = self.slots[slot].frozen_until.unwrap_or(0);
        self.slots[slot].frozen_until = Some(until.max(current));
        self.push(until, Event::Unfreeze { slot });
    }

    /// Resumes a frozen node now.
    pub fn unfreeze(&mut self, slot: Slot) {
        if self.slots[slot].frozen_until.take().is_some() {
            self.note(|| format!("resume n{slot}"));
            self.slot_changed(slot);
            let backlog = std::mem::take(&mut self.slots[slot].backlog);
            for (from, bytes) in backlog {
                self.deliver_now(slot, from, bytes);
            }
            self.after_node(slot);
        }
    }

    /// Applies a command at `slot` (leave, down, join) as an operator would.
    /// A frozen node cannot take commands (its process is stopped); they fail.
    pub fn command(&mut self, slot: Slot, command: Command) -> Result<(), CommandError> {
        if self.is_frozen(slot) {
            self.note(|| format!("command at n{slot} not taken (frozen): {command:?}"));
            return Err(CommandError::Stopped);
        }
        self.note(|| format!("command at n{slot}: {command:?}"));
        if let Command::Down(address) = &command {
            if let Some(target) = self.view(slot).and_then(|g| g.member_at(address)) {
                self.operator_downed.insert(target.node.clone());
            }
        }
        let now = self.now;
        let result = match self.slots[slot].node.as_mut() {
            Some(node) => node.handle_command(now, command),
            None => Err(CommandError::Stopped),
        };
        self.after_node(slot);
        // Checked now, not at the end of the next step: a lone leader that leaves
        // moves itself on to Exiting at its next tick, and the checker must see the
        // Leaving in between (seed 9800017314).
        self.check();
        result
    }

    /// The node at `slot` leaves gracefully (what SIGTERM does).
    pub fn leave(&mut self, slot: Slot) -> Result<(), CommandError> {
        let address = self.slots[slot].address.clone();
        self.command(slot, Command::Leave(address))
    }

    // ----- network faults ----------------------------------------------------------

    fn link(&mut self, from: Slot, to: Slot) -> &mut LinkFaults {
        self.fault_times.links.insert((from, to), self.now);
        self.network.links.entry((from, to)).or_default()
    }

    fn slot_changed(&mut self, slot: Slot) {
        self.fault_times.slots.insert(slot, self.now);
    }

    /// Whether `slot` runs, unpaused, and nothing happened to it for `quiet_ms`.
    pub(crate) fn settled(&self, slot: Slot, quiet_ms: Millis) -> bool {
        let since = |t: Option<&Millis>| t.is_none_or(|t| self.now.saturating_sub(*t) >= quiet_ms);
        self.is_running(slot) && !self.is_frozen(slot) && since(self.fault_times.slots.get(&slot))
    }

    /// Whether messages both ways between `a` and `b` pass unhindered (no cut, no
    /// added delay, no network-wide loss) and have for `quiet_ms`.
    pub(crate) fn link_clear(&self, a: Slot, b: Slot, quiet_ms: Millis) -> bool {
        let quiet = |t: Millis| self.now.saturating_sub(t) >= quiet_ms;
        let network_clear = self.network.loss == 0.0 && quiet(self.fault_times.network);
        network_clear
            && [(a, b), (b, a)].iter().all(|key| {
                let faults = self.network.links.get(key);
                faults.is_none_or(|f| !f.cut && f.extra_delay_ms == 0 && f.loss == 0.0)
                    && self.fault_times.links.get(key).is_none_or(|t| quiet(*t))
            })
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut(&mut self, a: Slot, b: Slot) {
        self.note(|| format!("cut n{a} <-> n{b}"));
        self.link(a, b).cut = true;
        self.link(b, a).cut = true;
    }

    /// Cuts only messages from `from` to `to`.
    pub fn cut_one_way(&mut self, from: Slot, to: Slot) {
        self.note(|| format!("cut n{from} -> n{to}"));
        self.link(from, to).cut = true;
    }

    /// Restores both directions between `a` and `b`.
    pub fn heal_link(&mut self, a: Slot, b: Slot) {
        self.note(|| format!("heal n{a} <-> n{b}"));
        for (from, to) in [(a, b), (b, a)] {
            let link = self.link(from, to);
            link.cut = false;
            link.refuse = false;
        }
    }

    /// Removes every fault from both directions between `a` and `b`: cuts, refusals,
    /// added delay and loss (the dashboard's "heal" of one link).
    pub fn clear_link(&mut self, a: Slot, b: Slot) {
        self.note(|| format!("clear n{a} <-> n{b}"));
        for (from, to) in [(a, b), (b, a)] {
            *self.link(from, to) = LinkFaults::default();
        }
    }

    /// Drops each message from `from` to `to` with probability `p`.
    pub fn lossy_link(&mut self, from: Slot, to: Slot, p: f64) {
        self.note(|| format!("loss {p:.2} on n{from} -> n{to}"));
        self.link(from, to).loss = p;
    }

    /// The faults on messages from `from` to `to`, as set (network-wide ones apart).
    pub fn link_condition(&self, from: Slot, to: Slot) -> LinkCondition {
        let faults = self
            .network
            .links
            .get(&(from, to))
            .cloned()
            .unwrap_or_default();
        LinkCondition {
            cut: faults.cut,
            refuse: faults.refuse,
            extra_delay_ms: faults.extra_delay_ms,
            extra_jitter_ms: faults.extra_jitter_ms,
            loss: faults.loss,
        }
    }

    /// Splits the nodes into `side` and the rest.
    pub fn partition(&mut self, side: &[Slot]) {
        self.note(|| format!("partition {side:?} | rest"));
        for a in 0..self.slots.len() {
            for b in 0..self.slots.len() {
                if side.contains(&a) != side.contains(&b) {
                    self.link(a, b).cut = true;
                }
            }
        }
    }

    /// Cuts `slot` off from everyone.
    pub fn isolate(&mut self, slot: Slot) {
        self.partition(&[slot]);
    }

    /// Splits the nodes into `side` and the rest with links that reject: every
    /// connection across is refused, so each side holds (fake) evidence that the
    /// other side's processes are gone.
    pub fn refusing_partition(&mut self, side: &[Slot]) {
        self.note(|| format!("refusing partition {side:?} | rest"));
        for a in 0..self.slots.len() {
            for b in 0..self.slots.len() {
                if side.contains(&a) != side.contains(&b) {
                    let link = self.link(a, b);
                    link.cut = true;
                    link.refuse = true;
                }
            }
        }
    }

    /// Adds `delay` (plus up to `jitter`) to messages from `from` to `to`.
    pub fn slow_link(&mut self, from: Slot, to: Slot, delay: Millis, jitter: Millis) {
        self.note(|| format!("slow n{from} -> n{to} by {delay}+{jitter}ms"));
        let link = self.link(from, to);
        link.extra_delay_ms = delay;
        link.extra_jitter_ms = jitter;
    }

    /// Drops each message to or from `slot` with probability `p` (a lossy member).
    pub fn lossy_member(&mut self, slot: Slot, p: f64) {
        self.note(|| format!("loss {p:.2} on n{slot}'s links"));
        for other in 0..self.slots.len() {
            if other != slot {
                self.link(slot, other).loss = p;
                self.link(other, slot).loss = p;
            }
        }
    }

    /// Drops each message with probability `p`.
    pub fn set_loss(&mut self, p: f64) {
        self.fault_times.network = self.now;
        self.note(|| format!("loss {p:.2}"));
        self.network.loss = p;
    }

    /// Duplicates each message with probability `p`.
    pub fn set_duplicate(&mut self, p: f64) {
        self.fault_times.network = self.now;
        self.note(|| format!("duplicate {p:.2}"));
        self.network.duplicate = p;
    }

    /// Adds up to `jitter` ms of random delay to every message (reordering).
    pub fn set_reorder(&mut self, jitter: Millis) {
        self.fault_times.network = self.now;
        self.note(|| format!("reorder jitter {jitter}ms"));
        self.network.extra_jitter_ms = jitter;
    }

    /// Removes every network fault.
    pub fn heal_network(&mut self) {
        self.fault_times.network = self.now;
        self.note(|| "heal network".to_string());
        self.network = Network::default();
    }

    // ----- running -----------------------------------------------------------------

    fn slot_at(&self, address: &Address) -> Option<Slot> {
        self.slots.iter().position(|s| &s.address == address)
    }

    fn route(&mut self, from: Slot, to: Address, message: wire::Message) {
        let bytes = match link_form::encode(&message) {
            Ok(bytes) => bytes,
            Err(e) => {
                self.note(|| format!("n{from} could not encode {}: {e}", message.kind()));
                return;
            }
        };
        let entry = self.traffic.by_kind.entry(message.kind()).or_default();
        entry.0 += 1;
        entry.1 += bytes.len() as u64;
        let Some(to) = self.slot_at(&to) else { return };
        let link = self
            .network
            .links
            .get(&(from, to))
            .cloned()
            .unwrap_or_default();
        if link.cut && link.refuse {
            self.refuse(from, to);
            return;
        }
        let lost = |rng: &mut SmallRng, p: f64| p > 0.0 && rng.random_bool(p.min(1.0));
        if link.cut || lost(&mut self.rng, self.network.loss) || lost(&mut self.rng, link.loss) {
            return;
        }
        let copies = if self.network.duplicate > 0.0
            && self.rng.random_bool(self.network.duplicate.min(1.0))
        {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let jitter =
                self.config.jitter_ms + self.network.extra_jitter_ms + link.extra_jitter_ms;
            let delay = self.config.base_latency_ms
                + link.extra_delay_ms
                + if jitter > 0 {
                    self.rng.random_range(0..=jitter)
                } else {
                    0
                };
            let at = self.now + delay;
            self.push(
                at,
                Event::Deliver {
                    to,
                    from,
                    bytes: bytes.clone(),
                },
            );
        }
    }

    /// Tells `from` (after a round trip) that its connection to `to` was refused.
    fn refuse(&mut self, from: Slot, to: Slot) {
        let at = self.now + 2 * self.config.base_latency_ms;
        let address = self.slots[to].address.clone();
        self.push(at, Event::Refused { to: from, address });
    }

    /// Hands `slot`'s node a frame from `from`, decoded as its transport would: the
    /// link's ends are the two slots' addresses.
    fn deliver_now(&mut self, slot: Slot, from: Slot, bytes: Vec<u8>) {
        let now = self.now;
        if self.slots[slot].node.is_none() {
            return;
        }
        let ends = LinkEnds {
            sender: &self.slots[from].address,
            receiver: &self.slots[slot].address,
        };
        match link_form::decode(&bytes, ends) {
            Ok(message) => {
                if let Some(node) = self.slots[slot].node.as_mut() {
                    node.handle_message(now, message);
                }
            }
            Err(e) => {
                self.note(|| format!("n{slot} refused a frame: {e}"));
            }
        }
    }

    /// Collects a node's outputs and schedules its next timer.
    fn after_node(&mut self, slot: Slot) {
        self.dirty.insert(slot);
        let Some(node) = self.slots[slot].node.as_mut() else {
            return;
        };
        let outputs = node.take_outputs();
        let deadline = node.next_deadline();
        let now = self.now;
        let mut written = BTreeSet::new();
        for output in outputs {
            match output {
                Output::Send { to, message } => {
                    if written.insert(to.clone()) {
                        self.traffic.writes += 1;
                    }
                    self.route(slot, to, message)
                }
                Output::Event(event) => {
                    let line = CHECKS.then(|| self.describe_event(&event)).flatten();
                    if let Some(line) = line {
                        self.note(|| format!("n{slot}: {line}"));
                    }
                    let verdict = match (&self.checker, &self.violation) {
                        (Some(checker), None) if CHECKS => {
                            checker.check_decision(self, slot, &event)
                        }
                        _ => Ok(()),
                    };
                    if let Err(v) = verdict {
                        self.note(|| format!("VIOLATION: {v}"));
                        self.violation = Some(v);
                    }
                    self.slots[slot].events.push((now, event));
                }
                Output::Shutdown(reason) => {
                    self.note(|| format!("n{slot} stopped: {reason:?}"));
                    let s = &mut self.slots[slot];
                    s.exit = Some(reason);
                    s.left = reason == ShutdownReason::Left;
                    s.node = None;
                    s.frozen_until = None;
                    s.backlog.clear();
                }
            }
        }
        if self.slots[slot].node.is_some() {
            if let Some(at) = deadline {
                self.push(at.max(now), Event::Timer { slot });
            }
        }
    }

    /// Processes the next event if it is due by `until`. Returns false when idle.
    pub fn step(&mut self, until: Millis) -> bool {
        let Some(Reverse((at, _, _))) = self.queue.peek() else {
            return false;
        };
        if *at > until {
            return false;
        }
        let Reverse((at, _, event)) = self.queue.pop().expect("peeked");
        self.now = self.now.max(at);
        match event {
            Event::Deliver { to, from, bytes } => {
                if self.slots[to].node.is_none() {
                    if !self.slots[to].host_down {
                        self.refuse(from, to);
                    }
                    return true;
                }
                if self.slots[to].frozen_until.is_some() {
                    self.slots[to].backlog.push((from, bytes));
                    return true;
                }
                self.deliver_now(to, from, bytes);
                self.after_node(to);
            }
            Event::Timer { slot } => {
                let s = &mut self.slots[slot];
                // Stale entries (the deadline moved later) are skipped; an overdue
                // deadline (set before the node became a member) runs now.
                let due = s.node.as_ref().and_then(|n| n.next_deadline());
                if s.frozen_until.is_some() || due.is_none_or(|d| d > at) {
                    return true;
                }
                let now = self.now;
                if let Some(node) = s.node.as_mut() {
                    node.tick(now);
                }
                self.after_node(slot);
            }
            Event::Unfreeze { slot } => {
                if self.slots[slot].frozen_until.is_some_and(|t| t <= self.now) {
                    self.unfreeze(slot);
                }
            }
            Event::Refused { to, address } => {
                // A paused process learns nothing until it runs again; losing the
                // evidence is always safe.
                let now = self.now;
                let s = &mut self.slots[to];
                if s.frozen_until.is_some() {
                    return true;
                }
                let Some(node) = s.node.as_mut() else {
                    return true;
                };
                node.peer_refused(now, &address);
                self.after_node(to);
            }
        }
        self.check();
        true
    }

    fn check(&mut self) {
        if self.violation.is_some() {
            return;
        }
        if self.dirty.is_empty() {
            return;
        }
        let dirty = std::mem::take(&mut self.dirty);
        if let Some(mut checker) = self.checker.take().filter(|_| CHECKS) {
            if let Err(v) = checker.check_step(self, &dirty) {
                self.note(|| format!("VIOLATION: {v}"));
                self.violation = Some(v);
            }
            self.checker = Some(checker);
        }
    }

    /// Runs for `duration` of simulated time.
    pub fn run_for(&mut self, duration: Millis) {
        let until = self.now + duration;
        while self.step(until) {}
        self.now = self.now.max(until);
    }

    /// Runs until `done` holds (checked after every step) or `limit` ms pass.
    /// Returns the time it took, or `None` on timeout.
    pub fn run_until(
        &mut self,
        limit: Millis,
        mut done: impl FnMut(&Sim) -> bool,
    ) -> Option<Millis> {
        let start = self.now;
        let until = start + limit;
        loop {
            if done(self) {
                return Some(self.now - start);
            }
            if !self.step(until) {
                self.now = self.now.max(until);
                return if done(self) {
                    Some(self.now - start)
                } else {
                    None
                };
            }
        }
    }

    // ----- queries used by tests and invariants ------------------------------------------

    /// Running members (frozen included) whose own view has them as members.
    pub fn running_members(&self) -> Vec<Slot> {
        (0..self.slots.len())
            .filter(|s| self.view(*s).is_some())
            .collect()
    }

    /// Whether every slot in `slots` runs, sees every other one Up, and has converged.
    pub fn all_up(&self, slots: &[Slot]) -> bool {
        slots.iter().all(|observer| {
            self.node(*observer).is_some_and(|n| n.is_converged())
                && slots
                    .iter()
                    .all(|target| self.status_seen_by(*observer, *target) == Some(MemberStatus::Up))
        })
    }

    /// Whether every running member has the same membership (incarnations and
    /// statuses), nothing unreachable, convergence, and the same leader.
    pub fn converged_as_one(&self) -> bool {
        let members = self.running_members();
        let Some(first) = members.first() else {
            return false;
        };
        let reference = self.view(*first).expect("member");
        let leader = self.node(*first).and_then(|n| n.leader());
        members.iter().all(|slot| {
            let node = self.node(*slot).expect("running");
            let view = node.gossip();
            node.is_converged()
                && view.reachability.is_all_reachable()
                && view.members == reference.members
                && node.leader() == leader
        })
    }

    fn short(&self, node: &UniqueAddress) -> String {
        match self.slot_at(&node.address) {
            Some(slot) => format!("n{slot}#{:04}", node.uid % 10_000),
            None => node.to_string(),
        }
    }

    /// The events worth a line in the trace: decisions and reachability.
    fn describe_event(&self, event: &ClusterEvent) -> Option<String> {
        let list = |nodes: &[UniqueAddress]| {
            nodes
                .iter()
                .map(|n| self.short(n))
                .collect::<Vec<_>>()
                .join(",")
        };
        Some(match event {
            ClusterEvent::ResolverDecision {
                decision,
                downed,
                indirectly_connected,
                ..
            } => format!(
                "resolver {decision:?} downs [{}] (indirect [{}])",
                list(downed),
                list(indirectly_connected)
            ),
            ClusterEvent::UnreachableMember {
                member,
                observed_by,
            } => {
                format!(
                    "sees {} unreachable (by {})",
                    self.short(&member.node),
                    list(observed_by)
                )
            }
            ClusterEvent::ReachableMember { member } => {
                format!("sees {} reachable", self.short(&member.node))
            }
            ClusterEvent::MemberDowned { member } => {
                format!("sees {} Down", self.short(&member.node))
            }
            ClusterEvent::MemberLeft { member } => {
                format!("sees {} Leaving", self.short(&member.node))
            }
            ClusterEvent::MemberExited { member } => {
                format!("sees {} Exiting", self.short(&member.node))
            }
            _ => return None,
        })
    }

    /// A one-line summary of every view (for failure reports).
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (i, s) in self.slots.iter().enumerate() {
            let _ = write!(out, "n{i}: ");
            match &s.node {
                None => {
                    let _ = writeln!(out, "not running (exit {:?})", s.exit);
                }
                Some(node) => {
                    let g = node.gossip();
                    let members: Vec<String> = g
                        .members
                        .values()
                        .map(|m| {
                            let slot = self
                                .slot_at(&m.node.address)
                                .map_or("?".into(), |x| x.to_string());
                            let unreachable = if g.reachability.is_reachable(&m.node) {
                                ""
                            } else {
                                "!"
                            };
                            format!(
                                "n{slot}#{:04}:{:?}{unreachable}",
                                m.node.uid % 10_000,
                                m.status
                            )
                        })
                        .collect();
                    let _ = writeln!(
                        out,
                        "{}{} converged={} leader={:?} [{}]",
                        if s.frozen_until.is_some() {
                            "FROZEN "
                        } else {
                            ""
                        },
                        node.self_node().uid % 10_000,
                        node.is_converged(),
                        node.leader().map(|l| l.address.port - 2551),
                        members.join(", ")
                    );
                }
            }
        }
        out
    }
}
