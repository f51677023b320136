//! The launcher's HTTP API, used by the dashboard: the slots and their processes
//! (kill, pause, resume, restart, stop, add), and a relay for the nodes' own
//! membership and fault actions (leave, down, link faults, partition, heal), so that
//! in public mode every action passes the same rules and the nodes' endpoints stay
//! closed to visitors (the launcher holds their token).
//!
//! Outside public mode nothing is limited. In public mode each client (by IP) gets
//! a few actions a minute, an action that would impair a majority of nodes is
//! refused (409), faults and pauses undo themselves, and `stop` needs the operator
//! token. Every refusal is a JSON error.

use super::policy::{Refusal, Undo};
use super::{Launcher, IMPAIRED_AFTER_ACTION};
use crate::tooling::client::request;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use shared::api::{
    ActionResult, ErrorBody, LauncherLinkRequest, LauncherPolicy, LinkFaultRequest, LinkKind,
    NodeAction,
};
use shared::faults::{self, End};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(ErrorBody {
            error: message.into(),
        }),
    )
        .into_response()
}

fn done(message: impl Into<String>) -> Response {
    Json(ActionResult {
        message: message.into(),
    })
    .into_response()
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = match self {
            Refusal::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Refusal::Minority { .. } => StatusCode::CONFLICT,
            Refusal::OperatorOnly(_) => StatusCode::FORBIDDEN,
        };
        error(status, self.to_string())
    }
}

/// The launcher's router; serve it with `into_make_service_with_connect_info`.
/// It also serves the dashboard and relays the nodes (`site.rs`), so the page needs
/// no other origin.
pub fn app(launcher: Arc<Launcher>) -> Router {
    let relay = super::site::relay(&launcher);
    let for_dashboard = (Arc::clone(&launcher), relay.clone());
    let actions = Router::new()
        .route("/launcher/nodes", get(list).post(add))
        .route("/launcher/nodes/{slot}/{action}", post(act))
        .route("/launcher/links", post(link))
        .route("/launcher/heal", post(heal_all))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&launcher),
            super::journal::record,
        ));
    Router::new()
        .merge(actions)
        .route("/launcher/policy", get(policy))
        .route("/launcher/actions", get(super::journal::list))
        .route(
            "/launcher/{*rest}",
            axum::routing::any(|| async { error(StatusCode::NOT_FOUND, "no such endpoint") }),
        )
        .route(
            "/api/dashboard",
            get(move |request: axum::extract::Request| {
                let (l, relay) = for_dashboard.clone();
                super::site::dashboard(l, relay, request)
            }),
        )
        .merge(crate::cluster::relay::node_routes(relay).route_layer(
            axum::middleware::from_fn_with_state(Arc::clone(&launcher), super::journal::record),
        ))
        .fallback(crate::cluster::dashboard::dashboard_fallback(
            &launcher.args().web_root,
        ))
        .with_state(launcher)
        // Scripts and `trunk serve` may call from another origin.
        .layer(crate::cluster::http_common::any_origin())
}

/// The visitor's address: from `X-Forwarded-For` only behind a trusted proxy.
struct Visitor(IpAddr);

impl FromRequestParts<Arc<Launcher>> for Visitor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        l: &Arc<Launcher>,
    ) -> Result<Self, Self::Rejection> {
        Ok(Visitor(
            l.visitors
                .client_of_parts(&parts.extensions, &parts.headers),
        ))
    }
}

/// Whether the request carries the operator token (public mode).
fn is_operator(l: &Launcher, headers: &HeaderMap) -> bool {
    l.args()
        .operator_token
        .as_ref()
        .is_some_and(|token| crate::cluster::http_common::bearer_matches(headers, token))
}

/// What the public rules look at in an action.
struct Guarded {
    /// The slot the action disrupts, if any.
    impairs: Option<usize>,
    /// What only the operator may do, named for the refusal (stopping a node).
    operator_only: Option<&'static str>,
}

