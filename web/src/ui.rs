//! What the page shows, as functions from the model to Yew HTML: the header, the
//! topology ring and reachability matrix of the primary view, every node's own view,
//! the node and link controls, the timeline, the recommendations panel and the load
//! generator with its chart.
//!
//! The element ids, classes and `data-*` attributes here are the stable selectors
//! browser tests use; keep them. SVGs have fixed view boxes and the timeline a fixed
//! height, so streaming events never move the layout.

use crate::actions::{self, NodeAction};
use crate::dom::{input_value, select_value};
use crate::explain_ui;
use crate::intent::Intent;
use crate::loadgen_stats::{latency_axis_max, polyline, Point, MAX_RATE, WINDOW_SECONDS};
use crate::model::{Model, NodeRow, RecPanel};
use crate::protocol::{decision_text, shutdown_text};
use crate::sim_ui;
use crate::state::NodeView;
use crate::timeline::{clock, LOCAL};
use crate::topology::{
    disc_label, edge, matrix, node_label, ring_edges, ring_position, short, status_class,
    unreachable_edges, Cell,
};
use crate::tour::{Step, Tour};
use shared::api::LinkKind;
use shared::api::{SlotState, SlotView};
use shared::{Member, MemberStatus};
use yew::prelude::*;

/// Timeline entries rendered at most (older ones are kept and found with the filter).
const MAX_RENDERED: usize = 500;

/// Genres of MovieLens 100k, offered as suggestions.
const GENRES: [&str; 19] = [
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
    "unknown",
];

fn chip(status: MemberStatus) -> Html {
    html! { <span class={classes!("chip", status_class(status))}>{ status.to_string() }</span> }
}

