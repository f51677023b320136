//! The demo launcher (`node demo`): starts N node processes on loopback in the demo
//! profile, supervises them, and offers the actions a node cannot take on itself
//! (restart, resume, add a node) through a small HTTP API for the dashboard
//! (`api.rs`), which also relays the nodes' own fault and membership actions.
//!
//! Supervision is what Kubernetes would do: a node that exits because it was downed
//! (or must rejoin) is started again as a new incarnation after a short delay, unless
//! an operator stopped it on purpose. Ctrl-C (or SIGTERM) stops every node and leaves
//! no process behind.
//!
//! In public mode (`--public`) strangers press the buttons: the nodes' own fault
//! endpoints need a token only the launcher holds, every action goes through the
//! launcher's rules (`policy.rs`), and every fault undoes itself.

pub mod api;
pub mod journal;
pub mod policy;
pub mod site;

use crate::tooling::procs::NodeProcess;
use axum::http::StatusCode;
use clap::Args;
use policy::{Limits, Policy, Undo};
use rand::Rng;
use shared::api::{NodeAction, SlotState, SlotView};
use std::fs::File;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most nodes the launcher runs (ports are base + slot).
pub const MAX_SLOTS: usize = 20;

/// `node demo` flags.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// How many nodes to start.
    #[arg(long, env = "DEMO_NODES", default_value_t = 3)]
    pub nodes: usize,
    /// Cluster port of the first node; node i uses base + i.
    #[arg(long, env = "DEMO_CLUSTER_PORT", default_value_t = 2551)]
    pub cluster_port: u16,
    /// HTTP port of the first node; node i uses base + i.
    #[arg(long, env = "DEMO_HTTP_PORT", default_value_t = 8551)]
    pub http_port: u16,
    /// Where the launcher's own API listens.
    #[arg(long, env = "DEMO_LAUNCHER", default_value = "127.0.0.1:8550")]
    pub launcher: std::net::SocketAddr,
    /// Restart nodes that exit on their own (downed, removed), as a supervisor would.
    #[arg(long, env = "DEMO_AUTO_RESTART", default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_restart: bool,
    /// Roles every node gets.
    #[arg(long, env = "DEMO_ROLES", default_value = "api,worker")]
    pub roles: String,
    /// Where node logs go.
    #[arg(long, env = "DEMO_LOGS", default_value = "demo-logs")]
    pub logs: PathBuf,
    /// Where each slot keeps its watch-history store (kept across restarts, like a
    /// persistent volume).
    #[arg(long, env = "DEMO_STATE", default_value = "demo-state")]
    pub state: PathBuf,
    /// Extra flags passed to every `node run` (for example `--synthetic-data true`).
    #[arg(
        long,
        env = "DEMO_NODE_ARGS",
        allow_hyphen_values = true,
        value_delimiter = ' '
    )]
    pub node_args: Vec<String>,
    /// Public mode, for a hosted demo: faults heal themselves, actions are
    /// rate-limited per client, at most a minority of nodes may be impaired at once,
    /// and stopping nodes needs `--operator-token`.
    #[arg(long, env = "DEMO_PUBLIC", default_value_t = false, action = clap::ArgAction::Set)]
    pub public: bool,
    /// Bearer token for operator actions in public mode (at least 8 characters).
    #[arg(long, env = "DEMO_OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: Option<String>,
    /// Public mode: link faults and partitions heal after this many seconds.
    #[arg(long, env = "DEMO_FAULT_TTL_SECS", default_value_t = 30)]
    pub fault_ttl_secs: u64,
    /// Public mode: paused nodes resume after this many seconds.
    #[arg(long, env = "DEMO_PAUSE_MAX_SECS", default_value_t = 20)]
    pub pause_max_secs: u64,
    /// Public mode: actions per client per minute.
    #[arg(long, env = "DEMO_ACTIONS_PER_MINUTE", default_value_t = 12)]
    pub actions_per_minute: u32,
    /// Public mode: nodes visitors may add beyond `--nodes`.
    #[arg(long, env = "DEMO_EXTRA_NODES", default_value_t = 2)]
    pub extra_nodes: usize,
    /// Public mode: service writes per client per minute, through the relay.
    #[arg(long, env = "DEMO_WRITES_PER_MINUTE", default_value_t = 240)]
    pub writes_per_minute: u32,
    /// Reverse proxies whose `X-Forwarded-For` names the visitor (comma-separated
    /// IPs). From anyone else the header is ignored.
    #[arg(long, env = "DEMO_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The built dashboard, served at `/` (the launcher is the demo's one origin).
    #[arg(long, env = "DEMO_WEB_ROOT", default_value = "dist")]
    pub web_root: PathBuf,
}