/// Applies the public rules to an action by `client`.
fn guard(
    l: &Launcher,
    client: IpAddr,
    headers: &HeaderMap,
    action: Guarded,
) -> Result<(), Refusal> {
    let mut policy = l.policy.lock().expect("policy");
    if !policy.is_public() || is_operator(l, headers) {
        return Ok(());
    }
    if let Some(what) = action.operator_only {
        return Err(Refusal::OperatorOnly(what.into()));
    }
    let impairs = action.impairs;
    let now = Instant::now();
    if let Some(slot) = impairs {
        drop(policy);
        let impaired = l.impaired(now);
        let in_service = l.in_service();
        policy = l.policy.lock().expect("policy");
        policy.may_impair(slot, &impaired, in_service)?;
    }
    policy.admit(client, now)
}

async fn list(State(l): State<Arc<Launcher>>) -> Response {
    match tokio::task::spawn_blocking(move || l.view()).await {
        Ok(view) => Json(view).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn policy(State(l): State<Arc<Launcher>>) -> Json<LauncherPolicy> {
    let impaired = l.impaired(Instant::now());
    let in_service = l.in_service();
    let policy = l.policy.lock().expect("policy");
    let args = l.args();
    Json(LauncherPolicy {
        public: policy.is_public(),
        fault_ttl_secs: args.fault_ttl_secs,
        pause_max_secs: args.pause_max_secs,
        actions_per_minute: args.actions_per_minute,
        extra_nodes: args.extra_nodes,
        impaired,
        max_impaired: if policy.is_public() {
            in_service.saturating_sub(1) / 2
        } else {
            in_service
        },
    })
}

async fn add(
    State(l): State<Arc<Launcher>>,
    Visitor(client): Visitor,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = guard(
        &l,
        client,
        &headers,
        Guarded {
            impairs: None,
            operator_only: None,
        },
    ) {
        return refusal.into_response();
    }
    match tokio::task::spawn_blocking(move || l.add()).await {
        Ok(Ok(slot)) => done(format!("n{slot} added")),
        Ok(Err((status, message))) => error(status, message),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn act(
    State(l): State<Arc<Launcher>>,
    Visitor(client): Visitor,
    headers: HeaderMap,
    Path((slot, action)): Path<(String, String)>,
) -> Response {
    let Ok(slot) = slot.parse::<usize>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("`{slot}` is not a slot number"),
        );
    };
    let Some(action) = NodeAction::named(&action).filter(|a| a.launcher_runs()) else {
        let known: Vec<&str> = NodeAction::ALL
            .into_iter()
            .filter(|a| a.launcher_runs())
            .map(NodeAction::name)
            .collect();
        return error(
            StatusCode::BAD_REQUEST,
            format!("unknown action `{action}` (one of {})", known.join(", ")),
        );
    };
    if l.addresses(slot).is_none() {
        return error(StatusCode::NOT_FOUND, format!("no slot {slot}"));
    }
    let guarded = Guarded {
        impairs: action.disrupts().then_some(slot),
        operator_only: (action == NodeAction::Stop).then_some("stopping a node"),
    };
    if let Err(refusal) = guard(&l, client, &headers, guarded) {
        return refusal.into_response();
    }
    let result = match action {
        NodeAction::Leave => leave(&l, slot).await,
        NodeAction::Down => down(&l, slot).await,
        NodeAction::Partition => partition(&l, slot).await,
        NodeAction::Heal => heal_slot(&l, slot).await,
        _ => {
            let launcher = Arc::clone(&l);
            match tokio::task::spawn_blocking(move || launcher.act(slot, action)).await {
                Ok(r) => r,
                Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
            }
        }
    };
    match result {
        Ok(message) => {
            let now = Instant::now();
            let mut policy = l.policy.lock().expect("policy");
            if action.disrupts() {
                policy.impair(slot, now + IMPAIRED_AFTER_ACTION);
            }
            if let (Some(limits), NodeAction::Pause) = (policy.limits.clone(), action) {
                policy.impair(slot, now + limits.pause_max);
                policy.schedule(now + limits.pause_max, Undo::Resume(slot));
            }
            done(message)
        }
        Err((status, message)) => error(status, message),
    }
}

/// Calls a node's API with the launcher's token for it.
async fn call_node(
    l: &Launcher,
    http: &str,
    method: &str,
    path: &str,
    body: Option<(&str, String)>,
) -> Result<(), (StatusCode, String)> {
    match request(http, method, path, l.node_token.as_deref(), body).await {
        Ok(reply) if reply.status < 300 => Ok(()),
        Ok(reply) => Err((
            StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_GATEWAY),
            reply.body,
        )),
        Err(e) => Err((StatusCode::BAD_GATEWAY, e)),
    }
}

fn addresses(l: &Launcher, slot: usize) -> Result<(String, String), (StatusCode, String)> {
    l.addresses(slot)
        .ok_or((StatusCode::NOT_FOUND, format!("no slot {slot}")))
}

async fn leave(l: &Launcher, slot: usize) -> Result<String, (StatusCode, String)> {
    let (cluster, http) = addresses(l, slot)?;
    call_node(
        l,
        &http,
        "DELETE",
        &format!("/cluster/members/{cluster}"),
        None,
    )
    .await?;
    Ok(format!("n{slot} is leaving"))
}

async fn down(l: &Launcher, slot: usize) -> Result<String, (StatusCode, String)> {
    let (cluster, own_http) = addresses(l, slot)?;
    // Ask another member to mark it Down (as an operator would), or itself if alone.
    let http = l
        .running_http()
        .into_iter()
        .find(|(i, _)| *i != slot)
        .map(|(_, h)| h)
        .unwrap_or(own_http);
    let form = (
        "application/x-www-form-urlencoded",
        "operation=Down".to_string(),
    );
    call_node(
        l,
        &http,
        "PUT",
        &format!("/cluster/members/{cluster}"),
        Some(form),
    )
    .await?;
    Ok(format!("n{slot} marked Down"))
}

/// Sets the fault for `kind` on the link between two slots (both ends).
async fn set_link(
    l: &Launcher,
    from: usize,
    to: usize,
    kind: LinkKind,
) -> Result<(), (StatusCode, String)> {
    let (from_cluster, from_http) = addresses(l, from)?;
    let (to_cluster, to_http) = addresses(l, to)?;
    let json = "application/json";
    let mut outcome = Err((
        StatusCode::BAD_GATEWAY,
        "no end of the link answered".into(),
    ));
    for (end, fault) in faults::link_entries(kind) {
        let (on, peer) = match end {
            End::From => (&from_http, &to_cluster),
            End::To => (&to_http, &from_cluster),
        };
        let body = LinkFaultRequest {
            peer: peer.clone(),
            fault,
        };
        let body = serde_json::to_string(&body).expect("serializable");
        // One end may be down; the fault on the other end still applies.
        let set = call_node(l, on, "POST", "/faults/links", Some((json, body))).await;
        outcome = outcome.or(set);
    }
    outcome
}

async fn link(
    State(l): State<Arc<Launcher>>,
    Visitor(client): Visitor,
    headers: HeaderMap,
    body: Result<Json<LauncherLinkRequest>, JsonRejection>,
) -> Response {
    let Json(request) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if request.from == request.to {
        return error(StatusCode::BAD_REQUEST, "a link joins two different slots");
    }
    if !request.kind.launcher_relays() {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "{} links are set on the nodes directly",
                request.kind.name()
            ),
        );
    }
    if l.addresses(request.from).is_none() || l.addresses(request.to).is_none() {
        return error(StatusCode::NOT_FOUND, "no such slot");
    }
    let guarded = Guarded {
        impairs: (request.kind != LinkKind::Heal).then_some(request.to),
        operator_only: None,
    };
    if let Err(refusal) = guard(&l, client, &headers, guarded) {
        return refusal.into_response();
    }
    if let Err((status, message)) = set_link(&l, request.from, request.to, request.kind).await {
        return error(status, message);
    }
    if request.kind != LinkKind::Heal {
        let mut policy = l.policy.lock().expect("policy");
        if let Some(limits) = policy.limits.clone() {
            let now = Instant::now();
            policy.impair(request.to, now + limits.fault_ttl + IMPAIRED_AFTER_ACTION);
            policy.schedule(
                now + limits.fault_ttl,
                Undo::HealLinks(vec![(request.from, request.to)]),
            );
        }
    }
    done(format!(
        "link n{} - n{}: {:?}",
        request.from, request.to, request.kind
    ))
}