fn yes(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// The whole page.
pub fn page(send: &Callback<Intent>, m: &Model, timeline_ref: &NodeRef) -> Html {
    html! {
        <>
            { header(send, m) }
            if let Some(panel) = &m.sim {
                { sim_ui::sim_bar(send, m, panel) }
            }
            if let Some(tour) = &m.tour {
                { tour_box(send, m, tour) }
            }
            if let Some(text) = m.policy_banner() {
                <p id="public-banner" class="banner" role="note">{ text }</p>
            }
            <main class="layout">
                <section class="panel topo" aria-labelledby="topo-title">{ topology(send, m) }</section>
                <section class="panel views" aria-labelledby="views-title">{ views(send, m) }</section>
                <section class="panel timeline-panel" aria-labelledby="timeline-title">
                    { timeline(send, m, timeline_ref) }
                </section>
                <section class="panel controls" aria-labelledby="controls-title">
                    { node_controls(send, m) }
                    { links(send, m) }
                </section>
                if m.sim.is_some() {
                    { sim_ui::service_note() }
                } else {
                    <section class="panel recs" aria-labelledby="recs-title">{ recommendations(send, m) }</section>
                    <section class="panel load" aria-labelledby="load-title">{ load(send, m) }</section>
                }
            </main>
        </>
    }
}

fn header(send: &Callback<Intent>, m: &Model) -> Html {
    let targets = m.directory.targets().len();
    let live = m.live().len();
    let has_launcher = m.directory.launcher.is_some();
    let public = m.is_public();
    let mode = match m.directory.demo {
        _ if m.sim.is_some() => "simulated in this page (no node behind it)",
        _ if public => "public demo (actions go through the launcher's rules)",
        Some(true) => "demo mode",
        Some(false) if has_launcher => "secured nodes (actions go through the launcher)",
        Some(false) => "secured (token required for changes)",
        None => "connecting…",
    };
    let on_token = send.reform(|e: InputEvent| Intent::SetToken(input_value(&e)));
    html! {
        <header class="top">
            <div class="brand">
                <h1>{ "Globomantics cluster" }</h1>
                <p class="summary" id="summary">
                    { format!("streaming from {live} of {targets} nodes · {mode}") }
                    if let (Some(launcher), None) = (&m.directory.launcher, &m.sim) {
                        { format!(" · launcher {launcher}") }
                    }
                </p>
                if let Some(e) = &m.info_error {
                    <p class="warning" id="info-error">{ format!("/api/dashboard: {e}") }</p>
                }
            </div>
            <div class="top-actions">
                if m.needs_token() {
                    <label class="token" title={if has_launcher {
                        "sent to the launcher as the operator token; visitors leave it empty"
                    } else {
                        "the nodes' admin token"
                    }}>
                        { if has_launcher { "Operator token " } else { "Token " } }
                        <input id="token" type="password" autocomplete="off"
                            placeholder={if has_launcher { "optional" } else { "" }}
                            value={m.token.clone()} oninput={on_token} />
                    </label>
                }
                <button id="add-node" disabled={!has_launcher}
                    title={if has_launcher { "start one more node (launcher)" } else { "needs the demo launcher" }}
                    onclick={send.reform(|_: MouseEvent| Intent::AddNode)}>{ "Add node" }</button>
                <button id="tour-start" title="a short guided tour: kill, detect, decide, carry on"
                    onclick={send.reform(|_: MouseEvent| Intent::TourStart)}>{ "Tour" }</button>
                <button id="heal-all" title={if has_launcher {
                        "remove every link fault on every node and resume paused ones (launcher)"
                    } else {
                        "remove every injected link fault on every live node"
                    }}
                    onclick={send.reform(|_: MouseEvent| Intent::HealAll)}>{ "Heal all" }</button>
            </div>
        </header>
    }
}

/// The guided tour's current step.
fn tour_box(send: &Callback<Intent>, m: &Model, tour: &Tour) -> Html {
    let (n, of) = tour.step.position();
    let done = tour.step == Step::Done;
    html! {
        <aside id="tour" class="banner tour" role="note" data-step={tour.step.name()}>
            <strong>{ if done { "Tour: done".to_string() } else { format!("Tour, step {n} of {of}") } }</strong>
            { " " }
            <span id="tour-text">{ tour.step.text(m.sim.is_some()) }</span>
            { " " }
            <button id="tour-close" onclick={send.reform(|_: MouseEvent| Intent::TourClose)}>
                { if done { "close" } else { "skip the tour" } }
            </button>
        </aside>
    }
}

// ----- topology -----

const SIZE: f64 = 440.0;
const RING: f64 = 150.0;
const NODE_R: f64 = 34.0;

fn topology(send: &Callback<Intent>, m: &Model) -> Html {
    let view = m.primary_view();
    let title = match view.and_then(NodeView::observer) {
        Some(o) => format!("Topology as {o} sees it"),
        None => "Topology".to_string(),
    };
    let Some(view) = view else {
        return html! {
            <>
                <h2 id="topo-title">{ title }</h2>
                <svg id="topology" viewBox={format!("0 0 {SIZE} {SIZE}")} role="img" aria-label="no view yet">
                    <text x={(SIZE / 2.0).to_string()} y={(SIZE / 2.0).to_string()} class="empty" text-anchor="middle">
                        { "waiting for a node's snapshot…" }
                    </text>
                </svg>
            </>
        };
    };
    let members: Vec<&Member> = view.display_members();
    let n = members.len();
    let c = SIZE / 2.0;
    let pos: Vec<(f64, f64)> = (0..n).map(|i| ring_position(i, n, c, c, RING)).collect();
    let mesh = mesh_lines(m, &members, &pos);
    let red = unreachable_lines(view, &members, &pos);
    let nodes: Vec<Html> = members
        .iter()
        .zip(&pos)
        .map(|(member, at)| member_disc(m, view, member, *at))
        .collect();
    let converged = match view.converged {
        Some(true) => "converged",
        Some(false) => "not converged",
        None => "",
    };
    let removed = members
        .iter()
        .filter(|m| m.status == MemberStatus::Removed)
        .count();
    let counted = if removed > 0 {
        format!("{} members (+{removed} removed)", n - removed)
    } else {
        format!("{n} members")
    };
    html! {
        <>
            <h2 id="topo-title">{ title }</h2>
            <svg id="topology" viewBox={format!("0 0 {SIZE} {SIZE}")} role="img"
                aria-label={format!("{counted} as {} sees them", view.observer().unwrap_or_default())}>
                <defs>
                    <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                        <path d="M 0 0 L 10 5 L 0 10 z" class="arrow-head" />
                    </marker>
                </defs>
                <g class="mesh">{ for mesh }</g>
                if m.show_ring {
                    <g class="ring" id="heartbeat-ring">{ for ring_lines(m, view, &members, &pos) }</g>
                }
                <g class="reachability">{ for red }</g>
                { for nodes }
            </svg>
            <p class="caption">
                { format!("{counted} · leader {} · {converged}",
                    view.leader.as_ref().map(|l| l.address.to_string()).unwrap_or_else(|| "none".into())) }
            </p>
            { legend() }
            <button id="ring-toggle" aria-pressed={yes(m.show_ring)}
                title="who sends heartbeats to whom (each member monitors the next ones on a hashed ring)"
                onclick={send.reform(|_: MouseEvent| Intent::ToggleRing)}>
                { if m.show_ring { "Hide the heartbeat ring" } else { "Show the heartbeat ring" } }
            </button>
            { matrix_table(view) }
            { explain_ui::decisions(m) }
        </>
    }
}

/// A dashed arrow from every member to each member it monitors.
fn ring_lines(m: &Model, view: &NodeView, members: &[&Member], pos: &[(f64, f64)]) -> Vec<Html> {
    let index_of = |node: &shared::UniqueAddress| members.iter().position(|m| &m.node == node);
    ring_edges(view, m.monitored_by)
        .into_iter()
        .filter_map(|(a, b)| Some((index_of(&a)?, index_of(&b)?, a, b)))
        .map(|(i, j, a, b)| {
            let (x1, y1, x2, y2) = edge(pos[i], pos[j], NODE_R + 2.0, -3.0);
            html! {
                <line class="ring-edge" marker-end="url(#arrow)"
                    data-from={a.address.to_string()} data-to={b.address.to_string()}
                    x1={format!("{x1:.1}")} y1={format!("{y1:.1}")}
                    x2={format!("{x2:.1}")} y2={format!("{y2:.1}")}>
                    <title>{ format!("{} sends heartbeats to {}", a.address, b.address) }</title>
                </line>
            }
        })
        .collect()
}

/// The lines between every two members, styled by the link faults both ends hold.
fn mesh_lines(m: &Model, members: &[&Member], pos: &[(f64, f64)]) -> Vec<Html> {
    let n = members.len();
    let mut mesh = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            let (a, b) = (
                members[i].address().to_string(),
                members[j].address().to_string(),
            );
            let link = m.directory.link(&a, &b);
            let class = classes!(
                "link",
                (link.a_to_b_cut && link.b_to_a_cut).then_some("cut"),
                (link.a_to_b_cut != link.b_to_a_cut).then_some("oneway"),
                (link.delay_ms > 0).then_some("slow")
            );
            let (x1, y1, x2, y2) = edge(pos[i], pos[j], NODE_R, 0.0);
            mesh.push(html! {
                <line class={class} x1={format!("{x1:.1}")} y1={format!("{y1:.1}")}
                    x2={format!("{x2:.1}")} y2={format!("{y2:.1}")}>
                    <title>{ format!("{a} ⇄ {b}: {}", link.label(&short(&a), &short(&b))) }</title>
                </line>
            });
        }
    }
    mesh
}

