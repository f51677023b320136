//! Elasticity under load: a capped three-node project grows to six (`--scale
//! worker=3`) and shrinks back to three (`--scale worker=0`: SIGTERM, a graceful
//! leave), while clients that behave like real ones (`tooling::failover`: any of the
//! three stable api nodes, fail-over on an error or a slow answer) keep sending, one
//! request in five a watch. Reported per step: when every view shows the new size,
//! when every replica is ready (its copy caught up, the hand-off of today's design),
//! when throughput settles (the first second after which three seconds in a row stay
//! within 15% of the phase's closing level); and over the whole run the failed
//! requests and the acknowledged watches that a history read no longer shows.

use node::tooling::containers::Deployment;
use node::tooling::failover;
use shared::api::{HistoryResponse, ReplicaStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Seconds the load runs before the first step, between the steps, and after.
const PHASE_SECS: u64 = 20;

/// What the clients saw.
#[derive(Default)]
struct Tally {
    /// Answered requests per second since the load began.
    per_second: Vec<u64>,
    failures: Vec<String>,
    acknowledged: Vec<(u64, u64)>,
}

/// Clients on a thread of their own until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    thread: std::thread::JoinHandle<()>,
    started: Instant,
}

impl Load {
    fn start(nodes: Vec<String>, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let started = Instant::now();
        let (stop2, tally2) = (Arc::clone(&stop), Arc::clone(&tally));
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let tasks: Vec<_> = (0..clients)
                    .map(|i| {
                        let client = Client {
                            nodes: nodes.clone(),
                            stop: Arc::clone(&stop2),
                            tally: Arc::clone(&tally2),
                            started,
                        };
                        tokio::spawn(client.run(i as u64))
                    })
                    .collect();
                for task in tasks {
                    let _ = task.await;
                }
            });
        });
        Load {
            stop,
            tally,
            thread,
            started,
        }
    }

    fn second(&self) -> usize {
        self.started.elapsed().as_secs() as usize
    }

    fn finish(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("load thread");
        Arc::try_unwrap(self.tally)
            .ok()
            .expect("clients gone")
            .into_inner()
            .expect("tally")
    }
}

/// One client: requests one after another until stopped.
struct Client {
    nodes: Vec<String>,
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    started: Instant,
}

impl Client {
    async fn run(self, id: u64) {
        let mut turn = id;
        while !self.stop.load(Ordering::Relaxed) {
            turn += 1;
            let user = 1 + (turn * 7919 + id * 104_729) % super::USERS;
            let video = 1 + (turn * 31 + id) % super::VIDEOS;
            let write = turn.is_multiple_of(5);
            let (method, path, body) = if write {
                let body = format!("{{\"video\":{video}}}");
                ("POST", format!("/api/users/{user}/watched"), Some(body))
            } else {
                ("GET", format!("/api/recommendations/{user}?n=10"), None)
            };
            let first = turn as usize % self.nodes.len();
            let outcome = failover::send(&self.nodes, first, method, &path, body).await;
            let second = self.started.elapsed().as_secs() as usize;
            let mut t = self.tally.lock().expect("tally");
            match outcome {
                Ok(a) if (200..300).contains(&a.reply.status) => {
                    if t.per_second.len() <= second {
                        t.per_second.resize(second + 1, 0);
                    }
                    t.per_second[second] += 1;
                    if write {
                        t.acknowledged.push((user, video));
                    }
                }
                Ok(a) => t
                    .failures
                    .push(format!("{method} {path}: {}", a.reply.status)),
                Err(e) => t.failures.push(format!("{method} {path}: {e}")),
            }
        }
    }
}

/// The HTTP addresses of every container of the project.
fn https(d: &Deployment) -> Vec<String> {
    d.all_containers()
        .iter()
        .map(|id| format!("{}:8558", d.ip(id)))
        .collect()
}

/// Whether every node's replica is ready.
fn all_ready(d: &Deployment, nodes: &[String]) -> bool {
    nodes.iter().all(|http| {
        d.call(http, "GET", "/api/replica")
            .ok()
            .and_then(|r| serde_json::from_str::<ReplicaStatus>(&r.body).ok())
            .is_some_and(|r| r.ready)
    })
}

