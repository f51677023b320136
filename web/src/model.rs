//! The whole page's state and the reducers the browser code calls: connection news,
//! stream messages, launcher polls, action results and form input all land here, and
//! the view functions only read it.
//!
//! It also answers the questions the browser code must ask before talking to the
//! cluster: which nodes are live, which one to send a request to now that the node the
//! page came from may be dead, which nodes serve the API, which view is the primary.

use crate::directory::Directory;
use crate::explain::DecisionLog;
use crate::loadgen_stats::{LoadStats, Pacer, RoundRobin, XorShift, USERS};
use crate::simulated::panel::SimPanel;
use crate::simulated::scenario::SimDraft;
use crate::state::{Applied, NodeView, REMOVED_KEEP_MS};
use crate::timeline::{Filter, Level, Timeline, LOCAL};
use crate::tour::{Sight, Tour};
use shared::api::{
    DashboardInfo, HistoryResponse, LauncherPolicy, RecommendationsResponse, SlotView,
    StreamMessage, VideosPage,
};
use shared::settings::Settings;
use shared::{Address, MemberStatus};
use std::collections::{BTreeMap, BTreeSet};

/// The recommendations panel's inputs and answers.
#[derive(Clone, Debug, PartialEq)]
pub struct RecPanel {
    /// The user id as typed.
    pub user: String,
    /// The last recommendations.
    pub result: Option<RecommendationsResponse>,
    /// The last history.
    pub history: Option<HistoryResponse>,
    /// The last error (empty: none).
    pub error: String,
    /// Video search text.
    pub query: String,
    /// Video search genre.
    pub genre: String,
    /// Video search page, from 1.
    pub page: u32,
    /// The last search answer.
    pub videos: Option<VideosPage>,
    /// What the last "watched" did.
    pub watch_note: String,
}

impl Default for RecPanel {
    fn default() -> Self {
        RecPanel {
            user: "1".into(),
            result: None,
            history: None,
            error: String::new(),
            query: String::new(),
            genre: String::new(),
            page: 1,
            videos: None,
            watch_note: String::new(),
        }
    }
}

impl RecPanel {
    /// The user id, if the input holds a positive number.
    pub fn user_id(&self) -> Result<u32, String> {
        match self.user.trim().parse::<u32>() {
            Ok(id) if id > 0 => Ok(id),
            _ => Err(format!(
                "`{}` is not a user id (1 to 943)",
                self.user.trim()
            )),
        }
    }
}

/// The load generator's settings and arithmetic.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadPanel {
    /// Requests per second.
    pub rate: u32,
    /// Whether it runs.
    pub running: bool,
    /// Statistics.
    pub stats: LoadStats,
    /// Rate to whole requests per tick.
    pub pacer: Pacer,
    /// Target choice.
    pub targets: RoundRobin,
    /// User choice.
    pub rng: XorShift,
    /// Requests sent and not yet answered.
    pub in_flight: u32,
    /// Requests not sent because too many were in flight.
    pub skipped: u64,
}

impl Default for LoadPanel {
    fn default() -> Self {
        LoadPanel {
            rate: 20,
            running: false,
            stats: LoadStats::default(),
            pacer: Pacer::default(),
            targets: RoundRobin::default(),
            rng: XorShift::new(0),
            in_flight: 0,
            skipped: 0,
        }
    }
}

/// One node the controls offer, live or dead.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeRow {
    /// Cluster address.
    pub cluster: String,
    /// HTTP address, when known.
    pub http: Option<String>,
    /// Its launcher slot.
    pub slot: Option<SlotView>,
    /// Its status in the primary view.
    pub status: Option<MemberStatus>,
    /// Whether the page's WebSocket to it is open.
    pub connected: bool,
}

