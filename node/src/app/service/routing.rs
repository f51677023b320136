//! Routing user work to its owner, and doing it there.
//!
//! The api side (`route`) drives the pure routing machine (`shared::routing::Route`:
//! first owner, hedge, fail-over, deadlines) over the user's owners on the ring, and
//! makes its attempts: over the transport, or here without the network when this
//! node is the owner. When no worker answers, the caller gets no answer and answers
//! in a degraded way (or with an error for writes).
//!
//! The owner side (`serve_routed`) turns a request into reads and writes on a
//! majority of replicas and answers with one message.

use super::cache::{history_digest, Recommended};
use super::{Service, WORKER_ROLE};
use futures_util::stream::{FuturesUnordered, StreamExt};
use shared::routing::{Attempt, Route, RouteTiming};
use shared::service::{RequestId, ServiceBody, Watch};
use std::sync::Arc;
use std::time::Duration;

/// The outcome of routing one request.
pub type Routed = shared::routing::Routed<ServiceBody>;

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
    /// answers: `shared::routing::Route` decides whom to ask and when; this drives it.
    pub async fn route(self: &Arc<Self>, user: u32, request: ServiceBody) -> Routed {
        let started = tokio::time::Instant::now();
        let elapsed = || started.elapsed().as_millis() as u64;
        let mut route = Route::start(self.route_timing(), 0);
        let mut in_flight = FuturesUnordered::new();
        loop {
            let now = elapsed();
            if route.needs_owners(now) {
                route.on_owners(self.owners(user), now);
            }
            for attempt in route.take_attempts() {
                in_flight.push(self.attempt(attempt, request.clone()));
            }
            if let Some(done) = route.outcome(now) {
                return done;
            }
            let wake = started + Duration::from_millis(route.next_deadline());
            tokio::select! {
                Some((attempt, result)) = in_flight.next() => match result {
                    Ok(ServiceBody::Failed { reason, .. }) => route.on_failure(attempt.id, &reason, elapsed()),
                    Ok(body) => route.on_answer(attempt.id, attempt.owner, body),
                    Err(e) => route.on_failure(attempt.id, &e, elapsed()),
                },
                _ = tokio::time::sleep_until(wake) => route.on_time(elapsed()),
            }
        }
    }

    /// Whom to ask for `user`'s work (`shared::routing::ask_order`).
    fn owners(&self, user: u32) -> Vec<shared::Address> {
        let owners = self.view().routees.owners(user);
        shared::routing::ask_order(&self.identity.me.address, owners)
    }

    fn route_timing(&self) -> RouteTiming {
        RouteTiming {
            attempt_ms: self.timing.attempt.as_millis() as u64,
            hedge_ms: self.timing.hedge.as_millis() as u64,
            total_ms: self.timing.total.as_millis() as u64,
        }
    }

    /// One attempt on one owner (its deadline is the route's to keep): here, without
    /// the network, when this node is the owner.
    async fn attempt(
        self: &Arc<Self>,
        attempt: Attempt,
        request: ServiceBody,
    ) -> (Attempt, Result<ServiceBody, String>) {
        if attempt.owner == self.identity.me.address {
            let answer = self.serve_routed(request).await;
            return (attempt, Ok(answer));
        }
        let mut call = self.open_call();
        self.send(&attempt.owner, with_id(request, call.id));
        let result = match call.replies.recv().await {
            Some((_, body)) => Ok(body),
            None => Err("the request was dropped".to_string()),
        };
        (attempt, result)
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
                    let list = self.recommend(user, n, &recorded);
                    ServiceBody::Recommended {
                        id,
                        items: list.0.clone(),
                        personal: list.1,
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

impl Service {
    /// The list for `user` given the recorded watches just read: from the cache when
    /// this history was scored before, else scored by the model and remembered.
    fn recommend(&self, user: u32, n: u32, recorded: &[Watch]) -> Recommended {
        let digest = history_digest(recorded);
        if let Some(hit) = self.recommended.get(user, n, digest) {
            self.metrics.cache(true);
            return hit;
        }
        self.metrics.cache(false);
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
        let list: Recommended = Arc::new((
            items.into_iter().map(|s| (s.item, s.score)).collect(),
            personal,
        ));
        self.recommended.put(user, n, digest, Arc::clone(&list));
        list
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
