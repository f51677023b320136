//! The dashboard as a static site, in simulated mode, measured in headless Chromium:
//! the gzipped size of everything the page downloads (the simulator and the membership
//! core are compiled in), the time from navigation to the first drawn topology with
//! `dist/` served by a plain static server (nginx) and no node behind it, and how many
//! simulated seconds of a seven-node cluster the page runs per real second while the
//! dashboard draws, at each offered speed from 20x up.
//!
//! Run: `scripts/build-web.sh && cargo bench -p node --bench simulated_site` (needs
//! chromium, chromium-driver and nginx; `scripts/install-browser.sh`).

#[path = "../../tests/support/browser.rs"]
mod browser;

#[path = "../../tests/support/page_metrics.rs"]
mod page_metrics;

#[path = "../../tests/support/proxy.rs"]
#[allow(dead_code)]
mod proxy;

use fantoccini::{Client, Locator};
use page_metrics::{gzipped_size, time_to_topology, wait_for_members};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const LOADS: usize = 5;
/// Real time each speed is measured for.
const MEASURE: Duration = Duration::from_secs(10);
/// Goals from the issue.
const SIZE_GOAL_KB: f64 = 350.0;
const SPEED_GOAL: f64 = 20.0;

async fn sim_now(client: &Client) -> f64 {
    let value = client
        .execute(
            "return Number(document.getElementById('sim-controls').dataset.nowMs)",
            vec![],
        )
        .await
        .expect("the simulated clock");
    value.as_f64().expect("a number")
}

/// Simulated seconds per real second at `speed`, over [`MEASURE`].
async fn ratio_at(client: &Client, speed: &str) -> f64 {
    client
        .find(Locator::Css("#sim-speed"))
        .await
        .expect("speed")
        .select_by_value(speed)
        .await
        .expect("a speed");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (sim0, real0) = (sim_now(client).await, Instant::now());
    tokio::time::sleep(MEASURE).await;
    let sim1 = sim_now(client).await;
    (sim1 - sim0) / 1000.0 / real0.elapsed().as_secs_f64()
}

fn total_gzipped(dist: &Path) -> usize {
    let mut total = 0;
    for entry in std::fs::read_dir(dist).expect("dist") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            let gz = gzipped_size(&path);
            total += gz;
            println!(
                "{:<48} {:>8} bytes  {:>7} gzipped",
                path.file_name().unwrap().to_string_lossy(),
                std::fs::metadata(&path).expect("size").len(),
                gz
            );
        }
    }
    total
}

fn main() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dist = repo.join("dist");
    assert!(
        dist.join("index.html").exists(),
        "run scripts/build-web.sh first"
    );
    let total = total_gzipped(&dist);
    let kb = total as f64 / 1024.0;
    let verdict = if kb <= SIZE_GOAL_KB { "met" } else { "MISSED" };
    println!("the whole page gzipped: {kb:.1} KB (goal: at most {SIZE_GOAL_KB} KB: {verdict})\n");

    let work = std::env::temp_dir().join(format!("simulated-site-bench-{}", std::process::id()));
    let server = proxy::start_static_server(&work.join("nginx"), &dist);
    let driver = browser::start_driver();
    let site = format!("http://127.0.0.1:{}/", server.port);
    let seven =
        format!("{site}?sim=v1;seed=7;nodes=7;profile=demo;strategy=keep-majority;at=0;actions=");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut cold = Vec::new();
        for i in 0..LOADS {
            let client = browser::open_browser(&driver, &work.join(format!("cold-{i}"))).await;
            cold.push(time_to_topology(&client, &site, 5).await);
            client.close().await.expect("close");
        }
        cold.sort();
        println!(
            "navigation to the first drawn topology (5 simulated members, static site, fresh profile): \
             median {:.0} ms, min {:.0} ms, max {:.0} ms ({LOADS} loads)\n",
            cold[LOADS / 2].as_secs_f64() * 1000.0,
            cold[0].as_secs_f64() * 1000.0,
            cold[LOADS - 1].as_secs_f64() * 1000.0
        );
        let client = browser::open_browser(&driver, &work.join("speed")).await;
        // A shared link opens paused at its moment (here 0): play, then wait for all seven.
        time_to_topology(&client, &seven, 0).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        client.find(Locator::Css("#sim-play")).await.expect("play").click().await.expect("click");
        wait_for_members(&client, 7).await;
        println!("seven simulated nodes, dashboard drawing, headless Chromium:");
        let mut fastest: f64 = 0.0;
        for speed in ["20", "100", "500"] {
            let ratio = ratio_at(&client, speed).await;
            fastest = fastest.max(ratio);
            println!("  asked {speed:>3}x: ran {ratio:>6.1} simulated s per real s");
        }
        let verdict = if fastest >= SPEED_GOAL { "met" } else { "MISSED" };
        println!("  the page keeps up with at least {fastest:.0}x real time (goal: at least {SPEED_GOAL}x: {verdict})");
        // A rewind halfway back through the long run the speeds left behind.
        client.find(Locator::Css("#sim-play")).await.expect("pause").click().await.expect("click");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let end = sim_now(&client).await;
        let target = ((end / 2.0) / 100.0).round() * 100.0;
        let started = Instant::now();
        client
            .execute(
                "const s = document.getElementById('sim-scrubber'); s.value = String(arguments[0]); \
                 s.dispatchEvent(new Event('change', { bubbles: true }));",
                vec![serde_json::json!(target)],
            )
            .await
            .expect("scrub");
        while (sim_now(&client).await - target).abs() > 1.0 {
            assert!(started.elapsed() < Duration::from_secs(120), "the rewind never finished");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        println!(
            "  rewinding from {:.0} to {:.0} simulated s (from a checkpoint): {:.0} ms",
            end / 1000.0,
            target / 1000.0,
            started.elapsed().as_secs_f64() * 1000.0
        );
        client.close().await.expect("close");
    });
    drop(driver);
    drop(server);
    let _ = std::fs::remove_dir_all(work);
}
