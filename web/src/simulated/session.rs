//! One simulated run as the page plays it: the cluster, the playback (playing or
//! paused, speed, the horizon the scrubber reaches), and how what the cluster reports
//! lands in the page's model: the same views, timeline, process table and link table
//! that live mode fills from real nodes, so the same views draw both.
//!
//! Rewinding restores the latest checkpoint before the chosen moment (a copy of the
//! simulated cluster and of what the page showed, taken every few simulated seconds)
//! and replays the scenario from there, so the page shows exactly what it showed then
//! and a rewind costs a few seconds of simulation, not the whole run.

use super::cluster::{Feed, SimCluster};
use super::panel::SimPanel;
use super::scenario::{strategy_name, Scenario, SimAction, SimMillis, MAX_TIME_MS};
use crate::directory::{Directory, FaultRow, FaultsListing, LinkFaultState};
use crate::explain::DecisionLog;
use crate::model::Model;
use crate::timeline::{Level, Timeline};
use shared::api::{SlotState, SlotView};
use shared::sim::Slot;

/// Speeds the page offers (simulated time per real time).
pub const SPEEDS: [f64; 10] = [0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 500.0];
/// How far one step moves a paused run (ms).
pub const STEP_MS: SimMillis = 100;
/// The longest real frame counted (ms): a hidden tab's timers fire late, and a run
/// should not leap ahead when the visitor comes back.
pub const MAX_FRAME_MS: f64 = 250.0;
/// What the directory calls the simulator in place of a launcher.
pub const SIMULATOR: &str = "in-page simulator";

/// The HTTP address the page files the node at `slot` under (never contacted).
pub fn http_of(slot: Slot) -> String {
    format!("127.0.0.1:{}", 8551 + slot)
}

/// Simulated time between two checkpoints at first (ms).
pub const CHECKPOINT_MS: SimMillis = 10_000;
/// Most checkpoints held: beyond, every other one goes and the spacing doubles.
pub const MAX_CHECKPOINTS: usize = 48;

/// What the page showed of a run at one moment (the parts a run fills in).
#[derive(Clone)]
struct Page {
    views: std::collections::BTreeMap<String, crate::state::NodeView>,
    timeline: Timeline,
    decisions: DecisionLog,
    directory: Directory,
}

impl Page {
    fn of(model: &Model) -> Self {
        Page {
            views: model.views.clone(),
            timeline: model.timeline.clone(),
            decisions: model.decisions.clone(),
            directory: model.directory.clone(),
        }
    }

    fn restore(self, model: &mut Model) {
        model.views = self.views;
        model.timeline = self.timeline;
        model.decisions = self.decisions;
        model.directory = self.directory;
        model.tz_offset_min = 0;
        if let Some(tour) = &mut model.tour {
            tour.rebase();
        }
    }
}

/// The cluster and the page at one moment.
#[derive(Clone)]
struct Checkpoint {
    cluster: SimCluster,
    page: Page,
}

/// A run being played.
pub struct SimSession {
    cluster: SimCluster,
    playing: bool,
    speed: f64,
    horizon: SimMillis,
    /// Simulated time owed by earlier frames (fractions of a millisecond).
    carry: f64,
    /// Earlier moments to rewind to, oldest first.
    checkpoints: Vec<Checkpoint>,
    /// Their spacing now.
    checkpoint_every: SimMillis,
}

impl SimSession {
    /// Starts playing `scenario` from time 0, rebuilding the model's views.
    pub fn start(scenario: Scenario, model: &mut Model) -> Self {
        let last_action = scenario.actions.last().map_or(0, |t| t.at_ms);
        let horizon = last_action.max(scenario.at_ms);
        let mut session = SimSession {
            cluster: SimCluster::new(scenario),
            playing: true,
            speed: 1.0,
            horizon,
            carry: 0.0,
            checkpoints: Vec::new(),
            checkpoint_every: CHECKPOINT_MS,
        };
        reset(model);
        session.publish(model);
        session
    }

    /// The moment the scenario was shared at (where an opened link goes first).
    pub fn shared_at(&self) -> SimMillis {
        self.cluster.scenario().at_ms
    }

    /// The cluster.
    pub fn cluster(&self) -> &SimCluster {
        &self.cluster
    }

