//! The shared record of what visitors did: every action sent to the launcher is
//! answered as usual and also written here, with the visitor's anonymous tag and the
//! answer, so every open dashboard shows everyone's actions in its timeline, not only
//! its own. Bounded: the oldest entries fall off.

use super::Launcher;
use axum::body::{to_bytes, Body};
use axum::extract::{Query, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use shared::api::{ActionResult, ErrorBody, VisitorAction, VisitorJournal};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Entries kept.
const KEPT: usize = 200;
/// Largest answer body read back for the journal (answers are one short sentence).
const MAX_ANSWER: usize = 16 * 1024;

/// The journal.
#[derive(Default)]
pub struct Journal {
    entries: Mutex<(u64, VecDeque<VisitorAction>)>,
}

impl Journal {
    /// Adds an entry and gives it the next position.
    pub fn push(&self, mut action: VisitorAction) {
        let mut entries = self.entries.lock().expect("journal");
        entries.0 += 1;
        action.seq = entries.0;
        entries.1.push_back(action);
        while entries.1.len() > KEPT {
            entries.1.pop_front();
        }
    }

    /// Entries after position `after`, oldest first.
    pub fn after(&self, after: u64) -> Vec<VisitorAction> {
        let entries = self.entries.lock().expect("journal");
        entries
            .1
            .iter()
            .filter(|a| a.seq > after)
            .cloned()
            .collect()
    }
}

/// What a visitor's request asks for, in words (`kill n2`, `add a node`, `freeze
/// 127.0.0.1:8552`), or `None` for requests that are not actions on the cluster (reads,
/// and the service's own writes).
pub fn describe(method: &Method, path: &str) -> Option<String> {
    if method == Method::GET || method == Method::HEAD || method == Method::OPTIONS {
        return None;
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let text = match segments.as_slice() {
        ["launcher", "nodes"] => "add a node".into(),
        ["launcher", "nodes", slot, action] => format!("{action} n{slot}"),
        ["launcher", "links"] => "change a link".into(),
        ["launcher", "heal"] => "heal everything".into(),
        ["nodes", node, "faults"] => format!("heal every link of {node}"),
        ["nodes", node, "faults", "freeze"] => format!("freeze {node}"),
        ["nodes", node, "faults", "links"] => format!("change a link of {node}"),
        ["nodes", node, "faults", "crash"] => format!("crash {node}"),
        ["nodes", node, "cluster", "members", ..] => format!("change membership via {node}"),
        ["nodes", ..] => return None,
        _ => path.to_string(),
    };
    Some(text)
}

/// Middleware: records every action (see [`describe`]) with its answer.
pub async fn record(State(l): State<Arc<Launcher>>, request: Request, next: Next) -> Response {
    let Some(action) = describe(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let visitor = l.visitors.tag(l.visitors.client_of(&request));
    let (parts, body) = next.run(request).await.into_parts();
    let bytes = to_bytes(body, MAX_ANSWER).await.unwrap_or_default();
    let outcome = serde_json::from_slice::<ActionResult>(&bytes)
        .map(|r| r.message)
        .or_else(|_| serde_json::from_slice::<ErrorBody>(&bytes).map(|e| e.error))
        .unwrap_or_else(|_| parts.status.to_string());
    l.journal.push(VisitorAction {
        seq: 0,
        at_ms: now_ms(),
        visitor,
        action,
        ok: parts.status.is_success(),
        outcome,
    });
    Response::from_parts(parts, Body::from(bytes))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `?after=` of `GET /launcher/actions`.
#[derive(Deserialize)]
pub struct After {
    #[serde(default)]
    after: u64,
}

/// `GET /launcher/actions?after={seq}`.
pub async fn list(
    State(l): State<Arc<Launcher>>,
    Query(after): Query<After>,
    request: Request,
) -> Json<VisitorJournal> {
    Json(VisitorJournal {
        you: l.visitors.tag(l.visitors.client_of(&request)),
        actions: l.journal.after(after.after),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_keeps_the_newest_entries_in_order() {
        let journal = Journal::default();
        for i in 0..(KEPT + 5) {
            journal.push(VisitorAction {
                seq: 0,
                at_ms: i as u64,
                visitor: "visitor-0001".into(),
                action: describe(&Method::POST, "/launcher/nodes/1/kill").unwrap(),
                ok: true,
                outcome: "killed".into(),
            });
        }
        let all = journal.after(0);
        assert_eq!(all.len(), KEPT);
        assert_eq!(all.last().unwrap().seq, (KEPT + 5) as u64);
        assert_eq!(journal.after(all.last().unwrap().seq - 1).len(), 1);
        assert_eq!(all[0].action, "kill n1");
    }

    #[test]
    fn cluster_actions_are_recorded_and_reads_and_service_writes_are_not() {
        let post = |path| describe(&Method::POST, path);
        assert_eq!(
            post("/nodes/127.0.0.1:8552/faults/freeze").as_deref(),
            Some("freeze 127.0.0.1:8552")
        );
        assert!(describe(&Method::DELETE, "/nodes/127.0.0.1:8552/faults").is_some());
        assert_eq!(post("/nodes/127.0.0.1:8552/api/users/3/watched"), None);
        assert_eq!(describe(&Method::GET, "/launcher/nodes"), None);
    }
}
