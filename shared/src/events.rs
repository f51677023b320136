//! Cluster events and the snapshot a subscriber receives first.
//!
//! Events are computed by comparing the state before and after each change, from the
//! point of view of one node, the way Akka's `ClusterDomainEvent`s are. The snapshot
//! carries everything needed to draw the cluster as that node sees it; the events
//! that follow keep it current.

use crate::address::{Address, UniqueAddress};
use crate::gossip::Gossip;
use crate::member::{Member, MemberStatus};
use crate::sbr::{Decision, Weighing};
use crate::settings::DowningStrategy;
use crate::tagged::required;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Why a node's membership core stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShutdownReason {
    /// It left gracefully (Leaving, Exiting, Removed).
    Left,
    /// It was downed (by an operator or the split-brain resolver). A supervisor should
    /// restart it as a new incarnation.
    Downed,
    /// It learned it was removed without having left (for example after a long pause).
    Removed,
    /// It formed a cluster alone (as first seed) while another cluster was
    /// unreachable, then found that cluster: restart to join it.
    Rejoin,
}

/// Something that happened to the cluster, as one node observed it.
///
/// On the wire an event is one JSON object whose `type` names the variant. It is read
/// through `EventFields` (every field any variant has) rather than by serde's reading
/// of tagged enums, which buffers each object to read it again: with `StreamMessage`
/// and `DowningStrategy` read the same way, the page carries none of that buffering.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", try_from = "EventFields")]
pub enum ClusterEvent {
    /// A member asked to join.
    MemberJoined {
        /// The member after the change.
        member: Member,
    },
    /// Moved to WeaklyUp (no convergence for a while).
    MemberWeaklyUp {
        /// The member after the change.
        member: Member,
    },
    /// Moved Up by the leader.
    MemberUp {
        /// The member after the change.
        member: Member,
    },
    /// Asked to leave (now Leaving).
    MemberLeft {
        /// The member after the change.
        member: Member,
    },
    /// Leaving agreed by the leader (now Exiting).
    MemberExited {
        /// The member after the change.
        member: Member,
    },
    /// Marked Down.
    MemberDowned {
        /// The member after the change.
        member: Member,
    },
    /// Gone from the membership.
    MemberRemoved {
        /// The member as it was last seen.
        member: Member,
        /// Its status before removal (Exiting after a leave, Down after a down).
        previous_status: MemberStatus,
    },
    /// Some observer sees this member as unreachable.
    UnreachableMember {
        /// The member.
        member: Member,
        /// Who sees it unreachable.
        observed_by: Vec<UniqueAddress>,
    },
    /// Every observer sees this member again.
    ReachableMember {
        /// The member.
        member: Member,
    },
    /// The leader changed.
    LeaderChanged {
        /// The new leader, if any.
        leader: Option<UniqueAddress>,
    },
    /// The leader among the members with `role` changed.
    RoleLeaderChanged {
        /// The role.
        role: String,
        /// The new role leader, if any.
        leader: Option<UniqueAddress>,
    },
    /// The split-brain resolver on this node took a decision.
    ResolverDecision {
        /// What it decided.
        decision: Decision,
        /// Whom it downed.
        downed: Vec<UniqueAddress>,
        /// Members it found indirectly connected.
        indirectly_connected: Vec<UniqueAddress>,
        /// Why, as this node saw it (absent from nodes that predate it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grounds: Option<Box<DecisionGrounds>>,
    },
    /// A contact node refused to let this node join.
    JoinRefused {
        /// The node that refused.
        by: Address,
        /// Its reason.
        reason: String,
    },
    /// This node's membership stopped; the process should exit.
    SelfShutdown {
        /// Why.
        reason: ShutdownReason,
    },
}

