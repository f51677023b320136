//! The simulated cluster behind the dashboard's simulated mode: the real membership core
//! on the simulator's network and clock, driven by a [`Scenario`].
//!
//! Time only moves when asked (`advance_to`). Every action is applied at the simulated
//! time it carries, after every message and timer due by then, so the run depends on
//! the scenario alone and never on how the page chops time into frames. What the page
//! must show comes out as a [`Feed`]: a node's stream opening with a snapshot when its
//! process starts, its events as they are raised, the stream closing when it dies, and
//! a note per action, in the order a real node's streams would deliver them.

use super::scenario::{Profile, Scenario, SimAction, SimMillis, Timed, MAX_NODES, MAX_TIME_MS};
use shared::api::{LinkKind, NodeAction, StreamMessage};
use shared::faults::{LOSS, SLOW_DELAY_MS, SLOW_JITTER_MS};
use shared::sim::{LinkCondition, Sim, SimConfig, Slot};
use shared::{ClusterEvent, Command, Settings};

/// How long "freeze" stops a node (ms), as in live mode.
pub const FREEZE_MS: SimMillis = crate::actions::FREEZE_MS;

/// The drain's marker for a stream closing (after every event of its slot).
const CLOSED: usize = usize::MAX;

/// One thing the page must show, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Feed {
    /// A message on the stream of the node at `slot` (a snapshot when it opens, then
    /// its events).
    Stream {
        /// The slot.
        slot: Slot,
        /// When it was sent (simulated time).
        at_ms: SimMillis,
        /// The message.
        message: Box<StreamMessage>,
    },
    /// The node at `slot` died: its stream closed.
    Closed {
        /// The slot.
        slot: Slot,
        /// When.
        at_ms: SimMillis,
    },
    /// An action was applied (or could not be), for the timeline.
    Note {
        /// When.
        at_ms: SimMillis,
        /// What happened.
        text: String,
    },
}

/// A scenario being run. A clone goes on exactly as the original (a checkpoint).
#[derive(Clone)]
pub struct SimCluster {
    scenario: Scenario,
    sim: Sim,
    /// Actions of the scenario applied so far.
    applied: usize,
    /// Slots started at least once (the first `started` slots).
    started: usize,
    /// Incarnations started per slot.
    starts: Vec<u32>,
    /// Per slot, how many of its events have been fed.
    fed: Vec<usize>,
    /// Per slot, whether its stream is open (its process runs), and since when.
    open: Vec<bool>,
    opened_at: Vec<SimMillis>,
    feed: Vec<Feed>,
}

/// The settings every simulated node uses.
pub fn settings(scenario: &Scenario) -> Settings {
    let mut settings = match scenario.profile {
        Profile::Demo => Settings::demo("globomantics"),
        Profile::Akka => Settings::akka_defaults("globomantics"),
    };
    settings.downing.strategy = scenario.strategy.clone();
    settings.monitored_by_nr_of_members = scenario.monitors;
    settings
}

impl SimCluster {
    /// The scenario's cluster at time 0: its first nodes started, its actions pending.
    pub fn new(scenario: Scenario) -> Self {
        let mut config = SimConfig::demo(MAX_NODES, scenario.seed);
        config.settings = settings(&scenario);
        config.seed_nodes = scenario.nodes.min(3);
        // One host, nodes told apart by port, as the demo runs them on one machine.
        config.host = "127.0.0.1".into();
        let mut cluster = SimCluster {
            sim: Sim::new(config),
            applied: 0,
            started: 0,
            starts: vec![0; MAX_NODES],
            fed: vec![0; MAX_NODES],
            open: vec![false; MAX_NODES],
            opened_at: vec![0; MAX_NODES],
            feed: Vec::new(),
            scenario,
        };
        for _ in 0..cluster.scenario.nodes {
            cluster.start_next();
        }
        cluster
    }

    /// The scenario as far as it is known (actions after `now` included).
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The simulator (read-only: views, events, faults).
    pub fn sim(&self) -> &Sim {
        &self.sim
    }

