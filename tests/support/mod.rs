//! Test support: a cluster of real `node` processes on loopback free ports, in the
//! demo profile with the synthetic catalogue, each with its own store folder; calls
//! to their HTTP APIs; and waiting for conditions with a deadline that prints every
//! node's view when it expires. One cluster runs at a time per test binary.

#![allow(dead_code)]

pub mod browser;
pub mod demo;
pub mod failover;
pub mod mitm;
pub mod netns;
pub mod proxy;

use node::tooling::client::{request, Reply};
use node::tooling::procs::{free_port, NodeProcess as Proc};
use shared::api::MembersResponse;
use std::process::Stdio;
use std::time::{Duration, Instant};

pub const TOKEN: &str = "test-token";
pub const SECRET: &str = "test-cluster-secret";

pub struct Cluster {
    pub nodes: Vec<Proc>,
    pub state: std::path::PathBuf,
    _serial: std::sync::MutexGuard<'static, ()>,
    pub seeds: String,
    pub rt: tokio::runtime::Runtime,
}

/// One cluster at a time: several clusters with 200 ms heartbeats on two cores would
/// starve each other into false alarms, which is a benchmark's question, not these tests'.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Cluster {
    /// `n` nodes, every one a seed, demo profile, token-protected admin endpoints.
    pub fn start(n: usize) -> Cluster {
        Cluster::start_seeded(n, |ports| {
            ports
                .iter()
                .map(|(c, _)| format!("127.0.0.1:{c}"))
                .collect::<Vec<_>>()
                .join(",")
        })
    }

    /// `n` nodes whose seed list `seeds` makes from their (cluster, http) ports.
    pub fn start_seeded(n: usize, seeds: impl Fn(&[(u16, u16)]) -> String) -> Cluster {
        Cluster::start_custom(n, seeds, |_| Vec::new())
    }

    /// `n` nodes, every one a seed, node `i` with the extra flags `extra(i)`.
    pub fn start_with(n: usize, extra: impl Fn(usize) -> Vec<&'static str>) -> Cluster {
        Cluster::start_custom(
            n,
            |ports| {
                ports
                    .iter()
                    .map(|(c, _)| format!("127.0.0.1:{c}"))
                    .collect::<Vec<_>>()
                    .join(",")
            },
            extra,
        )
    }

    pub fn start_custom(
        n: usize,
        seeds: impl Fn(&[(u16, u16)]) -> String,
        extra: impl Fn(usize) -> Vec<&'static str>,
    ) -> Cluster {
        // Lock before choosing ports: another test's restarted node could take them.
        let serial = SERIAL
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let seeds = seeds(&ports);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let state = std::env::temp_dir().join(format!(
            "process-test-{}-{}",
            std::process::id(),
            ports[0].0
        ));
        let mut cluster = Cluster {
            nodes: Vec::new(),
            state,
            _serial: serial,
            seeds,
            rt,
        };
        for (i, (c, h)) in ports.into_iter().enumerate() {
            let proc = cluster.spawn(
                format!("127.0.0.1:{c}"),
                format!("127.0.0.1:{h}"),
                &extra(i),
            );
            cluster.nodes.push(proc);
        }
        cluster
    }

    pub fn spawn(&self, cluster_address: String, http: String, extra: &[&str]) -> Proc {
        self.spawn_with_secret(cluster_address, http, SECRET, extra)
    }

    pub fn spawn_with_secret(
        &self,
        cluster_address: String,
        http: String,
        secret: &str,
        extra: &[&str],
    ) -> Proc {
        let port = cluster_address
            .rsplit(':')
            .next()
            .unwrap_or("0")
            .to_string();
        let store = self.state.join(&port).display().to_string();
        let args: Vec<String> = ["--profile", "demo", "--seeds", &self.seeds]
            .into_iter()
            .chain(["--synthetic-data", "true", "--store", &store])
            .chain(["--secret", secret, "--token", TOKEN])
            // Roles default to both unless the extra flags give them.
            .chain(
                (!extra.contains(&"--roles"))
                    .then_some(["--roles", "api,worker"])
                    .into_iter()
                    .flatten(),
            )
            .chain(extra.iter().copied())
            .map(String::from)
            .collect();
        let binary = std::path::Path::new(env!("CARGO_BIN_EXE_node"));
        Proc::spawn(binary, cluster_address, http, &args, self.log_for(&port))
            .expect("node binary runs")
    }

    /// Where node output goes: `{state}/{cluster port}.log`, appended across restarts,
    /// so an expired wait can show what each node said.
    fn log_for(&self, port: &str) -> Stdio {
        let _ = std::fs::create_dir_all(&self.state);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.state.join(format!("{port}.log")))
            .map_or_else(|_| Stdio::null(), Stdio::from)
    }

    /// The last `lines` lines node `i` logged.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let port = self.nodes[i].cluster.rsplit(':').next().unwrap_or("0");
        let text =
            std::fs::read_to_string(self.state.join(format!("{port}.log"))).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Starts node `i` again (a new incarnation at the same addresses).
    pub fn restart(&mut self, i: usize) {
        let (c, h) = (self.nodes[i].cluster.clone(), self.nodes[i].http.clone());
        self.nodes[i] = self.spawn(c, h, &[]);
    }

    pub fn call(
        &self,
        i: usize,
        method: &str,
        path: &str,
        body: Option<(&str, String)>,
    ) -> Result<Reply, String> {
        self.rt.block_on(request(
            &self.nodes[i].http,
            method,
            path,
            Some(TOKEN),
            body,
        ))
    }

    pub fn members(&self, i: usize) -> Option<MembersResponse> {
        let reply = self.call(i, "GET", "/cluster/members", None).ok()?;
        serde_json::from_str(&reply.body).ok()
    }

    /// Waits until `done` holds, polling every 100 ms; panics with `what` after `limit`.
    pub fn wait(
        &self,
        limit: Duration,
        what: &str,
        mut done: impl FnMut(&Cluster) -> bool,
    ) -> Duration {
        let start = Instant::now();
        while start.elapsed() < limit {
            if done(self) {
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let views: Vec<String> = (0..self.nodes.len())
            .map(|i| {
                let view = self.members(i).map(|m| node::tooling::cli::render(&m));
                format!("n{i}: {view:?}\n  log:\n{}", self.log_tail(i, 25))
            })
            .collect();
        panic!(
            "timed out after {limit:?} waiting for: {what}\n{}",
            views.join("\n")
        );
    }

    /// Whether node `i` sees exactly `expected` (by index) as Up members, converged
    /// enough that nothing is unreachable.
    pub fn sees_up(&self, i: usize, expected: &[usize]) -> bool {
        let Some(m) = self.members(i) else {
            return false;
        };
        let up: Vec<&str> = m
            .members
            .iter()
            .filter(|x| x.status == "Up")
            .map(|x| x.node.as_str())
            .collect();
        m.unreachable.is_empty()
            && m.members.len() == expected.len()
            && expected
                .iter()
                .all(|e| up.contains(&self.nodes[*e].cluster.as_str()))
    }

    pub fn all_see_up(&self, live: &[usize]) -> bool {
        live.iter().all(|i| self.sees_up(*i, live))
    }

    pub fn unreachable_in(&self, observer: usize, target: usize) -> bool {
        self.members(observer).is_some_and(|m| {
            m.unreachable
                .iter()
                .any(|u| u.node == self.nodes[target].cluster)
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        let _ = std::fs::remove_dir_all(&self.state);
    }
}
