//! Real node processes on loopback, measured: process start to Up on all members;
//! SIGKILL to unreachable on the first and on the last survivor, and to removed on
//! all; the same for SIGSTOP; false alarms while both cores are saturated by a CPU
//! burner; idle resident memory per node. In the demo profile and with Akka's defaults.
//!
//! Run: `cargo bench -p node --bench processes` (about 15 minutes: the soak alone is
//! 5 minutes). `-- --quick` runs fewer trials and a 30-second soak; `-- --soak-only`
//! runs only the soak, `-- --no-akka` only the demo profile, `-- --soak-secs N` sets the
//! soak's length. False alarms are counted from the nodes' logs; the SIGKILL
//! trials' logs show the same count finds real alarms.
//!
//! Where a Docker daemon answers, the same demo-profile figures are measured on three
//! containers of the project's image over a bridge network (`docker kill` for
//! SIGKILL, `docker pause` for SIGSTOP) and printed beside the loopback ones;
//! `-- --no-containers` skips them.

use node::tooling::client::request;
use node::tooling::procs::{free_port, NodeProcess};
use shared::api::MembersResponse;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NODES: usize = 3;

struct Bench {
    binary: PathBuf,
    logs: PathBuf,
    rt: tokio::runtime::Runtime,
}

struct Cluster {
    nodes: Vec<NodeProcess>,
}

impl Bench {
    fn start(&self, profile: &str, tag: &str) -> (Cluster, Instant) {
        let ports: Vec<(u16, u16)> = (0..NODES).map(|_| (free_port(), free_port())).collect();
        let seeds = ports
            .iter()
            .map(|(c, _)| format!("127.0.0.1:{c}"))
            .collect::<Vec<_>>()
            .join(",");
        let started = Instant::now();
        let nodes = ports
            .iter()
            .enumerate()
            .map(|(i, (c, h))| {
                let store = self.logs.join(format!("{tag}-n{i}-store"));
                let args: Vec<String> = ["--profile", profile, "--seeds", &seeds, "--demo", "true"]
                    .iter()
                    .map(|s| s.to_string())
                    .chain(["--synthetic-data".into(), "true".into(), "--store".into()])
                    .chain([store.display().to_string()])
                    .collect();
                let log =
                    File::create(self.logs.join(format!("{tag}-n{i}.log"))).expect("log file");
                NodeProcess::spawn(
                    &self.binary,
                    format!("127.0.0.1:{c}"),
                    format!("127.0.0.1:{h}"),
                    &args,
                    Stdio::from(log),
                )
                .expect("node starts")
            })
            .collect();
        (Cluster { nodes }, started)
    }

    fn members(&self, node: &NodeProcess) -> Option<MembersResponse> {
        let reply = self
            .rt
            .block_on(request(&node.http, "GET", "/cluster/members", None, None))
            .ok()?;
        serde_json::from_str(&reply.body).ok()
    }

    fn all_up(&self, c: &Cluster, live: &[usize]) -> bool {
        live.iter().all(|i| {
            self.members(&c.nodes[*i]).is_some_and(|m| {
                m.unreachable.is_empty()
                    && m.members.len() == live.len()
                    && m.members.iter().all(|x| x.status == "Up")
            })
        })
    }