/// Cuts a slot off from every other slot.
async fn partition(l: &Launcher, slot: usize) -> Result<String, (StatusCode, String)> {
    let running: Vec<usize> = l.running_http().into_iter().map(|(i, _)| i).collect();
    let links: Vec<_> = faults::node_links(LinkKind::Cut, &slot, &running).collect();
    for (node, other, kind) in &links {
        set_link(l, **node, **other, *kind).await?;
    }
    let others: Vec<usize> = links.iter().map(|(_, other, _)| **other).collect();
    let mut policy = l.policy.lock().expect("policy");
    if let Some(limits) = policy.limits.clone() {
        let now = Instant::now();
        policy.impair(slot, now + limits.fault_ttl + IMPAIRED_AFTER_ACTION);
        policy.schedule(
            now + limits.fault_ttl,
            Undo::HealLinks(others.iter().map(|o| (slot, *o)).collect()),
        );
    }
    Ok(format!("n{slot} cut off from {} nodes", others.len()))
}

/// Heals every link of one slot (on every running node).
async fn heal_slot(l: &Launcher, slot: usize) -> Result<String, (StatusCode, String)> {
    let running: Vec<usize> = l.running_http().into_iter().map(|(i, _)| i).collect();
    for (node, other, kind) in faults::node_links(LinkKind::Heal, &slot, &running) {
        // A side that is down cannot be healed; the other side still is.
        let _ = set_link(l, *node, *other, kind).await;
    }
    l.policy.lock().expect("policy").cleared(slot);
    Ok(format!("links of n{slot} healed"))
}