/// How long a node counts as impaired after an action that disrupts it (the time
/// to be noticed, decided on, restarted and back Up, in the demo profile).
const IMPAIRED_AFTER_ACTION: Duration = Duration::from_secs(15);

struct Slot {
    process: Option<NodeProcess>,
    cluster: String,
    http: String,
    state: SlotState,
    last_exit: Option<i32>,
    exited_at: Option<Instant>,
    starts: u32,
}

impl Slot {
    /// A slot whose first incarnation was just started.
    fn running(process: NodeProcess) -> Slot {
        Slot {
            cluster: process.cluster.clone(),
            http: process.http.clone(),
            process: Some(process),
            state: SlotState::Running,
            last_exit: None,
            exited_at: None,
            starts: 1,
        }
    }
}

/// The supervised processes.
pub struct Launcher {
    args: DemoArgs,
    binary: PathBuf,
    slots: Mutex<Vec<Slot>>,
    /// Public-mode rules (no limits outside public mode).
    pub policy: Mutex<Policy>,
    /// The nodes' admin token in public mode (only the launcher knows it); `None`
    /// when the nodes run in demo mode with open endpoints.
    pub node_token: Option<String>,
    node_secret: Option<String>,
    /// Who the visitors are and what they may open (the relay's limits).
    pub visitors: Arc<crate::cluster::visitors::Visitors>,
    /// What every visitor did, for everyone's timeline.
    pub journal: journal::Journal,
}