/// An arrow for every "observer sees subject unreachable" record of the view.
fn unreachable_lines(view: &NodeView, members: &[&Member], pos: &[(f64, f64)]) -> Vec<Html> {
    let index_of = |node: &shared::UniqueAddress| members.iter().position(|m| &m.node == node);
    unreachable_edges(view)
        .into_iter()
        .filter_map(|(o, s)| Some((index_of(&o)?, index_of(&s)?, o, s)))
        .map(|(i, j, o, s)| {
            let (x1, y1, x2, y2) = edge(pos[i], pos[j], NODE_R + 4.0, 5.0);
            html! {
                <line class="unreachable-edge" marker-end="url(#arrow)"
                    x1={format!("{x1:.1}")} y1={format!("{y1:.1}")}
                    x2={format!("{x2:.1}")} y2={format!("{y2:.1}")}>
                    <title>{ format!("{} sees {} unreachable", o.address, s.address) }</title>
                </line>
            }
        })
        .collect()
}

/// One member's disc: status colour, badges, unreachable halo, and whether the
/// page's stream to it is open.
fn member_disc(m: &Model, view: &NodeView, member: &Member, at: (f64, f64)) -> Html {
    let (x, y) = at;
    let addr = member.address().to_string();
    let reachable = view.is_reachable(&member.node);
    let leader = view.leader.as_ref() == Some(&member.node);
    let oldest = view.oldest.as_ref() == Some(&member.node);
    let connected = m.connected_to(&addr)
        && m.directory
            .http_of(&addr)
            .and_then(|h| m.views.get(h))
            .and_then(|v| v.self_node.as_ref())
            == Some(&member.node);
    let badges: Vec<&str> = [leader.then_some("leader"), oldest.then_some("oldest")]
        .into_iter()
        .flatten()
        .collect();
    let status = member.status.to_string();
    html! {
        <g class={classes!("member", status_class(member.status), (!reachable).then_some("unreachable"))}
            data-node={addr.clone()} data-status={status.clone()} data-reachable={yes(reachable)}
            data-uid={member.node.uid.to_string()} data-leader={yes(leader)} data-oldest={yes(oldest)}
            data-connected={yes(connected)}
            transform={format!("translate({x:.1},{y:.1})")}>
            <title>{ format!("{addr} (uid {}) {status}{}{}", member.node.uid,
                if reachable { "" } else { ", unreachable" },
                if connected { ", WebSocket open" } else { "" }) }</title>
            if !reachable {
                <circle class="halo" r={(NODE_R + 6.0).to_string()} />
            }
            <circle class="disc" r={NODE_R.to_string()} />
            <text class="port" y="-3" text-anchor="middle">{ disc_label(&member.address().host, member.address().port) }</text>
            <text class="status-text" y="14" text-anchor="middle">{ status.clone() }</text>
            if !badges.is_empty() {
                <text class="badge" y={format!("{:.0}", -NODE_R - 8.0)} text-anchor="middle">{ badges.join(" · ") }</text>
            }
            if !reachable {
                <text class="unreachable-text" y={format!("{:.0}", NODE_R + 20.0)} text-anchor="middle">{ "unreachable" }</text>
            }
            if connected {
                <circle class="ws-mark" cx="25" cy="-25" r="6">
                    <title>{ "the page's WebSocket to this node is open" }</title>
                </circle>
            }
        </g>
    }
}

fn legend() -> Html {
    html! {
        <ul class="legend" aria-label="status colours">
            { for MemberStatus::ALL.iter().map(|s| html! { <li>{ chip(*s) }</li> }) }
            <li><span class="chip unreachable-chip">{ "unreachable" }</span></li>
            <li><span class="ws-legend"></span>{ " WebSocket open" }</li>
        </ul>
    }
}

fn matrix_table(view: &NodeView) -> Html {
    let (nodes, rows) = matrix(view);
    if nodes.is_empty() {
        return html! {};
    }
    html! {
        <table id="matrix" class="matrix">
            <caption>{ "Reachability: row observes column" }</caption>
            <thead>
                <tr>
                    <th scope="col">{ "observer \\ subject" }</th>
                    { for nodes.iter().map(|n| html! { <th scope="col">{ node_label(&n.address.host, n.address.port) }</th> }) }
                </tr>
            </thead>
            <tbody>
                { for nodes.iter().zip(rows.iter()).map(|(observer, row)| html! {
                    <tr>
                        <th scope="row">{ node_label(&observer.address.host, observer.address.port) }</th>
                        { for row.iter().zip(nodes.iter()).map(|(cell, subject)| {
                            let (class, text) = match cell {
                                Cell::Itself => ("self", "—"),
                                Cell::Reachable => ("ok", "✓"),
                                Cell::Unreachable => ("bad", "✗"),
                            };
                            html! {
                                <td class={class} data-observer={observer.address.to_string()}
                                    data-subject={subject.address.to_string()}
                                    title={format!("{} → {}: {}", observer.address, subject.address,
                                        if *cell == Cell::Unreachable { "unreachable" } else { "reachable" })}>
                                    { text }
                                </td>
                            }
                        }) }
                    </tr>
                }) }
            </tbody>
        </table>
    }
}

