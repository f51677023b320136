//! The demo tooling, outside any node's own path: the demo launcher (`launcher`),
//! which runs node processes behind the dashboard with its own HTTP API; the operator
//! CLI (`node cluster ...`, `cli`) and the small HTTP client it shares with tests
//! (`client`), and a client request that fails over between nodes as a real
//! client's does (`failover`); node processes on this machine (`procs`) and Compose projects
//! (`containers`) for tests and benchmarks.

pub mod cli;
pub mod client;
pub mod containers;
pub mod failover;
pub mod keepalive;
pub mod launcher;
pub mod procs;
