//! Node-to-node transport: TCP with length-delimited frames, a mutual challenge-response
//! handshake on the shared cluster secret, one bounded outbound queue per peer, and
//! fault injection per directed link.
//!
//! Each node sends over its own outbound connection to a peer and only reads from
//! inbound ones, so a link direction maps to one TCP connection and a one-way cut is
//! just "drop what goes that way". The handshake proves both sides know the secret
//! (HMAC-SHA256 over both nonces, the cluster name and the claimed address) without
//! sending it. A connection that fails the handshake, sends garbage, announces a frame
//! over the limit or stalls is closed with one log line; nothing else is disturbed.
//! Queues are bounded: when a peer is slow, messages to it are dropped and counted
//! rather than buffered without limit (gossip and heartbeats tolerate loss).
//!
//! A refused connection is evidence that the peer's process is gone (nothing listens at
//! its address), and is passed to the core: when a reconnect is refused, and when a
//! probe is, made as soon as a peer's connection to us closes or is reset. A probe
//! opens a TCP connection and closes it at once, and sends nothing.

use crate::cluster::link::{Credentials, Keyring, Link, LinkError};
use crate::cluster::metrics::Metrics;
use bytes::Bytes;
use rand::{Rng, SeedableRng};
pub use shared::api::LinkFault;
use shared::frame::{self, Frame};
use shared::link_form::LinkEnds;
use shared::Address;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Most frames written to a peer with one flush.
const MAX_BATCH: usize = 64;
/// Messages waiting for one peer before new ones are dropped.
const PEER_QUEUE: usize = 1024;
/// A handshake must finish within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Refused peers waiting for the core before new ones are dropped.
const REFUSALS_QUEUE: usize = 256;
/// Connecting to a peer gives up after this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The fault table, shared by the transport and the fault API.
#[derive(Default)]
pub struct Faults {
    links: Mutex<HashMap<Address, LinkFault>>,
}

impl Faults {
    /// Sets (or with a default value, clears) the faults toward `peer`.
    pub fn set(&self, peer: Address, fault: LinkFault) {
        let mut links = self.links.lock().expect("faults lock");
        if fault == LinkFault::default() {
            links.remove(&peer);
        } else {
            links.insert(peer, fault);
        }
    }

    /// Removes every fault.
    pub fn heal_all(&self) {
        self.links.lock().expect("faults lock").clear();
    }

    /// The faults toward `peer`.
    pub fn get(&self, peer: &Address) -> LinkFault {
        self.links
            .lock()
            .expect("faults lock")
            .get(peer)
            .cloned()
            .unwrap_or_default()
    }