    /// Polls every 10 ms until `done`; the elapsed time since `from`.
    fn until(
        &self,
        from: Instant,
        limit: Duration,
        mut done: impl FnMut() -> bool,
    ) -> Option<Duration> {
        while from.elapsed() < limit {
            if done() {
                return Some(from.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

#[derive(Default)]
struct Samples(Vec<f64>);

impl Samples {
    fn push(&mut self, d: Option<Duration>) {
        self.0.push(d.map_or(f64::NAN, |d| d.as_secs_f64()));
    }
    fn summary(&self) -> String {
        let mut v: Vec<f64> = self.0.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return "n/a".into();
        }
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let failed = self.0.len() - v.len();
        format!(
            "median {:.2} s (min {:.2}, max {:.2}, n={}{})",
            v[v.len() / 2],
            v[0],
            v[v.len() - 1],
            v.len(),
            if failed > 0 {
                format!(", {failed} timed out")
            } else {
                String::new()
            }
        )
    }
}

/// What one scenario measures, over its trials.
#[derive(Default)]
struct Figures {
    join: Samples,
    first: Samples,
    last: Samples,
    removed: Samples,
}

fn trial(bench: &Bench, profile: &str, signal: &str, run: usize, figures: &mut Figures) {
    let limit = if profile == "demo" {
        Duration::from_secs(30)
    } else {
        Duration::from_secs(120)
    };
    let (mut c, started) = bench.start(profile, &format!("{profile}-{signal}-{run}"));
    figures
        .join
        .push(bench.until(started, limit, || bench.all_up(&c, &[0, 1, 2])));
    std::thread::sleep(Duration::from_secs(2));
    let victim = 2;
    let victim_address = c.nodes[victim].cluster.clone();
    let t0 = Instant::now();
    c.nodes[victim].signal(signal);
    let mut seen: [Option<Duration>; 2] = [None, None];
    let _ = bench.until(t0, limit, || {
        for (slot, observer) in [0usize, 1].iter().enumerate() {
            if seen[slot].is_none()
                && bench.members(&c.nodes[*observer]).is_some_and(|m| {
                    m.unreachable.iter().any(|u| u.node == victim_address)
                        || !m.members.iter().any(|x| x.node == victim_address)
                })
            {
                seen[slot] = Some(t0.elapsed());
            }
        }
        seen.iter().all(Option::is_some)
    });
    let mut times: Vec<Option<Duration>> = seen.to_vec();
    times.sort();
    figures.first.push(times.iter().flatten().next().copied());
    figures.last.push(if times.iter().all(Option::is_some) {
        times[1]
    } else {
        None
    });
    figures
        .removed
        .push(bench.until(t0, limit, || bench.all_up(&c, &[0, 1])));
    if signal == "STOP" {
        c.nodes[victim].signal("CONT");
    }
    for n in &mut c.nodes {
        n.kill();
    }
}

/// One trial on containers: n3 is killed (`docker kill`) or frozen (`docker pause`).
fn container_trial(signal: &str, figures: &mut Figures) {
    use node::tooling::containers::Deployment;
    let limit = Duration::from_secs(60);
    let started = Instant::now();
    let d = Deployment::up(&format!("bench{}", signal.to_lowercase()));
    let until = |from: Instant, done: &mut dyn FnMut() -> bool| {
        while from.elapsed() < limit {
            if done() {
                return Some(from.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    };
    figures
        .join
        .push(until(started, &mut || d.all_up(&["n1", "n2", "n3"])));
    std::thread::sleep(Duration::from_secs(2));
    let (victim, address) = (d.container("n3"), d.cluster_address("n3"));
    let observers = [d.http("n1"), d.http("n2")];
    let t0 = Instant::now();
    d.docker(&[if signal == "KILL" { "kill" } else { "pause" }, &victim]);
    let mut seen: [Option<Duration>; 2] = [None, None];
    let _ = until(t0, &mut || {
        for (slot, http) in observers.iter().enumerate() {
            if seen[slot].is_none()
                && d.members(http).is_some_and(|m| {
                    m.unreachable.iter().any(|u| u.node == address)
                        || !m.members.iter().any(|x| x.node == address)
                })
            {
                seen[slot] = Some(t0.elapsed());
            }
        }
        seen.iter().all(Option::is_some)
    });
    let mut times = seen.to_vec();
    times.sort();
    figures.first.push(times.iter().flatten().next().copied());
    figures.last.push(times[1].filter(|_| times[0].is_some()));
    figures.removed.push(until(t0, &mut || {
        observers.iter().all(|http| {
            d.members(http).is_some_and(|m| {
                m.unreachable.is_empty()
                    && m.members.len() == 2
                    && m.members.iter().all(|x| x.status == "Up")
            })
        })
    }));
    if signal == "STOP" {
        d.docker(&["unpause", &victim]);
    }
}

/// Prints one scenario's figures.
fn report(setting: &str, signal: &str, figures: &Figures) {
    let rows = [
        ("start to all Up:      ", &figures.join),
        ("to unreachable, first:", &figures.first),
        ("to unreachable, last: ", &figures.last),
        ("to removed on all:    ", &figures.removed),
    ];
    for (what, samples) in rows {
        println!("{setting:>10} SIG{signal:<4} {what} {}", samples.summary());
    }
}

/// UnreachableMember events a node logged.
fn alarms_in(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("UnreachableMember"))
        .count()
}

fn soak(bench: &Bench, seconds: u64) -> (usize, Vec<u64>) {
    let (c, started) = bench.start("demo", "soak");
    bench
        .until(started, Duration::from_secs(30), || {
            bench.all_up(&c, &[0, 1, 2])
        })
        .expect("cluster forms");
    std::thread::sleep(Duration::from_secs(5));
    let rss: Vec<u64> = c.nodes.iter().filter_map(|n| n.rss_kib()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let burners: Vec<_> = (0..2)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut x: u64 = 1;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..100_000 {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    }
                    std::hint::black_box(x);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for b in burners {
        let _ = b.join();
    }
    drop(c);
    // Every UnreachableMember event any node logged during the soak is a false alarm.
    let alarms = (0..NODES)
        .map(|i| alarms_in(&bench.logs.join(format!("soak-n{i}.log"))))
        .sum();
    (alarms, rss)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let soak_only = std::env::args().any(|a| a == "--soak-only");
    let with_containers = !std::env::args().any(|a| a == "--no-containers")
        && node::tooling::containers::docker_answers();
    if !with_containers {
        println!("container figures skipped (--no-containers, or no Docker daemon answers)");
    }
    let logs = std::env::temp_dir().join(format!("node-bench-{}", std::process::id()));
    std::fs::create_dir_all(&logs).expect("log dir");
    let bench = Bench {
        binary: Path::new(env!("CARGO_BIN_EXE_node")).to_path_buf(),
        logs: logs.clone(),
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime"),
    };
    println!(
        "{NODES} node processes on 127.0.0.1, 2 cores; logs in {}",
        logs.display()
    );
    let no_akka = std::env::args().any(|a| a == "--no-akka");
    let profiles: &[&str] = match (soak_only, no_akka) {
        (true, _) => &[],
        (false, true) => &["demo"],
        (false, false) => &["demo", "akka"],
    };
    for &profile in profiles {
        let trials = match (profile, quick) {
            ("demo", false) => 5,
            (_, false) => 2,
            (_, true) => 1,
        };
        for signal in ["KILL", "STOP"] {
            let mut figures = Figures::default();
            for run in 0..trials {
                trial(&bench, profile, signal, run, &mut figures);
            }
            report(profile, signal, &figures);
            if profile == "demo" && with_containers {
                let mut on_containers = Figures::default();
                for _ in 0..trials {
                    container_trial(signal, &mut on_containers);
                }
                report("containers", signal, &on_containers);
            }
        }
    }
    let args: Vec<String> = std::env::args().collect();
    let soak_seconds = args
        .iter()
        .position(|a| a == "--soak-secs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 30 } else { 300 });
    let (alarms, rss) = soak(&bench, soak_seconds);
    println!(" demo false alarms in {soak_seconds} s with both cores saturated: {alarms}");
    if !soak_only {
        let check = alarms_in(&logs.join("demo-KILL-0-n0.log"));
        println!(" (the same count finds {check} alarm(s) in n0's log of the first SIGKILL trial)");
    }
    println!(
        " idle RSS per node: {} KiB",
        rss.iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
}
