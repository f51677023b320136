//! Reading what nodes send and turning it into words: the tolerant WebSocket message
//! parser, the `data-kind` names of events, one-line descriptions for the timeline, and
//! the error text of an HTTP answer.
//!
//! Kept free of browser APIs so every rule here is unit-tested natively.

use shared::api::{ErrorBody, StreamMessage};
use shared::events::{ClusterEvent, ShutdownReason};
use shared::sbr::Decision;
use shared::UniqueAddress;

/// Parses one WebSocket text frame.
///
/// A snapshot's `phi` values are `f64`s, and `serde_json` writes an infinite phi (a
/// member silent for long enough) as `null`, which it then refuses to read back as a
/// number. Rather than lose the whole snapshot, such values are read as `f64::MAX`.
pub fn parse_stream(text: &str) -> Result<StreamMessage, String> {
    match serde_json::from_str::<StreamMessage>(text) {
        Ok(message) => Ok(message),
        Err(first) => {
            let mut value: serde_json::Value =
                serde_json::from_str(text).map_err(|e| e.to_string())?;
            let patched = value
                .get_mut("snapshot")
                .and_then(|s| s.get_mut("phi"))
                .and_then(|p| p.as_array_mut())
                .map(|pairs| {
                    let mut changed = false;
                    for pair in pairs.iter_mut() {
                        if let Some(v) = pair.get_mut(1).filter(|v| v.is_null()) {
                            *v = serde_json::Value::from(f64::MAX);
                            changed = true;
                        }
                    }
                    changed
                })
                .unwrap_or(false);
            if !patched {
                return Err(first.to_string());
            }
            serde_json::from_value(value).map_err(|e| e.to_string())
        }
    }
}

/// The `data-kind` of an event: its kind in lower camel case (`memberUp`).
pub fn event_kind(event: &ClusterEvent) -> String {
    lower_camel(event.kind())
}

/// `MemberUp` -> `memberUp`.
pub fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => std::iter::once(first.to_ascii_lowercase())
            .chain(chars)
            .collect(),
        None => String::new(),
    }
}

/// `host:port` of a unique address (the uid is shown separately where it matters).
pub fn addr(node: &UniqueAddress) -> String {
    node.address.to_string()
}

fn list(nodes: &[UniqueAddress]) -> String {
    if nodes.is_empty() {
        "none".to_string()
    } else {
        nodes.iter().map(addr).collect::<Vec<_>>().join(", ")
    }
}

/// What a resolver decision means, in words.
pub fn decision_text(decision: Decision) -> &'static str {
    match decision {
        Decision::DownUnreachable => "keep this side, down the unreachable",
        Decision::DownReachable => "this side loses: down the reachable side (itself included)",
        Decision::DownAll => "down everyone",
        Decision::DownIndirectlyConnected => "down the indirectly connected",
        Decision::DownSelf => "cannot weigh the broken links safely: down only itself",
        Decision::DownProvenDead => "enough members found nothing listening: down the dead",
    }
}

/// Why a node stopped, in words.
pub fn shutdown_text(reason: ShutdownReason) -> &'static str {
    match reason {
        ShutdownReason::Left => "left the cluster",
        ShutdownReason::Downed => "was downed",
        ShutdownReason::Removed => "learned it was removed",
        ShutdownReason::Rejoin => "must restart to join the real cluster",
    }
}

/// One line for the timeline.
pub fn describe_event(event: &ClusterEvent) -> String {
    use ClusterEvent::*;
    match event {
        MemberJoined { member } => format!("{} is Joining", addr(&member.node)),
        MemberWeaklyUp { member } => format!("{} is WeaklyUp", addr(&member.node)),
        MemberUp { member } => format!("{} is Up", addr(&member.node)),
        MemberLeft { member } => format!("{} is Leaving", addr(&member.node)),
        MemberExited { member } => format!("{} is Exiting", addr(&member.node)),
        MemberDowned { member } => format!("{} is Down", addr(&member.node)),
        MemberRemoved {
            member,
            previous_status,
        } => format!("{} removed (was {previous_status})", addr(&member.node)),
        UnreachableMember {
            member,
            observed_by,
        } => format!(
            "{} unreachable, observed by {}",
            addr(&member.node),
            list(observed_by)
        ),
        ReachableMember { member } => format!("{} reachable again", addr(&member.node)),
        LeaderChanged { leader } => match leader {
            Some(l) => format!("leader is now {}", addr(l)),
            None => "no leader".to_string(),
        },
        RoleLeaderChanged { role, leader } => match leader {
            Some(l) => format!("{role} leader is now {}", addr(l)),
            None => format!("no {role} leader"),
        },
        ResolverDecision {
            decision,
            downed,
            indirectly_connected,
            ..
        } => {
            let mut text = format!(
                "resolver: {decision:?} ({}); downing {}",
                decision_text(*decision),
                list(downed)
            );
            if !indirectly_connected.is_empty() {
                text.push_str(&format!(
                    "; indirectly connected: {}",
                    list(indirectly_connected)
                ));
            }
            text
        }
        JoinRefused { by, reason } => format!("join refused by {by}: {reason}"),
        SelfShutdown { reason } => format!("this node {}", shutdown_text(*reason)),
    }
}