    /// Current simulated time.
    pub fn now(&self) -> SimMillis {
        self.sim.now
    }

    /// Slots started at least once.
    pub fn started(&self) -> usize {
        self.started
    }

    /// Incarnations started at `slot`.
    pub fn starts(&self, slot: Slot) -> u32 {
        self.starts[slot]
    }

    /// The time of the scenario's last action (0 without any).
    pub fn last_action_ms(&self) -> SimMillis {
        self.scenario.actions.last().map_or(0, |t| t.at_ms)
    }

    /// Runs until `to`, applying every scenario action due by then at its own time.
    pub fn advance_to(&mut self, to: SimMillis) {
        let to = to.min(MAX_TIME_MS);
        while let Some(next) = self.scenario.actions.get(self.applied).copied() {
            if next.at_ms > to {
                break;
            }
            self.run_until(next.at_ms);
            self.applied += 1;
            self.apply(next.action);
        }
        self.run_until(to);
    }

    /// Takes `action` now. Recorded actions later than now are dropped first: acting
    /// after a rewind starts a new branch of the run from there.
    pub fn act(&mut self, action: SimAction) -> Result<(), String> {
        let slots = self.started.min(MAX_NODES);
        let named: &[Slot] = match &action {
            SimAction::Node(_, s) => std::slice::from_ref(s),
            SimAction::Link(_, a, b) => &[*a, *b][..],
            SimAction::AddNode | SimAction::HealAll => &[],
        };
        if let Some(bad) = named.iter().find(|s| **s >= slots) {
            return Err(format!("slot {bad} has never run"));
        }
        if matches!(action, SimAction::Link(_, a, b) if a == b) {
            return Err("a link needs two different nodes".into());
        }
        self.scenario.actions.truncate(self.applied);
        self.scenario.actions.push(Timed {
            at_ms: self.sim.now,
            action,
        });
        self.applied += 1;
        self.apply(action);
        Ok(())
    }

    /// Takes over the actions of `scenario`, the same run's scenario as known now: a
    /// checkpoint taken before later actions were recorded replays them too. Its
    /// actions up to this cluster's time must be the ones it applied.
    pub fn adopt_actions(&mut self, scenario: &Scenario) {
        debug_assert_eq!(
            &scenario.actions[..self.applied],
            &self.scenario.actions[..self.applied]
        );
        self.scenario.actions = scenario.actions.clone();
    }

    /// What the page must show since the last call.
    pub fn take_feed(&mut self) -> Vec<Feed> {
        self.drain_events();
        std::mem::take(&mut self.feed)
    }

    fn run_until(&mut self, to: SimMillis) {
        if to > self.sim.now {
            self.sim.run_for(to - self.sim.now);
        }
        self.drain_events();
    }

    /// Moves every event raised since the last drain to the feed, in time order (then
    /// slot order), so the feed does not depend on where time was cut; then closes the
    /// stream of every node that stopped (killed, or shut down after a Down).
    fn drain_events(&mut self) {
        let mut fresh: Vec<(SimMillis, Slot, usize)> = Vec::new();
        for slot in 0..self.started {
            let events = self.sim.events(slot);
            for (index, (at, _)) in events.iter().enumerate().skip(self.fed[slot]) {
                fresh.push((*at, slot, index));
            }
            self.fed[slot] = events.len();
            if self.open[slot] && !self.sim.is_running(slot) {
                // It stopped with its last event (a shutdown), or now (a kill).
                self.open[slot] = false;
                let at = match events.last() {
                    Some((at, ClusterEvent::SelfShutdown { .. }))
                        if *at >= self.opened_at[slot] =>
                    {
                        *at
                    }
                    _ => self.sim.now,
                };
                fresh.push((at, slot, CLOSED));
            }
        }
        shared::sorting::sort(&mut fresh);
        for (at_ms, slot, index) in fresh {
            if index == CLOSED {
                self.feed.push(Feed::Closed { slot, at_ms });
                continue;
            }
            let event: ClusterEvent = self.sim.events(slot)[index].1.clone();
            let message = StreamMessage::Event {
                seq: index as u64 + 1,
                at_ms,
                event,
            };
            self.feed.push(Feed::Stream {
                slot,
                at_ms,
                message: Box::new(message),
            });
        }
    }

