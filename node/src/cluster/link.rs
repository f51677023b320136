//! One authenticated connection between two nodes: its handshake, and how frames are
//! written and read on it afterwards.
//!
//! Encrypted (the default): the Noise handshake of `noise.rs` under the node's keyring,
//! then every frame sealed. Plaintext (`--transport-encryption false`, for comparison
//! and for old deployments): a mutual challenge-response on the cluster secret
//! (HMAC-SHA256 over both nonces, the cluster name and the claimed address, never the
//! secret itself), then frames in the clear. The two do not mix: a node refuses a peer
//! of the other kind, with a log line that says so, and never falls back.

use crate::cluster::noise::{self, Key, NoiseError, Session};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use shared::wire::{MAX_FRAME_BYTES, PROTOCOL_VERSION};
use shared::Address;
use std::sync::{Arc, RwLock};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// Frames during the handshake are tiny; the full limit applies only once the peer is
/// authenticated, so a stranger cannot make the node reserve megabytes.
const HANDSHAKE_FRAME_BYTES: usize = 4096;
/// A sealed Noise message with its tag.
const NOISE_FRAME_BYTES: usize = 65_535;
/// The length field of a sealed message (a plaintext or handshake frame has 4 bytes).
const SEALED_LENGTH_BYTES: usize = 2;

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
    /// A sealed frame failed to open, or a handshake under no installed key.
    #[error("{0}")]
    Noise(#[from] NoiseError),
    /// The key this connection was opened with has been removed.
    #[error("its key {0} was removed from the keyring")]
    KeyRemoved(String),
}

impl LinkError {
    /// Whether nothing listened at the address (the kernel refused the connection).
    pub fn is_connection_refused(&self) -> bool {
        matches!(self, LinkError::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
    }

    /// Whether the peer's kernel reset the connection (as it does for a process that
    /// exited with unread data).
    pub fn is_connection_reset(&self) -> bool {
        matches!(self, LinkError::Io(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
    }
}

/// The keys a node accepts, and the one it uses for new connections (Serf's keyring).
#[derive(Debug)]
pub struct Keyring {
    keys: Vec<Key>,
    primary: usize,
}

/// Why a keyring change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    /// No installed key has this id.
    #[error("no installed key has id {0}")]
    Unknown(String),
    /// The primary key cannot be removed.
    #[error("key {0} is the primary key: make another one primary first")]
    Primary(String),
}

impl Keyring {
    /// A keyring holding `primary`.
    pub fn new(primary: Key) -> Keyring {
        Keyring {
            keys: vec![primary],
            primary: 0,
        }
    }

    /// Adds a key (accepted from now on); its id.
    pub fn install(&mut self, key: Key) -> String {
        let id = key.id.clone();
        if !self.contains(&id) {
            self.keys.push(key);
        }
        id
    }

    /// Makes an installed key the one used for new connections.
    pub fn use_primary(&mut self, id: &str) -> Result<(), KeyringError> {
        let i = self.position(id)?;
        self.primary = i;
        Ok(())
    }

    /// Removes a key that is not the primary; connections opened with it close.
    pub fn remove(&mut self, id: &str) -> Result<(), KeyringError> {
        let i = self.position(id)?;
        if i == self.primary {
            return Err(KeyringError::Primary(id.into()));
        }
        self.keys.remove(i);
        if self.primary > i {
            self.primary -= 1;
        }
        Ok(())
    }

    /// The key for new connections.
    pub fn primary(&self) -> Key {
        self.keys[self.primary].clone()
    }

    /// Every key, primary first (the order the accepting side tries them in).
    pub fn keys(&self) -> Vec<Key> {
        let mut keys = vec![self.primary()];
        keys.extend(
            self.keys
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != self.primary)
                .map(|(_, k)| k.clone()),
        );
        keys
    }

    /// Every key's id, and whether it is the primary.
    pub fn ids(&self) -> Vec<(String, bool)> {
        self.keys()
            .into_iter()
            .enumerate()
            .map(|(i, k)| (k.id, i == 0))
            .collect()
    }

    /// Whether a key with this id is installed.
    pub fn contains(&self, id: &str) -> bool {
        self.keys.iter().any(|k| k.id == id)
    }

    fn position(&self, id: &str) -> Result<usize, KeyringError> {
        self.keys
            .iter()
            .position(|k| k.id == id)
            .ok_or_else(|| KeyringError::Unknown(id.into()))
    }
}

/// What a node proves itself with.
pub struct Credentials {
    /// This node's advertised address (what it claims to be).
    pub address: Address,
    /// The cluster name.
    pub cluster: String,
    /// The cluster secret (the plaintext handshake's).
    pub secret: Arc<[u8]>,
    /// The keys of the encrypted handshake; `None`: plaintext links.
    pub keyring: Option<Arc<RwLock<Keyring>>>,
}

impl Credentials {
    fn keyring(&self) -> Option<std::sync::RwLockReadGuard<'_, Keyring>> {
        self.keyring
            .as_ref()
            .map(|k| k.read().expect("keyring lock"))
    }
}

