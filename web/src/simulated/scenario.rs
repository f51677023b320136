//! What a simulated run is made of: the seed, the settings and every action the visitor
//! took with its simulated time, and the share link that carries all of it.
//!
//! A run is a pure function of its scenario: the simulator is deterministic, so a link
//! opened elsewhere reproduces the same run, event for event. The link is text in the
//! page's query (`?sim=...`); reading one validates every field and says what is wrong,
//! so a mangled link gets an error, never a different run.

use shared::api::{LinkKind, NodeAction};
use shared::settings::DowningStrategy;
use std::fmt;

/// Simulated milliseconds since the run began.
pub type SimMillis = u64;

/// Fewest nodes a run starts with.
pub const MIN_NODES: usize = 3;
/// Nodes a run starts with unless asked otherwise.
pub const DEFAULT_NODES: usize = 5;
/// Members each node monitors unless asked otherwise (Akka's default).
pub const DEFAULT_MONITORS: usize = 9;
/// Most nodes a run can hold, added ones included.
pub const MAX_NODES: usize = 9;
/// Most actions a link may carry.
pub const MAX_ACTIONS: usize = 5_000;
/// The latest time an action may have (a simulated day).
pub const MAX_TIME_MS: SimMillis = 24 * 3_600_000;

/// The timings the nodes use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// The demo's: 200 ms heartbeats, 300 ms acceptable pause, 3 s stable-after.
    Demo,
    /// Akka's defaults: 1 s heartbeats, 3 s acceptable pause, 20 s stable-after.
    Akka,
}

impl Profile {
    /// Its name in links.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Demo => "demo",
            Profile::Akka => "akka",
        }
    }

    fn named(name: &str) -> Option<Profile> {
        [Profile::Demo, Profile::Akka]
            .into_iter()
            .find(|p| p.name() == name)
    }
}

/// The split-brain resolver's strategy, as a link names it.
pub fn strategy_name(strategy: &DowningStrategy) -> String {
    match strategy {
        DowningStrategy::KeepMajority => "keep-majority".into(),
        DowningStrategy::StaticQuorum { quorum_size } => format!("static-quorum-{quorum_size}"),
        DowningStrategy::KeepOldest { down_if_alone } => {
            if *down_if_alone {
                "keep-oldest-down-if-alone".into()
            } else {
                "keep-oldest".into()
            }
        }
        DowningStrategy::DownAll => "down-all".into(),
    }
}

fn strategy_named(name: &str) -> Result<DowningStrategy, String> {
    Ok(match name {
        "keep-majority" => DowningStrategy::KeepMajority,
        "keep-oldest" => DowningStrategy::KeepOldest {
            down_if_alone: false,
        },
        "keep-oldest-down-if-alone" => DowningStrategy::KeepOldest {
            down_if_alone: true,
        },
        "down-all" => DowningStrategy::DownAll,
        other => {
            let size = other
                .strip_prefix("static-quorum-")
                .ok_or_else(|| format!("unknown strategy \"{other}\""))?;
            let quorum_size = number(size, "quorum size")?;
            if !(1..=MAX_NODES).contains(&quorum_size) {
                return Err(format!(
                    "quorum size {quorum_size} is not in 1..={MAX_NODES}"
                ));
            }
            DowningStrategy::StaticQuorum { quorum_size }
        }
    })
}

/// One thing the visitor did to the simulated cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimAction {
    /// A node control on a slot (kill, pause, leave, partition, ...).
    Node(NodeAction, usize),
    /// A link control between two slots (`from` first for a one-way cut).
    Link(LinkKind, usize, usize),
    /// Start the next slot that never ran.
    AddNode,
    /// Remove every link fault and resume every paused node.
    HealAll,
}

/// An action and when it was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timed {
    /// Simulated time.
    pub at_ms: SimMillis,
    /// What.
    pub action: SimAction,
}

/// Everything a run is a function of.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// The simulator's seed (network randomness, uids, every node's generator).
    pub seed: u64,
    /// Nodes started at time 0.
    pub nodes: usize,
    /// Timings.
    pub profile: Profile,
    /// The resolver's strategy.
    pub strategy: DowningStrategy,
    /// Every action, in time order.
    pub actions: Vec<Timed>,
    /// The moment the link was shared at: opening it goes there.
    pub at_ms: SimMillis,
    /// How many members each node monitors on the heartbeat ring.
    pub monitors: usize,
}

