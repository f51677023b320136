//! The dashboard's simulated mode: N real membership cores in the page, on the
//! simulator's network and clock, under the visitor's hand (pause, step, speed, rewind)
//! and shareable as a link that replays the same run, event for event.
//!
//! Pure: the browser side only calls `advance_to` from a timer and feeds the page's
//! model with what comes out, so every rule here is tested natively.

pub mod cluster;
pub mod panel;
pub mod scenario;
pub mod session;

pub use cluster::{Feed, SimCluster};
pub use panel::SimPanel;
pub use scenario::{Scenario, SimAction, SimDraft, SimMillis, Timed};
pub use session::SimSession;
