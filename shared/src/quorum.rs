//! Quorum reads and writes of the watch history, as pure state machines in the image
//! of the membership core: replies and the time go in; messages to send, the next
//! deadline and, once decided, the outcome come out. No I/O and no clock: the node
//! drives them on tokio, and tests drive them by hand.
//!
//! - A write goes to every replica and is acknowledged once a majority of the
//!   replicas in the view hold it on disk (this node included, when it is one).
//! - A read asks just enough other replicas, the ones this node reaches first; if
//!   they are slow, the rest too after the hedge time (a speculative retry, as in
//!   Dynamo-style stores). It merges the copies of a majority, each watch at its
//!   earliest time, so it meets every acknowledged write: two majorities of the same
//!   replicas always share one. A copy from a replica still catching up after a
//!   restart does not count.
//! - Majorities count every replica in the view, reachable or not, so a partitioned
//!   minority can neither acknowledge a write nor answer a read on its own.

use crate::address::Address;
use crate::service::{RequestId, ServiceBody, Watch};
use std::collections::{BTreeMap, BTreeSet};

/// Milliseconds on the driver's clock.
pub type Millis = u64;

/// Why a read or write did not reach a majority.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuorumError {
    /// No worker is a member.
    #[error("no worker holds the watch history")]
    NoReplicas,
    /// Not enough replicas answered in time.
    #[error("{got} of the {needed} replicas needed answered in time")]
    NotEnough {
        /// Answers counted.
        got: usize,
        /// A majority.
        needed: usize,
    },
}

/// How long a quorum may take.
#[derive(Clone, Copy, Debug)]
pub struct Deadlines {
    /// A read asks the remaining replicas after this long (ms).
    pub hedge_ms: Millis,
    /// The operation fails after this long (ms).
    pub total_ms: Millis,
}

/// The replicas of the view and this node's place among them.
#[derive(Clone, Copy)]
pub struct Replicas<'a> {
    /// Every replica in the view, reachable or not.
    pub all: &'a [Address],
    /// This node.
    pub me: &'a Address,
    /// Whether this node reaches a replica (those are asked first).
    pub reaches: &'a (dyn Fn(&Address) -> bool + Sync),
}

impl Replicas<'_> {
    /// A majority of all replicas.
    pub fn majority(&self) -> usize {
        self.all.len() / 2 + 1
    }

    fn others(&self) -> impl Iterator<Item = &Address> {
        self.all.iter().filter(|r| *r != self.me)
    }
}

/// What a driver needs of a quorum: both machines below are one.
pub trait Quorum {
    /// What a success returns.
    type Output;
    /// Messages to send now.
    fn take_sends(&mut self) -> Vec<(Address, ServiceBody)>;
    /// A reply from `from`.
    fn on_reply(&mut self, from: &Address, body: ServiceBody);
    /// The time passes `now`.
    fn on_time(&mut self, now: Millis);
    /// When to call `on_time` next.
    fn next_deadline(&self) -> Millis;
    /// The outcome once decided.
    fn outcome(&self, now: Millis) -> Option<Result<Self::Output, QuorumError>>;
    /// The error to give if no more answers can come.
    fn shortfall(&self) -> QuorumError;
}

/// A read of one user's watches from a majority of replicas.
#[derive(Debug)]
pub struct QuorumRead {
    id: RequestId,
    user: u32,
    replicas: BTreeSet<Address>,
    needed: usize,
    answered: BTreeSet<Address>,
    merged: BTreeMap<u32, u64>,
    spare: Vec<Address>,
    hedge_at: Millis,
    deadline: Millis,
    outbox: Vec<(Address, ServiceBody)>,
}

