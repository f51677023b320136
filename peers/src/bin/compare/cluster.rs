//! One cluster of one system as OS processes on 127.0.0.1, and what its members see.
//!
//! Every member reports its view of every peer with a timestamp (ms since the epoch,
//! taken by the member itself): our nodes through their WebSocket event stream
//! (`at_ms`), the agents on stdout. The harness keeps every event and each
//! observer's current view, so the figures come from the members' own clocks rather
//! than from when the harness happened to look.

use peers::now_ms;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The three systems compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum System {
    Ours,
    Foca,
    Chitchat,
}

impl System {
    pub const ALL: [System; 3] = [System::Ours, System::Foca, System::Chitchat];

    pub fn name(self) -> &'static str {
        match self {
            System::Ours => "ours",
            System::Foca => "foca",
            System::Chitchat => "chitchat",
        }
    }
}

/// The two timing profiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Profile {
    Defaults,
    Common,
}

impl Profile {
    pub const ALL: [Profile; 2] = [Profile::Defaults, Profile::Common];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Defaults => "defaults",
            Profile::Common => "common",
        }
    }
}

/// An observer's view of a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A member, not (yet) Up (ours: Joining / WeaklyUp).
    Known,
    /// Alive: Up and reachable (ours), alive (foca), live (chitchat).
    Alive,
    /// Suspected: unreachable (ours), suspect (foca).
    Suspect,
    /// Declared down: Down (ours), down (foca), dead (chitchat).
    Down,
    /// Gone from the membership.
    Removed,
}

/// One change of one observer's view.
#[derive(Clone, Debug)]
pub struct Event {
    pub observer: String,
    pub peer: String,
    pub kind: Kind,
    pub t: u64,
}

#[derive(Default)]
pub struct Observations {
    pub events: Vec<Event>,
    /// observer -> peer -> (kind, since).
    pub views: HashMap<String, HashMap<String, (Kind, u64)>>,
    /// agent -> (t, cumulative bytes sent) samples.
    pub bytes: HashMap<String, Vec<(u64, u64)>>,
}

impl Observations {
    fn record(&mut self, observer: &str, peer: &str, kind: Kind, t: u64) {
        if observer == peer {
            return;
        }
        let view = self.views.entry(observer.to_string()).or_default();
        if view.get(peer).map(|(k, _)| *k) == Some(kind) {
            return;
        }
        view.insert(peer.to_string(), (kind, t));
        self.events.push(Event {
            observer: observer.to_string(),
            peer: peer.to_string(),
            kind,
            t,
        });
    }

    /// The first event by `observer` about `peer` at or after `since` of one of `kinds`.
    pub fn first(&self, observer: &str, peer: &str, kinds: &[Kind], since: u64) -> Option<u64> {
        self.events
            .iter()
            .filter(|e| e.t >= since && e.observer == observer && e.peer == peer)
            .find(|e| kinds.contains(&e.kind))
            .map(|e| e.t)
    }

    /// The current view, with the time it took that state.
    pub fn view(&self, observer: &str, peer: &str) -> Option<(Kind, u64)> {
        self.views.get(observer)?.get(peer).copied()
    }
}

/// One member process.
pub struct Member {
    pub addr: String,
    pub http: Option<String>,
    pub child: Option<Child>,
    stdin: Option<ChildStdin>,
}

impl Member {
    pub fn signal(&self, name: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .arg(format!("-{name}"))
                .arg(child.id().to_string())
                .status();
        }
    }

    /// Whether the process ended by itself (it is not reaped here: `kill` does that).
    pub fn has_exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.stdin = None;
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.signal("CONT");
        self.kill();
    }
}

/// Binaries and folders the harness uses.
#[derive(Clone)]
pub struct Env {
    pub node: PathBuf,
    pub foca: PathBuf,
    pub chitchat: PathBuf,
    pub work: PathBuf,
}

pub struct Cluster {
    pub system: System,
    pub profile: Profile,
    pub size: usize,
    pub members: Vec<Member>,
    pub obs: Arc<Mutex<Observations>>,
    pub seeds: Vec<String>,
    env: Env,
    tag: String,
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free TCP port")
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}

