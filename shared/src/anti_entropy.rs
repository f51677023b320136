//! A replica's anti-entropy and catch-up, as a pure machine.
//!
//! - **Anti-entropy.** Every period a ready replica sends one random other replica
//!   its per-bucket digests. The receiver answers with its watches in the buckets that
//!   differ, and asks for the sender's copy of them; both merge. Copies converge, and a
//!   watch held by only a majority reaches the rest.
//! - **Catch-up.** After it starts, a replica's copy does not count toward reads until
//!   it has merged the full answers of enough other replicas that every acknowledged
//!   write is among them (`catch_up_needed`). Until then it sends its digests every
//!   catch-up period to every other replica it has not merged yet, in one conversation
//!   whose id marks the answers that count.
//!
//! Inputs: the time with the replicas in the view, digests and bucket answers from
//! peers, and word that merged watches are durable. Outputs: messages to send, the
//! watches to merge, and readiness. The copy itself stays with the driver (on disk in
//! the node, in memory in the simulator), seen through [`Holdings`]. Randomness (the
//! anti-entropy partner) is seeded.

use crate::address::Address;
use crate::quorum::Millis;
use crate::service::{RequestId, ServiceBody, Watch, BUCKETS, MAX_WATCHES_PER_MESSAGE};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;

/// What the machine reads of a replica's copy.
pub trait Holdings {
    /// One digest per bucket: the XOR of its watches' fingerprints.
    fn digests(&self) -> Vec<u64>;
    /// Every watch in the given buckets.
    fn in_buckets(&self, buckets: &[u16]) -> Vec<Watch>;
}

/// The per-bucket digests of a set of watches, as a store keeps them.
pub fn digests_of<'a>(watches: impl IntoIterator<Item = &'a Watch>) -> Vec<u64> {
    let mut digests = vec![0u64; BUCKETS];
    for w in watches {
        digests[w.bucket()] ^= w.fingerprint();
    }
    digests
}

/// How many of the `others` replicas a restarted replica must have merged before its
/// copy counts toward reads. With its disk lost (or new), a majority of the others:
/// every acknowledged write may be on others only. With its disk kept (it holds every
/// write it acknowledged), enough to meet every majority it was not part of:
/// `others - majority + 1` (one of two others, in a cluster of three).
pub fn catch_up_needed(others: usize, kept_disk: bool) -> usize {
    if others == 0 {
        return 0;
    }
    let majority = others.div_ceil(2) + 1;
    if kept_disk {
        others + 1 - majority
    } else {
        others / 2 + 1
    }
}

/// Periods of the exchanges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncTiming {
    /// Between anti-entropy rounds of a ready replica.
    pub period_ms: Millis,
    /// Between catch-up rounds of a replica that is not ready yet.
    pub catch_up_ms: Millis,
}

/// Which kind of round sent digests (for metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Catching up after start.
    CatchUp,
    /// Periodic anti-entropy with one random replica.
    Periodic,
}

/// Digests to send in one round.
#[derive(Clone, Debug, PartialEq)]
pub struct Round {
    /// Which kind of round.
    pub phase: Phase,
    /// `Digest` messages, by recipient.
    pub sends: Vec<(Address, ServiceBody)>,
}

/// What to do with one `Buckets` chunk.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Received {
    /// Our copy of the buckets the sender asked for, to send back.
    pub answers: Vec<ServiceBody>,
    /// Watches to merge into the copy.
    pub merge: Vec<Watch>,
    /// Once `merge` is durable, call [`Sync::on_merged`] with this (the last chunk of
    /// an answer ended).
    pub completes: Option<(Address, RequestId)>,
}

/// One replica's anti-entropy and catch-up.
pub struct Sync {
    timing: SyncTiming,
    rng: SmallRng,
    catch_up_id: RequestId,
    merged_from: BTreeSet<Address>,
    kept_disk: bool,
    ready: bool,
    next_round: Millis,
}

impl Sync {
    /// A replica that started at `now`, with its disk from before (`kept_disk`) or
    /// without; `seed` draws its conversation id and partners.
    pub fn start(timing: SyncTiming, seed: u64, kept_disk: bool, now: Millis) -> Sync {
        let mut rng = SmallRng::seed_from_u64(seed);
        Sync {
            timing,
            catch_up_id: rng.random::<u64>() | 1,
            rng,
            merged_from: BTreeSet::new(),
            kept_disk,
            ready: false,
            next_round: now + timing.catch_up_ms,
        }
    }

    /// Whether this replica's copy counts toward reads.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// Whether the replica kept its disk across the restart.
    pub fn kept_disk(&self) -> bool {
        self.kept_disk
    }