impl QuorumRead {
    /// Starts reading `user` at `now`. `local` is this node's own copy if it is a
    /// replica that has caught up (it counts as one answer).
    pub fn start(
        id: RequestId,
        user: u32,
        replicas: &Replicas,
        local: Option<Vec<Watch>>,
        deadlines: Deadlines,
        now: Millis,
    ) -> Result<QuorumRead, QuorumError> {
        if replicas.all.is_empty() {
            return Err(QuorumError::NoReplicas);
        }
        let mut read = QuorumRead {
            id,
            user,
            replicas: replicas.all.iter().cloned().collect(),
            needed: replicas.majority(),
            answered: BTreeSet::new(),
            merged: BTreeMap::new(),
            spare: Vec::new(),
            hedge_at: now + deadlines.hedge_ms,
            deadline: now + deadlines.total_ms,
            outbox: Vec::new(),
        };
        if let Some(watches) = local.filter(|_| read.replicas.contains(replicas.me)) {
            read.count(replicas.me.clone(), watches);
        }
        let mut others: Vec<&Address> = replicas.others().collect();
        others.sort_by_key(|r| !(replicas.reaches)(r));
        let first = read
            .needed
            .saturating_sub(read.answered.len())
            .min(others.len());
        for r in &others[..first] {
            read.ask(r);
        }
        read.spare = others[first..].iter().map(|r| (*r).clone()).collect();
        Ok(read)
    }

    fn ask(&mut self, replica: &Address) {
        let body = ServiceBody::Fetch {
            id: self.id,
            user: self.user,
        };
        self.outbox.push((replica.clone(), body));
    }

    fn count(&mut self, from: Address, watches: Vec<Watch>) {
        if !self.answered.insert(from) {
            return;
        }
        for w in watches.into_iter().filter(|w| w.user == self.user) {
            let at = self.merged.entry(w.video).or_insert(w.at_ms);
            *at = (*at).min(w.at_ms);
        }
    }

    fn is_done(&self) -> bool {
        self.answered.len() >= self.needed
    }
}

impl Quorum for QuorumRead {
    type Output = (Vec<Watch>, u32);
    /// A reply from `from`: a ready copy from a replica of the view counts, once.
    fn on_reply(&mut self, from: &Address, body: ServiceBody) {
        if let ServiceBody::Fetched {
            id, ready, watches, ..
        } = body
        {
            if id == self.id && ready && self.replicas.contains(from) {
                self.count(from.clone(), watches);
            }
        }
    }

    /// The time passes `now`: past the hedge time, the remaining replicas are asked.
    fn on_time(&mut self, now: Millis) {
        if now >= self.hedge_at && !self.is_done() {
            for r in std::mem::take(&mut self.spare) {
                self.ask(&r);
            }
        }
    }

    /// Messages to send now.
    fn take_sends(&mut self) -> Vec<(Address, ServiceBody)> {
        std::mem::take(&mut self.outbox)
    }

    /// When to call `on_time` next.
    fn next_deadline(&self) -> Millis {
        if self.spare.is_empty() {
            self.deadline
        } else {
            self.hedge_at.min(self.deadline)
        }
    }

    /// The merged watches and how many replicas were merged, once a majority
    /// answered; an error once the deadline passed without one; else None.
    fn outcome(&self, now: Millis) -> Option<Result<Self::Output, QuorumError>> {
        if self.is_done() {
            let watches = self
                .merged
                .iter()
                .map(|(video, at_ms)| Watch {
                    user: self.user,
                    video: *video,
                    at_ms: *at_ms,
                })
                .collect();
            return Some(Ok((watches, self.answered.len() as u32)));
        }
        (now >= self.deadline).then(|| Err(self.shortfall()))
    }

    /// The error to give if no more answers can come.
    fn shortfall(&self) -> QuorumError {
        QuorumError::NotEnough {
            got: self.answered.len(),
            needed: self.needed,
        }
    }
}

/// A write of watches to every replica, acknowledged by a majority.
#[derive(Debug)]
pub struct QuorumWrite {
    id: RequestId,
    replicas: BTreeSet<Address>,
    needed: usize,
    acknowledged: Vec<Address>,
    deadline: Millis,
    outbox: Vec<(Address, ServiceBody)>,
}