/// Everything on the page.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// Addresses, slots and link faults.
    pub directory: Directory,
    /// One view per HTTP address streamed from.
    pub views: BTreeMap<String, NodeView>,
    /// Events, faults and action results.
    pub timeline: Timeline,
    /// The timeline's filter.
    pub filter: Filter,
    /// Keep the timeline scrolled to the newest entry.
    pub autoscroll: bool,
    /// The view the user picked as primary (HTTP address).
    pub primary: Option<String>,
    /// Bearer token for mutating calls when not in demo mode.
    pub token: String,
    /// The clock as of the last tick (ms since the epoch).
    pub now_ms: u64,
    /// The browser's time zone, minutes east of UTC.
    pub tz_offset_min: i64,
    /// Recommendations panel.
    pub rec: RecPanel,
    /// Load generator.
    pub load: LoadPanel,
    /// Why `/api/dashboard` failed, while it does.
    pub info_error: Option<String>,
    /// The highest user id in the catalogue (the load generator picks users up to it).
    pub max_user_id: u32,
    /// The launcher's rules, as last polled (`None` without a launcher, or before the
    /// first answer).
    pub policy: Option<LauncherPolicy>,
    /// The last position of the launcher's visitor journal shown.
    pub journal_seq: u64,
    /// The simulated run, in simulated mode (`None`: live nodes).
    pub sim: Option<SimPanel>,
    /// The simulated mode's new-run form.
    pub sim_draft: SimDraft,
    /// Every node's resolver decisions and shutdowns, for their explanations.
    pub decisions: DecisionLog,
    /// How many members each node monitors on the heartbeat ring (Akka's
    /// `monitored-by-nr-of-members`), for drawing the ring.
    pub monitored_by: usize,
    /// Draw the heartbeat ring over the topology.
    pub show_ring: bool,
    /// The guided tour, while a visitor follows it.
    pub tour: Option<Tour>,
}

/// First reconnection delay (ms).
pub const BACKOFF_START_MS: u32 = 250;
/// Longest reconnection delay (ms).
pub const BACKOFF_MAX_MS: u32 = 5_000;

/// Delay before reconnection attempt number `failures` (from 1): 250 ms doubling up to
/// 5 s.
pub fn backoff_ms(failures: u32) -> u32 {
    let doublings = failures.saturating_sub(1).min(16);
    BACKOFF_START_MS
        .saturating_mul(1 << doublings)
        .min(BACKOFF_MAX_MS)
}

/// Sort key putting `host:port` texts in address order.
fn address_key(text: &str) -> (Option<Address>, String) {
    (text.parse::<Address>().ok(), text.to_string())
}

impl Model {
    /// A page loaded from `seed` (`location.host`) at `now_ms`.
    pub fn new(seed: impl Into<String>, now_ms: u64) -> Self {
        Model {
            directory: Directory::new(seed),
            views: BTreeMap::new(),
            timeline: Timeline::default(),
            filter: Filter::default(),
            autoscroll: true,
            primary: None,
            token: String::new(),
            now_ms,
            tz_offset_min: 0,
            rec: RecPanel::default(),
            load: LoadPanel {
                rng: XorShift::new(now_ms),
                ..LoadPanel::default()
            },
            info_error: None,
            max_user_id: USERS,
            policy: None,
            journal_seq: 0,
            sim: None,
            sim_draft: SimDraft::default(),
            decisions: DecisionLog::default(),
            monitored_by: Settings::demo("").monitored_by_nr_of_members,
            show_ring: false,
            tour: None,
        }
    }

    /// Moves the guided tour on past whatever the page now shows done.
    pub fn advance_tour(&mut self) {
        if let Some(mut tour) = self.tour.take() {
            tour.advance(&Sight {
                timeline: &self.timeline,
                slots: &self.directory.slots,
                converged: self
                    .primary_view()
                    .is_some_and(|v| v.converged == Some(true)),
            });
            self.tour = Some(tour);
        }
    }

    /// Adds a dashboard entry (action results, connections).
    pub fn local(&mut self, kind: &str, text: impl Into<String>, level: Level) {
        self.timeline.push(self.now_ms, LOCAL, kind, text, level);
    }