/// An authenticated connection.
pub struct Link {
    framed: Framed<TcpStream, LengthDelimitedCodec>,
    session: Option<Session>,
    /// Frames opened but not yet returned (one sealed message may hold several).
    opened: std::collections::VecDeque<Vec<u8>>,
    /// The id of the key it was opened with (encrypted links).
    key: Option<String>,
}

impl Link {
    /// The connecting side: the handshake on a fresh TCP stream.
    pub async fn connect(stream: TcpStream, me: &Credentials) -> Result<Link, LinkError> {
        stream.set_nodelay(true)?;
        let mut framed = Framed::new(stream, codec(HANDSHAKE_FRAME_BYTES));
        let primary = me.keyring().map(|k| k.primary());
        let (session, key) = match primary {
            Some(key) => {
                let session = noise_connect(&mut framed, me, &key).await?;
                (Some(session), Some(key.id))
            }
            None => {
                plain_connect(&mut framed, me).await?;
                (None, None)
            }
        };
        Ok(Link::open(framed, session, key))
    }

    /// The accepting side: the handshake, and the peer's authenticated address.
    pub async fn accept(stream: TcpStream, me: &Credentials) -> Result<(Link, Address), LinkError> {
        stream.set_nodelay(true)?;
        let mut framed = Framed::new(stream, codec(HANDSHAKE_FRAME_BYTES));
        let keys = me.keyring().map(|k| k.keys());
        match keys {
            Some(keys) => {
                let (session, key, peer) = noise_accept(&mut framed, &keys).await?;
                Ok((Link::open(framed, Some(session), Some(key)), peer))
            }
            None => {
                let peer = plain_accept(&mut framed, me).await?;
                Ok((Link::open(framed, None, None), peer))
            }
        }
    }

    fn open(
        mut framed: Framed<TcpStream, LengthDelimitedCodec>,
        session: Option<Session>,
        key: Option<String>,
    ) -> Link {
        if session.is_some() {
            // After the handshake a sealed message is at most 65,535 bytes, so it takes
            // the 2-byte length the Noise specification frames its messages with.
            *framed.codec_mut() = sealed_codec();
        } else {
            framed.codec_mut().set_max_frame_length(MAX_FRAME_BYTES);
        }
        Link {
            framed,
            session,
            opened: Default::default(),
            key,
        }
    }

    /// Fails if the key this link was opened with is no longer installed.
    pub fn check_key(&self, me: &Credentials) -> Result<(), LinkError> {
        match (&self.key, me.keyring()) {
            (Some(id), Some(keyring)) if !keyring.contains(id) => {
                Err(LinkError::KeyRemoved(id.clone()))
            }
            _ => Ok(()),
        }
    }

    /// Writes frames (sealed on an encrypted link) and flushes once; the bytes put on
    /// the wire, length prefixes included.
    pub async fn send_batch(&mut self, frames: Vec<Bytes>) -> Result<usize, std::io::Error> {
        let mut wire = 0;
        match self.session.as_mut() {
            Some(session) => {
                let plain: Vec<&[u8]> = frames.iter().map(|f| f.as_ref()).collect();
                for sealed in session.seal(&plain) {
                    wire += sealed.len() + SEALED_LENGTH_BYTES;
                    self.framed.feed(Bytes::from(sealed)).await?;
                }
            }
            None => {
                for frame in frames {
                    wire += frame.len() + 4;
                    self.framed.feed(frame).await?;
                }
            }
        }
        SinkExt::<Bytes>::flush(&mut self.framed).await?;
        Ok(wire)
    }

    /// Resolves when the peer closes (or resets) a connection it never writes on: an
    /// outbound link, where nothing is expected back. Cancel-safe.
    pub async fn closed(&mut self) {
        while let Some(Ok(_)) = self.framed.next().await {}
    }

