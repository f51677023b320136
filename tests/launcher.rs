//! The demo launcher end to end: `node demo` starts three nodes, the launcher API
//! kills, restarts and adds nodes and each change shows in membership, and stopping
//! the launcher leaves no node process behind. In public mode, visitors' actions
//! are limited and faults heal themselves.

mod support;

use node::tooling::client::request;
use support::demo::{pids, start_demo, stop_demo, SERIAL};

#[test]
fn the_launcher_starts_kills_restarts_adds_and_stops_cleanly() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (child, demo, cluster_base, logs) = start_demo(&[]);
    demo.wait("three Up members", || {
        demo.up_count(0) == 3 && demo.up_count(2) == 3
    });

    // Kill n2: it is removed, then the supervisor brings it back as a new incarnation.
    let old_uid = demo.uid_of(0, cluster_base + 2).unwrap();
    assert_eq!(demo.post("/launcher/nodes/2/kill"), 200);
    demo.wait("n2 back as a new incarnation, three Up", || {
        demo.up_count(0) == 3
            && demo
                .uid_of(0, cluster_base + 2)
                .is_some_and(|u| u != old_uid)
    });

    // Restart n1 on purpose: a new incarnation replaces the old one.
    let old_uid = demo.uid_of(0, cluster_base + 1).unwrap();
    assert_eq!(demo.post("/launcher/nodes/1/restart"), 200);
    demo.wait("n1 restarted", || {
        demo.up_count(0) == 3
            && demo
                .uid_of(0, cluster_base + 1)
                .is_some_and(|u| u != old_uid)
    });

    // Add a fourth node.
    assert_eq!(demo.post("/launcher/nodes"), 200);
    demo.wait("four Up members", || demo.up_count(0) == 4);

    // Bad requests are refused.
    assert_eq!(demo.post("/launcher/nodes/99/kill"), 404);
    assert_eq!(demo.post("/launcher/nodes/0/explode"), 400);

    let pids = pids(&demo);
    assert_eq!(pids.len(), 4);
    stop_demo(child, pids);
    let _ = std::fs::remove_dir_all(logs);
}

