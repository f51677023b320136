//! HTTP and WebSocket types of a node's management API, shared by the node (which
//! serves them), the operator CLI and the dashboard (which read them).
//!
//! The members endpoint follows Akka Management's JSON shape (`selfNode`, `leader`,
//! `oldest`, `members`, `unreachable`), so tools written for it read ours.

use crate::address::UniqueAddress;
use crate::events::{ClusterEvent, ClusterSnapshot};
use crate::member::Member;
use serde::{Deserialize, Serialize};

/// One member in Akka Management's shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberJson {
    /// `host:port`.
    pub node: String,
    /// The incarnation's uid.
    pub node_uid: String,
    /// Status name (`Up`, `Joining`, ...).
    pub status: String,
    /// Roles.
    pub roles: Vec<String>,
}

impl From<&Member> for MemberJson {
    fn from(m: &Member) -> Self {
        MemberJson {
            node: m.node.address.to_string(),
            node_uid: m.node.uid.to_string(),
            status: m.status.to_string(),
            roles: m.roles.iter().cloned().collect(),
        }
    }
}

/// An unreachable member and who observes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnreachableJson {
    /// `host:port`.
    pub node: String,
    /// Observers, as `host:port`.
    pub observed_by: Vec<String>,
}

/// `GET /cluster/members`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MembersResponse {
    /// The answering node.
    pub self_node: String,
    /// Its own status, if it is a member.
    pub self_status: Option<String>,
    /// The leader as it sees it.
    pub leader: Option<String>,
    /// The oldest member.
    pub oldest: Option<String>,
    /// Members in address order.
    pub members: Vec<MemberJson>,
    /// Unreachable members.
    pub unreachable: Vec<UnreachableJson>,
}

impl From<&ClusterSnapshot> for MembersResponse {
    fn from(s: &ClusterSnapshot) -> Self {
        let addr = |n: &UniqueAddress| n.address.to_string();
        MembersResponse {
            self_node: addr(&s.self_node),
            self_status: s.self_status.map(|st| st.to_string()),
            leader: s.leader.as_ref().map(addr),
            oldest: s.oldest.as_ref().map(addr),
            members: s.members.iter().map(MemberJson::from).collect(),
            unreachable: s
                .unreachable
                .iter()
                .map(|u| UnreachableJson {
                    node: addr(&u.node),
                    observed_by: u.observed_by.iter().map(addr).collect(),
                })
                .collect(),
        }
    }
}

/// An error answer: every 4xx and 5xx carries one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for a person.
    pub error: String,
}

/// A fault on the link from this node to a peer (and optionally back).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinkFaultRequest {
    /// The peer's cluster address, `host:port`.
    pub peer: String,
    /// Drop everything sent to the peer.
    #[serde(default)]
    pub cut_outbound: bool,
    /// Drop everything received from the peer.
    #[serde(default)]
    pub cut_inbound: bool,
    /// Extra delay on messages to the peer (ms).
    #[serde(default)]
    pub delay_ms: u64,
    /// Random extra delay up to this (ms).
    #[serde(default)]
    pub jitter_ms: u64,
    /// Probability of dropping each message to the peer (0 to 1).
    #[serde(default)]
    pub loss: f64,
}

/// `POST /faults/freeze`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FreezeRequest {
    /// How long the node stops processing (ms).
    pub millis: u64,
}

/// What the WebSocket stream sends: first a snapshot, then numbered events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum StreamMessage {
    /// The whole view; sent first, and again whenever the client lagged behind.
    Snapshot {
        /// Sequence number of the last event the snapshot includes.
        seq: u64,
        /// The view.
        snapshot: ClusterSnapshot,
    },
    /// One event.
    Event {
        /// Increases by one per event on this node.
        seq: u64,
        /// Node time (ms since the epoch) when it happened.
        at_ms: u64,
        /// The event.
        event: ClusterEvent,
    },
    /// A fault injected on this node (for the timeline).
    Fault {
        /// Increases with events.
        seq: u64,
        /// Node time (ms since the epoch).
        at_ms: u64,
        /// What was injected.
        description: String,
    },
}
