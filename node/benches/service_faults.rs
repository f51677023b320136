//! The recommendation service through each single fault, measured with real node
//! processes on loopback (three nodes with roles `api` and `worker`, MovieLens 100k
//! if fetched).
//!
//! An open-loop load of clients that behave like real ones (`node::tooling::failover`:
//! each request goes to any node, the faulty one included, and fails over to the next
//! on an error, a timeout or a degraded answer) asks for recommendations and records
//! watches (one request in five) at a fixed rate, while one fault happens:
//! - SIGKILL of n2 (restarted once the others have removed it);
//! - SIGSTOP of n2 for 10 s (it is downed meanwhile, exits on resuming, and restarts);
//! - a one-node partition of n2 for 6 s (downed likewise, then healed and restarted);
//! - a restart of n2 without its disk;
//! - a rolling restart of every node, one at a time.
//!
//! Each fault ends when the cluster is whole again (three Up, every replica caught up).
//! For each: requests, failed and degraded answers, acknowledged watches lost (all
//! read back afterwards), p99 and maximum latency from the fault's start until 2 s
//! after its end (counted from each request's scheduled time, so a stall is not
//! hidden), and the time until full throughput returns: the end of the last second,
//! from the fault's start on, in which fewer than 95% of the requests due got a
//! personal answer within 1 s.
//!
//! Run: `cargo bench -p node --bench service_faults` (about two and a half minutes).

use node::tooling::client::request;
use node::tooling::failover;
use node::tooling::procs::{free_port, NodeProcess};
use shared::api::{HistoryResponse, MembersResponse, ReplicaStatus};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Requests per second offered during every fault.
const RATE: f64 = 150.0;
const LONG: Duration = Duration::from_secs(90);

/// How one request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    Personal,
    Degraded,
    Failed,
}

/// One request: when it was due (ms since the load began), how long it took from
/// then, and how it ended.
#[derive(Clone, Copy, Debug)]
struct Outcome {
    due_ms: u64,
    latency_ms: f64,
    ending: Ending,
}

/// Three node processes and how to start each again.
struct Bench {
    binary: PathBuf,
    scratch: PathBuf,
    args: Vec<String>,
    ports: Vec<(u16, u16)>,
    nodes: Vec<NodeProcess>,
    users: u32,
    videos: u32,
    rt: tokio::runtime::Runtime,
}

impl Bench {
    fn start() -> Bench {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let data = repo.join("data/ml-100k");
        let (data_args, users, videos): (Vec<String>, u32, u32) =
            if data.join("ml-100k.inter").exists() {
                (vec!["--data".into(), data.display().to_string()], 943, 1682)
            } else {
                println!("MovieLens not fetched (scripts/fetch-data.sh): the synthetic catalogue");
                (vec!["--synthetic-data".into(), "true".into()], 200, 300)
            };
        let scratch = std::env::temp_dir().join(format!("faults-bench-{}", std::process::id()));
        std::fs::create_dir_all(&scratch).expect("scratch folder");
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let seeds: Vec<String> = ports
            .iter()
            .map(|(c, _)| format!("127.0.0.1:{c}"))
            .collect();
        let mut args: Vec<String> = [
            "--profile",
            "demo",
            "--demo",
            "true",
            "--roles",
            "api,worker",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(["--seeds".into(), seeds.join(",")]);
        args.extend(data_args);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let mut bench = Bench {
            binary: PathBuf::from(env!("CARGO_BIN_EXE_node")),
            scratch,
            args,
            ports,
            nodes: Vec::new(),
            users,
            videos,
            rt,
        };
        bench.nodes = (0..3).map(|i| bench.spawn(i)).collect();
        bench.wait("three Up, serving", |b| b.whole());
        bench
    }

    fn store(&self, i: usize) -> PathBuf {
        self.scratch.join(format!("n{i}"))
    }

    fn spawn(&self, i: usize) -> NodeProcess {
        let (c, h) = self.ports[i];
        let mut args = self.args.clone();
        args.extend(["--store".into(), self.store(i).display().to_string()]);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.scratch.join(format!("n{i}.log")))
            .expect("log");
        NodeProcess::spawn(
            &self.binary,
            format!("127.0.0.1:{c}"),
            format!("127.0.0.1:{h}"),
            &args,
            Stdio::from(log),
        )
        .expect("node starts")
    }