impl Scenario {
    /// A fresh run: `nodes` nodes, demo timings, keep-majority, nothing done yet.
    pub fn new(seed: u64, nodes: usize) -> Self {
        Scenario {
            seed,
            nodes: nodes.clamp(MIN_NODES, MAX_NODES),
            profile: Profile::Demo,
            strategy: DowningStrategy::KeepMajority,
            actions: Vec::new(),
            at_ms: 0,
            monitors: DEFAULT_MONITORS,
        }
    }

    /// The share link's text:
    /// `v1;seed=..;nodes=..;profile=..;strategy=..;monitors=..;at=..;actions=..`, each action
    /// `time:name:slot[:slot]`.
    pub fn to_link(&self) -> String {
        let actions: Vec<String> = self.actions.iter().map(action_text).collect();
        format!(
            "v1;seed={};nodes={};profile={};strategy={};monitors={};at={};actions={}",
            self.seed,
            self.nodes,
            self.profile.name(),
            strategy_name(&self.strategy),
            self.monitors,
            self.at_ms,
            actions.join(",")
        )
    }

    /// Reads a share link's text, checking every field.
    pub fn from_link(text: &str) -> Result<Scenario, LinkError> {
        parse(text).map_err(LinkError)
    }

    /// Slots that may be named: the initial nodes plus one per earlier add-node.
    fn slots_before(&self, index: usize) -> usize {
        let added = self.actions[..index]
            .iter()
            .filter(|t| t.action == SimAction::AddNode)
            .count();
        (self.nodes + added).min(MAX_NODES)
    }
}

/// The new-run form, as typed.
#[derive(Clone, Debug, PartialEq)]
pub struct SimDraft {
    /// The seed (empty: a random one).
    pub seed: String,
    /// Nodes at the start.
    pub nodes: String,
    /// Timings (`demo`, `akka`).
    pub profile: String,
    /// The resolver's strategy, as links name it.
    pub strategy: String,
    /// Members each node monitors.
    pub monitors: String,
}

impl Default for SimDraft {
    fn default() -> Self {
        SimDraft {
            seed: String::new(),
            nodes: DEFAULT_NODES.to_string(),
            profile: Profile::Demo.name().into(),
            strategy: "keep-majority".into(),
            monitors: DEFAULT_MONITORS.to_string(),
        }
    }
}

impl SimDraft {
    /// The scenario the form describes, checked as a link is; `random_seed` when the
    /// seed field is empty.
    pub fn scenario(&self, random_seed: u64) -> Result<Scenario, LinkError> {
        let seed = match self.seed.trim() {
            "" => random_seed.to_string(),
            typed => typed.to_string(),
        };
        let link = format!(
            "v1;seed={seed};nodes={};profile={};strategy={};monitors={}",
            self.nodes.trim(),
            self.profile.trim(),
            self.strategy.trim(),
            self.monitors.trim()
        );
        Scenario::from_link(&link)
    }
}

/// Why a share link could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkError(pub String);

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the share link cannot be read: {}", self.0)
    }
}

fn action_text(timed: &Timed) -> String {
    let t = timed.at_ms;
    match timed.action {
        SimAction::Node(action, slot) => format!("{t}:{}:{slot}", action.name()),
        SimAction::Link(kind, a, b) => format!("{t}:link-{}:{a}:{b}", kind.name()),
        SimAction::AddNode => format!("{t}:add-node"),
        SimAction::HealAll => format!("{t}:heal-all"),
    }
}

fn number<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{what} \"{text}\" is not a number"))
}

