//! Messages between nodes, their versioned binary encoding, and its limits.
//!
//! Frames are postcard-encoded `(protocol version, message)` pairs (a membership
//! message in the link form of `crate::link_form`, which encodes and decodes them). Every frame is
//! bounded (`MAX_FRAME_BYTES`) on encode and checked on decode before parsing, strings
//! and role sets are bounded, and gossip travels in a compact form: the seen set is a
//! bitmap over the sorted members and reachability rows name members by index, so a
//! thousand-member gossip stays in the tens of kilobytes.

use crate::address::{Address, UniqueAddress, MAX_HOST_LEN};
use crate::gossip::Gossip;
use crate::member::{Member, MAX_ROLES, MAX_ROLE_LEN};
use crate::reachability::{ObserverRows, Reachability};
use crate::vclock::VectorClock;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Version of this wire protocol; a peer speaking another is refused. (7: heartbeats
/// and gossip status travel without the addresses the link names, `crate::link_form`;
/// 8: indirect probes.)
pub const PROTOCOL_VERSION: u16 = 8;
/// Largest frame accepted or produced (4 MiB: a gossip of about 60,000 members).
pub const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;
/// Longest cluster name accepted.
pub const MAX_CLUSTER_NAME_LEN: usize = 64;
/// Longest free-text reason accepted.
pub const MAX_REASON_LEN: usize = 256;

/// What an answering member's view holds of the node that asked it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Acquaintance {
    /// A member that is not Down: the two are in one cluster.
    Member,
    /// Down, or removed: the answerer's cluster parted from the asker's.
    Gone,
    /// Never heard of: a joiner, or a member its view has not learned of yet.
    Stranger,
}

/// A message between two nodes' membership cores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// "Are you in a cluster?" sent by a joining node to the seeds.
    InitJoin {
        /// The asking node.
        from: UniqueAddress,
        /// The cluster it wants to join.
        cluster: String,
    },
    /// "Yes, join through me."
    InitJoinAck {
        /// The answering member.
        from: UniqueAddress,
        /// How many live members (neither Down nor Exiting) its cluster has
        /// (islands compare sizes).
        cluster_size: u32,
        /// The lowest member address in its cluster (tie-break between islands).
        lowest_member: Address,
        /// Its cluster's lineage (see `Gossip::lineage`).
        lineage: u64,
        /// What its view holds of the asking incarnation: a member asking is then
        /// told whether this is its own cluster seen from a view it has not merged.
        knows_you: Acquaintance,
    },
    /// "I am not in a cluster (yet)."
    InitJoinNack {
        /// The answering node.
        from: UniqueAddress,
    },
    /// Join request to a contact member.
    Join {
        /// The joining incarnation.
        node: UniqueAddress,
        /// Its roles.
        roles: BTreeSet<String>,
        /// The cluster it wants to join.
        cluster: String,
    },
    /// Join accepted: here is the cluster state, with you in it.
    Welcome {
        /// The contact member.
        from: UniqueAddress,
        /// The joiner.
        to: UniqueAddress,
        /// The state.
        gossip: Gossip,
    },
    /// Join refused (wrong cluster name, removed incarnation).
    JoinRefused {
        /// The refusing node.
        from: UniqueAddress,
        /// Why.
        reason: String,
    },
    /// Full state.
    Gossip {
        /// Sender.
        from: UniqueAddress,
        /// Intended incarnation; others drop it.
        to: UniqueAddress,
        /// The state.
        gossip: Gossip,
    },
    /// Version digest only, exchanged when the sender believes gossip has converged.
    GossipStatus {
        /// Sender.
        from: UniqueAddress,
        /// Intended incarnation.
        to: UniqueAddress,
        /// Digest of the sender's version vector.
        version_digest: u64,
        /// Digest of the sender's seen set.
        seen_digest: u64,
    },
    /// Heartbeat request.
    Heartbeat {
        /// Requester.
        from: UniqueAddress,
        /// Sequence number echoed in the response.
        seq: u64,
    },
    /// Heartbeat response.
    HeartbeatRsp {
        /// Responder.
        from: UniqueAddress,
        /// The request's sequence number.
        seq: u64,
    },
    /// "You were downed or removed; stop." Sent to an old incarnation that still talks.
    Quarantined {
        /// Sender.
        from: UniqueAddress,
        /// The incarnation that must stop.
        to: UniqueAddress,
    },
    /// "I belong to another cluster: your entry for me is stale." Sent by a member
    /// that receives gossip of another lineage naming it; the receiver downs that
    /// entry (the incarnation speaks for itself, as a restart at its address would).
    Elsewhere {
        /// The incarnation that is not in the receiver's cluster.
        from: UniqueAddress,
        /// The receiver.
        to: UniqueAddress,
    },
    /// A heartbeat to answer at once rather than at the next tick: an indirect probe's
    /// (ALGORITHM.md section 9). Answered with `HeartbeatRsp`.
    Probe {
        /// Requester.
        from: UniqueAddress,
        /// Sequence number echoed in the response.
        seq: u64,
    },
    /// "Try to reach `target` for me": a monitor that has not heard from `target`
    /// asks another member (SWIM's ping-req).
    ProbeRequest {
        /// The monitor asking.
        from: UniqueAddress,
        /// The silent member.
        target: UniqueAddress,
        /// The asking round, echoed in the report.
        round: u64,
    },
    /// A helper's answer to `ProbeRequest`.
    ProbeReport {
        /// The helper.
        from: UniqueAddress,
        /// The member it tried to reach.
        target: UniqueAddress,
        /// The asking round.
        round: u64,
        /// Whether `target` answered the helper in time.
        reached: bool,
    },
}

