//! The launcher as the demo's single origin: it serves the dashboard, answers the
//! page's first `/api/dashboard` from a running node, and relays `/nodes/{http}/...`
//! to its slots, so a hosted demo publishes the launcher's port alone.

use super::Launcher;
use crate::cluster::relay::{Relay, TargetList};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use shared::api::{ErrorBody, SlotState};
use std::sync::Arc;

/// The relay to the launcher's slots (running or not: the page keeps retrying a dead
/// node's stream until it is back).
pub fn relay(l: &Arc<Launcher>) -> Relay {
    let slots = Arc::clone(l);
    let targets: TargetList = Arc::new(move || slots.view().into_iter().map(|s| s.http).collect());
    Relay::new(targets, None, Arc::clone(&l.visitors))
}

/// `GET /api/dashboard`: a running node's answer (the page learns the cluster from it).
pub async fn dashboard(l: Arc<Launcher>, relay: Relay, request: Request) -> Response {
    let running: Vec<String> = l
        .view()
        .into_iter()
        .filter(|s| s.state == SlotState::Running)
        .map(|s| s.http)
        .collect();
    let client = l.visitors.client_of(&request);
    for http in running {
        let probe = Request::builder()
            .uri("/api/dashboard")
            .body(axum::body::Body::empty())
            .expect("a fixed request");
        let answer = relay.forward(probe, &http, "/api/dashboard", client).await;
        if answer.status().is_success() {
            return answer;
        }
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(ErrorBody {
            error: "no node is running; the launcher restarts them shortly".into(),
        }),
    )
        .into_response()
}
