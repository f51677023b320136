//! Browser tests: headless Chromium, driven through Debian's chromedriver with
//! fantoccini, against a real three-node demo (launcher and node processes on
//! loopback, the synthetic catalogue, the built dashboard from `dist/`).
//!
//! One scenario, in order: the page shows three Up members; killing a node from the
//! page shows it unreachable, then removed, while recommendations requested from the
//! page keep arriving from the other nodes; restarting it shows it rejoining as a new incarnation;
//! partitioning a node shows the views diverging and then the minority downed; and when
//! the node the page was loaded from dies, the page carries on through the others. Screenshots go to `target/tmp/browser-artifacts/`.
//!
//! Needs `chromium`, `chromium-driver` and a built dashboard (`scripts/test.sh`
//! installs and builds them).

mod support;

use fantoccini::{Client, Locator};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::browser::{open_browser, start_driver};
use support::demo::{pids, start_demo, stop_demo, SERIAL};

const LIMIT: Duration = Duration::from_secs(60);

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-artifacts");
    std::fs::create_dir_all(&dir).expect("artifact folder");
    dir
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

async fn count(client: &Client, css: &str) -> usize {
    client
        .find_all(Locator::Css(css))
        .await
        .map(|v| v.len())
        .unwrap_or(0)
}

async fn text(client: &Client, css: &str) -> String {
    match client.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

async fn attr(client: &Client, css: &str, name: &str) -> Option<String> {
    client
        .find(Locator::Css(css))
        .await
        .ok()?
        .attr(name)
        .await
        .ok()?
}

async fn number(client: &Client, css: &str) -> u64 {
    text(client, css)
        .await
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(0)
}

async fn screenshot(client: &Client, name: &str) {
    if let Ok(png) = client.screenshot().await {
        let _ = std::fs::write(artifacts().join(format!("{name}.png")), png);
    }
}

/// Waits until `css` matches a number of elements that `ok` accepts.
async fn wait_count(client: &Client, what: &str, css: &str, ok: impl Fn(usize) -> bool) {
    let start = Instant::now();
    loop {
        let n = count(client, css).await;
        if ok(n) {
            return;
        }
        if start.elapsed() > LIMIT {
            screenshot(client, "failure").await;
            panic!("timed out waiting for {what}: `{css}` matched {n}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no `{css}`: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("cannot click `{css}`: {e}"));
}

async fn type_into(client: &Client, css: &str, value: &str) {
    let input = client.find(Locator::Css(css)).await.expect(css);
    input.clear().await.expect("clear");
    input.send_keys(value).await.expect("type");
}

/// Clicks restart on `who` and waits until it is Up with a uid other than `old_uid`.
async fn rejoin(client: &Client, who: &str, old_uid: &str) {
    click(
        client,
        &format!("button[data-action=\"restart\"][data-node=\"{who}\"]"),
    )
    .await;
    let css = format!("#topology g.member[data-node=\"{who}\"][data-status=\"Up\"]");
    let start = Instant::now();
    loop {
        let uid = attr(client, &css, "data-uid").await;
        if uid.as_ref().is_some_and(|u| u != old_uid) {
            return;
        }
        if start.elapsed() > LIMIT {
            screenshot(client, "failure").await;
            panic!("{who} did not rejoin as a new incarnation (uid {uid:?}, old {old_uid})");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn the_dashboard_shows_a_crash_a_partition_and_rejoins_while_recommendations_flow() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dist = repo().join("dist");
    assert!(
        dist.join("index.html").exists(),
        "the dashboard is not built: run scripts/build-web.sh"
    );
    let node_args = format!("--web-root {}", dist.display());
    let (child, demo, cluster_base, logs) =
        start_demo(&["--auto-restart", "false", "--node-args", &node_args]);
    demo.wait("three Up members", || {
        demo.up_count(0) == 3 && demo.up_count(2) == 3
    });
    let driver = start_driver();
    let profile = logs.join("chromium-profile");
    let node = |i: u16| format!("127.0.0.1:{}", cluster_base + i);
    let rt = &demo.rt;
    rt.block_on(async {
        let client = open_browser(&driver, &profile).await;
        client
            .goto(&format!("http://127.0.0.1:{}/", demo.http_base))
            .await
            .expect("page loads");
        wait_count(&client, "three Up members drawn", "#topology g.member[data-status=\"Up\"]", |n| n == 3).await;
        for i in 0..3 {
            let view = format!(".view[data-observer=\"{}\"][data-connected=\"true\"]", node(i));
            wait_count(&client, "a connected view per node", &view, |n| n == 1).await;
        }
        screenshot(&client, "01-three-up").await;

        // Steady recommendations from the page's load generator.
        type_into(&client, "#load-rate", "20").await;
        click(&client, "#load-start").await;
        let start = Instant::now();
        while number(&client, "#load-ok").await < 20 {
            assert!(start.elapsed() < LIMIT, "the load generator got no answers");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // Kill n2 from the page.
        let n2 = node(2);
        let old_n2_uid = attr(&client, &format!("#topology g.member[data-node=\"{n2}\"]"), "data-uid")
            .await
            .expect("n2 drawn");
        click(&client, &format!("button[data-action=\"kill\"][data-node=\"{n2}\"]")).await;
        let ok_at_kill = number(&client, "#load-ok").await;
        assert_eq!(
            number(&client, "#load-failed").await,
            0,
            "no request from the page failed before the kill"
        );
        wait_count(&client, "n2 seen unreachable", "#timeline .entry[data-kind=\"unreachableMember\"]", |n| n >= 1).await;
        screenshot(&client, "02-n2-unreachable").await;
        wait_count(&client, "n2 removed", "#timeline .entry[data-kind=\"memberRemoved\"]", |n| n >= 1).await;
        wait_count(
            &client,
            "n2 no longer Up in n0's view",
            &format!(".view[data-observer=\"{}\"] .view-member[data-node=\"{n2}\"][data-status=\"Up\"]", node(0)),
            |n| n == 0,
        )
        .await;
        screenshot(&client, "03-n2-removed").await;
        // Recommendations kept arriving, from the nodes still up.
        let start = Instant::now();
        while number(&client, "#load-ok").await < ok_at_kill + 40 {
            assert!(start.elapsed() < LIMIT, "recommendations stopped after the kill");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Only requests already on their way to the killed node's HTTP server may fail
        // (20 per second, spread over three nodes).
        let failed = number(&client, "#load-failed").await;
        assert!(failed <= 3, "{failed} requests from the page failed around the kill");
        type_into(&client, "#rec-user", "5").await;
        click(&client, "#rec-get").await;
        wait_count(&client, "ten recommendations", "#rec-results .rec-item", |n| n == 10).await;
        let served_by = text(&client, "#rec-served-by").await;
        assert!(
            served_by.contains("127.0.0.1:") && !served_by.contains(&n2),
            "served by a live worker, not the killed one: {served_by:?}"
        );
        click(&client, "#load-stop").await;

        // Restart n2 from the page: it rejoins as a new incarnation.
        rejoin(&client, &n2, &old_n2_uid).await;
        wait_count(&client, "three Up members again", "#topology g.member[data-status=\"Up\"]", |n| n == 3).await;
        screenshot(&client, "04-n2-rejoined").await;

        // Partition n1 from the page: the views diverge, then the minority is downed.
        let n1 = node(1);
        let old_n1_uid = attr(&client, &format!("#topology g.member[data-node=\"{n1}\"]"), "data-uid")
            .await
            .expect("n1 drawn");
        click(&client, &format!("button[data-action=\"partition\"][data-node=\"{n1}\"]")).await;
        wait_count(
            &client,
            "n0 sees n1 unreachable",
            &format!(".view[data-observer=\"{}\"] .view-member[data-node=\"{n1}\"][data-reachable=\"false\"]", node(0)),
            |n| n >= 1,
        )
        .await;
        wait_count(
            &client,
            "n1 sees n0 unreachable",
            &format!(".view[data-observer=\"{n1}\"] .view-member[data-node=\"{}\"][data-reachable=\"false\"]", node(0)),
            |n| n >= 1,
        )
        .await;
        screenshot(&client, "05-partition-views-diverge").await;
        wait_count(&client, "a resolver decision", "#timeline .entry[data-kind=\"resolverDecision\"]", |n| n >= 1).await;
        wait_count(
            &client,
            "n1 gone from n0's view",
            &format!(".view[data-observer=\"{}\"] .view-member[data-node=\"{n1}\"][data-status=\"Up\"]", node(0)),
            |n| n == 0,
        )
        .await;
        screenshot(&client, "06-minority-downed").await;

        // Heal, then restart n1 from the page: it rejoins as a new incarnation.
        click(&client, "#heal-all").await;
        rejoin(&client, &n1, &old_n1_uid).await;
        wait_count(&client, "three Up members again", "#topology g.member[data-status=\"Up\"]", |n| n == 3).await;
        screenshot(&client, "07-rejoined").await;

        // The node the page was loaded from dies: the page carries on through the others.
        let n0 = node(0);
        click(&client, &format!("button[data-action=\"kill\"][data-node=\"{n0}\"]")).await;
        wait_count(
            &client,
            "n1 sees n0 unreachable",
            &format!(".view[data-observer=\"{n1}\"] .view-member[data-node=\"{n0}\"][data-reachable=\"false\"]"),
            |n| n >= 1,
        )
        .await;
        let before = text(&client, "#rec-results .rec-item").await;
        type_into(&client, "#rec-user", "6").await;
        click(&client, "#rec-get").await;
        let start = Instant::now();
        loop {
            let first = text(&client, "#rec-results .rec-item").await;
            let served_by = text(&client, "#rec-served-by").await;
            if !first.is_empty() && first != before && served_by.contains("127.0.0.1:") && !served_by.contains(&n0) {
                break;
            }
            if start.elapsed() > LIMIT {
                screenshot(&client, "failure").await;
                panic!("no recommendation after the page's own node died (served by {served_by:?})");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(count(&client, "#rec-results .rec-item").await, 10);
        screenshot(&client, "08-origin-dead-page-works").await;
        client.close().await.expect("close the browser");
    });
    drop(driver);
    stop_demo(child, pids(&demo));
    let _ = std::fs::remove_dir_all(logs);
}
