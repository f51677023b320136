//! A deterministic simulator of the watch history's quorum protocol: coordinators
//! run the real [`QuorumRead`] and [`QuorumWrite`] machines and the real catch-up rule
//! ([`catch_up_needed`]); replicas answer `Store` and `Fetch` as the node does; clients
//! write and read; the network drops, delays, duplicates and cuts; replicas crash and
//! restart with or without their disk, one at a time (the single faults the service
//! promises to ride through).
//!
//! Catch-up and anti-entropy are modelled here (whole copies, not the node's bucket
//! digests), so what this proves of them is the rule, not the node's code for them.
//!
//! Invariants, after every step and at the end:
//! - every acknowledged watch is in every read that began after the acknowledgement
//!   and reached a majority;
//! - no read returns a watch that was never written;
//! - (not checked on its own) a replica that restarted must not count toward a read
//!   before it has caught up: counting it shows as a read that missed an acknowledged
//!   watch, which is how marking it ready at once is caught;
//! - after healing, every replica's copy is the same and holds every acknowledged
//!   watch.

use crate::address::Address;
use crate::quorum::{
    catch_up_needed, Deadlines, Millis, Quorum, QuorumRead, QuorumWrite, Replicas,
};
use crate::service::{RequestId, ServiceBody, Watch};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};

