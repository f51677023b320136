//! A minimal chitchat agent (scuttlebutt gossip, phi-accrual failure detector) over
//! UDP on loopback. Its transport wraps chitchat's `UdpTransport`: it drops datagrams to
//! and from cut peers and counts the payload bytes of the rest.
//!
//! Profiles: chitchat has no public default configuration; both `defaults` and
//! `common` use the values of chitchat's own `ChitchatConfig::default()` (a test-only
//! impl in the crate): gossip every 1 s, `FailureDetectorConfig::default()` (phi
//! threshold 8, window 1000, max interval 10 s, initial interval 5 s, dead-node grace
//! period 24 h), marked-for-deletion grace 15 min, protocol V0. The gossip interval is
//! already the common one second, so the two profiles are the same configuration.
//! Views: a peer in `live_nodes()` is `alive`; in `dead_nodes()` it is `down` (chitchat
//! has no separate suspicion); gone from both (garbage-collected) is `removed`.

use async_trait::async_trait;
use chitchat::transport::{RecvOutcome, SendOutcome, Socket, Transport, UdpTransport};
use chitchat::{
    spawn_chitchat, ChitchatConfig, ChitchatEnvelope, ChitchatId, FailureDetectorConfig,
    ProtocolVersion,
};
use peers::{now_ms, start, view, AgentArgs, Link};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

struct CutTransport {
    link: Arc<Link>,
}

struct CutSocket {
    inner: Box<dyn Socket>,
    link: Arc<Link>,
}

#[async_trait]
impl Transport for CutTransport {
    async fn open(&self, listen_addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        let inner = UdpTransport.open(listen_addr).await?;
        Ok(Box::new(CutSocket {
            inner,
            link: Arc::clone(&self.link),
        }))
    }
}

#[async_trait]
impl Socket for CutSocket {
    fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.inner.local_addr()
    }

    async fn send(
        &mut self,
        to: SocketAddr,
        envelope: ChitchatEnvelope,
    ) -> anyhow::Result<SendOutcome> {
        if self.link.drops(&to) {
            return Ok(SendOutcome { num_bytes_sent: 0 });
        }
        let outcome = self.inner.send(to, envelope).await?;
        self.link.count_sent(outcome.num_bytes_sent);
        Ok(outcome)
    }

    async fn recv(&mut self) -> anyhow::Result<RecvOutcome> {
        loop {
            let outcome = self.inner.recv().await?;
            if self.link.drops(&outcome.from_addr) {
                continue;
            }
            self.link.count_recv(outcome.num_bytes_received);
            return Ok(outcome);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Seen {
    Alive,
    Dead,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = match AgentArgs::parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("chitchat-agent: {e}");
            std::process::exit(2);
        }
    };
    let me = args.bind;
    let link = start(me);
    let config = ChitchatConfig {
        chitchat_id: ChitchatId::new(me.to_string(), now_ms(), me),
        cluster_id: "peers-bench".to_string(),
        gossip_interval: Duration::from_secs(1),
        listen_addr: me,
        seed_nodes: args
            .seeds
            .iter()
            .filter(|s| **s != me)
            .map(|s| s.to_string())
            .collect(),
        failure_detector_config: FailureDetectorConfig::default(),
        marked_for_deletion_grace_period: Duration::from_secs(15 * 60),
        catchup_callback: None,
        extra_liveness_predicate: None,
        protocol_version: ProtocolVersion::V0,
    };
    let transport = CutTransport { link };
    let handle = spawn_chitchat(config, Vec::new(), &transport)
        .await
        .expect("chitchat starts");
    let mut seen: BTreeMap<SocketAddr, Seen> = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        let (live, dead) = handle
            .with_chitchat(|c| {
                let live: BTreeSet<SocketAddr> = c
                    .live_nodes()
                    .map(|id| id.gossip_advertise_addr)
                    .filter(|a| *a != me)
                    .collect();
                let dead: BTreeSet<SocketAddr> = c
                    .dead_nodes()
                    .map(|id| id.gossip_advertise_addr)
                    .filter(|a| *a != me && !live.contains(a))
                    .collect();
                (live, dead)
            })
            .await;
        let mut now: BTreeMap<SocketAddr, Seen> =
            live.into_iter().map(|a| (a, Seen::Alive)).collect();
        now.extend(dead.into_iter().map(|a| (a, Seen::Dead)));
        for (addr, state) in &now {
            if seen.get(addr) != Some(state) {
                view(
                    if *state == Seen::Alive {
                        "alive"
                    } else {
                        "down"
                    },
                    *addr,
                );
            }
        }
        for addr in seen.keys() {
            if !now.contains_key(addr) {
                view("removed", *addr);
            }
        }
        seen = now;
    }
}
