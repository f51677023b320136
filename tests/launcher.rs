//! The demo launcher end to end: `node demo` starts three nodes, the launcher API
//! kills, restarts and adds nodes and each change shows in membership, and stopping
//! the launcher leaves no node process behind. In public mode, visitors' actions
//! are limited and faults heal themselves.

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
        self.post_with(path, None, None)
    }

    fn post_with(&self, path: &str, json: Option<&str>, token: Option<&str>) -> u16 {
        let body = json.map(|j| ("application/json", j.to_string()));
        self.rt
            .block_on(request(&self.launcher, "POST", path, token, body))
            .map(|r| r.status)
            .unwrap_or(0)
    }

    /// Whether node `slot` has any link fault in place.
    fn has_link_fault(&self, slot: u16) -> bool {
        let body = self
            .get(&format!("127.0.0.1:{}", self.http_base + slot), "/faults")
            .unwrap_or_default();
        body.contains("\"cutOutbound\":true") || body.contains("\"cutInbound\":true")
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

/// One demo at a time: two would compete for the two cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Starts `node demo` on free ports with extra flags.
fn start_demo(extra: &[&str]) -> (std::process::Child, Demo, u16, std::path::PathBuf) {
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
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    };
    (child, demo, cluster_base, logs)
}

/// Stops the launcher the way Ctrl-C does and checks no node survives it.
fn stop_demo(mut child: std::process::Child, pids: Vec<u64>) {
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

fn pids(demo: &Demo) -> Vec<u64> {
    let listing: serde_json::Value =
        serde_json::from_str(&demo.get(&demo.launcher, "/launcher/nodes").unwrap()).unwrap();
    listing
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["pid"].as_u64())
        .collect()
}

#[test]
fn the_launcher_starts_kills_restarts_adds_and_stops_cleanly() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (child, demo, cluster_base, logs) = start_demo(&[]);
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

    let pids = pids(&demo);
    assert_eq!(pids.len(), 4);
    stop_demo(child, pids);
    let _ = std::fs::remove_dir_all(logs);
}

#[test]
fn the_public_demo_limits_visitors_and_heals_itself() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let operator = "operator-secret";
    let (child, demo, _, logs) = start_demo(&[
        "--public",
        "true",
        "--operator-token",
        operator,
        "--fault-ttl-secs",
        "3",
        "--actions-per-minute",
        "4",
    ]);
    demo.wait("three Up members", || {
        demo.up_count(0) == 3 && demo.up_count(2) == 3
    });
    // The nodes' own fault endpoints are closed to visitors.
    let direct = demo
        .rt
        .block_on(request(
            &format!("127.0.0.1:{}", demo.http_base),
            "POST",
            "/faults/links",
            None,
            Some((
                "application/json",
                "{\"peer\":\"127.0.0.1:1\",\"cutOutbound\":true}".into(),
            )),
        ))
        .unwrap();
    assert_eq!(direct.status, 401);
    let policy: shared::api::LauncherPolicy =
        serde_json::from_str(&demo.get(&demo.launcher, "/launcher/policy").unwrap()).unwrap();
    assert!(policy.public);
    assert_eq!(policy.max_impaired, 1);

    // A visitor cuts n0 from n2: allowed, it shows on both ends.
    let cut = r#"{"from":0,"to":2,"kind":"cut"}"#;
    assert_eq!(demo.post_with("/launcher/links", Some(cut), None), 200);
    assert!(demo.has_link_fault(0) && demo.has_link_fault(2));
    // Impairing a second node would leave no majority: refused.
    assert_eq!(demo.post("/launcher/nodes/1/pause"), 409);
    assert_eq!(demo.post("/launcher/nodes/1/kill"), 409);
    // Stopping a node is for the operator only.
    assert_eq!(demo.post("/launcher/nodes/1/stop"), 403);
    // The fault heals itself.
    demo.wait("the cut healed itself", || {
        !demo.has_link_fault(0) && !demo.has_link_fault(2)
    });
    // The visitor has 4 actions a minute: 1 used by the cut, 3 more, then 429.
    for _ in 0..3 {
        assert_eq!(demo.post("/launcher/nodes/0/heal"), 200);
    }
    assert_eq!(demo.post("/launcher/nodes/0/heal"), 429);
    // The operator is not limited.
    assert_eq!(
        demo.post_with("/launcher/nodes/0/heal", None, Some(operator)),
        200
    );
    demo.wait("three Up members throughout", || demo.up_count(0) == 3);
    stop_demo(child, pids(&demo));
    let _ = std::fs::remove_dir_all(logs);
}
