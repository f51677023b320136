//! Routing one user request to the user's owners, as a pure machine.
//!
//! The api side of the service asks the user's first owner on the ring. If no answer
//! has come after the hedge delay it asks the next owner as well, and a failed
//! attempt (an error, or no answer within the attempt's deadline) moves on to the
//! next owner at once. The first answer wins. When every owner it knew of has failed,
//! it pauses briefly and walks the current ring again, since membership may have
//! changed. The whole request has a deadline, so it never hangs: the caller then
//! answers in a degraded way, or with an error for writes.
//!
//! All routed work is idempotent (reads, and a set-insert for watches), so asking two
//! owners is safe.
//!
//! Inputs: the owners (whenever `needs_owners` says so), answers and failures of
//! attempts, and the time. Outputs: attempts to make (`take_attempts`), the next
//! deadline, and the outcome. The node drives it on tokio; the quorum simulator
//! drives the same machine.

use crate::address::Address;
use crate::quorum::Millis;

/// Deadlines of a routed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteTiming {
    /// An attempt with no answer after this long counts as failed.
    pub attempt_ms: Millis,
    /// After this long without an answer, the next owner is asked too.
    pub hedge_ms: Millis,
    /// The whole request gives up after this long.
    pub total_ms: Millis,
}

/// The order in which a node asks for a user's work: itself first when it is one of
/// the owners (every worker holds every user's history, so that saves a hop), then the
/// user's owners in ring order.
pub fn ask_order(me: &Address, mut owners: Vec<Address>) -> Vec<Address> {
    if let Some(i) = owners.iter().position(|o| o == me) {
        let mine = owners.remove(i);
        owners.insert(0, mine);
    }
    owners
}

/// Pause before walking the ring again after every owner failed.
const REWALK_MS: Millis = 100;
/// Pause before looking again when the ring is empty.
const EMPTY_RING_MS: Millis = 200;

/// Identifies one attempt of a route.
pub type AttemptId = u32;

/// "Ask `owner`", with the attempt's id for its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// Which attempt.
    pub id: AttemptId,
    /// The owner to ask.
    pub owner: Address,
}

/// How a route ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Routed<A> {
    /// The answer and the owner that gave it, unless every attempt failed.
    pub answer: Option<(Address, A)>,
    /// Owners asked.
    pub attempts: u32,
    /// What went wrong on the attempts that failed.
    pub failures: Vec<String>,
}

struct InFlight {
    id: AttemptId,
    owner: Address,
    deadline: Millis,
}

/// One routed request.
pub struct Route<A> {
    timing: RouteTiming,
    deadline: Millis,
    owners: Vec<Address>,
    next: usize,
    in_flight: Vec<InFlight>,
    last_ask: Millis,
    look_again_at: Option<Millis>,
    to_ask: Vec<Attempt>,
    attempts: u32,
    failures: Vec<String>,
    answer: Option<(Address, A)>,
}

impl<A> Route<A> {
    /// A request started at `now`; it first needs the owners.
    pub fn start(timing: RouteTiming, now: Millis) -> Route<A> {
        Route {
            timing,
            deadline: now + timing.total_ms,
            owners: Vec::new(),
            next: 0,
            in_flight: Vec::new(),
            last_ask: now,
            look_again_at: Some(now),
            to_ask: Vec::new(),
            attempts: 0,
            failures: Vec::new(),
            answer: None,
        }
    }

    /// Whether the driver should call `on_owners` with the user's current owners.
    pub fn needs_owners(&self, now: Millis) -> bool {
        self.answer.is_none() && now < self.deadline && self.look_again_at.is_some_and(|t| now >= t)
    }

    /// The user's owners on the current ring, first owner first.
    pub fn on_owners(&mut self, owners: Vec<Address>, now: Millis) {
        self.look_again_at = None;
        self.owners = owners;
        self.next = 0;
        if self.owners.is_empty() {
            self.failures.push("no worker is Up and reachable".into());
            self.look_again_at = Some(now + EMPTY_RING_MS);
        } else {
            self.ask_next(now);
        }
    }

    /// Attempts to make now.
    pub fn take_attempts(&mut self) -> Vec<Attempt> {
        std::mem::take(&mut self.to_ask)
    }

    /// The answer of attempt `id`: the route is decided, even if that attempt had
    /// already counted as failed (a late answer is still an answer).
    pub fn on_answer(&mut self, id: AttemptId, owner: Address, answer: A) {
        if self.answer.is_none() {
            self.in_flight.retain(|a| a.id != id);
            self.answer = Some((owner, answer));
        }
    }

    /// Attempt `id` failed; the next owner is asked at once if none is in flight.
    pub fn on_failure(&mut self, id: AttemptId, reason: &str, now: Millis) {
        let Some(i) = self.in_flight.iter().position(|a| a.id == id) else {
            return;
        };
        let failed = self.in_flight.remove(i);
        self.failures.push(format!("{}: {reason}", failed.owner));
        self.move_on(now);
    }

    /// The time: attempts past their deadline fail, and hedges and pauses fire.
    pub fn on_time(&mut self, now: Millis) {
        let late: Vec<AttemptId> = self
            .in_flight
            .iter()
            .filter(|a| now >= a.deadline)
            .map(|a| a.id)
            .collect();
        let reason = format!("no answer within {} ms", self.timing.attempt_ms);
        for id in late {
            self.on_failure(id, &reason, now);
        }
        let can_hedge = !self.in_flight.is_empty() && self.next < self.owners.len();
        if can_hedge && now >= self.last_ask + self.timing.hedge_ms {
            self.ask_next(now);
        }
    }

