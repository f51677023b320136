//! A deterministic simulator of the recommendation service's protocol: the real
//! machines, on a simulated network and clock.
//!
//! - Clients send each request to a random node (down or not: a client that finds its
//!   node down, or loses it mid-request, fails over to the next), which routes it with
//!   the real [`Route`](crate::routing::Route) to the user's owners on the real ring
//!   (`client.rs`).
//! - Owners read and write with the real [`QuorumRead`](crate::quorum::QuorumRead)
//!   and [`QuorumWrite`](crate::quorum::QuorumWrite); replicas answer `Store` and
//!   `Fetch` as the node does, and run the real anti-entropy and catch-up machine
//!   ([`Sync`](crate::anti_entropy::Sync)) over bucket digests (`replica.rs`).
//! - The network drops, delays, duplicates and cuts; replicas crash and restart with
//!   or without their disk, one at a time (the single faults the service promises to
//!   ride through).
//!
//! Invariants, after every step and at the end:
//! - every acknowledged watch is in every read that began after the acknowledgement
//!   and was answered;
//! - no read returns a watch that was never written;
//! - a replica that restarted holds, once it counts toward reads again, every watch
//!   acknowledged before it restarted;
//! - after healing, every replica's copy is the same and holds every acknowledged
//!   watch.
//!
//! Membership is static here: every replica is in the view and on the ring throughout
//! (the membership core has its own simulator).

mod client;
mod replica;

use crate::address::Address;
use crate::anti_entropy::SyncTiming;
use crate::quorum::{Deadlines, Millis};
use crate::routing::RouteTiming;
use crate::service::{RequestId, ServiceBody, Watch};
use client::Request;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use replica::{OwnerOp, Replica};
use std::collections::{BTreeMap, BTreeSet};

/// The deadlines the node uses (`Timing::default`).
const DEADLINES: Deadlines = Deadlines {
    hedge_ms: 40,
    total_ms: 1000,
};
const ROUTE: RouteTiming = RouteTiming {
    attempt_ms: 2000,
    hedge_ms: 100,
    total_ms: 4500,
};
/// Anti-entropy every 500 ms (the node: 1 s), catch-up every 200 ms as the node.
const SYNC: SyncTiming = SyncTiming {
    period_ms: 500,
    catch_up_ms: 200,
};
/// Users the clients write for and read.
const USERS: u32 = 4;

/// One fault of a schedule.
#[derive(Clone, Debug, PartialEq)]
pub enum QuorumFault {
    /// The replica's process dies; it restarts after the given time (ms), with its
    /// disk or without.
    Crash {
        /// Which replica.
        replica: usize,
        /// Down for this long.
        down_ms: Millis,
        /// Whether its copy survives.
        keep_disk: bool,
    },
    /// The replica is cut off from every other for this long.
    Isolate {
        /// Which replica.
        replica: usize,
        /// For this long.
        ms: Millis,
    },
    /// The replica's process is paused for this long (SIGSTOP): what is sent to it
    /// waits, and it does nothing, until it resumes.
    Freeze {
        /// Which replica.
        replica: usize,
        /// For this long.
        ms: Millis,
    },
    /// Messages from one replica to another are dropped for this long.
    CutOneWay {
        /// Sender.
        from: usize,
        /// Receiver.
        to: usize,
        /// For this long.
        ms: Millis,
    },
    /// Every message is dropped with this probability from now on.
    Loss(f64),
    /// Every message is delivered twice with this probability from now on.
    Duplicate(f64),
    /// Messages take up to this much longer from now on, so they overtake each other.
    Reorder(Millis),
}

/// A seeded run: replicas, faults at times, and when everything heals.
#[derive(Clone, Debug)]
pub struct QuorumSchedule {
    /// The seed (network and clients draw from it).
    pub seed: u64,
    /// Number of replicas (3 to 5).
    pub replicas: usize,
    /// Faults, by time (ms).
    pub faults: Vec<(Millis, QuorumFault)>,
    /// When loss and duplication stop.
    pub heal_at: Millis,
}

impl QuorumSchedule {
    /// The schedule of `seed`: 3 to 5 replicas, 1 to 5 faults within 8 s, one replica
    /// down or cut off at a time.
    pub fn generate(seed: u64) -> QuorumSchedule {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x005e_ed0f_9a0e);
        let replicas = rng.random_range(3..=5);
        let mut faults = Vec::new();
        let mut free_at = 500;
        for _ in 0..rng.random_range(1..=5) {
            let at = free_at + rng.random_range(0..1500);
            let replica = rng.random_range(0..replicas);
            let ms = rng.random_range(100..2500);
            let fault = match rng.random_range(0..9) {
                0 | 1 => QuorumFault::Crash {
                    replica,
                    down_ms: ms,
                    keep_disk: rng.random_bool(0.5),
                },
                2 => QuorumFault::Isolate { replica, ms },
                3 => QuorumFault::Freeze { replica, ms },
                4 => QuorumFault::CutOneWay {
                    from: replica,
                    to: (replica + rng.random_range(1..replicas)) % replicas,
                    ms,
                },
                5 => QuorumFault::Loss(rng.random_range(0.0..0.3)),
                6 => QuorumFault::Duplicate(rng.random_range(0.0..0.3)),
                7 => QuorumFault::Reorder(rng.random_range(20..200)),
                _ => QuorumFault::CutOneWay {
                    from: (replica + rng.random_range(1..replicas)) % replicas,
                    to: replica,
                    ms,
                },
            };
            // The next fault of a replica waits until this one is over and it has had
            // time to catch up, so at most one replica is impaired at a time.
            free_at = at + ms + 1500;
            faults.push((at, fault));
        }
        QuorumSchedule {
            seed,
            replicas,
            faults,
            heal_at: free_at,
        }
    }
}

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumViolation {
    /// Which invariant.
    pub invariant: &'static str,
    /// What was seen.
    pub detail: String,
}

