//! Replication of the watch history over the workers, in the style of Akka
//! Distributed Data with write- and read-majority over a grow-only set. The quorum
//! rules are the pure machines of `shared::quorum` and `shared::anti_entropy`, which
//! this module drives on tokio.
//!
//! - A write goes to every replica; it is acknowledged once a majority (this node
//!   included, when it is a replica) hold it on disk.
//! - A read merges the copies of a majority of replicas, so it meets every
//!   acknowledged write: two majorities of the same replicas always share one.
//! - Anti-entropy and catch-up: the pure machine `shared::anti_entropy::Sync`
//!   decides when to exchange bucket digests and with whom, and when a restarted
//!   replica's copy counts again; this module runs its rounds on a timer, answers
//!   digests from the store, and merges what arrives in order, telling the machine
//!   once a full answer is on disk.
//!
//! Majorities count every replica in the view, reachable or not, so a partitioned
//! minority can neither acknowledge a write nor answer a read on its own.

use super::Service;
use shared::anti_entropy::{self, SyncTiming};
use shared::quorum::{Deadlines, Quorum, QuorumRead, QuorumWrite, Replicas};
use shared::service::{RequestId, ServiceBody, Watch};
use shared::Address;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

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

    /// Answers a peer's digests with our watches in the buckets that differ.
    pub(super) fn answer_digest(&self, to: &Address, id: RequestId, theirs: &[u64]) {
        for answer in anti_entropy::answer_digest(id, theirs, &self.store) {
            self.send(to, answer);
        }
    }

    /// Merges `Buckets` answers one at a time, in arrival order, so the last chunk of
    /// an answer is on disk only after the chunks before it.
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
            let received =
                anti_entropy::receive_buckets(&from, id, &ask, watches, last, &self.store);
            for answer in received.answers {
                self.send(&from, answer);
            }
            if !received.merge.is_empty() {
                if let Err(e) = self.store.put(received.merge).await {
                    tracing::error!("anti-entropy merge failed: {e}");
                    continue;
                }
            }
            if let Some((peer, id)) = received.completes {
                let view = self.view();
                let ready = self.sync.lock().expect("sync").on_merged(
                    peer,
                    id,
                    &view.replicas,
                    &self.identity.me.address,
                );
                if ready {
                    self.log_caught_up();
                }
            }
        }
    }

    fn log_caught_up(&self) {
        let merged = self.sync.lock().expect("sync").merged();
        tracing::info!(
            merged,
            recovered = self.store.recovered(),
            watches = self.store.len(),
            "watch history caught up"
        );
    }

    /// Runs the machine's rounds: catch-up after start, then digests with one random
    /// replica per period.
    pub(super) async fn anti_entropy_loop(self: Arc<Self>) {
        loop {
            let due = self.sync.lock().expect("sync").next_deadline();
            tokio::time::sleep_until(self.epoch + Duration::from_millis(due)).await;
            let now = self.epoch.elapsed().as_millis() as u64;
            let view = self.view();
            let me = &self.identity.me.address;
            let (round, ready) = {
                let mut sync = self.sync.lock().expect("sync");
                let was_ready = sync.is_ready();
                let round = sync.on_time(now, &view.replicas, me, &self.store);
                (round, !was_ready && sync.is_ready())
            };
            if ready {
                self.log_caught_up();
            }
            if let Some(round) = round {
                self.metrics.exchanged(round.phase, round.sends.len());
                for (to, body) in round.sends {
                    self.send(&to, body);
                }
            }
        }
    }
}

/// The machine's periods: catch-up asks every 200 ms (or the anti-entropy period,
/// if shorter).
pub fn sync_timing(timing: &super::Timing) -> SyncTiming {
    let period_ms = timing.anti_entropy.as_millis() as u64;
    SyncTiming {
        period_ms,
        catch_up_ms: period_ms.min(200),
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
