//! The demo launcher end to end: `node demo` starts three nodes, the launcher API
//! kills, restarts and adds nodes and each change shows in membership, and stopping
//! the launcher leaves no node process behind. In public mode, visitors' actions
//! are limited and faults heal themselves.

mod support;

use node::client::request;
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
    stop_demo(child, pids(&demo));
    let _ = std::fs::remove_dir_all(logs);
}