/// What a run did, counted per client request.
#[derive(Clone, Debug, Default)]
pub struct QuorumOutcome {
    /// Watches the clients saw acknowledged.
    pub acknowledged: usize,
    /// Writes whose route ended without an acknowledgement.
    pub failed_writes: usize,
    /// Reads answered.
    pub reads: usize,
    /// Reads whose route ended without an answer.
    pub failed_reads: usize,
    /// Requests a client sent again elsewhere because its node was down or died.
    pub failed_over: usize,
}

/// The simulator.
pub struct QuorumSim {
    now: Millis,
    rng: SmallRng,
    replicas: Vec<Replica>,
    /// Every replica's address (the view never changes).
    all: std::sync::Arc<[Address]>,
    /// The ring over them.
    ring: crate::ring::Ring,
    /// Messages in flight: (due, sequence) -> (from, to, what).
    in_flight: BTreeMap<(Millis, u64), (usize, usize, ServiceBody)>,
    seq: u64,
    faults: Vec<(Millis, QuorumFault)>,
    /// Crashed replicas: when each restarts, and with its disk or not.
    restarts: Vec<(Millis, usize, bool)>,
    next_id: RequestId,
    /// Quorum operations at owners, by the id in their messages.
    ops: BTreeMap<RequestId, OwnerOp>,
    /// Client requests being routed, by request id.
    requests: BTreeMap<RequestId, Request>,
    /// The request and attempt each routed message id belongs to.
    attempt_of: BTreeMap<RequestId, (RequestId, crate::routing::AttemptId)>,
    written: BTreeSet<(u32, u32)>,
    acknowledged: BTreeMap<(u32, u32), Millis>,
    isolated: Option<(usize, Millis)>,
    /// A one-way cut: from, to, until.
    one_way: Option<(usize, usize, Millis)>,
    /// A paused replica, and until when.
    frozen: Option<(usize, Millis)>,
    /// Extra delay a message may take (reordering).
    jitter: Millis,
    loss: f64,
    duplicate: f64,
    next_video: u32,
    outcome: QuorumOutcome,
}

impl QuorumSim {
    fn new(schedule: &QuorumSchedule) -> QuorumSim {
        let mut rng = SmallRng::seed_from_u64(schedule.seed);
        let replicas: Vec<Replica> = (0..schedule.replicas)
            .map(|i| Replica::founding(Address::new("10.0.1.1", 3000 + i as u16), rng.random()))
            .collect();
        let all: std::sync::Arc<[Address]> = replicas.iter().map(|r| r.address.clone()).collect();
        QuorumSim {
            now: 0,
            rng,
            replicas,
            ring: crate::ring::Ring::new(all.iter().cloned()),
            all,
            in_flight: BTreeMap::new(),
            seq: 0,
            faults: schedule.faults.clone(),
            restarts: Vec::new(),
            next_id: 1,
            ops: BTreeMap::new(),
            requests: BTreeMap::new(),
            attempt_of: BTreeMap::new(),
            written: BTreeSet::new(),
            acknowledged: BTreeMap::new(),
            isolated: None,
            one_way: None,
            frozen: None,
            jitter: 0,
            loss: 0.0,
            duplicate: 0.0,
            next_video: 1,
            outcome: QuorumOutcome::default(),
        }
    }

    fn fresh_id(&mut self) -> RequestId {
        self.next_id += 1;
        self.next_id
    }

    fn cut(&self, from: usize, to: usize) -> bool {
        let isolated = self
            .isolated
            .is_some_and(|(r, until)| self.now < until && (r == from || r == to));
        let one_way = self
            .one_way
            .is_some_and(|(f, t, until)| self.now < until && f == from && t == to);
        isolated || one_way
    }

    /// Whether replica `i`'s process is paused now.
    fn is_frozen(&self, i: usize) -> bool {
        self.frozen
            .is_some_and(|(r, until)| r == i && self.now < until)
    }

    /// Sends over the network; a node's message to itself is delivered at once.
    fn send(&mut self, from: usize, to: usize, body: ServiceBody) {
        if from == to {
            self.seq += 1;
            self.in_flight
                .insert((self.now, self.seq), (from, to, body));
            return;
        }
        if self.cut(from, to) || self.rng.random_bool(self.loss) {
            return;
        }
        let copies = if self.rng.random_bool(self.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let at = self.now + self.rng.random_range(1..20 + self.jitter);
            self.seq += 1;
            self.in_flight
                .insert((at, self.seq), (from, to, body.clone()));
        }
    }

