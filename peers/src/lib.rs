//! Plumbing shared by the two loopback agents (`foca-agent`, `chitchat-agent`): the
//! per-link cut set their transports consult, the byte counters their transports
//! update, and the line protocol they speak with the `compare` harness.
//!
//! Protocol, one JSON object per line on stdout, `t` in ms since the Unix epoch:
//! `{"t":..,"ev":"ready","addr":"127.0.0.1:P"}` once bound;
//! `{"t":..,"ev":"alive"|"suspect"|"down"|"removed","peer":"127.0.0.1:P"}` whenever the
//! agent's view of a peer changes; `{"t":..,"ev":"bytes","sent":N,"recv":N}` every
//! second (cumulative UDP payload bytes counted in the transport).
//! On stdin: `cut 127.0.0.1:P` drops every datagram to and from that peer (both
//! directions, in this agent's transport), `loss P` drops each datagram to or from any
//! peer with probability P (0 to 1), `heal` clears all cuts, `quit` (or end of input)
//! exits.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (the clock every system's events are stamped with).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Cuts and counters shared between an agent's transport and its control thread.
#[derive(Default)]
pub struct Link {
    cuts: Mutex<HashSet<SocketAddr>>,
    /// The probability of dropping each datagram, in millionths.
    loss_ppm: AtomicU64,
    sent: AtomicU64,
    recv: AtomicU64,
}

impl Link {
    /// Whether traffic to and from `peer` is dropped.
    pub fn is_cut(&self, peer: &SocketAddr) -> bool {
        self.cuts.lock().expect("cuts").contains(peer)
    }

    /// Whether this datagram to or from `peer` is dropped: the link is cut, or the
    /// loss set by `loss P` strikes.
    pub fn drops(&self, peer: &SocketAddr) -> bool {
        let ppm = self.loss_ppm.load(Ordering::Relaxed);
        self.is_cut(peer) || (ppm > 0 && rand::random_range(0..1_000_000) < ppm)
    }

    /// Counts a datagram's payload as sent.
    pub fn count_sent(&self, bytes: usize) {
        self.sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts a datagram's payload as received.
    pub fn count_recv(&self, bytes: usize) {
        self.recv.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// Writes one protocol line to stdout.
pub fn emit(line: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Reports a change in this agent's view of `peer`.
pub fn view(kind: &str, peer: SocketAddr) {
    emit(serde_json::json!({ "t": now_ms(), "ev": kind, "peer": peer.to_string() }));
}

/// Starts the control thread (stdin commands) and the byte reporter; announces `ready`.
pub fn start(bound: SocketAddr) -> Arc<Link> {
    let link = Arc::new(Link::default());
    let control = Arc::clone(&link);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("cut"), Some(peer)) => {
                    if let Ok(peer) = peer.parse() {
                        control.cuts.lock().expect("cuts").insert(peer);
                    }
                }
                (Some("loss"), Some(p)) => {
                    if let Ok(p) = p.parse::<f64>() {
                        let ppm = (p.clamp(0.0, 1.0) * 1e6) as u64;
                        control.loss_ppm.store(ppm, Ordering::Relaxed);
                    }
                }
                (Some("heal"), _) => control.cuts.lock().expect("cuts").clear(),
                (Some("quit"), _) => break,
                _ => {}
            }
        }
        // The harness went away (or said quit): never outlive it.
        std::process::exit(0);
    });
    let counters = Arc::clone(&link);
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_secs(1));
        emit(serde_json::json!({
            "t": now_ms(),
            "ev": "bytes",
            "sent": counters.sent.load(Ordering::Relaxed),
            "recv": counters.recv.load(Ordering::Relaxed),
        }));
    });
    emit(serde_json::json!({ "t": now_ms(), "ev": "ready", "addr": bound.to_string() }));
    link
}

/// Command-line flags common to both agents.
#[derive(Debug, Clone)]
pub struct AgentArgs {
    /// UDP address to bind (and to be known by).
    pub bind: SocketAddr,
    /// Seed addresses to contact at start.
    pub seeds: Vec<SocketAddr>,
    /// `defaults` or `common`.
    pub profile: String,
    /// Expected cluster size (foca's LAN preset scales with it).
    pub cluster_size: u32,
}

impl AgentArgs {
    /// Parses `--bind A --seeds a,b --profile defaults|common --cluster-size N`.
    pub fn parse() -> Result<AgentArgs, String> {
        let mut bind = None;
        let mut seeds = Vec::new();
        let mut profile = "defaults".to_string();
        let mut cluster_size = 3;
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--bind" => bind = Some(value.parse().map_err(|e| format!("--bind: {e}"))?),
                "--seeds" => {
                    seeds = value
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(|s| s.parse().map_err(|e| format!("--seeds: {e}")))
                        .collect::<Result<_, _>>()?
                }
                "--profile" if value == "defaults" || value == "common" => profile = value,
                "--cluster-size" => {
                    cluster_size = value.parse().map_err(|e| format!("--cluster-size: {e}"))?
                }
                _ => return Err(format!("unknown flag or value: {flag} {value}")),
            }
        }
        Ok(AgentArgs {
            bind: bind.ok_or("--bind is required")?,
            seeds,
            profile,
            cluster_size: cluster_size.max(1),
        })
    }
}