/// The text to show for a failed HTTP answer: the `error` of an `ErrorBody` when the
/// body is one, else the status and the start of the body.
pub fn error_text(status: u16, body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(e) => format!("{status}: {}", e.error),
        Err(_) => {
            let snippet: String = body.chars().take(120).collect();
            if snippet.trim().is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {}", snippet.trim())
            }
        }
    }
}

/// The `message` of a successful management answer (`{"message": ...}`), if any.
pub fn message_text(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    value.get("message")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::events::{ClusterSnapshot, ResolverStatus};
    use shared::{Address, Member, MemberStatus};
    use std::collections::BTreeMap;

    fn node(port: u16) -> UniqueAddress {
        UniqueAddress::new(Address::new("127.0.0.1", port), 7)
    }

    fn snapshot_with_phi(phi: f64) -> StreamMessage {
        StreamMessage::Snapshot {
            seq: 3,
            snapshot: ClusterSnapshot {
                self_node: node(2551),
                self_status: Some(MemberStatus::Up),
                members: vec![],
                unreachable: vec![],
                seen_by: vec![],
                leader: None,
                role_leaders: BTreeMap::new(),
                oldest: None,
                converged: true,
                version_digest: 1,
                resolver: ResolverStatus {
                    responsible: false,
                    unreachable: 0,
                    stable_since_ms: 0,
                    decision_due_ms: None,
                },
                phi: vec![(node(2552), phi)],
                time_away_ms: 0,
            },
        }
    }

    #[test]
    fn a_snapshot_with_an_infinite_phi_is_still_read() {
        let text = serde_json::to_string(&snapshot_with_phi(f64::INFINITY)).unwrap();
        assert!(text.contains("null"), "serde_json writes infinity as null");
        let StreamMessage::Snapshot { snapshot, .. } = parse_stream(&text).unwrap() else {
            panic!("not a snapshot");
        };
        assert_eq!(snapshot.phi[0].1, f64::MAX);
    }

    #[test]
    fn messages_round_trip_through_the_wire_shape() {
        let message = StreamMessage::Event {
            seq: 9,
            at_ms: 1000,
            event: ClusterEvent::MemberUp {
                member: Member::joining(node(2552), ["api".to_string()].into()),
            },
        };
        let text = serde_json::to_string(&message).unwrap();
        assert!(text.contains(r#""type":"event""#), "{text}");
        assert!(text.contains(r#""type":"MemberUp""#), "{text}");
        assert_eq!(parse_stream(&text).unwrap(), message);
        assert!(parse_stream("{\"type\":\"nonsense\"}").is_err());
        assert!(parse_stream("not json").is_err());
    }

    #[test]
    fn event_kinds_are_lower_camel_case() {
        let e = ClusterEvent::UnreachableMember {
            member: Member::joining(node(2552), Default::default()),
            observed_by: vec![node(2551)],
        };
        assert_eq!(event_kind(&e), "unreachableMember");
        assert_eq!(
            describe_event(&e),
            "127.0.0.1:2552 unreachable, observed by 127.0.0.1:2551"
        );
        let d = ClusterEvent::ResolverDecision {
            decision: Decision::DownUnreachable,
            downed: vec![node(2553)],
            indirectly_connected: vec![],
            grounds: None,
        };
        assert_eq!(event_kind(&d), "resolverDecision");
        assert!(describe_event(&d).contains("downing 127.0.0.1:2553"));
    }

    #[test]
    fn error_answers_show_the_error_body_or_the_status() {
        assert_eq!(
            error_text(409, r#"{"error":"n1 is Paused"}"#),
            "409: n1 is Paused"
        );
        assert_eq!(error_text(502, ""), "HTTP 502");
        assert_eq!(error_text(500, "boom"), "HTTP 500: boom");
        assert_eq!(
            message_text(r#"{"message":"fault set"}"#).as_deref(),
            Some("fault set")
        );
        assert_eq!(message_text("[]"), None);
    }
}
