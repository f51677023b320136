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
use support::browser::{open_browser, open_browser_with, start_driver, start_driver_with};
use support::demo::{pids, start_demo, stop_demo, Demo, SERIAL};

const LIMIT: Duration = Duration::from_secs(60);

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-artifacts");
    std::fs::create_dir_all(&dir).expect("artifact folder");
    dir
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A three-node demo (no auto-restart) whose launcher serves the built dashboard, with
/// `extra` flags, once all three are Up.
fn demo_serving_the_dashboard(extra: &[&str]) -> (std::process::Child, Demo, u16, PathBuf) {
    let dist = repo().join("dist");
    assert!(
        dist.join("index.html").exists(),
        "the dashboard is not built: run scripts/build-web.sh"
    );
    let dist_arg = dist.display().to_string();
    let mut flags = vec!["--auto-restart", "false", "--web-root", &dist_arg];
    flags.extend_from_slice(extra);
    let (child, demo, cluster_base, logs) = start_demo(&flags);
    forget_reported_logs();
    report_log_on_failure(logs.clone());
    demo.wait("three Up members", || {
        demo.up_count(0) == 3 && demo.up_count(2) == 3
    });
    (child, demo, cluster_base, logs)
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

/// Files (or folders of `.log` files) whose tails a failing wait prints (a proxy's error
/// log, the demo's logs), so that a failure on a machine nobody can look at explains itself.
static REPORTED_LOGS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

fn report_log_on_failure(path: PathBuf) {
    REPORTED_LOGS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(path);
}

fn forget_reported_logs() {
    REPORTED_LOGS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clear();
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Saves a screenshot and fails with `why`, the page's address and visible text, and the
/// tails of the reported logs.
async fn fail(client: &Client, why: String) -> ! {
    screenshot(client, "failure").await;
    let url = client
        .current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_else(|e| format!("(no url: {e})"));
    let page: String = client
        .execute(
            "return document.body ? document.body.innerText : '(no body)'",
            vec![],
        )
        .await
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_else(|| "(the page did not answer)".into());
    let mut report = format!("{why}\n--- page {url}\n{}", tail(&page, 40));
    let reported = REPORTED_LOGS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let mut logs = Vec::new();
    for path in reported {
        match std::fs::read_dir(&path) {
            Ok(dir) => logs.extend(
                dir.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "log")),
            ),
            Err(_) => logs.push(path),
        }
    }
    for log in logs {
        let text = std::fs::read_to_string(&log).unwrap_or_else(|e| format!("({e})"));
        report += &format!("\n--- {}\n{}", log.display(), tail(&text, 30));
    }
    panic!("{report}");
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
            fail(
                client,
                format!("timed out waiting for {what}: `{css}` matched {n}"),
            )
            .await;
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
            fail(
                client,
                format!("{who} did not rejoin as a new incarnation (uid {uid:?}, old {old_uid})"),
            )
            .await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn the_dashboard_shows_a_crash_a_partition_and_rejoins_while_recommendations_flow() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (child, demo, cluster_base, logs) = demo_serving_the_dashboard(&[]);
    let driver = start_driver();
    let profile = logs.join("chromium-profile");
    let node = |i: u16| format!("127.0.0.1:{}", cluster_base + i);
    let rt = &demo.rt;
    rt.block_on(async {
        let client = open_browser(&driver, &profile).await;
        client
            .goto(&format!("http://{}/", demo.launcher))
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
        // The page's load generator is a real client: a request the killed node took
        // is retried on another node, so none fails.
        assert_eq!(number(&client, "#load-failed").await, 0, "no request from the page failed around the kill");
        type_into(&client, "#rec-user", "5").await;
        click(&client, "#rec-get").await;
        wait_count(&client, "ten recommendations", "#rec-results .rec-item", |n| n == 10).await;
        let served_by = text(&client, "#rec-served-by").await;
        assert!(
            served_by.contains("127.0.0.1:") && !served_by.contains(&n2),
            "served by a live worker, not the killed one: {served_by:?}"
        );

        // Restart n2 from the page: it rejoins as a new incarnation.
        rejoin(&client, &n2, &old_n2_uid).await;
        wait_count(&client, "three Up members again", "#topology g.member[data-status=\"Up\"]", |n| n == 3).await;
        screenshot(&client, "04-n2-rejoined").await;

        // Pause n2 (SIGSTOP: it accepts connections and never answers), then resume it;
        // the resolver may down it meanwhile, and then it is restarted.
        let paused_uid = attr(&client, &format!("#topology g.member[data-node=\"{n2}\"]"), "data-uid")
            .await
            .expect("n2 drawn");
        click(&client, &format!("button[data-action=\"pause\"][data-node=\"{n2}\"]")).await;
        wait_count(
            &client,
            "n0 sees paused n2 unreachable",
            &format!(".view[data-observer=\"{}\"] .view-member[data-node=\"{n2}\"][data-reachable=\"false\"]", node(0)),
            |n| n >= 1,
        )
        .await;
        click(&client, &format!("button[data-action=\"resume\"][data-node=\"{n2}\"]")).await;
        back_up_or_rejoined(&client, &node(0), &n2, &paused_uid).await;

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
        // Through a kill, a pause, restarts and a one-node partition, the load generator's
        // requests were all answered (some after a retry on another node).
        click(&client, "#load-stop").await;
        let ok = number(&client, "#load-ok").await;
        let retried = number(&client, "#load-retries").await;
        let failed = number(&client, "#load-failed").await;
        let p99 = text(&client, "#load-p99").await;
        println!("load generator through a kill, a pause, a partition and three restarts: {ok} ok, {retried} retried, {failed} failed, p99 {p99} ms");
        assert_eq!(failed, 0, "{failed} requests from the page failed ({ok} ok, {retried} retried)");
        screenshot(&client, "07-rejoined").await;

        // n0, whose answer the page started from, dies: the page carries on through the others.
        let n0 = node(0);
        let n0_uid = drawn_uid(&client, &n0).await;
        click(&client, &format!("button[data-action=\"kill\"][data-node=\"{n0}\"]")).await;
        wait_seen_gone(&client, "n1 sees killed n0 gone", &n1, &n0, &n0_uid).await;
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

/// After a pause: either `observer` sees `who` reachable and Up again, or the resolver
/// downed it meanwhile (the demo profile decides a few seconds after the view settles),
/// and then it is restarted from the page as a new incarnation.
async fn back_up_or_rejoined(client: &Client, observer: &str, who: &str, old_uid: &str) {
    let back = format!(
        ".view[data-observer=\"{observer}\"] .view-member[data-node=\"{who}\"][data-reachable=\"true\"][data-status=\"Up\"]"
    );
    let removed = "#timeline .entry[data-kind=\"memberRemoved\"]";
    let removed_before = count(client, removed).await;
    let start = Instant::now();
    loop {
        if count(client, &back).await == 1 {
            return;
        }
        let status = attr(
            client,
            &format!("#topology g.member[data-node=\"{who}\"]"),
            "data-status",
        )
        .await;
        if count(client, removed).await > removed_before || status.as_deref() == Some("Down") {
            rejoin(client, who, old_uid).await;
            return;
        }
        if start.elapsed() > LIMIT {
            fail(
                client,
                format!("{who} neither came back nor was downed after the resume"),
            )
            .await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The uid the topology shows for `who`.
async fn drawn_uid(client: &Client, who: &str) -> String {
    let css = format!("#topology g.member[data-node=\"{who}\"]");
    attr(client, &css, "data-uid").await.expect("drawn")
}

/// Every action-result text in the timeline.
async fn action_texts(client: &Client) -> Vec<String> {
    let script = "return Array.from(document.querySelectorAll(\
        '#timeline .entry[data-kind=\"action\"] .text')).map(e => e.textContent)";
    client
        .execute(script, vec![])
        .await
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

/// Waits until an action result containing `what` reads ok, and fails at once if one
/// reads otherwise.
async fn wait_action_ok(client: &Client, what: &str) {
    let start = Instant::now();
    loop {
        let texts = action_texts(client).await;
        if texts.iter().any(|t| t.contains(what) && t.contains(": ok")) {
            return;
        }
        if let Some(bad) = texts.iter().find(|t| t.contains(what)) {
            fail(client, format!("`{what}` did not work: {bad}")).await;
        }
        if start.elapsed() > LIMIT {
            fail(
                client,
                format!("no result for `{what}` in the timeline: {texts:?}"),
            )
            .await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the links table describes the link `a`-`b` with text containing `label`.
async fn wait_link_label(client: &Client, a: &str, b: &str, label: &str) {
    let css = format!("tr.link-row[data-from=\"{a}\"][data-to=\"{b}\"] .link-state");
    let start = Instant::now();
    loop {
        let shown = text(client, &css).await;
        if shown.contains(label) {
            return;
        }
        if start.elapsed() > LIMIT {
            fail(
                client,
                format!("link {a}-{b} never read `{label}` (it reads `{shown}`)"),
            )
            .await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `observer` no longer sees incarnation `uid` of `who` Up and reachable:
/// it is unreachable, or already downed or removed. A killed process refuses the
/// reconnect, and the resolver downs a member on that proof at once, so its
/// unreachable row may come and go between two polls of the page.
async fn wait_seen_gone(client: &Client, what: &str, observer: &str, who: &str, uid: &str) {
    let alive = format!(
        ".view-member[data-node=\"{who}\"][data-uid=\"{uid}\"][data-reachable=\"true\"][data-status=\"Up\"]"
    );
    let css = format!(".view[data-observer=\"{observer}\"]:has(.view-member):not(:has({alive}))");
    wait_count(client, what, &css, |n| n == 1).await;
}

/// Loads `url` in a browser whose network was set up just before it started. Chromium
/// aborts a load with ERR_NETWORK_CHANGED when its namespace's interfaces change under
/// it (the namespace has IPv6 off for that reason); such an abort is the test host's,
/// not the demo's, so the load is tried again, at most three times in all.
async fn load_over_a_new_link(client: &Client, url: &str) {
    for _ in 0..3 {
        client
            .goto(url)
            .await
            .expect("page loads from the other host");
        let source = client.source().await.unwrap_or_default();
        if !source.contains("ERR_NETWORK_CHANGED") {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    fail(
        client,
        format!("{url}: the network kept changing under the browser"),
    )
    .await;
}

/// Whether the view from `observer` shows `subject` with `attribute` = `value`.
fn view_member(observer: &str, subject: &str, attribute: &str, value: &str) -> String {
    format!(".view[data-observer=\"{observer}\"] .view-member[data-node=\"{subject}\"][{attribute}=\"{value}\"]")
}

/// The hosted demo as a stranger meets it: nginx terminates TLS with a self-signed
/// certificate in front of the launcher, the only origin; the page comes over
/// `https://`, streams over `wss://` through the relay, and every kind of control on
/// it works, each shown in the timeline and in the views.
#[test]
fn through_an_https_proxy_every_control_works_and_every_view_updates() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (child, demo, cluster_base, logs) =
        demo_serving_the_dashboard(&["--trusted-proxies", "127.0.0.1"]);
    let proxy = support::proxy::start_proxy(&logs.join("proxy"), "127.0.0.1", &demo.launcher);
    report_log_on_failure(proxy.dir.join("error.log"));
    let driver = start_driver();
    let profile = logs.join("chromium-profile-https");
    let node = |i: u16| format!("127.0.0.1:{}", cluster_base + i);
    let (n0, n1, n2) = (node(0), node(1), node(2));
    let button =
        |action: &str, who: &str| format!("button[data-action=\"{action}\"][data-node=\"{who}\"]");
    let link = |action: &str, a: &str, b: &str| {
        format!("button[data-action=\"{action}\"][data-from=\"{a}\"][data-to=\"{b}\"]")
    };
    demo.rt.block_on(async {
        let client = open_browser_with(&driver, &profile, &["--ignore-certificate-errors"]).await;
        client
            .goto(&format!("https://127.0.0.1:{}/", proxy.port))
            .await
            .expect("page loads");
        let url = client.current_url().await.expect("a url");
        assert_eq!(url.scheme(), "https");
        for who in [&n0, &n1, &n2] {
            let view = format!(".view[data-observer=\"{who}\"][data-connected=\"true\"]");
            wait_count(
                &client,
                "a connected view per node, over wss through the relay",
                &view,
                |n| n == 1,
            )
            .await;
        }
        wait_count(
            &client,
            "three Up members",
            "#topology g.member[data-status=\"Up\"]",
            |n| n == 3,
        )
        .await;
        screenshot(&client, "https-01-three-up").await;

        // Link controls on n0-n1, each shown in the links table.
        click(&client, &link("cut", &n0, &n1)).await;
        wait_action_ok(&client, "cut n0").await;
        wait_link_label(&client, &n0, &n1, "cut").await;
        click(&client, &link("heal", &n0, &n1)).await;
        wait_link_label(&client, &n0, &n1, "healthy").await;
        click(&client, &link("oneway", &n0, &n1)).await;
        wait_link_label(&client, &n0, &n1, "→").await;
        click(&client, &link("slow", &n0, &n1)).await;
        wait_link_label(&client, &n0, &n1, "slow").await;
        click(&client, &link("lossy", &n0, &n1)).await;
        wait_link_label(&client, &n0, &n1, "lossy").await;
        click(&client, "#heal-all").await;
        wait_action_ok(&client, "heal all").await;
        wait_link_label(&client, &n0, &n1, "healthy").await;
        screenshot(&client, "https-02-links").await;

        // Freeze, pause and resume n2: the others see it unreachable, then back.
        click(&client, &button("freeze", &n2)).await;
        wait_action_ok(&client, "freeze").await;
        click(&client, &button("pause", &n2)).await;
        wait_action_ok(&client, "pause n2").await;
        wait_count(
            &client,
            "n0 sees paused n2 unreachable",
            &view_member(&n0, &n2, "data-reachable", "false"),
            |n| n >= 1,
        )
        .await;
        let paused_uid = drawn_uid(&client, &n2).await;
        click(&client, &button("resume", &n2)).await;
        wait_action_ok(&client, "resume n2").await;
        back_up_or_rejoined(&client, &n0, &n2, &paused_uid).await;

        // Kill n2, then restart it: a new incarnation.
        let old = drawn_uid(&client, &n2).await;
        click(&client, &button("kill", &n2)).await;
        wait_action_ok(&client, "kill n2").await;
        wait_seen_gone(&client, "n0 sees killed n2 gone", &n0, &n2, &old).await;
        rejoin(&client, &n2, &old).await;
        screenshot(&client, "https-03-n2-rejoined").await;

        // Partition n1: both views diverge; heal it; the resolver may down it meanwhile,
        // and a restart brings it back either way.
        let old = drawn_uid(&client, &n1).await;
        click(&client, &button("partition", &n1)).await;
        wait_action_ok(&client, "partition n1").await;
        wait_count(
            &client,
            "n0 sees n1 unreachable",
            &view_member(&n0, &n1, "data-reachable", "false"),
            |n| n >= 1,
        )
        .await;
        wait_count(
            &client,
            "n1 sees n0 unreachable",
            &view_member(&n1, &n0, "data-reachable", "false"),
            |n| n >= 1,
        )
        .await;
        click(&client, &button("heal", &n1)).await;
        wait_action_ok(&client, "heal n1").await;
        wait_count(
            &client,
            "a resolver decision or a healed view",
            &format!(
                "#timeline .entry[data-kind=\"resolverDecision\"], {}",
                view_member(&n0, &n1, "data-reachable", "true")
            ),
            |n| n >= 1,
        )
        .await;
        rejoin(&client, &n1, &old).await;

        // Leave n2, then down n1: each is gone from n0's view, and comes back on restart.
        let old = drawn_uid(&client, &n2).await;
        click(&client, &button("leave", &n2)).await;
        wait_action_ok(&client, "leave n2").await;
        wait_count(
            &client,
            "n2 gone from n0's view",
            &view_member(&n0, &n2, "data-status", "Up"),
            |n| n == 0,
        )
        .await;
        rejoin(&client, &n2, &old).await;
        let old = drawn_uid(&client, &n1).await;
        click(&client, &button("down", &n1)).await;
        wait_action_ok(&client, "down n1").await;
        wait_count(
            &client,
            "n1 gone from n0's view",
            &view_member(&n0, &n1, "data-status", "Up"),
            |n| n == 0,
        )
        .await;
        rejoin(&client, &n1, &old).await;
        screenshot(&client, "https-04-leave-down-rejoined").await;

        // Add a node, then stop it.
        click(&client, "#add-node").await;
        wait_action_ok(&client, "add a node").await;
        wait_count(
            &client,
            "four Up members",
            "#topology g.member[data-status=\"Up\"]",
            |n| n == 4,
        )
        .await;
        let n3 = node(3);
        click(&client, &button("stop", &n3)).await;
        wait_action_ok(&client, "stop n3").await;
        wait_count(
            &client,
            "three Up members again",
            "#topology g.member[data-status=\"Up\"]",
            |n| n == 3,
        )
        .await;
        screenshot(&client, "https-05-added-and-stopped").await;
        client.close().await.expect("close the browser");
    });
    drop(driver);
    drop(proxy);
    stop_demo(child, pids(&demo));
    let _ = std::fs::remove_dir_all(logs);
}

/// A visitor on another machine: Chromium runs in its own network namespace and
/// reaches the demo only over a veth link, through nginx and TLS; the page loads and
/// follows a kill and a restart live.
#[test]
fn a_browser_on_another_host_loads_the_page_through_the_proxy_and_sees_live_updates() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (child, demo, cluster_base, logs) =
        demo_serving_the_dashboard(&["--trusted-proxies", "127.0.0.1"]);
    let visitor = support::netns::TestHost::new();
    let proxy =
        support::proxy::start_proxy(&logs.join("proxy-netns"), &visitor.host_ip, &demo.launcher);
    let driver = start_driver_with(
        visitor.command("chromedriver"),
        &visitor.guest_ip,
        &[&format!("--allowed-ips={}", visitor.host_ip)],
    );
    report_log_on_failure(proxy.dir.join("error.log"));
    let profile = logs.join("chromium-profile-netns");
    let node = |i: u16| format!("127.0.0.1:{}", cluster_base + i);
    let (n0, n2) = (node(0), node(2));
    demo.rt.block_on(async {
        let client = open_browser_with(&driver, &profile, &["--ignore-certificate-errors"]).await;
        load_over_a_new_link(
            &client,
            &format!("https://{}:{}/", visitor.host_ip, proxy.port),
        )
        .await;
        wait_count(
            &client,
            "three Up members",
            "#topology g.member[data-status=\"Up\"]",
            |n| n == 3,
        )
        .await;
        let view = format!(".view[data-observer=\"{n0}\"][data-connected=\"true\"]");
        wait_count(&client, "n0's view streaming", &view, |n| n == 1).await;
        let old = attr(
            &client,
            &format!("#topology g.member[data-node=\"{n2}\"]"),
            "data-uid",
        )
        .await
        .expect("n2 drawn");
        // Someone else (the operator, here) kills n2: the visitor's page follows.
        let killed = node::tooling::client::request(
            &demo.launcher,
            "POST",
            "/launcher/nodes/2/kill",
            None,
            None,
        )
        .await
        .expect("the launcher answers");
        assert_eq!(killed.status, 200, "{}", killed.body);
        wait_seen_gone(&client, "n0 sees killed n2 gone, live", &n0, &n2, &old).await;
        wait_count(
            &client,
            "the other visitor's kill in the timeline",
            "#timeline .entry[data-kind=\"visitor\"]",
            |n| n >= 1,
        )
        .await;
        rejoin(&client, &n2, &old).await;
        screenshot(&client, "netns-01-rejoined").await;
        client.close().await.expect("close the browser");
    });
    drop(driver);
    drop(proxy);
    drop(visitor);
    stop_demo(child, pids(&demo));
    let _ = std::fs::remove_dir_all(logs);
}

/// The timeline's node entries (kind and text, in order): what the nodes reported.
async fn node_entries(client: &Client) -> Vec<String> {
    let script = "return Array.from(document.querySelectorAll('#timeline .entry'))\
        .filter(e => e.dataset.observer !== 'dashboard')\
        .map(e => e.dataset.kind + ' ' + e.dataset.observer + ' ' + e.querySelector('time').textContent + ' ' + e.querySelector('.text').textContent)";
    let value = client.execute(script, vec![]).await.expect("entries");
    serde_json::from_value(value).expect("a list of texts")
}

/// Simulated time the page shows (ms).
async fn sim_now(client: &Client) -> u64 {
    attr(client, "#sim-controls", "data-now-ms")
        .await
        .and_then(|t| t.parse().ok())
        .expect("the simulated clock")
}

/// Moves the scrubber to `ms` as a visitor's drag ends (a `change` event).
async fn scrub_to(client: &Client, ms: u64) {
    let script =
        "const s = document.getElementById('sim-scrubber'); s.value = String(arguments[0]); \
        s.dispatchEvent(new Event('change', { bubbles: true }));";
    client
        .execute(script, vec![serde_json::json!(ms)])
        .await
        .expect("scrub");
}

fn sim_node(slot: u16) -> String {
    format!("127.0.0.1:{}", 2551 + slot)
}

/// The dashboard as a static site: `dist/` served by a plain static file server
/// (nginx, nothing behind it). No node answers, so the page simulates the cluster in
/// wasm with the real membership core, and every control acts on the simulation: a
/// killed node is found and removed, a partitioned one downs itself while the rest stay
/// Up, and each side's decision opens to say why. The heartbeat ring draws on demand.
/// Rewinding shows the earlier picture again, and the share link, opened anew, replays
/// the same run: the same node events at the same simulated times.
#[test]
fn a_static_site_simulates_the_cluster_through_a_kill_a_partition_a_rewind_and_a_share_link() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    forget_reported_logs();
    let dist = repo().join("dist");
    assert!(
        dist.join("index.html").exists(),
        "the dashboard is not built: run scripts/build-web.sh"
    );
    let dir = artifacts().join("static-site");
    let _ = std::fs::remove_dir_all(&dir);
    let server = support::proxy::start_static_server(&dir.join("nginx"), &dist);
    report_log_on_failure(server.dir.join("error.log"));
    let driver = start_driver();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let site = format!("http://127.0.0.1:{}/", server.port);
    rt.block_on(async {
        let client = open_browser(&driver, &dir.join("chromium-profile")).await;
        client.goto(&site).await.expect("page loads");
        wait_count(
            &client,
            "the simulated mode's time bar",
            "#sim-controls",
            |n| n == 1,
        )
        .await;
        wait_count(
            &client,
            "five simulated members Up",
            "#topology g.member[data-status=\"Up\"]",
            |n| n == 5,
        )
        .await;
        wait_count(
            &client,
            "a first visit's tour, at its first step",
            "#tour[data-step=\"kill\"]",
            |n| n == 1,
        )
        .await;
        screenshot(&client, "sim-01-five-up").await;
        // The heartbeat ring on demand: five members, each watching the four others.
        click(&client, "#ring-toggle").await;
        wait_count(
            &client,
            "the heartbeat ring",
            "#heartbeat-ring line.ring-edge",
            |n| n == 20,
        )
        .await;
        click(&client, "#ring-toggle").await;
        wait_count(&client, "the ring hidden", "#heartbeat-ring", |n| n == 0).await;
        client
            .find(Locator::Css("#sim-speed"))
            .await
            .expect("speed")
            .select_by_value("5")
            .await
            .expect("5x");

        // Kill n4 from the page: unreachable, then removed; four stay Up.
        let before_kill = sim_now(&client).await;
        click(
            &client,
            &format!(
                "button[data-action=\"kill\"][data-node=\"{}\"]",
                sim_node(4)
            ),
        )
        .await;
        wait_count(
            &client,
            "n4 seen unreachable",
            "#timeline .entry[data-kind=\"unreachableMember\"]",
            |n| n >= 1,
        )
        .await;
        wait_count(
            &client,
            "n4 removed",
            "#timeline .entry[data-kind=\"memberRemoved\"]",
            |n| n >= 1,
        )
        .await;
        wait_count(
            &client,
            "four members Up",
            "#topology g.member[data-status=\"Up\"]",
            |n| n == 4,
        )
        .await;
        wait_count(
            &client,
            "the tour followed the kill to its end",
            "#tour[data-step=\"done\"]",
            |n| n == 1,
        )
        .await;
        click(&client, "#tour-close").await;
        screenshot(&client, "sim-02-n4-removed").await;

        // Partition n3: the three others keep going, n3 downs itself.
        click(
            &client,
            &format!(
                "button[data-action=\"partition\"][data-node=\"{}\"]",
                sim_node(3)
            ),
        )
        .await;
        wait_count(
            &client,
            "n3 shuts itself down",
            &format!(
                "#timeline .entry[data-kind=\"selfShutdown\"][data-observer=\"{}\"]",
                sim_node(3)
            ),
            |n| n == 1,
        )
        .await;
        wait_count(
            &client,
            "three members Up",
            "#topology g.member[data-status=\"Up\"]",
            |n| n == 3,
        )
        .await;
        let selector = |observer: u16, subject: u16| {
            format!(
                ".view[data-observer=\"{}\"] .view-member[data-node=\"{}\"][data-status=\"Up\"]",
                sim_node(observer),
                sim_node(subject)
            )
        };
        for observer in 0..3 {
            wait_count(
                &client,
                "the majority sees itself Up",
                &selector(observer, observer),
                |n| n == 1,
            )
            .await;
        }
        // Each side's decision opens to say why, in the counts of its own view.
        let n3_decision = format!(
            "details.decision[data-observer=\"{}\"][data-decision=\"DownReachable\"]",
            sim_node(3)
        );
        wait_count(&client, "n3's decision listed", &n3_decision, |n| n == 1).await;
        click(&client, &format!("{n3_decision} summary")).await;
        let rule = text(&client, &format!("{n3_decision} .why-rule")).await;
        assert_eq!(
            rule,
            "keep-majority: this side counted 1 of 4, less than half; so this side downs itself"
        );
        let others = text(&client, &format!("{n3_decision} .why-others")).await;
        assert!(
            others.contains("keep this side, down the unreachable"),
            "the majority's answer: {others}"
        );
        let majority = "details.decision[data-decision=\"DownUnreachable\"]";
        click(&client, &format!("{majority} summary")).await;
        let rule = text(&client, &format!("{majority} .why-rule")).await;
        assert_eq!(
            rule,
            "keep-majority: this side counted 3 of 4, more than half; so this side stays"
        );
        let trigger = text(&client, &format!("{majority} .why-trigger")).await;
        assert!(
            trigger.starts_with("the view had been stable for"),
            "{trigger}"
        );
        screenshot(&client, "sim-03-n3-downed-itself").await;

        // Pause, then rewind to before the kill: five Up again, nothing removed yet.
        click(&client, "#sim-play").await;
        wait_count(
            &client,
            "the run paused",
            "#sim-controls[data-playing=\"false\"]",
            |n| n == 1,
        )
        .await;
        scrub_to(&client, before_kill.saturating_sub(200)).await;
        wait_count(
            &client,
            "five members Up after the rewind",
            "#topology g.member[data-status=\"Up\"]",
            |n| n == 5,
        )
        .await;
        let removed = count(&client, "#timeline .entry[data-kind=\"memberRemoved\"]").await;
        if removed != 0 {
            fail(
                &client,
                format!(
                    "{removed} removals shown after rewinding to {} ms, before the kill",
                    before_kill - 200
                ),
            )
            .await;
        }
        screenshot(&client, "sim-04-rewound").await;

        // Forward again past both actions, pause, and share.
        scrub_to(&client, u64::MAX / 2).await;
        wait_count(
            &client,
            "three members Up once replayed",
            "#topology g.member[data-status=\"Up\"]",
            |n| n == 3,
        )
        .await;
        let shared_at = sim_now(&client).await;
        let events = node_entries(&client).await;
        let link = attr(&client, "#sim-share", "href")
            .await
            .expect("a share link");
        assert!(
            link.contains("kill:4") && link.contains("partition:3"),
            "{link}"
        );

        let opened = format!("{site}{}", link.trim_start_matches('/'));
        let opened = if link.starts_with("http") {
            link.clone()
        } else {
            opened
        };
        client.goto(&opened).await.expect("the share link loads");
        wait_count(
            &client,
            "the shared run's time bar",
            "#sim-controls[data-playing=\"false\"]",
            |n| n == 1,
        )
        .await;
        assert_eq!(
            sim_now(&client).await,
            shared_at,
            "opened at the moment it was shared"
        );
        wait_count(
            &client,
            "three members Up in the shared run",
            "#topology g.member[data-status=\"Up\"]",
            |n| n == 3,
        )
        .await;
        let replayed = node_entries(&client).await;
        assert!(events.len() > 20, "a run with a story: {events:?}");
        assert_eq!(
            replayed, events,
            "the share link replays the same run, event for event"
        );
        screenshot(&client, "sim-05-shared").await;
        client.close().await.expect("close");
    });
    drop(server);
}
