//! One node's view of the cluster, kept current by folding its WebSocket stream.
//!
//! Each node the page is connected to gets its own `NodeView`, because views diverge
//! during a partition and that divergence is the thing the dashboard shows. The
//! reducer follows the stream's contract: a snapshot replaces the view (first message,
//! and again after the client lagged or reconnected), and an event or fault whose
//! sequence number is not above the view's is already included and ignored.
//!
//! Removed members stay in the view, drawn as Removed, for a short while
//! (`REMOVED_KEEP_MS`) so a person sees them go; a new snapshot drops them at once.

use shared::api::StreamMessage;
use shared::events::{ClusterEvent, ClusterSnapshot, ResolverStatus, ShutdownReason};
use shared::sbr::Decision;
use shared::sorting::{map_from, sort_by_key};
use shared::{Member, MemberStatus, UniqueAddress};
use std::collections::{BTreeMap, BTreeSet};

/// How long a removed member stays drawn after its removal (ms).
pub const REMOVED_KEEP_MS: u64 = 10_000;

/// What applying a stream message did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// A snapshot replaced the view.
    Snapshot,
    /// An event changed (or at least advanced) the view.
    Event,
    /// A fault was recorded (the view itself is unchanged).
    Fault,
    /// Already included in the view (its sequence number is not above the view's).
    Stale,
    /// An event before any snapshot: nothing to apply it to.
    NoSnapshot,
}

/// The last resolver decision this node took.
#[derive(Clone, Debug, PartialEq)]
pub struct DecisionRecord {
    /// When (node time, ms).
    pub at_ms: u64,
    /// What it decided.
    pub decision: Decision,
    /// Whom it downed.
    pub downed: Vec<UniqueAddress>,
    /// How long the view had been stable when it decided, as far as the stream shows.
    pub stable_for_ms: Option<u64>,
}

/// The cluster as one node sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeView {
    /// HTTP address the stream comes from.
    pub http: String,
    /// Whether the WebSocket is open.
    pub connected: bool,
    /// Sequence number of the last message included; `None` before the first snapshot.
    pub seq: Option<u64>,
    /// The observing node (its incarnation).
    pub self_node: Option<UniqueAddress>,
    /// Its own status.
    pub self_status: Option<MemberStatus>,
    /// Members by incarnation (two incarnations at one address can coexist briefly).
    pub members: BTreeMap<UniqueAddress, Member>,
    /// When each member shown as Removed was removed (node time, ms).
    pub removed_at: BTreeMap<UniqueAddress, u64>,
    /// Unreachable members and who observes them.
    pub unreachable: BTreeMap<UniqueAddress, BTreeSet<UniqueAddress>>,
    /// The leader.
    pub leader: Option<UniqueAddress>,
    /// The leader per role.
    pub role_leaders: BTreeMap<String, Option<UniqueAddress>>,
    /// The oldest Up (or Leaving) member.
    pub oldest: Option<UniqueAddress>,
    /// Convergence, as of the last snapshot.
    pub converged: Option<bool>,
    /// The resolver's status, as of the last snapshot.
    pub resolver: Option<ResolverStatus>,
    /// Last change of membership or reachability seen (node time, ms).
    pub stable_since_ms: Option<u64>,
    /// The resolver's stable-after, when a snapshot revealed it.
    pub stable_after_ms: Option<u64>,
    /// The last decision.
    pub last_decision: Option<DecisionRecord>,
    /// Set once the node said its membership stopped.
    pub shutdown: Option<ShutdownReason>,
    /// Times an event's number skipped ahead (messages lost without a new snapshot).
    pub gaps: u32,
}

impl NodeView {
    /// An empty view of the node at `http`, not yet connected.
    pub fn new(http: impl Into<String>) -> Self {
        NodeView {
            http: http.into(),
            connected: false,
            seq: None,
            self_node: None,
            self_status: None,
            members: BTreeMap::new(),
            removed_at: BTreeMap::new(),
            unreachable: BTreeMap::new(),
            leader: None,
            role_leaders: BTreeMap::new(),
            oldest: None,
            converged: None,
            resolver: None,
            stable_since_ms: None,
            stable_after_ms: None,
            last_decision: None,
            shutdown: None,
            gaps: 0,
        }
    }