    /// When `on_time` is due next.
    pub fn next_deadline(&self) -> Millis {
        self.next_round
    }

    /// The time, with the view's replicas: the digests of a round that is due, if
    /// this node is one of the replicas.
    pub fn on_time(
        &mut self,
        now: Millis,
        replicas: &[Address],
        me: &Address,
        copy: &impl Holdings,
    ) -> Option<Round> {
        if now < self.next_round {
            return None;
        }
        let others: Vec<&Address> = replicas.iter().filter(|r| *r != me).collect();
        if !replicas.contains(me) {
            self.next_round = now + self.timing.catch_up_ms;
            return None;
        }
        if !self.check_ready(replicas, me) {
            self.next_round = now + self.timing.catch_up_ms;
            let digests = copy.digests();
            let sends = others
                .into_iter()
                .filter(|o| !self.merged_from.contains(*o))
                .map(|o| (o.clone(), self.digest(self.catch_up_id, &digests)))
                .collect();
            return Some(Round {
                phase: Phase::CatchUp,
                sends,
            });
        }
        self.next_round = now + self.timing.period_ms;
        if others.is_empty() {
            return None;
        }
        let partner = others[self.rng.random_range(0..others.len())].clone();
        let id = self.rng.random::<u64>() & !1;
        Some(Round {
            phase: Phase::Periodic,
            sends: vec![(partner, self.digest(id, &copy.digests()))],
        })
    }

    /// The chunks before and including the last one of `from`'s answer to `id` are
    /// durable: it counts toward catch-up if it answered our conversation. True if the
    /// replica became ready.
    pub fn on_merged(
        &mut self,
        from: Address,
        id: RequestId,
        replicas: &[Address],
        me: &Address,
    ) -> bool {
        if id != self.catch_up_id || self.ready {
            return false;
        }
        self.merged_from.insert(from);
        self.check_ready(replicas, me)
    }

    /// Marks the replica ready once it has merged enough other copies.
    fn check_ready(&mut self, replicas: &[Address], me: &Address) -> bool {
        if self.ready {
            return true;
        }
        if !replicas.contains(me) {
            return false;
        }
        let others: Vec<&Address> = replicas.iter().filter(|r| *r != me).collect();
        let done = others
            .iter()
            .filter(|o| self.merged_from.contains(**o))
            .count();
        self.ready = done >= catch_up_needed(others.len(), self.kept_disk);
        self.ready
    }

    /// How many other replicas' answers have been merged since start.
    pub fn merged(&self) -> usize {
        self.merged_from.len()
    }

    fn digest(&self, id: RequestId, digests: &[u64]) -> ServiceBody {
        ServiceBody::Digest {
            id,
            buckets: digests.to_vec(),
        }
    }
}

/// A peer's digests: our watches in the buckets that differ, asking for theirs.
pub fn answer_digest(id: RequestId, theirs: &[u64], copy: &impl Holdings) -> Vec<ServiceBody> {
    let ours = copy.digests();
    let differing: Vec<u16> = (0..BUCKETS.min(theirs.len()))
        .filter(|b| ours[*b] != theirs[*b])
        .map(|b| b as u16)
        .collect();
    let watches = copy.in_buckets(&differing);
    buckets_answer(id, differing, watches)
}

/// One `Buckets` chunk from `from`: what to answer, what to merge, and whether it
/// ends an answer.
pub fn receive_buckets(
    from: &Address,
    id: RequestId,
    ask: &[u16],
    watches: Vec<Watch>,
    last: bool,
    copy: &impl Holdings,
) -> Received {
    let answers = if ask.is_empty() {
        Vec::new()
    } else {
        buckets_answer(id, Vec::new(), copy.in_buckets(ask))
    };
    Received {
        answers,
        merge: watches,
        completes: last.then(|| (from.clone(), id)),
    }
}

