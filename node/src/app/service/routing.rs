//! Routing user work to its owner, and doing it there.
//!
//! The api side (`route`) walks the user's owners on the ring: it asks the first,
//! and if no answer has come after the hedge delay (or the answer is a failure) it
//! asks the next as well; the first success wins. Every attempt has a deadline and the
//! whole request has one too, so a request never hangs: when no worker answers, the
//! caller gets `None` and answers in a degraded way (or with an error for writes).
//! All routed work is idempotent (reads, and a set-insert for watches), so asking two
//! owners is safe. When this node is the owner, the work runs here without the
//! network.
//!
//! The owner side (`serve_routed`) turns a request into reads and writes on a
//! majority of replicas and answers with one message.

use super::{Service, WORKER_ROLE};
use futures_util::stream::{FuturesUnordered, StreamExt};
use shared::service::{RequestId, ServiceBody};
use shared::Address;
use std::sync::Arc;
use std::time::Duration;

/// The outcome of routing one request.
#[derive(Debug)]
pub struct Routed {
    /// The answer and the worker that gave it, unless every attempt failed.
    pub answer: Option<(Address, ServiceBody)>,
    /// Owners asked.
    pub attempts: u32,
    /// What went wrong on the attempts that failed.
    pub failures: Vec<String>,
}

/// The id inside a routed request.
fn request_id(body: &ServiceBody) -> RequestId {
    match body {
        ServiceBody::Recommend { id, .. }
        | ServiceBody::RecordWatch { id, .. }
        | ServiceBody::ReadHistory { id, .. } => *id,
        _ => 0,
    }
}

impl Service {
    /// Routes `request` (its id is set per attempt) to the owners of `user` until one
    /// answers.
    pub async fn route(self: &Arc<Self>, user: u32, request: ServiceBody) -> Routed {
        let deadline = tokio::time::Instant::now() + self.timing.total;
        let mut attempts = 0u32;
        let mut failures = Vec::new();
        let mut inflight = FuturesUnordered::new();
        let mut owners: Vec<Address> = Vec::new();
        let mut next = 0usize;
        loop {
            if next >= owners.len() && inflight.is_empty() {
                // Every owner we knew of failed (or there were none): wait a little for
                // membership to change, then walk the current ring again.
                if !owners.is_empty() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
                owners = self.view().routees.owners(user);
                next = 0;
                if owners.is_empty() {
                    failures.push("no worker is Up and reachable".into());
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
            if inflight.is_empty() && next < owners.len() {
                inflight.push(self.attempt(owners[next].clone(), request.clone()));
                next += 1;
                attempts += 1;
            }
            let can_hedge = next < owners.len();
            tokio::select! {
                Some((owner, result)) = inflight.next() => match result {
                    Ok(ServiceBody::Failed { reason, .. }) => failures.push(format!("{owner}: {reason}")),
                    Ok(body) => return Routed { answer: Some((owner, body)), attempts, failures },
                    Err(e) => failures.push(format!("{owner}: {e}")),
                },
                _ = tokio::time::sleep(self.timing.hedge), if can_hedge => {
                    inflight.push(self.attempt(owners[next].clone(), request.clone()));
                    next += 1;
                    attempts += 1;
                }
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        Routed {
            answer: None,
            attempts,
            failures,
        }
    }

    /// One attempt on one owner, with its deadline.
    async fn attempt(
        self: &Arc<Self>,
        owner: Address,
        request: ServiceBody,
    ) -> (Address, Result<ServiceBody, String>) {
        let result = if owner == self.identity.me.address {
            Ok(self.serve_routed(request).await)
        } else {
            let mut call = self.open_call();
            let request = with_id(request, call.id);
            self.send(&owner, request);
            match tokio::time::timeout(self.timing.attempt, call.replies.recv()).await {
                Ok(Some((_, body))) => Ok(body),
                Ok(None) => Err("the request was dropped".to_string()),
                Err(_) => Err(format!(
                    "no answer within {} ms",
                    self.timing.attempt.as_millis()
                )),
            }
        };
        (owner, result)
    }

    /// Does routed work as the owner; the answer carries the request's id.
    pub async fn serve_routed(self: &Arc<Self>, request: ServiceBody) -> ServiceBody {
        let id = request_id(&request);
        if !self.has_role(WORKER_ROLE) {
            return ServiceBody::Failed {
                id,
                reason: "this node is not a worker".into(),
            };
        }
        let failed = |e: super::replication::QuorumError| ServiceBody::Failed {
            id,
            reason: e.to_string(),
        };
        match request {
            ServiceBody::Recommend { id, user, n } => match self.read_user(user).await {
                Ok((recorded, _)) => {
                    let mut history: Vec<(u32, f32)> = self
                        .library
                        .base_history
                        .get(&user)
                        .map(|v| v.iter().map(|item| (*item, 1.0)).collect())
                        .unwrap_or_default();
                    history.extend(recorded.iter().map(|w| (w.video, 1.0)));
                    history.sort_by_key(|(item, _)| *item);
                    history.dedup_by_key(|(item, _)| *item);
                    let (items, personal) = self.library.model.recommend(&history, n as usize);
                    ServiceBody::Recommended {
                        id,
                        items: items.into_iter().map(|s| (s.item, s.score)).collect(),
                        personal,
                    }
                }
                Err(e) => failed(e),
            },
            ServiceBody::RecordWatch { id, watch } => match self.write(vec![watch]).await {
                Ok((acknowledged_by, replicas)) => ServiceBody::WatchRecorded {
                    id,
                    acknowledged_by,
                    replicas,
                },
                Err(e) => failed(e),
            },
            ServiceBody::ReadHistory { id, user } => match self.read_user(user).await {
                Ok((watches, replicas_read)) => ServiceBody::HistoryRead {
                    id,
                    watches,
                    replicas_read,
                },
                Err(e) => failed(e),
            },
            _ => ServiceBody::Failed {
                id,
                reason: "not a routed request".into(),
            },
        }
    }
}

/// The request with its id replaced.
fn with_id(request: ServiceBody, new: RequestId) -> ServiceBody {
    match request {
        ServiceBody::Recommend { user, n, .. } => ServiceBody::Recommend { id: new, user, n },
        ServiceBody::RecordWatch { watch, .. } => ServiceBody::RecordWatch { id: new, watch },
        ServiceBody::ReadHistory { user, .. } => ServiceBody::ReadHistory { id: new, user },
        other => other,
    }
}
