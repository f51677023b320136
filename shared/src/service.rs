//! Wire messages of the recommendation service. They travel on the cluster transport
//! in their own envelope beside the membership messages (`crate::frame::Frame`), so they are authenticated the
//! same way and suffer the same injected partitions, cuts and delays: a partition
//! that splits the membership also splits the service, as it would in production.
//!
//! Three conversations use them:
//! - routed work: an api node asks the worker that owns a user (by consistent hashing)
//!   to recommend, record a watch, or read the history, and gets one answer;
//! - replication: the owner writes a watch to every replica and waits for a majority
//!   of durable acknowledgements; reads merge the copies of a majority;
//! - anti-entropy: replicas compare per-bucket digests and exchange what differs, so
//!   every replica converges and a restarted one catches up.

use crate::address::Address;
use serde::{Deserialize, Serialize};

/// Correlates a reply with its request.
pub type RequestId = u64;

/// Most watches one message carries (larger sets are sent in chunks).
pub const MAX_WATCHES_PER_MESSAGE: usize = 100_000;

/// Number of anti-entropy buckets (watches are bucketed by user).
pub const BUCKETS: usize = 64;

/// Most recommendations one request may ask for.
pub const MAX_RECOMMENDATIONS: u32 = 100;

/// "This user watched this video", first recorded at `at_ms`. Replicas keep a set of
/// these; merging keeps the earliest time, so merges commute and repeat safely.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Watch {
    /// The user.
    pub user: u32,
    /// The video.
    pub video: u32,
    /// When it was first recorded (ms since the epoch).
    pub at_ms: u64,
}

impl Watch {
    /// The anti-entropy bucket of this watch.
    pub fn bucket(&self) -> usize {
        bucket_of(self.user)
    }

    /// A 64-bit fingerprint; a bucket's digest is the XOR of its watches' fingerprints.
    pub fn fingerprint(&self) -> u64 {
        let mut x = (u64::from(self.user) << 32 | u64::from(self.video))
            ^ self.at_ms.rotate_left(17)
            ^ 0x9e37_79b9_7f4a_7c15;
        // SplitMix64 finaliser: every input bit affects every output bit.
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }
}

/// The anti-entropy bucket of a user.
pub fn bucket_of(user: u32) -> usize {
    (user.wrapping_mul(0x9e37_79b9) >> 26) as usize % BUCKETS
}

/// One service message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ServiceBody {
    /// "My HTTP API is at `http`" (for the dashboard, which connects to every node).
    Hello {
        /// `host:port`.
        http: String,
        /// Whether the sender wants a `Hello` back.
        reply: bool,
    },
    /// Routed work: recommend `n` videos to `user`.
    Recommend {
        /// Request id.
        id: RequestId,
        /// The user.
        user: u32,
        /// How many.
        n: u32,
    },
    /// Routed work: record that `user` watched `video`.
    RecordWatch {
        /// Request id.
        id: RequestId,
        /// The watch.
        watch: Watch,
    },
    /// Routed work: read the recorded history of `user`.
    ReadHistory {
        /// Request id.
        id: RequestId,
        /// The user.
        user: u32,
    },
    /// Answer to `Recommend`: `(video, score)`, best first.
    Recommended {
        /// Request id.
        id: RequestId,
        /// Best first.
        items: Vec<(u32, f32)>,
        /// Built from the user's history (not the popularity list).
        personal: bool,
    },
    /// Answer to `RecordWatch`: a majority of replicas hold it durably.
    WatchRecorded {
        /// Request id.
        id: RequestId,
        /// Replicas that acknowledged.
        acknowledged_by: Vec<Address>,
        /// Replicas written to.
        replicas: u32,
    },
    /// Answer to `ReadHistory`: the merged copies of a majority of replicas.
    HistoryRead {
        /// Request id.
        id: RequestId,
        /// The user's recorded watches.
        watches: Vec<Watch>,
        /// Replicas merged.
        replicas_read: u32,
    },
    /// Routed work that could not be done (no majority in time, for example).
    Failed {
        /// Request id.
        id: RequestId,
        /// Why.
        reason: String,
    },
    /// Replication: hold these watches durably, then acknowledge.
    Store {
        /// Request id.
        id: RequestId,
        /// The watches.
        watches: Vec<Watch>,
    },
    /// The watches of `Store` are on disk.
    Stored {
        /// Request id.
        id: RequestId,
    },
    /// Replication: send your copy of `user`'s watches.
    Fetch {
        /// Request id.
        id: RequestId,
        /// The user.
        user: u32,
    },
    /// A replica's copy. `ready` is false while the replica has not yet caught up
    /// with a majority after starting; such a copy does not count toward a read.
    Fetched {
        /// Request id.
        id: RequestId,
        /// Whether the replica has caught up.
        ready: bool,
        /// Its watches of the user.
        watches: Vec<Watch>,
    },
    /// Anti-entropy: my digest per bucket.
    Digest {
        /// Conversation id (catch-up after start counts the answers).
        id: RequestId,
        /// One digest per bucket (`BUCKETS` of them).
        buckets: Vec<u64>,
    },
    /// Anti-entropy: my watches in the buckets that differ. If `ask` is not empty,
    /// the receiver answers with its own watches in those buckets.
    Buckets {
        /// The `Digest` conversation this answers.
        id: RequestId,
        /// Buckets the sender wants the receiver's copy of.
        ask: Vec<u16>,
        /// The sender's watches in the differing buckets.
        watches: Vec<Watch>,
        /// The last chunk of this answer.
        last: bool,
    },
}

