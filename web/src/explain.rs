//! Why a resolver decided as it did, in words a visitor can follow: the sides as the
//! deciding node saw them, the counts, the strategy's rule, what made it decide when it
//! did, and what the other nodes decided around the same time (the other side's story).
//!
//! Built from the decision events every node streams (their `grounds`), so it works the
//! same for live nodes and simulated ones. No browser API: tested natively.

use crate::protocol::{addr, decision_text, shutdown_text};
use shared::events::{DecisionGrounds, DecisionTrigger};
use shared::sbr::Decision;
use shared::{ClusterEvent, DowningStrategy, ShutdownReason, UniqueAddress};
use std::collections::VecDeque;

/// Decisions and shutdowns kept (the oldest go first).
pub const MAX_LOGGED: usize = 300;
/// How far apart two nodes' decisions may be and still belong to one episode (ms).
pub const EPISODE_MS: u64 = 30_000;

/// What one node did.
#[derive(Clone, Debug, PartialEq)]
pub enum Act {
    /// Its resolver decided.
    Decided {
        /// What.
        decision: Decision,
        /// Whom it downed.
        downed: Vec<UniqueAddress>,
        /// Why, when the node said.
        grounds: Option<Box<DecisionGrounds>>,
    },
    /// Its membership stopped.
    ShutDown(ShutdownReason),
}

/// One decision or shutdown, as a node streamed it.
#[derive(Clone, Debug, PartialEq)]
pub struct Logged {
    /// Unique and increasing.
    pub id: u64,
    /// Node time (ms).
    pub at_ms: u64,
    /// The node's cluster address.
    pub observer: String,
    /// What it did.
    pub act: Act,
}

/// Every node's decisions and shutdowns, bounded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DecisionLog {
    entries: VecDeque<Logged>,
    next_id: u64,
}

impl DecisionLog {
    /// Records `event` if it is a decision or a shutdown.
    pub fn record(&mut self, observer: &str, at_ms: u64, event: &ClusterEvent) {
        let act = match event {
            ClusterEvent::ResolverDecision {
                decision,
                downed,
                grounds,
                ..
            } => Act::Decided {
                decision: *decision,
                downed: downed.clone(),
                grounds: grounds.clone(),
            },
            ClusterEvent::SelfShutdown { reason } => Act::ShutDown(*reason),
            _ => return,
        };
        if self.entries.len() == MAX_LOGGED {
            self.entries.pop_front();
        }
        self.next_id += 1;
        self.entries.push_back(Logged {
            id: self.next_id,
            at_ms,
            observer: observer.to_string(),
            act,
        });
    }

    /// The decisions, newest first.
    pub fn decisions(&self) -> impl Iterator<Item = &Logged> {
        self.entries
            .iter()
            .rev()
            .filter(|l| matches!(l.act, Act::Decided { .. }))
    }

    /// The decision `id`, explained.
    pub fn explain(&self, id: u64) -> Option<Explanation> {
        let logged = self.entries.iter().find(|l| l.id == id)?;
        let Act::Decided {
            decision,
            downed,
            grounds,
        } = &logged.act
        else {
            return None;
        };
        let others = self
            .entries
            .iter()
            .filter(|o| {
                o.observer != logged.observer && o.at_ms.abs_diff(logged.at_ms) <= EPISODE_MS
            })
            .map(other_line)
            .collect();
        Some(Explanation {
            summary: format!("{}: {}", decision_text(*decision), downing(downed)),
            trigger: grounds.as_deref().map(|g| trigger_text(g.trigger)),
            rule: grounds
                .as_deref()
                .map(|g| rule_text(*decision, downed, g))
                .unwrap_or_else(|| "this node did not say why (an older version)".into()),
            our_side: side(grounds.as_deref(), true),
            far_side: side(grounds.as_deref(), false),
            unreachable: grounds
                .as_deref()
                .map(|g| g.unreachable.iter().map(addr).collect())
                .unwrap_or_default(),
            others,
        })
    }
}

