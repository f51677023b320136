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
//!   the session's keys. Nonces are counters that Noise never reuses, and a receiver
//!   expects them in order, so a flipped byte, a replayed or a reordered frame fails to
//!   open and the connection is dropped. A frame larger than one Noise message (64 KiB)
//!   travels as several, each marked whether more follow.
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
/// Plaintext bytes per sealed message: one byte says whether more follow.
const CHUNK: usize = MAX_MESSAGE - TAG - 1;

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
pub struct Session {
    transport: TransportState,
    assembling: Vec<u8>,
}

impl Session {
    fn new(transport: TransportState) -> Session {
        Session {
            transport,
            assembling: Vec::new(),
        }
    }

    /// `frame` as sealed messages, in order.
    pub fn seal(&mut self, frame: &[u8]) -> Vec<Vec<u8>> {
        let chunks: Vec<&[u8]> = if frame.is_empty() {
            vec![&[]]
        } else {
            frame.chunks(CHUNK).collect()
        };
        let last = chunks.len() - 1;
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, chunk)| {
                let mut plain = Vec::with_capacity(chunk.len() + 1);
                plain.push(u8::from(i < last));
                plain.extend_from_slice(chunk);
                let mut sealed = vec![0u8; plain.len() + TAG];
                let n = self
                    .transport
                    .write_message(&plain, &mut sealed)
                    .expect("a chunk fits one Noise message");
                sealed.truncate(n);
                sealed
            })
            .collect()
    }

    /// Opens one sealed message; the whole frame once its last chunk is in.
    pub fn open(&mut self, sealed: &[u8], limit: usize) -> Result<Option<Vec<u8>>, NoiseError> {
        let mut plain = vec![0u8; sealed.len()];
        let n = self
            .transport
            .read_message(sealed, &mut plain)
            .map_err(|_| NoiseError::Tampered)?;
        let (more, data) = match plain[..n].split_first() {
            Some((more, data)) => (*more, data),
            None => return Err(NoiseError::Tampered),
        };
        if self.assembling.len() + data.len() > limit {
            return Err(NoiseError::TooLarge(limit));
        }
        self.assembling.extend_from_slice(data);
        match more {
            0 => Ok(Some(std::mem::take(&mut self.assembling))),
            1 => Ok(None),
            _ => Err(NoiseError::Tampered),
        }
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
            let sealed = a.seal(frame);
            assert!(sealed.iter().all(|m| !m.windows(6).any(|w| w == b"gossip")));
            let mut got = None;
            for m in &sealed {
                got = b.open(m, 1 << 22).unwrap();
            }
            assert_eq!(got.as_deref(), Some(frame));
        }
    }

    #[test]
    fn a_flipped_replayed_or_reordered_frame_fails_to_open() {
        let key = Key::derive("s3cret", "c");
        let (mut a, mut b) = pair(&key, std::slice::from_ref(&key)).unwrap();
        let first = a.seal(b"one").remove(0);
        let mut flipped = first.clone();
        flipped[3] ^= 1;
        assert_eq!(b.open(&flipped, 1 << 20), Err(NoiseError::Tampered));
        let (mut a, mut b) = pair(&key, std::slice::from_ref(&key)).unwrap();
        let first = a.seal(b"one").remove(0);
        let _ = a.seal(b"two");
        assert!(b.open(&first, 1 << 20).unwrap().is_some());
        assert_eq!(
            b.open(&first, 1 << 20),
            Err(NoiseError::Tampered),
            "replayed"
        );
        let (mut a, mut b) = pair(&key, std::slice::from_ref(&key)).unwrap();
        let _ = a.seal(b"one");
        let two = a.seal(b"two").remove(0);
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
