//! The clients of the service simulator and the api side of each node: a client
//! sends a request to a random node, failing over to the next when that node is down
//! or dies before answering; the node routes it with the real routing machine to
//! the user's owners on the real ring.

use super::{pair, QuorumSim, QuorumViolation, ROUTE, USERS};
use crate::quorum::Millis;
use crate::routing::{ask_order, Route, Routed};
use crate::service::{RequestId, ServiceBody, Watch};
use rand::Rng;
use std::collections::BTreeSet;

/// What a client asks.
#[derive(Clone, Copy, Debug)]
pub(super) enum Ask {
    Read { user: u32 },
    Write { watch: Watch },
}

impl Ask {
    fn user(&self) -> u32 {
        match self {
            Ask::Read { user } => *user,
            Ask::Write { watch } => watch.user,
        }
    }

    fn body(&self, id: RequestId) -> ServiceBody {
        match *self {
            Ask::Read { user } => ServiceBody::ReadHistory { id, user },
            Ask::Write { watch } => ServiceBody::RecordWatch { id, watch },
        }
    }
}

/// A client request, routed by node `api`.
pub(super) struct Request {
    api: usize,
    ask: Ask,
    route: Route<ServiceBody>,
    began: Millis,
    /// When the client first sent it (it gives up `CLIENT_DEADLINE_MS` after).
    first_sent: Millis,
}

/// A client that has no answer after this long sends the request to the next node
/// (as `node::tooling::failover` does).
const CLIENT_ATTEMPT_MS: Millis = 1500;
/// A client gives up on a request this long after it first sent it.
const CLIENT_DEADLINE_MS: Millis = 8000;

impl QuorumSim {
    /// A client's new read or write, sent to a random node.
    pub(super) fn new_request(&mut self) -> Result<(), QuorumViolation> {
        let user = self.rng.random_range(1..=USERS);
        let ask = if self.rng.random_bool(0.5) {
            let watch = Watch {
                user,
                video: self.next_video,
                at_ms: self.now,
            };
            self.next_video += 1;
            self.written.insert(pair(&watch));
            Ask::Write { watch }
        } else {
            Ask::Read { user }
        };
        let first = self.rng.random_range(0..self.replicas.len());
        self.send_request(first, ask, self.now)
    }

    /// Sends `ask` to the first node up from `first` on (a down node refuses the
    /// connection at once, and the client tries the next).
    fn send_request(
        &mut self,
        first: usize,
        ask: Ask,
        first_sent: Millis,
    ) -> Result<(), QuorumViolation> {
        let n = self.replicas.len();
        let Some(api) = (0..n)
            .map(|k| (first + k) % n)
            .find(|i| self.replicas[*i].up)
        else {
            return Ok(());
        };
        if api != first {
            self.outcome.failed_over += 1;
        }
        let id = self.fresh_id();
        let request = Request {
            api,
            ask,
            route: Route::start(ROUTE, self.now),
            began: self.now,
            first_sent,
        };
        self.requests.insert(id, request);
        self.pump_request(id)
    }

    /// Gives the route the owners when it asks, makes its attempts, and settles it
    /// once it is decided (it stays in place until then: routes are polled every
    /// millisecond).
    fn pump_request(&mut self, id: RequestId) -> Result<(), QuorumViolation> {
        let now = self.now;
        let Some(request) = self.requests.get_mut(&id) else {
            return Ok(());
        };
        if request.route.needs_owners(now) {
            let owners = self.ring.owners(request.ask.user());
            let owners = ask_order(&self.all[request.api], owners);
            request.route.on_owners(owners, now);
        }
        let attempts = request.route.take_attempts();
        let (api, ask) = (request.api, request.ask);
        let routed = request.route.outcome(now);
        for attempt in attempts {
            let message = self.fresh_id();
            self.attempt_of.insert(message, (id, attempt.id));
            let owner = self.index_of(&attempt.owner);
            self.send(api, owner, ask.body(message));
        }
        match routed {
            Some(routed) => {
                let request = self.requests.remove(&id).expect("the request");
                self.settle(&request, routed)
            }
            None => Ok(()),
        }
    }

