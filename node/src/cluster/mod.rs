//! The cluster runtime: everything a node needs to be a member, and nothing of the
//! Globomantics service. The membership core runs on one task (`runtime`); nodes
//! talk over an authenticated transport (`transport`) found through seeds (`seeds`);
//! operators and the dashboard use the management API (`management`), its metrics
//! (`metrics`) and the event stream; `relay` and `visitors` carry every node's API
//! through whichever node served the page, within per-visitor limits; `dashboard`
//! serves the page's files.

pub mod dashboard;
pub mod http_common;
pub mod https;
pub mod keys_api;
pub mod link;
pub mod management;
pub mod metrics;
pub mod noise;
pub mod reachability_check;
pub mod relay;
pub mod runtime;
pub mod seeds;
pub mod transport;
pub mod visitors;