    /// A `/api/dashboard` answer.
    pub fn on_info(&mut self, info: &DashboardInfo, from_origin: bool) {
        self.directory.learn_info(info, from_origin);
        if info.max_user_id > 0 {
            self.max_user_id = info.max_user_id;
        }
        if let Some(n) = info.monitored_by {
            self.monitored_by = n;
        }
        if from_origin {
            self.info_error = None;
        }
    }

    /// The launcher's slots.
    pub fn on_slots(&mut self, slots: Vec<SlotView>) {
        self.directory.learn_slots(slots);
    }

    /// What other visitors did through the launcher, into this page's timeline (this
    /// page's own actions are already there, from their answers).
    pub fn on_journal(&mut self, journal: shared::api::VisitorJournal) {
        for action in journal.actions {
            self.journal_seq = self.journal_seq.max(action.seq);
            if action.visitor == journal.you {
                continue;
            }
            let (verdict, level) = if action.ok {
                ("ok", Level::Ok)
            } else {
                ("refused", Level::Error)
            };
            let text = format!(
                "{}: {}: {verdict} ({})",
                action.visitor, action.action, action.outcome
            );
            self.timeline
                .push(action.at_ms, action.visitor.clone(), "visitor", text, level);
        }
    }

    /// The launcher's rules.
    pub fn on_policy(&mut self, policy: LauncherPolicy) {
        self.policy = Some(policy);
    }

    /// Whether the launcher runs a public demo (its rules apply to this page).
    pub fn is_public(&self) -> bool {
        self.policy.as_ref().is_some_and(|p| p.public)
    }

    /// Whether the launcher counts `slot` as impaired now (public mode).
    pub fn is_impaired(&self, slot: usize) -> bool {
        self.is_public()
            && self
                .policy
                .as_ref()
                .is_some_and(|p| p.impaired.contains(&slot))
    }

    /// The public demo's rules in one line, for the banner.
    pub fn policy_banner(&self) -> Option<String> {
        let p = self.policy.as_ref().filter(|p| p.public)?;
        let nodes = if p.max_impaired == 1 { "node" } else { "nodes" };
        let mut text = format!(
            "Public demo: faults heal after {} s; at most {} {nodes} may be impaired at once; {} actions per minute",
            p.fault_ttl_secs, p.max_impaired, p.actions_per_minute
        );
        if !p.impaired.is_empty() {
            let list: Vec<String> = p.impaired.iter().map(|s| format!("n{s}")).collect();
            text.push_str(&format!(" · impaired now: {}", list.join(", ")));
        }
        Some(text)
    }

    /// Whether the page may call the nodes' fault endpoints itself (freeze, lossy
    /// links, and any action the launcher cannot relay): without a launcher (with the
    /// token if the nodes want one), or when the nodes run in demo mode. Never in
    /// public mode, where only the launcher holds the nodes' token.
    pub fn direct_faults_allowed(&self) -> bool {
        !self.is_public()
            && (self.directory.launcher.is_none() || self.directory.demo == Some(true))
    }

    /// Whether `stop` is offered: always, except to visitors of a public demo (the
    /// launcher answers 403 without the operator token).
    pub fn stop_allowed(&self) -> bool {
        !self.is_public() || !self.token.trim().is_empty()
    }

    /// The token to send on calls that take one: whatever the token field holds.
    pub fn bearer(&self) -> Option<String> {
        let token = self.token.trim();
        (!token.is_empty()).then(|| token.to_string())
    }