/// Heals every link on every running node and resumes paused ones.
pub async fn heal_everything(l: &Launcher) -> String {
    let mut healed = 0;
    for (_, http) in l.running_http() {
        if call_node(l, &http, "DELETE", "/faults", None).await.is_ok() {
            healed += 1;
        }
    }
    let paused = l
        .view()
        .into_iter()
        .filter(|s| s.state == shared::api::SlotState::Paused);
    let resumed = paused
        .filter(|s| l.act(s.slot, NodeAction::Resume).is_ok())
        .count();
    format!("healed links on {healed} nodes, resumed {resumed}")
}

async fn heal_all(State(l): State<Arc<Launcher>>) -> Response {
    // Healing only helps the demo, so it is never limited.
    done(heal_everything(&l).await)
}

/// Carries out the undos that are due (public mode).
pub async fn undo_due(l: &Launcher) {
    let due = l.policy.lock().expect("policy").due(Instant::now());
    for undo in due {
        match undo {
            Undo::HealLinks(pairs) => {
                for (a, b) in pairs {
                    let _ = set_link(l, a, b, LinkKind::Heal).await;
                }
                tracing::info!("public demo: a fault healed itself");
            }
            Undo::Resume(slot) => {
                if l.act(slot, NodeAction::Resume).is_ok() {
                    tracing::info!(slot, "public demo: paused node resumed");
                }
            }
            Undo::Retire(slot) => {
                if l.act(slot, NodeAction::Stop).is_ok() {
                    tracing::info!(slot, "public demo: added node retired");
                }
            }
        }
    }
}