impl QuorumWrite {
    /// Starts writing `watches` at `now`: a `Store` to every other replica. The driver
    /// stores this node's own copy and reports it with `on_local_stored`.
    pub fn start(
        id: RequestId,
        watches: &[Watch],
        replicas: &Replicas,
        deadlines: Deadlines,
        now: Millis,
    ) -> Result<QuorumWrite, QuorumError> {
        if replicas.all.is_empty() {
            return Err(QuorumError::NoReplicas);
        }
        let outbox = replicas
            .others()
            .map(|r| {
                let body = ServiceBody::Store {
                    id,
                    watches: watches.to_vec(),
                };
                (r.clone(), body)
            })
            .collect();
        Ok(QuorumWrite {
            id,
            replicas: replicas.all.iter().cloned().collect(),
            needed: replicas.majority(),
            acknowledged: Vec::new(),
            deadline: now + deadlines.total_ms,
            outbox,
        })
    }

    /// Whether this node must store its own copy (it is a replica).
    pub fn stores_locally(&self, me: &Address) -> bool {
        self.replicas.contains(me)
    }

    /// This node's own copy is on disk.
    pub fn on_local_stored(&mut self, me: &Address) {
        self.acknowledge(me);
    }

    fn acknowledge(&mut self, from: &Address) {
        if self.replicas.contains(from) && !self.acknowledged.contains(from) {
            self.acknowledged.push(from.clone());
        }
    }
}

impl Quorum for QuorumWrite {
    type Output = (Vec<Address>, u32);

    /// Nothing to do before the deadline.
    fn on_time(&mut self, _now: Millis) {}
    /// A reply from `from`: a replica's acknowledgement counts, once.
    fn on_reply(&mut self, from: &Address, body: ServiceBody) {
        if let ServiceBody::Stored { id } = body {
            if id == self.id {
                self.acknowledge(from);
            }
        }
    }

    /// Messages to send now.
    fn take_sends(&mut self) -> Vec<(Address, ServiceBody)> {
        std::mem::take(&mut self.outbox)
    }

    /// When the write gives up.
    fn next_deadline(&self) -> Millis {
        self.deadline
    }

    /// The replicas that acknowledged and how many were written to, once a majority
    /// did; an error once the deadline passed without one; else None.
    fn outcome(&self, now: Millis) -> Option<Result<Self::Output, QuorumError>> {
        if self.acknowledged.len() >= self.needed {
            return Some(Ok((self.acknowledged.clone(), self.replicas.len() as u32)));
        }
        (now >= self.deadline).then(|| Err(self.shortfall()))
    }