    /// A message on the stream from `http`.
    pub fn on_stream(&mut self, http: &str, message: &StreamMessage) -> Applied {
        let view = self
            .views
            .entry(http.to_string())
            .or_insert_with(|| NodeView::new(http));
        let opened = !view.connected;
        view.connected = true;
        let applied = view.apply(message);
        let observer = view.observer().unwrap_or_else(|| http.to_string());
        match applied {
            Applied::Snapshot => {
                // What `/api/dashboard` said wins over the address a stream happened to
                // use (the page's host, behind a port mapping).
                self.directory.learn_if_unknown(&observer, http);
                if opened {
                    let (seq, members) = (view.seq.unwrap_or(0), view.members.len());
                    self.timeline.push(
                        self.now_ms,
                        LOCAL,
                        "connection",
                        format!(
                            "stream from {observer} open: snapshot at #{seq}, {members} members"
                        ),
                        Level::Info,
                    );
                }
            }
            Applied::Event | Applied::Fault => {
                if let StreamMessage::Event { at_ms, event, .. } = message {
                    self.decisions.record(&observer, *at_ms, event);
                }
                self.timeline.push_stream(&observer, message)
            }
            Applied::Stale | Applied::NoSnapshot => {}
        }
        applied
    }

    /// The stream from `http` closed (or never opened).
    pub fn on_closed(&mut self, http: &str) {
        if !self.wants(http) {
            // Dropped on purpose (another address of the same node is streamed).
            self.views.remove(http);
            return;
        }
        if let Some(view) = self.views.get_mut(http) {
            if view.connected {
                view.connected = false;
                let who = view.observer().unwrap_or_else(|| http.to_string());
                self.timeline.push(
                    self.now_ms,
                    LOCAL,
                    "connection",
                    if self.sim.is_some() {
                        format!("stream from {who} closed: its process stopped")
                    } else {
                        format!("stream from {who} closed; reconnecting")
                    },
                    Level::Warn,
                );
            }
        }
    }