/// A decision in words.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    /// What it decided and whom it downed.
    pub summary: String,
    /// What made it decide when it did.
    pub trigger: Option<String>,
    /// The strategy's rule, applied to the counts.
    pub rule: String,
    /// The members it counted for its side.
    pub our_side: Vec<String>,
    /// The rest of the total it weighed against (the far side, as it saw it).
    pub far_side: Vec<String>,
    /// The members its view showed unreachable.
    pub unreachable: Vec<String>,
    /// What the other nodes decided or did within [`EPISODE_MS`].
    pub others: Vec<String>,
}

fn downing(downed: &[UniqueAddress]) -> String {
    if downed.is_empty() {
        "downs nobody".into()
    } else {
        let names: Vec<String> = downed.iter().map(addr).collect();
        format!("downs {}", names.join(", "))
    }
}

fn side(grounds: Option<&DecisionGrounds>, ours: bool) -> Vec<String> {
    let Some(w) = grounds.and_then(|g| g.weighing.as_ref()) else {
        return Vec::new();
    };
    if ours {
        w.ours.iter().map(addr).collect()
    } else {
        w.total
            .iter()
            .filter(|n| !w.ours.contains(n))
            .map(addr)
            .collect()
    }
}

fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// What made the resolver decide when it did.
pub fn trigger_text(trigger: DecisionTrigger) -> String {
    match trigger {
        DecisionTrigger::Stable {
            stable_for_ms,
            corroborated: false,
        } => format!("the view had been stable for {} (its stable-after)", seconds(stable_for_ms)),
        DecisionTrigger::Stable {
            stable_for_ms,
            corroborated: true,
        } => format!(
            "the view had been stable for {}: the shorter wait of a corroborated view (every unreachable member marked by all who watch it)",
            seconds(stable_for_ms)
        ),
        DecisionTrigger::ProvenDead => {
            "refused connections prove that nothing listens there: a proof of death does not wait for stable-after".into()
        }
        DecisionTrigger::ConcededAtOnce => {
            "it had just kept its side, then lost a member to a partition that overtook that decision: it concedes at once".into()
        }
        DecisionTrigger::UnstableTooLong => {
            "the view kept changing past the limit for an unstable cluster".into()
        }
        DecisionTrigger::LargerClusterFound => {
            "it found a larger cluster of the same lineage and steps aside so its members rejoin it".into()
        }
    }
}

/// The strategy's rule applied to the counts, in one sentence.
pub fn rule_text(decision: Decision, downed: &[UniqueAddress], g: &DecisionGrounds) -> String {
    let (ours, total) = g
        .weighing
        .as_ref()
        .map_or((0, 0), |w| (w.ours.len(), w.total.len()));
    match decision {
        Decision::DownProvenDead => format!(
            "connections to {} were refused at {ours} of the {total} members weighed: enough witnesses under both keep-majority and the strategy",
            names(downed)
        ),
        Decision::DownSelf => "broken links it cannot weigh safely (it is in the cover, or the side it would keep fails the strategy): it downs only itself, and the next leader decides".into(),
        Decision::DownAll if g.weighing.is_none() => match g.trigger {
            DecisionTrigger::LargerClusterFound => "every member of this smaller cluster is downed".into(),
            _ => "every member is downed".into(),
        },
        Decision::DownIndirectlyConnected => format!(
            "broken links without a partition: it downs the cover {}, and the side it keeps passes the strategy: {}",
            names(downed),
            strategy_rule(&g.strategy, true, ours, total, g)
        ),
        _ => strategy_rule(&g.strategy, decision == Decision::DownUnreachable, ours, total, g),
    }
}

fn names(nodes: &[UniqueAddress]) -> String {
    nodes.iter().map(addr).collect::<Vec<_>>().join(", ")
}