    /// One real frame of `real_ms` passed: a playing run moves on by that much times
    /// its speed.
    pub fn frame(&mut self, real_ms: f64, model: &mut Model) {
        if !self.playing {
            return;
        }
        let owed = real_ms.clamp(0.0, MAX_FRAME_MS) * self.speed + self.carry;
        let whole = owed.floor();
        self.carry = owed - whole;
        let to = self.cluster.now() + whole as SimMillis;
        self.cluster.advance_to(to);
        self.publish(model);
    }

    /// Moves a run on by [`STEP_MS`] and pauses it.
    pub fn step(&mut self, model: &mut Model) {
        self.playing = false;
        let to = self.cluster.now() + STEP_MS;
        self.cluster.advance_to(to);
        self.publish(model);
    }

    /// Plays or pauses.
    pub fn set_playing(&mut self, playing: bool, model: &mut Model) {
        self.playing = playing;
        self.carry = 0.0;
        self.publish(model);
    }

    /// Sets the speed (one of [`SPEEDS`]; anything else is refused).
    pub fn set_speed(&mut self, speed: f64, model: &mut Model) -> Result<(), String> {
        if !SPEEDS.contains(&speed) {
            return Err(format!("speed {speed} is not offered"));
        }
        self.speed = speed;
        self.publish(model);
        Ok(())
    }

    /// Goes to simulated time `to`: forward by running on, back by replaying the
    /// scenario from the start (recorded actions after `to` are kept, so scrubbing
    /// forward again replays them).
    pub fn seek(&mut self, to: SimMillis, model: &mut Model) {
        let to = to
            .min(self.horizon.max(self.cluster.now()))
            .min(MAX_TIME_MS);
        if to < self.cluster.now() {
            let scenario = self.cluster.scenario().clone();
            match self
                .checkpoints
                .iter()
                .rev()
                .find(|c| c.cluster.now() <= to)
            {
                Some(checkpoint) => {
                    let checkpoint = checkpoint.clone();
                    self.cluster = checkpoint.cluster;
                    self.cluster.adopt_actions(&scenario);
                    checkpoint.page.restore(model);
                }
                None => {
                    self.cluster = SimCluster::new(scenario);
                    reset(model);
                }
            }
        }
        self.cluster.advance_to(to);
        self.carry = 0.0;
        self.publish(model);
    }

    /// Checkpoints held (for tests and the bench).
    pub fn checkpoints(&self) -> usize {
        self.checkpoints.len()
    }

    /// Takes a checkpoint when one is due (the feed is drained: the page is current).
    fn checkpoint_if_due(&mut self, model: &Model) {
        let now = self.cluster.now();
        let last = self.checkpoints.last().map(|c| c.cluster.now());
        if last.is_some_and(|t| now < t + self.checkpoint_every) {
            return;
        }
        self.checkpoints.push(Checkpoint {
            cluster: self.cluster.clone(),
            page: Page::of(model),
        });
        if self.checkpoints.len() > MAX_CHECKPOINTS {
            let mut index = 0;
            self.checkpoints.retain(|_| {
                index += 1;
                index % 2 == 1
            });
            self.checkpoint_every *= 2;
        }
    }

    /// Takes an action now (dropping any recorded future: a new branch).
    pub fn act(&mut self, action: SimAction, model: &mut Model) -> Result<(), String> {
        self.cluster.act(action)?;
        let now = self.cluster.now();
        self.horizon = now;
        // Checkpoints later than now belong to the future this branch dropped.
        self.checkpoints.retain(|c| c.cluster.now() <= now);
        self.publish(model);
        Ok(())
    }

    /// The slot of the node at cluster address `cluster`.
    pub fn slot_of(&self, cluster: &str) -> Option<Slot> {
        (0..self.cluster.started()).find(|s| self.cluster.sim().address(*s).to_string() == cluster)
    }

    /// Feeds the model what the cluster reported, and refreshes the process table,
    /// the link table and the panel.
    fn publish(&mut self, model: &mut Model) {
        self.horizon = self.horizon.max(self.cluster.now());
        sync_directory(&self.cluster, &mut model.directory);
        for item in self.cluster.take_feed() {
            apply(model, item);
        }
        model.tick(self.cluster.now());
        model.monitored_by = self
            .cluster
            .sim()
            .config()
            .settings
            .monitored_by_nr_of_members;
        model.sim = Some(self.panel());
        model.advance_tour();
        self.checkpoint_if_due(model);
    }