    /// When the driver must call `on_time` next (if nothing arrives before).
    pub fn next_deadline(&self) -> Millis {
        let mut next = self.deadline;
        for a in &self.in_flight {
            next = next.min(a.deadline);
        }
        if !self.in_flight.is_empty() && self.next < self.owners.len() {
            next = next.min(self.last_ask + self.timing.hedge_ms);
        }
        if let Some(t) = self.look_again_at {
            next = next.min(t);
        }
        next
    }

    /// The outcome, once an answer came or the deadline passed.
    pub fn outcome(&mut self, now: Millis) -> Option<Routed<A>> {
        if self.answer.is_none() && now < self.deadline {
            return None;
        }
        Some(Routed {
            answer: self.answer.take(),
            attempts: self.attempts,
            failures: std::mem::take(&mut self.failures),
        })
    }

    fn move_on(&mut self, now: Millis) {
        if !self.in_flight.is_empty() {
            return;
        }
        if self.next < self.owners.len() {
            self.ask_next(now);
        } else {
            // Every owner we knew of failed: look at the ring again shortly.
            self.look_again_at = Some(now + REWALK_MS);
        }
    }

    fn ask_next(&mut self, now: Millis) {
        let owner = self.owners[self.next].clone();
        self.next += 1;
        self.attempts += 1;
        self.last_ask = now;
        self.in_flight.push(InFlight {
            id: self.attempts,
            owner: owner.clone(),
            deadline: now + self.timing.attempt_ms,
        });
        self.to_ask.push(Attempt {
            id: self.attempts,
            owner,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: RouteTiming = RouteTiming {
        attempt_ms: 2000,
        hedge_ms: 100,
        total_ms: 4500,
    };

    fn owner(port: u16) -> Address {
        Address::new("10.0.0.1", port)
    }

    fn started(owners: &[u16]) -> Route<&'static str> {
        let mut route = Route::start(TIMING, 0);
        assert!(route.needs_owners(0));
        route.on_owners(owners.iter().map(|p| owner(*p)).collect(), 0);
        route
    }

    fn asked(route: &mut Route<&'static str>) -> Vec<u16> {
        route
            .take_attempts()
            .into_iter()
            .map(|a| a.owner.port)
            .collect()
    }

    #[test]
    fn a_node_that_is_an_owner_asks_itself_first() {
        let ring = vec![owner(2), owner(1), owner(3)];
        assert_eq!(
            ask_order(&owner(1), ring.clone()),
            [owner(1), owner(2), owner(3)]
        );
        assert_eq!(
            ask_order(&owner(9), ring.clone()),
            ring,
            "not an owner: ring order"
        );
    }

    #[test]
    fn the_first_owner_is_asked_and_its_answer_wins() {
        let mut route = started(&[1, 2, 3]);
        assert_eq!(asked(&mut route), [1]);
        assert_eq!(route.next_deadline(), 100, "the hedge is due");
        route.on_answer(1, owner(1), "ok");
        let done = route.outcome(5).expect("decided");
        assert_eq!(done.answer, Some((owner(1), "ok")));
        assert_eq!(done.attempts, 1);
    }

    #[test]
    fn a_slow_owner_is_hedged_and_a_failed_one_is_passed_over_at_once() {
        let mut route = started(&[1, 2, 3]);
        asked(&mut route);
        route.on_time(99);
        assert!(asked(&mut route).is_empty(), "not before the hedge delay");
        route.on_time(100);
        assert_eq!(asked(&mut route), [2], "hedged");
        route.on_failure(2, "boom", 120);
        assert!(asked(&mut route).is_empty(), "1 is still in flight");
        route.on_failure(1, "boom", 130);
        assert_eq!(asked(&mut route), [3], "failed over at once");
        route.on_answer(3, owner(3), "late but fine");
        let done = route.outcome(140).unwrap();
        assert_eq!(done.answer.unwrap().0, owner(3));
        assert_eq!(done.failures.len(), 2);
    }

    #[test]
    fn when_every_owner_failed_the_ring_is_walked_again() {
        let mut route = started(&[1]);
        asked(&mut route);
        route.on_failure(1, "down", 10);
        assert!(!route.needs_owners(10));
        assert_eq!(route.next_deadline(), 10 + REWALK_MS);
        assert!(route.needs_owners(10 + REWALK_MS));
        route.on_owners(vec![owner(2)], 10 + REWALK_MS);
        assert_eq!(asked(&mut route), [2]);
    }

    #[test]
    fn an_unanswered_attempt_times_out_and_the_route_gives_up_at_its_deadline() {
        let mut route = started(&[1]);
        asked(&mut route);
        route.on_time(2000);
        assert!(route.needs_owners(2000 + REWALK_MS));
        route.on_owners(vec![], 2100);
        assert!(route.outcome(4499).is_none());
        assert_eq!(route.next_deadline(), 2100 + EMPTY_RING_MS);
        let done = route.outcome(4500).expect("gave up");
        assert!(done.answer.is_none());
        assert_eq!(done.attempts, 1);
        assert!(done.failures.iter().any(|f| f.contains("no answer within")));
        assert!(done.failures.iter().any(|f| f.contains("no worker")));
    }
}