    fn http(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|(_, h)| format!("127.0.0.1:{h}"))
            .collect()
    }

    fn get<T: serde::de::DeserializeOwned>(&self, i: usize, path: &str) -> Option<T> {
        let reply = self
            .rt
            .block_on(request(&self.http()[i], "GET", path, None, None))
            .ok()?;
        serde_json::from_str(&reply.body).ok()
    }

    fn sees_up(&self, i: usize, count: usize) -> bool {
        self.get::<MembersResponse>(i, "/cluster/members")
            .is_some_and(|m| {
                m.members.len() == count
                    && m.unreachable.is_empty()
                    && m.members.iter().all(|x| x.status == "Up")
            })
    }

    /// Three Up in every view, and every replica caught up.
    fn whole(&self) -> bool {
        (0..3).all(|i| {
            self.sees_up(i, 3)
                && self
                    .get::<ReplicaStatus>(i, "/api/replica")
                    .is_some_and(|r| r.ready)
        })
    }

    fn wait(&self, what: &str, done: impl Fn(&Bench) -> bool) {
        let began = Instant::now();
        while !done(self) {
            assert!(began.elapsed() < LONG, "{what}: not within {LONG:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn restart(&mut self, i: usize) {
        self.nodes[i].kill();
        self.nodes[i] = self.spawn(i);
    }

    /// n2 was downed: it exits on learning so (3 or 4), and a supervisor restarts it.
    fn restart_downed(&mut self) {
        let code = self.nodes[2].wait_exit(LONG);
        assert!(matches!(code, Some(3) | Some(4)), "n2 downed, got {code:?}");
        self.restart(2);
        self.wait("whole again", |b| b.whole());
    }

    /// Cuts every link of n2, at both ends, with the nodes' own link faults.
    fn isolate_n2(&self) {
        let http = self.http();
        for j in [0, 1] {
            for (on, peer) in [(2, j), (j, 2)] {
                let (c, _) = self.ports[peer];
                let cut = format!(
                    "{{\"peer\":\"127.0.0.1:{c}\",\"cutOutbound\":true,\"cutInbound\":true}}"
                );
                let body = Some(("application/json", cut));
                let reply = self
                    .rt
                    .block_on(request(&http[on], "POST", "/faults/links", None, body))
                    .expect("fault API");
                assert!(reply.status < 300, "{}", reply.body);
            }
        }
    }

    fn heal(&self) {
        let http = self.http();
        for h in &http[..2] {
            let _ = self
                .rt
                .block_on(request(h, "DELETE", "/faults", None, None));
        }
    }
}

/// An open-loop load: requests are due on a fixed schedule, each sent on its own task.
struct Load {
    began: Instant,
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    acknowledged: Arc<Mutex<Vec<(u32, u32)>>>,
    scheduler: tokio::task::JoinHandle<()>,
}

impl Load {
    fn start(bench: &Bench, round: u32) -> Load {
        let began = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let nodes = bench.http();
        let (users, videos) = (bench.users, bench.videos);
        let (stop2, outcomes2, acks2) = (stop.clone(), outcomes.clone(), acknowledged.clone());
        let scheduler = bench.rt.spawn(async move {
            let mut n: u64 = 0;
            while !stop2.load(Ordering::Relaxed) {
                let due = began + Duration::from_secs_f64(n as f64 / RATE);
                tokio::time::sleep_until(due.into()).await;
                let (nodes, outcomes, acks) = (nodes.clone(), outcomes2.clone(), acks2.clone());
                let ask = Ask::nth(n, round, users, videos);
                tokio::spawn(async move {
                    let ending = ask.send(&nodes, n as usize).await;
                    if let (Ending::Personal, Some(watch)) = (ending, ask.watch) {
                        acks.lock().unwrap().push(watch);
                    }
                    outcomes.lock().unwrap().push(Outcome {
                        due_ms: due.duration_since(began).as_millis() as u64,
                        latency_ms: due.elapsed().as_secs_f64() * 1000.0,
                        ending,
                    });
                });
                n += 1;
            }
        });
        Load {
            began,
            stop,
            outcomes,
            acknowledged,
            scheduler,
        }
    }

    fn now_ms(&self) -> u64 {
        self.began.elapsed().as_millis() as u64
    }

    /// Stops sending, lets the last requests finish, and returns what was seen.
    fn finish(self, bench: &Bench) -> (Vec<Outcome>, Vec<(u32, u32)>) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = bench.rt.block_on(self.scheduler);
        std::thread::sleep(failover::DEADLINE + Duration::from_secs(1));
        let outcomes = self.outcomes.lock().unwrap().clone();
        let acknowledged = self.acknowledged.lock().unwrap().clone();
        (outcomes, acknowledged)
    }
}

