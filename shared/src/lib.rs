//! Everything the node and the web app must agree on: the membership core (a pure
//! state machine modelled on Akka clustering), its wire messages and events, and a
//! deterministic simulator that drives many cores through seeded fault schedules.
//!
//! Nothing here does I/O, reads a clock or draws entropy: time comes in as an
//! argument, randomness from seeded generators. That is what lets the same core run
//! under tokio, in the browser (wasm32), and in the simulator, where thousands of
//! fault schedules replay exactly from their seed.
//!
//! Start with [`Node`]; the protocol is described in `ALGORITHM.md`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod address;
pub mod anti_entropy;
pub mod api;
pub mod events;
pub mod failure_detector;
pub mod faults;
pub mod frame;
pub mod gossip;
pub mod link_form;
pub mod member;
pub mod node;
pub mod quorum;
pub mod reachability;
pub mod ring;
pub mod routing;
pub mod sbr;
pub mod service;
pub mod settings;
pub mod sim;
pub mod sorting;
mod tagged;
pub mod vclock;
pub mod wire;

pub use address::{Address, UniqueAddress};
pub use events::{ClusterEvent, ClusterSnapshot, ShutdownReason};
pub use gossip::Gossip;
pub use member::{Member, MemberStatus};
pub use node::{Command, CommandError, Millis, Node, Output};
pub use settings::{DowningSettings, DowningStrategy, Settings};
pub use wire::Message;
