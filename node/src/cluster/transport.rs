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

use crate::cluster::metrics::Metrics;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
pub use shared::api::LinkFault;
use shared::frame::{self, Frame};
use shared::wire::{MAX_FRAME_BYTES, PROTOCOL_VERSION};
use shared::Address;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// Most frames written to a peer with one flush.
const MAX_BATCH: usize = 64;
/// Messages waiting for one peer before new ones are dropped.
const PEER_QUEUE: usize = 1024;
/// A handshake must finish within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
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

/// Handshake frames (postcard inside the same length-delimited framing).
#[derive(Serialize, Deserialize, Debug)]
enum Handshake {
    Hello {
        protocol: u16,
        cluster: String,
        from: Address,
        nonce: [u8; 32],
    },
    Challenge {
        nonce: [u8; 32],
    },
    Proof {
        proof: [u8; 32],
    },
    Accepted {
        proof: [u8; 32],
    },
    Refused {
        reason: String,
    },
}

/// Who is proving: the two sides sign different tags so a proof cannot be reflected.
fn proof(
    secret: &[u8],
    tag: &[u8],
    cluster: &str,
    from: &Address,
    client_nonce: &[u8; 32],
    server_nonce: &[u8; 32],
) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("any key length");
    mac.update(tag);
    mac.update(cluster.as_bytes());
    mac.update(from.to_string().as_bytes());
    mac.update(client_nonce);
    mac.update(server_nonce);
    mac.finalize().into_bytes().into()
}

fn verify(expected: &[u8; 32], got: &[u8; 32]) -> bool {
    // Constant time, so timing does not reveal how much of a proof was right.
    expected
        .iter()
        .zip(got)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// Writes frames and flushes once: one system call for a batch instead of one each.
async fn write_batch(
    connection: &mut Framed<TcpStream, LengthDelimitedCodec>,
    frames: Vec<Bytes>,
) -> Result<(), std::io::Error> {
    for frame in frames {
        connection.feed(frame).await?;
    }
    SinkExt::<Bytes>::flush(connection).await
}

/// Frames during the handshake are tiny; the full limit applies only once the peer is
/// authenticated, so a stranger cannot make the node reserve megabytes.
const HANDSHAKE_FRAME_BYTES: usize = 4096;
/// An inbound connection with nothing to read for this long is closed (a live peer
/// heartbeats far more often; it reconnects on its next send).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A send that makes no progress for this long drops the connection.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

fn handshake_codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(HANDSHAKE_FRAME_BYTES)
        .new_codec()
}

fn authenticated(framed: &mut Framed<TcpStream, LengthDelimitedCodec>) {
    framed.codec_mut().set_max_frame_length(MAX_FRAME_BYTES);
}

/// Why a connection was closed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// I/O failed or the peer closed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer did not finish the handshake in time.
    #[error("handshake timed out")]
    Timeout,
    /// The peer sent something that is not a valid frame or message.
    #[error("bad frame: {0}")]
    BadFrame(String),
    /// Authentication or cluster-name check failed.
    #[error("refused: {0}")]
    Refused(String),
}

async fn send_handshake(
    framed: &mut Framed<TcpStream, LengthDelimitedCodec>,
    h: &Handshake,
) -> Result<(), LinkError> {
    let bytes = postcard::to_allocvec(h).map_err(|e| LinkError::BadFrame(e.to_string()))?;
    framed.send(Bytes::from(bytes)).await?;
    Ok(())
}

async fn recv_handshake(
    framed: &mut Framed<TcpStream, LengthDelimitedCodec>,
) -> Result<Handshake, LinkError> {
    match framed.next().await {
        Some(Ok(frame)) => {
            postcard::from_bytes(&frame).map_err(|e| LinkError::BadFrame(format!("handshake: {e}")))
        }
        Some(Err(e)) => Err(LinkError::BadFrame(e.to_string())),
        None => Err(LinkError::Io(std::io::ErrorKind::UnexpectedEof.into())),
    }
}

/// Tells the peer why it is refused (best effort) and returns the error to log.
async fn refuse(framed: &mut Framed<TcpStream, LengthDelimitedCodec>, reason: String) -> LinkError {
    let refused = Handshake::Refused {
        reason: reason.clone(),
    };
    if let Err(e) = send_handshake(framed, &refused).await {
        tracing::debug!("could not send the refusal: {e}");
    }
    LinkError::Refused(reason)
}