#[test]
fn the_public_demo_limits_visitors_and_heals_itself() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let operator = "operator-secret";
    let (child, demo, _, logs) = start_demo(&[
        "--public",
        "true",
        "--operator-token",
        operator,
        "--fault-ttl-secs",
        "3",
        "--actions-per-minute",
        "4",
        "--writes-per-minute",
        "3",
    ]);
    demo.wait("three Up members", || {
        demo.up_count(0) == 3 && demo.up_count(2) == 3
    });
    // The nodes' own fault endpoints are closed to visitors.
    let direct = demo
        .rt
        .block_on(request(
            &format!("127.0.0.1:{}", demo.http_base),
            "POST",
            "/faults/links",
            None,
            Some((
                "application/json",
                "{\"peer\":\"127.0.0.1:1\",\"cutOutbound\":true}".into(),
            )),
        ))
        .unwrap();
    assert_eq!(direct.status, 401);
    let policy: shared::api::LauncherPolicy =
        serde_json::from_str(&demo.get(&demo.launcher, "/launcher/policy").unwrap()).unwrap();
    assert!(policy.public);
    assert_eq!(policy.max_impaired, 1);

    // A visitor cuts n0 from n2: allowed, it shows on both ends.
    let cut = r#"{"from":0,"to":2,"kind":"cut"}"#;
    assert_eq!(demo.post_with("/launcher/links", Some(cut), None), 200);
    assert!(demo.has_link_fault(0) && demo.has_link_fault(2));
    // Impairing a second node would leave no majority: refused.
    assert_eq!(demo.post("/launcher/nodes/1/pause"), 409);
    assert_eq!(demo.post("/launcher/nodes/1/kill"), 409);
    // Stopping a node is for the operator only.
    assert_eq!(demo.post("/launcher/nodes/1/stop"), 403);
    // The fault heals itself.
    demo.wait("the cut healed itself", || {
        !demo.has_link_fault(0) && !demo.has_link_fault(2)
    });
    // The visitor has 4 actions a minute: 1 used by the cut, 3 more, then 429.
    for _ in 0..3 {
        assert_eq!(demo.post("/launcher/nodes/0/heal"), 200);
    }
    assert_eq!(demo.post("/launcher/nodes/0/heal"), 429);
    // The operator is not limited.
    assert_eq!(
        demo.post_with("/launcher/nodes/0/heal", None, Some(operator)),
        200
    );
    demo.wait("three Up members throughout", || demo.up_count(0) == 3);

    // Every action is in the shared journal with an anonymous visitor tag, refusals too.
    let journal: shared::api::VisitorJournal =
        serde_json::from_str(&demo.get(&demo.launcher, "/launcher/actions").unwrap()).unwrap();
    assert!(journal.you.starts_with("visitor-"));
    let mine: Vec<_> = journal
        .actions
        .iter()
        .filter(|a| a.visitor == journal.you)
        .collect();
    assert!(mine.iter().any(|a| a.action == "change a link" && a.ok));
    assert!(
        mine.iter().any(|a| a.action == "kill n1" && !a.ok),
        "{mine:?}"
    );
    assert!(
        !journal.you.contains("127.0.0.1"),
        "the tag does not reveal the address"
    );
    // A visitor cannot pose as someone else: the launcher trusts no proxy here.
    let posing = demo.rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(&demo.launcher)
            .await
            .unwrap();
        raw_get(stream, "/launcher/actions", "X-Forwarded-For: 203.0.113.9").await
    });
    assert!(
        posing.contains(&journal.you),
        "X-Forwarded-For from a stranger is ignored"
    );

    // Event streams are capped per visitor: past the cap, a clear 429.
    let n0 = format!("127.0.0.1:{}", demo.http_base);
    let url = format!("ws://{}/nodes/{n0}/ws", demo.launcher);
    let (held, refused) = demo.rt.block_on(async {
        let mut held = Vec::new();
        for _ in 0..24 {
            let (ws, _) = tokio_tungstenite::connect_async(&url)
                .await
                .expect("under the cap");
            held.push(ws);
        }
        let refused = match tokio_tungstenite::connect_async(&url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(answer)) => answer.status().as_u16(),
            Ok(_) => 101,
            Err(_) => 0,
        };
        (held, refused)
    });
    assert_eq!(refused, 429, "the 25th stream of one visitor is refused");
    drop(held);

    // Service writes through the relay are rate-limited per visitor; reads are not.
    let write = |user: u32| {
        let path = format!("/nodes/{n0}/api/users/{user}/watched");
        let body = Some(("application/json", r#"{"video":1}"#.to_string()));
        demo.rt
            .block_on(request(&demo.launcher, "POST", &path, None, body))
            .unwrap()
    };
    for user in 1..=3 {
        let answer = write(user);
        assert!(
            answer.status < 300,
            "write {user}: {} {}",
            answer.status,
            answer.body
        );
    }
    let limited = write(4);
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(
        limited.body.contains("writes per minute"),
        "{}",
        limited.body
    );
    let read = demo.get(&demo.launcher, &format!("/nodes/{n0}/api/users/4/history"));
    assert!(read.is_some(), "reads are not limited");
    assert_eq!(demo.up_count(0), 3, "the demo stays up");
    stop_demo(child, pids(&demo));
    let _ = std::fs::remove_dir_all(logs);
}

/// A raw HTTP/1.1 GET with one extra header line; the whole answer.
async fn raw_get(mut stream: tokio::net::TcpStream, path: &str, header: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{header}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer).await;
    answer
}

/// Opens a relayed event stream; the HTTP status of a refused handshake otherwise.
async fn open_stream(url: &str) -> Result<String, u16> {
    use futures_util::StreamExt;
    match tokio_tungstenite::connect_async(url).await {
        Ok((mut ws, _)) => {
            let first = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
                .await
                .ok()
                .flatten()
                .and_then(Result::ok)
                .map(|m| m.to_string())
                .unwrap_or_default();
            Ok(first)
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(answer)) => Err(answer.status().as_u16()),
        Err(_) => Err(0),
    }
}

