//! HTTP and WebSocket types of a node's management API, shared by the node (which
//! serves them), the operator CLI and the dashboard (which read them).
//!
//! The members endpoint follows Akka Management's JSON shape (`selfNode`, `leader`,
//! `oldest`, `members`, `unreachable`), so tools written for it read ours.

use crate::address::UniqueAddress;
use crate::events::{ClusterEvent, ClusterSnapshot};
use crate::member::Member;
use crate::tagged::required;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

/// Faults on the link from a node to one peer, as the node's fault table holds them
/// (`GET /faults` lists them) and as `POST /faults/links` sets them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct LinkFault {
    /// Drop everything sent to the peer.
    pub cut_outbound: bool,
    /// Drop everything received from the peer.
    pub cut_inbound: bool,
    /// Extra delay on messages to the peer (ms).
    pub delay_ms: u64,
    /// Random extra delay up to this (ms).
    pub jitter_ms: u64,
    /// Probability of dropping each message to the peer (0 to 1).
    pub loss: f64,
}

impl LinkFault {
    /// Longest delay or jitter accepted (ms).
    pub const MAX_DELAY_MS: u64 = 60_000;

    /// Whether the values are in range: loss 0 to 1, delays at most a minute.
    pub fn is_valid(&self) -> bool {
        (0.0..=1.0).contains(&self.loss)
            && self.delay_ms <= Self::MAX_DELAY_MS
            && self.jitter_ms <= Self::MAX_DELAY_MS
    }
}

/// `POST /faults/links`: the faults toward `peer`, in the same object
/// (`{"peer": "host:port", "cutOutbound": true}`); an unknown field is refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "LinkFaultRequestWire")]
pub struct LinkFaultRequest {
    /// The peer's cluster address, `host:port`.
    pub peer: String,
    /// The faults (a default one clears them).
    #[serde(flatten)]
    pub fault: LinkFault,
}

/// What `LinkFaultRequest` is read from: serde cannot refuse unknown fields next to a
/// flattened struct, so they are collected here and refused in `try_from`.
#[derive(Deserialize)]
struct LinkFaultRequestWire {
    peer: String,
    #[serde(flatten)]
    fault: LinkFault,
    #[serde(flatten)]
    unknown: BTreeMap<String, serde::de::IgnoredAny>,
}

impl TryFrom<LinkFaultRequestWire> for LinkFaultRequest {
    type Error = String;

    fn try_from(wire: LinkFaultRequestWire) -> Result<Self, String> {
        match wire.unknown.keys().next() {
            Some(field) => Err(format!("unknown field `{field}`")),
            None => Ok(LinkFaultRequest {
                peer: wire.peer,
                fault: wire.fault,
            }),
        }
    }
}

/// `POST /faults/freeze`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FreezeRequest {
    /// How long the node stops processing (ms).
    pub millis: u64,
}

/// What the WebSocket stream sends: first a snapshot, then numbered events.
///
/// Read through `StreamFields` (every field any variant has), as `ClusterEvent` is,
/// so that a snapshot or an event is read once, not buffered and read again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", try_from = "StreamFields")]
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

/// A [`StreamMessage`] as read: its `type`, and every field any variant has.
#[derive(Deserialize)]
struct StreamFields {
    #[serde(rename = "type")]
    kind: String,
    seq: Option<u64>,
    at_ms: Option<u64>,
    snapshot: Option<ClusterSnapshot>,
    event: Option<ClusterEvent>,
    description: Option<String>,
}

impl TryFrom<StreamFields> for StreamMessage {
    type Error = String;

    fn try_from(f: StreamFields) -> Result<Self, String> {
        let seq = required(f.seq, "seq")?;
        let at_ms = || required(f.at_ms, "at_ms");
        Ok(match f.kind.as_str() {
            "snapshot" => StreamMessage::Snapshot {
                seq,
                snapshot: required(f.snapshot, "snapshot")?,
            },
            "event" => StreamMessage::Event {
                seq,
                at_ms: at_ms()?,
                event: required(f.event, "event")?,
            },
            "fault" => StreamMessage::Fault {
                seq,
                at_ms: at_ms()?,
                description: required(f.description, "description")?,
            },
            other => return Err(format!("unknown stream message type `{other}`")),
        })
    }
}

/// A video as the service API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoJson {
    /// Catalogue id.
    pub id: u32,
    /// Title.
    pub title: String,
    /// Release year, when known.
    pub year: Option<u16>,
    /// Genres.
    pub genres: Vec<String>,
}