    fn note(&mut self, text: String) {
        let at_ms = self.sim.now;
        self.feed.push(Feed::Note { at_ms, text });
    }

    fn start_next(&mut self) {
        if self.started < MAX_NODES {
            self.started += 1;
            self.start(self.started - 1);
        }
    }

    /// Starts a new incarnation at `slot`; its stream opens with a snapshot.
    fn start(&mut self, slot: Slot) {
        self.drain_events();
        self.sim.start(slot);
        self.starts[slot] += 1;
        self.drain_events();
        if let Some(node) = self.sim.node(slot) {
            self.open[slot] = true;
            self.opened_at[slot] = self.sim.now;
            let seq = self.fed[slot] as u64;
            let message = StreamMessage::Snapshot {
                seq,
                snapshot: node.snapshot(),
            };
            let at_ms = self.sim.now;
            self.feed.push(Feed::Stream {
                slot,
                at_ms,
                message: Box::new(message),
            });
        }
    }

    fn apply(&mut self, action: SimAction) {
        self.drain_events();
        match action {
            SimAction::Node(action, slot) => self.node_action(action, slot),
            SimAction::Link(kind, a, b) => self.link_action(kind, a, b),
            SimAction::AddNode => {
                if self.started >= MAX_NODES {
                    self.note(format!("add node: all {MAX_NODES} slots are in use"));
                } else {
                    self.note(format!("add node n{}", self.started));
                    self.start_next();
                }
            }
            SimAction::HealAll => {
                self.note("heal all: every link healed, every paused node resumed".into());
                self.sim.heal_network();
                for slot in 0..self.started {
                    self.sim.unfreeze(slot);
                }
            }
        }
        self.drain_events();
    }

    fn node_action(&mut self, action: NodeAction, slot: Slot) {
        let name = format!("n{slot}");
        let running = self.sim.is_running(slot);
        let needs_process = !matches!(action, NodeAction::Partition | NodeAction::Heal);
        if needs_process && !running && action != NodeAction::Restart {
            self.note(format!("{} {name}: nothing runs there", action.name()));
            return;
        }
        match action {
            NodeAction::Kill => {
                self.note(format!("kill {name} (SIGKILL)"));
                self.sim.crash(slot);
                self.drain_events();
            }
            NodeAction::Pause => {
                self.note(format!("pause {name} (SIGSTOP)"));
                self.sim.freeze(slot, 2 * MAX_TIME_MS);
            }
            NodeAction::Freeze => {
                self.note(format!("freeze {name} for {} s", FREEZE_MS / 1000));
                self.sim.freeze(slot, FREEZE_MS);
            }
            NodeAction::Resume => {
                self.note(format!("resume {name} (SIGCONT)"));
                self.sim.unfreeze(slot);
            }
            NodeAction::Restart => {
                self.note(format!("restart {name}: a new incarnation"));
                if running {
                    self.sim.crash(slot);
                    self.drain_events();
                }
                self.start(slot);
            }
            NodeAction::Stop | NodeAction::Leave => {
                let result = self.sim.leave(slot);
                self.note(match result {
                    Ok(()) => format!("{name} leaves gracefully"),
                    Err(e) => format!("{name} cannot leave: {e}"),
                });
                self.drain_events();
            }
            NodeAction::Down => self.down(slot),
            NodeAction::Partition => {
                self.note(format!("partition {name} from every other node"));
                self.sim.isolate(slot);
            }
            NodeAction::Heal => {
                self.note(format!("heal every link of {name}"));
                for other in (0..self.started).filter(|o| *o != slot) {
                    self.sim.clear_link(slot, other);
                }
            }
        }
    }