#[test]
fn the_launcher_is_the_one_origin_and_its_relay_passes_only_what_it_knows() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (child, demo, _, logs) = start_demo(&[]);
    demo.wait("three Up members", || {
        demo.up_count(0) == 3 && demo.up_count(2) == 3
    });
    let n0 = format!("127.0.0.1:{}", demo.http_base);
    let call = |method: &str, path: &str, body: Option<String>| {
        let body = body.map(|b| ("application/json", b));
        demo.rt
            .block_on(request(&demo.launcher, method, path, None, body))
            .unwrap()
    };
    // The page's first call, answered by a running node through the launcher.
    let info: shared::api::DashboardInfo =
        serde_json::from_str(&call("GET", "/api/dashboard", None).body).unwrap();
    assert_eq!(info.peers.len(), 2);
    // A node's API through the relay, reads and writes.
    let members = call("GET", &format!("/nodes/{n0}/cluster/members"), None);
    assert_eq!(members.status, 200);
    assert!(members.body.contains("\"Up\""), "{}", members.body);
    let watched = call(
        "POST",
        &format!("/nodes/{n0}/api/users/3/watched"),
        Some(r#"{"video":1}"#.into()),
    );
    assert!(
        watched.status < 300,
        "a relayed write: {} {}",
        watched.status,
        watched.body
    );
    // Its event stream: a snapshot first.
    let first = demo
        .rt
        .block_on(open_stream(&format!(
            "ws://{}/nodes/{n0}/ws",
            demo.launcher
        )))
        .expect("a relayed stream");
    assert!(first.contains("\"snapshot\""), "{first}");
    // What the relay does not know, or that looks like a trick, gets a 4xx.
    let refused = [
        ("GET", "/nodes/127.0.0.1:1/cluster/members".to_string(), 404),
        ("GET", format!("/nodes/{n0}/api/../launcher/nodes"), 400),
        ("GET", format!("/nodes/{n0}/api%2Fdashboard"), 400),
        ("GET", format!("/nodes/{n0}/%2e%2e/etc/passwd"), 400),
        ("GET", format!("/nodes/{n0}/launcher/nodes"), 404),
        ("GET", format!("/nodes/{n0}"), 404),
    ];
    for (method, path, status) in refused {
        let answer = call(method, &path, None);
        assert_eq!(answer.status, status, "{method} {path}: {}", answer.body);
        assert!(answer.body.contains("\"error\""), "a JSON error for {path}");
    }
    let big = format!("{{\"video\":1,\"pad\":\"{}\"}}", "x".repeat(100_000));
    let answer = call(
        "POST",
        &format!("/nodes/{n0}/api/users/3/watched"),
        Some(big),
    );
    assert_eq!(answer.status, 413, "an oversized body: {}", answer.body);
    let unknown = demo.rt.block_on(open_stream(&format!(
        "ws://{}/nodes/127.0.0.1:1/ws",
        demo.launcher
    )));
    assert_eq!(
        unknown,
        Err(404),
        "no stream from a node the relay does not know"
    );
    // A fault action through the relay (here: no fault on a link) joins the shared
    // journal; the service write above does not.
    let heal_link = format!("{{\"peer\":\"{}\"}}", info.peers[0].node);
    let answer = call(
        "POST",
        &format!("/nodes/{n0}/faults/links"),
        Some(heal_link),
    );
    assert!(answer.status < 300, "{} {}", answer.status, answer.body);
    let journal: shared::api::VisitorJournal =
        serde_json::from_str(&call("GET", "/launcher/actions", None).body).unwrap();
    let actions: Vec<&str> = journal.actions.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, [format!("change a link of {n0}")], "{actions:?}");
    // Nothing behind the relay changed: still three Up members.
    assert_eq!(demo.up_count(0), 3);
    stop_demo(child, pids(&demo));
    let _ = std::fs::remove_dir_all(logs);
}