// ----- per-node views -----

fn views(send: &Callback<Intent>, m: &Model) -> Html {
    let primary = m.primary_http();
    let mut https: Vec<String> = m.directory.targets().into_iter().collect();
    for h in m.views.keys() {
        if !https.contains(h) {
            https.push(h.clone());
        }
    }
    let key = |h: &String| {
        let observer = m
            .views
            .get(h)
            .and_then(NodeView::observer)
            .or_else(|| m.directory.cluster_of(h).map(str::to_string))
            .unwrap_or_else(|| h.clone());
        (observer.parse::<shared::Address>().ok(), observer)
    };
    shared::sorting::sort_by_key(&mut https, |h| key(h));
    html! {
        <>
            <h2 id="views-title">{ "Each node's own view" }</h2>
            <div class="view-grid">
                { for https.iter().map(|h| view_panel(send, m, h, primary.as_deref() == Some(h.as_str()))) }
            </div>
        </>
    }
}

fn view_panel(send: &Callback<Intent>, m: &Model, http: &str, is_primary: bool) -> Html {
    let view = m.views.get(http);
    let observer = view
        .and_then(NodeView::observer)
        .or_else(|| m.directory.cluster_of(http).map(str::to_string))
        .unwrap_or_default();
    let connected = view.is_some_and(|v| v.connected);
    let blocked = m.directory.is_blocked(http);
    let make_primary = {
        let http = http.to_string();
        send.reform(move |_: MouseEvent| Intent::ShowPrimary(http.clone()))
    };
    let slot_state = m
        .directory
        .slots
        .iter()
        .find(|s| s.http == http)
        .map(|s| s.state.clone());
    let state = match (connected, slot_state) {
        (true, Some(SlotState::Paused)) => "paused",
        (true, _) if blocked => "not running?",
        (true, _) => "live",
        (false, Some(SlotState::Stopped)) => "stopped",
        (false, Some(SlotState::Exited)) => "exited",
        (false, Some(SlotState::Paused)) => "paused",
        (false, _) if view.is_some() => "disconnected",
        (false, _) => "connecting…",
    };
    html! {
        <article class={classes!("view", connected.then_some("connected"), is_primary.then_some("primary"))}
            data-observer={observer.clone()} data-connected={yes(connected)} data-http={http.to_string()}>
            <header>
                <h3 title={format!("HTTP {http}")}>{ if observer.is_empty() { http.to_string() } else { observer.clone() } }</h3>
                <span class={classes!("conn", if connected { "on" } else { "off" })}>{ state }</span>
                <button class="make-primary" aria-pressed={yes(is_primary)}
                    disabled={view.is_none_or(|v| !v.has_snapshot())}
                    title="draw this node's view in the topology"
                    onclick={make_primary}>{ if is_primary { "primary" } else { "show" } }</button>
            </header>
            if let Some(v) = view.filter(|v| v.has_snapshot()) {
                { view_body(m, v) }
            } else {
                <p class="muted">{ "no snapshot yet" }</p>
            }
        </article>
    }
}

fn view_body(m: &Model, v: &NodeView) -> Html {
    let leader = v
        .leader
        .as_ref()
        .map(|l| l.address.to_string())
        .unwrap_or_else(|| "none".into());
    let resolver = if let Some(reason) = v.shutdown {
        html! { <p class="resolver stopped">{ format!("this node {}", shutdown_text(reason)) }</p> }
    } else if let Some(left) = v.countdown_ms(m.now_ms, m.default_stable_after_ms()) {
        let text = if left > 0 {
            format!(
                "{} unreachable: resolver decides in ≈{:.1} s if nothing changes",
                v.pending_unreachable(),
                left as f64 / 1000.0
            )
        } else {
            format!(
                "{} unreachable: stable, decision due (waiting for the leader)",
                v.pending_unreachable()
            )
        };
        html! { <p class="resolver pending">{ text }</p> }
    } else if let Some(d) = &v.last_decision {
        html! {
            <p class="resolver decided">
                { format!("last decision {} {:?}: {}; downed {}{}", clock(d.at_ms, m.tz_offset_min), d.decision,
                    decision_text(d.decision),
                    if d.downed.is_empty() { "none".to_string() } else {
                        d.downed.iter().map(|n| n.address.to_string()).collect::<Vec<_>>().join(", ") },
                    d.stable_for_ms.map(|s| format!(" after {:.1} s stable", s as f64 / 1000.0)).unwrap_or_default()) }
            </p>
        }
    } else {
        html! { <p class="resolver idle">{ "resolver idle: everything reachable" }</p> }
    };
    html! {
        <>
            <p class="meta">
                if let Some(s) = v.self_status { { chip(s) } }
                { format!(" leader {leader} · seq {}", v.seq.unwrap_or(0)) }
                if v.converged == Some(false) { { " · not converged" } }
                if v.gaps > 0 { { format!(" · {} gaps", v.gaps) } }
            </p>
            <ul class="view-members">
                { for v.display_members().into_iter().map(|member| {
                    let addr = member.address().to_string();
                    let reachable = v.is_reachable(&member.node);
                    let observers = v.unreachable.get(&member.node).map(|o| {
                        o.iter().map(|n| node_label(&n.address.host, n.address.port)).collect::<Vec<_>>().join(" ")
                    });
                    let leader = v.leader.as_ref() == Some(&member.node);
                    let oldest = v.oldest.as_ref() == Some(&member.node);
                    let me = v.self_node.as_ref() == Some(&member.node);
                    html! {
                        <li class={classes!("view-member", status_class(member.status), (!reachable).then_some("unreachable"))}
                            data-node={addr.clone()} data-status={member.status.to_string()}
                            data-reachable={yes(reachable)} data-uid={member.node.uid.to_string()}>
                            <span class="addr" title={format!("uid {}", member.node.uid)}>{ addr }</span>
                            { chip(member.status) }
                            if me { <span class="tag">{ "self" }</span> }
                            if leader { <span class="tag">{ "leader" }</span> }
                            if oldest { <span class="tag">{ "oldest" }</span> }
                            if let Some(obs) = observers {
                                <span class="tag bad" title="observed unreachable by">{ format!("unreachable by {obs}") }</span>
                            }
                        </li>
                    }
                }) }
            </ul>
            { resolver }
        </>
    }
}