/// One client request: a recommendation, or a watch to record.
#[derive(Clone, Copy)]
struct Ask {
    user: u32,
    watch: Option<(u32, u32)>,
}

impl Ask {
    /// The `n`-th request of a round: every fifth records a watch no other round uses.
    fn nth(n: u64, round: u32, users: u32, videos: u32) -> Ask {
        let k = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 20;
        let user = 1 + (k % u64::from(users)) as u32;
        let watch = n.is_multiple_of(5).then(|| {
            let video = 1 + ((n / 5) * 7 + u64::from(round) * 131) % u64::from(videos);
            (user, video as u32)
        });
        Ask { user, watch }
    }

    async fn send(&self, nodes: &[String], first: usize) -> Ending {
        let answer = match self.watch {
            Some((user, video)) => {
                let path = format!("/api/users/{user}/watched");
                let body = format!("{{\"video\":{video}}}");
                failover::send(nodes, first, "POST", &path, Some(body)).await
            }
            None => {
                let path = format!("/api/recommendations/{}?n=10", self.user);
                failover::send(nodes, first, "GET", &path, None).await
            }
        };
        match answer {
            Ok(a) if a.reply.status >= 300 => Ending::Failed,
            Ok(a) if a.is_degraded() => Ending::Degraded,
            Ok(_) => Ending::Personal,
            Err(_) => Ending::Failed,
        }
    }
}