fn random_hex() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Launcher {
    /// A launcher for `args.nodes` nodes of `binary` (not started yet).
    pub fn new(args: DemoArgs, binary: PathBuf) -> Arc<Launcher> {
        let limits = args.public.then(|| Limits {
            fault_ttl: Duration::from_secs(args.fault_ttl_secs),
            pause_max: Duration::from_secs(args.pause_max_secs),
            actions_per_minute: args.actions_per_minute,
            extra_nodes: args.extra_nodes,
        });
        let (node_token, node_secret) = if args.public {
            (Some(random_hex()), Some(random_hex()))
        } else {
            (None, None)
        };
        let visitor_limits = if args.public {
            crate::cluster::visitors::VisitorLimits::public(
                args.trusted_proxies.clone(),
                args.writes_per_minute,
            )
        } else {
            crate::cluster::visitors::VisitorLimits {
                trusted_proxies: args.trusted_proxies.clone(),
                ..crate::cluster::visitors::VisitorLimits::open(2000)
            }
        };
        Arc::new(Launcher {
            args,
            binary,
            slots: Mutex::new(Vec::new()),
            policy: Mutex::new(Policy::new(limits)),
            node_token,
            node_secret,
            visitors: crate::cluster::visitors::Visitors::new(visitor_limits),
            journal: journal::Journal::default(),
        })
    }

    /// The flags.
    pub fn args(&self) -> &DemoArgs {
        &self.args
    }

    fn seeds(&self, count: usize) -> String {
        (0..count)
            .map(|i| format!("127.0.0.1:{}", self.args.cluster_port + i as u16))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn(&self, slot: usize, seed_count: usize) -> std::io::Result<NodeProcess> {
        std::fs::create_dir_all(&self.args.logs)?;
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.args.logs.join(format!("n{slot}.log")))?;
        let access: Vec<String> = match (&self.node_token, &self.node_secret) {
            (Some(token), Some(secret)) => vec![
                "--demo".into(),
                "false".into(),
                "--token".into(),
                token.clone(),
                "--secret".into(),
                secret.clone(),
            ],
            _ => vec!["--demo".into(), "true".into()],
        };
        let args: Vec<String> = [
            "--profile",
            "demo",
            "--seeds",
            &self.seeds(seed_count),
            "--roles",
            &self.args.roles,
            "--store",
            &self
                .args
                .state
                .join(format!("n{slot}"))
                .display()
                .to_string(),
            "--launcher",
            &self.args.launcher.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(access)
        .chain(
            self.args
                .node_args
                .iter()
                .filter(|a| !a.is_empty())
                .cloned(),
        )
        .collect();
        NodeProcess::spawn(
            &self.binary,
            format!("127.0.0.1:{}", self.args.cluster_port + slot as u16),
            format!("127.0.0.1:{}", self.args.http_port + slot as u16),
            &args,
            Stdio::from(log),
        )
    }

    /// Starts the initial nodes.
    pub fn start_all(&self) -> std::io::Result<()> {
        let count = self.args.nodes;
        let mut slots = self.slots.lock().expect("slots");
        for i in 0..count {
            let process = self.spawn(i, count)?;
            slots.push(Slot::running(process));
        }
        Ok(())
    }

    /// Every slot.
    pub fn view(&self) -> Vec<SlotView> {
        let slots = self.slots.lock().expect("slots");
        slots
            .iter()
            .enumerate()
            .map(|(i, s)| SlotView {
                slot: i,
                cluster: s.cluster.clone(),
                http: s.http.clone(),
                pid: s.process.as_ref().and_then(NodeProcess::pid),
                state: s.state.clone(),
                last_exit: s.last_exit,
                starts: s.starts,
            })
            .collect()
    }

    /// Applies an action to a slot.
    pub fn act(&self, slot: usize, action: NodeAction) -> Result<String, (StatusCode, String)> {
        let seed_count = self.args.nodes;
        let mut slots = self.slots.lock().expect("slots");
        let s = slots
            .get_mut(slot)
            .ok_or((StatusCode::NOT_FOUND, format!("no slot {slot}")))?;
        let running = s.process.as_ref().and_then(NodeProcess::pid).is_some();
        match action {
            NodeAction::Kill if running => {
                if let Some(p) = s.process.as_mut() {
                    p.kill();
                }
                s.process = None;
                s.state = SlotState::Exited;
                s.exited_at = Some(Instant::now());
                s.last_exit = None;
                Ok(format!("n{slot} killed (SIGKILL)"))
            }
            NodeAction::Pause if running && s.state == SlotState::Running => {
                s.process.as_ref().map(|p| p.signal("STOP"));
                s.state = SlotState::Paused;
                Ok(format!("n{slot} paused (SIGSTOP)"))
            }
            NodeAction::Resume if s.state == SlotState::Paused => {
                s.process.as_ref().map(|p| p.signal("CONT"));
                s.state = SlotState::Running;
                Ok(format!("n{slot} resumed (SIGCONT)"))
            }
            NodeAction::Stop if running => {
                // Ask it to leave, then wait without holding the lock (see `stop_slot`).
                s.process
                    .as_ref()
                    .map(|p| p.signal("CONT") && p.signal("TERM"));
                s.state = SlotState::Stopped;
                let process = s.process.take();
                drop(slots);
                let code = process.and_then(|mut p| {
                    let code = p.wait_exit(Duration::from_secs(20));
                    p.kill();
                    code
                });
                if let Some(s) = self.slots.lock().expect("slots").get_mut(slot) {
                    s.last_exit = code;
                }
                Ok(format!("n{slot} left and stopped (SIGTERM)"))
            }
            NodeAction::Restart => {
                if let Some(p) = s.process.as_mut() {
                    p.kill();
                }
                let process = self
                    .spawn(slot, seed_count)
                    .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
                s.process = Some(process);
                s.state = SlotState::Running;
                s.starts += 1;
                Ok(format!("n{slot} restarted as a new incarnation"))
            }
            NodeAction::Kill | NodeAction::Pause | NodeAction::Resume | NodeAction::Stop => {
                Err((StatusCode::CONFLICT, format!("n{slot} is {:?}", s.state)))
            }
            other => Err((
                StatusCode::BAD_REQUEST,
                format!("`{}` is not a process action", other.name()),
            )),
        }
    }

    /// Adds a node (scale out); returns its slot. A slot added earlier and since
    /// stopped is reused, so adding and retiring nodes forever never runs out.
    pub fn add(&self) -> Result<usize, (StatusCode, String)> {
        let mut slots = self.slots.lock().expect("slots");
        let in_service = slots
            .iter()
            .filter(|s| s.state != SlotState::Stopped)
            .count();
        let cap = match &self.policy.lock().expect("policy").limits {
            Some(limits) => self.args.nodes + limits.extra_nodes,
            None => MAX_SLOTS,
        };
        if in_service >= cap {
            return Err((
                StatusCode::CONFLICT,
                format!("at most {cap} nodes run at once here"),
            ));
        }
        let reuse = (self.args.nodes..slots.len()).find(|i| slots[*i].state == SlotState::Stopped);
        let slot = reuse.unwrap_or(slots.len());
        if slot >= MAX_SLOTS {
            return Err((StatusCode::CONFLICT, format!("at most {MAX_SLOTS} nodes")));
        }
        let process = self
            .spawn(slot, self.args.nodes)
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        match reuse {
            Some(i) => {
                let starts = slots[i].starts;
                slots[i] = Slot::running(process);
                slots[i].starts = starts + 1;
            }
            None => slots.push(Slot::running(process)),
        }
        let mut policy = self.policy.lock().expect("policy");
        if let Some(limits) = policy.limits.clone() {
            policy.schedule(Instant::now() + limits.fault_ttl * 10, Undo::Retire(slot));
        }
        Ok(slot)
    }

    /// Slots not stopped by an operator (the ones that count for a majority).
    pub fn in_service(&self) -> usize {
        self.slots
            .lock()
            .expect("slots")
            .iter()
            .filter(|s| s.state != SlotState::Stopped)
            .count()
    }

    /// Slots impaired now: not running, paused, or recently disrupted by an action.
    pub fn impaired(&self, now: Instant) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .slots
            .lock()
            .expect("slots")
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s.state, SlotState::Paused | SlotState::Exited))
            .map(|(i, _)| i)
            .collect();
        out.extend(self.policy.lock().expect("policy").recently_impaired(now));
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The cluster and HTTP addresses of a slot.
    pub fn addresses(&self, slot: usize) -> Option<(String, String)> {
        self.slots
            .lock()
            .expect("slots")
            .get(slot)
            .map(|s| (s.cluster.clone(), s.http.clone()))
    }

    /// HTTP addresses of the running slots.
    pub fn running_http(&self) -> Vec<(usize, String)> {
        self.slots
            .lock()
            .expect("slots")
            .iter()
            .enumerate()
            .filter(|(_, s)| s.state == SlotState::Running)
            .map(|(i, s)| (i, s.http.clone()))
            .collect()
    }

    /// One supervision pass: notes exits, restarts what should run.
    pub fn supervise(&self) {
        let mut slots = self.slots.lock().expect("slots");
        for i in 0..slots.len() {
            let s = &mut slots[i];
            if s.state == SlotState::Running {
                if let Some(p) = s.process.as_mut() {
                    if let Some(code) = p.wait_exit(Duration::ZERO) {
                        tracing::info!(slot = i, code, "node exited");
                        s.process = None;
                        s.state = SlotState::Exited;
                        s.last_exit = Some(code);
                        s.exited_at = Some(Instant::now());
                    }
                }
            }
            let due = s
                .exited_at
                .is_some_and(|t| t.elapsed() >= Duration::from_secs(1));
            if self.args.auto_restart && s.state == SlotState::Exited && due {
                match self.spawn(i, self.args.nodes) {
                    Ok(process) => {
                        tracing::info!(slot = i, "restarting node as a new incarnation");
                        s.process = Some(process);
                        s.state = SlotState::Running;
                        s.starts += 1;
                        s.exited_at = None;
                    }
                    Err(e) => tracing::warn!(slot = i, "restart failed: {e}"),
                }
            }
        }
    }

    /// Stops every node: SIGTERM (a graceful leave), then SIGKILL what is left.
    pub fn stop_all(&self) {
        let mut slots = self.slots.lock().expect("slots");
        for s in slots.iter_mut() {
            if let Some(p) = s.process.as_ref() {
                p.signal("CONT");
                p.signal("TERM");
            }
        }
        for s in slots.iter_mut() {
            if let Some(mut p) = s.process.take() {
                p.wait_exit(Duration::from_secs(5));
                p.kill();
            }
            s.state = SlotState::Stopped;
        }
    }
}