// ----- controls -----

fn node_controls(send: &Callback<Intent>, m: &Model) -> Html {
    let rows = m.nodes();
    html! {
        <>
            <h2 id="controls-title">{ "Break things" }</h2>
            if m.sim.is_some() {
                <p class="muted small" id="via-simulator">
                    { "Node and link actions act on the simulated cluster, at the simulated time they are taken." }
                </p>
            } else if m.directory.launcher.is_some() {
                <p class="muted small" id="via-launcher">
                    { format!("Node and link actions go through the launcher at {}.",
                        m.directory.launcher.as_deref().unwrap_or_default()) }
                </p>
            }
            <table id="nodes" class="nodes">
                <thead>
                    <tr>
                        <th scope="col">{ "node" }</th>
                        <th scope="col">{ "actions" }</th>
                    </tr>
                </thead>
                <tbody>
                    { for rows.iter().map(|row| node_row(send, m, row)) }
                </tbody>
            </table>
        </>
    }
}

/// One node's row: its name, status and process, and its two groups of buttons.
fn node_row(send: &Callback<Intent>, m: &Model, row: &NodeRow) -> Html {
    let impaired = row.slot.as_ref().is_some_and(|s| m.is_impaired(s.slot));
    html! {
        <tr class={classes!("node-row", impaired.then_some("impaired"))}
            data-node={row.cluster.clone()} data-impaired={yes(impaired)}
            key={row.cluster.clone()}>
            <th scope="row">
                <span class="node-name">
                    if row.connected { <span class="ws-dot" title="WebSocket open"></span> }
                    { row.cluster.clone() }
                </span>
                { " " }
                { row.status.map(chip).unwrap_or_else(|| html! { <span class="muted">{ "not a member here" }</span> }) }
                if impaired {
                    { " " }
                    <span class="tag bad impaired-tag"
                        title="the launcher counts this node as impaired: actions that disrupt another node may be refused">
                        { "impaired" }
                    </span>
                }
                if let Some(h) = &row.http { <small>{ format!("http {h}") }</small> }
                <small>{ process_text(row.slot.as_ref()) }</small>
            </th>
            <td>{ node_buttons(send, m, row) }</td>
        </tr>
    }
}

/// What the launcher says of the node's process.
fn process_text(slot: Option<&SlotView>) -> Html {
    let Some(s) = slot else {
        return html! { <span class="muted">{ "no launcher slot" }</span> };
    };
    let state = match s.state {
        SlotState::Running => "running",
        SlotState::Paused => "paused",
        SlotState::Stopped => "stopped",
        SlotState::Exited => "exited",
    };
    let mut text = format!("n{} {state}", s.slot);
    if let Some(pid) = s.pid {
        text.push_str(&format!(" pid {pid}"));
    }
    if let Some(code) = s.last_exit {
        text.push_str(&format!(" (exit {code})"));
    }
    if s.starts > 1 {
        text.push_str(&format!(" · {} starts", s.starts));
    }
    html! { <span class={classes!("slot", state)}>{ text }</span> }
}

/// The process buttons (launcher only) and the cluster buttons of one node.
fn node_buttons(send: &Callback<Intent>, m: &Model, row: &NodeRow) -> Html {
    let has_launcher = m.directory.launcher.is_some();
    let no_slot = !has_launcher || row.slot.is_none();
    let stop_allowed = m.stop_allowed();
    let direct = m.direct_faults_allowed();
    let process = NodeAction::ALL
        .into_iter()
        .filter(|a| a.needs_launcher())
        .map(|action| {
            let operator_only = action == NodeAction::Stop && !stop_allowed;
            let title = if operator_only {
                "needs the operator token in the public demo".to_string()
            } else if no_slot {
                format!("{} (needs the demo launcher)", actions::hint(action))
            } else {
                actions::hint(action).to_string()
            };
            action_button(send, action, &row.cluster, no_slot || operator_only, title)
        });
    let cluster = NodeAction::ALL
        .into_iter()
        .filter(|a| !a.needs_launcher() && (*a != NodeAction::Freeze || direct))
        .map(|action| {
            let title = if has_launcher && action != NodeAction::Freeze {
                format!("{} (via the launcher)", actions::hint(action))
            } else {
                actions::hint(action).to_string()
            };
            action_button(send, action, &row.cluster, false, title)
        });
    html! {
        <>
            <div class="btns" role="group" aria-label="process (launcher)">{ for process }</div>
            <div class="btns" role="group" aria-label="cluster">{ for cluster }</div>
        </>
    }
}

fn action_button(
    send: &Callback<Intent>,
    action: NodeAction,
    node: &str,
    disabled: bool,
    title: String,
) -> Html {
    let target = node.to_string();
    html! {
        <button data-action={action.name()} data-node={node.to_string()}
            class={classes!("act", action.needs_launcher().then_some("launcher"))}
            title={title} disabled={disabled}
            onclick={send.reform(move |_: MouseEvent| Intent::Node(action, target.clone()))}>
            { action.name() }
        </button>
    }
}

