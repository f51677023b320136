//! Test support: a man-in-the-middle relay on loopback. It accepts connections on its
//! own port and forwards each to the target, reading the length-delimited frames that
//! go toward the target (a big-endian length, 4 bytes for the handshake and 2 for the
//! sealed frames after it, then the bytes) so that it can,
//! when told, alter the next frame after the handshake: flip one byte, send an earlier
//! frame again, or cut a frame short and close. Frames the other way pass untouched.

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What to do to the next frame after the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tamper {
    /// Flip one bit in the middle of it.
    Flip,
    /// Forward it, then forward the frame before it again.
    Replay,
    /// Forward its length and half its bytes, then close both ends.
    Truncate,
}

/// A running relay.
pub struct Mitm {
    /// Its port on 127.0.0.1.
    pub port: u16,
    armed: Arc<Mutex<Option<Tamper>>>,
    done: Arc<Mutex<Vec<Tamper>>>,
}

impl Mitm {
    /// Listens on a free port and forwards to `target` (`host:port`), on `rt`.
    pub fn start(rt: &tokio::runtime::Runtime, target: String) -> Mitm {
        let listener = rt
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("relay port");
        let port = listener.local_addr().expect("address").port();
        let armed: Arc<Mutex<Option<Tamper>>> = Arc::default();
        let done: Arc<Mutex<Vec<Tamper>>> = Arc::default();
        let (armed2, done2) = (Arc::clone(&armed), Arc::clone(&done));
        rt.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (target, armed, done) = (target.clone(), armed2.clone(), done2.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&target).await {
                        relay(client, server, armed, done).await;
                    }
                });
            }
        });
        Mitm { port, armed, done }
    }

    /// Alters the next frame after a handshake, on whichever connection sends one.
    pub fn arm(&self, tamper: Tamper) {
        *self.armed.lock().unwrap() = Some(tamper);
    }

    /// The alterations made so far.
    pub fn done(&self) -> Vec<Tamper> {
        self.done.lock().unwrap().clone()
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    armed: Arc<Mutex<Option<Tamper>>>,
    done: Arc<Mutex<Vec<Tamper>>>,
) {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    // Set once the target closed its side: a frame read after that is not tampered
    // with (it would never reach the target).
    let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let closed2 = Arc::clone(&closed);
    let back = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
        closed2.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let mut index = 0usize;
    let mut previous: Option<Vec<u8>> = None;
    loop {
        // The handshake's frame has a 4-byte length, the sealed ones after it 2 bytes.
        let mut length = vec![0u8; if index == 0 { 4 } else { 2 }];
        if from_client.read_exact(&mut length).await.is_err() {
            break;
        }
        let size = length.iter().fold(0usize, |n, b| n << 8 | *b as usize);
        let mut frame = vec![0u8; size];
        if from_client.read_exact(&mut frame).await.is_err() {
            break;
        }
        // Only sealed frames with one before them on this connection (a replay needs
        // an earlier one to send again).
        if closed.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        let tamper = if previous.is_some() && !frame.is_empty() {
            armed.lock().unwrap().take()
        } else {
            None
        };
        index += 1;
        let mut out = length.clone();
        match tamper {
            None => out.extend_from_slice(&frame),
            Some(Tamper::Flip) => {
                let mut flipped = frame.clone();
                flipped[frame.len() / 2] ^= 0x10;
                out.extend_from_slice(&flipped);
            }
            Some(Tamper::Replay) => {
                out.extend_from_slice(&frame);
                if let Some(earlier) = &previous {
                    out.extend_from_slice(&(earlier.len() as u16).to_be_bytes());
                    out.extend_from_slice(earlier);
                }
            }
            Some(Tamper::Truncate) => out.extend_from_slice(&frame[..frame.len() / 2]),
        }
        if let Some(t) = tamper {
            done.lock().unwrap().push(t);
        }
        if to_server.write_all(&out).await.is_err() || tamper == Some(Tamper::Truncate) {
            break;
        }
        if index > 1 {
            previous = Some(frame);
        }
    }
    let _ = to_server.shutdown().await;
    back.abort();
}