fn strategy_rule(
    strategy: &DowningStrategy,
    kept: bool,
    ours: usize,
    total: usize,
    g: &DecisionGrounds,
) -> String {
    let w = g.weighing.as_ref();
    let verdict = if kept {
        "so this side stays"
    } else {
        "so this side downs itself"
    };
    match strategy {
        DowningStrategy::KeepMajority if 2 * ours == total => {
            let lowest = w.and_then(|w| w.total.iter().min()).map(addr).unwrap_or_default();
            format!("keep-majority: {ours} of {total} is a tie, and the side holding the lowest address ({lowest}) stays; {verdict}")
        }
        DowningStrategy::KeepMajority => {
            let half = if 2 * ours > total { "more than half" } else { "less than half" };
            format!("keep-majority: this side counted {ours} of {total}, {half}; {verdict}")
        }
        DowningStrategy::StaticQuorum { quorum_size } if total > quorum_size * 2 - 1 => format!(
            "static-quorum {quorum_size}: {total} members is more than 2 × {quorum_size} − 1, which the strategy cannot weigh: every member is downed"
        ),
        DowningStrategy::StaticQuorum { quorum_size } => {
            let enough = if ours >= *quorum_size { "at least" } else { "fewer than" };
            format!("static-quorum: this side counted {ours}, {enough} the quorum of {quorum_size}; {verdict}")
        }
        DowningStrategy::KeepOldest { down_if_alone } => {
            let oldest = w.and_then(|w| w.oldest.as_ref());
            let here = oldest.is_some_and(|o| w.is_some_and(|w| w.ours.contains(o)));
            let name = oldest.map(addr).unwrap_or_else(|| "nobody".into());
            let place = if here { "on this side" } else { "on the other side" };
            let alone = if *down_if_alone && here && ours == 1 && !kept {
                ", but alone, and down-if-alone is on"
            } else {
                ""
            };
            format!("keep-oldest: the oldest member, {name}, is {place}{alone}; {verdict}")
        }
        DowningStrategy::DownAll => "down-all: any partition downs every member".into(),
    }
}