fn parse(text: &str) -> Result<Scenario, String> {
    let mut parts = text.split(';');
    if parts.next() != Some("v1") {
        return Err("it does not start with version v1".into());
    }
    let mut scenario = Scenario::new(0, MIN_NODES);
    let mut actions_text = "";
    let mut seen = Vec::new();
    for part in parts {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("\"{part}\" is not key=value"))?;
        if seen.contains(&key) {
            return Err(format!("{key} is given twice"));
        }
        seen.push(key);
        match key {
            "seed" => scenario.seed = number(value, "seed")?,
            "nodes" => {
                let nodes: usize = number(value, "nodes")?;
                if !(MIN_NODES..=MAX_NODES).contains(&nodes) {
                    return Err(format!("{nodes} nodes is not in {MIN_NODES}..={MAX_NODES}"));
                }
                scenario.nodes = nodes;
            }
            "profile" => {
                scenario.profile =
                    Profile::named(value).ok_or_else(|| format!("unknown profile \"{value}\""))?
            }
            "strategy" => scenario.strategy = strategy_named(value)?,
            "monitors" => {
                scenario.monitors = number(value, "monitors")?;
                if !(1..=MAX_NODES).contains(&scenario.monitors) {
                    return Err(format!(
                        "{} monitors is not in 1..={MAX_NODES}",
                        scenario.monitors
                    ));
                }
            }
            "at" => {
                scenario.at_ms = number(value, "at")?;
                if scenario.at_ms > MAX_TIME_MS {
                    return Err(format!(
                        "at {} ms is later than {MAX_TIME_MS} ms",
                        scenario.at_ms
                    ));
                }
            }
            "actions" => actions_text = value,
            other => return Err(format!("unknown field \"{other}\"")),
        }
    }
    for key in ["seed", "nodes"] {
        if !seen.contains(&key) {
            return Err(format!("{key} is missing"));
        }
    }
    scenario.actions = parse_actions(actions_text)?;
    check_slots(&scenario)?;
    Ok(scenario)
}

fn parse_actions(text: &str) -> Result<Vec<Timed>, String> {
    let items: Vec<&str> = text.split(',').filter(|s| !s.is_empty()).collect();
    if items.len() > MAX_ACTIONS {
        return Err(format!(
            "{} actions is more than {MAX_ACTIONS}",
            items.len()
        ));
    }
    let mut actions: Vec<Timed> = Vec::with_capacity(items.len());
    for item in items {
        let timed = parse_action(item)?;
        if actions.last().is_some_and(|last| last.at_ms > timed.at_ms) {
            return Err(format!(
                "action \"{item}\" is earlier than the one before it"
            ));
        }
        actions.push(timed);
    }
    Ok(actions)
}

fn parse_action(item: &str) -> Result<Timed, String> {
    let fields: Vec<&str> = item.split(':').collect();
    let at_ms: SimMillis = number(fields[0], "time")?;
    if at_ms > MAX_TIME_MS {
        return Err(format!("time {at_ms} ms is later than {MAX_TIME_MS} ms"));
    }
    let name = fields.get(1).copied().unwrap_or_default();
    let slot = |i: usize| -> Result<usize, String> {
        let text = fields
            .get(i)
            .ok_or_else(|| format!("action \"{item}\" lacks a slot"))?;
        number(text, "slot")
    };
    let (action, arity) = match name {
        "add-node" => (SimAction::AddNode, 2),
        "heal-all" => (SimAction::HealAll, 2),
        _ => match name.strip_prefix("link-") {
            Some(kind) => {
                let kind = LinkKind::ALL
                    .into_iter()
                    .find(|k| k.name() == kind)
                    .ok_or_else(|| format!("unknown link action \"{kind}\""))?;
                let (a, b) = (slot(2)?, slot(3)?);
                if a == b {
                    return Err(format!("action \"{item}\" links a slot to itself"));
                }
                (SimAction::Link(kind, a, b), 4)
            }
            None => {
                let action =
                    NodeAction::named(name).ok_or_else(|| format!("unknown action \"{name}\""))?;
                (SimAction::Node(action, slot(2)?), 3)
            }
        },
    };
    if fields.len() != arity {
        return Err(format!(
            "action \"{item}\" has {} fields, not {arity}",
            fields.len()
        ));
    }
    Ok(Timed { at_ms, action })
}