    /// Every faulty link.
    pub fn all(&self) -> Vec<(Address, LinkFault)> {
        let mut all: Vec<_> = self
            .links
            .lock()
            .expect("faults lock")
            .iter()
            .map(|(a, f)| (a.clone(), f.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// An inbound connection with nothing to read for this long is closed (a live peer
/// heartbeats far more often; it reconnects on its next send).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A send that makes no progress for this long drops the connection.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// A TCP connection to `peer`, within the connect timeout.
/// One write's worth of frames for a peer, and when they were queued.
type Queued = (Instant, Vec<Bytes>);

/// The next messages for the peer. Meanwhile a connection the peer closed is dropped at
/// once, so the next write opens a fresh one instead of failing into a dead socket (a
/// write after the peer's close is accepted by the kernel and lost).
async fn next_to_send(
    queue: &mut mpsc::Receiver<Queued>,
    connection: &mut Option<Link>,
) -> Option<Queued> {
    loop {
        let Some(link) = connection.as_mut() else {
            return queue.recv().await;
        };
        tokio::select! {
            next = queue.recv() => return next,
            _ = link.closed() => {
                tracing::debug!("the peer closed the connection; reconnecting at the next send");
                *connection = None;
            }
        }
    }
}

async fn tcp_connect(peer: &Address) -> Result<TcpStream, LinkError> {
    tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((peer.host.as_str(), peer.port)),
    )
    .await
    .map_err(|_| LinkError::Timeout)?
    .map_err(LinkError::Io)
}

/// The transport of one node.
pub struct Transport {
    credentials: Credentials,
    peers: Mutex<HashMap<Address, mpsc::Sender<Queued>>>,
    /// Injected faults per peer.
    pub faults: Arc<Faults>,
    metrics: Arc<Metrics>,
    rng: Mutex<rand::rngs::SmallRng>,
    /// Peers at whose address a connection was refused: nothing listens there, so the
    /// process that did has exited. For the node's core (`Node::peer_refused`).
    refusals: mpsc::Sender<Address>,
    refusals_out: Mutex<Option<mpsc::Receiver<Address>>>,
}

impl Transport {
    /// A transport for `self_address` in `cluster`, authenticating with `secret`: with
    /// `encrypted`, by the Noise handshake under a keyring that holds the key derived
    /// from it, and every frame sealed; otherwise by the plaintext challenge-response.
    pub fn new(
        self_address: Address,
        cluster: String,
        secret: &str,
        encrypted: bool,
        metrics: Arc<Metrics>,
    ) -> Arc<Transport> {
        let keyring = encrypted.then(|| {
            let key = crate::cluster::noise::Key::derive(secret, &cluster);
            Arc::new(RwLock::new(Keyring::new(key)))
        });
        let (refusals, refusals_out) = mpsc::channel(REFUSALS_QUEUE);
        Arc::new(Transport {
            refusals,
            refusals_out: Mutex::new(Some(refusals_out)),
            credentials: Credentials {
                address: self_address,
                cluster,
                secret: Arc::from(secret.as_bytes()),
                keyring,
            },
            peers: Mutex::new(HashMap::new()),
            faults: Arc::new(Faults::default()),
            metrics,
            rng: Mutex::new(rand::rngs::SmallRng::from_os_rng()),
        })
    }

    /// The stream of refused peers (once; `None` after the first call).
    pub fn take_refusals(&self) -> Option<mpsc::Receiver<Address>> {
        self.refusals_out.lock().expect("refusals lock").take()
    }

    /// Passes on the evidence that nothing listens at `peer` (dropped when the core is
    /// behind: missing evidence only means waiting for phi, as before).
    fn report_refused(&self, peer: &Address) {
        tracing::debug!(peer = %peer, "connection refused: nothing listens there");
        let _ = self.refusals.try_send(peer.clone());
    }

    /// A peer closed its connection to us: if it did so by exiting, a connection to
    /// its address is refused now, which is reported. A live peer (reconnecting
    /// after a key change or a stall) just sees a connection open and close.
    fn probe(self: &Arc<Self>, peer: Address) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            if tcp_connect(&peer)
                .await
                .is_err_and(|e| e.is_connection_refused())
            {
                this.report_refused(&peer);
            }
        });
    }

    /// The keyring of an encrypted transport (`None`: plaintext links).
    pub fn keyring(&self) -> Option<&Arc<RwLock<Keyring>>> {
        self.credentials.keyring.as_ref()
    }

    /// A key for this cluster from a secret phrase (to install in the keyring).
    pub fn key_for(&self, secret: &str) -> crate::cluster::noise::Key {
        crate::cluster::noise::Key::derive(secret, &self.credentials.cluster)
    }

    /// Queues `message` for `to`. Never blocks: a cut link or a full queue drops it.
    pub fn send(self: &Arc<Self>, to: &Address, message: &Frame) {
        self.send_together(to, std::slice::from_ref(message));
    }

    /// Queues `messages` for `to` as one write (one sealed message on an encrypted
    /// link). Never blocks: a cut link or a full queue drops them; loss drops each alone.
    pub fn send_together(self: &Arc<Self>, to: &Address, messages: &[Frame]) {
        let fault = self.faults.get(to);
        let mut frames = Vec::with_capacity(messages.len());
        for message in messages {
            if fault.cut_outbound || self.lost(fault.loss) {
                self.metrics.dropped(message.kind());
                continue;
            }
            match frame::encode(message) {
                Ok(b) => {
                    self.metrics.sent(message.kind(), b.len());
                    frames.push(Bytes::from(b));
                }
                Err(e) => tracing::warn!(to = %to, kind = message.kind(), "not sent: {e}"),
            }
        }
        if frames.is_empty() {
            return;
        }
        let queue = {
            let mut peers = self.peers.lock().expect("peers lock");
            peers
                .entry(to.clone())
                .or_insert_with(|| {
                    let (tx, rx) = mpsc::channel(PEER_QUEUE);
                    tokio::spawn(Arc::clone(self).peer_writer(to.clone(), rx));
                    tx
                })
                .clone()
        };
        if queue.try_send((Instant::now(), frames)).is_err() {
            for message in messages {
                self.metrics.dropped(message.kind());
            }
        }
    }

    fn lost(&self, loss: f64) -> bool {
        loss > 0.0
            && self
                .rng
                .lock()
                .expect("rng")
                .random_bool(loss.clamp(0.0, 1.0))
    }

