//! The event timeline: every event and fault each node reported, with its observer,
//! plus the dashboard's own entries (action results, connections), bounded in size and
//! filtered by node, kind and text.
//!
//! The same event seen by three observers is three entries on purpose: who noticed
//! what, and when, is the story of a failure.

use crate::protocol::{describe_event, event_kind};
use shared::api::StreamMessage;
use std::collections::{BTreeSet, VecDeque};

/// Entries kept (the oldest go first).
pub const DEFAULT_CAPACITY: usize = 2000;

/// The observer name of entries the dashboard itself wrote.
pub const LOCAL: &str = "dashboard";

/// How an entry should look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Ordinary news.
    Info,
    /// Something went wrong in the cluster (unreachable, downed, decision).
    Warn,
    /// An action succeeded.
    Ok,
    /// An action failed.
    Error,
}

impl Level {
    /// CSS class suffix.
    pub fn class(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Ok => "ok",
            Level::Error => "error",
        }
    }
}

/// One line of the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Unique and increasing (a stable key for rendering).
    pub id: u64,
    /// When (ms since the epoch; node time for node entries).
    pub at_ms: u64,
    /// The observing node's cluster address, or [`LOCAL`].
    pub observer: String,
    /// `data-kind`: the event kind in lower camel case, `fault`, `action`, ...
    pub kind: String,
    /// What happened.
    pub text: String,
    /// How it looks.
    pub level: Level,
}

/// What to show.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this observer (empty: all).
    pub node: String,
    /// Only this kind (empty: all).
    pub kind: String,
    /// Only entries whose text, kind or observer contains this (case-insensitive).
    pub text: String,
}

impl Filter {
    /// Whether `entry` passes.
    pub fn matches(&self, entry: &Entry) -> bool {
        if !self.node.is_empty() && entry.observer != self.node {
            return false;
        }
        if !self.kind.is_empty() && entry.kind != self.kind {
            return false;
        }
        // ASCII case folding: the timeline's texts are ASCII, and Unicode's case
        // tables would cost the page several kilobytes.
        let needle = self.text.trim().to_ascii_lowercase();
        needle.is_empty()
            || entry.text.to_ascii_lowercase().contains(&needle)
            || entry.kind.to_ascii_lowercase().contains(&needle)
            || entry.observer.to_ascii_lowercase().contains(&needle)
    }

    /// Whether anything is filtered out.
    pub fn is_active(&self) -> bool {
        !(self.node.is_empty() && self.kind.is_empty() && self.text.trim().is_empty())
    }
}

/// The bounded list of entries.
#[derive(Clone, Debug, PartialEq)]
pub struct Timeline {
    entries: VecDeque<Entry>,
    capacity: usize,
    next_id: u64,
    dropped: u64,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::with_capacity(DEFAULT_CAPACITY)
    }
}

impl Timeline {
    /// An empty timeline keeping at most `capacity` entries.
    pub fn with_capacity(capacity: usize) -> Self {
        Timeline {
            entries: VecDeque::new(),
            capacity: capacity.max(1),
            next_id: 0,
            dropped: 0,
        }
    }

    /// Adds an entry.
    pub fn push(
        &mut self,
        at_ms: u64,
        observer: impl Into<String>,
        kind: impl Into<String>,
        text: impl Into<String>,
        level: Level,
    ) {
        self.entries.push_back(Entry {
            id: self.next_id,
            at_ms,
            observer: observer.into(),
            kind: kind.into(),
            text: text.into(),
            level,
        });
        self.next_id += 1;
        while self.entries.len() > self.capacity {
            self.entries.pop_front();
            self.dropped += 1;
        }
    }

