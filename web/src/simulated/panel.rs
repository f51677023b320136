//! What the page shows of a simulated run: a plain record the session refreshes after
//! every change and the views draw.

use super::scenario::{Profile, SimMillis};

/// What the page shows of the run.
#[derive(Clone, Debug, PartialEq)]
pub struct SimPanel {
    /// Time moves.
    pub playing: bool,
    /// Simulated time per real time.
    pub speed: f64,
    /// Current simulated time.
    pub now_ms: SimMillis,
    /// How far the scrubber reaches: the latest moment this branch of the run got to.
    pub horizon_ms: SimMillis,
    /// The share link's query value.
    pub link: String,
    /// The seed.
    pub seed: u64,
    /// Nodes at the start.
    pub nodes: usize,
    /// Timings.
    pub profile: Profile,
    /// The resolver's strategy, as links name it.
    pub strategy: String,
    /// Members each node monitors.
    pub monitors: usize,
    /// Actions in the scenario.
    pub actions: usize,
    /// The first invariant the simulator's checker found broken, if any.
    pub violation: Option<String>,
}
