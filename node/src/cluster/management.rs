//! The management HTTP API (Akka Management's shape), fault injection, Prometheus
//! metrics and the WebSocket event stream.
//!
//! `app()` builds the router without a socket; `start::router` joins it with the
//! service API, the relay and the dashboard. Reads are open; membership changes and faults need `Authorization: Bearer <token>` unless the
//! node runs in demo mode. Every error is a JSON `{"error": ...}` with a 4xx or 5xx
//! status; bad input changes nothing.

use crate::cluster::http_common::{require_token, ApiError};
use crate::cluster::keys_api;
use crate::cluster::metrics::Metrics;
use crate::cluster::runtime::Handle;
use crate::cluster::transport::Transport;
use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use shared::api::{FreezeRequest, LinkFaultRequest, MemberJson, MembersResponse, StreamMessage};
use shared::{Address, Command, CommandError, MemberStatus};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// Longest freeze the API accepts.
const MAX_FREEZE_MS: u64 = 10 * 60 * 1000;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The core.
    pub handle: Handle,
    /// The transport (for link faults).
    pub transport: Arc<Transport>,
    /// Traffic counters.
    pub metrics: Arc<Metrics>,
    /// Bearer token for mutating endpoints; `None` in demo mode.
    pub token: Option<String>,
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

fn unavailable() -> ApiError {
    ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        "the membership core has stopped".into(),
    )
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        let status = match e {
            CommandError::UnknownMember(_) => StatusCode::NOT_FOUND,
            CommandError::NotAMember
            | CommandError::AlreadyJoining
            | CommandError::NotAllowed(..) => StatusCode::CONFLICT,
            CommandError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError(status, e.to_string())
    }
}

fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    require_token(state.token.as_deref(), headers)
}

fn parse_address(text: &str) -> Result<Address, ApiError> {
    text.parse::<Address>()
        .map_err(|e| bad_request(e.to_string()))
}

/// The router.
pub fn app(state: AppState) -> Router {
    let keys = keys_api::routes(keys_api::KeysState {
        transport: Arc::clone(&state.transport),
        token: state.token.clone(),
    });
    Router::new()
        .route("/alive", get(|| async { "alive" }))
        .route("/ready", get(ready))
        .route("/cluster/members", get(members))
        .route(
            "/cluster/members/{address}",
            get(member).put(member_operation).delete(member_leave),
        )
        .route("/metrics", get(metrics))
        .route("/faults", get(faults).delete(heal_all))
        .route("/faults/links", post(link_fault))
        .route("/faults/freeze", post(freeze))
        .route("/faults/crash", post(crash))
        .route("/ws", get(ws))
        .with_state(state)
        .merge(keys)
}

async fn ready(State(state): State<AppState>) -> Response {
    match state.handle.snapshot().await {
        Ok((_, s)) if s.self_status.is_some_and(MemberStatus::is_available) => {
            (StatusCode::OK, "ready").into_response()
        }
        Ok((_, s)) => ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: {}",
                s.self_status
                    .map_or("not a member".into(), |st| st.to_string())
            ),
        )
        .into_response(),
        Err(_) => unavailable().into_response(),
    }
}

async fn members(State(state): State<AppState>) -> Result<Json<MembersResponse>, ApiError> {
    let (_, snapshot) = state.handle.snapshot().await.map_err(|_| unavailable())?;
    Ok(Json(MembersResponse::from(&snapshot)))
}

async fn member(
    State(state): State<AppState>,
    Path(address): Path<String>,
) -> Result<Json<MemberJson>, ApiError> {
    let address = parse_address(&address)?;
    let (_, snapshot) = state.handle.snapshot().await.map_err(|_| unavailable())?;
    snapshot
        .members
        .iter()
        .find(|m| m.node.address == address)
        .map(|m| Json(MemberJson::from(m)))
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no member at {address}")))
}

/// The form body of `PUT /cluster/members/{address}`.
#[derive(Deserialize)]
struct Operation {
    operation: String,
}

async fn member_operation(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(address): Path<String>,
    form: Result<Form<Operation>, FormRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&state, &headers)?;
    let address = parse_address(&address)?;
    let Form(operation) =
        form.map_err(|e| bad_request(format!("expected a form with `operation`: {e}")))?;
    let command = match operation.operation.to_ascii_lowercase().as_str() {
        "down" => Command::Down(address.clone()),
        "leave" => Command::Leave(address.clone()),
        other => {
            return Err(bad_request(format!(
                "unknown operation `{other}`; use Down or Leave"
            )))
        }
    };
    apply(&state, command).await?;
    Ok(Json(
        serde_json::json!({ "message": format!("{} {address}", operation.operation) }),
    ))
}

