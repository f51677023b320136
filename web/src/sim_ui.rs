//! The views only simulated mode has: the time bar (play, pause, step, speed, the
//! scrubber, the clock, the share link), the new-run form, the checker's verdict, and
//! the note that stands in for the service panels. Everything else is drawn by the
//! same views as live mode (`ui`).

use crate::dom::{change_value, input_value, select_value};
use crate::intent::{DraftField, Intent, SimControl};
use crate::model::Model;
use crate::simulated::scenario::{MAX_NODES, MIN_NODES};
use crate::simulated::session::{SPEEDS, STEP_MS};
use crate::simulated::SimPanel;
use yew::prelude::*;

/// Strategies the new-run form offers, as links name them.
const STRATEGIES: [&str; 5] = [
    "keep-majority",
    "static-quorum-3",
    "keep-oldest",
    "keep-oldest-down-if-alone",
    "down-all",
];

fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// The time bar and the new-run form.
pub fn sim_bar(send: &Callback<Intent>, m: &Model, p: &SimPanel) -> Html {
    let control = |c: SimControl| Intent::Sim(c);
    let toggle = if p.playing {
        send.reform(move |_: MouseEvent| control(SimControl::Pause))
    } else {
        send.reform(move |_: MouseEvent| control(SimControl::Play))
    };
    // The option whose text was chosen, not a parsed float: parsing one brings the
    // float parser's tables (about 10 KB) into the page.
    let on_speed = send.reform(|e: Event| {
        let chosen = select_value(&e);
        let speed = SPEEDS.iter().copied().find(|s| s.to_string() == chosen);
        Intent::Sim(SimControl::Speed(speed.unwrap_or(1.0)))
    });
    let on_seek = send.reform(|e: Event| {
        let value = change_value(&e);
        Intent::Sim(SimControl::Seek(value.parse().unwrap_or(0)))
    });
    let share = format!("?sim={}", p.link);
    html! {
        <section id="sim-controls" class="panel sim-bar" aria-label="simulated time"
            data-now-ms={p.now_ms.to_string()} data-playing={p.playing.to_string()}>
            <div class="row">
                <span class="tag sim-tag" title="the real membership core runs in this page, on a simulated network and clock">
                    { "simulated" }
                </span>
                <button id="sim-play" onclick={toggle}>{ if p.playing { "pause" } else { "play" } }</button>
                <button id="sim-step" title={format!("{STEP_MS} ms on, then paused")}
                    onclick={send.reform(|_: MouseEvent| Intent::Sim(SimControl::Step))}>{ "step" }</button>
                <label>{ "speed " }
                    <select id="sim-speed" onchange={on_speed}>
                        { for SPEEDS.iter().map(|s| html! {
                            <option value={s.to_string()} selected={*s == p.speed}>{ format!("{s}×") }</option>
                        }) }
                    </select>
                </label>
                <input id="sim-scrubber" type="range" min="0" max={p.horizon_ms.to_string()}
                    step="100" value={p.now_ms.to_string()} onchange={on_seek}
                    aria-label="simulated time: drag back to rewind" />
                <span id="sim-clock">{ format!("t = {} of {}", seconds(p.now_ms), seconds(p.horizon_ms)) }</span>
                <a id="sim-share" href={share} title="this run: its seed, settings and every action, up to now">
                    { "share link" }
                </a>
            </div>
            { new_run(send, m, p) }
            if let Some(v) = &p.violation {
                <p id="sim-violation" class="warning" role="alert">
                    { format!("The simulator's invariant checker found a broken invariant: {v}") }
                </p>
            }
        </section>
    }
}

fn new_run(send: &Callback<Intent>, m: &Model, p: &SimPanel) -> Html {
    let d = &m.sim_draft;
    let field = |f: DraftField| send.reform(move |e: Event| Intent::SimDraft(f, select_value(&e)));
    let on_seed = send.reform(|e: InputEvent| Intent::SimDraft(DraftField::Seed, input_value(&e)));
    html! {
        <div class="row small" id="sim-new-run">
            <span class="muted">{ format!("seed {} · {} nodes · {} · {} · {} monitors · {} actions",
                p.seed, p.nodes, p.profile.name(), p.strategy, p.monitors, p.actions) }</span>
            <label>{ " new run: nodes " }
                <select id="sim-nodes" onchange={field(DraftField::Nodes)}>
                    { for (MIN_NODES..=MAX_NODES).map(|n| html! {
                        <option value={n.to_string()} selected={d.nodes == n.to_string()}>{ n }</option>
                    }) }
                </select>
            </label>
            <label>{ " timings " }
                <select id="sim-profile" onchange={field(DraftField::Profile)}>
                    <option value="demo" selected={d.profile == "demo"}>{ "demo (200 ms beats)" }</option>
                    <option value="akka" selected={d.profile == "akka"}>{ "Akka defaults (1 s beats)" }</option>
                </select>
            </label>
            <label>{ " strategy " }
                <select id="sim-strategy" onchange={field(DraftField::Strategy)}>
                    { for STRATEGIES.iter().map(|s| html! {
                        <option value={s.to_string()} selected={d.strategy == *s}>{ s }</option>
                    }) }
                </select>
            </label>
            <label title="how many members each node sends heartbeats to (the heartbeat ring)">{ " monitors " }
                <select id="sim-monitors" onchange={field(DraftField::Monitors)}>
                    { for (1..=MAX_NODES).map(|n| html! {
                        <option value={n.to_string()} selected={d.monitors == n.to_string()}>{ n }</option>
                    }) }
                </select>
            </label>
            <label>{ " seed " }
                <input id="sim-seed" type="text" inputmode="numeric" placeholder="random"
                    value={d.seed.clone()} oninput={on_seed} size="10" />
            </label>
            <button id="sim-new" onclick={send.reform(|_: MouseEvent| Intent::Sim(SimControl::NewRun))}>
                { "start" }
            </button>
        </div>
    }
}

/// In place of the recommendations and load panels.
pub fn service_note() -> Html {
    html! {
        <section class="panel recs" id="sim-service-note">
            <h2>{ "The service" }</h2>
            <p class="muted">
                { "In simulated mode only the membership core runs in the page: the \
                   recommendation service and its load generator need live nodes." }
            </p>
        </section>
    }
}