    fn panel(&self) -> SimPanel {
        let mut scenario = self.cluster.scenario().clone();
        scenario.at_ms = self.cluster.now();
        SimPanel {
            playing: self.playing,
            speed: self.speed,
            now_ms: self.cluster.now(),
            horizon_ms: self.horizon,
            link: scenario.to_link(),
            seed: scenario.seed,
            nodes: scenario.nodes,
            profile: scenario.profile,
            strategy: strategy_name(&scenario.strategy),
            monitors: scenario.monitors,
            actions: scenario.actions.len(),
            violation: self.cluster.sim().violation().map(|v| v.to_string()),
        }
    }
}

/// Empties what the model learned from a run (views, timeline, addresses), keeping
/// what the visitor set (filters, the primary view, forms).
fn reset(model: &mut Model) {
    model.views.clear();
    model.timeline = Timeline::default();
    model.decisions = DecisionLog::default();
    if let Some(tour) = &mut model.tour {
        tour.rebase();
    }
    model.directory = Directory::new(SIMULATOR);
    model.now_ms = 0;
    model.tz_offset_min = 0;
}

fn apply(model: &mut Model, item: Feed) {
    match item {
        Feed::Stream {
            slot,
            at_ms,
            message,
        } => {
            model.now_ms = at_ms;
            model.on_stream(&http_of(slot), &message);
        }
        Feed::Closed { slot, at_ms } => {
            model.now_ms = at_ms;
            model.on_closed(&http_of(slot));
        }
        Feed::Note { at_ms, text } => {
            model.now_ms = at_ms;
            model.local("action", text, Level::Ok);
        }
    }
}

