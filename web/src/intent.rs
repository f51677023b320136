//! What a visitor asks for on the page, as messages: the views (`ui`) send an
//! [`Intent`] and know nothing of how it is carried out; the app's context (`app`)
//! applies the ones that only edit the model here, and runs the others (requests,
//! the load generator). No browser API is used, so this is tested natively.

use crate::actions::NodeAction;
use crate::model::Model;
use crate::tour::Tour;
use shared::api::LinkKind;

/// One thing the visitor asked for.
#[derive(Clone, Debug, PartialEq)]
pub enum Intent {
    /// The admin token typed in the header.
    SetToken(String),
    /// Show this node's view as the primary one.
    ShowPrimary(String),
    /// Timeline filter: node, event kind, free text.
    FilterNode(String),
    FilterKind(String),
    FilterText(String),
    /// Pause or resume following the newest timeline entry.
    ToggleAutoscroll,
    /// Draw or hide the heartbeat ring over the topology.
    ToggleRing,
    /// Start the guided tour from its first step.
    TourStart,
    /// Close the guided tour.
    TourClose,
    /// Empty the timeline.
    ClearTimeline,
    /// Recommendations panel fields: user, search text, genre.
    SetUser(String),
    SetQuery(String),
    SetGenre(String),
    /// A node control (kill, pause, leave, ...) on the node at this HTTP address.
    Node(NodeAction, String),
    /// A link control between two nodes' HTTP addresses.
    Link(LinkKind, String, String),
    /// The launcher adds a node; every fault is healed.
    AddNode,
    HealAll,
    /// Service requests: recommendations and history for the user, a page of the
    /// catalogue search, a watch of this video.
    Recommend,
    History,
    Search(u32),
    Watched(u32),
    /// The load generator: its rate, start, stop, reset.
    SetRate(u32),
    LoadStart,
    LoadStop,
    LoadReset,
    /// Simulated mode: play, pause, step, speed, seek, a new run.
    Sim(SimControl),
    /// Simulated mode: a field of the new-run form.
    SimDraft(DraftField, String),
}

/// What the visitor does to a simulated run's time and set-up.
#[derive(Clone, Debug, PartialEq)]
pub enum SimControl {
    /// Let time run.
    Play,
    /// Stop time.
    Pause,
    /// Move one step on, paused.
    Step,
    /// Simulated time per real time.
    Speed(f64),
    /// Go to this simulated time (ms), back or forward.
    Seek(u64),
    /// Start over with the new-run form's seed and settings.
    NewRun,
}

/// A field of the new-run form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DraftField {
    /// The seed.
    Seed,
    /// Nodes at the start.
    Nodes,
    /// Timings.
    Profile,
    /// The resolver's strategy.
    Strategy,
    /// Members each node monitors.
    Monitors,
}

impl Intent {
    /// Applies an intent that only edits the model and says whether it was one; the
    /// others (requests, the load generator) are the app's to run.
    pub fn edit(&self, m: &mut Model) -> bool {
        match self {
            Intent::SetToken(token) => m.token = token.clone(),
            Intent::ShowPrimary(http) => m.primary = Some(http.clone()),
            Intent::FilterNode(node) => m.filter.node = node.clone(),
            Intent::FilterKind(kind) => m.filter.kind = kind.clone(),
            Intent::FilterText(text) => m.filter.text = text.clone(),
            Intent::ToggleAutoscroll => m.autoscroll = !m.autoscroll,
            Intent::ToggleRing => m.show_ring = !m.show_ring,
            Intent::TourStart => m.tour = Some(Tour::start(&m.timeline)),
            Intent::TourClose => m.tour = None,
            Intent::ClearTimeline => m.timeline.clear(),
            Intent::SetUser(user) => m.rec.user = user.clone(),
            Intent::SetQuery(query) => m.rec.query = query.clone(),
            Intent::SetGenre(genre) => m.rec.genre = genre.clone(),
            Intent::SimDraft(field, value) => {
                let draft = &mut m.sim_draft;
                let slot = match field {
                    DraftField::Seed => &mut draft.seed,
                    DraftField::Nodes => &mut draft.nodes,
                    DraftField::Profile => &mut draft.profile,
                    DraftField::Strategy => &mut draft.strategy,
                    DraftField::Monitors => &mut draft.monitors,
                };
                *slot = value.clone();
            }
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_and_filter_intents_edit_the_model_and_requests_are_left_to_the_app() {
        let mut m = Model::new("localhost:8550", 0);
        let autoscroll = m.autoscroll;
        assert!(Intent::SetUser("42".into()).edit(&mut m));
        assert!(Intent::FilterKind("MemberUp".into()).edit(&mut m));
        assert!(Intent::ToggleAutoscroll.edit(&mut m));
        assert!(Intent::ShowPrimary("127.0.0.1:8561".into()).edit(&mut m));
        assert_eq!(m.rec.user, "42");
        assert_eq!(m.filter.kind, "MemberUp");
        assert_eq!(m.autoscroll, !autoscroll);
        assert_eq!(m.primary.as_deref(), Some("127.0.0.1:8561"));
        let before = m.rec.clone();
        for request in [Intent::Recommend, Intent::Search(2), Intent::AddNode] {
            assert!(!request.edit(&mut m), "{request:?} is the app's to run");
        }
        assert_eq!(m.rec, before);
    }
}