    /// The next whole frame; `None` when the peer closed.
    pub async fn recv(&mut self) -> Result<Option<Vec<u8>>, LinkError> {
        loop {
            if let Some(frame) = self.opened.pop_front() {
                return Ok(Some(frame));
            }
            let Some(next) = self.framed.next().await else {
                return Ok(None);
            };
            let bytes = next.map_err(|e| LinkError::BadFrame(e.to_string()))?;
            match self.session.as_mut() {
                None => return Ok(Some(bytes.to_vec())),
                Some(session) => self.opened.extend(session.open(&bytes, MAX_FRAME_BYTES)?),
            }
        }
    }
}

/// Sealed messages after the Noise handshake: a 2-byte big-endian length.
fn sealed_codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(SEALED_LENGTH_BYTES)
        .max_frame_length(NOISE_FRAME_BYTES)
        .new_codec()
}

fn codec(limit: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(limit)
        .new_codec()
}

type Conn = Framed<TcpStream, LengthDelimitedCodec>;

async fn recv_raw(framed: &mut Conn) -> Result<Bytes, LinkError> {
    match framed.next().await {
        Some(Ok(frame)) => Ok(frame.freeze()),
        Some(Err(e)) => Err(LinkError::BadFrame(e.to_string())),
        None => Err(LinkError::Io(std::io::ErrorKind::UnexpectedEof.into())),
    }
}

/// What the encrypted handshake carries, inside Noise.
#[derive(Serialize, Deserialize, Debug)]
enum Greeting {
    Hello { protocol: u16, from: Address },
    Accepted,
    Refused { reason: String },
}

fn greeting(g: &Greeting) -> Vec<u8> {
    postcard::to_allocvec(g).expect("a greeting encodes")
}

fn read_greeting(payload: &[u8]) -> Result<Greeting, LinkError> {
    postcard::from_bytes(payload).map_err(|e| LinkError::BadFrame(format!("greeting: {e}")))
}

async fn noise_connect(
    framed: &mut Conn,
    me: &Credentials,
    key: &Key,
) -> Result<Session, LinkError> {
    let hello = greeting(&Greeting::Hello {
        protocol: PROTOCOL_VERSION,
        from: me.address.clone(),
    });
    let (state, first) = noise::initiate(key, &hello)?;
    framed.send(Bytes::from(first)).await?;
    let answer = recv_raw(framed).await.map_err(|e| match e {
        LinkError::Io(_) => LinkError::Refused(
            "the peer closed the connection during the encrypted handshake: it holds none of our \
             keys, or it runs without transport encryption"
                .into(),
        ),
        other => other,
    })?;
    let (session, payload) = noise::finish(state, &answer)?;
    match read_greeting(&payload)? {
        Greeting::Accepted => Ok(session),
        Greeting::Refused { reason } => Err(LinkError::Refused(reason)),
        other => Err(LinkError::BadFrame(format!(
            "expected acceptance, got {other:?}"
        ))),
    }
}

async fn noise_accept(
    framed: &mut Conn,
    keys: &[Key],
) -> Result<(Session, String, Address), LinkError> {
    let first = recv_raw(framed).await?;
    let responder = noise::respond(keys, &first).map_err(|e| {
        if looks_like_plain_hello(&first) {
            LinkError::Refused(
                "the peer speaks the plaintext handshake; this node requires transport encryption"
                    .into(),
            )
        } else {
            LinkError::Noise(e)
        }
    })?;
    let (protocol, from) = match read_greeting(&responder.payload)? {
        Greeting::Hello { protocol, from } => (protocol, from),
        other => {
            return Err(LinkError::BadFrame(format!(
                "expected hello, got {other:?}"
            )))
        }
    };
    let refusal = if protocol != PROTOCOL_VERSION {
        Some(format!(
            "protocol {protocol} is not supported (this node speaks {PROTOCOL_VERSION})"
        ))
    } else if from.host.is_empty() || from.host.len() > shared::address::MAX_HOST_LEN {
        Some("hello names an invalid address".into())
    } else {
        None
    };
    let key = responder.key.clone();
    let answer = match &refusal {
        Some(reason) => Greeting::Refused {
            reason: reason.clone(),
        },
        None => Greeting::Accepted,
    };
    let (session, message) = responder.answer(&greeting(&answer))?;
    framed.send(Bytes::from(message)).await?;
    match refusal {
        Some(reason) => Err(LinkError::Refused(reason)),
        None => Ok((session, key, from)),
    }
}

/// Whether a first frame is the plaintext handshake's hello (for the log line only).
fn looks_like_plain_hello(first: &[u8]) -> bool {
    matches!(
        postcard::from_bytes::<PlainHandshake>(first),
        Ok(PlainHandshake::Hello { .. })
    )
}

