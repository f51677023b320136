//! Replication of the watch history over the workers, in the style of Akka
//! Distributed Data with write- and read-majority over a grow-only set. The quorum
//! rules are the pure machines of `shared::quorum`, which this module drives on
//! tokio; anti-entropy and catch-up run here.
//!
//! - A write goes to every replica; it is acknowledged once a majority (this node
//!   included, when it is a replica) hold it on disk.
//! - A read merges the copies of a majority of replicas, so it meets every
//!   acknowledged write: two majorities of the same replicas always share one.
//! - Anti-entropy: every period, each replica sends one random other replica its 64
//!   bucket digests; buckets that differ are exchanged both ways and merged. Copies
//!   converge, and a watch held by only a majority reaches the rest.
//! - Catch-up: after it starts, a replica's copy does not count toward reads until it
//!   has merged enough copies of the others that every acknowledged write is among
//!   them: a majority of the others for a new node (or one that lost its disk, since
//!   every acknowledged write may be on others only), or, for a node that kept its
//!   disk (which holds everything it acknowledged), enough others to meet every
//!   majority it was not part of: N - 1 - floor(N/2) of them (one of two, in a cluster
//!   of three). So no read misses a write the replica never saw.
//!
//! Majorities count every replica in the view, reachable or not, so a partitioned
//! minority can neither acknowledge a write nor answer a read on its own.

use super::metrics::Exchange;
use super::Service;
use rand::seq::IndexedRandom;
use shared::quorum::{Deadlines, Quorum, QuorumRead, QuorumWrite, Replicas};
use shared::service::{RequestId, ServiceBody, Watch, BUCKETS, MAX_WATCHES_PER_MESSAGE};
use shared::Address;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The catch-up conversation after start.
pub struct CatchUp {
    /// The id of our digests; answers carrying it count.
    pub id: RequestId,
    /// Replicas whose full answer has been merged.
    pub merged_from: BTreeSet<Address>,
}

impl CatchUp {
    /// A new conversation.
    pub fn new(seed: u64) -> CatchUp {
        CatchUp {
            id: seed.rotate_left(32) | 1,
            merged_from: BTreeSet::new(),
        }
    }
}