/// A [`ClusterEvent`] as read: its `type`, and every field any variant has.
#[derive(Deserialize)]
struct EventFields {
    #[serde(rename = "type")]
    kind: String,
    member: Option<Member>,
    previous_status: Option<MemberStatus>,
    observed_by: Option<Vec<UniqueAddress>>,
    leader: Option<UniqueAddress>,
    role: Option<String>,
    decision: Option<Decision>,
    downed: Option<Vec<UniqueAddress>>,
    indirectly_connected: Option<Vec<UniqueAddress>>,
    grounds: Option<Box<DecisionGrounds>>,
    by: Option<Address>,
    /// A text for `JoinRefused`, a [`ShutdownReason`]'s name for `SelfShutdown`.
    reason: Option<String>,
}

impl TryFrom<EventFields> for ClusterEvent {
    type Error = String;

    fn try_from(f: EventFields) -> Result<Self, String> {
        let member = move || required(f.member, "member");
        Ok(match f.kind.as_str() {
            "MemberJoined" => ClusterEvent::MemberJoined { member: member()? },
            "MemberWeaklyUp" => ClusterEvent::MemberWeaklyUp { member: member()? },
            "MemberUp" => ClusterEvent::MemberUp { member: member()? },
            "MemberLeft" => ClusterEvent::MemberLeft { member: member()? },
            "MemberExited" => ClusterEvent::MemberExited { member: member()? },
            "MemberDowned" => ClusterEvent::MemberDowned { member: member()? },
            "MemberRemoved" => ClusterEvent::MemberRemoved {
                member: member()?,
                previous_status: required(f.previous_status, "previous_status")?,
            },
            "UnreachableMember" => ClusterEvent::UnreachableMember {
                member: member()?,
                observed_by: required(f.observed_by, "observed_by")?,
            },
            "ReachableMember" => ClusterEvent::ReachableMember { member: member()? },
            "LeaderChanged" => ClusterEvent::LeaderChanged { leader: f.leader },
            "RoleLeaderChanged" => ClusterEvent::RoleLeaderChanged {
                role: required(f.role, "role")?,
                leader: f.leader,
            },
            "ResolverDecision" => ClusterEvent::ResolverDecision {
                decision: required(f.decision, "decision")?,
                downed: required(f.downed, "downed")?,
                indirectly_connected: required(f.indirectly_connected, "indirectly_connected")?,
                grounds: f.grounds,
            },
            "JoinRefused" => ClusterEvent::JoinRefused {
                by: required(f.by, "by")?,
                reason: required(f.reason, "reason")?,
            },
            "SelfShutdown" => ClusterEvent::SelfShutdown {
                reason: ShutdownReason::named(&required(f.reason, "reason")?)?,
            },
            other => return Err(format!("unknown event type `{other}`")),
        })
    }
}

impl ShutdownReason {
    /// The reason with this (serialized) name.
    fn named(name: &str) -> Result<ShutdownReason, String> {
        match name {
            "Left" => Ok(ShutdownReason::Left),
            "Downed" => Ok(ShutdownReason::Downed),
            "Removed" => Ok(ShutdownReason::Removed),
            "Rejoin" => Ok(ShutdownReason::Rejoin),
            other => Err(format!("unknown shutdown reason `{other}`")),
        }
    }
}

impl ClusterEvent {
    /// A short name for logs and filters.
    pub fn kind(&self) -> &'static str {
        match self {
            ClusterEvent::MemberJoined { .. } => "MemberJoined",
            ClusterEvent::MemberWeaklyUp { .. } => "MemberWeaklyUp",
            ClusterEvent::MemberUp { .. } => "MemberUp",
            ClusterEvent::MemberLeft { .. } => "MemberLeft",
            ClusterEvent::MemberExited { .. } => "MemberExited",
            ClusterEvent::MemberDowned { .. } => "MemberDowned",
            ClusterEvent::MemberRemoved { .. } => "MemberRemoved",
            ClusterEvent::UnreachableMember { .. } => "UnreachableMember",
            ClusterEvent::ReachableMember { .. } => "ReachableMember",
            ClusterEvent::LeaderChanged { .. } => "LeaderChanged",
            ClusterEvent::RoleLeaderChanged { .. } => "RoleLeaderChanged",
            ClusterEvent::ResolverDecision { .. } => "ResolverDecision",
            ClusterEvent::JoinRefused { .. } => "JoinRefused",
            ClusterEvent::SelfShutdown { .. } => "SelfShutdown",
        }
    }
}

