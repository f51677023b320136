//! Encrypted, authenticated links between nodes: the Noise protocol
//! (`Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s`, by the `snow` crate) with a pre-shared key
//! derived from a cluster key and the cluster name.
//!
//! - **Handshake.** The connecting side sends the first Noise message, already
//!   encrypted under the pre-shared key, carrying its protocol version and address.
//!   The accepting side tries each installed key (a keyring, as Serf's: several keys are
//!   accepted, the primary one is used for new connections). A first message that opens
//!   under none is a plaintext peer, a peer with another key or cluster name, or a
//!   stranger; the connection is closed without a word, so a stranger learns nothing.
//! - **Frames.** After the handshake every frame is sealed with ChaCha20-Poly1305 under
//!   the session's keys (`ring`'s implementation, by snow's `ring-accelerated` resolver:
//!   several times faster on small frames than the default one). Nonces are counters
//!   that Noise never reuses, and a receiver expects them in order, so a flipped byte, a replayed or a reordered frame fails to
//!   open and the connection is dropped. Frames are records of a byte stream cut into
//!   Noise messages of at most 64 KiB, so a batch shares its messages and a larger
//!   frame spans several.
//!
//! Why Noise and not mutual TLS: every node already shares the cluster secret, so a
//! pre-shared-key handshake needs no certificate authority, no certificates to issue,
//! renew or revoke, and no clock; rotation is Serf's keyring. TLS would add a PKI to
//! run for the same guarantee between nodes that trust one secret.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use snow::{HandshakeState, TransportState};

/// The Noise protocol name.
pub const PATTERN: &str = "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s";
/// Largest Noise message.
const MAX_MESSAGE: usize = 65_535;
/// The authentication tag each sealed message carries.
const TAG: usize = 16;
/// Plaintext bytes per sealed message.
const CHUNK: usize = MAX_MESSAGE - TAG;

/// Why a handshake or a frame failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoiseError {
    /// The first handshake message opens under no installed key.
    #[error("the handshake opens under no installed key: a plaintext peer, another cluster's key, or a stranger")]
    NoKey,
    /// A handshake message is malformed or does not authenticate.
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// A frame does not authenticate: flipped, replayed, reordered or cut.
    #[error("a frame failed to authenticate (altered, replayed, reordered or truncated)")]
    Tampered,
    /// A frame grew past the limit while reassembling.
    #[error("frame larger than {0} bytes")]
    TooLarge(usize),
}

/// A cluster key: its fingerprint (safe to show) and the pre-shared key it gives.
#[derive(Clone)]
pub struct Key {
    /// First 8 bytes of SHA-256 over the derived key, in hex.
    pub id: String,
    psk: [u8; 32],
}

impl Key {
    /// The key for `cluster` from a secret phrase.
    pub fn derive(secret: &str, cluster: &str) -> Key {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("any length");
        mac.update(b"globomantics-noise-psk-v1:");
        mac.update(cluster.as_bytes());
        let psk: [u8; 32] = mac.finalize().into_bytes().into();
        let digest = <Sha256 as sha2::Digest>::digest(psk);
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Key { id, psk }
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.id)
    }
}

fn builder(key: &Key) -> snow::Builder<'_> {
    snow::Builder::new(PATTERN.parse().expect("a valid Noise pattern")).psk(0, &key.psk)
}

fn handshake_error(e: snow::Error) -> NoiseError {
    NoiseError::Handshake(e.to_string())
}

/// The connecting side: its first message (carrying `payload`), and the state that
/// reads the answer.
pub fn initiate(key: &Key, payload: &[u8]) -> Result<(HandshakeState, Vec<u8>), NoiseError> {
    let mut state = builder(key).build_initiator().map_err(handshake_error)?;
    let mut message = vec![0u8; MAX_MESSAGE];
    let n = state
        .write_message(payload, &mut message)
        .map_err(handshake_error)?;
    message.truncate(n);
    Ok((state, message))
}

