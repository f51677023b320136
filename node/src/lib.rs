//! The Globomantics cluster node: the membership core from `shared` driven by tokio,
//! an authenticated TCP transport with per-link fault injection, and the management
//! HTTP/WebSocket API. `main.rs` wires these together; tests use them directly.

#![forbid(unsafe_code)]

pub mod catalog;
pub mod cli;
pub mod client;
pub mod config;
pub mod containers;
pub mod evaluation;
pub mod http;
pub mod launcher;
pub mod metrics;
pub mod procs;
pub mod reachability_check;
pub mod recommender;
pub mod relay;
pub mod runtime;
pub mod seeds;
pub mod service;
pub mod transport;
pub mod visitors;