    /// An owner's answer reaches node `api`.
    pub(super) fn on_routed_answer(
        &mut self,
        api: usize,
        owner: usize,
        message: RequestId,
        body: ServiceBody,
    ) -> Result<(), QuorumViolation> {
        let Some(&(id, attempt)) = self.attempt_of.get(&message) else {
            return Ok(());
        };
        let owner = self.replicas[owner].address.clone();
        let now = self.now;
        let Some(request) = self.requests.get_mut(&id).filter(|r| r.api == api) else {
            return Ok(());
        };
        match body {
            ServiceBody::Failed { reason, .. } => request.route.on_failure(attempt, &reason, now),
            answer => request.route.on_answer(attempt, owner, answer),
        }
        self.pump_request(id)
    }

    /// The routes' deadlines (a paused node's wait), and clients that give up on a
    /// node that does not answer and send to the next.
    pub(super) fn requests_on_time(&mut self) -> Result<(), QuorumViolation> {
        let now = self.now;
        let ids: Vec<RequestId> = self.requests.keys().copied().collect();
        for id in ids {
            let Some(request) = self.requests.get(&id) else {
                continue;
            };
            if now >= request.began + CLIENT_ATTEMPT_MS {
                let request = self.requests.remove(&id).expect("the request");
                if now >= request.first_sent + CLIENT_DEADLINE_MS {
                    self.give_up(request.ask);
                } else {
                    self.outcome.failed_over += 1;
                    self.send_request(request.api + 1, request.ask, request.first_sent)?;
                }
                continue;
            }
            if self.is_frozen(request.api) {
                continue;
            }
            if let Some(request) = self.requests.get_mut(&id) {
                request.route.on_time(now);
            }
            self.pump_request(id)?;
        }
        Ok(())
    }

    /// Node `api` died: its clients see their connections reset and send again to
    /// the next node.
    pub(super) fn lose_requests_at(&mut self, api: usize) {
        let lost: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| r.api == api)
            .map(|(id, _)| *id)
            .collect();
        for id in lost {
            if let Some(request) = self.requests.remove(&id) {
                // The next node is up: one replica at most is impaired at a time.
                let _ = self.send_request(api + 1, request.ask, request.first_sent);
            }
        }
    }

    fn settle(
        &mut self,
        request: &Request,
        routed: Routed<ServiceBody>,
    ) -> Result<(), QuorumViolation> {
        match (request.ask, routed.answer) {
            (Ask::Read { user }, Some((_, ServiceBody::HistoryRead { watches, .. }))) => {
                self.check_read(user, request.began, &watches)
            }
            (Ask::Write { .. }, Some((_, ServiceBody::WatchRecorded { .. }))) => {
                self.outcome.acknowledged += 1;
                Ok(())
            }
            // The node answers with an error: the client tries the next one.
            (ask, _) if self.now < request.first_sent + CLIENT_DEADLINE_MS => {
                self.outcome.failed_over += 1;
                self.send_request(request.api + 1, ask, request.first_sent)
            }
            (ask, _) => {
                self.give_up(ask);
                Ok(())
            }
        }
    }

    fn give_up(&mut self, ask: Ask) {
        match ask {
            Ask::Read { .. } => self.outcome.failed_reads += 1,
            Ask::Write { .. } => self.outcome.failed_writes += 1,
        }
    }

    fn check_read(
        &mut self,
        user: u32,
        began: Millis,
        watches: &[Watch],
    ) -> Result<(), QuorumViolation> {
        self.outcome.reads += 1;
        let got: BTreeSet<(u32, u32)> = watches.iter().map(pair).collect();
        if let Some(invented) = got.iter().find(|w| !self.written.contains(*w)) {
            return Err(QuorumViolation {
                invariant: "a read returned a watch never written",
                detail: format!("{invented:?}"),
            });
        }
        let lost: Vec<&(u32, u32)> = self
            .acknowledged
            .iter()
            .filter(|(w, at)| w.0 == user && **at < began && !got.contains(*w))
            .map(|(w, _)| w)
            .collect();
        if !lost.is_empty() {
            return Err(QuorumViolation {
                invariant: "a read that was answered missed an acknowledged watch",
                detail: format!("user {user}, read began at {began} ms, missing {lost:?}"),
            });
        }
        Ok(())
    }
}
