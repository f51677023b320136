//! The demo launcher end to end: `node demo` starts three nodes, the launcher API
//! kills, restarts and adds nodes and each change shows in membership, and stopping
//! the launcher leaves no node process behind.

use node::client::request;
use node::procs::free_port;
use shared::api::MembersResponse;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Demo {
    launcher: String,
    http_base: u16,
    rt: tokio::runtime::Runtime,
}

impl Demo {
    fn get(&self, address: &str, path: &str) -> Option<String> {
        let reply = self
            .rt
            .block_on(request(address, "GET", path, None, None))
            .ok()?;
        (reply.status == 200).then_some(reply.body)
    }

    fn post(&self, path: &str) -> u16 {
        self.rt
            .block_on(request(&self.launcher, "POST", path, None, None))
            .map(|r| r.status)
            .unwrap_or(0)
    }

    fn members(&self, slot: u16) -> Option<MembersResponse> {
        serde_json::from_str(&self.get(
            &format!("127.0.0.1:{}", self.http_base + slot),
            "/cluster/members",
        )?)
        .ok()
    }

    fn up_count(&self, slot: u16) -> usize {
        self.members(slot)
            .map_or(0, |m| m.members.iter().filter(|x| x.status == "Up").count())
    }

    fn uid_of(&self, observer: u16, target_port: u16) -> Option<String> {
        let address = format!("127.0.0.1:{target_port}");
        self.members(observer)?
            .members
            .into_iter()
            .find(|m| m.node == address)
            .map(|m| m.node_uid)
    }

    fn wait(&self, what: &str, mut done: impl FnMut() -> bool) {
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
fn free_range() -> u16 {
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    let mut base = 20_000 + (std::process::id() % 20_000) as u16;
    loop {
        if (0..5).all(|i| free(base + i) && free(base + 100 + i)) {
            return base;
        }
        base = if base > 40_000 { 20_000 } else { base + 7 };
    }
}

fn pid_alive(pid: u64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .contains("State:\tZ")
}

#[test]
fn the_launcher_starts_kills_restarts_adds_and_stops_cleanly() {
    let cluster_base = free_range();
    let http_base = cluster_base + 100;
    let launcher_port = free_port();
    let logs = std::env::temp_dir().join(format!("demo-test-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_node"))
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
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let demo = Demo {
        launcher: format!("127.0.0.1:{launcher_port}"),
        http_base,
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    };
    demo.wait("three Up members", || {
        demo.up_count(0) == 3 && demo.up_count(2) == 3
    });

    // Kill n2: it is removed, then the supervisor brings it back as a new incarnation.
    let old_uid = demo.uid_of(0, cluster_base + 2).unwrap();
    assert_eq!(demo.post("/launcher/nodes/2/kill"), 200);
    demo.wait("n2 back as a new incarnation, three Up", || {
        demo.up_count(0) == 3
            && demo
                .uid_of(0, cluster_base + 2)
                .is_some_and(|u| u != old_uid)
    });

    // Restart n1 on purpose: a new incarnation replaces the old one.
    let old_uid = demo.uid_of(0, cluster_base + 1).unwrap();
    assert_eq!(demo.post("/launcher/nodes/1/restart"), 200);
    demo.wait("n1 restarted", || {
        demo.up_count(0) == 3
            && demo
                .uid_of(0, cluster_base + 1)
                .is_some_and(|u| u != old_uid)
    });

    // Add a fourth node.
    assert_eq!(demo.post("/launcher/nodes"), 200);
    demo.wait("four Up members", || demo.up_count(0) == 4);

    // Bad requests are refused.
    assert_eq!(demo.post("/launcher/nodes/99/kill"), 404);
    assert_eq!(demo.post("/launcher/nodes/0/explode"), 400);

    let listing: serde_json::Value =
        serde_json::from_str(&demo.get(&demo.launcher, "/launcher/nodes").unwrap()).unwrap();
    let pids: Vec<u64> = listing
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["pid"].as_u64())
        .collect();
    assert_eq!(pids.len(), 4);

    // Stop the launcher the way Ctrl-C does: no node may survive it.
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
    let _ = std::fs::remove_dir_all(logs);
}