/// The deadlines the node uses (`Timing::default`).
const DEADLINES: Deadlines = Deadlines {
    hedge_ms: 40,
    total_ms: 1000,
};
/// How often a replica that is catching up asks again, and anti-entropy's period.
const CATCH_UP_MS: Millis = 200;
const ANTI_ENTROPY_MS: Millis = 500;
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
    /// Every message is dropped with this probability from now on.
    Loss(f64),
    /// Every message is delivered twice with this probability from now on.
    Duplicate(f64),
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
            let fault = match rng.random_range(0..6) {
                0 | 1 => QuorumFault::Crash {
                    replica,
                    down_ms: ms,
                    keep_disk: rng.random_bool(0.5),
                },
                2 | 3 => QuorumFault::Isolate { replica, ms },
                4 => QuorumFault::Loss(rng.random_range(0.0..0.3)),
                _ => QuorumFault::Duplicate(rng.random_range(0.0..0.3)),
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

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct QuorumOutcome {
    /// Writes acknowledged by a majority.
    pub acknowledged: usize,
    /// Writes that did not reach a majority in time.
    pub failed_writes: usize,
    /// Reads answered by a majority.
    pub reads: usize,
    /// Reads that did not reach a majority in time.
    pub failed_reads: usize,
}

/// What travels between replicas: the real quorum messages, and the model's
/// catch-up and anti-entropy copies.
#[derive(Clone, Debug)]
enum Payload {
    Quorum(ServiceBody),
    /// "Send me your whole copy" (catch-up conversation `RequestId`).
    AskCopy(RequestId),
    /// A whole copy, answering `AskCopy` (or, with id 0, an anti-entropy push).
    Copy(RequestId, Vec<Watch>),
}

struct Replica {
    address: Address,
    up: bool,
    copy: BTreeMap<(u32, u32), u64>,
    ready: bool,
    kept_disk: bool,
    catch_up_id: RequestId,
    merged_from: BTreeSet<usize>,
}

impl Replica {
    fn watches(&self, user: Option<u32>) -> Vec<Watch> {
        self.copy
            .iter()
            .filter(|((u, _), _)| user.is_none_or(|x| x == *u))
            .map(|((user, video), at_ms)| Watch {
                user: *user,
                video: *video,
                at_ms: *at_ms,
            })
            .collect()
    }

    fn merge(&mut self, watches: Vec<Watch>) {
        for w in watches {
            let at = self.copy.entry((w.user, w.video)).or_insert(w.at_ms);
            *at = (*at).min(w.at_ms);
        }
    }
}

enum Op {
    Read {
        machine: QuorumRead,
        user: u32,
        began: Millis,
    },
    Write {
        machine: QuorumWrite,
        watch: Watch,
    },
}

impl Op {
    fn take_sends(&mut self) -> Vec<(Address, ServiceBody)> {
        match self {
            Op::Read { machine, .. } => machine.take_sends(),
            Op::Write { machine, .. } => machine.take_sends(),
        }
    }

    fn on_reply(&mut self, from: &Address, body: ServiceBody) {
        match self {
            Op::Read { machine, .. } => machine.on_reply(from, body),
            Op::Write { machine, .. } => machine.on_reply(from, body),
        }
    }

    fn on_time(&mut self, now: Millis) {
        match self {
            Op::Read { machine, .. } => machine.on_time(now),
            Op::Write { machine, .. } => machine.on_time(now),
        }
    }
}

/// The simulator.
pub struct QuorumSim {
    now: Millis,
    rng: SmallRng,
    replicas: Vec<Replica>,
    /// Messages in flight: (due, sequence) -> (from, to, what).
    in_flight: BTreeMap<(Millis, u64), (usize, usize, Payload)>,
    seq: u64,
    faults: Vec<(Millis, QuorumFault)>,
    /// Crashed replicas: when each restarts, and with its disk or not.
    restarts: Vec<(Millis, usize, bool)>,
    next_id: RequestId,
    ops: BTreeMap<RequestId, (usize, Op)>,
    written: BTreeSet<(u32, u32)>,
    acknowledged: BTreeMap<(u32, u32), Millis>,
    isolated: Option<(usize, Millis)>,
    loss: f64,
    duplicate: f64,
    next_video: u32,
    outcome: QuorumOutcome,
}

impl QuorumSim {
    fn new(schedule: &QuorumSchedule) -> QuorumSim {
        let replicas = (0..schedule.replicas)
            .map(|i| Replica {
                address: Address::new("10.0.1.1", 3000 + i as u16),
                up: true,
                copy: BTreeMap::new(),
                ready: true,
                kept_disk: true,
                catch_up_id: 0,
                merged_from: BTreeSet::new(),
            })
            .collect();
        QuorumSim {
            now: 0,
            rng: SmallRng::seed_from_u64(schedule.seed),
            replicas,
            in_flight: BTreeMap::new(),
            seq: 0,
            faults: schedule.faults.clone(),
            restarts: Vec::new(),
            next_id: 1,
            ops: BTreeMap::new(),
            written: BTreeSet::new(),
            acknowledged: BTreeMap::new(),
            isolated: None,
            loss: 0.0,
            duplicate: 0.0,
            next_video: 1,
            outcome: QuorumOutcome::default(),
        }
    }

    fn cut(&self, from: usize, to: usize) -> bool {
        self.isolated
            .is_some_and(|(r, until)| self.now < until && (r == from || r == to))
    }

    fn send(&mut self, from: usize, to: usize, payload: Payload) {
        if from != to && (self.cut(from, to) || self.rng.random_bool(self.loss)) {
            return;
        }
        let copies = if self.rng.random_bool(self.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let at = self.now + self.rng.random_range(1..20);
            self.seq += 1;
            self.in_flight
                .insert((at, self.seq), (from, to, payload.clone()));
        }
    }

    fn index_of(&self, address: &Address) -> usize {
        self.replicas
            .iter()
            .position(|r| &r.address == address)
            .expect("a replica's address")
    }

    fn addresses(&self) -> Vec<Address> {
        self.replicas.iter().map(|r| r.address.clone()).collect()
    }

    fn send_quorum(&mut self, from: usize, sends: Vec<(Address, ServiceBody)>) {
        for (to, body) in sends {
            let to = self.index_of(&to);
            self.send(from, to, Payload::Quorum(body));
        }
    }

    /// A client asks replica `at` (as the user's worker) to write or read.
    fn start_op(&mut self, at: usize) -> Result<(), QuorumViolation> {
        let id = self.next_id;
        self.next_id += 1;
        let user = self.rng.random_range(1..=USERS);
        let all = self.addresses();
        let me = all[at].clone();
        let reaches = |_: &Address| true;
        let replicas = Replicas {
            all: &all,
            me: &me,
            reaches: &reaches,
        };
        let op = if self.rng.random_bool(0.5) {
            let watch = Watch {
                user,
                video: self.next_video,
                at_ms: self.now,
            };
            self.next_video += 1;
            self.written.insert((watch.user, watch.video));
            let mut machine =
                QuorumWrite::start(id, &[watch], &replicas, DEADLINES, self.now).expect("replicas");
            // The coordinator stores its own copy first (a replica, up by choice).
            self.replicas[at].merge(vec![watch]);
            machine.on_local_stored(&me);
            Op::Write { machine, watch }
        } else {
            let local = self.replicas[at]
                .ready
                .then(|| self.replicas[at].watches(Some(user)));
            let machine = QuorumRead::start(id, user, &replicas, local, DEADLINES, self.now)
                .expect("replicas");
            Op::Read {
                machine,
                user,
                began: self.now,
            }
        };
        self.ops.insert(id, (at, op));
        self.pump_op(id)
    }

    /// Sends what the op asks, and settles it if it is decided.
    fn pump_op(&mut self, id: RequestId) -> Result<(), QuorumViolation> {
        let Some((at, mut op)) = self.ops.remove(&id) else {
            return Ok(());
        };
        let sends = op.take_sends();
        self.send_quorum(at, sends);
        match &op {
            Op::Read {
                machine,
                user,
                began,
            } => match machine.outcome(self.now) {
                Some(Ok((watches, _))) => return self.check_read(*user, *began, &watches),
                Some(Err(_)) => {
                    self.outcome.failed_reads += 1;
                    return Ok(());
                }
                None => {}
            },
            Op::Write { machine, watch } => match machine.outcome(self.now) {
                Some(Ok(_)) => {
                    self.outcome.acknowledged += 1;
                    self.acknowledged
                        .insert((watch.user, watch.video), self.now);
                    return Ok(());
                }
                Some(Err(_)) => {
                    self.outcome.failed_writes += 1;
                    return Ok(());
                }
                None => {}
            },
        }
        self.ops.insert(id, (at, op));
        Ok(())
    }

    fn check_read(
        &mut self,
        user: u32,
        began: Millis,
        watches: &[Watch],
    ) -> Result<(), QuorumViolation> {
        self.outcome.reads += 1;
        let got: BTreeSet<(u32, u32)> = watches.iter().map(|w| (w.user, w.video)).collect();
        if let Some(invented) = got.iter().find(|w| !self.written.contains(*w)) {
            return Err(QuorumViolation {
                invariant: "a read returned a watch never written",
                detail: format!("{invented:?}"),
            });
        }
        let lost: Vec<&(u32, u32)> = self
            .acknowledged
            .iter()
            .filter(|(w, at)| w.0 == user && **at <= began && !got.contains(*w))
            .map(|(w, _)| w)
            .collect();
        if !lost.is_empty() {
            return Err(QuorumViolation {
                invariant: "a read that reached a majority missed an acknowledged watch",
                detail: format!("user {user}, read began at {began} ms, missing {lost:?}"),
            });
        }
        Ok(())
    }

    fn deliver(&mut self, from: usize, to: usize, payload: Payload) -> Result<(), QuorumViolation> {
        if !self.replicas[to].up {
            return Ok(());
        }
        match payload {
            Payload::Quorum(body) => self.deliver_quorum(from, to, body)?,
            Payload::AskCopy(id) => {
                let copy = self.replicas[to].watches(None);
                self.send(to, from, Payload::Copy(id, copy));
            }
            Payload::Copy(id, watches) => {
                let r = &mut self.replicas[to];
                r.merge(watches);
                if id != 0 && id == r.catch_up_id {
                    r.merged_from.insert(from);
                }
            }
        }
        Ok(())
    }

    fn deliver_quorum(
        &mut self,
        from: usize,
        to: usize,
        body: ServiceBody,
    ) -> Result<(), QuorumViolation> {
        let from_address = self.replicas[from].address.clone();
        match body {
            ServiceBody::Store { id, watches } => {
                self.replicas[to].merge(watches);
                self.send(to, from, Payload::Quorum(ServiceBody::Stored { id }));
            }
            ServiceBody::Fetch { id, user } => {
                let r = &self.replicas[to];
                let reply = ServiceBody::Fetched {
                    id,
                    ready: r.ready,
                    watches: r.watches(Some(user)),
                };
                self.send(to, from, Payload::Quorum(reply));
            }
            ServiceBody::Stored { id } | ServiceBody::Fetched { id, .. } => {
                if let Some((at, op)) = self.ops.get_mut(&id) {
                    if *at == to {
                        op.on_reply(&from_address, body);
                        self.pump_op(id)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Periodic work of replica `i`: catch-up while not ready, anti-entropy after.
    fn replica_round(&mut self, i: usize) {
        let others: Vec<usize> = (0..self.replicas.len()).filter(|o| *o != i).collect();
        if !self.replicas[i].ready {
            let r = &self.replicas[i];
            let done = others.iter().filter(|o| r.merged_from.contains(*o)).count();
            if done >= catch_up_needed(others.len(), r.kept_disk) {
                self.replicas[i].ready = true;
                return;
            }
            if self.now.is_multiple_of(CATCH_UP_MS) {
                let id = self.replicas[i].catch_up_id;
                let missing: Vec<usize> = others
                    .into_iter()
                    .filter(|o| !self.replicas[i].merged_from.contains(o))
                    .collect();
                for o in missing {
                    self.send(i, o, Payload::AskCopy(id));
                }
            }
        } else if self.now.is_multiple_of(ANTI_ENTROPY_MS) {
            let peer = others[self.rng.random_range(0..others.len())];
            let copy = self.replicas[i].watches(None);
            self.send(i, peer, Payload::Copy(0, copy));
        }
    }

    fn apply(&mut self, fault: &QuorumFault) {
        match fault {
            QuorumFault::Crash {
                replica,
                down_ms,
                keep_disk,
            } => {
                // Its process is gone, and with it what it was coordinating.
                self.replicas[*replica].up = false;
                self.ops.retain(|_, (at, _)| at != replica);
                self.restarts
                    .push((self.now + down_ms, *replica, *keep_disk));
            }
            QuorumFault::Isolate { replica, ms } => self.isolated = Some((*replica, self.now + ms)),
            QuorumFault::Loss(p) => self.loss = *p,
            QuorumFault::Duplicate(p) => self.duplicate = *p,
        }
    }

    fn restart(&mut self, replica: usize, keep_disk: bool) {
        let id = self.next_id;
        self.next_id += 1;
        let r = &mut self.replicas[replica];
        r.up = true;
        r.ready = false;
        r.kept_disk = keep_disk;
        r.catch_up_id = id;
        r.merged_from.clear();
        if !keep_disk {
            r.copy.clear();
        }
    }

    /// One millisecond: faults, deliveries, op deadlines, replica rounds, clients.
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
            let (from, to, payload) = entry.remove();
            self.deliver(from, to, payload)?;
        }
        let due: Vec<RequestId> = self.ops.keys().copied().collect();
        for id in due {
            if let Some((_, op)) = self.ops.get_mut(&id) {
                op.on_time(self.now);
            }
            self.pump_op(id)?;
        }
        for i in 0..self.replicas.len() {
            if self.replicas[i].up {
                self.replica_round(i);
            }
        }
        if clients && self.rng.random_bool(0.05) {
            let up: Vec<usize> = (0..self.replicas.len())
                .filter(|i| self.replicas[*i].up)
                .collect();
            if !up.is_empty() {
                let at = up[self.rng.random_range(0..up.len())];
                self.start_op(at)?;
            }
        }
        self.now += 1;
        Ok(())
    }

    fn converged(&self) -> Result<(), QuorumViolation> {
        let first = &self.replicas[0].copy;
        for (i, r) in self.replicas.iter().enumerate() {
            if &r.copy != first || !r.ready {
                return Err(QuorumViolation {
                    invariant: "replicas did not converge after healing",
                    detail: format!("n{i} holds {} watches, n0 {}", r.copy.len(), first.len()),
                });
            }
        }
        if let Some(lost) = self.acknowledged.keys().find(|w| !first.contains_key(*w)) {
            return Err(QuorumViolation {
                invariant: "an acknowledged watch is on no replica after healing",
                detail: format!("{lost:?}"),
            });
        }
        Ok(())
    }
}

/// Plays `schedule`: clients write and read throughout its faults and 2 s beyond,
/// then the network heals and replicas have 10 s to converge.
pub fn run_quorum_schedule(schedule: &QuorumSchedule) -> Result<QuorumOutcome, QuorumViolation> {
    let mut sim = QuorumSim::new(schedule);
    let clients_until = schedule.heal_at + 2000;
    while sim.now < clients_until {
        sim.step(true)?;
    }
    sim.loss = 0.0;
    sim.duplicate = 0.0;
    sim.isolated = None;
    let settle_until = sim.now + 10_000;
    while sim.now < settle_until {
        sim.step(false)?;
    }
    sim.converged()?;
    Ok(sim.outcome)
}