    /// Adds the entry for an event or fault `observer` reported (snapshots are not
    /// news: they add nothing).
    pub fn push_stream(&mut self, observer: &str, message: &StreamMessage) {
        match message {
            StreamMessage::Snapshot { .. } => {}
            StreamMessage::Event { at_ms, event, .. } => {
                let kind = event_kind(event);
                let level = match kind.as_str() {
                    "unreachableMember" | "memberDowned" | "resolverDecision" | "selfShutdown"
                    | "joinRefused" => Level::Warn,
                    _ => Level::Info,
                };
                self.push(*at_ms, observer, kind, describe_event(event), level);
            }
            StreamMessage::Fault {
                at_ms, description, ..
            } => self.push(*at_ms, observer, "fault", description.clone(), Level::Warn),
        }
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> impl DoubleEndedIterator<Item = &Entry> {
        self.entries.iter()
    }

    /// Entries passing `filter`, oldest first.
    pub fn visible<'a>(&'a self, filter: &'a Filter) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| filter.matches(e))
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries dropped because the timeline was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The kinds present (for the filter's choices).
    pub fn kinds(&self) -> BTreeSet<String> {
        self.entries.iter().map(|e| e.kind.clone()).collect()
    }

    /// The observers present (for the filter's choices).
    pub fn observers(&self) -> BTreeSet<String> {
        self.entries.iter().map(|e| e.observer.clone()).collect()
    }

    /// Forgets every entry.
    pub fn clear(&mut self) {
        self.dropped += self.entries.len() as u64;
        self.entries.clear();
    }
}

/// `HH:MM:SS.mmm` of `at_ms`, shifted by `offset_minutes` east of UTC.
pub fn clock(at_ms: u64, offset_minutes: i64) -> String {
    let local = at_ms as i64 + offset_minutes * 60_000;
    let day_ms = local.rem_euclid(86_400_000);
    let (h, rest) = (day_ms / 3_600_000, day_ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, ms) = (rest / 1000, rest % 1000);
    format!("{h:02}:{m:02}:{s:02}.{ms:03}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::{event, member, node, snapshot, three_up};
    use shared::events::ClusterEvent;
    use shared::MemberStatus;

    #[test]
    fn the_same_event_seen_by_two_observers_is_two_entries() {
        let mut t = Timeline::default();
        let e = event(
            11,
            5_000,
            ClusterEvent::UnreachableMember {
                member: member(2553, MemberStatus::Up, 3),
                observed_by: vec![node(2551)],
            },
        );
        t.push_stream("127.0.0.1:2551", &e);
        t.push_stream("127.0.0.1:2552", &e);
        let observers: Vec<_> = t.entries().map(|e| e.observer.as_str()).collect();
        assert_eq!(observers, ["127.0.0.1:2551", "127.0.0.1:2552"]);
        assert!(t.entries().all(|e| e.kind == "unreachableMember"));
        assert!(t.entries().all(|e| e.level == Level::Warn));
    }

    #[test]
    fn snapshots_are_not_entries_but_faults_are() {
        let mut t = Timeline::default();
        t.push_stream("a", &snapshot(1, 2551, &three_up()));
        assert!(t.is_empty());
        t.push_stream(
            "a",
            &StreamMessage::Fault {
                seq: 2,
                at_ms: 7,
                description: "link to 127.0.0.1:2552: cut".into(),
            },
        );
        let e = t.entries().next().unwrap();
        assert_eq!((e.kind.as_str(), e.at_ms), ("fault", 7));
    }

    #[test]
    fn the_timeline_keeps_only_the_newest_entries() {
        let mut t = Timeline::with_capacity(3);
        for i in 0..5 {
            t.push(i, LOCAL, "action", format!("n{i}"), Level::Ok);
        }
        let texts: Vec<_> = t.entries().map(|e| e.text.as_str()).collect();
        assert_eq!(texts, ["n2", "n3", "n4"]);
        assert_eq!(t.dropped(), 2);
        let ids: Vec<_> = t.entries().map(|e| e.id).collect();
        assert_eq!(ids, [2, 3, 4], "ids stay unique and increasing");
    }

    #[test]
    fn the_filter_selects_by_node_kind_and_text() {
        let mut t = Timeline::default();
        t.push(
            1,
            "127.0.0.1:2551",
            "memberUp",
            "127.0.0.1:2552 is Up",
            Level::Info,
        );
        t.push(
            2,
            "127.0.0.1:2552",
            "memberUp",
            "127.0.0.1:2553 is Up",
            Level::Info,
        );
        t.push(3, LOCAL, "action", "kill 127.0.0.1:2553: ok", Level::Ok);
        let by_node = Filter {
            node: "127.0.0.1:2552".into(),
            ..Filter::default()
        };
        assert_eq!(t.visible(&by_node).count(), 1);
        let by_kind = Filter {
            kind: "action".into(),
            ..Filter::default()
        };
        assert_eq!(t.visible(&by_kind).next().unwrap().at_ms, 3);
        let by_text = Filter {
            text: "2553".into(),
            ..Filter::default()
        };
        assert_eq!(t.visible(&by_text).count(), 2);
        assert!(!Filter::default().is_active());
        assert_eq!(t.visible(&Filter::default()).count(), 3);
        assert_eq!(
            t.kinds().into_iter().collect::<Vec<_>>(),
            ["action", "memberUp"]
        );
    }

    #[test]
    fn clock_shows_local_time_of_day() {
        assert_eq!(clock(0, 0), "00:00:00.000");
        assert_eq!(clock(3_723_004, 0), "01:02:03.004");
        assert_eq!(clock(0, 60), "01:00:00.000");
        assert_eq!(clock(0, -60), "23:00:00.000");
    }
}