/// Changes the project to `size` nodes and reports, in seconds since `load` began,
/// when the step was taken, when every view showed it, and when every replica was ready.
fn step(d: &Deployment, load: &Load, size: usize, cpus: &str) -> [usize; 3] {
    let taken = load.second();
    let workers = format!("worker={}", size - 3);
    d.compose(&["up", "-d", "--scale", &workers, "--no-recreate"]);
    for id in d.all_containers() {
        d.docker(&["update", "--cpus", cpus, &id]);
    }
    let nodes = https(d);
    d.wait(
        Duration::from_secs(180),
        "every view shows the new size",
        |d| super::formed(d, &nodes, size),
    );
    let shown = load.second();
    d.wait(Duration::from_secs(180), "every replica ready", |d| {
        all_ready(d, &nodes)
    });
    [taken, shown, load.second()]
}

/// The first second from `from` after which three seconds in a row stay within 15% of
/// the mean of the phase's last five seconds (before `to`).
fn settled(per_second: &[u64], from: usize, to: usize) -> Option<usize> {
    let to = to.min(per_second.len());
    let closing = &per_second[to.saturating_sub(5)..to];
    let level = closing.iter().sum::<u64>() as f64 / closing.len().max(1) as f64;
    let near = |s: usize| (per_second[s] as f64 - level).abs() <= 0.15 * level;
    (from..to.saturating_sub(3)).find(|&s| (s..s + 3).all(near))
}

fn mean(per_second: &[u64], from: usize, to: usize) -> f64 {
    let window = &per_second[from.min(per_second.len())..to.min(per_second.len())];
    window.iter().sum::<u64>() as f64 / window.len().max(1) as f64
}

/// Acknowledged watches that a history read from `http` does not show (one read
/// per user).
fn lost(d: &Deployment, http: &str, acknowledged: &[(u64, u64)]) -> usize {
    let mut by_user: std::collections::BTreeMap<u64, Vec<u64>> = Default::default();
    for (user, video) in acknowledged {
        by_user.entry(*user).or_default().push(*video);
    }
    by_user
        .iter()
        .map(|(user, videos)| {
            let reply = d
                .call(http, "GET", &format!("/api/users/{user}/history"))
                .expect("history answers");
            let history: HistoryResponse = serde_json::from_str(&reply.body).expect("history json");
            let shown = |video: &&u64| {
                history
                    .watched
                    .iter()
                    .any(|w| u64::from(w.video.id) == **video)
            };
            videos.iter().filter(|v| !shown(v)).count()
        })
        .sum()
}

/// Runs 3 -> 6 -> 3 under load and prints what it saw.
pub fn run(cpus: f64, clients: usize) {
    let cpus = cpus.to_string();
    let d = Deployment::sized("elastic", 3);
    for id in d.all_containers() {
        d.docker(&["update", "--cpus", &cpus, &id]);
    }
    let stable = https(&d);
    d.wait(Duration::from_secs(180), "three nodes Up", |d| {
        super::formed(d, &stable, 3)
    });
    let load = Load::start(stable.clone(), clients);
    std::thread::sleep(Duration::from_secs(PHASE_SECS));
    let grow = step(&d, &load, 6, &cpus);
    std::thread::sleep(Duration::from_secs(PHASE_SECS));
    let shrink = step(&d, &load, 3, &cpus);
    std::thread::sleep(Duration::from_secs(PHASE_SECS));
    let end = load.second();
    let tally = load.finish();
    let lost = lost(&d, &stable[0], &tally.acknowledged);
    let rate = |from, to| mean(&tally.per_second, from, to);
    let settle = |[taken, ..]: [usize; 3], next: usize| {
        settled(&tally.per_second, taken, next)
            .map_or("never".to_string(), |s| format!("{} s", s - taken))
    };
    println!(
        "\nelasticity under load (capped at {cpus} CPU, {clients} fail-over clients on the three stable api nodes)"
    );
    println!(
        "step    | every view shows it | every replica ready | throughput settled | req/s before -> after"
    );
    for (name, s, next, before) in [
        ("3 -> 6", grow, shrink[0], 0),
        ("6 -> 3", shrink, end, grow[2]),
    ] {
        println!(
            "{name}  | {:>17} s | {:>17} s | {:>18} | {:.0} -> {:.0}",
            s[1] - s[0],
            s[2] - s[0],
            settle(s, next),
            rate(before.max(s[0].saturating_sub(10)), s[0]),
            rate(next.saturating_sub(10), next),
        );
    }
    println!(
        "requests answered {}, failed {}, watches acknowledged {}, lost {lost}",
        tally.per_second.iter().sum::<u64>(),
        tally.failures.len(),
        tally.acknowledged.len()
    );
    for failure in tally.failures.iter().take(5) {
        println!("  failed: {failure}");
    }
}
