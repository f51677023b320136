//! Test support: `node demo` (the launcher and its nodes) on free loopback ports
//! with the synthetic catalogue, calls to its APIs, and a clean stop that checks no
//! node process survives.

use node::tooling::client::request;
use node::tooling::procs::free_port;
use shared::api::MembersResponse;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Demo {
    pub launcher: String,
    pub http_base: u16,
    pub rt: tokio::runtime::Runtime,
    /// The launcher's pid and the demo's folder, to clean up after a failed test.
    launcher_pid: u32,
    folder: std::path::PathBuf,
}

impl Drop for Demo {
    /// A test that fails never reaches `stop_demo`: stop the launcher as Ctrl-C does
    /// (it stops its nodes), and anything started with a path in the demo's folder
    /// (a browser's profile lives there), so nothing outlives the test.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-INT", &self.launcher_pid.to_string()])
            .status();
        std::thread::sleep(Duration::from_secs(3));
        let _ = Command::new("pkill")
            .arg("-f")
            .arg(self.folder.as_os_str())
            .status();
    }
}

impl Demo {
    pub fn get(&self, address: &str, path: &str) -> Option<String> {
        let reply = self
            .rt
            .block_on(request(address, "GET", path, None, None))
            .ok()?;
        (reply.status == 200).then_some(reply.body)
    }

    pub fn post(&self, path: &str) -> u16 {
        self.post_with(path, None, None)
    }

    pub fn post_with(&self, path: &str, json: Option<&str>, token: Option<&str>) -> u16 {
        let body = json.map(|j| ("application/json", j.to_string()));
        self.rt
            .block_on(request(&self.launcher, "POST", path, token, body))
            .map(|r| r.status)
            .unwrap_or(0)
    }

    /// Whether node `slot` has any link fault in place.
    pub fn has_link_fault(&self, slot: u16) -> bool {
        let body = self
            .get(&format!("127.0.0.1:{}", self.http_base + slot), "/faults")
            .unwrap_or_default();
        body.contains("\"cutOutbound\":true") || body.contains("\"cutInbound\":true")
    }

    pub fn members(&self, slot: u16) -> Option<MembersResponse> {
        serde_json::from_str(&self.get(
            &format!("127.0.0.1:{}", self.http_base + slot),
            "/cluster/members",
        )?)
        .ok()
    }

    pub fn up_count(&self, slot: u16) -> usize {
        self.members(slot)
            .map_or(0, |m| m.members.iter().filter(|x| x.status == "Up").count())
    }

    pub fn uid_of(&self, observer: u16, target_port: u16) -> Option<String> {
        let address = format!("127.0.0.1:{target_port}");
        self.members(observer)?
            .members
            .into_iter()
            .find(|m| m.node == address)
            .map(|m| m.node_uid)
    }

    pub fn wait(&self, what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if done() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for: {what}");
    }
}

/// A base port such that base..base+5 and base+100..base+105 are all free now.
pub fn free_range() -> u16 {
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    let mut base = 20_000 + (std::process::id() % 20_000) as u16;
    loop {
        if (0..5).all(|i| free(base + i) && free(base + 100 + i)) {
            return base;
        }
        base = if base > 40_000 { 20_000 } else { base + 7 };
    }
}

pub fn pid_alive(pid: u64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .contains("State:\tZ")
}

/// One demo at a time: two would compete for the two cores.
pub static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Starts `node demo` on free ports with extra flags.
pub fn start_demo(extra: &[&str]) -> (std::process::Child, Demo, u16, std::path::PathBuf) {
    let cluster_base = free_range();
    let http_base = cluster_base + 100;
    let launcher_port = free_port();
    let logs =
        std::env::temp_dir().join(format!("demo-test-{}-{cluster_base}", std::process::id()));
    let child = Command::new(env!("CARGO_BIN_EXE_node"))
        .args(["demo", "--nodes", "3"])
        .args([
            "--cluster-port",
            &cluster_base.to_string(),
            "--http-port",
            &http_base.to_string(),
        ])
        .args([
            "--launcher",
            &format!("127.0.0.1:{launcher_port}"),
            "--logs",
            logs.to_str().unwrap(),
            "--state",
            logs.join("state").to_str().unwrap(),
            "--node-args",
            "--synthetic-data true",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let demo = Demo {
        launcher: format!("127.0.0.1:{launcher_port}"),
        http_base,
        launcher_pid: child.id(),
        folder: logs.clone(),
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    };
    (child, demo, cluster_base, logs)
}

/// Stops the launcher the way Ctrl-C does and checks no node survives it.
pub fn stop_demo(mut child: std::process::Child, pids: Vec<u64>) {
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(child.try_wait().unwrap().is_some(), "the launcher exits");
    for pid in pids {
        assert!(!pid_alive(pid), "node process {pid} survived the launcher");
    }
}

pub fn pids(demo: &Demo) -> Vec<u64> {
    let listing: serde_json::Value =
        serde_json::from_str(&demo.get(&demo.launcher, "/launcher/nodes").unwrap()).unwrap();
    listing
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["pid"].as_u64())
        .collect()
}