fn links(send: &Callback<Intent>, m: &Model) -> Html {
    let pairs = m.pairs();
    let direct = m.direct_faults_allowed();
    let button = |action: LinkKind, from: &str, to: &str, label: String| {
        let (f, t) = (from.to_string(), to.to_string());
        html! {
            <button data-action={action.name()} data-from={from.to_string()} data-to={to.to_string()}
                class="act" title={format!("{} {from} → {to}", action.name())}
                onclick={send.reform(move |_: MouseEvent| Intent::Link(action, f.clone(), t.clone()))}>
                { label }
            </button>
        }
    };
    html! {
        <div id="links">
            <h3>{ "Links" }</h3>
            <table class="links">
                <tbody>
                    { for pairs.iter().map(|(a, b)| {
                        let state = m.directory.link(a, b);
                        let (sa, sb) = (short(a), short(b));
                        html! {
                            <tr class={classes!("link-row", (!state.is_healthy()).then_some("faulty"))}
                                data-from={a.clone()} data-to={b.clone()} key={format!("{a}-{b}")}>
                                <th scope="row">
                                    { format!("{sa} ⇄ {sb}") }
                                    <small class="link-state">{ state.label(&sa, &sb) }</small>
                                </th>
                                <td><div class="btns">
                                    { button(LinkKind::Cut, a, b, "cut".into()) }
                                    { button(LinkKind::OneWay, a, b, format!("{sa}→{sb}")) }
                                    { button(LinkKind::OneWay, b, a, format!("{sb}→{sa}")) }
                                    { button(LinkKind::Slow, a, b, "slow".into()) }
                                    if direct { { button(LinkKind::Lossy, a, b, "lossy".into()) } }
                                    { button(LinkKind::Heal, a, b, "heal".into()) }
                                </div></td>
                            </tr>
                        }
                    }) }
                </tbody>
            </table>
        </div>
    }
}

// ----- timeline -----

fn timeline(send: &Callback<Intent>, m: &Model, timeline_ref: &NodeRef) -> Html {
    let visible: Vec<_> = m.timeline.visible(&m.filter).collect();
    let hidden_old = visible.len().saturating_sub(MAX_RENDERED);
    let shown = &visible[hidden_old..];
    let on_node = send.reform(|e: Event| Intent::FilterNode(select_value(&e)));
    let on_kind = send.reform(|e: Event| Intent::FilterKind(select_value(&e)));
    let on_text = send.reform(|e: InputEvent| Intent::FilterText(input_value(&e)));
    let toggle = send.reform(|_: MouseEvent| Intent::ToggleAutoscroll);
    let clear = send.reform(|_: MouseEvent| Intent::ClearTimeline);
    let nodes = m.filter_nodes();
    let kinds = m.timeline.kinds();
    html! {
        <>
            <h2 id="timeline-title">{ "Timeline" }</h2>
            <div class="filters">
                <label>{ "Node " }
                    <select id="tl-node" onchange={on_node}>
                        <option value="" selected={m.filter.node.is_empty()}>{ "all" }</option>
                        { for nodes.iter().map(|n| html! {
                            <option value={n.clone()} selected={&m.filter.node == n}>{ n.clone() }</option>
                        }) }
                    </select>
                </label>
                <label>{ "Kind " }
                    <select id="tl-kind" onchange={on_kind}>
                        <option value="" selected={m.filter.kind.is_empty()}>{ "all" }</option>
                        { for kinds.iter().map(|k| html! {
                            <option value={k.clone()} selected={&m.filter.kind == k}>{ k.clone() }</option>
                        }) }
                    </select>
                </label>
                <label>{ "Text " }
                    <input id="tl-text" type="search" value={m.filter.text.clone()} oninput={on_text} placeholder="filter" />
                </label>
                <button id="tl-autoscroll" aria-pressed={yes(!m.autoscroll)} onclick={toggle}>
                    { if m.autoscroll { "Pause autoscroll" } else { "Resume autoscroll" } }
                </button>
                <button id="tl-clear" onclick={clear}>{ "Clear" }</button>
            </div>
            <p class="muted small">
                { format!("{} of {} entries", visible.len(), m.timeline.len()) }
                if hidden_old > 0 { { format!(" · showing the newest {MAX_RENDERED}") } }
            </p>
            <div id="timeline" ref={timeline_ref.clone()} role="log" aria-live="off" tabindex="0">
                { for shown.iter().map(|e| html! {
                    <div key={e.id} class={classes!("entry", e.level.class(), (e.observer == LOCAL).then_some("local"))}
                        data-kind={e.kind.clone()} data-observer={e.observer.clone()}>
                        <time>{ clock(e.at_ms, m.tz_offset_min) }</time>
                        <span class="observer" title={e.observer.clone()}>{
                            if e.observer == LOCAL { "you".to_string() } else { short(&e.observer) }
                        }</span>
                        <span class="what">
                            <span class="kind">{ e.kind.clone() }</span>
                            { " " }
                            <span class="text">{ e.text.clone() }</span>
                        </span>
                    </div>
                }) }
            </div>
        </>
    }
}

// ----- recommendations -----