/// The transport of one node.
pub struct Transport {
    self_address: Address,
    cluster: String,
    secret: Arc<[u8]>,
    peers: Mutex<HashMap<Address, mpsc::Sender<(Instant, Bytes)>>>,
    /// Injected faults per peer.
    pub faults: Arc<Faults>,
    metrics: Arc<Metrics>,
    rng: Mutex<rand::rngs::SmallRng>,
}

impl Transport {
    /// A transport for `self_address` in `cluster`, authenticating with `secret`.
    pub fn new(
        self_address: Address,
        cluster: String,
        secret: &str,
        metrics: Arc<Metrics>,
    ) -> Arc<Transport> {
        Arc::new(Transport {
            self_address,
            cluster,
            secret: Arc::from(secret.as_bytes()),
            peers: Mutex::new(HashMap::new()),
            faults: Arc::new(Faults::default()),
            metrics,
            rng: Mutex::new(rand::rngs::SmallRng::from_os_rng()),
        })
    }

    /// Queues `message` for `to`. Never blocks: a cut link or a full queue drops it.
    pub fn send(self: &Arc<Self>, to: &Address, message: &Frame) {
        let fault = self.faults.get(to);
        if fault.cut_outbound
            || (fault.loss > 0.0
                && self
                    .rng
                    .lock()
                    .expect("rng")
                    .random_bool(fault.loss.clamp(0.0, 1.0)))
        {
            self.metrics.dropped(message.kind());
            return;
        }
        let bytes = match frame::encode(message) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                tracing::warn!(to = %to, kind = message.kind(), "not sent: {e}");
                return;
            }
        };
        self.metrics.sent(message.kind(), bytes.len());
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
        if queue.try_send((Instant::now(), bytes)).is_err() {
            self.metrics.dropped(message.kind());
        }
    }

    /// Owns the outbound connection to one peer: connects on demand, delays per the
    /// link's fault, and reconnects after errors.
    async fn peer_writer(
        self: Arc<Self>,
        peer: Address,
        mut queue: mpsc::Receiver<(Instant, Bytes)>,
    ) {
        let mut connection: Option<Framed<TcpStream, LengthDelimitedCodec>> = None;
        while let Some((queued_at, frame)) = queue.recv().await {
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
                        // What queued up meanwhile is stale; drop it rather than
                        // paying a connect timeout per message.
                        while queue.try_recv().is_ok() {
                            self.metrics.dropped("stale");
                        }
                        continue;
                    }
                }
            }
            if let Some(c) = connection.as_mut() {
                let mut batch = vec![frame];
                if fault.delay_ms == 0 && fault.jitter_ms == 0 {
                    // Under load, what queued up meanwhile goes in the same write.
                    while batch.len() < MAX_BATCH {
                        match queue.try_recv() {
                            Ok((_, next)) => batch.push(next),
                            Err(_) => break,
                        }
                    }
                }
                match tokio::time::timeout(SEND_TIMEOUT, write_batch(c, batch)).await {
                    Ok(Ok(())) => {}
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

    async fn connect(
        &self,
        peer: &Address,
    ) -> Result<Framed<TcpStream, LengthDelimitedCodec>, LinkError> {
        let stream = tokio::time::timeout(
            CONNECT_TIMEOUT,
            TcpStream::connect((peer.host.as_str(), peer.port)),
        )
        .await
        .map_err(|_| LinkError::Timeout)??;
        stream.set_nodelay(true)?;
        let mut framed = Framed::new(stream, handshake_codec());
        tokio::time::timeout(HANDSHAKE_TIMEOUT, self.client_handshake(&mut framed))
            .await
            .map_err(|_| LinkError::Timeout)??;
        authenticated(&mut framed);
        Ok(framed)
    }

    async fn client_handshake(
        &self,
        framed: &mut Framed<TcpStream, LengthDelimitedCodec>,
    ) -> Result<(), LinkError> {
        let client_nonce: [u8; 32] = rand::rng().random();
        send_handshake(
            framed,
            &Handshake::Hello {
                protocol: PROTOCOL_VERSION,
                cluster: self.cluster.clone(),
                from: self.self_address.clone(),
                nonce: client_nonce,
            },
        )
        .await?;
        let server_nonce = match recv_handshake(framed).await? {
            Handshake::Challenge { nonce } => nonce,
            Handshake::Refused { reason } => return Err(LinkError::Refused(reason)),
            other => {
                return Err(LinkError::BadFrame(format!(
                    "expected a challenge, got {other:?}"
                )))
            }
        };
        let mine = proof(
            &self.secret,
            b"client",
            &self.cluster,
            &self.self_address,
            &client_nonce,
            &server_nonce,
        );
        send_handshake(framed, &Handshake::Proof { proof: mine }).await?;
        let server_proof = match recv_handshake(framed).await? {
            Handshake::Accepted { proof } => proof,
            Handshake::Refused { reason } => return Err(LinkError::Refused(reason)),
            other => {
                return Err(LinkError::BadFrame(format!(
                    "expected acceptance, got {other:?}"
                )))
            }
        };
        let expected = proof(
            &self.secret,
            b"server",
            &self.cluster,
            &self.self_address,
            &client_nonce,
            &server_nonce,
        );
        if verify(&expected, &server_proof) {
            Ok(())
        } else {
            Err(LinkError::Refused(
                "the peer does not know the cluster secret".into(),
            ))
        }
    }

    /// Server side of the handshake; returns the authenticated peer address.
    async fn server_handshake(
        &self,
        framed: &mut Framed<TcpStream, LengthDelimitedCodec>,
    ) -> Result<Address, LinkError> {
        let (cluster, from, client_nonce) = match recv_handshake(framed).await? {
            Handshake::Hello {
                protocol,
                cluster,
                from,
                nonce,
            } => {
                if protocol != PROTOCOL_VERSION {
                    let reason = format!("protocol {protocol} is not supported (this node speaks {PROTOCOL_VERSION})");
                    return Err(refuse(framed, reason).await);
                }
                if from.host.is_empty() || from.host.len() > shared::address::MAX_HOST_LEN {
                    return Err(LinkError::BadFrame("hello names an invalid address".into()));
                }
                (cluster, from, nonce)
            }
            other => {
                return Err(LinkError::BadFrame(format!(
                    "expected hello, got {other:?}"
                )))
            }
        };
        if cluster != self.cluster {
            let reason = format!(
                "cluster name `{}` does not match",
                cluster.chars().take(64).collect::<String>()
            );
            return Err(refuse(framed, reason).await);
        }
        // The client proves first: a stranger gets nothing signed with the secret to
        // guess it from offline.
        let server_nonce: [u8; 32] = rand::rng().random();
        send_handshake(
            framed,
            &Handshake::Challenge {
                nonce: server_nonce,
            },
        )
        .await?;
        let client_proof = match recv_handshake(framed).await? {
            Handshake::Proof { proof } => proof,
            other => {
                return Err(LinkError::BadFrame(format!(
                    "expected proof, got {other:?}"
                )))
            }
        };
        let expected = proof(
            &self.secret,
            b"client",
            &cluster,
            &from,
            &client_nonce,
            &server_nonce,
        );
        if !verify(&expected, &client_proof) {
            return Err(refuse(framed, "wrong cluster secret".into()).await);
        }
        let mine = proof(
            &self.secret,
            b"server",
            &cluster,
            &from,
            &client_nonce,
            &server_nonce,
        );
        send_handshake(framed, &Handshake::Accepted { proof: mine }).await?;
        Ok(from)
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
        &self,
        stream: TcpStream,
        inbound: mpsc::Sender<Frame>,
    ) -> Result<(), LinkError> {
        stream.set_nodelay(true)?;
        let mut framed = Framed::new(stream, handshake_codec());
        let peer = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.server_handshake(&mut framed))
            .await
            .map_err(|_| LinkError::Timeout)??;
        authenticated(&mut framed);
        loop {
            let frame = match tokio::time::timeout(IDLE_TIMEOUT, framed.next()).await {
                Err(_) | Ok(None) => return Ok(()),
                Ok(Some(frame)) => frame.map_err(|e| LinkError::BadFrame(e.to_string()))?,
            };
            let message = frame::decode(&frame).map_err(|e| LinkError::BadFrame(e.to_string()))?;
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
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let address = Address::new("127.0.0.1", port);
        let transport = Transport::new(
            address.clone(),
            cluster.into(),
            secret,
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
    async fn a_peer_cannot_speak_for_another_node() {
        let (a, _, _) = transport_on("c", "secret-123").await;
        let (_, b_address, mut b_inbox) = transport_on("c", "secret-123").await;
        let someone_else = Address::new("127.0.0.1", 1);
        a.send(&b_address, &heartbeat(&someone_else, 1));
        assert!(
            tokio::time::timeout(Duration::from_millis(500), b_inbox.recv())
                .await
                .is_err()
        );
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
