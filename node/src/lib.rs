//! A Globomantics cluster node, in three homes and one composition:
//!
//! - [`cluster`]: the cluster runtime. The membership core from `shared` driven by
//!   tokio, the authenticated TCP transport with per-link fault injection, seeds, the
//!   management HTTP/WebSocket API, metrics, and the single-origin relay that lets a
//!   page talk to every node through the one that served it.
//! - [`app`]: the Globomantics video service on top of membership: the catalogue, the
//!   recommender and its evaluation, and the replicated watch history.
//! - [`tooling`]: the demo tooling. The launcher that runs a local cluster behind the
//!   dashboard, the operator CLI, the HTTP client they share, and helpers that run node
//!   processes and Compose projects for tests and benchmarks.
//!
//! [`start`] composes one node from the first two; [`config`] turns flags, environment
//! and a file into a node's configuration. `main.rs` only binds ports and maps the
//! outcome to an exit code.

#![forbid(unsafe_code)]

pub mod app;
pub mod cluster;
pub mod config;
pub mod start;
pub mod tooling;