fn recommendations(send: &Callback<Intent>, m: &Model) -> Html {
    let rec = &m.rec;
    let on_user = send.reform(|e: InputEvent| Intent::SetUser(input_value(&e)));
    html! {
        <>
            <h2 id="recs-title">{ "Recommendations" }</h2>
            <div class="row">
                <label>{ "User " }
                    <input id="rec-user" type="number" min="1" max="943" value={rec.user.clone()} oninput={on_user} />
                </label>
                <button id="rec-get" onclick={send.reform(|_: MouseEvent| Intent::Recommend)}>{ "Recommend" }</button>
                <button id="rec-history" onclick={send.reform(|_: MouseEvent| Intent::History)}>{ "History" }</button>
            </div>
            <p id="rec-error" class="error" role="alert">{ rec.error.clone() }</p>
            { recommendation_answer(rec) }
            { watch_history(rec) }
            { video_search(send, rec) }
        </>
    }
}

/// Who served the last recommendations, how, and the list.
fn recommendation_answer(rec: &RecPanel) -> Html {
    let served = rec
        .result
        .as_ref()
        .map(|r| r.served_by.clone())
        .unwrap_or_default();
    html! {
        <>
        <p class="rec-meta">
            { "served by " }<strong id="rec-served-by">{ served }</strong>
            if let Some(r) = &rec.result {
                { format!(" · answered by {} · {:.1} ms · {} attempt{}", r.answered_by, r.elapsed_ms, r.attempts,
                    if r.attempts == 1 { "" } else { "s" }) }
                if r.degraded { <span class="tag bad" id="rec-degraded">{ "degraded" }</span> }
                if r.personal { <span class="tag good" id="rec-personal">{ "personal" }</span> }
                else { <span class="tag">{ "popular" }</span> }
            }
        </p>
        <ol id="rec-results" class="items">
            if let Some(r) = &rec.result {
                { for r.items.iter().map(|item| html! {
                    <li class="rec-item" data-video={item.video.id.to_string()}>
                        <span class="title">{ item.video.title.clone() }</span>
                        if let Some(y) = item.video.year { <span class="year">{ format!(" ({y})") }</span> }
                        <span class="genres">{ item.video.genres.join(", ") }</span>
                        <span class="score">{ format!("{:.3}", item.score) }</span>
                    </li>
                }) }
            }
        </ol>
        </>
    }
}

/// The user's watch history, newest first (50 at most).
fn watch_history(rec: &RecPanel) -> Html {
    html! {
        <>
        if let Some(h) = &rec.history {
            <details id="history" open=true>
                <summary>{ format!("History of user {}: {} videos · served by {} · {} replicas read",
                    h.user, h.watched.len(), h.served_by, h.replicas_read) }</summary>
                <ul id="history-results" class="items">
                    { for h.watched.iter().rev().take(50).map(|w| html! {
                        <li class="history-item">
                            { w.video.title.clone() }
                            if w.recorded_at_ms.is_some() { <span class="tag good">{ "via service" }</span> }
                        </li>
                    }) }
                </ul>
            </details>
        }
        </>
    }
}

/// The catalogue search form, a page of results with "watched" buttons, and paging.
fn video_search(send: &Callback<Intent>, rec: &RecPanel) -> Html {
    let on_query = send.reform(|e: InputEvent| Intent::SetQuery(input_value(&e)));
    let on_genre = send.reform(|e: InputEvent| Intent::SetGenre(input_value(&e)));
    let on_search = send.reform(|e: SubmitEvent| {
        e.prevent_default();
        Intent::Search(1)
    });
    let page = rec.page;
    html! {
        <>
        <form class="row search" onsubmit={on_search}>
            <label>{ "Videos " }
                <input id="video-query" type="search" placeholder="title" value={rec.query.clone()} oninput={on_query} />
            </label>
            <label>{ "Genre " }
                <input id="video-genre" list="genres" placeholder="any" value={rec.genre.clone()} oninput={on_genre} />
            </label>
            <datalist id="genres">{ for GENRES.iter().map(|g| html! { <option value={*g} /> }) }</datalist>
            <button id="video-search" type="submit">{ "Search" }</button>
        </form>
        if !rec.watch_note.is_empty() {
            <p id="watch-note" class="note">{ rec.watch_note.clone() }</p>
        }
        if let Some(v) = &rec.videos {
            <p class="muted small">{ format!("{} matching · page {} of {}", v.total, v.page,
                v.total.div_ceil(v.page_size.max(1)).max(1)) }</p>
            <ul id="video-results" class="items">
                { for v.items.iter().map(|video| {
                    let id = video.id;
                    html! {
                        <li class="video-item" data-video={id.to_string()}>
                            <span class="title">{ video.title.clone() }</span>
                            if let Some(y) = video.year { <span class="year">{ format!(" ({y})") }</span> }
                            <span class="genres">{ video.genres.join(", ") }</span>
                            <button class="watch" data-video={id.to_string()}
                                onclick={send.reform(move |_: MouseEvent| Intent::Watched(id))}>{ "watched" }</button>
                        </li>
                    }
                }) }
            </ul>
            <div class="row">
                <button id="video-prev" disabled={page <= 1}
                    onclick={send.reform(move |_: MouseEvent| Intent::Search(page.saturating_sub(1).max(1)))}>{ "‹ previous" }</button>
                <button id="video-next" disabled={u64::from(page) * u64::from(v.page_size) >= u64::from(v.total)}
                    onclick={send.reform(move |_: MouseEvent| Intent::Search(page + 1))}>{ "next ›" }</button>
            </div>
        }
        </>
    }
}

// ----- load generator -----

const CHART_W: f64 = 400.0;
const CHART_H: f64 = 170.0;
const PAD_L: f64 = 38.0;
const PAD_R: f64 = 36.0;
const PAD_T: f64 = 14.0;
const PAD_B: f64 = 20.0;