    /// The observer's cluster address (`host:port`), once a snapshot named it.
    pub fn observer(&self) -> Option<String> {
        self.self_node.as_ref().map(|n| n.address.to_string())
    }

    /// Applies one stream message.
    pub fn apply(&mut self, message: &StreamMessage) -> Applied {
        match message {
            StreamMessage::Snapshot { seq, snapshot } => {
                self.replace(*seq, snapshot);
                Applied::Snapshot
            }
            StreamMessage::Event { seq, at_ms, event } => match self.advance(*seq) {
                Some(stale) => stale,
                None => {
                    self.apply_event(*at_ms, event);
                    Applied::Event
                }
            },
            StreamMessage::Fault { seq, .. } => self.advance(*seq).unwrap_or(Applied::Fault),
        }
    }

    /// Checks and moves the sequence number; `Some` when the message must be ignored.
    fn advance(&mut self, seq: u64) -> Option<Applied> {
        let Some(current) = self.seq else {
            return Some(Applied::NoSnapshot);
        };
        if seq <= current {
            return Some(Applied::Stale);
        }
        if seq > current + 1 {
            self.gaps += 1;
        }
        self.seq = Some(seq);
        None
    }

    fn replace(&mut self, seq: u64, s: &ClusterSnapshot) {
        let http = std::mem::take(&mut self.http);
        let connected = self.connected;
        // A snapshot reveals stable-after while something is unreachable; keep it
        // across snapshots of the same node.
        let stable_after = s
            .resolver
            .decision_due_ms
            .map(|due| due.saturating_sub(s.resolver.stable_since_ms))
            .or(self.stable_after_ms);
        *self = NodeView::new(http);
        self.connected = connected;
        self.seq = Some(seq);
        self.self_node = Some(s.self_node.clone());
        self.self_status = s.self_status;
        self.members = map_from(s.members.iter().map(|m| (m.node.clone(), m.clone())));
        self.unreachable = map_from(
            s.unreachable
                .iter()
                .map(|u| (u.node.clone(), u.observed_by.iter().cloned().collect())),
        );
        self.leader = s.leader.clone();
        self.role_leaders = s.role_leaders.clone();
        self.oldest = s.oldest.clone();
        self.converged = Some(s.converged);
        self.resolver = Some(s.resolver.clone());
        self.stable_since_ms = Some(s.resolver.stable_since_ms);
        self.stable_after_ms = stable_after;
    }

    fn apply_event(&mut self, at_ms: u64, event: &ClusterEvent) {
        use ClusterEvent::*;
        match event {
            MemberJoined { member }
            | MemberWeaklyUp { member }
            | MemberUp { member }
            | MemberLeft { member }
            | MemberExited { member }
            | MemberDowned { member } => {
                self.upsert(member);
                self.changed(at_ms);
            }
            MemberRemoved { member, .. } => {
                let mut gone = member.clone();
                gone.status = MemberStatus::Removed;
                self.unreachable.remove(&gone.node);
                self.removed_at.insert(gone.node.clone(), at_ms);
                self.upsert(&gone);
                self.changed(at_ms);
            }
            UnreachableMember {
                member,
                observed_by,
            } => {
                self.upsert(member);
                self.unreachable
                    .insert(member.node.clone(), observed_by.iter().cloned().collect());
                self.changed(at_ms);
            }
            ReachableMember { member } => {
                self.upsert(member);
                self.unreachable.remove(&member.node);
                self.changed(at_ms);
            }
            LeaderChanged { leader } => self.leader = leader.clone(),
            RoleLeaderChanged { role, leader } => {
                self.role_leaders.insert(role.clone(), leader.clone());
            }
            ResolverDecision {
                decision, downed, ..
            } => {
                self.last_decision = Some(DecisionRecord {
                    at_ms,
                    decision: *decision,
                    downed: downed.clone(),
                    stable_for_ms: self.stable_since_ms.map(|s| at_ms.saturating_sub(s)),
                });
                // The resolver forgets its history after deciding.
                self.changed(at_ms);
            }
            JoinRefused { .. } => {}
            SelfShutdown { reason } => self.shutdown = Some(*reason),
        }
        if let Some(me) = &self.self_node {
            if let Some(m) = self.members.get(me) {
                self.self_status = Some(m.status);
            }
        }
    }