impl Message {
    /// A short name for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::InitJoin { .. } => "init_join",
            Message::InitJoinAck { .. } => "init_join_ack",
            Message::InitJoinNack { .. } => "init_join_nack",
            Message::Join { .. } => "join",
            Message::Welcome { .. } => "welcome",
            Message::JoinRefused { .. } => "join_refused",
            Message::Gossip { .. } => "gossip",
            Message::GossipStatus { .. } => "gossip_status",
            Message::Heartbeat { .. } => "heartbeat",
            Message::HeartbeatRsp { .. } => "heartbeat_rsp",
            Message::Quarantined { .. } => "quarantined",
            Message::Elsewhere { .. } => "elsewhere",
            Message::Probe { .. } => "probe",
            Message::ProbeRequest { .. } => "probe_request",
            Message::ProbeReport { .. } => "probe_report",
        }
    }

    /// The address of the node that sent it (the transport checks it against the
    /// authenticated peer, so no peer can speak for another).
    pub fn sender(&self) -> &Address {
        match self {
            Message::InitJoin { from, .. }
            | Message::InitJoinAck { from, .. }
            | Message::InitJoinNack { from }
            | Message::Welcome { from, .. }
            | Message::JoinRefused { from, .. }
            | Message::Gossip { from, .. }
            | Message::GossipStatus { from, .. }
            | Message::Heartbeat { from, .. }
            | Message::HeartbeatRsp { from, .. }
            | Message::Quarantined { from, .. }
            | Message::Elsewhere { from, .. }
            | Message::Probe { from, .. }
            | Message::ProbeRequest { from, .. }
            | Message::ProbeReport { from, .. } => &from.address,
            Message::Join { node, .. } => &node.address,
        }
    }

    /// Whether it belongs to failure detection rather than gossip.
    pub fn is_heartbeat(&self) -> bool {
        matches!(
            self,
            Message::Heartbeat { .. }
                | Message::HeartbeatRsp { .. }
                | Message::Probe { .. }
                | Message::ProbeRequest { .. }
                | Message::ProbeReport { .. }
        )
    }
}

/// Why bytes could not become a message (or a message could not become bytes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The frame is larger than `MAX_FRAME_BYTES`.
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    /// The peer speaks another protocol version.
    #[error("protocol version {0} is not supported (this node speaks {PROTOCOL_VERSION})")]
    UnsupportedVersion(u16),
    /// The bytes are not a valid encoding.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The encoding is valid but a field is out of bounds or inconsistent.
    #[error("invalid message: {0}")]
    Invalid(String),
}