/// The connecting side reads the answer: the session, and the answer's payload.
pub fn finish(mut state: HandshakeState, answer: &[u8]) -> Result<(Session, Vec<u8>), NoiseError> {
    let mut payload = vec![0u8; MAX_MESSAGE];
    let n = state
        .read_message(answer, &mut payload)
        .map_err(handshake_error)?;
    payload.truncate(n);
    let transport = state.into_transport_mode().map_err(handshake_error)?;
    Ok((Session::new(transport), payload))
}

/// The accepting side: the first message under one of `keys`; the id of the key that
/// opened it, the payload, and a closure that answers with a payload.
pub fn respond(keys: &[Key], first: &[u8]) -> Result<Responder, NoiseError> {
    for key in keys {
        let mut state = builder(key).build_responder().map_err(handshake_error)?;
        let mut payload = vec![0u8; MAX_MESSAGE];
        if let Ok(n) = state.read_message(first, &mut payload) {
            payload.truncate(n);
            return Ok(Responder {
                state,
                key: key.id.clone(),
                payload,
            });
        }
    }
    Err(NoiseError::NoKey)
}

/// An accepted first message, waiting for the answer.
pub struct Responder {
    state: HandshakeState,
    /// The key that opened it.
    pub key: String,
    /// What the connecting side sent with it.
    pub payload: Vec<u8>,
}

impl Responder {
    /// The answer carrying `payload`, and the session.
    pub fn answer(mut self, payload: &[u8]) -> Result<(Session, Vec<u8>), NoiseError> {
        let mut message = vec![0u8; MAX_MESSAGE];
        let n = self
            .state
            .write_message(payload, &mut message)
            .map_err(handshake_error)?;
        message.truncate(n);
        let transport = self.state.into_transport_mode().map_err(handshake_error)?;
        Ok((Session::new(transport), message))
    }
}

/// One direction-pair of sealed frames after the handshake.
///
/// Frames travel as a byte stream of records (a LEB128 length, then the frame), cut
/// into sealed messages of at most 64 KiB: what a batch writes at once shares its
/// messages (one tag and one cipher setup per message, not per frame), and a frame
/// larger than a message spans several.
pub struct Session {
    transport: TransportState,
    assembling: Vec<u8>,
}

/// Appends `n` as LEB128.
fn put_length(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A LEB128 length at the start of `bytes`: (length, bytes it took), or None if
/// incomplete; an error past 5 bytes.
fn take_length(bytes: &[u8]) -> Result<Option<(usize, usize)>, NoiseError> {
    let mut n = 0usize;
    for (i, byte) in bytes.iter().enumerate().take(5) {
        n |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((n, i + 1)));
        }
    }
    if bytes.len() >= 5 {
        return Err(NoiseError::Tampered);
    }
    Ok(None)
}

impl Session {
    fn new(transport: TransportState) -> Session {
        Session {
            transport,
            assembling: Vec::new(),
        }
    }

    /// `frames` as sealed messages, in order.
    pub fn seal(&mut self, frames: &[&[u8]]) -> Vec<Vec<u8>> {
        let total: usize = frames.iter().map(|f| f.len() + 5).sum();
        let mut stream = Vec::with_capacity(total);
        for frame in frames {
            put_length(&mut stream, frame.len());
            stream.extend_from_slice(frame);
        }
        stream
            .chunks(CHUNK)
            .map(|chunk| {
                let mut sealed = vec![0u8; chunk.len() + TAG];
                let n = self
                    .transport
                    .write_message(chunk, &mut sealed)
                    .expect("a chunk fits one Noise message");
                sealed.truncate(n);
                sealed
            })
            .collect()
    }