    fn upsert(&mut self, member: &Member) {
        if member.status != MemberStatus::Removed {
            self.removed_at.remove(&member.node);
        }
        self.members.insert(member.node.clone(), member.clone());
        self.oldest = self
            .members
            .values()
            .filter(|m| m.status.is_convergence_member())
            .min_by(|a, b| a.age_cmp(b))
            .map(|m| m.node.clone());
    }

    fn changed(&mut self, at_ms: u64) {
        self.stable_since_ms = Some(at_ms);
    }

    /// Drops members shown as Removed for longer than `keep_ms` at `now_ms`; true if
    /// anything was dropped.
    pub fn prune_removed(&mut self, now_ms: u64, keep_ms: u64) -> bool {
        let expired: Vec<UniqueAddress> = self
            .removed_at
            .iter()
            .filter(|(_, at)| now_ms.saturating_sub(**at) > keep_ms)
            .map(|(n, _)| n.clone())
            .collect();
        for n in &expired {
            self.removed_at.remove(n);
            self.members.remove(n);
        }
        !expired.is_empty()
    }

    /// Members in address order (then incarnation).
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// Members for drawing: address order, and at one address the current incarnation
    /// first (the one not Down or Removed), so `[data-node=...]` finds the live one
    /// while its predecessor is still shown on its way out.
    pub fn display_members(&self) -> Vec<&Member> {
        let mut members: Vec<&Member> = self.members.values().collect();
        sort_by_key(&mut members, |m| {
            (
                &m.node.address,
                matches!(m.status, MemberStatus::Down | MemberStatus::Removed),
                m.node.uid,
            )
        });
        members
    }

    /// Whether this view counts `node` reachable (no observer sees it unreachable).
    pub fn is_reachable(&self, node: &UniqueAddress) -> bool {
        !self.unreachable.contains_key(node)
    }

    /// Whether `observer` sees `subject` unreachable in this view.
    pub fn sees_unreachable(&self, observer: &UniqueAddress, subject: &UniqueAddress) -> bool {
        self.unreachable
            .get(subject)
            .is_some_and(|observers| observers.contains(observer))
    }

    /// Unreachable members the resolver would still act on (not already Down or gone).
    pub fn pending_unreachable(&self) -> usize {
        self.unreachable
            .keys()
            .filter(|n| {
                self.members.get(*n).is_some_and(|m| {
                    !matches!(
                        m.status,
                        MemberStatus::Down | MemberStatus::Exiting | MemberStatus::Removed
                    )
                })
            })
            .count()
    }

    /// Time left (ms, may be negative when overdue) until the resolver decides if the
    /// view stays as it is: stable-since plus stable-after. `None` when nothing is
    /// unreachable or stable-after is unknown. An estimate: the stream carries
    /// membership and reachability changes, not every observer-level change.
    pub fn countdown_ms(&self, now_ms: u64, default_stable_after_ms: u64) -> Option<i64> {
        if self.pending_unreachable() == 0 || self.shutdown.is_some() {
            return None;
        }
        let since = self.stable_since_ms?;
        let after = self.stable_after_ms.unwrap_or(default_stable_after_ms);
        Some((since + after) as i64 - now_ms as i64)
    }