    fn send_all(&mut self, from: usize, sends: Vec<(Address, ServiceBody)>) {
        for (to, body) in sends {
            let to = self.index_of(&to);
            self.send(from, to, body);
        }
    }

    fn index_of(&self, address: &Address) -> usize {
        self.replicas
            .iter()
            .position(|r| &r.address == address)
            .expect("a replica's address")
    }

    fn addresses(&self) -> std::sync::Arc<[Address]> {
        std::sync::Arc::clone(&self.all)
    }

    fn deliver(
        &mut self,
        from: usize,
        to: usize,
        body: ServiceBody,
    ) -> Result<(), QuorumViolation> {
        if !self.replicas[to].up {
            return Ok(());
        }
        match body {
            ServiceBody::ReadHistory { .. } | ServiceBody::RecordWatch { .. } => {
                self.serve_routed(to, from, body);
                Ok(())
            }
            ServiceBody::HistoryRead { id, .. }
            | ServiceBody::WatchRecorded { id, .. }
            | ServiceBody::Failed { id, .. } => self.on_routed_answer(to, from, id, body),
            other => self.deliver_to_replica(from, to, other),
        }
    }

    fn apply(&mut self, fault: &QuorumFault) {
        match fault {
            QuorumFault::Crash {
                replica,
                down_ms,
                keep_disk,
            } => {
                self.crash(*replica);
                self.restarts
                    .push((self.now + down_ms, *replica, *keep_disk));
            }
            QuorumFault::Isolate { replica, ms } => self.isolated = Some((*replica, self.now + ms)),
            QuorumFault::Freeze { replica, ms } => self.frozen = Some((*replica, self.now + ms)),
            QuorumFault::CutOneWay { from, to, ms } => {
                self.one_way = Some((*from, *to, self.now + ms));
            }
            QuorumFault::Reorder(ms) => self.jitter = *ms,
            QuorumFault::Loss(p) => self.loss = *p,
            QuorumFault::Duplicate(p) => self.duplicate = *p,
        }
    }

    /// One millisecond: faults, deliveries, deadlines, replica rounds, clients.
    fn step(&mut self, clients: bool) -> Result<(), QuorumViolation> {
        while let Some(i) = self.faults.iter().position(|(at, _)| *at <= self.now) {
            let (_, fault) = self.faults.remove(i);
            self.apply(&fault);
        }
        while let Some(i) = self.restarts.iter().position(|(at, _, _)| *at <= self.now) {
            let (_, replica, keep_disk) = self.restarts.remove(i);
            self.restart(replica, keep_disk);
        }
        while let Some(entry) = self.in_flight.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let (from, to, body) = entry.remove();
            self.deliver(from, to, body)?;
        }
        self.ops_on_time()?;
        self.requests_on_time()?;
        for i in 0..self.replicas.len() {
            if self.replicas[i].up && !self.is_frozen(i) {
                self.replica_round(i)?;
            }
        }
        if clients && self.rng.random_bool(0.05) {
            self.new_request()?;
        }
        self.now += 1;
        Ok(())
    }

    fn converged(&self) -> Result<(), QuorumViolation> {
        let first = &self.replicas[0].copy;
        for (i, r) in self.replicas.iter().enumerate() {
            if r.copy != *first || !r.sync.is_ready() {
                return Err(QuorumViolation {
                    invariant: "replicas did not converge after healing",
                    detail: format!(
                        "n{i} holds {} watches (ready: {}), n0 {}",
                        r.copy.len(),
                        r.sync.is_ready(),
                        first.len()
                    ),
                });
            }
        }
        if let Some(lost) = self.acknowledged.keys().find(|w| !first.holds(**w)) {
            return Err(QuorumViolation {
                invariant: "an acknowledged watch is on no replica after healing",
                detail: format!("{lost:?}"),
            });
        }
        Ok(())
    }
}

/// Plays `schedule`: clients write and read throughout its faults and 2 s beyond,
/// then the network heals; requests still open finish, and replicas have 10 s to
/// converge.
pub fn run_quorum_schedule(schedule: &QuorumSchedule) -> Result<QuorumOutcome, QuorumViolation> {
    let mut sim = QuorumSim::new(schedule);
    let clients_until = schedule.heal_at + 2000;
    while sim.now < clients_until {
        sim.step(true)?;
    }
    sim.loss = 0.0;
    sim.duplicate = 0.0;
    sim.isolated = None;
    sim.one_way = None;
    sim.frozen = None;
    sim.jitter = 0;
    let settle_until = sim.now + 10_000;
    while sim.now < settle_until {
        sim.step(false)?;
    }
    sim.converged()?;
    Ok(sim.outcome)
}

/// A watch as a `(user, video)` pair.
fn pair(w: &Watch) -> (u32, u32) {
    (w.user, w.video)
}