/// Plaintext handshake frames (postcard inside the same length-delimited framing).
#[derive(Serialize, Deserialize, Debug)]
enum PlainHandshake {
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
    expected
        .iter()
        .zip(got)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

async fn send_plain(framed: &mut Conn, h: &PlainHandshake) -> Result<(), LinkError> {
    let bytes = postcard::to_allocvec(h).map_err(|e| LinkError::BadFrame(e.to_string()))?;
    framed.send(Bytes::from(bytes)).await?;
    Ok(())
}

async fn recv_plain(framed: &mut Conn) -> Result<PlainHandshake, LinkError> {
    let frame = recv_raw(framed).await?;
    postcard::from_bytes(&frame).map_err(|_| {
        LinkError::BadFrame(
            "not a plaintext handshake: the peer may require transport encryption".into(),
        )
    })
}

/// Tells the peer why it is refused (best effort) and returns the error to log.
async fn refuse(framed: &mut Conn, reason: String) -> LinkError {
    let refused = PlainHandshake::Refused {
        reason: reason.clone(),
    };
    if let Err(e) = send_plain(framed, &refused).await {
        tracing::debug!("could not send the refusal: {e}");
    }
    LinkError::Refused(reason)
}

async fn plain_connect(framed: &mut Conn, me: &Credentials) -> Result<(), LinkError> {
    let client_nonce: [u8; 32] = rand::rng().random();
    let hello = PlainHandshake::Hello {
        protocol: PROTOCOL_VERSION,
        cluster: me.cluster.clone(),
        from: me.address.clone(),
        nonce: client_nonce,
    };
    send_plain(framed, &hello).await?;
    let challenge = recv_plain(framed).await.map_err(|e| match e {
        LinkError::Io(_) => LinkError::Refused(
            "the peer closed the connection during the plaintext handshake: it may require \
             transport encryption"
                .into(),
        ),
        other => other,
    })?;
    let server_nonce = match challenge {
        PlainHandshake::Challenge { nonce } => nonce,
        PlainHandshake::Refused { reason } => return Err(LinkError::Refused(reason)),
        other => {
            return Err(LinkError::BadFrame(format!(
                "expected a challenge, got {other:?}"
            )))
        }
    };
    let sign = |tag: &[u8]| {
        proof(
            &me.secret,
            tag,
            &me.cluster,
            &me.address,
            &client_nonce,
            &server_nonce,
        )
    };
    send_plain(
        framed,
        &PlainHandshake::Proof {
            proof: sign(b"client"),
        },
    )
    .await?;
    let server_proof = match recv_plain(framed).await? {
        PlainHandshake::Accepted { proof } => proof,
        PlainHandshake::Refused { reason } => return Err(LinkError::Refused(reason)),
        other => {
            return Err(LinkError::BadFrame(format!(
                "expected acceptance, got {other:?}"
            )))
        }
    };
    if verify(&sign(b"server"), &server_proof) {
        Ok(())
    } else {
        Err(LinkError::Refused(
            "the peer does not know the cluster secret".into(),
        ))
    }
}

async fn plain_accept(framed: &mut Conn, me: &Credentials) -> Result<Address, LinkError> {
    let (cluster, from, client_nonce) = match recv_plain(framed).await? {
        PlainHandshake::Hello {
            protocol,
            cluster,
            from,
            nonce,
        } => {
            if protocol != PROTOCOL_VERSION {
                let reason = format!(
                    "protocol {protocol} is not supported (this node speaks {PROTOCOL_VERSION})"
                );
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
    if cluster != me.cluster {
        let reason = format!(
            "cluster name `{}` does not match",
            cluster.chars().take(64).collect::<String>()
        );
        return Err(refuse(framed, reason).await);
    }
    // The client proves first: a stranger gets nothing signed with the secret to
    // guess it from offline.
    let server_nonce: [u8; 32] = rand::rng().random();
    send_plain(
        framed,
        &PlainHandshake::Challenge {
            nonce: server_nonce,
        },
    )
    .await?;
    let client_proof = match recv_plain(framed).await? {
        PlainHandshake::Proof { proof } => proof,
        other => {
            return Err(LinkError::BadFrame(format!(
                "expected proof, got {other:?}"
            )))
        }
    };
    let sign = |tag: &[u8]| {
        proof(
            &me.secret,
            tag,
            &cluster,
            &from,
            &client_nonce,
            &server_nonce,
        )
    };
    if !verify(&sign(b"client"), &client_proof) {
        return Err(refuse(framed, "wrong cluster secret".into()).await);
    }
    send_plain(
        framed,
        &PlainHandshake::Accepted {
            proof: sign(b"server"),
        },
    )
    .await?;
    Ok(from)
}