/// The process table and link faults, as a launcher and the nodes' fault tables
/// would report them.
fn sync_directory(cluster: &SimCluster, directory: &mut Directory) {
    let sim = cluster.sim();
    directory.launcher = Some(SIMULATOR.to_string());
    directory.demo = Some(true);
    let slots: Vec<SlotView> = (0..cluster.started())
        .map(|slot| {
            let state = if sim.is_frozen(slot) {
                SlotState::Paused
            } else if sim.is_running(slot) {
                SlotState::Running
            } else if sim.has_left(slot) {
                SlotState::Stopped
            } else {
                SlotState::Exited
            };
            SlotView {
                slot,
                cluster: sim.address(slot).to_string(),
                http: http_of(slot),
                pid: None,
                state,
                last_exit: None,
                starts: cluster.starts(slot),
            }
        })
        .collect();
    directory.learn_slots(slots);
    for a in 0..cluster.started() {
        let links = (0..cluster.started())
            .filter(|b| *b != a)
            .filter_map(|b| {
                let c = cluster.link(a, b);
                let fault = LinkFaultState {
                    cut_outbound: c.cut,
                    cut_inbound: false,
                    delay_ms: c.extra_delay_ms,
                    jitter_ms: c.extra_jitter_ms,
                    loss: c.loss,
                };
                (fault != LinkFaultState::default()).then(|| FaultRow {
                    peer: sim.address(b).to_string(),
                    fault,
                })
            })
            .collect();
        directory.learn_faults(&sim.address(a).to_string(), FaultsListing { links });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tour::{Step, Tour};
    use shared::api::{LinkKind, NodeAction};
    use shared::MemberStatus;

    fn model() -> Model {
        Model::new(SIMULATOR, 0)
    }

    fn play(session: &mut SimSession, model: &mut Model, real_ms: u64) {
        for _ in 0..real_ms / 50 {
            session.frame(50.0, model);
        }
    }

    fn act(session: &mut SimSession, m: &mut Model, action: SimAction) {
        session.act(action, m).expect("the action is taken");
    }

    fn timeline(model: &Model) -> Vec<(u64, String, String, String)> {
        model
            .timeline
            .entries()
            .map(|e| (e.at_ms, e.observer.clone(), e.kind.clone(), e.text.clone()))
            .collect()
    }

    fn status_in_primary(model: &Model, cluster: &str) -> Option<MemberStatus> {
        let view = model.primary_view()?;
        view.display_members()
            .into_iter()
            .find(|m| m.node.address.to_string() == cluster)
            .map(|m| m.status)
    }

    #[test]
    fn the_page_model_shows_the_simulated_nodes_as_it_shows_live_ones() {
        let mut m = model();
        let mut session = SimSession::start(Scenario::new(11, 3), &mut m);
        play(&mut session, &mut m, 4_000);
        assert_eq!(m.live().len(), 3, "three streams open");
        assert_eq!(m.nodes().len(), 3);
        for slot in 0..3 {
            let cluster = format!("127.0.0.1:{}", 2551 + slot);
            assert_eq!(status_in_primary(&m, &cluster), Some(MemberStatus::Up));
        }
        let panel = m.sim.clone().unwrap();
        assert_eq!(panel.now_ms, 4_000, "one simulated second per real second");
        act(&mut session, &mut m, SimAction::Node(NodeAction::Kill, 2));
        session.set_speed(5.0, &mut m).unwrap();
        play(&mut session, &mut m, 3_000);
        assert_eq!(m.live().len(), 2, "the killed node's stream closed");
        assert!(m.directory.is_blocked(&http_of(2)), "its slot shows exited");
        let kinds: Vec<String> = m.timeline.entries().map(|e| e.kind.clone()).collect();
        assert!(kinds.iter().any(|k| k == "unreachableMember"), "{kinds:?}");
        assert!(kinds.iter().any(|k| k == "memberRemoved"), "{kinds:?}");
        assert!(
            matches!(
                status_in_primary(&m, "127.0.0.1:2553"),
                None | Some(MemberStatus::Removed)
            ),
            "the killed node is gone from the views"
        );
    }

    #[test]
    fn link_faults_show_in_the_link_table() {
        let mut m = model();
        let mut session = SimSession::start(Scenario::new(12, 3), &mut m);
        act(
            &mut session,
            &mut m,
            SimAction::Link(LinkKind::OneWay, 0, 1),
        );
        assert_eq!(
            m.directory
                .link("127.0.0.1:2551", "127.0.0.1:2552")
                .label("n0", "n1"),
            "n0→n1 cut"
        );
        act(&mut session, &mut m, SimAction::Link(LinkKind::Slow, 1, 2));
        assert_eq!(
            m.directory
                .link("127.0.0.1:2553", "127.0.0.1:2552")
                .label("n2", "n1"),
            "slow +400 ms"
        );
        act(&mut session, &mut m, SimAction::HealAll);
        assert!(m
            .directory
            .link("127.0.0.1:2551", "127.0.0.1:2552")
            .is_healthy());
    }

    #[test]
    fn a_rewind_shows_exactly_what_the_page_showed_then() {
        let mut m = model();
        let mut session = SimSession::start(Scenario::new(13, 4), &mut m);
        play(&mut session, &mut m, 3_000);
        act(
            &mut session,
            &mut m,
            SimAction::Node(NodeAction::Partition, 3),
        );
        play(&mut session, &mut m, 2_000);
        let then = (timeline(&m), m.views.clone(), m.directory.clone());
        play(&mut session, &mut m, 6_000);
        assert_ne!(timeline(&m), then.0);
        session.seek(5_000, &mut m);
        assert_eq!(timeline(&m), then.0);
        assert_eq!(m.views, then.1);
        assert_eq!(m.directory, then.2);
        // Forward again: the recorded partition is replayed, so the horizon holds.
        session.seek(11_000, &mut m);
        assert_eq!(m.sim.as_ref().unwrap().horizon_ms, 11_000);
        assert_eq!(m.sim.as_ref().unwrap().actions, 1);
    }

    #[test]
    fn a_share_link_replays_the_same_run_event_for_event() {
        let mut m = model();
        let mut session = SimSession::start(Scenario::new(14, 5), &mut m);
        play(&mut session, &mut m, 2_500);
        act(&mut session, &mut m, SimAction::Node(NodeAction::Pause, 4));
        play(&mut session, &mut m, 1_750);
        act(&mut session, &mut m, SimAction::Link(LinkKind::Cut, 0, 1));
        session.set_speed(10.0, &mut m).unwrap();
        play(&mut session, &mut m, 1_000);
        act(&mut session, &mut m, SimAction::Node(NodeAction::Resume, 4));
        act(&mut session, &mut m, SimAction::AddNode);
        play(&mut session, &mut m, 1_000);
        let link = m.sim.as_ref().unwrap().link.clone();
        let end = m.sim.as_ref().unwrap().now_ms;
        assert!(link.contains(&format!(";at={end};")), "{link}");

        let mut other = model();
        let scenario = Scenario::from_link(&link).expect("the link reads");
        let mut opened = SimSession::start(scenario, &mut other);
        opened.seek(opened.shared_at(), &mut other);
        for slot in 0..6 {
            assert_eq!(
                opened.cluster().sim().events(slot),
                session.cluster().sim().events(slot),
                "n{slot}'s event log"
            );
        }
        assert_eq!(timeline(&other), timeline(&m));
        assert!(!timeline(&m).is_empty());
    }

    #[test]
    fn a_rewind_from_a_checkpoint_shows_what_a_fresh_replay_shows() {
        let mut m = model();
        let mut session = SimSession::start(Scenario::new(15, 5), &mut m);
        session.set_speed(20.0, &mut m).unwrap();
        play(&mut session, &mut m, 1_000);
        act(&mut session, &mut m, SimAction::Node(NodeAction::Kill, 4));
        play(&mut session, &mut m, 1_000);
        act(
            &mut session,
            &mut m,
            SimAction::Link(LinkKind::OneWay, 0, 1),
        );
        play(&mut session, &mut m, 3_000);
        assert!(session.checkpoints() >= 8, "{}", session.checkpoints());
        session.seek(47_300, &mut m);
        // Act after the rewind: a new branch, whose checkpoints must not leak the old one.
        act(
            &mut session,
            &mut m,
            SimAction::Node(NodeAction::Restart, 4),
        );
        play(&mut session, &mut m, 500);
        session.seek(52_000, &mut m);

        let mut fresh_model = model();
        let mut scenario = session.cluster().scenario().clone();
        scenario.at_ms = 52_000;
        let mut fresh = SimSession::start(scenario, &mut fresh_model);
        fresh.seek(52_000, &mut fresh_model);
        assert_eq!(timeline(&m), timeline(&fresh_model));
        assert_eq!(m.views, fresh_model.views);
        assert_eq!(m.directory, fresh_model.directory);
        for slot in 0..5 {
            assert_eq!(
                session.cluster().sim().events(slot),
                fresh.cluster().sim().events(slot)
            );
        }
    }

    fn tour_step(m: &Model) -> Step {
        m.tour.as_ref().expect("a tour").step
    }

    #[test]
    fn the_guided_tour_follows_a_kill_through_detection_and_decision_to_the_end() {
        let mut m = model();
        let mut session = SimSession::start(Scenario::new(21, 5), &mut m);
        play(&mut session, &mut m, 3_000);
        m.tour = Some(Tour::start(&m.timeline));
        m.advance_tour();
        assert_eq!(tour_step(&m), Step::Kill, "nothing happened yet");
        act(&mut session, &mut m, SimAction::Node(NodeAction::Kill, 4));
        assert_eq!(tour_step(&m), Step::Detection);
        let mut seen = vec![Step::Detection];
        for _ in 0..400 {
            session.frame(50.0, &mut m);
            if seen.last() != Some(&tour_step(&m)) {
                seen.push(tour_step(&m));
            }
        }
        // Steps done within one frame pass together (the removal can follow the Down).
        assert_eq!(seen.first(), Some(&Step::Detection), "{seen:?}");
        assert!(seen.contains(&Step::Decision), "{seen:?}");
        assert_eq!(seen.last(), Some(&Step::Done), "{seen:?}");
    }

    #[test]
    fn a_paused_node_is_not_the_kill_the_tour_asks_for() {
        let mut m = model();
        let mut session = SimSession::start(Scenario::new(22, 3), &mut m);
        m.tour = Some(Tour::start(&m.timeline));
        act(&mut session, &mut m, SimAction::Node(NodeAction::Pause, 2));
        assert_eq!(tour_step(&m), Step::Kill);
    }
}