    /// Whether this view is drawable (it had a snapshot).
    pub fn has_snapshot(&self) -> bool {
        self.seq.is_some()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use shared::events::UnreachableInfo;
    use shared::Address;

    pub fn node(port: u16) -> UniqueAddress {
        UniqueAddress::new(Address::new("127.0.0.1", port), u64::from(port) * 1000)
    }

    pub fn member(port: u16, status: MemberStatus, up_number: u32) -> Member {
        Member {
            node: node(port),
            status,
            roles: ["api".to_string(), "worker".to_string()].into(),
            up_number,
        }
    }

    pub fn snapshot(seq: u64, me: u16, members: &[Member]) -> StreamMessage {
        StreamMessage::Snapshot {
            seq,
            snapshot: ClusterSnapshot {
                self_node: node(me),
                self_status: members
                    .iter()
                    .find(|m| m.node == node(me))
                    .map(|m| m.status),
                members: members.to_vec(),
                unreachable: vec![],
                seen_by: vec![],
                leader: members.first().map(|m| m.node.clone()),
                role_leaders: BTreeMap::new(),
                oldest: members.first().map(|m| m.node.clone()),
                converged: true,
                version_digest: seq,
                resolver: ResolverStatus {
                    responsible: true,
                    unreachable: 0,
                    stable_since_ms: 1_000,
                    decision_due_ms: None,
                },
                phi: vec![],
                time_away_ms: 0,
            },
        }
    }

    pub fn event(seq: u64, at_ms: u64, event: ClusterEvent) -> StreamMessage {
        StreamMessage::Event { seq, at_ms, event }
    }

    pub fn three_up() -> Vec<Member> {
        vec![
            member(2551, MemberStatus::Up, 1),
            member(2552, MemberStatus::Up, 2),
            member(2553, MemberStatus::Up, 3),
        ]
    }

    fn view_of_three() -> NodeView {
        let mut v = NodeView::new("127.0.0.1:8551");
        assert_eq!(v.apply(&snapshot(10, 2551, &three_up())), Applied::Snapshot);
        v
    }

    #[test]
    fn a_snapshot_fills_an_empty_view() {
        let v = view_of_three();
        assert_eq!(v.observer().as_deref(), Some("127.0.0.1:2551"));
        assert_eq!(v.members().count(), 3);
        assert_eq!(v.self_status, Some(MemberStatus::Up));
        assert_eq!(v.leader, Some(node(2551)));
        assert_eq!(v.seq, Some(10));
    }

    #[test]
    fn a_member_that_becomes_unreachable_is_unreachable_in_that_observers_view() {
        let mut v = view_of_three();
        let e = ClusterEvent::UnreachableMember {
            member: member(2553, MemberStatus::Up, 3),
            observed_by: vec![node(2551)],
        };
        assert_eq!(v.apply(&event(11, 5_000, e)), Applied::Event);
        assert!(!v.is_reachable(&node(2553)));
        assert!(v.is_reachable(&node(2552)));
        assert!(v.sees_unreachable(&node(2551), &node(2553)));
        assert!(!v.sees_unreachable(&node(2552), &node(2553)));
        let back = ClusterEvent::ReachableMember {
            member: member(2553, MemberStatus::Up, 3),
        };
        v.apply(&event(12, 6_000, back));
        assert!(v.is_reachable(&node(2553)));
    }

    #[test]
    fn events_older_than_the_snapshot_seq_are_ignored() {
        let mut v = view_of_three();
        let downed = ClusterEvent::MemberDowned {
            member: member(2553, MemberStatus::Down, 3),
        };
        assert_eq!(v.apply(&event(10, 5_000, downed.clone())), Applied::Stale);
        assert_eq!(v.apply(&event(7, 5_000, downed)), Applied::Stale);
        assert_eq!(v.members[&node(2553)].status, MemberStatus::Up);
        let fault = StreamMessage::Fault {
            seq: 9,
            at_ms: 1,
            description: "x".into(),
        };
        assert_eq!(v.apply(&fault), Applied::Stale);
    }

    #[test]
    fn a_snapshot_after_lag_replaces_the_view() {
        let mut v = view_of_three();
        v.apply(&event(
            11,
            5_000,
            ClusterEvent::UnreachableMember {
                member: member(2553, MemberStatus::Up, 3),
                observed_by: vec![node(2551)],
            },
        ));
        // The client lagged; the node sends a fresh snapshot in which 2553 is gone.
        let after = vec![
            member(2551, MemberStatus::Up, 1),
            member(2552, MemberStatus::Up, 2),
        ];
        assert_eq!(v.apply(&snapshot(40, 2551, &after)), Applied::Snapshot);
        assert_eq!(v.members().count(), 2);
        assert!(v.unreachable.is_empty());
        assert_eq!(v.seq, Some(40));
        // Events the snapshot already includes are ignored; the next one applies.
        let up = ClusterEvent::MemberUp {
            member: member(2553, MemberStatus::Up, 4),
        };
        assert_eq!(v.apply(&event(39, 5_000, up.clone())), Applied::Stale);
        assert_eq!(v.apply(&event(41, 5_000, up)), Applied::Event);
        assert_eq!(v.members().count(), 3);
    }

    #[test]
    fn a_restarted_node_starts_numbering_again_and_its_snapshot_still_replaces_the_view() {
        let mut v = view_of_three();
        assert_eq!(
            v.apply(&snapshot(0, 2551, &three_up()[..1])),
            Applied::Snapshot
        );
        assert_eq!(v.seq, Some(0));
        assert_eq!(v.members().count(), 1);
    }

    #[test]
    fn events_before_any_snapshot_are_not_applied() {
        let mut v = NodeView::new("127.0.0.1:8551");
        let up = ClusterEvent::MemberUp {
            member: member(2552, MemberStatus::Up, 2),
        };
        assert_eq!(v.apply(&event(1, 5, up)), Applied::NoSnapshot);
        assert!(v.members.is_empty());
    }

    #[test]
    fn a_skipped_sequence_number_is_counted_as_a_gap_but_the_event_applies() {
        let mut v = view_of_three();
        let left = ClusterEvent::MemberLeft {
            member: member(2552, MemberStatus::Leaving, 2),
        };
        assert_eq!(v.apply(&event(13, 5_000, left)), Applied::Event);
        assert_eq!(v.gaps, 1);
        assert_eq!(v.members[&node(2552)].status, MemberStatus::Leaving);
    }

    #[test]
    fn a_removed_member_is_drawn_removed_for_a_while_then_dropped() {
        let mut v = view_of_three();
        v.apply(&event(
            11,
            5_000,
            ClusterEvent::MemberRemoved {
                member: member(2553, MemberStatus::Removed, 3),
                previous_status: MemberStatus::Down,
            },
        ));
        assert_eq!(v.members[&node(2553)].status, MemberStatus::Removed);
        assert!(!v.prune_removed(5_000 + REMOVED_KEEP_MS, REMOVED_KEEP_MS));
        assert!(v.prune_removed(5_001 + REMOVED_KEEP_MS, REMOVED_KEEP_MS));
        assert!(!v.members.contains_key(&node(2553)));
    }

    #[test]
    fn a_new_incarnation_at_the_same_address_is_a_separate_member() {
        let mut v = view_of_three();
        let mut reborn = member(2553, MemberStatus::Joining, 0);
        reborn.node.uid = 42;
        v.apply(&event(
            11,
            5_000,
            ClusterEvent::MemberDowned {
                member: member(2553, MemberStatus::Down, 3),
            },
        ));
        v.apply(&event(
            12,
            5_100,
            ClusterEvent::MemberJoined { member: reborn },
        ));
        let at_2553: Vec<_> = v
            .members()
            .filter(|m| m.node.address.port == 2553)
            .map(|m| (m.node.uid, m.status))
            .collect();
        assert_eq!(
            at_2553,
            [(42, MemberStatus::Joining), (2553000, MemberStatus::Down)]
        );
    }

    #[test]
    fn the_current_incarnation_is_drawn_before_the_one_on_its_way_out() {
        let mut v = view_of_three();
        let mut reborn = member(2552, MemberStatus::Joining, 0);
        reborn.node.uid = u64::MAX;
        v.apply(&event(
            11,
            5_000,
            ClusterEvent::MemberDowned {
                member: member(2552, MemberStatus::Down, 2),
            },
        ));
        v.apply(&event(
            12,
            5_100,
            ClusterEvent::MemberJoined { member: reborn },
        ));
        let drawn: Vec<_> = v
            .display_members()
            .iter()
            .map(|m| (m.node.address.port, m.status))
            .collect();
        assert_eq!(
            drawn,
            [
                (2551, MemberStatus::Up),
                (2552, MemberStatus::Joining),
                (2552, MemberStatus::Down),
                (2553, MemberStatus::Up)
            ]
        );
    }

    #[test]
    fn leader_and_oldest_follow_the_events() {
        let mut v = view_of_three();
        v.apply(&event(
            11,
            5_000,
            ClusterEvent::LeaderChanged {
                leader: Some(node(2552)),
            },
        ));
        assert_eq!(v.leader, Some(node(2552)));
        v.apply(&event(
            12,
            5_000,
            ClusterEvent::MemberDowned {
                member: member(2551, MemberStatus::Down, 1),
            },
        ));
        assert_eq!(
            v.oldest,
            Some(node(2552)),
            "a Down member is not the oldest"
        );
        assert_eq!(
            v.self_status,
            Some(MemberStatus::Down),
            "its own status follows"
        );
    }

    #[test]
    fn the_resolver_countdown_runs_from_the_last_change_and_stops_after_the_decision() {
        let mut v = view_of_three();
        assert_eq!(v.countdown_ms(5_000, 3_000), None, "nothing unreachable");
        v.apply(&event(
            11,
            5_000,
            ClusterEvent::UnreachableMember {
                member: member(2553, MemberStatus::Up, 3),
                observed_by: vec![node(2551), node(2552)],
            },
        ));
        assert_eq!(v.countdown_ms(6_000, 3_000), Some(2_000));
        v.apply(&event(
            12,
            8_000,
            ClusterEvent::ResolverDecision {
                decision: Decision::DownUnreachable,
                downed: vec![node(2553)],
                indirectly_connected: vec![],
                grounds: None,
            },
        ));
        let d = v.last_decision.clone().unwrap();
        assert_eq!(d.stable_for_ms, Some(3_000));
        v.apply(&event(
            13,
            8_010,
            ClusterEvent::MemberDowned {
                member: member(2553, MemberStatus::Down, 3),
            },
        ));
        assert_eq!(
            v.countdown_ms(8_100, 3_000),
            None,
            "a Down member is settled"
        );
    }

    #[test]
    fn a_snapshot_reveals_stable_after_while_something_is_unreachable() {
        let mut v = NodeView::new("h");
        let StreamMessage::Snapshot { seq, mut snapshot } = snapshot(5, 2551, &three_up()) else {
            unreachable!()
        };
        snapshot.unreachable = vec![UnreachableInfo {
            node: node(2553),
            observed_by: vec![node(2551)],
        }];
        snapshot.resolver.stable_since_ms = 10_000;
        snapshot.resolver.decision_due_ms = Some(13_500);
        v.apply(&StreamMessage::Snapshot { seq, snapshot });
        assert_eq!(v.stable_after_ms, Some(3_500));
        assert_eq!(v.countdown_ms(11_000, 20_000), Some(2_500));
        // A later healthy snapshot keeps what was learned.
        v.apply(&self::snapshot(9, 2551, &three_up()));
        assert_eq!(v.stable_after_ms, Some(3_500));
    }

    #[test]
    fn self_shutdown_is_remembered() {
        let mut v = view_of_three();
        v.apply(&event(
            11,
            1,
            ClusterEvent::SelfShutdown {
                reason: ShutdownReason::Downed,
            },
        ));
        assert_eq!(v.shutdown, Some(ShutdownReason::Downed));
    }
}
