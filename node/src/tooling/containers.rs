//! A harness for the container test suite and the container benchmark (it panics
//! on what it cannot do, as a test would): the project's own `compose.yaml` brought
//! up under a project name of its own, with the synthetic catalogue and fresh secrets,
//! and the faults a real deployment meets, applied from outside the processes:
//! `docker kill`, `docker pause`, and a partition made of iptables rules inside a
//! container's network namespace (`nsenter`), so a container keeps its address.
//! The test process talks to each node at its container IP, on the bridge network.

use crate::tooling::client::{request, Reply};
use shared::api::MembersResponse;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub const SECRET: &str = "container-test-secret";
pub const TOKEN: &str = "container-test-token";

/// Whether a Docker daemon answers (the suite is skipped, with one line, if not).
pub fn docker_answers() -> bool {
    Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The image the deployment runs (`GLOBOMANTICS_IMAGE`, default `globomantics:latest`).
pub fn image() -> String {
    std::env::var("GLOBOMANTICS_IMAGE").unwrap_or_else(|_| "globomantics:latest".into())
}

/// Panics unless the image exists. The harness does not build it: a cargo build of
/// the musl binary from inside `cargo test` would contend for the build directory.
/// `scripts/test.sh` runs `scripts/build-image.sh --no-data` before the tests.
pub fn require_image() {
    let found = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", &image()])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "image {} not found: run scripts/build-image.sh --no-data first",
        image()
    );
}