impl Cluster {
    /// Picks the members' addresses; the first three (or fewer) are the seeds.
    pub fn new(env: &Env, system: System, profile: Profile, size: usize, tag: &str) -> Cluster {
        Cluster {
            system,
            profile,
            size,
            members: Vec::new(),
            obs: Arc::new(Mutex::new(Observations::default())),
            seeds: Vec::new(),
            env: env.clone(),
            tag: tag.to_string(),
        }
    }

    fn allocate(&self) -> (String, Option<String>) {
        match self.system {
            System::Ours => (
                format!("127.0.0.1:{}", free_tcp_port()),
                Some(format!("127.0.0.1:{}", free_tcp_port())),
            ),
            _ => (format!("127.0.0.1:{}", free_udp_port()), None),
        }
    }

    /// Starts `size` members at once; returns the start time (ms since the epoch).
    pub fn start(&mut self) -> u64 {
        let planned: Vec<(String, Option<String>)> =
            (0..self.size).map(|_| self.allocate()).collect();
        self.seeds = planned.iter().take(3).map(|(a, _)| a.clone()).collect();
        let t0 = now_ms();
        for (addr, http) in planned {
            self.spawn(addr, http);
        }
        t0
    }

    /// Starts one more member (a join); returns its index.
    pub fn join(&mut self) -> usize {
        let (addr, http) = self.allocate();
        self.spawn(addr, http);
        self.members.len() - 1
    }