    /// An operator's Down, given at the first running, unpaused member that sees the
    /// target, as the page does with a live node other than the target.
    fn down(&mut self, slot: Slot) {
        let target = self.sim.address(slot).clone();
        let taker = (0..self.started).find(|o| {
            *o != slot
                && !self.sim.is_frozen(*o)
                && self
                    .sim
                    .view(*o)
                    .is_some_and(|g| g.member_at(&target).is_some())
        });
        let Some(taker) = taker else {
            self.note(format!("down n{slot}: no running member sees it"));
            return;
        };
        let result = self.sim.command(taker, Command::Down(target));
        self.note(match result {
            Ok(()) => format!("down n{slot} (marked Down at n{taker})"),
            Err(e) => format!("down n{slot} at n{taker}: {e}"),
        });
    }

    fn link_action(&mut self, kind: LinkKind, a: Slot, b: Slot) {
        match kind {
            LinkKind::Cut => {
                self.note(format!("cut n{a} ⇎ n{b}"));
                self.sim.cut(a, b);
            }
            LinkKind::OneWay => {
                self.note(format!("cut n{a} → n{b} one way"));
                self.sim.cut_one_way(a, b);
            }
            LinkKind::Slow => {
                self.note(format!(
                    "slow n{a} ⇄ n{b} by {SLOW_DELAY_MS}±{SLOW_JITTER_MS} ms"
                ));
                self.sim.slow_link(a, b, SLOW_DELAY_MS, SLOW_JITTER_MS);
                self.sim.slow_link(b, a, SLOW_DELAY_MS, SLOW_JITTER_MS);
            }
            LinkKind::Lossy => {
                self.note(format!("drop {}% of n{a} ⇄ n{b}", (LOSS * 100.0).round()));
                self.sim.lossy_link(a, b, LOSS);
                self.sim.lossy_link(b, a, LOSS);
            }
            LinkKind::Heal => {
                self.note(format!("heal n{a} ⇄ n{b}"));
                self.sim.clear_link(a, b);
            }
        }
    }

