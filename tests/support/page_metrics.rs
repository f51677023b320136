//! Bench support: what the dashboard benches measure of a page the same way, the
//! gzipped size of a built file and the time until the topology draws its members.

use fantoccini::Client;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a page may take to draw its topology before the bench gives up.
const DRAW_LIMIT: Duration = Duration::from_secs(30);

/// The size of `path` compressed by `gzip -9` (gzip reads the file itself).
pub fn gzipped_size(path: &Path) -> usize {
    let out = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .output()
        .expect("gzip runs");
    out.stdout.len()
}

/// Members the page's topology draws now.
pub async fn members_drawn(client: &Client) -> u64 {
    client
        .execute(
            "return document.querySelectorAll('#topology g.member').length",
            vec![],
        )
        .await
        .ok()
        .and_then(|v| v.as_u64())
        .unwrap_or(0)
}

/// Waits until the page draws at least `members` members; returns how long it took.
pub async fn wait_for_members(client: &Client, members: u64) -> Duration {
    let start = Instant::now();
    while members_drawn(client).await < members {
        assert!(start.elapsed() < DRAW_LIMIT, "topology never drawn");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

/// Navigates to `url` and returns the time until `members` members are drawn.
pub async fn time_to_topology(client: &Client, url: &str, members: u64) -> Duration {
    let start = Instant::now();
    client.goto(url).await.expect("navigate");
    wait_for_members(client, members).await;
    start.elapsed()
}