    /// The error to give if no more answers can come.
    fn shortfall(&self) -> QuorumError {
        QuorumError::NotEnough {
            got: self.acknowledged.len(),
            needed: self.needed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEADLINES: Deadlines = Deadlines {
        hedge_ms: 40,
        total_ms: 1000,
    };

    fn addr(port: u16) -> Address {
        Address::new("10.0.0.1", port)
    }

    fn watch(video: u32, at_ms: u64) -> Watch {
        Watch {
            user: 7,
            video,
            at_ms,
        }
    }

    fn fetched(id: RequestId, ready: bool, watches: Vec<Watch>) -> ServiceBody {
        ServiceBody::Fetched { id, ready, watches }
    }

    #[test]
    fn a_read_asks_just_enough_reachable_replicas_and_merges_a_majority() {
        let all = [addr(1), addr(2), addr(3)];
        let reaches = |r: &Address| *r != addr(2);
        let replicas = Replicas {
            all: &all,
            me: &addr(1),
            reaches: &reaches,
        };
        let local = Some(vec![watch(5, 30)]);
        let mut read = QuorumRead::start(9, 7, &replicas, local, DEADLINES, 0).unwrap();
        let asked: Vec<Address> = read.take_sends().into_iter().map(|(to, _)| to).collect();
        assert_eq!(
            asked,
            [addr(3)],
            "one more answer makes a majority; n3 is reached"
        );
        assert!(read.outcome(10).is_none());
        // A copy still catching up, a stranger and another request do not count.
        read.on_reply(&addr(3), fetched(9, false, vec![watch(6, 1)]));
        read.on_reply(&addr(9), fetched(9, true, vec![watch(6, 1)]));
        read.on_reply(&addr(3), fetched(8, true, vec![watch(6, 1)]));
        assert!(read.outcome(10).is_none());
        read.on_reply(&addr(3), fetched(9, true, vec![watch(5, 10), watch(6, 20)]));
        let (watches, merged) = read.outcome(10).unwrap().unwrap();
        assert_eq!(merged, 2);
        assert_eq!(
            watches,
            [watch(5, 10), watch(6, 20)],
            "each at its earliest time"
        );
    }

    #[test]
    fn a_slow_read_asks_the_rest_after_the_hedge_time_and_fails_at_the_deadline() {
        let all = [addr(1), addr(2), addr(3), addr(4), addr(5)];
        let reaches = |_: &Address| true;
        let replicas = Replicas {
            all: &all,
            me: &addr(1),
            reaches: &reaches,
        };
        let mut read = QuorumRead::start(9, 7, &replicas, None, DEADLINES, 0).unwrap();
        assert_eq!(read.take_sends().len(), 3, "a majority of five, none local");
        assert_eq!(read.next_deadline(), 40);
        read.on_time(39);
        assert!(read.take_sends().is_empty());
        read.on_time(40);
        assert_eq!(read.take_sends().len(), 1, "the spare replica is asked too");
        assert_eq!(read.next_deadline(), 1000);
        read.on_reply(&addr(2), fetched(9, true, vec![]));
        read.on_reply(&addr(2), fetched(9, true, vec![]));
        assert_eq!(
            read.outcome(1000),
            Some(Err(QuorumError::NotEnough { got: 1, needed: 3 })),
            "a repeated answer counts once"
        );
    }

    #[test]
    fn a_write_is_acknowledged_by_a_majority_of_the_replicas_never_fewer() {
        let all = [addr(1), addr(2), addr(3)];
        let reaches = |_: &Address| true;
        let replicas = Replicas {
            all: &all,
            me: &addr(1),
            reaches: &reaches,
        };
        let mut write = QuorumWrite::start(4, &[watch(5, 1)], &replicas, DEADLINES, 0).unwrap();
        let sent: Vec<Address> = write.take_sends().into_iter().map(|(to, _)| to).collect();
        assert_eq!(sent, [addr(2), addr(3)]);
        assert!(write.stores_locally(&addr(1)));
        write.on_local_stored(&addr(1));
        assert!(
            write.outcome(5).is_none(),
            "one copy of three is not a majority"
        );
        write.on_reply(&addr(9), ServiceBody::Stored { id: 4 });
        write.on_reply(&addr(2), ServiceBody::Stored { id: 3 });
        assert!(
            write.outcome(5).is_none(),
            "a stranger's or another write's ack"
        );
        write.on_reply(&addr(3), ServiceBody::Stored { id: 4 });
        let (acks, written) = write.outcome(5).unwrap().unwrap();
        assert_eq!((acks, written), (vec![addr(1), addr(3)], 3));
    }

    #[test]
    fn without_replicas_nothing_is_read_or_written() {
        let reaches = |_: &Address| true;
        let replicas = Replicas {
            all: &[],
            me: &addr(1),
            reaches: &reaches,
        };
        assert_eq!(
            QuorumRead::start(1, 7, &replicas, None, DEADLINES, 0).unwrap_err(),
            QuorumError::NoReplicas
        );
        assert_eq!(
            QuorumWrite::start(1, &[], &replicas, DEADLINES, 0).unwrap_err(),
            QuorumError::NoReplicas
        );
    }
}
