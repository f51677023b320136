//! The dashboard, measured: the gzipped size of what a browser downloads (wasm and
//! JavaScript in `dist/`), and the time from navigation to the first drawn topology
//! (three members in the SVG) in headless Chromium against a three-node demo, for
//! cold loads (a fresh browser profile each time) and warm ones (cached).
//!
//! Run: `scripts/build-web.sh && cargo bench -p node --bench dashboard` (needs
//! chromium and chromium-driver; `scripts/install-browser.sh`).

#[path = "../../tests/support/demo.rs"]
#[allow(dead_code)]
mod demo;

#[path = "../../tests/support/browser.rs"]
mod browser;

#[path = "../../tests/support/page_metrics.rs"]
mod page_metrics;

use page_metrics::{gzipped_size, time_to_topology};
use std::path::PathBuf;
use std::time::Duration;

const LOADS: usize = 10;

fn summary(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<28} median {:>6.0} ms   min {:>6.0} ms   max {:>6.0} ms   ({} loads)",
        ms(&times[times.len() / 2]),
        ms(&times[0]),
        ms(&times[times.len() - 1]),
        times.len()
    );
}

fn main() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dist = repo.join("dist");
    assert!(
        dist.join("index.html").exists(),
        "run scripts/build-web.sh first"
    );
    let mut total = 0;
    for entry in std::fs::read_dir(&dist).expect("dist") {
        let path = entry.expect("entry").path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext == "wasm" || ext == "js" {
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
    println!(
        "wasm + js gzipped: {:.1} KB (budget: 345 KB, scripts/build-web.sh)\n",
        total as f64 / 1024.0
    );

    let dist_arg = dist.display().to_string();
    let (child, d, _, logs) = demo::start_demo(&["--web-root", &dist_arg]);
    d.wait("three Up members", || {
        d.up_count(0) == 3 && d.up_count(2) == 3
    });
    let driver = browser::start_driver();
    // The launcher is the one origin: it serves the page and relays every node.
    let url = format!("http://{}/", d.launcher);
    let (cold, warm) = d.rt.block_on(async {
        let mut cold = Vec::new();
        for i in 0..LOADS {
            let profile = logs.join(format!("profile-cold-{i}"));
            let client = browser::open_browser(&driver, &profile).await;
            cold.push(time_to_topology(&client, &url, 3).await);
            client.close().await.expect("close");
        }
        let client = browser::open_browser(&driver, &logs.join("profile-warm")).await;
        time_to_topology(&client, &url, 3).await;
        let mut warm = Vec::new();
        for _ in 0..LOADS {
            warm.push(time_to_topology(&client, &url, 3).await);
        }
        client.close().await.expect("close");
        (cold, warm)
    });
    println!("Navigation to first drawn topology (3 members), headless Chromium, loopback:");
    summary("cold (fresh profile)", cold);
    summary("warm (cached)", warm);
    drop(driver);
    demo::stop_demo(child, demo::pids(&d));
    let _ = std::fs::remove_dir_all(logs);
}