/// Why a read or write did not reach a majority, or could not be stored here.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QuorumError {
    /// The quorum itself failed (no replicas, or too few answered in time).
    #[error(transparent)]
    Quorum(#[from] shared::quorum::QuorumError),
    /// This node's own store failed.
    #[error(transparent)]
    Store(#[from] super::store::StoreError),
}

impl Service {
    /// The user's recorded watches, merged from a majority of replicas; and how many
    /// replicas were merged (`shared::quorum::QuorumRead` decides; this drives it).
    pub async fn read_user(&self, user: u32) -> Result<(Vec<Watch>, u32), QuorumError> {
        let started = tokio::time::Instant::now();
        let view = self.view();
        let me = &self.identity.me.address;
        let local = (view.replicas.contains(me) && self.is_ready()).then(|| self.store.user(user));
        let call = self.open_call();
        let read = with_replicas(&view, me, |replicas| {
            QuorumRead::start(call.id, user, replicas, local, self.deadlines(), 0)
        })?;
        let result = self.drive(call, read, started).await?;
        self.metrics.quorum("read", started.elapsed());
        Ok(result)
    }

    /// Writes watches to every replica; returns the replicas that acknowledged once
    /// they are a majority, and how many replicas were written to.
    pub async fn write(&self, watches: Vec<Watch>) -> Result<(Vec<Address>, u32), QuorumError> {
        let started = tokio::time::Instant::now();
        let view = self.view();
        let me = &self.identity.me.address;
        let call = self.open_call();
        let mut write = with_replicas(&view, me, |replicas| {
            QuorumWrite::start(call.id, &watches, replicas, self.deadlines(), 0)
        })?;
        for (to, body) in write.take_sends() {
            self.send(&to, body);
        }
        if write.stores_locally(me) {
            self.store.put(watches).await?;
            write.on_local_stored(me);
        }
        let result = self.drive(call, write, started).await?;
        self.metrics.quorum("write", started.elapsed());
        Ok(result)
    }

    fn deadlines(&self) -> Deadlines {
        Deadlines {
            hedge_ms: self.timing.replica_hedge.as_millis() as u64,
            total_ms: self.timing.replica.as_millis() as u64,
        }
    }

    /// Runs `quorum` to its outcome: sends what it asks, feeds it the replies of `call`
    /// and the time (ms since `started`).
    async fn drive<Q: Quorum>(
        &self,
        mut call: super::Call,
        mut quorum: Q,
        started: tokio::time::Instant,
    ) -> Result<Q::Output, QuorumError> {
        let elapsed = || started.elapsed().as_millis() as u64;
        loop {
            for (to, body) in quorum.take_sends() {
                self.send(&to, body);
            }
            if let Some(outcome) = quorum.outcome(elapsed()) {
                return Ok(outcome?);
            }
            let wake = started + std::time::Duration::from_millis(quorum.next_deadline());
            match tokio::time::timeout_at(wake, call.replies.recv()).await {
                Ok(Some((from, body))) => quorum.on_reply(&from, body),
                Ok(None) => return Err(quorum.shortfall().into()),
                Err(_) => quorum.on_time(elapsed()),
            }
        }
    }

    pub(super) fn answer_digest(&self, to: &Address, id: RequestId, theirs: &[u64]) {
        let ours = self.store.digests();
        let differing: Vec<u16> = (0..BUCKETS)
            .filter(|b| ours[*b] != theirs[*b])
            .map(|b| b as u16)
            .collect();
        let watches = self.store.in_buckets(&differing);
        self.send_buckets(to, id, differing, watches);
    }

    /// Sends watches in chunks that fit a frame; the last chunk says so.
    fn send_buckets(&self, to: &Address, id: RequestId, ask: Vec<u16>, watches: Vec<Watch>) {
        let chunks: Vec<&[Watch]> = if watches.is_empty() {
            vec![&[]]
        } else {
            watches.chunks(MAX_WATCHES_PER_MESSAGE / 2).collect()
        };
        let count = chunks.len();
        for (i, chunk) in chunks.into_iter().enumerate() {
            self.send(
                to,
                ServiceBody::Buckets {
                    id,
                    ask: if i == 0 { ask.clone() } else { Vec::new() },
                    watches: chunk.to_vec(),
                    last: i + 1 == count,
                },
            );
        }
    }

    /// Merges `Buckets` answers one at a time, in arrival order, so the last chunk of
    /// a catch-up answer is on disk only after the chunks before it.
    pub(super) async fn merge_loop(
        self: Arc<Self>,
        mut merges: mpsc::UnboundedReceiver<(Address, ServiceBody)>,
    ) {
        while let Some((from, body)) = merges.recv().await {
            let ServiceBody::Buckets {
                id,
                ask,
                watches,
                last,
            } = body
            else {
                continue;
            };
            if !ask.is_empty() {
                // They asked for our copy of the buckets that differ.
                self.send_buckets(&from, id, Vec::new(), self.store.in_buckets(&ask));
            }
            if !watches.is_empty() {
                if let Err(e) = self.store.put(watches).await {
                    tracing::error!("anti-entropy merge failed: {e}");
                    continue;
                }
            }
            if last {
                let counted = {
                    let mut catch_up = self.catch_up.lock().expect("catch-up");
                    id == catch_up.id && catch_up.merged_from.insert(from)
                };
                if counted {
                    self.check_ready();
                }
            }
        }
    }

    /// How many other replicas this one must have merged before its copy counts.
    fn catch_up_needed(&self, others: usize) -> usize {
        shared::quorum::catch_up_needed(others, self.store.recovered())
    }

    /// Marks the replica ready once it has merged enough other copies; true if ready.
    fn check_ready(&self) -> bool {
        if self.is_ready() {
            return true;
        }
        let view = self.view();
        let me = &self.identity.me.address;
        if !view.replicas.contains(me) {
            return false;
        }
        let others: Vec<&Address> = view.replicas.iter().filter(|r| *r != me).collect();
        let merged = self.catch_up.lock().expect("catch-up").merged_from.clone();
        let done = others.iter().filter(|o| merged.contains(**o)).count();
        if done >= self.catch_up_needed(others.len()) {
            self.ready.store(true, Ordering::SeqCst);
            tracing::info!(
                merged = done,
                of = others.len(),
                recovered = self.store.recovered(),
                watches = self.store.len(),
                "watch history caught up"
            );
            return true;
        }
        false
    }

    /// Catch-up after start (asking every 200 ms), then gossip of digests with one
    /// random replica per period.
    pub(super) async fn anti_entropy_loop(self: Arc<Self>) {
        loop {
            let pause = if self.is_ready() {
                self.timing.anti_entropy
            } else {
                self.timing
                    .anti_entropy
                    .min(std::time::Duration::from_millis(200))
            };
            tokio::time::sleep(pause).await;
            let view = self.view();
            let me = &self.identity.me.address;
            if !view.replicas.contains(me) {
                continue;
            }
            let others: Vec<Address> = view.replicas.iter().filter(|r| *r != me).cloned().collect();
            if !self.check_ready() {
                let (id, merged) = {
                    let c = self.catch_up.lock().expect("catch-up");
                    (c.id, c.merged_from.clone())
                };
                let digests = self.store.digests();
                let missing = others.iter().filter(|o| !merged.contains(*o)).count();
                self.metrics.exchanged(Exchange::CatchUp, missing);
                for o in others.iter().filter(|o| !merged.contains(*o)) {
                    self.send(
                        o,
                        ServiceBody::Digest {
                            id,
                            buckets: digests.clone(),
                        },
                    );
                }
            } else if let Some(peer) = others.choose(&mut rand::rng()) {
                self.metrics.exchanged(Exchange::Periodic, 1);
                self.send(
                    peer,
                    ServiceBody::Digest {
                        id: rand::random(),
                        buckets: self.store.digests(),
                    },
                );
            }
        }
    }
}

/// `f` with the view's replicas as the quorum machines see them: the ones this node
/// routes to (no member observes them unreachable) are asked first.
fn with_replicas<R>(view: &super::ServiceView, me: &Address, f: impl FnOnce(&Replicas) -> R) -> R {
    let reaches = |r: &Address| view.routees.members().contains(r);
    f(&Replicas {
        all: &view.replicas,
        me,
        reaches: &reaches,
    })
}
