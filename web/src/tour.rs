//! The guided tour a first-time visitor gets: kill a node, watch the others detect it,
//! watch the resolver decide, watch the cluster (and, live, the service) carry on. Each
//! step is done when the page's own model shows it happened, so the tour follows the
//! visitor instead of a clock. No browser API: tested natively.

use crate::model::Model;
use shared::api::SlotState;

/// Where a visitor is in the tour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Kill a node.
    Kill,
    /// The others find it unreachable.
    Detection,
    /// The resolver downs it.
    Decision,
    /// The rest carry on.
    CarryOn,
    /// Finished.
    Done,
}

impl Step {
    /// Its name (`data-step`).
    pub fn name(self) -> &'static str {
        match self {
            Step::Kill => "kill",
            Step::Detection => "detection",
            Step::Decision => "decision",
            Step::CarryOn => "carry-on",
            Step::Done => "done",
        }
    }

    /// Its number, from 1, and how many there are.
    pub fn position(self) -> (usize, usize) {
        let n = match self {
            Step::Kill => 1,
            Step::Detection => 2,
            Step::Decision => 3,
            Step::CarryOn | Step::Done => 4,
        };
        (n, 4)
    }

    /// What the visitor reads.
    pub fn text(self, simulated: bool) -> &'static str {
        match self {
            Step::Kill => "Kill a node: press kill on any node in “Break things”. Its process dies at once.",
            Step::Detection => "Watch the others notice: within about a second its monitors stop hearing heartbeats, and the views mark it unreachable (the red arrows).",
            Step::Decision => "Watch the decision: the leader's split-brain resolver downs it. Open the decision under the topology to see why.",
            Step::CarryOn if simulated => "Watch the rest carry on: the others remove it and stay Up and converged. (With live nodes, the load generator shows the service answering throughout.)",
            Step::CarryOn => "Watch the service stay up: the others remove it and converge, while the load generator's requests keep succeeding on the nodes still up.",
            Step::Done => "That is the whole story: detect, decide, heal. Try a partition next, or rewind and try another fault.",
        }
    }
}

/// The tour's state.
#[derive(Clone, Debug, PartialEq)]
pub struct Tour {
    /// The current step.
    pub step: Step,
    /// Timeline entries before this id were there before the step began.
    since_entry: u64,
}

impl Tour {
    /// A tour from the first step, counting only what happens from `m`'s state on.
    pub fn start(m: &Model) -> Self {
        Tour {
            step: Step::Kill,
            since_entry: m.timeline.entries().last().map_or(0, |e| e.id + 1),
        }
    }

    /// The page's timeline was rebuilt (a rewind): count from its start again, keeping
    /// the step.
    pub fn rebase(&mut self) {
        self.since_entry = 0;
    }

    /// Moves on past every step the model shows done.
    pub fn advance(&mut self, m: &Model) {
        while self.step != Step::Done && self.done(m) {
            self.step = match self.step {
                Step::Kill => Step::Detection,
                Step::Detection => Step::Decision,
                Step::Decision => Step::CarryOn,
                Step::CarryOn | Step::Done => Step::Done,
            };
        }
    }

    fn seen(&self, m: &Model, kinds: &[&str]) -> bool {
        m.timeline
            .entries()
            .any(|e| e.id >= self.since_entry && kinds.contains(&e.kind.as_str()))
    }

    fn done(&self, m: &Model) -> bool {
        match self.step {
            Step::Kill => m
                .directory
                .slots
                .iter()
                .any(|s| s.state == SlotState::Exited),
            Step::Detection => self.seen(m, &["unreachableMember"]),
            Step::Decision => self.seen(m, &["resolverDecision", "memberDowned"]),
            Step::CarryOn => {
                self.seen(m, &["memberRemoved"])
                    && m.primary_view().is_some_and(|v| v.converged == Some(true))
            }
            Step::Done => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulated::{Scenario, SimAction, SimSession};
    use shared::api::NodeAction;

    #[test]
    fn the_tour_follows_a_kill_through_detection_and_decision_to_the_end() {
        let mut m = Model::new("sim", 0);
        let mut session = SimSession::start(Scenario::new(21, 5), &mut m);
        for _ in 0..60 {
            session.frame(50.0, &mut m);
        }
        let mut tour = Tour::start(&m);
        tour.advance(&m);
        assert_eq!(tour.step, Step::Kill, "nothing happened yet");
        session
            .act(SimAction::Node(NodeAction::Kill, 4), &mut m)
            .unwrap();
        tour.advance(&m);
        assert_eq!(tour.step, Step::Detection);
        let mut seen = vec![tour.step];
        for _ in 0..400 {
            session.frame(50.0, &mut m);
            tour.advance(&m);
            if seen.last() != Some(&tour.step) {
                seen.push(tour.step);
            }
        }
        assert_eq!(tour.step, Step::Done, "steps seen: {seen:?}");
        assert_eq!(seen.first(), Some(&Step::Detection));
    }

    #[test]
    fn a_paused_node_is_not_a_kill() {
        let mut m = Model::new("sim", 0);
        let mut session = SimSession::start(Scenario::new(22, 3), &mut m);
        let mut tour = Tour::start(&m);
        session
            .act(SimAction::Node(NodeAction::Pause, 2), &mut m)
            .unwrap();
        tour.advance(&m);
        assert_eq!(tour.step, Step::Kill);
    }
}