/// `(PROTOCOL_VERSION, value)` in postcard, within `MAX_FRAME_BYTES` (membership
/// messages here, transport frames in `crate::frame`).
pub fn encode_versioned<T: Serialize>(value: &T) -> Result<Vec<u8>, WireError> {
    let bytes = postcard::to_allocvec(&(PROTOCOL_VERSION, value))
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(WireError::TooLarge(bytes.len()));
    }
    Ok(bytes)
}

/// The value of `encode_versioned`'s bytes: the size checked before parsing, another
/// version and trailing bytes refused (the caller validates the fields).
pub fn decode_versioned<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(WireError::TooLarge(bytes.len()));
    }
    let (version, rest): (u16, &[u8]) =
        postcard::take_from_bytes(bytes).map_err(|e| WireError::Malformed(e.to_string()))?;
    if version != PROTOCOL_VERSION {
        return Err(WireError::UnsupportedVersion(version));
    }
    let (value, trailing): (T, &[u8]) =
        postcard::take_from_bytes(rest).map_err(|e| WireError::Malformed(e.to_string()))?;
    if !trailing.is_empty() {
        return Err(WireError::Malformed(format!(
            "{} trailing bytes",
            trailing.len()
        )));
    }
    Ok(value)
}

fn invalid(what: impl Into<String>) -> WireError {
    WireError::Invalid(what.into())
}

/// Refuses an empty or overlong host name.
pub fn check_address(a: &Address) -> Result<(), WireError> {
    if a.host.is_empty() || a.host.len() > MAX_HOST_LEN {
        return Err(invalid("host name length"));
    }
    Ok(())
}

fn check_roles(roles: &BTreeSet<String>) -> Result<(), WireError> {
    if roles.len() > MAX_ROLES || roles.iter().any(|r| r.is_empty() || r.len() > MAX_ROLE_LEN) {
        return Err(invalid("roles out of bounds"));
    }
    Ok(())
}

/// Bounds every field a peer controls.
pub fn validate(message: &Message) -> Result<(), WireError> {
    match message {
        Message::InitJoin { from, cluster } => {
            check_address(&from.address)?;
            if cluster.len() > MAX_CLUSTER_NAME_LEN {
                return Err(invalid("cluster name too long"));
            }
        }
        Message::Join {
            node,
            roles,
            cluster,
        } => {
            check_address(&node.address)?;
            check_roles(roles)?;
            if cluster.len() > MAX_CLUSTER_NAME_LEN {
                return Err(invalid("cluster name too long"));
            }
        }
        Message::JoinRefused { from, reason } => {
            check_address(&from.address)?;
            if reason.len() > MAX_REASON_LEN {
                return Err(invalid("reason too long"));
            }
        }
        Message::Welcome { gossip, .. } | Message::Gossip { gossip, .. } => {
            for m in gossip.members.values() {
                check_address(&m.node.address)?;
                check_roles(&m.roles)?;
            }
        }
        Message::InitJoinAck {
            from,
            lowest_member,
            ..
        } => {
            check_address(&from.address)?;
            check_address(lowest_member)?;
        }
        Message::InitJoinNack { from }
        | Message::GossipStatus { from, .. }
        | Message::Heartbeat { from, .. }
        | Message::HeartbeatRsp { from, .. }
        | Message::Quarantined { from, .. }
        | Message::Elsewhere { from, .. }
        | Message::Probe { from, .. } => check_address(&from.address)?,
        Message::ProbeRequest { from, target, .. } | Message::ProbeReport { from, target, .. } => {
            check_address(&from.address)?;
            check_address(&target.address)?;
        }
    }
    Ok(())
}

/// A node named in compact gossip: by index into the sorted members, or in full.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum NodeRef {
    Member(u32),
    Other(UniqueAddress),
}

/// The compact form in which `Gossip` is serialised.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GossipWire {
    members: Vec<Member>,
    seen_bitmap: Vec<u8>,
    /// Per observer: its index, version, unreachable subjects and refused subjects.
    reachability: Vec<(u32, u64, Vec<u32>, Vec<u32>)>,
    version: Vec<(NodeRef, u64)>,
    tombstones: Vec<(UniqueAddress, u64)>,
    lineage: u64,
}