/// Why the resolver decided as it did, as the deciding node saw it: what a visitor
/// opens on the dashboard to follow the decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionGrounds {
    /// The strategy that decided.
    pub strategy: DowningStrategy,
    /// What made it decide now.
    pub trigger: DecisionTrigger,
    /// The members this node's view showed unreachable.
    pub unreachable: Vec<UniqueAddress>,
    /// The sides as the strategy weighed them, when it weighed any.
    pub weighing: Option<Weighing>,
}

/// What made a resolver decide when it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DecisionTrigger {
    /// The view had been stable this long (the stable-after, or the shorter wait of a
    /// corroborated view).
    Stable {
        /// How long.
        stable_for_ms: u64,
        /// Whether the view was corroborated (every unreachable member marked by all
        /// who can watch it).
        corroborated: bool,
    },
    /// Refused connections proved that nothing listens at the members' addresses.
    ProvenDead,
    /// This node had just kept itself, and a partition overtook that decision: it
    /// downs its own side at once (deviation 7).
    ConcededAtOnce,
    /// The view kept changing for too long: down everyone.
    UnstableTooLong,
    /// A larger cluster of the same lineage was found: this one steps aside.
    LargerClusterFound,
}

/// A member some observers see as unreachable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnreachableInfo {
    /// The member.
    pub node: UniqueAddress,
    /// Who sees it unreachable.
    pub observed_by: Vec<UniqueAddress>,
}

/// Where the split-brain resolver stands on this node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResolverStatus {
    /// Whether this node is the one that would decide (its side's leader).
    pub responsible: bool,
    /// Members the resolver would consider unreachable.
    pub unreachable: usize,
    /// When the view last changed (ms).
    pub stable_since_ms: u64,
    /// When a decision is due if nothing changes (ms), if anything is unreachable.
    pub decision_due_ms: Option<u64>,
}

/// The whole cluster state as one node sees it; sent first to every subscriber.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterSnapshot {
    /// The node whose view this is.
    pub self_node: UniqueAddress,
    /// Its own status (None before it joined).
    pub self_status: Option<MemberStatus>,
    /// Members in address order.
    pub members: Vec<Member>,
    /// Unreachable members with their observers.
    pub unreachable: Vec<UnreachableInfo>,
    /// Who has seen the current version.
    pub seen_by: Vec<UniqueAddress>,
    /// The leader.
    pub leader: Option<UniqueAddress>,
    /// The leader per role.
    pub role_leaders: BTreeMap<String, Option<UniqueAddress>>,
    /// The oldest Up member.
    pub oldest: Option<UniqueAddress>,
    /// Whether gossip has converged.
    pub converged: bool,
    /// Digest of the state's version (equal digests: same state).
    pub version_digest: u64,
    /// The split-brain resolver.
    pub resolver: ResolverStatus,
    /// Current phi per monitored node.
    pub phi: Vec<(UniqueAddress, f64)>,
    /// How long this node has found itself not running when it should have (paused or
    /// starved; local health), in total.
    #[serde(default)]
    pub time_away_ms: u64,
}

