//! The cluster dashboard: a Yew app that streams every node's view of the cluster over
//! WebSockets, shows them side by side with a topology ring, a reachability matrix and
//! an event timeline, offers the faults to break it with, and keeps recommendations
//! flowing through a load generator while it heals.
//!
//! The state logic (reducers over the event streams, request planning, load statistics)
//! lives in modules without browser APIs, tested natively with `cargo test -p web`;
//! only `app`, `net`, `ui` and `sim_ui` are compiled for wasm32. With no node behind
//! the page (or `?sim`), the same views draw a cluster simulated in the page
//! (`simulated`).

#![forbid(unsafe_code)]

pub mod actions;
pub mod directory;
pub mod explain;
pub mod intent;
pub mod loadgen_stats;
pub mod model;
pub mod protocol;
pub mod simulated;
pub mod state;
pub mod timeline;
pub mod topology;
pub mod tour;

#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod dom;
#[cfg(target_arch = "wasm32")]
mod explain_ui;
#[cfg(target_arch = "wasm32")]
mod net;
#[cfg(target_arch = "wasm32")]
mod sim_ui;
#[cfg(target_arch = "wasm32")]
mod ui;

/// Mounts the app on the page's `#app` element.
#[cfg(target_arch = "wasm32")]
pub fn start() {
    app::mount();
}
