//! Throughput against cluster size (issue 17's measure), in containers of the image,
//! each capped with `docker update --cpus` (0.25 by default) so that the machine's two
//! cores are not the limit, with the load generator outside them, on the host.
//!
//! For each size (1, 2, 3, 4 and 6 nodes by default, every one `api` and `worker`):
//! 1. the compose project of that size (`Deployment::sized`), every container capped,
//!    formed (every node Up in every view) and warmed up;
//! 2. throughput, p50 and p99 of a closed loop, `--per-node` keep-alive connections per
//!    node, one request in five a watch (`POST /api/users/{u}/watched`), the others
//!    recommendations (`GET /api/recommendations/{u}`), users and videos pseudo-random;
//! 3. the cost of a read and of a write: service messages and bytes that every node
//!    sent (`cluster_messages_total` / `cluster_bytes_total`, kinds `svc_*` less the
//!    background ones: anti-entropy digests and buckets, hellos), per answered request,
//!    in a reads-only and a writes-only closed loop;
//! 4. the balance: the watches the fullest node holds against the mean (`/api/replica`).
//!
//! Then elasticity under load, 3 -> 6 -> 3 nodes (`elastic.rs`; `--no-elastic` skips it).
//!
//! Run: `scripts/build-image.sh --no-data && cargo bench -p node --bench scale`
//! (`-- --sizes 1,3,6,12 --cpus 0.25 --secs 15 --per-node 8 --cost-secs 5
//! --elastic-clients 16`). Sizes
//! whose caps add up to more than the machine's cores say so in their row: their
//! throughput measures the machine, their costs still hold.

use node::tooling::client::request;
use node::tooling::containers::{docker_answers, Deployment};
use node::tooling::keepalive::{Answer, KeepAlive, Sample};
use shared::api::ReplicaStatus;
use std::time::{Duration, Instant};

mod elastic;

/// Users and videos of the synthetic catalogue the containers serve.
const USERS: u64 = 200;
const VIDEOS: u64 = 300;
/// Kinds of service message that are not part of answering a request.
const BACKGROUND: [&str; 3] = ["svc_digest", "svc_buckets", "svc_hello"];

struct Options {
    sizes: Vec<usize>,
    cpus: f64,
    secs: u64,
    per_node: usize,
    cost_secs: u64,
    elastic_clients: usize,
    elastic: bool,
}

impl Options {
    fn parse() -> Options {
        let mut o = Options {
            sizes: vec![1, 2, 3, 4, 6],
            cpus: 0.25,
            secs: 15,
            per_node: 8,
            cost_secs: 5,
            elastic_clients: 16,
            elastic: true,
        };
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().cloned().unwrap_or_default();
            match flag.as_str() {
                "--sizes" => {
                    o.sizes = value()
                        .split(',')
                        .filter(|s| !s.trim().is_empty())
                        .map(|s| s.trim().parse().expect("--sizes: numbers"))
                        .collect()
                }
                "--cpus" => o.cpus = value().parse().expect("--cpus: a number"),
                "--secs" => o.secs = value().parse().expect("--secs: seconds"),
                "--per-node" => o.per_node = value().parse().expect("--per-node: a count"),
                "--cost-secs" => o.cost_secs = value().parse().expect("--cost-secs: seconds"),
                "--elastic-clients" => {
                    o.elastic_clients = value().parse().expect("--elastic-clients: a count")
                }
                "--no-elastic" => o.elastic = false,
                _ => {} // cargo bench passes --bench
            }
        }
        o
    }
}

/// What the load generator sends.
#[derive(Clone, Copy, PartialEq)]
enum Mix {
    /// One request in five a watch.
    Mixed,
    Reads,
    Writes,
}

/// A pseudo-random number below `bound` (a linear congruential step).
fn next(state: &mut u64, bound: u64) -> u64 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (*state >> 33) % bound
}

/// One request of `mix`, the `count`-th of its connection.
async fn one_request(
    conn: &mut KeepAlive,
    mix: Mix,
    count: u64,
    state: &mut u64,
) -> Result<Answer, String> {
    let user = 1 + next(state, USERS);
    let write = match mix {
        Mix::Mixed => count % 5 == 4,
        Mix::Reads => false,
        Mix::Writes => true,
    };
    if write {
        let body = format!("{{\"video\":{}}}", 1 + next(state, VIDEOS));
        conn.post_json(&format!("/api/users/{user}/watched"), &body)
            .await
    } else {
        conn.get(&format!("/api/recommendations/{user}?n=10")).await
    }
}

/// A closed loop of `per_node` connections to each target for `duration`.
async fn closed_loop(targets: &[String], per_node: usize, mix: Mix, duration: Duration) -> Sample {
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..per_node * targets.len())
        .map(|i| {
            let mut conn = KeepAlive::new(targets[i % targets.len()].clone());
            tokio::spawn(async move {
                let mut sample = Sample::default();
                let mut state = i as u64 + 1;
                let mut count = i as u64;
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let answer = one_request(&mut conn, mix, count, &mut state).await;
                    sample.record(&answer, started);
                    count += 1;
                }
                sample
            })
        })
        .collect();
    let mut all = Sample::default();
    for task in tasks {
        all.add(&task.await.expect("client task"));
    }
    all
}

