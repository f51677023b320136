//! The guided tour a first-time visitor gets: kill a node, watch the others detect it,
//! watch the resolver decide, watch the cluster (and, live, the service) carry on. Each
//! step is done when the page's own model shows it happened, so the tour follows the
//! visitor instead of a clock. No browser API: tested natively.

use crate::timeline::Timeline;
use shared::api::{SlotState, SlotView};

/// What the tour looks at on the page.
pub struct Sight<'a> {
    /// The timeline.
    pub timeline: &'a Timeline,
    /// The process table (launcher slots, or the simulated ones).
    pub slots: &'a [SlotView],
    /// Whether the primary view has converged.
    pub converged: bool,
}

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
    /// A tour from the first step, counting only what the timeline shows from now on.
    pub fn start(timeline: &Timeline) -> Self {
        Tour {
            step: Step::Kill,
            since_entry: timeline.entries().last().map_or(0, |e| e.id + 1),
        }
    }

    /// The page's timeline was rebuilt (a rewind): count from its start again, keeping
    /// the step.
    pub fn rebase(&mut self) {
        self.since_entry = 0;
    }

    /// Moves on past every step the model shows done.
    pub fn advance(&mut self, page: &Sight) {
        while self.step != Step::Done && self.done(page) {
            self.step = match self.step {
                Step::Kill => Step::Detection,
                Step::Detection => Step::Decision,
                Step::Decision => Step::CarryOn,
                Step::CarryOn | Step::Done => Step::Done,
            };
        }
    }

    fn seen(&self, page: &Sight, kinds: &[&str]) -> bool {
        page.timeline
            .entries()
            .any(|e| e.id >= self.since_entry && kinds.contains(&e.kind.as_str()))
    }

    fn done(&self, page: &Sight) -> bool {
        match self.step {
            Step::Kill => page.slots.iter().any(|s| s.state == SlotState::Exited),
            Step::Detection => self.seen(page, &["unreachableMember"]),
            Step::Decision => self.seen(page, &["resolverDecision", "memberDowned"]),
            Step::CarryOn => self.seen(page, &["memberRemoved"]) && page.converged,
            Step::Done => true,
        }
    }
}
