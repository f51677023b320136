//! The replicas and owners of the service simulator: a replica's copy, its
//! anti-entropy and catch-up machine, its answers to `Store` and `Fetch`, and the
//! quorum operations an owner runs for routed requests.

use super::{pair, QuorumSim, QuorumViolation, DEADLINES, SYNC};
use crate::address::Address;
use crate::anti_entropy::{self, Holdings, Sync};
use crate::quorum::{Millis, Quorum, QuorumError, QuorumRead, QuorumWrite, Replicas};
use crate::service::{RequestId, ServiceBody, Watch};
use rand::Rng;
use std::collections::BTreeMap;

/// A replica's set of watches: `(user, video)` to the earliest time.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Copy(BTreeMap<(u32, u32), u64>);

impl Copy {
    pub(super) fn watches(&self, user: Option<u32>) -> Vec<Watch> {
        self.0
            .iter()
            .filter(|((u, _), _)| user.is_none_or(|x| x == *u))
            .map(|((user, video), at_ms)| Watch {
                user: *user,
                video: *video,
                at_ms: *at_ms,
            })
            .collect()
    }

    pub(super) fn merge(&mut self, watches: Vec<Watch>) {
        for w in watches {
            let at = self.0.entry(pair(&w)).or_insert(w.at_ms);
            *at = (*at).min(w.at_ms);
        }
    }

    pub(super) fn holds(&self, watch: (u32, u32)) -> bool {
        self.0.contains_key(&watch)
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}

impl Holdings for Copy {
    fn digests(&self) -> Vec<u64> {
        anti_entropy::digests_of(&self.watches(None))
    }

    fn in_buckets(&self, buckets: &[u16]) -> Vec<Watch> {
        let mut all = self.watches(None);
        all.retain(|w| buckets.contains(&(w.bucket() as u16)));
        all
    }
}

/// One replica (every simulated node is one, and also takes client requests).
pub(super) struct Replica {
    pub(super) address: Address,
    pub(super) up: bool,
    pub(super) copy: Copy,
    pub(super) sync: Sync,
    /// When its process last started.
    started_at: Millis,
}

impl Replica {
    /// A replica of a new cluster: empty, and catching up with the others like any
    /// replica that starts.
    pub(super) fn founding(address: Address, seed: u64) -> Replica {
        Replica {
            address,
            up: true,
            copy: Copy::default(),
            sync: Sync::start(SYNC, seed, false, 0),
            started_at: 0,
        }
    }
}

/// A quorum operation an owner runs for a routed request.
pub(super) enum Op {
    Read { machine: QuorumRead },
    Write { machine: QuorumWrite, watch: Watch },
}

/// How an owner's operation ended.
enum Decided {
    Read(Result<(Vec<Watch>, u32), QuorumError>),
    Write(Result<(Vec<Address>, u32), QuorumError>, Watch),
}

/// An owner's operation, and whom to answer.
pub(super) struct OwnerOp {
    owner: usize,
    op: Op,
    /// The node that routed the request, and the id to answer with.
    reply_to: usize,
    request: RequestId,
}

impl QuorumSim {
    fn view_of(&self, at: usize, f: impl FnOnce(&Replicas) -> Op) -> Op {
        let all = self.addresses();
        let reaches = |_: &Address| true;
        f(&Replicas {
            all: &all,
            me: &all[at],
            reaches: &reaches,
        })
    }