/// `GET /api/videos?query=&genre=&page=`: one page of matching videos.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideosPage {
    /// The videos on this page.
    pub items: Vec<VideoJson>,
    /// Page number, from 1.
    pub page: u32,
    /// Videos per page.
    pub page_size: u32,
    /// Matching videos over all pages.
    pub total: u32,
}

/// One video a user watched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchedJson {
    /// The video.
    pub video: VideoJson,
    /// When it was recorded by the service (ms since the epoch); `None` for the
    /// dataset's own history.
    pub recorded_at_ms: Option<u64>,
}

/// `GET /api/users/{id}/history`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryResponse {
    /// The user.
    pub user: u32,
    /// Watched videos: the dataset's, then those recorded through the service.
    pub watched: Vec<WatchedJson>,
    /// The worker that read it (`host:port` of its cluster address).
    pub served_by: String,
    /// Replicas whose copies were merged into this answer.
    pub replicas_read: u32,
}

/// `POST /api/users/{id}/watched` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WatchRequest {
    /// The video watched.
    pub video: u32,
}

/// `POST /api/users/{id}/watched` answer (201: a majority of replicas hold it on disk).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchResponse {
    /// The user.
    pub user: u32,
    /// The video.
    pub video: u32,
    /// The worker that coordinated the write.
    pub served_by: String,
    /// Replicas that acknowledged it durably before the answer.
    pub acknowledged_by: Vec<String>,
    /// Replicas the write was sent to.
    pub replicas: u32,
}

/// One recommended video.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecommendedJson {
    /// The video.
    pub video: VideoJson,
    /// Higher is better.
    pub score: f32,
}

/// `GET /api/recommendations/{user}?n=10`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecommendationsResponse {
    /// The user.
    pub user: u32,
    /// Best first.
    pub items: Vec<RecommendedJson>,
    /// The worker that computed it, or the api node itself when degraded.
    pub served_by: String,
    /// The api node that answered the HTTP request.
    pub answered_by: String,
    /// True when built from the user's history; false for the popularity list.
    pub personal: bool,
    /// True when no worker could answer in time and the api node fell back to the
    /// popularity list.
    pub degraded: bool,
    /// Workers tried (1 when the first owner answered).
    pub attempts: u32,
    /// Time from receiving the request to answering it, in milliseconds.
    pub elapsed_ms: f64,
}

/// What the demo launcher knows of one slot (`GET /launcher/nodes`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SlotState {
    /// The process runs.
    Running,
    /// SIGSTOPped by the launcher.
    Paused,
    /// Stopped by an operator; not restarted.
    Stopped,
    /// Exited on its own; restarted soon if auto-restart is on.
    Exited,
}

/// One launcher slot as its API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlotView {
    /// Index.
    pub slot: usize,
    /// Cluster address.
    pub cluster: String,
    /// HTTP address of the node's API and dashboard.
    pub http: String,
    /// Process id, while running.
    pub pid: Option<u32>,
    /// State.
    pub state: SlotState,
    /// Exit code of the last incarnation, if it exited.
    pub last_exit: Option<i32>,
    /// Incarnations started so far.
    pub starts: u32,
}

/// A peer's HTTP address, learned over the cluster transport.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerHttp {
    /// Cluster address, `host:port`.
    pub node: String,
    /// HTTP address, `host:port`.
    pub http: String,
}

/// `GET /api/dashboard`: what the web app needs to connect to the whole cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DashboardInfo {
    /// This node's cluster address.
    pub self_node: String,
    /// This node's HTTP address.
    pub http: String,
    /// Its roles.
    pub roles: Vec<String>,
    /// Demo mode: no token needed for faults and membership changes.
    pub demo: bool,
    /// The demo launcher's HTTP address, when a launcher started this node.
    pub launcher: Option<String>,
    /// HTTP addresses of the other nodes this node has heard from.
    pub peers: Vec<PeerHttp>,
    /// The highest user id in the catalogue (users are numbered from 1).
    #[serde(default)]
    pub max_user_id: u32,
    /// How many members each node monitors on the heartbeat ring.
    #[serde(default)]
    pub monitored_by: Option<usize>,
}

