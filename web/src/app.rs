//! The browser side: the Yew root component, the shared context that carries out what
//! the views send (`Intent`), and the background tasks that feed the model (one
//! WebSocket loop per node, the launcher and dashboard polls, fault tables, the clock,
//! the load generator).
//!
//! The model sits in one `RefCell` shared by all tasks instead of a Yew reducer: a busy
//! stream would otherwise clone the whole page state (timeline included) per message.
//! Changes schedule one re-render at most every `REDRAW_MS`.

use crate::actions::{self, Body, Method, NodeAction, Planned};
use crate::directory::FaultsListing;
use crate::intent::Intent;
use crate::loadgen_stats::{failover_order, Outcome, MAX_RATE};
use crate::model::{backoff_ms, Model};
use crate::net::{self, decode, get_json, now_ms, send, TIMEOUT_MS};
use crate::protocol::parse_stream;
use crate::timeline::Level;
use crate::ui;
use futures::StreamExt;
use gloo::net::websocket::{futures::WebSocket, Message};
use gloo::timers::callback::{Interval, Timeout};
use gloo::timers::future::TimeoutFuture;
use shared::api::LinkKind;
use shared::api::{
    DashboardInfo, HistoryResponse, LauncherPolicy, RecommendationsResponse, SlotView, VideosPage,
    WatchRequest, WatchResponse,
};
use std::cell::{Cell, Ref, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

mod sim_mode;

/// Shortest time between two renders (ms).
const REDRAW_MS: u32 = 80;
/// Load generator timer (ms).
const LOAD_TICK_MS: u32 = 100;
/// Most load-generator requests in flight at once.
const MAX_IN_FLIGHT: u32 = 400;
/// How long one load-generator attempt may take before the next node is tried (ms): a
/// paused node accepts the connection and never answers.
const ATTEMPT_MS: u32 = 700;
/// How long one load-generator request may take in all, retries included (ms).
const REQUEST_DEADLINE_MS: f64 = 4_000.0;
/// How often the launcher's slots are polled (ms).
const LAUNCHER_POLL_MS: u32 = 1_000;
/// The relayed event stream of the node at `http`, on the page's own origin: `wss://`
/// when the page came over HTTPS (a browser refuses `ws://` from such a page).
fn stream_url(http: &str) -> String {
    let location = web_sys::window().expect("a window").location();
    let scheme = match location.protocol().as_deref() {
        Ok("https:") => "wss",
        _ => "ws",
    };
    let host = location.host().unwrap_or_default();
    format!("{scheme}://{host}{}", actions::url(http, "/ws"))
}

/// The browser's record that this visitor has seen (or closed) the guided tour.
const TOUR_SEEN_KEY: &str = "globomantics-tour-seen";

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// Whether this browser never closed the tour.
fn first_visit() -> bool {
    local_storage().is_some_and(|s| s.get_item(TOUR_SEEN_KEY).ok().flatten().is_none())
}

fn tour_seen() {
    if let Some(s) = local_storage() {
        let _ = s.set_item(TOUR_SEEN_KEY, "1");
    }
}

/// How often `/api/dashboard` and fault tables are refreshed (ms).
const INFO_POLL_MS: u32 = 3_000;

/// What every callback and task shares.
#[derive(Clone)]
struct Ctx(Rc<Inner>);

struct Inner {
    model: RefCell<Model>,
    redraw: RefCell<Option<Callback<()>>>,
    redraw_pending: Cell<bool>,
    streaming: RefCell<BTreeSet<String>>,
    load_timer: RefCell<Option<Interval>>,
    load_last_tick: Cell<f64>,
    started: Cell<bool>,
    /// The simulated run, in simulated mode.
    sim: RefCell<Option<crate::simulated::SimSession>>,
    sim_timer: RefCell<Option<Interval>>,
    sim_last_frame: Cell<f64>,
}

impl PartialEq for Ctx {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl Ctx {
    fn new() -> Self {
        let window = web_sys::window().expect("a window");
        let host = window.location().host().unwrap_or_default();
        let mut model = Model::new(host, now_ms());
        model.tz_offset_min = -(js_sys::Date::new_0().get_timezone_offset() as i64);
        Ctx(Rc::new(Inner {
            model: RefCell::new(model),
            redraw: RefCell::new(None),
            redraw_pending: Cell::new(false),
            streaming: RefCell::new(BTreeSet::new()),
            load_timer: RefCell::new(None),
            load_last_tick: Cell::new(0.0),
            started: Cell::new(false),
            sim: RefCell::new(None),
            sim_timer: RefCell::new(None),
            sim_last_frame: Cell::new(0.0),
        }))
    }

    /// The model, read-only.
    fn model(&self) -> Ref<'_, Model> {
        self.0.model.borrow()
    }

    /// Changes the model and schedules a render.
    pub fn update<R>(&self, f: impl FnOnce(&mut Model) -> R) -> R {
        let result = {
            let mut model = self.0.model.borrow_mut();
            // A simulated run keeps its own clock.
            if model.sim.is_none() {
                model.now_ms = now_ms();
            }
            let result = f(&mut model);
            model.advance_tour();
            result
        };
        self.schedule_redraw();
        result
    }

    fn schedule_redraw(&self) {
        if self.0.redraw_pending.replace(true) {
            return;
        }
        let me = self.clone();
        Timeout::new(REDRAW_MS, move || {
            me.0.redraw_pending.set(false);
            let redraw = me.0.redraw.borrow().clone();
            if let Some(cb) = redraw {
                cb.emit(());
            }
        })
        .forget();
    }

    /// Where the views send what the visitor asks for.
    fn intents(&self) -> Callback<Intent> {
        let me = self.clone();
        Callback::from(move |intent: Intent| me.dispatch(intent))
    }

    /// Carries out one intent: a model edit at once, anything else as a request or a
    /// load-generator change.
    fn dispatch(&self, intent: Intent) {
        if intent == Intent::TourClose {
            tour_seen();
        }
        if self.update(|m| intent.edit(m)) {
            return;
        }
        if self.simulated() {
            self.sim_dispatch(intent);
            return;
        }
        match intent {
            Intent::Node(action, node) => self.node_action(action, &node),
            Intent::Link(action, from, to) => self.link_action(action, &from, &to),
            Intent::AddNode => self.add_node(),
            Intent::HealAll => self.heal_all(),
            Intent::Recommend => self.recommend(),
            Intent::History => self.history(),
            Intent::Search(page) => self.search(page),
            Intent::Watched(video) => self.watched(video),
            Intent::SetRate(rate) => self.set_rate(rate),
            Intent::LoadStart => self.load_start(),
            Intent::LoadStop => self.load_stop(),
            Intent::LoadReset => self.load_reset(),
            Intent::Sim(_) => {}
            _ => unreachable!("the model applies its own edits"),
        }
    }

    fn token(&self) -> Option<String> {
        self.model().bearer()
    }

    // ----- start-up and background tasks -----

    fn start(&self) {
        if self.0.started.replace(true) {
            return;
        }
        if first_visit() {
            self.update(|m| m.tour = Some(crate::tour::Tour::start(&m.timeline)));
        }
        if let Some(link) = sim_mode::asked_for() {
            self.start_simulated(Some(link));
            return;
        }
        spawn_local(self.clone().info_loop());
        spawn_local(self.clone().launcher_loop());
        spawn_local(self.clone().faults_loop());
        let me = self.clone();
        Interval::new(1_000, move || {
            if !me.simulated() {
                me.update(|m| m.tick(now_ms()))
            }
        })
        .forget();
        self.ensure_streams();
    }

    /// Starts a stream loop for every target without one (none in simulated mode).
    fn ensure_streams(&self) {
        if self.simulated() {
            return;
        }
        let targets = self.model().directory.targets();
        for http in targets {
            if self.0.streaming.borrow_mut().insert(http.clone()) {
                spawn_local(self.clone().stream_loop(http));
            }
        }
    }

    /// One node's WebSocket: snapshot then events; reconnects with backoff (each
    /// connection starts with a fresh snapshot) for as long as the node is a target.
    async fn stream_loop(self, http: String) {
        let mut failures = 0u32;
        while self.model().wants(&http) && !self.simulated() {
            if let Ok(mut ws) = WebSocket::open(&stream_url(&http)) {
                let mut complained = false;
                while let Some(item) = ws.next().await {
                    match item {
                        Ok(Message::Text(text)) => match parse_stream(&text) {
                            Ok(message) => {
                                failures = 0;
                                self.update(|m| m.on_stream(&http, &message));
                            }
                            Err(e) if !complained => {
                                complained = true;
                                self.update(|m| {
                                    m.local(
                                        "connection",
                                        format!("unreadable message from {http}: {e}"),
                                        Level::Error,
                                    )
                                });
                            }
                            Err(_) => {}
                        },
                        Ok(Message::Bytes(_)) => {}
                        Err(_) => break,
                    }
                    if !self.model().wants(&http) {
                        break;
                    }
                }
            }
            self.update(|m| m.on_closed(&http));
            failures += 1;
            TimeoutFuture::new(backoff_ms(failures)).await;
        }
        self.0.streaming.borrow_mut().remove(&http);
    }

    /// `/api/dashboard`: first from the page's own host (relative, which also works
    /// behind `trunk serve`'s proxy), then from live nodes to learn new peers.
    async fn info_loop(self) {
        loop {
            let origin_known = self.model().directory.origin.is_some();
            if !origin_known {
                match get_json::<DashboardInfo>("/api/dashboard").await {
                    Ok(info) => self.update(|m| m.on_info(&info, true)),
                    Err(e) if self.model().views.is_empty() => {
                        // No node behind the page (a static site): simulate one.
                        let why = format!("no node answers (/api/dashboard: {e}): the cluster is simulated in this page");
                        self.start_simulated(None);
                        self.update(|m| m.local("simulation", why, Level::Info));
                        return;
                    }
                    Err(e) => self.update(|m| m.info_error = Some(e)),
                }
            } else {
                let (live, unknown) = {
                    let m = self.model();
                    (m.live(), !m.unknown_members().is_empty())
                };
                // Everyone when a member's address is unknown, else just one node.
                let ask: Vec<String> = if unknown {
                    live
                } else {
                    live.into_iter().take(1).collect()
                };
                for http in ask {
                    let url = actions::url(&http, "/api/dashboard");
                    if let Ok(info) = get_json::<DashboardInfo>(&url).await {
                        self.update(|m| {
                            let from_origin = m.directory.origin.as_deref() == Some(&http);
                            m.on_info(&info, from_origin);
                        });
                    }
                }
            }
            self.ensure_streams();
            let wait = if self.model().directory.origin.is_some() {
                INFO_POLL_MS
            } else {
                2_000
            };
            TimeoutFuture::new(wait).await;
        }
    }

    async fn launcher_loop(self) {
        while !self.simulated() {
            self.refresh_launcher().await;
            // Quickly until the first slots arrive: actions wait for them.
            let wait = if self.model().directory.slots.is_empty() {
                250
            } else {
                LAUNCHER_POLL_MS
            };
            TimeoutFuture::new(wait).await;
        }
    }

    /// The launcher's slots and rules.
    async fn refresh_launcher(&self) {
        if self.model().directory.launcher.is_none() {
            return;
        }
        let url = actions::launcher_url("/launcher/nodes");
        if let Ok(slots) = get_json::<Vec<SlotView>>(&url).await {
            self.update(|m| m.on_slots(slots));
            self.ensure_streams();
        }
        let seq = self.model().journal_seq;
        let url = actions::launcher_url(&format!("/launcher/actions?after={seq}"));
        if let Ok(journal) = get_json::<shared::api::VisitorJournal>(&url).await {
            self.update(|m| m.on_journal(journal));
        }
        let url = actions::launcher_url("/launcher/policy");
        if let Ok(policy) = get_json::<LauncherPolicy>(&url).await {
            self.update(|m| m.on_policy(policy));
        }
    }

    /// Each live node's link faults, for the links table and the topology.
    async fn faults_loop(self) {
        while !self.simulated() {
            self.refresh_faults().await;
            TimeoutFuture::new(INFO_POLL_MS).await;
        }
    }

    async fn refresh_faults(&self) {
        let live = self.model().live();
        for http in live {
            let Some(cluster) = self.model().directory.cluster_of(&http).map(str::to_string) else {
                continue;
            };
            if let Ok(listing) = get_json::<FaultsListing>(&actions::url(&http, "/faults")).await {
                self.update(|m| m.directory.learn_faults(&cluster, listing));
            }
        }
    }

    // ----- actions -----

    /// Sends a plan's requests (in order) and writes each result in the timeline.
    fn run(&self, label: &str, plan: Result<Vec<Planned>, String>) {
        let plan = match plan {
            Ok(plan) => plan,
            Err(e) => {
                self.update(|m| m.local("action", format!("{label}: {e}"), Level::Error));
                return;
            }
        };
        let me = self.clone();
        spawn_local(async move {
            let token = me.token();
            for p in plan {
                let token = token.as_deref().filter(|_| p.auth);
                let result = send(p.method, &p.url, &p.body, token, TIMEOUT_MS).await;
                let (text, level) = match result {
                    Ok(a) => actions::outcome(&p.what, a.status, &a.body),
                    Err(e) => (format!("{}: {e}", p.what), Level::Error),
                };
                me.update(|m| m.local("action", text, level));
            }
            me.refresh_launcher().await;
            me.refresh_faults().await;
        });
    }

    /// A node button.
    fn node_action(&self, action: NodeAction, node: &str) {
        let plan = actions::plan_node(&self.model(), action, node);
        self.run(&format!("{} {node}", action.name()), plan);
    }

    /// A link button.
    fn link_action(&self, action: LinkKind, from: &str, to: &str) {
        let plan = actions::plan_link(&self.model(), action, from, to);
        self.run(&format!("{} {from} {to}", action.name()), plan);
    }

    /// Heal every link on every node (through the launcher when there is one).
    fn heal_all(&self) {
        let plan = actions::plan_heal_all(&self.model());
        self.run("heal all", plan);
    }

    /// Ask the launcher for one more node.
    fn add_node(&self) {
        let plan = actions::plan_add_node(&self.model());
        self.run("add node", plan);
    }

    // ----- the service API -----

    /// Where service calls go: an api node, the origin first.
    fn api_node(&self) -> String {
        let m = self.model();
        m.api_targets()
            .into_iter()
            .next()
            .unwrap_or_else(|| m.request_base())
    }

    fn user(&self) -> Option<u32> {
        let user = self.model().rec.user_id();
        match user {
            Ok(id) => Some(id),
            Err(e) => {
                self.update(|m| m.rec.error = e);
                None
            }
        }
    }

    /// `GET /api/recommendations/{user}?n=10`.
    fn recommend(&self) {
        let Some(user) = self.user() else { return };
        let url = actions::url(
            &self.api_node(),
            &format!("/api/recommendations/{user}?n=10"),
        );
        let me = self.clone();
        spawn_local(async move {
            let result = get_json::<RecommendationsResponse>(&url).await;
            me.update(|m| match result {
                Ok(r) => {
                    m.rec.error.clear();
                    m.rec.result = Some(r);
                }
                Err(e) => m.rec.error = format!("recommendations for user {user}: {e}"),
            });
        });
    }

    /// `GET /api/users/{user}/history`.
    fn history(&self) {
        let Some(user) = self.user() else { return };
        let url = actions::url(&self.api_node(), &format!("/api/users/{user}/history"));
        let me = self.clone();
        spawn_local(async move {
            let result = get_json::<HistoryResponse>(&url).await;
            me.update(|m| match result {
                Ok(h) => {
                    m.rec.error.clear();
                    m.rec.history = Some(h);
                }
                Err(e) => m.rec.error = format!("history of user {user}: {e}"),
            });
        });
    }

    /// `GET /api/videos?query=&genre=&page=`.
    fn search(&self, page: u32) {
        let (query, genre) = {
            let m = self.model();
            (m.rec.query.clone(), m.rec.genre.clone())
        };
        let url = actions::url(
            &self.api_node(),
            &format!(
                "/api/videos?query={}&genre={}&page={page}",
                net::encode(query.trim()),
                net::encode(genre.trim())
            ),
        );
        let me = self.clone();
        spawn_local(async move {
            let result = get_json::<VideosPage>(&url).await;
            me.update(|m| match result {
                Ok(v) => {
                    m.rec.error.clear();
                    m.rec.page = v.page;
                    m.rec.videos = Some(v);
                }
                Err(e) => m.rec.error = format!("video search: {e}"),
            });
        });
    }

    /// `POST /api/users/{user}/watched`.
    fn watched(&self, video: u32) {
        let Some(user) = self.user() else { return };
        let url = actions::url(&self.api_node(), &format!("/api/users/{user}/watched"));
        let body = Body::Json(serde_json::to_string(&WatchRequest { video }).expect("json"));
        let me = self.clone();
        spawn_local(async move {
            let result = send(Method::Post, &url, &body, None, TIMEOUT_MS).await;
            let decoded = result.and_then(|a| decode::<WatchResponse>(&a));
            me.update(|m| match decoded {
                Ok(w) => {
                    m.rec.error.clear();
                    m.rec.watch_note = format!(
                        "user {} watched video {}: written by {}, acknowledged by {} of {} replicas ({})",
                        w.user,
                        w.video,
                        w.served_by,
                        w.acknowledged_by.len(),
                        w.replicas,
                        w.acknowledged_by.join(", ")
                    );
                }
                Err(e) => m.rec.error = format!("watched {video} for user {user}: {e}"),
            });
        });
    }

    // ----- load generator -----

    /// Sets the rate (clamped to 0..=MAX_RATE).
    fn set_rate(&self, rate: u32) {
        self.update(|m| m.load.rate = rate.min(MAX_RATE));
    }

    /// Starts sending.
    fn load_start(&self) {
        if self.0.load_timer.borrow().is_some() {
            return;
        }
        self.0.load_last_tick.set(js_sys::Date::now());
        self.update(|m| {
            m.load.running = true;
            m.load.pacer = Default::default();
        });
        let me = self.clone();
        let timer = Interval::new(LOAD_TICK_MS, move || me.load_tick());
        *self.0.load_timer.borrow_mut() = Some(timer);
    }

    /// Stops sending (answers still in flight are counted).
    fn load_stop(&self) {
        self.0.load_timer.borrow_mut().take();
        self.update(|m| m.load.running = false);
    }

    /// Forgets the statistics.
    fn load_reset(&self) {
        self.update(|m| {
            m.load.stats.reset();
            m.load.skipped = 0;
        });
    }

    fn load_tick(&self) {
        let now = js_sys::Date::now();
        let elapsed = now - self.0.load_last_tick.replace(now);
        let batch: Vec<(Vec<String>, u32)> = {
            let mut guard = self.0.model.borrow_mut();
            let m = &mut *guard;
            let targets = m.api_targets();
            let rate = f64::from(m.load.rate);
            let due = m.load.pacer.due(rate, elapsed);
            (0..due)
                .filter_map(|_| {
                    if m.load.in_flight >= MAX_IN_FLIGHT {
                        m.load.skipped += 1;
                        return None;
                    }
                    let user = m.load.rng.user(m.max_user_id);
                    let start = m.load.targets.next_start(targets.len());
                    Some((failover_order(&targets, start), user))
                })
                .collect()
        };
        for (order, user) in batch {
            if order.is_empty() {
                // No api node is Up and reachable: the request fails at once.
                self.update(|m| m.load.stats.record(now_ms(), 0.0, Outcome::Failed));
                continue;
            }
            self.0.model.borrow_mut().load.in_flight += 1;
            let me = self.clone();
            spawn_local(async move {
                let started = js_sys::Date::now();
                let (outcome, retries) = recommend_with_failover(&order, user).await;
                let latency = js_sys::Date::now() - started;
                me.update(|m| {
                    m.load.in_flight = m.load.in_flight.saturating_sub(1);
                    m.load.stats.retries += retries;
                    m.load.stats.record(now_ms(), latency, outcome);
                });
            });
        }
    }
}

/// One load-generator request as a real client sends it: to the first node of `order`
/// (nodes the views show Up and reachable), and on an error, a timeout or a degraded
/// answer to the next, round the list, until one answers or the overall deadline
/// passes. Returns the outcome and how many attempts were retried.
async fn recommend_with_failover(order: &[String], user: u32) -> (Outcome, u64) {
    let deadline = js_sys::Date::now() + REQUEST_DEADLINE_MS;
    let path = format!("/api/recommendations/{user}?n=10");
    let mut degraded = false;
    let mut attempts = 0u64;
    for http in order.iter().cycle().take(order.len() * 3) {
        let left = deadline - js_sys::Date::now();
        if left <= 0.0 {
            break;
        }
        attempts += 1;
        let timeout = (left as u32).min(ATTEMPT_MS);
        let url = actions::url(http, &path);
        let answer = send(Method::Get, &url, &Body::Empty, None, timeout).await;
        match answer.and_then(|a| decode::<RecommendationsResponse>(&a)) {
            Ok(r) if !r.degraded => return (Outcome::Ok, attempts - 1),
            Ok(_) => degraded = true,
            Err(_) => {}
        }
    }
    let outcome = if degraded {
        Outcome::Degraded
    } else {
        Outcome::Failed
    };
    (outcome, attempts.saturating_sub(1))
}

/// The root component.
#[function_component(App)]
fn app() -> Html {
    let ctx = (*use_memo((), |_| Ctx::new())).clone();
    let force = use_force_update();
    *ctx.0.redraw.borrow_mut() = Some(Callback::from(move |_| force.force_update()));
    let timeline_ref = use_node_ref();
    {
        let ctx = ctx.clone();
        use_effect_with((), move |_| ctx.start());
    }
    {
        // Keep the newest timeline entry in sight unless the user paused that.
        let timeline_ref = timeline_ref.clone();
        let autoscroll = ctx.model().autoscroll;
        use_effect(move || {
            if autoscroll {
                if let Some(el) = timeline_ref.cast::<web_sys::Element>() {
                    el.set_scroll_top(el.scroll_height());
                }
            }
        });
    }
    let send = use_memo((), {
        let ctx = ctx.clone();
        move |_| ctx.intents()
    });
    let model = ctx.model();
    ui::page(&send, &model, &timeline_ref)
}

/// Renders the app into `#app` (or the body if the page has none).
pub fn mount() {
    let root = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("app"));
    match root {
        Some(root) => {
            yew::Renderer::<App>::with_root(root).render();
        }
        None => {
            yew::Renderer::<App>::new().render();
        }
    }
}