    /// Routed work arrives at `owner` from `api`: a quorum read or write.
    pub(super) fn serve_routed(&mut self, owner: usize, api: usize, body: ServiceBody) {
        let id = self.fresh_id();
        let now = self.now;
        let (request, op) = match body {
            ServiceBody::ReadHistory { id: request, user } => {
                let local = self.replicas[owner]
                    .sync
                    .is_ready()
                    .then(|| self.replicas[owner].copy.watches(Some(user)));
                let op = self.view_of(owner, |replicas| Op::Read {
                    machine: QuorumRead::start(id, user, replicas, local, DEADLINES, now)
                        .expect("replicas"),
                });
                (request, op)
            }
            ServiceBody::RecordWatch { id: request, watch } => {
                let me = self.replicas[owner].address.clone();
                let mut op = self.view_of(owner, |replicas| Op::Write {
                    machine: QuorumWrite::start(id, &[watch], replicas, DEADLINES, now)
                        .expect("replicas"),
                    watch,
                });
                // The owner stores its own copy first (a replica, up by choice).
                self.replicas[owner].copy.merge(vec![watch]);
                if let Op::Write { machine, .. } = &mut op {
                    machine.on_local_stored(&me);
                }
                (request, op)
            }
            _ => return,
        };
        let op = OwnerOp {
            owner,
            op,
            reply_to: api,
            request,
        };
        self.ops.insert(id, op);
        self.pump_op(id);
    }

    /// Sends what the op asks, and answers the routed request once it is decided
    /// (the op stays in place until then: ops are polled every millisecond).
    fn pump_op(&mut self, id: RequestId) {
        let now = self.now;
        let Some(owner_op) = self.ops.get_mut(&id) else {
            return;
        };
        let (sends, decided) = match &mut owner_op.op {
            Op::Read { machine } => (
                machine.take_sends(),
                machine.outcome(now).map(Decided::Read),
            ),
            Op::Write { machine, watch } => {
                let watch = *watch;
                let decided = machine.outcome(now).map(|o| Decided::Write(o, watch));
                (machine.take_sends(), decided)
            }
        };
        let (owner, reply_to, request) = (owner_op.owner, owner_op.reply_to, owner_op.request);
        self.send_all(owner, sends);
        if let Some(decided) = decided {
            self.ops.remove(&id);
            let answer = self.answer(decided, request);
            self.send(owner, reply_to, answer);
        }
    }

    /// The answer to a routed request; an acknowledged write is recorded as such.
    fn answer(&mut self, decided: Decided, request: RequestId) -> ServiceBody {
        let failed = |e: QuorumError| ServiceBody::Failed {
            id: request,
            reason: e.to_string(),
        };
        match decided {
            Decided::Read(Ok((watches, replicas_read))) => ServiceBody::HistoryRead {
                id: request,
                watches,
                replicas_read,
            },
            Decided::Write(Ok((acknowledged_by, replicas)), watch) => {
                let now = self.now;
                self.acknowledged.entry(pair(&watch)).or_insert(now);
                ServiceBody::WatchRecorded {
                    id: request,
                    acknowledged_by,
                    replicas,
                }
            }
            Decided::Read(Err(e)) | Decided::Write(Err(e), _) => failed(e),
        }
    }

    /// Deadlines of the owners' operations.
    pub(super) fn ops_on_time(&mut self) -> Result<(), QuorumViolation> {
        let now = self.now;
        let ids: Vec<RequestId> = self.ops.keys().copied().collect();
        for id in ids {
            if self.ops.get(&id).is_some_and(|o| self.is_frozen(o.owner)) {
                continue;
            }
            if let Some(owner_op) = self.ops.get_mut(&id) {
                match &mut owner_op.op {
                    Op::Read { machine } => machine.on_time(now),
                    Op::Write { machine, .. } => machine.on_time(now),
                }
            }
            self.pump_op(id);
        }
        Ok(())
    }