/// The acknowledged watches that a read through any node no longer returns.
fn lost_watches(bench: &Bench, acknowledged: &[(u32, u32)]) -> usize {
    let mut by_user: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
    for (user, video) in acknowledged {
        by_user.entry(*user).or_default().insert(*video);
    }
    let nodes = bench.http();
    let mut lost = 0;
    for (user, videos) in by_user {
        let path = format!("/api/users/{user}/history");
        let read = bench
            .rt
            .block_on(failover::send(&nodes, user as usize, "GET", &path, None))
            .ok()
            .and_then(|a| serde_json::from_str::<HistoryResponse>(&a.reply.body).ok());
        let recorded: BTreeSet<u32> = read
            .map(|h| {
                h.watched
                    .iter()
                    .filter(|w| w.recorded_at_ms.is_some())
                    .map(|w| w.video.id)
                    .collect()
            })
            .unwrap_or_default();
        lost += videos.difference(&recorded).count();
    }
    lost
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Seconds from `from_ms` until the end of the last second (from then on) in which
/// fewer than 95% of the requests due got a personal answer within 1 s.
fn recovery_s(outcomes: &[Outcome], from_ms: u64) -> f64 {
    let mut seconds: BTreeMap<u64, (u32, u32)> = BTreeMap::new();
    for o in outcomes.iter().filter(|o| o.due_ms >= from_ms) {
        let s = seconds.entry((o.due_ms - from_ms) / 1000).or_default();
        s.0 += 1;
        if o.ending == Ending::Personal && o.latency_ms < 1000.0 {
            s.1 += 1;
        }
    }
    let last_short = seconds
        .iter()
        .filter(|(_, (due, good))| f64::from(*good) < 0.95 * f64::from(*due))
        .map(|(s, _)| *s + 1)
        .max()
        .unwrap_or(0);
    last_short as f64
}

/// Runs `fault` under the load, then prints its row.
fn measure(bench: &mut Bench, round: u32, name: &str, fault: impl FnOnce(&mut Bench)) {
    let load = Load::start(bench, round);
    std::thread::sleep(Duration::from_secs(3));
    let from_ms = load.now_ms();
    fault(bench);
    let until_ms = load.now_ms() + 2000;
    std::thread::sleep(Duration::from_secs(4));
    let (outcomes, acknowledged) = load.finish(bench);
    let lost = lost_watches(bench, &acknowledged);
    let during: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.due_ms >= from_ms && o.due_ms < until_ms)
        .collect();
    let mut latencies: Vec<f64> = during.iter().map(|o| o.latency_ms).collect();
    latencies.sort_by(f64::total_cmp);
    let count = |e: Ending| outcomes.iter().filter(|o| o.ending == e).count();
    println!(
        "{name:<28} {:>6} {:>6} {:>8} {:>5} {:>6} {:>9.1} {:>9.1} {:>7.1} s {:>8.1} s",
        outcomes.len(),
        count(Ending::Failed),
        count(Ending::Degraded),
        acknowledged.len(),
        lost,
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        (until_ms - 2000 - from_ms) as f64 / 1000.0,
        recovery_s(&outcomes, from_ms),
    );
}

fn main() {
    let mut bench = Bench::start();
    println!(
        "3 nodes (api,worker), {} users; open loop at {RATE:.0} req/s (1 in 5 a watch), fail-over clients",
        bench.users
    );
    println!(
        "{:<28} {:>6} {:>6} {:>8} {:>5} {:>6} {:>9} {:>9} {:>9} {:>10}",
        "fault",
        "sent",
        "failed",
        "degraded",
        "acks",
        "lost",
        "p99 ms",
        "max ms",
        "fault",
        "recovery"
    );
    measure(&mut bench, 1, "SIGKILL n2", |b| {
        b.nodes[2].kill();
        b.wait("n2 removed", |b| b.sees_up(0, 2) && b.sees_up(1, 2));
        b.restart(2);
        b.wait("whole again", |b| b.whole());
    });
    measure(&mut bench, 2, "SIGSTOP n2 for 10 s", |b| {
        assert!(b.nodes[2].signal("STOP"));
        std::thread::sleep(Duration::from_secs(10));
        assert!(b.nodes[2].signal("CONT"));
        b.restart_downed();
    });
    measure(&mut bench, 3, "partition of n2 for 6 s", |b| {
        b.isolate_n2();
        std::thread::sleep(Duration::from_secs(6));
        b.heal();
        b.restart_downed();
    });
    measure(&mut bench, 4, "restart n2 without its disk", |b| {
        b.nodes[2].kill();
        std::fs::remove_dir_all(b.store(2)).expect("n2's store");
        b.restart(2);
        b.wait("whole again", |b| b.whole());
    });
    measure(&mut bench, 5, "rolling restart of all three", |b| {
        for i in 0..3 {
            b.restart(i);
            b.wait("whole again", |b| b.whole());
        }
    });
    println!(
        "\nfault: from the fault's start until the cluster is whole again (three Up, replicas caught up);\n\
         p99 and max: requests due from the fault's start until 2 s after it, from their due time;\n\
         recovery: until the last second with under 95% personal answers within 1 s."
    );
    for node in &mut bench.nodes {
        node.kill();
    }
    let _ = std::fs::remove_dir_all(&bench.scratch);
}
