//! The hosted demo under visitors: `CLIENTS` dashboard clients (default 500), each
//! holding one relayed event stream per node through the launcher, as a browser tab
//! does, while faults are injected through the launcher (a kill and restart, a pause
//! and resume, a partition and heal, in turn). Reports the relay's memory (resident set
//! of the launcher process, which is the relay) and CPU, and the latency of events to
//! the clients: the time from a node stamping an event to a client reading it (one
//! machine, one clock), p50 and p99.
//!
//! The goal (issue: hosted demo) is at most 100 MB of relay memory and an event p99
//! under 250 ms.
//!
//! Run: `cargo bench -p node --bench visitors` (`CLIENTS=200`, `FAULT_SECS=60` to
//! change the load and the length).

#[path = "../../tests/support/demo.rs"]
#[allow(dead_code)]
mod demo;

use futures_util::StreamExt;
use shared::api::StreamMessage;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Resident memory (kB) and CPU ticks (user + system) of a process.
fn usage(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (rss, ticks(11) + ticks(12))
}

/// What the clients saw.
#[derive(Default)]
struct Seen {
    latencies_ms: Vec<u64>,
    snapshots: u64,
    dropped: u64,
}

/// One relayed stream, reconnecting (like the page) until `stop`.
async fn client_stream(
    url: String,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::Ordering;
    while !stop.load(Ordering::Relaxed) {
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(&url).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        loop {
            let next = tokio::time::timeout(Duration::from_millis(500), ws.next()).await;
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let message = match next {
                Err(_) => continue,
                Ok(Some(Ok(message))) => message,
                Ok(_) => break,
            };
            let Ok(text) = message.into_text() else {
                continue;
            };
            match serde_json::from_str::<StreamMessage>(&text) {
                Ok(StreamMessage::Event { at_ms, .. }) | Ok(StreamMessage::Fault { at_ms, .. }) => {
                    let latency = now_ms().saturating_sub(at_ms);
                    seen.lock().unwrap().latencies_ms.push(latency);
                }
                Ok(StreamMessage::Snapshot { .. }) => seen.lock().unwrap().snapshots += 1,
                Err(_) => {}
            }
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
        seen.lock().unwrap().dropped += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn main() {
    let clients = env_or("CLIENTS", 500) as usize;
    let fault_secs = env_or("FAULT_SECS", 90);
    let (child, demo_handle, _, logs) = demo::start_demo(&["--auto-restart", "true"]);
    let launcher_pid = child.id();
    demo_handle.wait("three Up members", || {
        demo_handle.up_count(0) == 3 && demo_handle.up_count(2) == 3
    });
    let nodes: Vec<String> = (0..3)
        .map(|i| format!("127.0.0.1:{}", demo_handle.http_base + i))
        .collect();
    let (rss_before, _) = usage(launcher_pid);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let launcher = demo_handle.launcher.clone();
    rt.block_on(async {
        for _ in 0..clients {
            for http in &nodes {
                let url = format!("ws://{launcher}/nodes/{http}/ws");
                tokio::spawn(client_stream(url, Arc::clone(&seen), Arc::clone(&stop)));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    // Let every client connect and take its snapshots.
    let connected_by = Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().snapshots < (clients * nodes.len()) as u64
        && Instant::now() < connected_by
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let snapshots_at_start = seen.lock().unwrap().snapshots;
    seen.lock().unwrap().latencies_ms.clear();
    let (_, cpu_start) = usage(launcher_pid);
    let began = Instant::now();
    let mut peak_rss = 0;
    let faults = [
        ("/launcher/nodes/2/kill", "/launcher/nodes/2/restart"),
        ("/launcher/nodes/1/pause", "/launcher/nodes/1/resume"),
        ("/launcher/nodes/2/partition", "/launcher/nodes/2/heal"),
    ];
    let mut round = 0;
    while began.elapsed() < Duration::from_secs(fault_secs) {
        let (inject, undo) = faults[round % faults.len()];
        round += 1;
        demo_handle.post(inject);
        for _ in 0..8 {
            std::thread::sleep(Duration::from_secs(1));
            peak_rss = peak_rss.max(usage(launcher_pid).0);
        }
        demo_handle.post(undo);
        for _ in 0..12 {
            std::thread::sleep(Duration::from_secs(1));
            peak_rss = peak_rss.max(usage(launcher_pid).0);
        }
    }
    let wall = began.elapsed().as_secs_f64();
    let (_, cpu_end) = usage(launcher_pid);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = seen.lock().unwrap();
    let mut latencies = seen.latencies_ms.clone();
    latencies.sort_unstable();
    let ticks_per_sec = 100.0;
    let cpu_share = (cpu_end - cpu_start) as f64 / ticks_per_sec / wall * 100.0;
    println!("visitors: {clients} dashboard clients x {} relayed streams = {} streams through the launcher", nodes.len(), clients * nodes.len());
    println!(
        "  snapshots at connect: {snapshots_at_start} of {}",
        clients * nodes.len()
    );
    println!("  faults injected: {round} rounds of kill/restart, pause/resume, partition/heal over {wall:.0} s");
    println!(
        "  relay memory: {:.1} MB before the clients, {:.1} MB peak (goal: at most 100 MB)",
        rss_before as f64 / 1024.0,
        peak_rss as f64 / 1024.0
    );
    println!("  relay CPU: {cpu_share:.0}% of one core on average");
    println!(
        "  event latency to the clients: p50 {} ms, p99 {} ms, max {} ms over {} events (goal: p99 under 250 ms)",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0),
        latencies.len()
    );
    println!(
        "  streams that dropped and reconnected: {} (a killed node's streams drop by design)",
        seen.dropped
    );
    drop(seen);
    let pids = demo::pids(&demo_handle);
    rt.shutdown_timeout(Duration::from_secs(2));
    demo::stop_demo(child, pids);
    let _ = std::fs::remove_dir_all(logs);
}
