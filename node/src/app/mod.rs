//! The Globomantics video recommendation service: the catalogue (`catalog`), the
//! item-based recommender (`recommender`) and its offline evaluation (`evaluation`),
//! and the service itself (`service`): each user's watch history on three replicas
//! of a ring over the api members, quorum writes and reads, hedged routing, catch-up
//! and anti-entropy, and its HTTP API. It reaches membership only through the cluster
//! runtime's handle and transport.

pub mod catalog;
pub mod evaluation;
pub mod recommender;
pub mod service;