/// The events that take a subscriber from `old` to `new`, as `self_node` sees them.
pub fn diff(old: &Gossip, new: &Gossip, self_node: &UniqueAddress) -> Vec<ClusterEvent> {
    let mut events = Vec::new();
    for (node, member) in &new.members {
        let before = old.members.get(node).map(|m| m.status);
        if before == Some(member.status) {
            continue;
        }
        let member = member.clone();
        events.push(match member.status {
            MemberStatus::Joining => ClusterEvent::MemberJoined { member },
            MemberStatus::WeaklyUp => ClusterEvent::MemberWeaklyUp { member },
            MemberStatus::Up => ClusterEvent::MemberUp { member },
            MemberStatus::Leaving => ClusterEvent::MemberLeft { member },
            MemberStatus::Exiting => ClusterEvent::MemberExited { member },
            MemberStatus::Down => ClusterEvent::MemberDowned { member },
            MemberStatus::Removed => continue,
        });
    }
    for (node, member) in &old.members {
        if !new.members.contains_key(node) {
            events.push(ClusterEvent::MemberRemoved {
                member: Member {
                    status: MemberStatus::Removed,
                    ..member.clone()
                },
                previous_status: member.status,
            });
        }
    }
    let unreachable = |g: &Gossip| -> BTreeSet<UniqueAddress> {
        g.reachability
            .all_unreachable()
            .into_iter()
            .filter(|n| n != self_node && g.has_member(n))
            .collect()
    };
    let (was, is) = (unreachable(old), unreachable(new));
    for node in is.difference(&was) {
        events.push(ClusterEvent::UnreachableMember {
            member: new.members[node].clone(),
            observed_by: new.reachability.observers_of(node).into_iter().collect(),
        });
    }
    for node in was.difference(&is) {
        if let Some(member) = new.members.get(node) {
            events.push(ClusterEvent::ReachableMember {
                member: member.clone(),
            });
        }
    }
    let (old_leader, new_leader) = (old.leader(self_node), new.leader(self_node));
    if old_leader != new_leader {
        events.push(ClusterEvent::LeaderChanged { leader: new_leader });
    }
    let roles: BTreeSet<String> = old.roles().union(&new.roles()).cloned().collect();
    for role in roles {
        let (before, after) = (
            old.role_leader(self_node, &role),
            new.role_leader(self_node, &role),
        );
        if before != after {
            events.push(ClusterEvent::RoleLeaderChanged {
                role,
                leader: after,
            });
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(port: u16) -> UniqueAddress {
        UniqueAddress::new(Address::new("h", port), 1)
    }

    /// One event of every kind, with every optional field both present and absent.
    fn every_event() -> Vec<ClusterEvent> {
        let member = Member::joining(node(1), ["worker".to_string()].into());
        let grounds = DecisionGrounds {
            strategy: DowningStrategy::StaticQuorum { quorum_size: 3 },
            trigger: DecisionTrigger::Stable {
                stable_for_ms: 20_000,
                corroborated: true,
            },
            unreachable: vec![node(2)],
            weighing: Some(Weighing {
                ours: vec![node(1)],
                total: vec![node(1), node(2)],
                oldest: Some(node(1)),
            }),
        };
        let m = || member.clone();
        vec![
            ClusterEvent::MemberJoined { member: m() },
            ClusterEvent::MemberWeaklyUp { member: m() },
            ClusterEvent::MemberUp { member: m() },
            ClusterEvent::MemberLeft { member: m() },
            ClusterEvent::MemberExited { member: m() },
            ClusterEvent::MemberDowned { member: m() },
            ClusterEvent::MemberRemoved {
                member: m(),
                previous_status: MemberStatus::Down,
            },
            ClusterEvent::UnreachableMember {
                member: m(),
                observed_by: vec![node(2), node(3)],
            },
            ClusterEvent::ReachableMember { member: m() },
            ClusterEvent::LeaderChanged { leader: None },
            ClusterEvent::LeaderChanged {
                leader: Some(node(2)),
            },
            ClusterEvent::RoleLeaderChanged {
                role: "worker".into(),
                leader: Some(node(3)),
            },
            ClusterEvent::ResolverDecision {
                decision: Decision::DownUnreachable,
                downed: vec![node(2)],
                indirectly_connected: vec![],
                grounds: Some(Box::new(grounds)),
            },
            ClusterEvent::ResolverDecision {
                decision: Decision::DownAll,
                downed: vec![node(1), node(2)],
                indirectly_connected: vec![node(2)],
                grounds: None,
            },
            ClusterEvent::JoinRefused {
                by: Address::new("h", 9),
                reason: "wrong cluster name".into(),
            },
            ClusterEvent::SelfShutdown {
                reason: ShutdownReason::Rejoin,
            },
        ]
    }

    #[test]
    fn every_event_reads_back_as_written() {
        for event in every_event() {
            let text = serde_json::to_string(&event).unwrap();
            let read: ClusterEvent = serde_json::from_str(&text).unwrap();
            assert_eq!(read, event, "{text}");
        }
        for strategy in [
            DowningStrategy::KeepMajority,
            DowningStrategy::StaticQuorum { quorum_size: 2 },
            DowningStrategy::KeepOldest {
                down_if_alone: true,
            },
            DowningStrategy::DownAll,
        ] {
            let text = serde_json::to_string(&strategy).unwrap();
            assert_eq!(
                serde_json::from_str::<DowningStrategy>(&text).unwrap(),
                strategy
            );
        }
    }

    #[test]
    fn an_event_missing_what_its_kind_needs_is_refused_by_name() {
        let refused = |text: &str| serde_json::from_str::<ClusterEvent>(text).unwrap_err();
        assert!(refused(r#"{"type":"MemberUp"}"#)
            .to_string()
            .contains("missing field `member`"));
        assert!(refused(r#"{"type":"Teleported"}"#)
            .to_string()
            .contains("unknown event type `Teleported`"));
        assert!(refused(r#"{"type":"SelfShutdown","reason":"bored"}"#)
            .to_string()
            .contains("unknown shutdown reason"));
        let strategy = serde_json::from_str::<DowningStrategy>(r#"{"strategy":"static-quorum"}"#);
        assert!(strategy
            .unwrap_err()
            .to_string()
            .contains("missing field `quorum_size`"));
    }

    fn with(members: &[(u16, MemberStatus)]) -> Gossip {
        let mut g = Gossip::default();
        for (p, s) in members {
            let mut m = Member::joining(node(*p), ["worker".to_string()].into());
            m.status = *s;
            g.members.insert(node(*p), m);
        }
        g
    }

    #[test]
    fn diff_reports_status_moves_removals_reachability_and_leaders() {
        use MemberStatus::*;
        let old = with(&[(1, Up), (2, Joining), (3, Down)]);
        let mut new = with(&[(1, Up), (2, Up), (4, Joining)]);
        new.reachability.mark_unreachable(&node(1), &node(4));
        let events = diff(&old, &new, &node(1));
        let kinds: Vec<&str> = events.iter().map(|e| e.kind()).collect();
        assert_eq!(
            kinds,
            [
                "MemberUp",
                "MemberJoined",
                "MemberRemoved",
                "UnreachableMember"
            ]
        );
        assert!(matches!(
            &events[2],
            ClusterEvent::MemberRemoved {
                previous_status: Down,
                ..
            }
        ));
        let mut newer = new.clone();
        newer.members.get_mut(&node(1)).unwrap().status = Leaving;
        newer.reachability.mark_reachable(&node(1), &node(4));
        let events = diff(&new, &newer, &node(1));
        let kinds: Vec<&str> = events.iter().map(|e| e.kind()).collect();
        assert_eq!(kinds, ["MemberLeft", "ReachableMember"]);
        let gone = with(&[(2, Up)]);
        let kinds: Vec<&str> = diff(&newer, &gone, &node(2))
            .iter()
            .map(|e| e.kind())
            .collect();
        assert!(kinds.contains(&"LeaderChanged") && kinds.contains(&"RoleLeaderChanged"));
    }
}