/// `watches` as `Buckets` chunks that fit a frame; only the first carries `ask`, and
/// the last says so.
pub fn buckets_answer(id: RequestId, ask: Vec<u16>, watches: Vec<Watch>) -> Vec<ServiceBody> {
    if watches.is_empty() {
        return vec![ServiceBody::Buckets {
            id,
            ask,
            watches,
            last: true,
        }];
    }
    let chunks: Vec<&[Watch]> = watches.chunks(MAX_WATCHES_PER_MESSAGE / 2).collect();
    let count = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| ServiceBody::Buckets {
            id,
            ask: if i == 0 { ask.clone() } else { Vec::new() },
            watches: chunk.to_vec(),
            last: i + 1 == count,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: SyncTiming = SyncTiming {
        period_ms: 1000,
        catch_up_ms: 200,
    };

    fn node(port: u16) -> Address {
        Address::new("10.0.0.1", port)
    }

    struct Copy(Vec<Watch>);

    impl Holdings for Copy {
        fn digests(&self) -> Vec<u64> {
            digests_of(&self.0)
        }
        fn in_buckets(&self, buckets: &[u16]) -> Vec<Watch> {
            self.0
                .iter()
                .filter(|w| buckets.contains(&(w.bucket() as u16)))
                .copied()
                .collect()
        }
    }

    fn watch(user: u32, video: u32) -> Watch {
        Watch {
            user,
            video,
            at_ms: 5,
        }
    }

    fn three() -> Vec<Address> {
        vec![node(1), node(2), node(3)]
    }

    #[test]
    fn a_restarted_replica_merges_enough_others_to_meet_every_majority() {
        // Three replicas: with the disk, one other; without it, both.
        assert_eq!(catch_up_needed(2, true), 1);
        assert_eq!(catch_up_needed(2, false), 2);
        // Five: a majority that leaves us out is 3 of the other four, so any two of
        // them meet it; without the disk, three.
        assert_eq!(catch_up_needed(4, true), 2);
        assert_eq!(catch_up_needed(4, false), 3);
        assert_eq!(catch_up_needed(0, false), 0);
    }

    #[test]
    fn a_replica_that_lost_its_disk_is_ready_only_after_a_majority_of_the_others() {
        let mut sync = Sync::start(TIMING, 7, false, 0);
        let empty = Copy(vec![]);
        assert!(
            sync.on_time(100, &three(), &node(1), &empty).is_none(),
            "not due"
        );
        let round = sync.on_time(200, &three(), &node(1), &empty).expect("due");
        assert_eq!(round.phase, Phase::CatchUp);
        let asked: Vec<u16> = round.sends.iter().map(|(to, _)| to.port).collect();
        assert_eq!(asked, [2, 3]);
        let ServiceBody::Digest { id, .. } = round.sends[0].1 else {
            panic!("a digest")
        };
        assert!(
            !sync.on_merged(node(2), id ^ 2, &three(), &node(1)),
            "another conversation"
        );
        assert!(
            !sync.on_merged(node(2), id, &three(), &node(1)),
            "one of two is not a majority"
        );
        assert!(!sync.is_ready());
        let again = sync.on_time(400, &three(), &node(1), &empty).unwrap();
        assert_eq!(
            again.sends.len(),
            1,
            "only the one not merged yet is asked again"
        );
        assert!(sync.on_merged(node(3), id, &three(), &node(1)));
        assert!(sync.is_ready());
    }

    #[test]
    fn a_replica_that_kept_its_disk_needs_one_of_two_others_and_then_gossips_with_one() {
        let mut sync = Sync::start(TIMING, 7, true, 0);
        let copy = Copy(vec![watch(1, 1)]);
        let round = sync.on_time(200, &three(), &node(1), &copy).unwrap();
        let ServiceBody::Digest { id, .. } = round.sends[0].1 else {
            panic!("a digest")
        };
        assert!(sync.on_merged(node(3), id, &three(), &node(1)));
        let periodic = sync.on_time(400, &three(), &node(1), &copy).unwrap();
        assert_eq!(periodic.phase, Phase::Periodic);
        assert_eq!(periodic.sends.len(), 1);
        assert_eq!(sync.next_deadline(), 1400);
    }

    #[test]
    fn digests_find_the_differing_buckets_and_both_sides_get_what_they_lack() {
        let ours = Copy(vec![watch(1, 1), watch(2, 2)]);
        let theirs = Copy(vec![watch(1, 1), watch(3, 3)]);
        let answer = answer_digest(9, &theirs.digests(), &ours);
        let [ServiceBody::Buckets {
            id,
            ask,
            watches,
            last,
        }] = &answer[..]
        else {
            panic!("one chunk: {answer:?}")
        };
        assert!(*last && *id == 9);
        assert!(watches.contains(&watch(2, 2)) && !watches.contains(&watch(1, 1)));
        let received = receive_buckets(&node(2), 9, ask, watches.clone(), true, &theirs);
        assert_eq!(received.merge, *watches);
        assert_eq!(received.completes, Some((node(2), 9)));
        let [ServiceBody::Buckets { watches: back, .. }] = &received.answers[..] else {
            panic!("their copy of the asked buckets")
        };
        assert!(back.contains(&watch(3, 3)));
    }
}