/// A control on one node, as the launcher, the nodes' APIs and the page name it (the
/// launcher's are `POST /launcher/nodes/{slot}/{name}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeAction {
    /// SIGKILL the process.
    Kill,
    /// SIGSTOP the process.
    Pause,
    /// SIGCONT a paused process.
    Resume,
    /// Kill it and start a new incarnation at the same addresses.
    Restart,
    /// A graceful leave (SIGTERM), then not started again.
    Stop,
    /// Ask the member to leave (management API).
    Leave,
    /// Mark the member Down (management API).
    Down,
    /// Cut every link between the node and every other node.
    Partition,
    /// Heal every link of the node.
    Heal,
    /// Stop processing for a few seconds (the node's own fault API).
    Freeze,
}

impl NodeAction {
    /// Every action, in button order.
    pub const ALL: [NodeAction; 10] = [
        NodeAction::Kill,
        NodeAction::Pause,
        NodeAction::Resume,
        NodeAction::Restart,
        NodeAction::Stop,
        NodeAction::Leave,
        NodeAction::Down,
        NodeAction::Partition,
        NodeAction::Heal,
        NodeAction::Freeze,
    ];

    /// Its name in URLs, the page's `data-action` and the journal.
    pub fn name(self) -> &'static str {
        match self {
            NodeAction::Kill => "kill",
            NodeAction::Pause => "pause",
            NodeAction::Resume => "resume",
            NodeAction::Restart => "restart",
            NodeAction::Stop => "stop",
            NodeAction::Leave => "leave",
            NodeAction::Down => "down",
            NodeAction::Partition => "partition",
            NodeAction::Heal => "heal",
            NodeAction::Freeze => "freeze",
        }
    }

    /// The action of this name.
    pub fn named(name: &str) -> Option<NodeAction> {
        NodeAction::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Whether it acts on the process, which only the launcher that started it can.
    pub fn needs_launcher(self) -> bool {
        matches!(
            self,
            NodeAction::Kill
                | NodeAction::Pause
                | NodeAction::Resume
                | NodeAction::Restart
                | NodeAction::Stop
        )
    }

    /// Whether the launcher carries it out for a slot: all but freeze, which only the
    /// node's own fault API offers.
    pub fn launcher_runs(self) -> bool {
        self != NodeAction::Freeze
    }

    /// Whether it disrupts the node it is applied to (the public demo keeps a majority
    /// of nodes undisrupted).
    pub fn disrupts(self) -> bool {
        !matches!(
            self,
            NodeAction::Resume | NodeAction::Heal | NodeAction::Freeze
        )
    }
}

/// What a link action does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LinkKind {
    /// Drop everything both ways.
    Cut,
    /// Drop everything from `from` to `to`; the other direction still works.
    OneWay,
    /// 300 ms delay with 100 ms jitter, both ways.
    Slow,
    /// Drop 30% of the messages, both ways.
    Lossy,
    /// Remove any fault on the link, both ways.
    Heal,
}

impl LinkKind {
    /// Every kind, in button order.
    pub const ALL: [LinkKind; 5] = [
        LinkKind::Cut,
        LinkKind::OneWay,
        LinkKind::Slow,
        LinkKind::Lossy,
        LinkKind::Heal,
    ];

    /// Whether the launcher relays it; lossy links are set on the nodes directly and
    /// so are not offered in the public demo.
    pub fn launcher_relays(self) -> bool {
        self != LinkKind::Lossy
    }

    /// Its name on the page (`data-action`).
    pub fn name(self) -> &'static str {
        match self {
            LinkKind::Cut => "cut",
            LinkKind::OneWay => "oneway",
            LinkKind::Slow => "slow",
            LinkKind::Lossy => "lossy",
            LinkKind::Heal => "heal",
        }
    }
}

/// `POST /launcher/links`: a fault on the link between two slots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LauncherLinkRequest {
    /// Slot at one end (the sender, for a one-way cut).
    pub from: usize,
    /// Slot at the other end.
    pub to: usize,
    /// The fault.
    pub kind: LinkKind,
}

/// `GET /launcher/policy`: the rules the launcher applies to visitors' actions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LauncherPolicy {
    /// Public mode: faults heal themselves, actions are rate-limited, and at most a
    /// minority of nodes may be impaired at once.
    pub public: bool,
    /// Link faults and partitions heal after this long (public mode).
    pub fault_ttl_secs: u64,
    /// Paused nodes resume after this long (public mode).
    pub pause_max_secs: u64,
    /// Actions each client may take per minute (public mode).
    pub actions_per_minute: u32,
    /// Nodes visitors may add beyond the initial ones (public mode); added nodes
    /// leave again after `fault_ttl_secs` times ten.
    pub extra_nodes: usize,
    /// Nodes impaired now (not running, paused, recently restarted, or behind a fault).
    pub impaired: Vec<usize>,
    /// How many may be impaired at once (public mode).
    pub max_impaired: usize,
}