/// `iptables` and `tc` live in /usr/sbin, which a CI job's PATH may lack.
fn sbin(program: &str) -> String {
    let full = format!("/usr/sbin/{program}");
    if Path::new(&full).exists() {
        full
    } else {
        program.to_string()
    }
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"))
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// One compose project: the three nodes of `compose.yaml`, and workers on demand.
/// Dropping it takes the project down, volumes included.
pub struct Deployment {
    pub project: String,
    data_dir: PathBuf,
    rt: tokio::runtime::Runtime,
    _serial: std::sync::MutexGuard<'static, ()>,
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Deployment {
    /// `docker-compose up -d` of a new project named after the test (one at a time
    /// per process: two clusters on two cores would starve each other).
    pub fn up(name: &str) -> Deployment {
        Deployment::start(name, &["up", "-d"])
    }

    /// A project of `nodes` nodes: `n1` alone, `n1` and `n2`, the three, or the three
    /// and `nodes - 3` extra workers (`--scale worker=`), for the scale benchmark.
    pub fn sized(name: &str, nodes: usize) -> Deployment {
        let workers = format!("worker={}", nodes.saturating_sub(3));
        let named = ["n1", "n2", "n3"];
        let mut args = vec!["up", "-d", "--scale", &workers];
        if nodes < 3 {
            args.extend_from_slice(&named[..nodes.max(1)]);
        }
        Deployment::start(name, &args)
    }

    /// Every container of the project.
    pub fn all_containers(&self) -> Vec<String> {
        self.compose(&["ps", "-q"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn start(name: &str, compose_args: &[&str]) -> Deployment {
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        require_image();
        let project = format!("gmt{}{name}", std::process::id());
        let data_dir = std::env::temp_dir().join(format!("{project}-data"));
        std::fs::create_dir_all(&data_dir).unwrap();
        let d = Deployment {
            project,
            data_dir,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            _serial: serial,
        };
        d.compose(compose_args);
        d
    }

    /// Runs `docker-compose` for this project; panics on failure.
    pub fn compose(&self, args: &[&str]) -> String {
        let out = self.compose_output(args);
        assert!(
            out.status.success(),
            "docker-compose {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        text(&out)
    }

    fn compose_output(&self, args: &[&str]) -> Output {
        let mut all = vec!["-p", &self.project, "-f"];
        let file = repo().join("compose.yaml");
        let file = file.to_str().unwrap();
        all.push(file);
        all.extend_from_slice(args);
        Command::new("docker-compose")
            .args(&all)
            .env("NODE_SECRET", SECRET)
            .env("NODE_TOKEN", TOKEN)
            .env("NODE_SYNTHETIC_DATA", "true")
            .env("GLOBOMANTICS_IMAGE", image())
            .env("DATA_DIR", &self.data_dir)
            // No host ports: the tests reach containers at their own addresses.
            .env("N1_HTTP_PORT", "0")
            .env("N2_HTTP_PORT", "0")
            .env("N3_HTTP_PORT", "0")
            .output()
            .expect("docker-compose runs")
    }

    /// Container ids of a service (several for a scaled one).
    pub fn containers(&self, service: &str) -> Vec<String> {
        self.compose(&["ps", "-q", service])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The one container of `n1`, `n2` or `n3`.
    pub fn container(&self, service: &str) -> String {
        self.containers(service)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no container for {service}"))
    }

    pub fn inspect(&self, id: &str, format: &str) -> String {
        text(&run("docker", &["inspect", "-f", format, id]))
    }

    /// The container's address on the cluster network.
    pub fn ip(&self, id: &str) -> String {
        self.inspect(
            id,
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        )
    }

    /// Its HTTP API, as the test reaches it.
    pub fn http(&self, service: &str) -> String {
        format!("{}:8558", self.ip(&self.container(service)))
    }

    /// Its cluster address, as members name it.
    pub fn cluster_address(&self, service: &str) -> String {
        format!("{}:2551", self.ip(&self.container(service)))
    }

    pub fn call(&self, http: &str, method: &str, path: &str) -> Result<Reply, String> {
        self.rt
            .block_on(request(http, method, path, Some(TOKEN), None))
    }

    pub fn members(&self, http: &str) -> Option<MembersResponse> {
        let reply = self.call(http, "GET", "/cluster/members").ok()?;
        serde_json::from_str(&reply.body).ok()
    }

    /// Up members as `http` sees them, with nothing unreachable.
    pub fn up_members(&self, http: &str) -> Option<Vec<(String, String)>> {
        let m = self.members(http)?;
        if !m.unreachable.is_empty() {
            return None;
        }
        m.members
            .iter()
            .map(|x| (x.status == "Up").then(|| (x.node.clone(), x.node_uid.clone())))
            .collect()
    }

    /// Whether every one of `services` sees exactly them Up, nothing unreachable.
    pub fn all_up(&self, services: &[&str]) -> bool {
        let expected: Vec<String> = services.iter().map(|s| self.cluster_address(s)).collect();
        services.iter().all(|s| {
            self.up_members(&self.http(s)).is_some_and(|up| {
                up.len() == expected.len()
                    && expected.iter().all(|e| up.iter().any(|(n, _)| n == e))
            })
        })
    }

    pub fn docker(&self, args: &[&str]) {
        let out = run("docker", args);
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs a command in the network namespace of container `id`.
    fn in_netns(&self, id: &str, command: &[&str]) {
        let program = sbin(command[0]);
        let command: Vec<&str> = std::iter::once(program.as_str())
            .chain(command[1..].iter().copied())
            .collect();
        let pid = self.inspect(id, "{{.State.Pid}}");
        let mut args = vec!["-t", pid.as_str(), "-n"];
        args.extend_from_slice(&command);
        let out = run("nsenter", &args);
        assert!(
            out.status.success(),
            "nsenter {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Cuts container `id` off from every address in `peers`, both ways.
    pub fn partition(&self, id: &str, peers: &[String]) {
        for peer in peers {
            self.in_netns(id, &["iptables", "-I", "INPUT", "-s", peer, "-j", "DROP"]);
            self.in_netns(id, &["iptables", "-I", "OUTPUT", "-d", peer, "-j", "DROP"]);
        }
    }

    /// Removes every rule `partition` added.
    pub fn heal(&self, id: &str) {
        self.in_netns(id, &["iptables", "-F", "INPUT"]);
        self.in_netns(id, &["iptables", "-F", "OUTPUT"]);
    }

    /// Delay and loss on the container's interface (`tc netem`).
    pub fn netem(&self, id: &str, spec: &[&str]) -> bool {
        let pid = self.inspect(id, "{{.State.Pid}}");
        let tc = sbin("tc");
        let mut args = vec![
            "-t",
            pid.as_str(),
            "-n",
            tc.as_str(),
            "qdisc",
            "replace",
            "dev",
            "eth0",
            "root",
            "netem",
        ];
        args.extend_from_slice(spec);
        run("nsenter", &args).status.success()
    }

    /// The container's log (stdout and stderr).
    pub fn logs(&self, id: &str) -> String {
        let out = run("docker", &["logs", id]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Waits for `done`, polling; panics with `what` and every view after `limit`.
    pub fn wait(
        &self,
        limit: Duration,
        what: &str,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Duration {
        let start = Instant::now();
        while start.elapsed() < limit {
            if done(self) {
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let views: Vec<String> = self
            .all_containers()
            .iter()
            .map(|id| {
                let http = format!("{}:8558", self.ip(id));
                format!(
                    "{http}: {:?}",
                    self.members(&http).map(|m| crate::tooling::cli::render(&m))
                )
            })
            .collect();
        panic!(
            "timed out after {limit:?} waiting for: {what}\n{}",
            views.join("\n")
        );
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let _ = self.compose_output(&["down", "-v", "--remove-orphans", "-t", "2"]);
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