    /// Opens one sealed message; the frames it completes (none, one or several).
    pub fn open(&mut self, sealed: &[u8], limit: usize) -> Result<Vec<Vec<u8>>, NoiseError> {
        let held = self.assembling.len();
        self.assembling.resize(held + sealed.len(), 0);
        let opened = self
            .transport
            .read_message(sealed, &mut self.assembling[held..]);
        let Ok(n) = opened else {
            self.assembling.truncate(held);
            return Err(NoiseError::Tampered);
        };
        self.assembling.truncate(held + n);
        let mut frames = Vec::new();
        let mut at = 0;
        while let Some((length, header)) = take_length(&self.assembling[at..])? {
            if length > limit {
                return Err(NoiseError::TooLarge(limit));
            }
            let end = at + header + length;
            if end > self.assembling.len() {
                break;
            }
            frames.push(self.assembling[at + header..end].to_vec());
            at = end;
        }
        self.assembling.drain(..at);
        Ok(frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(client: &Key, keyring: &[Key]) -> Result<(Session, Session), NoiseError> {
        let (state, first) = initiate(client, b"hello")?;
        let responder = respond(keyring, &first)?;
        assert_eq!(responder.payload, b"hello");
        let (server, answer) = responder.answer(b"welcome")?;
        let (client, payload) = finish(state, &answer)?;
        assert_eq!(payload, b"welcome");
        Ok((client, server))
    }

    #[test]
    fn frames_travel_sealed_and_a_large_one_in_chunks() {
        let key = Key::derive("s3cret", "c");
        let (mut a, mut b) = pair(&key, std::slice::from_ref(&key)).unwrap();
        let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        for frame in [&b"gossip"[..], &big[..], &[][..]] {
            let sealed = a.seal(&[frame]);
            assert!(sealed.iter().all(|m| !m.windows(6).any(|w| w == b"gossip")));
            let mut got = Vec::new();
            for m in &sealed {
                got.extend(b.open(m, 1 << 22).unwrap());
            }
            assert_eq!(got, vec![frame.to_vec()]);
        }
        let batch = a.seal(&[b"one", b"two", b"three"]);
        assert_eq!(batch.len(), 1, "a batch shares one message");
        assert_eq!(b.open(&batch[0], 1 << 20).unwrap().len(), 3);
        let oversized = a.seal(&[&big[..]]);
        assert_eq!(b.open(&oversized[0], 1000), Err(NoiseError::TooLarge(1000)));
    }

    #[test]
    fn a_flipped_replayed_or_reordered_frame_fails_to_open() {
        let key = Key::derive("s3cret", "c");
        let (mut a, mut b) = pair(&key, std::slice::from_ref(&key)).unwrap();
        let first = a.seal(&[b"one"]).remove(0);
        let mut flipped = first.clone();
        flipped[3] ^= 1;
        assert_eq!(b.open(&flipped, 1 << 20), Err(NoiseError::Tampered));
        let (mut a, mut b) = pair(&key, std::slice::from_ref(&key)).unwrap();
        let first = a.seal(&[b"one"]).remove(0);
        let _ = a.seal(&[b"two"]);
        assert_eq!(b.open(&first, 1 << 20).unwrap().len(), 1);
        assert_eq!(
            b.open(&first, 1 << 20),
            Err(NoiseError::Tampered),
            "replayed"
        );
        let (mut a, mut b) = pair(&key, std::slice::from_ref(&key)).unwrap();
        let _ = a.seal(&[b"one"]);
        let two = a.seal(&[b"two"]).remove(0);
        assert_eq!(
            b.open(&two, 1 << 20),
            Err(NoiseError::Tampered),
            "reordered"
        );
    }

    #[test]
    fn the_keyring_accepts_any_installed_key_and_nothing_else() {
        let old = Key::derive("old", "c");
        let new = Key::derive("new", "c");
        assert!(pair(&old, &[new.clone(), old.clone()]).is_ok());
        assert!(pair(&new, &[new.clone(), old.clone()]).is_ok());
        assert!(matches!(
            pair(&old, std::slice::from_ref(&new)),
            Err(NoiseError::NoKey)
        ));
        let other_cluster = Key::derive("old", "d");
        assert!(matches!(
            pair(&other_cluster, std::slice::from_ref(&old)),
            Err(NoiseError::NoKey)
        ));
        assert_ne!(old.id, new.id);
        assert!(
            !format!("{old:?}").contains("old"),
            "the debug form shows the id only"
        );
    }
}