/// The answer to a launcher action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionResult {
    /// What was done, for a person.
    pub message: String,
}

/// One action a visitor took through the launcher, as every visitor's timeline shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VisitorAction {
    /// Position in the launcher's journal (increasing).
    pub seq: u64,
    /// When it was answered (ms since the epoch).
    pub at_ms: u64,
    /// The anonymous tag of the visitor who took it.
    pub visitor: String,
    /// What was asked, e.g. `kill n2`.
    pub action: String,
    /// Whether it was carried out.
    pub ok: bool,
    /// The launcher's answer: what was done, or why not.
    pub outcome: String,
}

/// `GET /launcher/actions?after={seq}`: the journal after `seq`, and the asker's tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VisitorJournal {
    /// The tag the launcher gives the visitor asking.
    pub you: String,
    /// Actions after the asked position, oldest first.
    pub actions: Vec<VisitorAction>,
}

/// `GET /api/replica`: this node's copy of the watch history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaStatus {
    /// Whether it holds a replica (has the `worker` role and is a replica in its view).
    pub replica: bool,
    /// Whether it has caught up with a majority since it started (its copy counts
    /// toward reads only then).
    pub ready: bool,
    /// (user, video) pairs it holds.
    pub watches: u64,
    /// A digest of the whole copy (equal copies have equal digests), in hex.
    pub digest: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stream_message_reads_back_as_written_and_a_short_one_is_refused() {
        let me = crate::address::UniqueAddress::new(crate::address::Address::new("h", 1), 7);
        let roles = ["api".to_string()].into();
        let node = crate::Node::new(me, roles, vec![], crate::Settings::demo("c"), 1, 0);
        let messages = [
            StreamMessage::Snapshot {
                seq: 3,
                snapshot: node.snapshot(),
            },
            StreamMessage::Event {
                seq: 4,
                at_ms: 10,
                event: ClusterEvent::LeaderChanged { leader: None },
            },
            StreamMessage::Fault {
                seq: 5,
                at_ms: 11,
                description: "cut".into(),
            },
        ];
        for message in messages {
            let text = serde_json::to_string(&message).unwrap();
            assert_eq!(
                serde_json::from_str::<StreamMessage>(&text).unwrap(),
                message
            );
        }
        let short = serde_json::from_str::<StreamMessage>(r#"{"type":"event","seq":1}"#);
        assert!(short
            .unwrap_err()
            .to_string()
            .contains("missing field `at_ms`"));
    }

    #[test]
    fn a_link_fault_request_is_one_flat_object_and_refuses_unknown_fields() {
        let parsed: LinkFaultRequest =
            serde_json::from_str(r#"{"peer":"10.0.0.1:2552","cutOutbound":true,"delayMs":5}"#)
                .unwrap();
        assert_eq!(parsed.peer, "10.0.0.1:2552");
        assert!(parsed.fault.cut_outbound && !parsed.fault.cut_inbound);
        assert_eq!(parsed.fault.delay_ms, 5);
        let text = serde_json::to_string(&parsed).unwrap();
        assert!(text.contains(r#""cutOutbound":true"#) && !text.contains("fault"));
        let unknown = serde_json::from_str::<LinkFaultRequest>(r#"{"peer":"x:1","bogus":1}"#);
        assert!(unknown.is_err(), "{unknown:?}");
        assert!(serde_json::from_str::<LinkFaultRequest>(r#"{"cutOutbound":true}"#).is_err());
    }
}

/// One key of a node's transport keyring (`GET /cluster/keys`): its fingerprint,
/// never the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyJson {
    /// First 8 bytes of SHA-256 over the derived key, in hex.
    pub id: String,
    /// Whether new connections use it.
    pub primary: bool,
}

/// `GET /cluster/keys`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeysResponse {
    /// Primary first.
    pub keys: Vec<KeyJson>,
}

/// `POST /cluster/keys`: a cluster secret whose key to accept from now on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallKey {
    /// The secret phrase (at least 8 characters).
    pub secret: String,
}
