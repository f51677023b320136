//! The recommendation service under load, measured on loopback with real node
//! processes (three nodes with roles `api` and `worker`, MovieLens 100k if fetched):
//!
//! 1. peak throughput and p50/p99 latency of `GET /api/recommendations/{user}` with
//!    64 keep-alive connections spread over the three api nodes, next to a bare axum
//!    handler that returns a fixed body of the same size, in the same run: the ratio
//!    is the figure;
//! 2. latency at half of the cluster's peak rate (open loop: requests are sent on a
//!    schedule, and latency counts from the scheduled time, so a stall is not hidden);
//! 3. the cost of transport encryption: the same load on a second cluster whose links
//!    are plaintext, in alternating rounds, saturated (throughput) and at equal offered
//!    load (latency), and the idle bytes per member of both.
//!
//! Faults under load are `service_faults`'s. Run: `cargo bench -p node --bench service`
//! (about five minutes; `-- --quick` halves the phases).

use node::tooling::client::request;
use node::tooling::keepalive::{KeepAlive, Sample};
use node::tooling::procs::{free_port, NodeProcess};
use shared::api::MembersResponse;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

const CONNECTIONS: usize = 64;

/// A request path for a pseudo-random user.
fn path_for(k: &mut u64, users: u32, bare: bool) -> String {
    *k = k
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    if bare {
        "/".into()
    } else {
        format!(
            "/api/recommendations/{}?n=10",
            1 + (*k >> 33) as u32 % users
        )
    }
}

/// Closed loop: every connection sends its next request as soon as the last answers.
async fn closed_loop(targets: &[String], users: u32, bare: bool, duration: Duration) -> Sample {
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let mut conn = KeepAlive::new(targets[i % targets.len()].clone());
            tokio::spawn(async move {
                let mut sample = Sample::default();
                let mut k = i as u64 + 1;
                while Instant::now() < deadline {
                    let path = path_for(&mut k, users, bare);
                    let started = Instant::now();
                    let result = conn.get(&path).await;
                    sample.record(&result, started);
                }
                sample
            })
        })
        .collect();
    let mut all = Sample::default();
    for t in tasks {
        all.add(&t.await.expect("client task"));
    }
    all
}

/// Open loop at `rate` per second for `duration`; samples per second of schedule.
async fn open_loop(targets: &[String], users: u32, rate: f64, duration: Duration) -> Vec<Sample> {
    let seconds = duration.as_secs() as usize;
    let per_second: Arc<std::sync::Mutex<Vec<Sample>>> =
        Arc::new(std::sync::Mutex::new(vec![Sample::default(); seconds + 1]));
    let (jobs_tx, jobs_rx) = tokio::sync::mpsc::channel::<(Instant, String)>(100_000);
    let jobs_rx = Arc::new(Mutex::new(jobs_rx));
    let start = Instant::now();
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let mut conn = KeepAlive::new(targets[i % targets.len()].clone());
            let jobs = Arc::clone(&jobs_rx);
            let per_second = Arc::clone(&per_second);
            tokio::spawn(async move {
                loop {
                    let job = jobs.lock().await.recv().await;
                    let Some((scheduled, path)) = job else { return };
                    let result = conn.get(&path).await;
                    let second = scheduled.duration_since(start).as_secs() as usize;
                    let mut all = per_second.lock().expect("samples");
                    all[second.min(seconds)].record(&result, scheduled);
                }
            })
        })
        .collect();
    let total = (rate * duration.as_secs_f64()) as u64;
    let mut k = 99u64;
    for n in 0..total {
        let scheduled = start + Duration::from_secs_f64(n as f64 / rate);
        tokio::time::sleep_until(scheduled.into()).await;
        let _ = jobs_tx
            .send((scheduled, path_for(&mut k, users, false)))
            .await;
    }
    drop(jobs_tx);
    for w in workers {
        let _ = w.await;
    }
    let mut out = per_second.lock().expect("samples").clone();
    out.truncate(seconds);
    out
}

fn print_row(name: &str, s: &Sample, seconds: f64) {
    println!(
        "{name:<34} {:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  ok {} degraded {} failed {}",
        s.total() as f64 / seconds,
        s.percentile_ms(0.5),
        s.percentile_ms(0.99),
        s.ok,
        s.degraded,
        s.failed
    );
}

fn members(rt: &tokio::runtime::Runtime, http: &str) -> Option<MembersResponse> {
    let reply = rt
        .block_on(request(http, "GET", "/cluster/members", None, None))
        .ok()?;
    serde_json::from_str(&reply.body).ok()
}

