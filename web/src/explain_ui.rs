//! The resolver's decisions, each one opened on demand to say why (`explain`): the
//! sides as the deciding node saw them, the counts, the strategy's rule, what made it
//! decide then, and what the other nodes did around it. Live and simulated alike.

use crate::explain::Logged;
use crate::model::Model;
use crate::protocol::decision_text;
use crate::timeline::clock;
use yew::prelude::*;

/// Decisions listed (newest first).
const SHOWN: usize = 12;

fn names(list: &[String]) -> String {
    if list.is_empty() {
        "nobody".into()
    } else {
        list.join(", ")
    }
}

/// The list of decisions.
pub fn decisions(m: &Model) -> Html {
    let shown: Vec<&Logged> = m.decisions.decisions().take(SHOWN).collect();
    html! {
        <div id="decisions">
            <h3>{ "Resolver decisions" }</h3>
            if shown.is_empty() {
                <p class="muted small">{ "None yet: break something and watch the resolver decide." }</p>
            }
            { for shown.into_iter().map(|logged| decision(m, logged)) }
        </div>
    }
}

fn decision(m: &Model, logged: &Logged) -> Html {
    let Some(e) = m.decisions.explain(logged.id) else {
        return html! {};
    };
    let kind = match &logged.act {
        crate::explain::Act::Decided { decision, .. } => format!("{decision:?}"),
        crate::explain::Act::ShutDown(_) => String::new(),
    };
    let headline = match &logged.act {
        crate::explain::Act::Decided { decision, .. } => decision_text(*decision),
        crate::explain::Act::ShutDown(_) => "",
    };
    html! {
        <details class="decision" key={logged.id} data-observer={logged.observer.clone()} data-decision={kind}>
            <summary>
                <time>{ clock(logged.at_ms, m.tz_offset_min) }</time>
                { format!(" {}: {headline}", logged.observer) }
            </summary>
            <dl class="why small">
                <dt>{ "decided" }</dt><dd class="why-summary">{ e.summary }</dd>
                if let Some(t) = e.trigger {
                    <dt>{ "when" }</dt><dd class="why-trigger">{ t }</dd>
                }
                <dt>{ "rule" }</dt><dd class="why-rule">{ e.rule }</dd>
                <dt>{ "its side" }</dt><dd class="why-ours">{ names(&e.our_side) }</dd>
                <dt>{ "the rest" }</dt><dd class="why-far">{ names(&e.far_side) }</dd>
                <dt>{ "unreachable" }</dt><dd class="why-unreachable">{ names(&e.unreachable) }</dd>
                <dt>{ "the others" }</dt>
                <dd class="why-others">
                    if e.others.is_empty() {
                        { "nothing else decided or stopped within 30 s" }
                    } else {
                        <ul>{ for e.others.iter().map(|o| html! { <li>{ o }</li> }) }</ul>
                    }
                </dd>
            </dl>
        </details>
    }
}