impl From<Gossip> for GossipWire {
    fn from(g: Gossip) -> Self {
        let index: BTreeMap<&UniqueAddress, u32> =
            crate::sorting::map_from(g.members.keys().enumerate().map(|(i, n)| (n, i as u32)));
        let mut seen_bitmap = vec![0u8; g.members.len().div_ceil(8)];
        for (i, node) in g.members.keys().enumerate() {
            if g.seen.contains(node) {
                seen_bitmap[i / 8] |= 1 << (i % 8);
            }
        }
        let reachability = g
            .reachability
            .observers()
            .filter_map(|(observer, rows)| {
                let observer = *index.get(observer)?;
                let indices = |set: &BTreeSet<UniqueAddress>| {
                    set.iter().filter_map(|s| index.get(s).copied()).collect()
                };
                let subjects = indices(&rows.unreachable);
                let refused = indices(&rows.refused);
                Some((observer, rows.version, subjects, refused))
            })
            .collect();
        let version = g
            .version
            .entries()
            .map(|(node, count)| {
                let node_ref = match index.get(node) {
                    Some(i) => NodeRef::Member(*i),
                    None => NodeRef::Other(node.clone()),
                };
                (node_ref, count)
            })
            .collect();
        GossipWire {
            members: g.members.into_values().collect(),
            seen_bitmap,
            reachability,
            version,
            tombstones: g.tombstones.into_iter().collect(),
            lineage: g.lineage,
        }
    }
}

impl TryFrom<GossipWire> for Gossip {
    type Error = String;