/// One node with no peers (its own seed), api and worker, on fresh ports.
fn lone_node(
    binary: &std::path::Path,
    scratch: &std::path::Path,
    data_args: &[String],
) -> NodeProcess {
    let (c, h) = (free_port(), free_port());
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
    args.extend(["--seeds".into(), format!("127.0.0.1:{c}")]);
    args.extend(["--store".into(), scratch.join("lone").display().to_string()]);
    args.extend(data_args.iter().cloned());
    let log = std::fs::File::create(scratch.join("lone.log")).expect("log");
    let address = format!("127.0.0.1:{c}");
    NodeProcess::spawn(
        binary,
        address,
        format!("127.0.0.1:{h}"),
        &args,
        Stdio::from(log),
    )
    .expect("node starts")
}

/// Waits until `http` answers a personal (not degraded) recommendation.
fn wait_serving(rt: &tokio::runtime::Runtime, http: &str) {
    let began = Instant::now();
    while !rt
        .block_on(request(http, "GET", "/api/recommendations/1", None, None))
        .is_ok_and(|r| r.status == 200 && r.body.contains("\"degraded\":false"))
    {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "{http} does not serve"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Three nodes (api, worker) seeded by each other, with `extra` flags.
fn spawn_cluster(
    binary: &std::path::Path,
    scratch: &std::path::Path,
    tag: &str,
    data_args: &[String],
    extra: &[&str],
) -> Vec<NodeProcess> {
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let seeds = ports
        .iter()
        .map(|(c, _)| format!("127.0.0.1:{c}"))
        .collect::<Vec<_>>()
        .join(",");
    ports
        .iter()
        .enumerate()
        .map(|(i, (c, h))| {
            let mut args: Vec<String> = ["--profile", "demo", "--demo", "true", "--seeds", &seeds]
                .iter()
                .chain(extra)
                .map(|s| s.to_string())
                .collect();
            args.extend(["--roles".into(), "api,worker".into(), "--store".into()]);
            args.push(scratch.join(format!("{tag}{i}")).display().to_string());
            args.extend(data_args.iter().cloned());
            let log = std::fs::File::create(scratch.join(format!("{tag}{i}.log"))).expect("log");
            NodeProcess::spawn(
                binary,
                format!("127.0.0.1:{c}"),
                format!("127.0.0.1:{h}"),
                &args,
                Stdio::from(log),
            )
            .expect("node starts")
        })
        .collect()
}

/// Waits until all three see three Up and serve personal recommendations.
fn wait_formed(rt: &tokio::runtime::Runtime, http: &[String]) {
    let ready = Instant::now();
    loop {
        let up = http.iter().all(|h| {
            members(rt, h).is_some_and(|m| {
                m.members.len() == 3
                    && m.unreachable.is_empty()
                    && m.members.iter().all(|x| x.status == "Up")
            })
        });
        if up && http.iter().all(|h| personal(rt, h)) {
            return;
        }
        assert!(
            ready.elapsed() < Duration::from_secs(60),
            "cluster did not form"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn personal(rt: &tokio::runtime::Runtime, http: &str) -> bool {
    rt.block_on(request(http, "GET", "/api/recommendations/1", None, None))
        .is_ok_and(|r| r.status == 200 && r.body.contains("\"degraded\":false"))
}

/// `rounds` measurements of each cluster, alternating which goes first, so that drift
/// in the machine's speed falls on both alike: per round, (first cluster's, second
/// cluster's).
fn alternate(
    rounds: usize,
    first: &[String],
    second: &[String],
    mut measure: impl FnMut(&[String]) -> Sample,
) -> Vec<(Sample, Sample)> {
    (0..rounds)
        .map(|round| {
            if round % 2 == 0 {
                let a = measure(first);
                (a, measure(second))
            } else {
                let b = measure(second);
                (measure(first), b)
            }
        })
        .collect()
}

/// All rounds of one side, merged.
fn merge_side(rounds: &[(Sample, Sample)], side: impl Fn(&(Sample, Sample)) -> &Sample) -> Sample {
    let mut all = Sample::default();
    rounds.iter().for_each(|round| all.add(side(round)));
    all
}

/// The median over rounds of `cost(first, second)`: each round's two measurements ran
/// back to back, so a pair shares the machine's state and the median drops the odd
/// round the pooled figure would carry.
fn paired_median(rounds: &[(Sample, Sample)], cost: impl Fn(&Sample, &Sample) -> f64) -> f64 {
    let mut costs: Vec<f64> = rounds.iter().map(|(a, b)| cost(a, b)).collect();
    costs.sort_by(f64::total_cmp);
    let mid = costs.len() / 2;
    if costs.len().is_multiple_of(2) {
        (costs[mid - 1] + costs[mid]) / 2.0
    } else {
        costs[mid]
    }
}

/// Bytes each member writes to its peers per second while idle (membership only:
/// gossip and heartbeats), from `cluster_wire_bytes_sent_total`.
fn idle_bytes_per_member(rt: &tokio::runtime::Runtime, http: &[String], secs: u64) -> f64 {
    let total = || -> u64 {
        http.iter()
            .map(|h| {
                rt.block_on(request(h, "GET", "/metrics", None, None))
                    .ok()
                    .and_then(|r| {
                        r.body.lines().find_map(|l| {
                            l.strip_prefix("cluster_wire_bytes_sent_total ")
                                .and_then(|v| v.trim().parse::<u64>().ok())
                        })
                    })
                    .unwrap_or(0)
            })
            .sum()
    };
    let before = total();
    std::thread::sleep(Duration::from_secs(secs));
    (total() - before) as f64 / secs as f64 / http.len() as f64
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let phase = Duration::from_secs(if quick { 5 } else { 10 });
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let data = repo.join("data/ml-100k");
    let (data_args, users): (Vec<String>, u32) = if data.join("ml-100k.inter").exists() {
        (vec!["--data".into(), data.display().to_string()], 943)
    } else {
        println!("MovieLens not fetched (scripts/fetch-data.sh): using the synthetic catalogue");
        (vec!["--synthetic-data".into(), "true".into()], 200)
    };
    let scratch = std::env::temp_dir().join(format!("service-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch folder");
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_node"));
    let nodes = spawn_cluster(&binary, &scratch, "enc", &data_args, &[]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let http: Vec<String> = nodes.iter().map(|n| n.http.clone()).collect();
    wait_formed(&rt, &http);
    println!(
        "3 nodes (api,worker) serving {} users; {} s per phase, {CONNECTIONS} connections",
        users,
        phase.as_secs()
    );

    // The bare handler, on its own runtime thread like a separate server.
    let body = rt
        .block_on(request(
            &http[0],
            "GET",
            "/api/recommendations/1?n=10",
            None,
            None,
        ))
        .expect("a recommendation")
        .body;
    let bare_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let bare_address = bare_listener.local_addr().expect("address").to_string();
    bare_listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let server_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        server_rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(bare_listener).expect("listener");
            let fixed: &'static str = Box::leak(body.into_boxed_str());
            let app = axum::Router::new().route(
                "/",
                axum::routing::get(move || async move {
                    ([("content-type", "application/json")], fixed)
                }),
            );
            axum::serve(listener, app).await.expect("bare server");
        });
    });

    // The same binary, recommender and HTTP stack as one node alone: no peers, so no
    // message between processes (the price of distribution is the difference).
    let lone = lone_node(&binary, &scratch, &data_args);
    wait_serving(&rt, &lone.http);
    rt.block_on(closed_loop(&http, users, false, Duration::from_secs(2))); // warm-up
    let bare = rt.block_on(closed_loop(&[bare_address], users, true, phase));
    let single = rt.block_on(closed_loop(
        std::slice::from_ref(&lone.http),
        users,
        false,
        phase,
    ));
    drop(lone);
    let cluster = rt.block_on(closed_loop(&http, users, false, phase));
    let secs = phase.as_secs_f64();
    println!("\nPeak (closed loop)");
    print_row("bare axum handler, fixed body", &bare, secs);
    print_row("GET /api/recommendations (one node alone)", &single, secs);
    print_row("GET /api/recommendations (cluster)", &cluster, secs);
    let peak = cluster.total() as f64 / secs;
    let ratio = |a: &Sample, b: &Sample| 100.0 * a.total() as f64 / b.total().max(1) as f64;
    println!(
        "ratio: cluster / bare = {:.1}%, cluster / one node alone = {:.1}%, one node alone / bare = {:.1}%",
        ratio(&cluster, &bare),
        ratio(&cluster, &single),
        ratio(&single, &bare)
    );

    let half = (peak / 2.0).max(1.0);
    let at_half = rt.block_on(open_loop(&http, users, half, phase));
    let mut merged = Sample::default();
    at_half.iter().for_each(|s| merged.add(s));
    println!("\nHalf of peak (open loop, {half:.0} req/s)");
    print_row("GET /api/recommendations (cluster)", &merged, secs);

    // The same cluster with plaintext links, beside the encrypted one: alternate
    // rounds, so that drift in the machine's speed falls on both alike.
    let plain_nodes = spawn_cluster(
        &binary,
        &scratch,
        "plain",
        &data_args,
        &["--transport-encryption", "false"],
    );
    let plain_http: Vec<String> = plain_nodes.iter().map(|n| n.http.clone()).collect();
    wait_formed(&rt, &plain_http);
    // Warm-up: as long as the encrypted cluster's peak and half-peak phases, so that
    // neither cluster enters the comparison with more history than the other.
    rt.block_on(closed_loop(&plain_http, users, false, phase * 2));

    // Saturation (closed loop): the throughput cost. Eight alternating rounds, so that
    // drift in the machine's speed falls on both alike and neither always runs warmer.
    let rounds = 8;
    let saturated = alternate(rounds, &http, &plain_http, |targets| {
        rt.block_on(closed_loop(targets, users, false, phase / 2))
    });
    // Equal load (open loop at a quarter of the plaintext peak): the latency cost. At
    // saturation a closed loop's latency is connections / throughput, so its p99 repeats
    // the throughput cost; at the same light load, queueing on the two cores shared
    // with the load generator stays small and the p99 shows what sealing adds.
    let enc_secs = phase.as_secs_f64() / 2.0 * rounds as f64;
    let (enc, plain) = (
        merge_side(&saturated, |r| &r.0),
        merge_side(&saturated, |r| &r.1),
    );
    let rate = (plain.total() as f64 / enc_secs / 4.0).max(1.0);
    let equal_load = alternate(6, &http, &plain_http, |targets| {
        let mut merged = Sample::default();
        for s in rt.block_on(open_loop(targets, users, rate, phase / 2)) {
            merged.add(&s);
        }
        merged
    });
    let idle_secs = if quick { 5 } else { 10 };
    let enc_bytes = idle_bytes_per_member(&rt, &http, idle_secs);
    let plain_bytes = idle_bytes_per_member(&rt, &plain_http, idle_secs);
    println!(
        "\nTransport encryption, saturated (closed loop, {rounds} alternating rounds, {enc_secs:.0} s each)"
    );
    print_row("cluster, encrypted links (Noise)", &enc, enc_secs);
    print_row("cluster, plaintext links", &plain, enc_secs);
    let open_secs = phase.as_secs_f64() / 2.0 * 6.0;
    println!(
        "Transport encryption, equal load (open loop, {rate:.0} req/s, 6 alternating rounds, {open_secs:.0} s each)"
    );
    let (enc_open, plain_open) = (
        merge_side(&equal_load, |r| &r.0),
        merge_side(&equal_load, |r| &r.1),
    );
    print_row("cluster, encrypted links (Noise)", &enc_open, open_secs);
    print_row("cluster, plaintext links", &plain_open, open_secs);
    let throughput_cost = |e: &Sample, p: &Sample| 100.0 - ratio(e, p);
    let p99_cost = |e: &Sample, p: &Sample| e.percentile_ms(0.99) - p.percentile_ms(0.99);
    println!(
        "pooled: throughput cost {:.1}%; p99 {:+.2} ms saturated, {:+.2} ms at equal load",
        throughput_cost(&enc, &plain),
        p99_cost(&enc, &plain),
        p99_cost(&enc_open, &plain_open),
    );
    let per_round: Vec<String> = saturated
        .iter()
        .map(|(e, p)| format!("{:.1}%", throughput_cost(e, p)))
        .collect();
    println!("throughput cost per round: {}", per_round.join(" "));
    println!(
        "median of rounds: throughput cost {:.1}%; p99 {:+.2} ms saturated, {:+.2} ms at equal load",
        paired_median(&saturated, throughput_cost),
        paired_median(&saturated, p99_cost),
        paired_median(&equal_load, p99_cost),
    );
    println!(
        "idle bytes per member {enc_bytes:.0} B/s encrypted, {plain_bytes:.0} B/s plaintext ({:+.1}%)",
        100.0 * (enc_bytes / plain_bytes.max(1.0) - 1.0)
    );
    drop(plain_nodes);
    drop(nodes);
    let _ = std::fs::remove_dir_all(&scratch);
}