/// Service messages and bytes every node has sent so far for answering requests.
async fn service_traffic(targets: &[String]) -> (u64, u64) {
    let mut totals = (0, 0);
    for http in targets {
        let metrics = request(http, "GET", "/metrics", None, None)
            .await
            .expect("metrics")
            .body;
        for line in metrics.lines() {
            let counted = line.contains("direction=\"sent\"")
                && line.contains("kind=\"svc_")
                && !BACKGROUND
                    .iter()
                    .any(|k| line.contains(&format!("\"{k}\"")));
            let value: u64 = match line.rsplit(' ').next().and_then(|v| v.parse().ok()) {
                Some(v) if counted => v,
                _ => continue,
            };
            if line.starts_with("cluster_messages_total") {
                totals.0 += value;
            } else if line.starts_with("cluster_bytes_total") {
                totals.1 += value;
            }
        }
    }
    totals
}

/// Messages and bytes sent per answered request of a `mix`-only closed loop.
async fn cost(targets: &[String], per_node: usize, mix: Mix, secs: u64) -> (f64, f64) {
    let before = service_traffic(targets).await;
    let sample = closed_loop(targets, per_node, mix, Duration::from_secs(secs)).await;
    let after = service_traffic(targets).await;
    let answered = sample.answered().max(1) as f64;
    (
        (after.0 - before.0) as f64 / answered,
        (after.1 - before.1) as f64 / answered,
    )
}

/// Whether every node's view shows `n` members, all Up.
fn formed(deployment: &Deployment, targets: &[String], n: usize) -> bool {
    targets
        .iter()
        .all(|http| deployment.up_members(http).is_some_and(|up| up.len() == n))
}

struct Row {
    size: usize,
    throughput: f64,
    sample: Sample,
    read: (f64, f64),
    write: (f64, f64),
    /// The watches the fullest node holds, against the mean of all nodes.
    balance: f64,
}

/// How many more watches the fullest node holds than the mean (`/api/replica`).
fn balance(deployment: &Deployment, targets: &[String]) -> f64 {
    let held: Vec<f64> = targets
        .iter()
        .map(|http| {
            let reply = deployment
                .call(http, "GET", "/api/replica")
                .expect("replica answers");
            let status: ReplicaStatus = serde_json::from_str(&reply.body).expect("replica json");
            status.watches as f64
        })
        .collect();
    let mean = held.iter().sum::<f64>() / held.len().max(1) as f64;
    held.iter().copied().fold(0.0, f64::max) / mean.max(1.0)
}

fn measure(rt: &tokio::runtime::Runtime, o: &Options, size: usize) -> Row {
    let deployment = Deployment::sized(&format!("scale{size}"), size);
    let containers = deployment.all_containers();
    assert_eq!(
        containers.len(),
        size,
        "containers of a {size}-node project"
    );
    let cpus = o.cpus.to_string();
    for id in &containers {
        deployment.docker(&["update", "--cpus", &cpus, id]);
    }
    let targets: Vec<String> = containers
        .iter()
        .map(|id| format!("{}:8558", deployment.ip(id)))
        .collect();
    let took = deployment.wait(
        Duration::from_secs(180),
        "every node Up in every view",
        |d| formed(d, &targets, size),
    );
    eprintln!("{size} nodes formed in {took:.1?}; warming up");
    rt.block_on(closed_loop(
        &targets,
        o.per_node,
        Mix::Mixed,
        Duration::from_secs(5),
    ));
    let sample = rt.block_on(closed_loop(
        &targets,
        o.per_node,
        Mix::Mixed,
        Duration::from_secs(o.secs),
    ));
    let read = rt.block_on(cost(&targets, o.per_node, Mix::Reads, o.cost_secs));
    let write = rt.block_on(cost(&targets, o.per_node, Mix::Writes, o.cost_secs));
    assert!(
        formed(&deployment, &targets, size),
        "a member was lost under load"
    );
    Row {
        size,
        throughput: sample.answered() as f64 / o.secs as f64,
        sample,
        read,
        write,
        balance: balance(&deployment, &targets),
    }
}

fn print_row(row: &Row, base: f64, cores: f64, cpus: f64) {
    let bound = if row.size as f64 * cpus > cores - 0.5 {
        "  (caps exceed the cores the load generator leaves)"
    } else {
        ""
    };
    println!(
        "{:>5} | {:>8.0} {:>5.2}x | {:>7.1} {:>8.1} | {:>6} {:>8} | {:>5.1} {:>8.0} | {:>5.1} {:>8.0} | {:>5.2}x{bound}",
        row.size,
        row.throughput,
        row.throughput / base,
        row.sample.percentile_ms(0.5),
        row.sample.percentile_ms(0.99),
        row.sample.failed,
        row.sample.degraded,
        row.read.0,
        row.read.1,
        row.write.0,
        row.write.1,
        row.balance,
    );
}

fn main() {
    let o = Options::parse();
    if !docker_answers() {
        println!("no Docker daemon answers: nothing to measure");
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cores = std::thread::available_parallelism().map_or(2.0, |n| n.get() as f64);
    println!(
        "every node api+worker, capped at {} CPU; closed loop, {} connections per node, one request in five a watch; {} s per size",
        o.cpus, o.per_node, o.secs
    );
    println!("nodes |  req/s  vs 1st | p50 ms   p99 ms | failed degraded | msgs/read  B/read | msgs/write B/write | fullest/mean");
    let mut base = None;
    for &size in &o.sizes {
        let row = measure(&rt, &o, size);
        let base = *base.get_or_insert(row.throughput);
        print_row(&row, base, cores, o.cpus);
    }
    if o.elastic {
        elastic::run(o.cpus, o.elastic_clients);
    }
}