    /// Owns the outbound connection to one peer: connects on demand, delays per the
    /// link's fault, and reconnects after errors.
    async fn peer_writer(self: Arc<Self>, peer: Address, mut queue: mpsc::Receiver<Queued>) {
        let mut connection: Option<Link> = None;
        loop {
            let Some((queued_at, frames)) = next_to_send(&mut queue, &mut connection).await else {
                break;
            };
            let fault = self.faults.get(&peer);
            if fault.cut_outbound {
                continue;
            }
            // The delay counts from when the message was queued, so a slow link delays
            // each message rather than throttling the link to one per delay.
            let jitter = if fault.jitter_ms > 0 {
                self.rng
                    .lock()
                    .expect("rng")
                    .random_range(0..=fault.jitter_ms)
            } else {
                0
            };
            let due = queued_at + Duration::from_millis(fault.delay_ms + jitter);
            // Only sleep on a slow link: the timer's millisecond granularity would
            // otherwise add up to a millisecond to every message.
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
            if connection.is_none() {
                match self.connect(&peer).await {
                    Ok(c) => connection = Some(c),
                    Err(e) => {
                        tracing::debug!(peer = %peer, "connect failed: {e}");
                        if e.is_connection_refused() {
                            self.report_refused(&peer);
                        }
                        // What queued up meanwhile is stale; drop it rather than
                        // paying a connect timeout per message.
                        while queue.try_recv().is_ok() {
                            self.metrics.dropped("stale");
                        }
                        continue;
                    }
                }
            }
            if let Some(Err(e)) = connection.as_ref().map(|c| c.check_key(&self.credentials)) {
                tracing::info!(peer = %peer, "reconnecting: {e}");
                connection = match self.connect(&peer).await {
                    Ok(c) => Some(c),
                    Err(e) => {
                        tracing::debug!(peer = %peer, "connect failed: {e}");
                        continue;
                    }
                };
            }
            if let Some(c) = connection.as_mut() {
                let mut batch = frames;
                if fault.delay_ms == 0 && fault.jitter_ms == 0 {
                    // Under load, what queued up meanwhile goes in the same write.
                    while batch.len() < MAX_BATCH {
                        match queue.try_recv() {
                            Ok((_, next)) => batch.extend(next),
                            Err(_) => break,
                        }
                    }
                }
                match tokio::time::timeout(SEND_TIMEOUT, c.send_batch(batch)).await {
                    Ok(Ok(wire)) => self.metrics.wire_sent(wire),
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %peer, "send failed, reconnecting: {e}");
                        connection = None;
                    }
                    Err(_) => {
                        tracing::debug!(peer = %peer, "send stalled, reconnecting");
                        connection = None;
                    }
                }
            }
        }
    }

    async fn connect(&self, peer: &Address) -> Result<Link, LinkError> {
        let stream = tcp_connect(peer).await?;
        tokio::time::timeout(HANDSHAKE_TIMEOUT, Link::connect(stream, &self.credentials))
            .await
            .map_err(|_| LinkError::Timeout)?
    }

    /// Accepts connections until the listener fails, forwarding every valid message.
    pub async fn accept_loop(self: Arc<Self>, listener: TcpListener, inbound: mpsc::Sender<Frame>) {
        loop {
            let (stream, remote) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let this = Arc::clone(&self);
            let inbound = inbound.clone();
            tokio::spawn(async move {
                if let Err(e) = this.serve_connection(stream, inbound).await {
                    this.metrics.refused_connection();
                    tracing::warn!(remote = %remote, "cluster connection closed: {e}");
                }
            });
        }
    }

    async fn serve_connection(
        self: &Arc<Self>,
        stream: TcpStream,
        inbound: mpsc::Sender<Frame>,
    ) -> Result<(), LinkError> {
        let accepted =
            tokio::time::timeout(HANDSHAKE_TIMEOUT, Link::accept(stream, &self.credentials))
                .await
                .map_err(|_| LinkError::Timeout)?;
        let (mut link, peer) = match accepted {
            // Closed during the handshake: a probe or a reachability check closes
            // before saying anything, so this is counted but not worth a warning.
            Err(LinkError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                self.metrics.refused_connection();
                tracing::debug!("cluster connection closed during its handshake: {e}");
                return Ok(());
            }
            other => other?,
        };
        loop {
            let frame = match tokio::time::timeout(IDLE_TIMEOUT, link.recv()).await {
                Err(_) => return Ok(()),
                Ok(Ok(None)) => {
                    self.probe(peer);
                    return Ok(());
                }
                Ok(Err(e)) => {
                    if e.is_connection_reset() {
                        self.probe(peer);
                    }
                    return Err(e);
                }
                Ok(Ok(Some(frame))) => frame,
            };
            link.check_key(&self.credentials)?;
            let ends = LinkEnds {
                sender: &peer,
                receiver: &self.credentials.address,
            };
            let message =
                frame::decode(&frame, ends).map_err(|e| LinkError::BadFrame(e.to_string()))?;
            if message.sender() != &peer {
                return Err(LinkError::Refused(format!(
                    "{} sent a message as {}",
                    peer,
                    message.sender()
                )));
            }
            if self.faults.get(&peer).cut_inbound {
                self.metrics.dropped(message.kind());
                continue;
            }
            self.metrics.received(message.kind(), frame.len());
            if inbound.send(message).await.is_err() {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::{Message, UniqueAddress};

    async fn transport_on(
        cluster: &str,
        secret: &str,
    ) -> (Arc<Transport>, Address, mpsc::Receiver<Frame>) {
        transport_with(cluster, secret, true).await
    }

    async fn transport_with(
        cluster: &str,
        secret: &str,
        encrypted: bool,
    ) -> (Arc<Transport>, Address, mpsc::Receiver<Frame>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let address = Address::new("127.0.0.1", port);
        let transport = Transport::new(
            address.clone(),
            cluster.into(),
            secret,
            encrypted,
            Arc::new(Metrics::default()),
        );
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(Arc::clone(&transport).accept_loop(listener, tx));
        (transport, address, rx)
    }

    /// A heartbeat from `from` with sequence number `seq`.
    fn heartbeat(from: &Address, seq: u64) -> Frame {
        Frame::Membership(Message::Heartbeat {
            from: UniqueAddress::new(from.clone(), 1),
            seq,
        })
    }

    #[tokio::test]
    async fn authenticated_peers_exchange_messages_and_a_cut_drops_them() {
        let (a, a_address, _) = transport_on("c", "secret-123").await;
        let (_, b_address, mut b_inbox) = transport_on("c", "secret-123").await;
        a.send(&b_address, &heartbeat(&a_address, 1));
        let got = tokio::time::timeout(Duration::from_secs(5), b_inbox.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, heartbeat(&a_address, 1));
        a.faults.set(
            b_address.clone(),
            LinkFault {
                cut_outbound: true,
                ..Default::default()
            },
        );
        a.send(&b_address, &heartbeat(&a_address, 2));
        assert!(
            tokio::time::timeout(Duration::from_millis(300), b_inbox.recv())
                .await
                .is_err()
        );
        a.faults.heal_all();
        a.send(&b_address, &heartbeat(&a_address, 3));
        let got = tokio::time::timeout(Duration::from_secs(5), b_inbox.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, heartbeat(&a_address, 3));
    }

    #[tokio::test]
    async fn a_wrong_secret_or_cluster_name_is_refused() {
        let (_, b_address, mut b_inbox) = transport_on("c", "secret-123").await;
        let (wrong_secret, a_address, _) = transport_on("c", "other-secret").await;
        let (wrong_cluster, _, _) = transport_on("other", "secret-123").await;
        for t in [&wrong_secret, &wrong_cluster] {
            assert!(matches!(
                t.connect(&b_address).await,
                Err(LinkError::Refused(_))
            ));
            t.send(&b_address, &heartbeat(&a_address, 9));
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(500), b_inbox.recv())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn plaintext_and_encrypted_nodes_refuse_each_other_and_plaintext_still_works() {
        let (_, enc_address, mut enc_inbox) = transport_on("c", "secret-123").await;
        let (plain, plain_address, mut plain_inbox) =
            transport_with("c", "secret-123", false).await;
        let (plain2, plain2_address, _) = transport_with("c", "secret-123", false).await;
        let (enc2, enc2_address, _) = transport_on("c", "secret-123").await;
        assert!(matches!(
            plain.connect(&enc_address).await,
            Err(LinkError::BadFrame(_) | LinkError::Refused(_))
        ));
        assert!(matches!(
            enc2.connect(&plain_address).await,
            Err(LinkError::Refused(_) | LinkError::BadFrame(_))
        ));
        plain.send(&enc_address, &heartbeat(&plain_address, 1));
        enc2.send(&plain_address, &heartbeat(&enc2_address, 1));
        assert!(
            tokio::time::timeout(Duration::from_millis(500), enc_inbox.recv())
                .await
                .is_err()
        );
        plain2.send(&plain_address, &heartbeat(&plain2_address, 2));
        let got = tokio::time::timeout(Duration::from_secs(5), plain_inbox.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            got,
            heartbeat(&plain2_address, 2),
            "plaintext peers still talk"
        );
    }

    #[tokio::test]
    async fn a_key_rotation_moves_links_to_the_new_key_and_drops_the_old() {
        let (a, a_address, _) = transport_on("c", "old-secret-1").await;
        let (b, b_address, mut b_inbox) = transport_on("c", "old-secret-1").await;
        a.send(&b_address, &heartbeat(&a_address, 1));
        let first = tokio::time::timeout(Duration::from_secs(5), b_inbox.recv()).await;
        assert_eq!(first.unwrap().unwrap(), heartbeat(&a_address, 1));
        let old = a.key_for("old-secret-1").id;
        for t in [&a, &b] {
            let new = t.key_for("new-secret-2");
            let mut keyring = t.keyring().unwrap().write().unwrap();
            let id = keyring.install(new);
            keyring.use_primary(&id).unwrap();
        }
        for t in [&a, &b] {
            t.keyring().unwrap().write().unwrap().remove(&old).unwrap();
        }
        // The link opened with the old key is dropped and reopened with the new one;
        // the first frame after the removal may be lost with it.
        let mut seq = 2;
        let got = loop {
            a.send(&b_address, &heartbeat(&a_address, seq));
            match tokio::time::timeout(Duration::from_millis(300), b_inbox.recv()).await {
                Ok(Some(frame)) => break frame,
                _ => seq += 1,
            }
        };
        assert!(matches!(got, Frame::Membership(Message::Heartbeat { .. })));
        let ids = b.keyring().unwrap().read().unwrap().ids();
        assert_eq!(ids.len(), 1);
        assert!(ids[0].1 && ids[0].0 != old);
    }

    #[tokio::test]
    async fn a_stranger_without_the_key_learns_nothing() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (_, b_address, _) = transport_on("c", "secret-123").await;
        let stranger = Transport::new(
            Address::new("127.0.0.1", 9),
            "c".into(),
            "guessed-secret",
            true,
            Arc::new(Metrics::default()),
        );
        let (_, first) =
            crate::cluster::noise::initiate(&stranger.key_for("guessed-secret"), b"hi").unwrap();
        let mut tcp = TcpStream::connect(("127.0.0.1", b_address.port))
            .await
            .unwrap();
        tcp.write_all(&(first.len() as u32).to_be_bytes())
            .await
            .unwrap();
        tcp.write_all(&first).await.unwrap();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer))
            .await
            .unwrap();
        assert!(read.is_ok() || answer.is_empty());
        assert!(answer.is_empty(), "not a byte back: {answer:?}");
    }

    #[tokio::test]
    async fn a_peer_cannot_speak_for_another_node() {
        let (a, a_address, _) = transport_on("c", "secret-123").await;
        let (_, b_address, mut b_inbox) = transport_on("c", "secret-123").await;
        let someone_else = UniqueAddress::new(Address::new("127.0.0.1", 1), 1);
        // A message that names its sender in full is refused if the name is not the
        // authenticated peer's...
        let claim = Frame::Membership(Message::InitJoinNack {
            from: someone_else.clone(),
        });
        a.send(&b_address, &claim);
        assert!(
            tokio::time::timeout(Duration::from_millis(500), b_inbox.recv())
                .await
                .is_err()
        );
        // ...and a heartbeat, which names only an incarnation, arrives from the peer
        // whatever address it was built with.
        a.send(&b_address, &heartbeat(&someone_else.address, 2));
        let received = tokio::time::timeout(Duration::from_secs(5), b_inbox.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(received, heartbeat(&a_address, 2));
    }

    #[tokio::test]
    async fn garbage_and_oversized_frames_close_only_that_connection() {
        use tokio::io::AsyncWriteExt;
        let (a, a_address, _) = transport_on("c", "secret-123").await;
        let (_, b_address, mut b_inbox) = transport_on("c", "secret-123").await;
        let mut garbage = TcpStream::connect(("127.0.0.1", b_address.port))
            .await
            .unwrap();
        garbage
            .write_all(&[0, 0, 0, 5, 1, 2, 3, 4, 5])
            .await
            .unwrap();
        let mut huge = TcpStream::connect(("127.0.0.1", b_address.port))
            .await
            .unwrap();
        huge.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        let mut buf = [0u8; 16];
        use tokio::io::AsyncReadExt;
        let closed = tokio::time::timeout(Duration::from_secs(5), huge.read(&mut buf))
            .await
            .unwrap();
        assert!(
            matches!(closed, Ok(0) | Err(_)),
            "oversized frame closes the connection"
        );
        a.send(&b_address, &heartbeat(&a_address, 4));
        let got = tokio::time::timeout(Duration::from_secs(5), b_inbox.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            got,
            heartbeat(&a_address, 4),
            "other connections are unaffected"
        );
    }
}