    fn try_from(w: GossipWire) -> Result<Self, String> {
        let nodes: Vec<UniqueAddress> = w.members.iter().map(|m| m.node.clone()).collect();
        let node_at = |i: u32| -> Result<UniqueAddress, String> {
            nodes
                .get(i as usize)
                .cloned()
                .ok_or_else(|| format!("member index {i} out of range"))
        };
        if w.seen_bitmap.len() != nodes.len().div_ceil(8) {
            return Err("seen bitmap does not match the member count".into());
        }
        let mut members = BTreeMap::new();
        for member in w.members {
            if members.insert(member.node.clone(), member).is_some() {
                return Err("duplicate member".into());
            }
        }
        let seen = nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| w.seen_bitmap[i / 8] & (1 << (i % 8)) != 0)
            .map(|(_, n)| n.clone())
            .collect();
        let mut observers = BTreeMap::new();
        for (observer, version, subjects, refused) in w.reachability {
            let nodes_at = |indices: Vec<u32>| {
                indices
                    .into_iter()
                    .map(node_at)
                    .collect::<Result<BTreeSet<_>, _>>()
            };
            let unreachable = nodes_at(subjects)?;
            let refused = nodes_at(refused)?;
            if !refused.is_subset(&unreachable) {
                return Err("a refused subject is not unreachable".into());
            }
            observers.insert(
                node_at(observer)?,
                ObserverRows {
                    version,
                    unreachable,
                    refused,
                },
            );
        }
        let mut entries = Vec::new();
        for (node_ref, count) in w.version {
            let node = match node_ref {
                NodeRef::Member(i) => node_at(i)?,
                NodeRef::Other(n) => n,
            };
            entries.push((node, count));
        }
        Ok(Gossip {
            members,
            reachability: Reachability::from_observers(observers),
            version: VectorClock::from_entries(entries),
            seen,
            tombstones: crate::sorting::map_from(w.tombstones),
            lineage: w.lineage,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link_form::{decode, encode, LinkEnds};
    use crate::member::MemberStatus;

    fn node(port: u16) -> UniqueAddress {
        UniqueAddress::new(Address::new("127.0.0.1", port), u64::from(port) * 7)
    }

    /// The link every test message travels on: from its sender to node 2.
    fn ends(message: &Message) -> (Address, Address) {
        (message.sender().clone(), node(2).address)
    }

    fn decode_from_sender(bytes: &[u8], message: &Message) -> Result<Message, WireError> {
        let (sender, receiver) = ends(message);
        let ends = LinkEnds {
            sender: &sender,
            receiver: &receiver,
        };
        decode(bytes, ends)
    }

    fn sample_gossip(n: u16) -> Gossip {
        let mut g = Gossip::default();
        for p in 1..=n {
            let mut m = Member::joining(node(p), ["api".into(), "worker".into()].into());
            m.status = MemberStatus::Up;
            m.up_number = u32::from(p);
            g.members.insert(node(p), m);
        }
        g.bump(&node(1));
        g.mark_seen(&node(2));
        g.reachability.mark_unreachable(&node(2), &node(3));
        g.reachability.mark_refused(&node(1), &node(3));
        g.tombstones.insert(node(999), 5);
        g.lineage = 42;
        g
    }

    #[test]
    fn every_message_round_trips() {
        let messages = vec![
            Message::InitJoin {
                from: node(1),
                cluster: "c".into(),
            },
            Message::Join {
                node: node(1),
                roles: ["api".into()].into(),
                cluster: "c".into(),
            },
            Message::Welcome {
                from: node(1),
                to: node(2),
                gossip: sample_gossip(3),
            },
            Message::Gossip {
                from: node(1),
                to: node(2),
                gossip: sample_gossip(5),
            },
            Message::GossipStatus {
                from: node(1),
                to: node(2),
                version_digest: 1,
                seen_digest: 2,
            },
            Message::Heartbeat {
                from: node(1),
                seq: 9,
            },
            Message::HeartbeatRsp {
                from: node(2),
                seq: 9,
            },
            Message::Quarantined {
                from: node(1),
                to: node(2),
            },
            Message::JoinRefused {
                from: node(1),
                reason: "wrong cluster".into(),
            },
            Message::InitJoinAck {
                from: node(1),
                cluster_size: 3,
                lowest_member: node(1).address,
                lineage: 77,
                knows_you: Acquaintance::Gone,
            },
            Message::Elsewhere {
                from: node(1),
                to: node(2),
            },
            Message::Probe {
                from: node(1),
                seq: 4,
            },
            Message::ProbeRequest {
                from: node(1),
                target: node(3),
                round: 5,
            },
            Message::ProbeReport {
                from: node(1),
                target: node(3),
                round: 5,
                reached: false,
            },
        ];
        for message in messages {
            let bytes = encode(&message).unwrap();
            assert_eq!(decode_from_sender(&bytes, &message).unwrap(), message);
        }
    }

    #[test]
    fn garbage_truncation_and_foreign_versions_are_refused() {
        let gossip = Message::Gossip {
            from: node(1),
            to: node(2),
            gossip: sample_gossip(4),
        };
        let bytes = encode(&gossip).unwrap();
        let decode = |bytes: &[u8]| decode_from_sender(bytes, &gossip);
        for cut in 0..bytes.len() {
            assert!(
                decode(&bytes[..cut]).is_err(),
                "prefix of {cut} bytes decoded"
            );
        }
        let mut foreign = postcard::to_allocvec(&(PROTOCOL_VERSION + 1, 0u8)).unwrap();
        foreign.extend_from_slice(&bytes[1..]);
        assert!(matches!(
            decode(&foreign),
            Err(WireError::UnsupportedVersion(_))
        ));
        assert!(matches!(
            decode(&vec![0u8; MAX_FRAME_BYTES + 1]),
            Err(WireError::TooLarge(_))
        ));
        let long_name = Message::InitJoin {
            from: node(1),
            cluster: "x".repeat(65),
        };
        assert!(matches!(
            decode_from_sender(&encode(&long_name).unwrap(), &long_name),
            Err(WireError::Invalid(_))
        ));
    }

    #[test]
    fn compact_gossip_stays_small() {
        let bytes = encode(&Message::Gossip {
            from: node(1),
            to: node(2),
            gossip: sample_gossip(1000),
        })
        .unwrap();
        assert!(
            bytes.len() < 40 * 1000,
            "{} bytes for 1000 members",
            bytes.len()
        );
    }
}