fn load(send: &Callback<Intent>, m: &Model) -> Html {
    let l = &m.load;
    let series = l.stats.series(m.now_ms);
    let last = series.iter().rev().find(|p| p.requests > 0);
    let on_rate = {
        let send = send.clone();
        Callback::from(move |e: InputEvent| {
            if let Ok(rate) = input_value(&e).trim().parse::<u32>() {
                send.emit(Intent::SetRate(rate));
            }
        })
    };
    let targets = m.api_targets();
    html! {
        <>
            <h2 id="load-title">{ "Load generator" }</h2>
            <div class="row">
                <label>{ "Requests/s " }
                    <input id="load-rate" type="number" min="0" max={MAX_RATE.to_string()} value={l.rate.to_string()}
                        oninput={on_rate.clone()} />
                </label>
                <input id="load-slider" type="range" min="0" max={MAX_RATE.to_string()} value={l.rate.to_string()}
                    aria-label="requests per second" oninput={on_rate} />
                <button id="load-start" disabled={l.running} onclick={send.reform(|_: MouseEvent| Intent::LoadStart)}>{ "Start" }</button>
                <button id="load-stop" disabled={!l.running} onclick={send.reform(|_: MouseEvent| Intent::LoadStop)}>{ "Stop" }</button>
                <button id="load-reset" onclick={send.reform(|_: MouseEvent| Intent::LoadReset)}>{ "Reset" }</button>
            </div>
            <dl class="counters">
                <div><dt>{ "ok" }</dt><dd id="load-ok">{ l.stats.ok }</dd></div>
                <div><dt>{ "degraded" }</dt><dd id="load-degraded">{ l.stats.degraded }</dd></div>
                <div><dt>{ "failed" }</dt><dd id="load-failed">{ l.stats.failed }</dd></div>
                <div><dt title="attempts that failed and were sent again to another node">{ "retried" }</dt><dd id="load-retries">{ l.stats.retries }</dd></div>
                <div><dt title="99th percentile latency of the answered requests since the reset">{ "p99 ms" }</dt><dd id="load-p99">{ l.stats.overall(0.99).map_or("-".to_string(), |v| format!("{v:.0}")) }</dd></div>
                <div><dt>{ "in flight" }</dt><dd id="load-in-flight">{ l.in_flight }</dd></div>
            </dl>
            <p class="muted small">
                { format!("GET /api/recommendations/{{random user}}, failing over within 4 s, round-robin over the api nodes Up and reachable: {}",
                    if targets.is_empty() { "no live api node".to_string() } else {
                        targets.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ") }) }
                if let Some(p) = last {
                    { format!(" · last second: {} requests, {:.0}% answered, p50 {:.0} ms, p99 {:.0} ms",
                        p.requests, p.success_rate.unwrap_or(0.0) * 100.0, p.p50_ms.unwrap_or(0.0), p.p99_ms.unwrap_or(0.0)) }
                }
                if l.skipped > 0 { { format!(" · {} not sent (too many in flight)", l.skipped) } }
            </p>
            { load_chart(&series) }
            <ul class="chart-legend">
                <li class="rate">{ "success rate (right axis)" }</li>
                <li class="p50">{ "p50 latency (ms)" }</li>
                <li class="p99">{ "p99 latency (ms)" }</li>
            </ul>
        </>
    }
}

/// Success rate and p50/p99 latency per second over the last minute.
fn load_chart(series: &[Point]) -> Html {
    let rates: Vec<Option<f64>> = series.iter().map(|p| p.success_rate).collect();
    let p50: Vec<Option<f64>> = series.iter().map(|p| p.p50_ms).collect();
    let p99: Vec<Option<f64>> = series.iter().map(|p| p.p99_ms).collect();
    let highest = p99.iter().flatten().fold(0.0f64, |a, b| a.max(*b));
    let axis = latency_axis_max(highest);
    let (w, h) = (CHART_W - PAD_L - PAD_R, CHART_H - PAD_T - PAD_B);
    html! {
    <svg id="load-chart" viewBox={format!("0 0 {CHART_W} {CHART_H}")} role="img"
        aria-label="success rate and latency per second over the last minute">
        <g transform={format!("translate({PAD_L},{PAD_T})")}>
            <rect class="plot" width={w.to_string()} height={h.to_string()} />
            { for [0.0, 0.5, 1.0].iter().map(|f| {
                let y = format!("{:.1}", h - f * h);
                html! {
                    <>
                        <line class="grid" x1="0" x2={w.to_string()} y1={y.clone()} y2={y.clone()} />
                        <text class="axis" x="-4" y={y.clone()} text-anchor="end" dominant-baseline="middle">
                            { format!("{:.0}", axis * f) }
                        </text>
                        <text class="axis rate-axis" x={(w + 4.0).to_string()} y={y} dominant-baseline="middle">
                            { format!("{:.0}%", f * 100.0) }
                        </text>
                    </>
                }
            }) }
            <text class="axis" x="0" y={(h + 14.0).to_string()}>{ format!("-{WINDOW_SECONDS} s") }</text>
            <text class="axis" x={w.to_string()} y={(h + 14.0).to_string()} text-anchor="end">{ "now" }</text>
            <polyline class="series p99" points={polyline(&p99, axis, w, h)} />
            <polyline class="series p50" points={polyline(&p50, axis, w, h)} />
            <polyline class="series rate" points={polyline(&rates, 1.0, w, h)} />
        </g>
    </svg>
    }
}