    fn spawn(&mut self, addr: String, http: Option<String>) {
        let index = self.members.len();
        let log = self.env.work.join(format!("{}-m{index}.log", self.tag));
        let stderr = std::fs::File::create(&log)
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null());
        let member = match self.system {
            System::Ours => self.spawn_node(index, addr, http.expect("an HTTP port"), stderr),
            System::Foca | System::Chitchat => self.spawn_agent(addr, stderr),
        };
        self.members.push(member);
    }

    /// One of our nodes, in demo mode with Akka's timings, watched over its event stream.
    fn spawn_node(&self, index: usize, addr: String, http: String, stderr: Stdio) -> Member {
        let store = self.env.work.join(format!("{}-m{index}-store", self.tag));
        let seeds = self.seeds.join(",");
        let mut cmd = Command::new(&self.env.node);
        cmd.args(["run", "--bind", &addr, "--http", &http, "--seeds", &seeds])
            .args([
                "--demo",
                "true",
                "--synthetic-data",
                "true",
                "--profile",
                "akka",
            ]);
        if self.profile == Profile::Common {
            // Akka's defaults already beat once a second (said explicitly). Each member
            // is watched by three monitors rather than Akka's nine: SWIM probes each
            // member about once a period, and three observers still outvote one slow
            // or lossy monitor. A late heartbeat is probed through three helpers, as
            // SWIM's ping-req (foca's default too), and a view that all monitors
            // corroborate is stable after 5 s (ALGORITHM.md sections 9 and 10).
            cmd.args([
                "--heartbeat-interval-ms",
                "1000",
                "--gossip-interval-ms",
                "1000",
                "--monitored-by-nr-of-members",
                "3",
                "--indirect-probe-helpers",
                "3",
                // Run 7's corroborated wait (the pause and two beats), which is off by
                // default since seed 43386440808 found a split brain with it.
                "--corroborated-stable-after-ms",
                "5000",
            ]);
        }
        cmd.arg("--store").arg(&store);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("node starts");
        let obs = Arc::clone(&self.obs);
        let (me, url) = (addr.clone(), format!("ws://{http}/ws"));
        std::thread::spawn(move || watch_node(&me, &url, &obs));
        Member {
            addr,
            http: Some(http),
            child: Some(child),
            stdin: None,
        }
    }

    /// A foca or chitchat agent, watched over its standard output.
    fn spawn_agent(&self, addr: String, stderr: Stdio) -> Member {
        let binary = if self.system == System::Foca {
            &self.env.foca
        } else {
            &self.env.chitchat
        };
        let seeds = self.seeds.join(",");
        let mut child = Command::new(binary)
            .args([
                "--bind",
                &addr,
                "--seeds",
                &seeds,
                "--profile",
                self.profile.name(),
            ])
            .args(["--cluster-size", &self.size.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("agent starts");
        let stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take();
        let obs = Arc::clone(&self.obs);
        let me = addr.clone();
        std::thread::spawn(move || watch_agent(&me, stdout, &obs));
        Member {
            addr,
            http: None,
            child: Some(child),
            stdin,
        }
    }

    /// Indices of members whose process runs.
    pub fn running(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|i| self.members[*i].running())
            .collect()
    }

    /// Whether every running member sees every other running member Alive; if so, the
    /// latest time any of those views became Alive.
    pub fn all_see_all(&self) -> Option<u64> {
        let live = self.running();
        let obs = self.obs.lock().expect("obs");
        let mut latest = 0;
        for &o in &live {
            for &p in &live {
                if o == p {
                    continue;
                }
                match obs.view(&self.members[o].addr, &self.members[p].addr) {
                    Some((Kind::Alive, t)) => latest = latest.max(t),
                    _ => return None,
                }
            }
        }
        Some(latest)
    }

    /// Cuts `victim` off from every other member: the cut is applied in the victim's
    /// own transport, both directions, one link per peer.
    pub fn cut_off(&mut self, victim: usize) {
        let peers: Vec<String> = (0..self.members.len())
            .filter(|i| *i != victim)
            .map(|i| self.members[i].addr.clone())
            .collect();
        let member = &mut self.members[victim];
        match self.system {
            System::Ours => {
                let http = member.http.clone().expect("http");
                for peer in peers {
                    let body =
                        format!("{{\"peer\":\"{peer}\",\"cutOutbound\":true,\"cutInbound\":true}}");
                    let _ = http_request(&http, "POST", "/faults/links", Some(&body));
                }
            }
            _ => {
                if let Some(stdin) = member.stdin.as_mut() {
                    for peer in peers {
                        let _ = writeln!(stdin, "cut {peer}");
                    }
                    let _ = stdin.flush();
                }
            }
        }
    }

    /// Makes every link of `victim` drop each message with probability `loss`, both
    /// ways: ours through the link faults of the victim's transport (outbound) and of
    /// each peer's towards it; the agents in the victim's own transport, which drops
    /// datagrams to and from any peer. `loss` 0 heals.
    pub fn set_loss(&mut self, victim: usize, loss: f64) {
        match self.system {
            System::Ours => {
                let addr = |i: usize| self.members[i].addr.clone();
                let fault = |peer: String| format!("{{\"peer\":\"{peer}\",\"loss\":{loss}}}");
                for i in (0..self.members.len()).filter(|i| *i != victim) {
                    for (from, to) in [(victim, i), (i, victim)] {
                        if let Some(http) = self.members[from].http.clone() {
                            let body = fault(addr(to));
                            let _ = http_request(&http, "POST", "/faults/links", Some(&body));
                        }
                    }
                }
            }
            _ => {
                if let Some(stdin) = self.members[victim].stdin.as_mut() {
                    let _ = writeln!(stdin, "loss {loss}");
                    let _ = stdin.flush();
                }
            }
        }
    }

    /// Cumulative membership bytes sent by a member, with the time of the count.
    pub fn bytes_sent(&self, index: usize) -> Option<(u64, u64)> {
        let member = &self.members[index];
        match self.system {
            System::Ours => {
                let text = http_request(member.http.as_ref()?, "GET", "/metrics", None)?;
                let t = now_ms();
                let mut total = 0u64;
                for line in text.lines() {
                    let Some(rest) = line.strip_prefix("cluster_bytes_total{") else {
                        continue;
                    };
                    if !rest.contains("direction=\"sent\"") || rest.contains("kind=\"svc_") {
                        continue;
                    }
                    total += line
                        .rsplit(' ')
                        .next()
                        .and_then(|v| v.parse::<f64>().ok())
                        .unwrap_or(0.0) as u64;
                }
                Some((t, total))
            }
            _ => {
                let obs = self.obs.lock().expect("obs");
                obs.bytes.get(&member.addr)?.last().copied()
            }
        }
    }

    /// Polls `done` every 20 ms for up to `limit`.
    pub fn wait(&self, limit: Duration, mut done: impl FnMut(&Cluster) -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if done(self) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn kill_all(&mut self) {
        for m in &mut self.members {
            m.signal("CONT");
            m.kill();
        }
    }
}

/// A one-shot HTTP/1.1 request; the body of the reply.
pub fn http_request(address: &str, method: &str, path: &str, body: Option<&str>) -> Option<String> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let body = body.unwrap_or("");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 2") {
        return None;
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = rest;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            if size == 0 || tail.len() < size {
                break;
            }
            out.push_str(&tail[..size]);
            rest = tail[size..].strip_prefix("\r\n").unwrap_or(&tail[size..]);
        }
        Some(out)
    } else {
        Some(rest.to_string())
    }
}