    /// The faults on messages from `from` to `to`.
    pub fn link(&self, from: Slot, to: Slot) -> LinkCondition {
        self.sim.link_condition(from, to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::MemberStatus;

    fn statuses_seen_by(cluster: &SimCluster, observer: Slot) -> Vec<Option<MemberStatus>> {
        (0..cluster.started())
            .map(|s| cluster.sim().status_seen_by(observer, s))
            .collect()
    }

    fn event_log(cluster: &SimCluster) -> Vec<String> {
        (0..MAX_NODES)
            .flat_map(|slot| {
                cluster
                    .sim()
                    .events(slot)
                    .iter()
                    .map(move |(at, e)| format!("n{slot} {at} {e:?}"))
            })
            .collect()
    }

    #[test]
    fn three_nodes_come_up_and_a_killed_one_is_removed() {
        let mut cluster = SimCluster::new(Scenario::new(1, 3));
        cluster.advance_to(5_000);
        let up = Some(MemberStatus::Up);
        assert_eq!(statuses_seen_by(&cluster, 0), vec![up, up, up]);
        cluster.act(SimAction::Node(NodeAction::Kill, 2)).unwrap();
        let feed = cluster.take_feed();
        assert!(
            feed.iter()
                .any(|f| matches!(f, Feed::Closed { slot: 2, .. })),
            "{feed:?}"
        );
        cluster.advance_to(15_000);
        assert_eq!(statuses_seen_by(&cluster, 0), vec![up, up, None]);
    }

    #[test]
    fn a_partitioned_minority_downs_itself_and_its_stream_closes() {
        let mut cluster = SimCluster::new(Scenario::new(6, 5));
        cluster.advance_to(4_000);
        cluster.take_feed();
        cluster
            .act(SimAction::Node(NodeAction::Partition, 4))
            .unwrap();
        cluster.advance_to(20_000);
        let feed = cluster.take_feed();
        let closed: Vec<Slot> = feed
            .iter()
            .filter_map(|f| match f {
                Feed::Closed { slot, .. } => Some(*slot),
                _ => None,
            })
            .collect();
        assert_eq!(closed, [4], "only the cut-off node stopped");
        let up = Some(MemberStatus::Up);
        assert_eq!(&statuses_seen_by(&cluster, 0)[..4], [up, up, up, up]);
        assert_ne!(statuses_seen_by(&cluster, 0)[4], up);
    }

    #[test]
    fn every_stream_opens_with_a_snapshot_before_its_events() {
        let mut cluster = SimCluster::new(Scenario::new(2, 4));
        cluster.advance_to(3_000);
        let mut opened = [false; MAX_NODES];
        for item in cluster.take_feed() {
            if let Feed::Stream { slot, message, .. } = item {
                match *message {
                    StreamMessage::Snapshot { seq, .. } => {
                        assert_eq!(seq, 0);
                        opened[slot] = true;
                    }
                    _ => assert!(opened[slot], "an event of n{slot} before its snapshot"),
                }
            }
        }
        assert_eq!(opened.iter().filter(|o| **o).count(), 4);
    }

    #[test]
    fn the_run_does_not_depend_on_how_time_is_cut_into_frames() {
        let mut scenario = Scenario::new(3, 5);
        let mut coarse = SimCluster::new(scenario.clone());
        let mut fine = SimCluster::new(scenario.clone());
        let actions = [
            (2_000, SimAction::Node(NodeAction::Pause, 1)),
            (6_100, SimAction::Link(LinkKind::OneWay, 0, 2)),
            (9_050, SimAction::Node(NodeAction::Resume, 1)),
            (12_000, SimAction::AddNode),
        ];
        let mut t = 0;
        let mut fine_feed = Vec::new();
        for (at, action) in actions {
            while t + 37 < at {
                t += 37;
                fine.advance_to(t);
                fine_feed.extend(fine.take_feed());
            }
            t = at;
            fine.advance_to(at);
            fine.act(action).unwrap();
            scenario.actions.push(Timed { at_ms: at, action });
        }
        fine.advance_to(20_000);
        fine_feed.extend(fine.take_feed());
        assert_eq!(fine.scenario(), &scenario);
        let mut replayed = SimCluster::new(scenario);
        replayed.advance_to(20_000);
        coarse.advance_to(20_000);
        assert_eq!(event_log(&replayed), event_log(&fine));
        assert_eq!(replayed.take_feed(), fine_feed);
        assert_ne!(
            event_log(&coarse),
            event_log(&fine),
            "the actions changed the run"
        );
    }

    #[test]
    fn acting_after_a_rewind_drops_the_recorded_future() {
        let mut first = SimCluster::new(Scenario::new(4, 3));
        first.advance_to(3_000);
        first.act(SimAction::Node(NodeAction::Kill, 1)).unwrap();
        first.advance_to(8_000);
        first.act(SimAction::Node(NodeAction::Restart, 1)).unwrap();
        let mut rewound = SimCluster::new(first.scenario().clone());
        rewound.advance_to(5_000);
        assert_eq!(
            rewound.scenario().actions.len(),
            2,
            "replay keeps the future"
        );
        rewound.act(SimAction::Link(LinkKind::Cut, 0, 2)).unwrap();
        let kinds: Vec<SimAction> = rewound
            .scenario()
            .actions
            .iter()
            .map(|t| t.action)
            .collect();
        assert_eq!(
            kinds,
            [
                SimAction::Node(NodeAction::Kill, 1),
                SimAction::Link(LinkKind::Cut, 0, 2)
            ]
        );
        assert!(rewound.link(0, 2).cut && rewound.link(2, 0).cut);
    }

    #[test]
    fn an_action_on_a_slot_that_never_ran_is_refused_and_changes_nothing() {
        let mut cluster = SimCluster::new(Scenario::new(5, 3));
        assert!(cluster.act(SimAction::Node(NodeAction::Kill, 3)).is_err());
        assert!(cluster.act(SimAction::Link(LinkKind::Cut, 1, 1)).is_err());
        assert!(cluster.scenario().actions.is_empty());
        cluster.act(SimAction::AddNode).unwrap();
        cluster.act(SimAction::Node(NodeAction::Kill, 3)).unwrap();
    }
}