    /// The clock moved on: ages out removed members.
    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
        for view in self.views.values_mut() {
            view.prune_removed(now_ms, REMOVED_KEEP_MS);
        }
    }

    /// Whether the page should (still) stream from `http`.
    pub fn wants(&self, http: &str) -> bool {
        self.directory.targets().contains(http)
    }

    /// Whether the node at `http` answers: its stream is open and the launcher does not
    /// say it is paused or gone.
    pub fn is_live(&self, http: &str) -> bool {
        self.views.get(http).is_some_and(|v| v.connected) && !self.directory.is_blocked(http)
    }

    /// Live HTTP addresses, the origin first.
    pub fn live(&self) -> Vec<String> {
        let mut live: Vec<String> = self
            .views
            .keys()
            .filter(|h| self.is_live(h))
            .cloned()
            .collect();
        if let Some(origin) = &self.directory.origin {
            if let Some(i) = live.iter().position(|h| h == origin) {
                let o = live.remove(i);
                live.insert(0, o);
            }
        }
        live
    }

    /// Where to send a request now: the origin while it is live, else any live node,
    /// else the origin (or the page's host) in hope.
    pub fn request_base(&self) -> String {
        self.live().into_iter().next().unwrap_or_else(|| {
            self.directory
                .origin
                .clone()
                .unwrap_or_else(|| self.directory.seed.clone())
        })
    }

    /// A live node other than `not` (cluster address) if there is one, else any.
    pub fn live_other_than(&self, not: &str) -> Option<String> {
        let live = self.live();
        live.iter()
            .find(|h| self.directory.cluster_of(h) != Some(not))
            .or(live.first())
            .cloned()
    }

    /// Live nodes serving the service API (role `api` in the primary view, or roles
    /// unknown), for the load generator and the recommendations panel.
    pub fn api_targets(&self) -> Vec<String> {
        let primary = self.primary_view();
        self.live()
            .into_iter()
            .filter(|http| !self.directory.is_blocked(http))
            .filter(|http| {
                let member = self.directory.cluster_of(http).and_then(|c| {
                    primary.and_then(|v| v.members().find(|m| m.node.address.to_string() == c))
                });
                // As the primary view shows it: an api member, Up and reachable.
                member.is_none_or(|m| {
                    m.has_role("api")
                        && m.status == MemberStatus::Up
                        && primary.is_none_or(|v| v.is_reachable(&m.node))
                })
            })
            .collect()
    }

    /// The HTTP address of the primary view.
    pub fn primary_http(&self) -> Option<String> {
        let usable = |h: &String| {
            self.views
                .get(h)
                .is_some_and(|v| v.connected && v.has_snapshot() && v.shutdown.is_none())
        };
        if let Some(p) = self.primary.as_ref().filter(|p| usable(p)) {
            return Some(p.clone());
        }
        let mut candidates: Vec<&String> = self.views.keys().collect();
        if let Some(origin) = &self.directory.origin {
            shared::sorting::sort_by_key(&mut candidates, |h| *h != origin);
        }
        candidates
            .iter()
            .find(|h| usable(h))
            .or_else(|| {
                candidates
                    .iter()
                    .find(|h| self.views.get(**h).is_some_and(NodeView::has_snapshot))
            })
            .map(|h| (*h).clone())
    }

    /// The primary view: the one picked, else a live one (the origin's first).
    pub fn primary_view(&self) -> Option<&NodeView> {
        self.primary_http().and_then(|h| self.views.get(&h))
    }

    /// Whether the page's stream to the node at cluster address `cluster` is open.
    pub fn connected_to(&self, cluster: &str) -> bool {
        self.directory
            .http_of(cluster)
            .and_then(|h| self.views.get(h))
            .is_some_and(|v| v.connected && v.observer().as_deref() == Some(cluster))
    }

    /// Every node worth a row of controls: launcher slots (dead ones too), every
    /// observer, and every member any view shows that is not Removed; address order.
    pub fn nodes(&self) -> Vec<NodeRow> {
        let mut all: BTreeSet<String> = self
            .directory
            .slots
            .iter()
            .map(|s| s.cluster.clone())
            .collect();
        for view in self.views.values() {
            all.extend(view.observer());
            all.extend(
                view.members()
                    .filter(|m| m.status != MemberStatus::Removed)
                    .map(|m| m.node.address.to_string()),
            );
        }
        let primary = self.primary_view();
        let mut rows: Vec<NodeRow> = all
            .into_iter()
            .map(|cluster| NodeRow {
                http: self.directory.http_of(&cluster).map(str::to_string),
                slot: self.directory.slot_of(&cluster).cloned(),
                status: primary.and_then(|v| {
                    v.display_members()
                        .into_iter()
                        .find(|m| m.node.address.to_string() == cluster)
                        .map(|m| m.status)
                }),
                connected: self.connected_to(&cluster),
                cluster,
            })
            .collect();
        shared::sorting::sort_by_key(&mut rows, |r| address_key(&r.cluster));
        rows
    }

    /// Every pair of nodes (address order within and across pairs), for link controls.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let nodes: Vec<String> = self.nodes().into_iter().map(|r| r.cluster).collect();
        let mut pairs = Vec::new();
        for (i, a) in nodes.iter().enumerate() {
            for b in &nodes[i + 1..] {
                pairs.push((a.clone(), b.clone()));
            }
        }
        pairs
    }

    /// Members some view shows whose HTTP address nobody told us yet.
    pub fn unknown_members(&self) -> Vec<String> {
        let mut unknown: BTreeSet<String> = BTreeSet::new();
        for view in self.views.values() {
            for m in view.members() {
                let addr = m.node.address.to_string();
                if m.status != MemberStatus::Removed && self.directory.http_of(&addr).is_none() {
                    unknown.insert(addr);
                }
            }
        }
        unknown.into_iter().collect()
    }

    /// Whether mutating calls need a token (not in demo mode).
    pub fn needs_token(&self) -> bool {
        self.directory.demo == Some(false)
    }

    /// The resolver's stable-after to assume until a snapshot reveals it: the demo
    /// profile's in demo mode, Akka's otherwise.
    pub fn default_stable_after_ms(&self) -> u64 {
        let settings = if self.directory.demo == Some(false) {
            Settings::akka_defaults("")
        } else {
            Settings::demo("")
        };
        settings.downing.stable_after_ms
    }

    /// The observers the timeline filter offers.
    pub fn filter_nodes(&self) -> Vec<String> {
        let mut nodes: Vec<String> = self.timeline.observers().into_iter().collect();
        shared::sorting::sort_by_key(&mut nodes, |n| address_key(n));
        nodes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::{event, member, node, snapshot, three_up};
    use shared::api::{PeerHttp, SlotState};
    use shared::events::ClusterEvent;

    #[test]
    fn the_load_generator_draws_users_from_the_catalogue_the_node_reports() {
        let mut m = Model::new("127.0.0.1:8551", 1_000);
        assert_eq!(
            m.max_user_id, USERS,
            "MovieLens until a node says otherwise"
        );
        m.on_info(
            &DashboardInfo {
                max_user_id: 200,
                monitored_by: None,
                ..info()
            },
            true,
        );
        assert_eq!(m.max_user_id, 200);
        m.on_info(&info(), false);
        assert_eq!(
            m.max_user_id, 200,
            "a node that does not say keeps the range"
        );
    }

    fn info() -> DashboardInfo {
        DashboardInfo {
            self_node: "127.0.0.1:2551".into(),
            http: "127.0.0.1:8551".into(),
            roles: vec!["api".into(), "worker".into()],
            demo: true,
            launcher: Some("127.0.0.1:8550".into()),
            peers: vec![PeerHttp {
                node: "127.0.0.1:2552".into(),
                http: "127.0.0.1:8552".into(),
            }],
            max_user_id: 0,
            monitored_by: None,
        }
    }

    fn slots(states: [SlotState; 3]) -> Vec<SlotView> {
        states
            .into_iter()
            .enumerate()
            .map(|(i, state)| SlotView {
                slot: i,
                cluster: format!("127.0.0.1:{}", 2551 + i),
                http: format!("127.0.0.1:{}", 8551 + i),
                pid: Some(100 + i as u32),
                state,
                last_exit: None,
                starts: 1,
            })
            .collect()
    }

    /// A page connected to the three demo nodes, each with a snapshot of three Up.
    fn connected_page() -> Model {
        let mut m = Model::new("127.0.0.1:8551", 1_000);
        m.on_info(&info(), true);
        m.on_slots(slots([
            SlotState::Running,
            SlotState::Running,
            SlotState::Running,
        ]));
        for (i, port) in [2551, 2552, 2553].into_iter().enumerate() {
            m.on_stream(
                &format!("127.0.0.1:{}", 8551 + i),
                &snapshot(5, port, &three_up()),
            );
        }
        m
    }

    #[test]
    fn every_node_gets_its_own_view_and_the_origin_is_primary() {
        let m = connected_page();
        assert_eq!(m.views.len(), 3);
        assert_eq!(m.primary_http().as_deref(), Some("127.0.0.1:8551"));
        assert_eq!(m.live().len(), 3);
        assert!(m.connected_to("127.0.0.1:2553"));
        let opened = m
            .timeline
            .entries()
            .filter(|e| e.kind == "connection")
            .count();
        assert_eq!(opened, 3, "each stream opening is told once");
    }

    #[test]
    fn during_a_partition_each_observer_keeps_its_own_view() {
        let mut m = connected_page();
        let cut_off = ClusterEvent::UnreachableMember {
            member: member(2553, MemberStatus::Up, 3),
            observed_by: vec![node(2551), node(2552)],
        };
        m.on_stream("127.0.0.1:8551", &event(6, 2_000, cut_off.clone()));
        m.on_stream("127.0.0.1:8552", &event(6, 2_000, cut_off));
        let both = ClusterEvent::UnreachableMember {
            member: member(2551, MemberStatus::Up, 1),
            observed_by: vec![node(2553)],
        };
        m.on_stream("127.0.0.1:8553", &event(6, 2_000, both));
        assert!(!m.views["127.0.0.1:8551"].is_reachable(&node(2553)));
        assert!(m.views["127.0.0.1:8553"].is_reachable(&node(2553)));
        assert!(!m.views["127.0.0.1:8553"].is_reachable(&node(2551)));
        let observers: Vec<_> = m
            .timeline
            .entries()
            .filter(|e| e.kind == "unreachableMember")
            .map(|e| e.observer.clone())
            .collect();
        assert_eq!(
            observers,
            ["127.0.0.1:2551", "127.0.0.1:2552", "127.0.0.1:2553"]
        );
    }

    #[test]
    fn the_load_generator_asks_only_api_nodes_the_views_show_up_and_reachable() {
        let mut m = connected_page();
        assert_eq!(m.api_targets().len(), 3);
        let cut_off = ClusterEvent::UnreachableMember {
            member: member(2553, MemberStatus::Up, 3),
            observed_by: vec![node(2551)],
        };
        m.on_stream("127.0.0.1:8551", &event(6, 2_000, cut_off));
        assert_eq!(
            m.api_targets(),
            ["127.0.0.1:8551", "127.0.0.1:8552"],
            "n2 is unreachable in the primary view"
        );
        m.on_slots(slots([
            SlotState::Running,
            SlotState::Paused,
            SlotState::Running,
        ]));
        assert_eq!(
            m.api_targets(),
            ["127.0.0.1:8551"],
            "a paused node is not asked"
        );
    }

    #[test]
    fn other_visitors_actions_join_the_timeline_and_our_own_are_not_repeated() {
        let mut m = connected_page();
        let action = |seq, visitor: &str, ok| shared::api::VisitorAction {
            seq,
            at_ms: 5_000,
            visitor: visitor.into(),
            action: "kill n2".into(),
            ok,
            outcome: "n2 killed".into(),
        };
        m.on_journal(shared::api::VisitorJournal {
            you: "visitor-aaaa".into(),
            actions: vec![
                action(1, "visitor-aaaa", true),
                action(2, "visitor-bbbb", false),
            ],
        });
        let shown: Vec<_> = m
            .timeline
            .entries()
            .filter(|e| e.kind == "visitor")
            .collect();
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0].observer, "visitor-bbbb");
        assert!(
            shown[0].text.contains("kill n2: refused"),
            "{}",
            shown[0].text
        );
        assert_eq!(
            m.journal_seq, 2,
            "the next poll asks only for what is newer"
        );
    }

    #[test]
    fn the_page_keeps_working_when_the_node_it_came_from_dies() {
        let mut m = connected_page();
        assert_eq!(m.request_base(), "127.0.0.1:8551");
        m.on_closed("127.0.0.1:8551");
        assert!(!m.views["127.0.0.1:8551"].connected);
        assert_eq!(m.request_base(), "127.0.0.1:8552");
        assert_eq!(m.primary_http().as_deref(), Some("127.0.0.1:8552"));
        assert!(m.wants("127.0.0.1:8551"), "it is retried: it may come back");
        let closed = m.timeline.entries().last().unwrap();
        assert_eq!(closed.kind, "connection");
        assert!(closed.text.contains("127.0.0.1:2551"));
    }

    #[test]
    fn a_paused_node_is_not_live_even_though_its_socket_is_open() {
        let mut m = connected_page();
        m.on_slots(slots([
            SlotState::Paused,
            SlotState::Running,
            SlotState::Running,
        ]));
        assert!(m.views["127.0.0.1:8551"].connected);
        assert_eq!(m.live(), ["127.0.0.1:8552", "127.0.0.1:8553"]);
        assert_eq!(
            m.live_other_than("127.0.0.1:2552").as_deref(),
            Some("127.0.0.1:8553")
        );
    }

    #[test]
    fn the_user_can_pick_the_primary_view_while_it_is_usable() {
        let mut m = connected_page();
        m.primary = Some("127.0.0.1:8553".into());
        assert_eq!(m.primary_http().as_deref(), Some("127.0.0.1:8553"));
        m.on_closed("127.0.0.1:8553");
        assert_eq!(m.primary_http().as_deref(), Some("127.0.0.1:8551"));
    }

    #[test]
    fn node_rows_include_dead_slots_and_members_from_any_view() {
        let mut m = connected_page();
        m.on_slots(slots([
            SlotState::Running,
            SlotState::Running,
            SlotState::Exited,
        ]));
        let mut joiner = member(2560, MemberStatus::Joining, 0);
        joiner.roles = ["worker".to_string()].into();
        m.on_stream(
            "127.0.0.1:8552",
            &event(6, 3_000, ClusterEvent::MemberJoined { member: joiner }),
        );
        let rows = m.nodes();
        let names: Vec<_> = rows.iter().map(|r| r.cluster.as_str()).collect();
        assert_eq!(
            names,
            [
                "127.0.0.1:2551",
                "127.0.0.1:2552",
                "127.0.0.1:2553",
                "127.0.0.1:2560"
            ]
        );
        assert_eq!(rows[2].slot.as_ref().unwrap().state, SlotState::Exited);
        assert_eq!(rows[0].status, Some(MemberStatus::Up));
        assert_eq!(
            rows[3].status, None,
            "the primary view does not know it yet"
        );
        assert_eq!(m.unknown_members(), ["127.0.0.1:2560"]);
        assert_eq!(m.pairs().len(), 6);
    }

    #[test]
    fn only_api_nodes_get_service_requests() {
        let mut m = connected_page();
        let mut worker_only = member(2552, MemberStatus::Up, 2);
        worker_only.roles = ["worker".to_string()].into();
        m.on_stream(
            "127.0.0.1:8551",
            &event(
                6,
                3_000,
                ClusterEvent::MemberUp {
                    member: worker_only,
                },
            ),
        );
        assert_eq!(m.api_targets(), ["127.0.0.1:8551", "127.0.0.1:8553"]);
    }

    #[test]
    fn the_stable_after_estimate_follows_the_mode() {
        let mut m = connected_page();
        assert_eq!(m.default_stable_after_ms(), 3_000);
        assert!(!m.needs_token());
        let mut prod = info();
        prod.demo = false;
        m.on_info(&prod, true);
        assert_eq!(m.default_stable_after_ms(), 20_000);
        assert!(m.needs_token());
    }

    #[test]
    fn removed_members_age_out_on_ticks() {
        let mut m = connected_page();
        m.on_stream(
            "127.0.0.1:8551",
            &event(
                6,
                2_000,
                ClusterEvent::MemberRemoved {
                    member: member(2553, MemberStatus::Removed, 3),
                    previous_status: MemberStatus::Down,
                },
            ),
        );
        m.tick(2_000 + REMOVED_KEEP_MS + 1);
        assert_eq!(m.views["127.0.0.1:8551"].members.len(), 2);
    }

    #[test]
    fn reconnection_backs_off_from_a_quarter_second_to_five_seconds() {
        let delays: Vec<u32> = (1..=8).map(backoff_ms).collect();
        assert_eq!(delays, [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
        assert_eq!(backoff_ms(0), 250);
        assert_eq!(backoff_ms(u32::MAX), 5000);
    }

    #[test]
    fn user_ids_are_validated() {
        let mut rec = RecPanel::default();
        assert_eq!(rec.user_id(), Ok(1));
        rec.user = " 943 ".into();
        assert_eq!(rec.user_id(), Ok(943));
        rec.user = "zero".into();
        assert!(rec.user_id().is_err());
        rec.user = "0".into();
        assert!(rec.user_id().is_err());
    }
}