impl ServiceBody {
    /// A short name for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ServiceBody::Hello { .. } => "svc_hello",
            ServiceBody::Recommend { .. } => "svc_recommend",
            ServiceBody::RecordWatch { .. } => "svc_record_watch",
            ServiceBody::ReadHistory { .. } => "svc_read_history",
            ServiceBody::Recommended { .. } => "svc_recommended",
            ServiceBody::WatchRecorded { .. } => "svc_watch_recorded",
            ServiceBody::HistoryRead { .. } => "svc_history_read",
            ServiceBody::Failed { .. } => "svc_failed",
            ServiceBody::Store { .. } => "svc_store",
            ServiceBody::Stored { .. } => "svc_stored",
            ServiceBody::Fetch { .. } => "svc_fetch",
            ServiceBody::Fetched { .. } => "svc_fetched",
            ServiceBody::Digest { .. } => "svc_digest",
            ServiceBody::Buckets { .. } => "svc_buckets",
        }
    }

    /// Checks the bounds a well-behaved peer keeps.
    pub fn validate(&self) -> Result<(), &'static str> {
        match self {
            ServiceBody::Hello { http, .. } if http.len() > 255 => Err("http address too long"),
            ServiceBody::Recommend { n, .. } if *n == 0 || *n > MAX_RECOMMENDATIONS => {
                Err("n out of range")
            }
            ServiceBody::Recommended { items, .. }
                if items.len() > MAX_RECOMMENDATIONS as usize =>
            {
                Err("too many recommendations")
            }
            ServiceBody::WatchRecorded {
                acknowledged_by, ..
            } if acknowledged_by.len() > 1024 => Err("too many acknowledgements"),
            ServiceBody::Failed { reason, .. } if reason.len() > 1024 => Err("reason too long"),
            ServiceBody::HistoryRead { watches, .. }
            | ServiceBody::Store { watches, .. }
            | ServiceBody::Fetched { watches, .. }
            | ServiceBody::Buckets { watches, .. }
                if watches.len() > MAX_WATCHES_PER_MESSAGE =>
            {
                Err("too many watches")
            }
            ServiceBody::Digest { buckets, .. } if buckets.len() != BUCKETS => {
                Err("wrong number of digest buckets")
            }
            ServiceBody::Buckets { ask, .. }
                if ask.len() > BUCKETS || ask.iter().any(|b| *b as usize >= BUCKETS) =>
            {
                Err("bucket out of range")
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_differ_when_any_field_differs() {
        let w = Watch {
            user: 1,
            video: 2,
            at_ms: 3,
        };
        let others = [
            Watch { user: 2, ..w },
            Watch { video: 3, ..w },
            Watch { at_ms: 4, ..w },
        ];
        for o in others {
            assert_ne!(w.fingerprint(), o.fingerprint());
        }
    }

    #[test]
    fn buckets_spread_users() {
        let used: std::collections::BTreeSet<usize> = (1..=943).map(bucket_of).collect();
        assert_eq!(used.len(), BUCKETS);
    }

    #[test]
    fn out_of_bounds_messages_are_invalid() {
        assert!(ServiceBody::Recommend {
            id: 1,
            user: 1,
            n: 0
        }
        .validate()
        .is_err());
        assert!(ServiceBody::Digest {
            id: 1,
            buckets: vec![0; 3]
        }
        .validate()
        .is_err());
        assert!(ServiceBody::Buckets {
            id: 1,
            ask: vec![BUCKETS as u16],
            watches: vec![],
            last: true
        }
        .validate()
        .is_err());
        assert!(ServiceBody::Recommend {
            id: 1,
            user: 1,
            n: 10
        }
        .validate()
        .is_ok());
    }
}