fn other_line(o: &Logged) -> String {
    let what = match &o.act {
        Act::Decided {
            decision, downed, ..
        } => format!("{}: {}", decision_text(*decision), downing(downed)),
        Act::ShutDown(reason) => format!("stopped: {}", shutdown_text(*reason)),
    };
    format!("{} at {:.1} s: {what}", o.observer, o.at_ms as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::sbr::Weighing;
    use shared::Address;

    fn node(port: u16) -> UniqueAddress {
        UniqueAddress::new(Address::new("127.0.0.1", port), u64::from(port))
    }

    fn decided(
        decision: Decision,
        downed: Vec<UniqueAddress>,
        grounds: DecisionGrounds,
    ) -> ClusterEvent {
        ClusterEvent::ResolverDecision {
            decision,
            downed,
            indirectly_connected: vec![],
            grounds: Some(Box::new(grounds)),
        }
    }

    fn grounds(strategy: DowningStrategy, ours: &[u16], total: &[u16]) -> DecisionGrounds {
        DecisionGrounds {
            strategy,
            trigger: DecisionTrigger::Stable {
                stable_for_ms: 3_000,
                corroborated: false,
            },
            unreachable: total
                .iter()
                .filter(|p| !ours.contains(p))
                .map(|p| node(*p))
                .collect(),
            weighing: Some(Weighing {
                ours: ours.iter().map(|p| node(*p)).collect(),
                total: total.iter().map(|p| node(*p)).collect(),
                oldest: Some(node(total[0])),
            }),
        }
    }

    #[test]
    fn a_majority_decision_names_the_sides_the_counts_and_the_other_sides_answer() {
        let mut log = DecisionLog::default();
        let keep = grounds(DowningStrategy::KeepMajority, &[1, 2, 3], &[1, 2, 3, 4, 5]);
        log.record(
            "127.0.0.1:1",
            10_000,
            &decided(Decision::DownUnreachable, vec![node(4), node(5)], keep),
        );
        let lose = grounds(DowningStrategy::KeepMajority, &[4, 5], &[1, 2, 3, 4, 5]);
        log.record(
            "127.0.0.1:4",
            10_400,
            &decided(Decision::DownReachable, vec![node(4), node(5)], lose),
        );
        log.record(
            "127.0.0.1:4",
            10_401,
            &ClusterEvent::SelfShutdown {
                reason: ShutdownReason::Downed,
            },
        );
        log.record(
            "127.0.0.1:9",
            90_000,
            &ClusterEvent::SelfShutdown {
                reason: ShutdownReason::Left,
            },
        );
        let first = log.decisions().last().unwrap().id;
        let e = log.explain(first).unwrap();
        assert_eq!(
            e.rule,
            "keep-majority: this side counted 3 of 5, more than half; so this side stays"
        );
        assert_eq!(e.our_side, ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]);
        assert_eq!(e.far_side, ["127.0.0.1:4", "127.0.0.1:5"]);
        assert_eq!(
            e.trigger.as_deref(),
            Some("the view had been stable for 3.0 s (its stable-after)")
        );
        assert_eq!(
            e.others.len(),
            2,
            "the far side's decision and shutdown, not the later leave: {:?}",
            e.others
        );
        assert!(
            e.others[0].starts_with("127.0.0.1:4 at 10.4 s: this side loses"),
            "{:?}",
            e.others
        );
        assert!(e.others[1].contains("stopped: was downed"));
        let second = log.decisions().next().unwrap().id;
        let e = log.explain(second).unwrap();
        assert_eq!(
            e.rule,
            "keep-majority: this side counted 2 of 5, less than half; so this side downs itself"
        );
    }

    #[test]
    fn each_strategy_states_its_own_rule() {
        let tie = grounds(DowningStrategy::KeepMajority, &[1, 2], &[1, 2, 3, 4]);
        assert!(rule_text(Decision::DownUnreachable, &[], &tie)
            .contains("tie, and the side holding the lowest address (127.0.0.1:1)"));
        let quorum = grounds(
            DowningStrategy::StaticQuorum { quorum_size: 3 },
            &[1, 2],
            &[1, 2, 3, 4, 5],
        );
        assert!(rule_text(Decision::DownReachable, &[], &quorum)
            .contains("counted 2, fewer than the quorum of 3"));
        let too_many = grounds(
            DowningStrategy::StaticQuorum { quorum_size: 2 },
            &[1, 2],
            &[1, 2, 3, 4],
        );
        assert!(rule_text(Decision::DownAll, &[], &too_many).contains("more than 2 × 2 − 1"));
        let oldest = grounds(
            DowningStrategy::KeepOldest {
                down_if_alone: false,
            },
            &[3, 4],
            &[1, 2, 3, 4],
        );
        assert!(rule_text(Decision::DownReachable, &[], &oldest)
            .contains("the oldest member, 127.0.0.1:1, is on the other side"));
        let proof = grounds(DowningStrategy::KeepMajority, &[1, 2, 3], &[1, 2, 3, 4]);
        assert!(rule_text(Decision::DownProvenDead, &[node(4)], &proof)
            .contains("connections to 127.0.0.1:4 were refused at 3 of the 4"));
    }

    #[test]
    fn a_decision_without_grounds_still_opens() {
        let mut log = DecisionLog::default();
        let event = ClusterEvent::ResolverDecision {
            decision: Decision::DownAll,
            downed: vec![node(1)],
            indirectly_connected: vec![],
            grounds: None,
        };
        log.record("127.0.0.1:1", 5, &event);
        let e = log.explain(log.decisions().next().unwrap().id).unwrap();
        assert!(e.rule.contains("did not say why"));
        assert!(e.our_side.is_empty() && e.trigger.is_none());
    }
}