fn watch_agent(me: &str, stdout: impl Read, obs: &Mutex<Observations>) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let t = v["t"].as_u64().unwrap_or_else(now_ms);
        let mut obs = obs.lock().expect("obs");
        match v["ev"].as_str() {
            Some("bytes") => {
                let sent = v["sent"].as_u64().unwrap_or(0);
                obs.bytes.entry(me.to_string()).or_default().push((t, sent));
            }
            Some(kind) => {
                let kind = match kind {
                    "alive" => Kind::Alive,
                    "suspect" => Kind::Suspect,
                    "down" => Kind::Down,
                    "removed" => Kind::Removed,
                    _ => continue,
                };
                if let Some(peer) = v["peer"].as_str() {
                    obs.record(me, peer, kind, t);
                }
            }
            None => {}
        }
    }
}

fn member_addr(member: &serde_json::Value) -> Option<String> {
    let a = &member["node"]["address"];
    Some(format!("{}:{}", a["host"].as_str()?, a["port"].as_u64()?))
}

fn status_kind(status: &str) -> Kind {
    match status {
        "Up" => Kind::Alive,
        "Down" => Kind::Down,
        "Removed" => Kind::Removed,
        _ => Kind::Known,
    }
}

fn watch_node(me: &str, url: &str, obs: &Mutex<Observations>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut socket = loop {
        match tungstenite::connect(url) {
            Ok((socket, _)) => break socket,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(_) => return,
        }
    };
    while let Ok(message) = socket.read() {
        let tungstenite::Message::Text(text) = message else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(text.as_str()) else {
            continue;
        };
        let mut obs = obs.lock().expect("obs");
        match v["type"].as_str() {
            Some("snapshot") => {
                let t = now_ms();
                let snap = &v["snapshot"];
                let unreachable: Vec<String> = snap["unreachable"]
                    .as_array()
                    .map(|u| u.iter().filter_map(member_addr).collect())
                    .unwrap_or_default();
                for m in snap["members"].as_array().into_iter().flatten() {
                    let Some(peer) = member_addr(m) else { continue };
                    let mut kind = status_kind(m["status"].as_str().unwrap_or(""));
                    if unreachable.contains(&peer) && kind == Kind::Alive {
                        kind = Kind::Suspect;
                    }
                    obs.record(me, &peer, kind, t);
                }
            }
            Some("event") => {
                let t = v["at_ms"].as_u64().unwrap_or_else(now_ms);
                let event = &v["event"];
                let member = &event["member"];
                let Some(peer) = member_addr(member) else {
                    continue;
                };
                let status = status_kind(member["status"].as_str().unwrap_or(""));
                let kind = match event["type"].as_str().unwrap_or("") {
                    "UnreachableMember" => Kind::Suspect,
                    "ReachableMember" | "MemberUp" | "MemberWeaklyUp" | "MemberJoined" => status,
                    "MemberDowned" => Kind::Down,
                    "MemberRemoved" => Kind::Removed,
                    _ => continue,
                };
                obs.record(me, &peer, kind, t);
            }
            _ => {}
        }
    }
}