async fn member_leave(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(address): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&state, &headers)?;
    let address = parse_address(&address)?;
    apply(&state, Command::Leave(address.clone())).await?;
    Ok(Json(
        serde_json::json!({ "message": format!("Leaving {address}") }),
    ))
}

async fn apply(state: &AppState, command: Command) -> Result<(), ApiError> {
    let description = format!("operator: {command:?}");
    state
        .handle
        .command(command)
        .await
        .map_err(|_| unavailable())??;
    state.handle.record_fault(description).await;
    Ok(())
}

async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let (_, snapshot) = state.handle.snapshot().await.map_err(|_| unavailable())?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(&snapshot),
    )
        .into_response())
}

async fn faults(State(state): State<AppState>) -> Json<serde_json::Value> {
    let links: Vec<serde_json::Value> = state
        .transport
        .faults
        .all()
        .into_iter()
        .map(|(peer, fault)| serde_json::json!({ "peer": peer.to_string(), "fault": fault }))
        .collect();
    Json(serde_json::json!({ "links": links }))
}

async fn heal_all(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&state, &headers)?;
    state.transport.faults.heal_all();
    state.handle.record_fault("healed all links".into()).await;
    Ok(Json(serde_json::json!({ "message": "healed" })))
}

async fn link_fault(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<LinkFaultRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&state, &headers)?;
    let Json(request) = body.map_err(|e| bad_request(e.body_text()))?;
    let peer = parse_address(&request.peer)?;
    if !request.fault.is_valid() {
        return Err(bad_request("loss must be 0..1 and delays at most 60000 ms"));
    }
    let fault = request.fault;
    let description = format!("link to {peer}: {fault:?}");
    state.transport.faults.set(peer, fault);
    state.handle.record_fault(description).await;
    Ok(Json(serde_json::json!({ "message": "fault set" })))
}

async fn freeze(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<FreezeRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&state, &headers)?;
    let Json(request) = body.map_err(|e| bad_request(e.body_text()))?;
    if request.millis == 0 || request.millis > MAX_FREEZE_MS {
        return Err(bad_request(format!("millis must be 1..={MAX_FREEZE_MS}")));
    }
    state
        .handle
        .freeze(Duration::from_millis(request.millis))
        .await
        .map_err(|_| unavailable())?;
    Ok(Json(
        serde_json::json!({ "message": format!("freezing for {} ms", request.millis) }),
    ))
}

async fn crash(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&state, &headers)?;
    tracing::warn!("crash requested through the fault API: aborting");
    std::process::abort();
}

async fn ws(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| stream_events(socket, state))
}

/// Snapshot first, then every event after it; a fresh snapshot if the client lags.
async fn stream_events(mut socket: WebSocket, state: AppState) {
    let mut events = state.handle.events.subscribe();
    let mut last_seq = match send_snapshot(&mut socket, &state).await {
        Some(seq) => seq,
        None => return,
    };
    loop {
        tokio::select! {
            received = events.recv() => match received {
                Ok(message) => {
                    let seq = match &message {
                        StreamMessage::Event { seq, .. } | StreamMessage::Fault { seq, .. } | StreamMessage::Snapshot { seq, .. } => *seq,
                    };
                    if seq <= last_seq {
                        continue;
                    }
                    last_seq = seq;
                    let text = serde_json::to_string(&message).unwrap_or_default();
                    if socket.send(WsMessage::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => match send_snapshot(&mut socket, &state).await {
                    Some(seq) => last_seq = seq,
                    None => return,
                },
                Err(RecvError::Closed) => {
                    let _ = socket.send(WsMessage::Close(None)).await;
                    return;
                }
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn send_snapshot(socket: &mut WebSocket, state: &AppState) -> Option<u64> {
    let (seq, snapshot) = state.handle.snapshot().await.ok()?;
    let text = serde_json::to_string(&StreamMessage::Snapshot { seq, snapshot }).ok()?;
    socket.send(WsMessage::Text(text.into())).await.ok()?;
    Some(seq)
}
