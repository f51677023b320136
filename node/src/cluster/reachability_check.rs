//! Says so in the log, within seconds, when this node cannot be reached where it
//! claims to be, rather than hanging silently.
//!
//! Peers answer a joining node at its advertised address, so a wrong `--advertise`
//! (a wildcard, a host-only name, a port that is not forwarded) looks from inside like
//! seeds that never answer. Two checks make that visible: at start, a TCP connect to
//! the advertised address (from the same host it must reach our own listener); and,
//! while the node is not yet a member, a warning each `patience` that names the seeds'
//! silence and the address they are asked to answer.

use crate::cluster::runtime::Handle;
use shared::Address;
use std::time::Duration;

/// Runs both checks; returns once the node is a member (or has stopped).
pub async fn watch(advertise: Address, handle: Handle, patience: Duration) {
    check_own_address(&advertise).await;
    let started = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(patience).await;
        let Ok((_, view)) = handle.snapshot().await else {
            return;
        };
        if view.self_status.is_some() {
            return;
        }
        tracing::warn!(
            advertise = %advertise,
            waited_s = started.elapsed().as_secs(),
            "still not a member: no seed has let this node in. Seeds must be reachable \
             from here, and must reach this node at its advertised address"
        );
    }
}

async fn check_own_address(advertise: &Address) {
    let target = (advertise.host.as_str(), advertise.port);
    let attempt = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect(target),
    );
    match attempt.await {
        Ok(Ok(_)) => tracing::info!(advertise = %advertise, "advertised address reaches this node"),
        Ok(Err(e)) => tracing::error!(
            advertise = %advertise,
            "the advertised address does not reach this node's cluster listener ({e}); \
             peers will not be able to answer it: check --advertise"
        ),
        Err(_) => tracing::error!(
            advertise = %advertise,
            "connecting to the advertised address timed out; peers will not be able to \
             answer this node: check --advertise"
        ),
    }
}