/// Runs the demo until Ctrl-C or SIGTERM.
pub async fn run(args: DemoArgs) -> Result<(), String> {
    if args.nodes == 0 || args.nodes > MAX_SLOTS {
        return Err(format!("--nodes must be 1 to {MAX_SLOTS}"));
    }
    if args.cluster_port.checked_add(MAX_SLOTS as u16).is_none()
        || args.http_port.checked_add(MAX_SLOTS as u16).is_none()
    {
        return Err("base ports leave no room for the nodes".into());
    }
    if args.public && args.operator_token.as_ref().is_none_or(|t| t.len() < 8) {
        return Err("public mode needs --operator-token of at least 8 characters".into());
    }
    let binary = std::env::current_exe().map_err(|e| e.to_string())?;
    let launcher = Launcher::new(args.clone(), binary);
    let listener = tokio::net::TcpListener::bind(args.launcher)
        .await
        .map_err(|e| format!("launcher API on {}: {e}", args.launcher))?;
    launcher
        .start_all()
        .map_err(|e| format!("starting nodes: {e}"))?;
    println!(
        "Globomantics demo: {} nodes (logs in {})",
        args.nodes,
        args.logs.display()
    );
    for slot in launcher.view() {
        println!(
            "  n{}: cluster {}  API http://{}/cluster/members",
            slot.slot, slot.cluster, slot.http
        );
    }
    println!(
        "Dashboard: http://{}/  (one origin: it relays every node; Ctrl-C stops everything)",
        args.launcher
    );
    let supervisor = Arc::clone(&launcher);
    let supervising = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let s = Arc::clone(&supervisor);
            let _ = tokio::task::spawn_blocking(move || s.supervise()).await;
            api::undo_due(&supervisor).await;
        }
    });
    if args.public {
        println!(
            "Public mode: faults heal after {} s, pauses after {} s, {} actions per client per minute",
            args.fault_ttl_secs, args.pause_max_secs, args.actions_per_minute
        );
    }
    let server = axum::serve(
        listener,
        api::app(Arc::clone(&launcher))
            .into_make_service_with_connect_info::<std::net::SocketAddr>(),
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    tokio::select! {
        r = server => { if let Err(e) = r { tracing::error!("launcher API failed: {e}"); } }
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    supervising.abort();
    println!("stopping every node");
    let l = Arc::clone(&launcher);
    tokio::task::spawn_blocking(move || l.stop_all())
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}