    /// Replication and anti-entropy messages at replica `to`.
    pub(super) fn deliver_to_replica(
        &mut self,
        from: usize,
        to: usize,
        body: ServiceBody,
    ) -> Result<(), QuorumViolation> {
        let from_address = self.replicas[from].address.clone();
        match body {
            ServiceBody::Store { id, watches } => {
                self.replicas[to].copy.merge(watches);
                self.send(to, from, ServiceBody::Stored { id });
            }
            ServiceBody::Fetch { id, user } => {
                let r = &self.replicas[to];
                let reply = ServiceBody::Fetched {
                    id,
                    ready: r.sync.is_ready(),
                    watches: r.copy.watches(Some(user)),
                };
                self.send(to, from, reply);
            }
            ServiceBody::Stored { id } | ServiceBody::Fetched { id, .. } => {
                if let Some(owner_op) = self.ops.get_mut(&id).filter(|o| o.owner == to) {
                    match &mut owner_op.op {
                        Op::Read { machine } => machine.on_reply(&from_address, body),
                        Op::Write { machine, .. } => machine.on_reply(&from_address, body),
                    }
                    self.pump_op(id);
                }
            }
            ServiceBody::Digest { id, buckets } => {
                let answers = anti_entropy::answer_digest(id, &buckets, &self.replicas[to].copy);
                for answer in answers {
                    self.send(to, from, answer);
                }
            }
            ServiceBody::Buckets {
                id,
                ask,
                watches,
                last,
            } => self.receive_buckets(from, to, id, &ask, watches, last)?,
            _ => {}
        }
        Ok(())
    }

    fn receive_buckets(
        &mut self,
        from: usize,
        to: usize,
        id: RequestId,
        ask: &[u16],
        watches: Vec<Watch>,
        last: bool,
    ) -> Result<(), QuorumViolation> {
        let from_address = self.replicas[from].address.clone();
        let received = anti_entropy::receive_buckets(
            &from_address,
            id,
            ask,
            watches,
            last,
            &self.replicas[to].copy,
        );
        for answer in received.answers {
            self.send(to, from, answer);
        }
        self.replicas[to].copy.merge(received.merge);
        if let Some((peer, id)) = received.completes {
            let all = self.addresses();
            let was_ready = self.replicas[to].sync.is_ready();
            self.replicas[to].sync.on_merged(peer, id, &all, &all[to]);
            self.check_caught_up(to, was_ready)?;
        }
        Ok(())
    }

    /// Replica `i`'s rounds of catch-up and anti-entropy.
    pub(super) fn replica_round(&mut self, i: usize) -> Result<(), QuorumViolation> {
        let all = self.addresses();
        let was_ready = self.replicas[i].sync.is_ready();
        let r = &mut self.replicas[i];
        if let Some(round) = r.sync.on_time(self.now, &all, &all[i], &r.copy) {
            self.send_all(i, round.sends);
        }
        self.check_caught_up(i, was_ready)
    }

    /// A replica that just became ready must hold every watch acknowledged before
    /// its process started.
    fn check_caught_up(&self, i: usize, was_ready: bool) -> Result<(), QuorumViolation> {
        let r = &self.replicas[i];
        if was_ready || !r.sync.is_ready() {
            return Ok(());
        }
        let missing: Vec<&(u32, u32)> = self
            .acknowledged
            .iter()
            .filter(|(w, at)| **at < r.started_at && !r.copy.holds(**w))
            .map(|(w, _)| w)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(QuorumViolation {
            invariant: "a restarted replica counted toward reads before it caught up",
            detail: format!(
                "n{i} (restarted at {} ms) ready at {} ms without {missing:?}",
                r.started_at, self.now
            ),
        })
    }

    /// Its process is gone, and with it what it was coordinating.
    pub(super) fn crash(&mut self, replica: usize) {
        self.replicas[replica].up = false;
        self.ops.retain(|_, op| op.owner != replica);
        self.lose_requests_at(replica);
    }

    pub(super) fn restart(&mut self, replica: usize, keep_disk: bool) {
        let seed = self.rng.random();
        let now = self.now;
        let r = &mut self.replicas[replica];
        r.up = true;
        r.started_at = now;
        r.sync = Sync::start(SYNC, seed, keep_disk, now);
        if !keep_disk {
            r.copy = Copy::default();
        }
    }
}