fn check_slots(scenario: &Scenario) -> Result<(), String> {
    for (i, timed) in scenario.actions.iter().enumerate() {
        let slots = scenario.slots_before(i);
        let named: Vec<usize> = match timed.action {
            SimAction::Node(_, s) => vec![s],
            SimAction::Link(_, a, b) => vec![a, b],
            SimAction::AddNode | SimAction::HealAll => vec![],
        };
        if let Some(bad) = named.into_iter().find(|s| *s >= slots) {
            return Err(format!(
                "action {} names slot {bad}, but only {slots} exist then",
                action_text(timed)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Scenario {
        Scenario {
            seed: 42,
            nodes: 5,
            profile: Profile::Akka,
            strategy: DowningStrategy::StaticQuorum { quorum_size: 3 },
            actions: vec![
                Timed {
                    at_ms: 1_200,
                    action: SimAction::Node(NodeAction::Kill, 2),
                },
                Timed {
                    at_ms: 3_400,
                    action: SimAction::Link(LinkKind::OneWay, 0, 1),
                },
                Timed {
                    at_ms: 3_400,
                    action: SimAction::AddNode,
                },
                Timed {
                    at_ms: 9_000,
                    action: SimAction::Node(NodeAction::Partition, 5),
                },
                Timed {
                    at_ms: 12_000,
                    action: SimAction::HealAll,
                },
            ],
            at_ms: 15_000,
            monitors: 2,
        }
    }

    #[test]
    fn a_link_reads_back_as_the_same_scenario() {
        let scenario = sample();
        let link = scenario.to_link();
        assert_eq!(
            link,
            "v1;seed=42;nodes=5;profile=akka;strategy=static-quorum-3;monitors=2;at=15000;actions=\
             1200:kill:2,3400:link-oneway:0:1,3400:add-node,9000:partition:5,12000:heal-all"
        );
        assert_eq!(Scenario::from_link(&link), Ok(scenario));
        let fresh = Scenario::new(7, 3);
        assert_eq!(Scenario::from_link(&fresh.to_link()), Ok(fresh));
    }

    #[test]
    fn every_strategy_has_a_name_that_reads_back() {
        for strategy in [
            DowningStrategy::KeepMajority,
            DowningStrategy::StaticQuorum { quorum_size: 4 },
            DowningStrategy::KeepOldest {
                down_if_alone: true,
            },
            DowningStrategy::KeepOldest {
                down_if_alone: false,
            },
            DowningStrategy::DownAll,
        ] {
            assert_eq!(strategy_named(&strategy_name(&strategy)), Ok(strategy));
        }
    }

    #[test]
    fn a_mangled_link_is_an_error_that_says_what_is_wrong() {
        let cases = [
            ("seed=1;nodes=3", "version"),
            ("v1;seed=x;nodes=3", "seed \"x\" is not a number"),
            ("v1;seed=1;nodes=12", "12 nodes is not in 3..=9"),
            ("v1;seed=1", "nodes is missing"),
            ("v1;seed=1;seed=2;nodes=3", "seed is given twice"),
            ("v1;seed=1;nodes=3;colour=red", "unknown field"),
            ("v1;seed=1;nodes=3;profile=fast", "unknown profile"),
            (
                "v1;seed=1;nodes=3;strategy=static-quorum-0",
                "quorum size 0",
            ),
            ("v1;seed=1;nodes=3;actions=10:explode:1", "unknown action"),
            ("v1;seed=1;nodes=3;actions=10:kill", "lacks a slot"),
            ("v1;seed=1;nodes=3;actions=10:kill:1:2", "has 4 fields"),
            ("v1;seed=1;nodes=3;actions=10:kill:3", "names slot 3"),
            ("v1;seed=1;nodes=3;actions=10:link-cut:1:1", "to itself"),
            ("v1;seed=1;nodes=3;actions=20:kill:1,10:kill:2", "earlier"),
            ("v1;seed=1;nodes=3;actions=99999999999:kill:1", "later than"),
            ("v1;seed=1;nodes=3;actions=-5:kill:1", "not a number"),
            ("v1;seed=1;nodes=3;at=999999999999", "later than"),
            ("v1;seed=1;nodes=3;monitors=0", "0 monitors"),
        ];
        for (link, expected) in cases {
            let error = Scenario::from_link(link).expect_err(link);
            assert!(
                error.to_string().contains(expected),
                "{link}: {error} (expected {expected:?})"
            );
        }
    }

    #[test]
    fn the_new_run_form_makes_a_checked_scenario() {
        let mut draft = SimDraft::default();
        let scenario = draft.scenario(99).unwrap();
        assert_eq!((scenario.seed, scenario.nodes), (99, DEFAULT_NODES));
        draft.seed = " 12 ".into();
        draft.strategy = "down-all".into();
        let scenario = draft.scenario(99).unwrap();
        assert_eq!(scenario.seed, 12);
        assert_eq!(scenario.strategy, DowningStrategy::DownAll);
        draft.nodes = "2".into();
        assert!(draft.scenario(99).is_err());
        draft.nodes = "4;nodes=5".into();
        assert!(
            draft.scenario(99).is_err(),
            "a field cannot smuggle another"
        );
    }

    #[test]
    fn an_added_node_can_be_named_only_after_it_was_added() {
        let early = "v1;seed=1;nodes=3;actions=5:kill:3,10:add-node";
        assert!(Scenario::from_link(early).is_err());
        let late = "v1;seed=1;nodes=3;actions=10:add-node,20:kill:3";
        assert!(Scenario::from_link(late).is_ok());
    }
}
