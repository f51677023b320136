//! Process-level tests: real `node` processes on 127.0.0.1, real signals.
//!
//! Each test starts its own cluster on free ports in the demo profile, drives it through
//! the management API and the fault API, and kills it on the way out. SIGKILL and
//! SIGSTOP are real, so what these tests show is what an operator would see.

mod support;

use node::tooling::client::request;
use node::tooling::procs::free_port;
use shared::api::MembersResponse;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{Cluster, TOKEN};

/// Method, path, body, whether the token is sent, the expected status.
type BadRequest = (
    &'static str,
    String,
    Option<(&'static str, String)>,
    bool,
    u16,
);

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";
const LONG: Duration = Duration::from_secs(60);

#[test]
fn three_nodes_form_one_cluster_and_a_sigkilled_node_is_downed_and_removed() {
    let mut c = Cluster::start(3);
    c.wait(LONG, "three Up members", |c| c.all_see_up(&[0, 1, 2]));
    let leader_before = c.members(0).unwrap().leader;
    assert!(leader_before.is_some());
    c.nodes[2].kill();
    // A killed process is proven dead by the refused reconnects and can be downed and
    // removed between two polls, so its unreachable moment may never be seen.
    c.wait(LONG, "n2 unreachable, or already removed", |c| {
        c.unreachable_in(0, 2) || c.unreachable_in(1, 2) || c.all_see_up(&[0, 1])
    });
    c.wait(LONG, "n2 removed, two Up", |c| c.all_see_up(&[0, 1]));
    assert!(
        c.members(0).unwrap().leader.is_some(),
        "the survivors keep a leader"
    );
}

/// With Akka's one-second heartbeat and three-second acceptable pause, phi needs about
/// 4.5 s of silence. A killed process leaves nothing listening at its address, and the
/// refused connection says so at once; a paused one still accepts connections, so it
/// waits for phi as before.
#[test]
fn a_killed_node_is_unreachable_at_once_and_a_paused_one_once_the_helpers_confirm_it() {
    let akka_timing = |_| {
        vec![
            "--heartbeat-interval-ms",
            "1000",
            "--acceptable-heartbeat-pause-ms",
            "3000",
        ]
    };
    // Five, so that the three left are a majority and carry on.
    let mut c = Cluster::start_with(5, akka_timing);
    c.wait(LONG, "five Up members", |c| c.all_see_up(&[0, 1, 2, 3, 4]));
    assert!(c.nodes[1].signal("STOP"));
    let paused = Instant::now();
    c.nodes[2].kill();
    let killed = Instant::now();
    c.wait(LONG, "the killed n2 unreachable on n0", |c| {
        c.unreachable_in(0, 2)
    });
    let seen_dead = killed.elapsed();
    assert!(
        seen_dead < Duration::from_millis(2_500),
        "the kill took {seen_dead:?} to see (phi alone takes about 4.5 s)"
    );
    // The demo profile probes indirectly: a heartbeat overdue by 1.5 intervals starts a
    // round, and n1 is marked once the helpers could not reach it either. Never sooner.
    c.wait(LONG, "the paused n1 unreachable on n0", |c| {
        c.unreachable_in(0, 1)
    });
    let seen_paused = paused.elapsed();
    assert!(
        seen_paused > Duration::from_millis(1_500),
        "the pause was called after {seen_paused:?}, before any probe round could start"
    );
    assert!(c.nodes[1].signal("CONT"));
    // Awake, n1 knows it was away (local health) and says so in its metrics.
    let away_ms = |c: &Cluster| {
        let metrics = c.call(1, "GET", "/metrics", None).ok()?.body;
        let line = metrics
            .lines()
            .find(|l| l.starts_with("cluster_time_away_ms_total "))?;
        line.rsplit(' ').next()?.parse::<u64>().ok()
    };
    c.wait(LONG, "n1 reports its time away", |c| {
        away_ms(c).is_some_and(|ms| ms >= 1_000)
    });
}

#[test]
fn five_nodes_form_one_cluster() {
    let c = Cluster::start(5);
    c.wait(LONG, "five Up members", |c| c.all_see_up(&[0, 1, 2, 3, 4]));
}

#[test]
fn a_short_sigstop_raises_nothing_and_a_long_one_gets_the_node_downed() {
    let mut c = Cluster::start(3);
    c.wait(LONG, "three Up members", |c| c.all_see_up(&[0, 1, 2]));
    // Demo profile: acceptable pause 300 ms; a 150 ms stop stays below suspicion.
    assert!(c.nodes[2].signal("STOP"));
    std::thread::sleep(Duration::from_millis(150));
    assert!(c.nodes[2].signal("CONT"));
    let quiet_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < quiet_until {
        assert!(
            !c.unreachable_in(0, 2) && !c.unreachable_in(1, 2),
            "a short pause raised an alarm"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(c.nodes[2].signal("STOP"));
    c.wait(LONG, "stopped node unreachable", |c| c.unreachable_in(0, 2));
    c.wait(LONG, "stopped node removed", |c| c.all_see_up(&[0, 1]));
    assert!(c.nodes[2].signal("CONT"));
    let code = c.nodes[2].wait_exit(Duration::from_secs(30));
    assert!(
        matches!(code, Some(3) | Some(4)),
        "a downed node exits non-zero, got {code:?}"
    );
}

#[test]
fn a_partition_downs_the_minority_which_exits_and_rejoins_when_restarted() {
    let mut c = Cluster::start(3);
    c.wait(LONG, "three Up members", |c| c.all_see_up(&[0, 1, 2]));
    // n2's incarnation as the others know it, before anything happens to it.
    let old_uid = c
        .members(0)
        .unwrap()
        .members
        .into_iter()
        .find(|m| m.node == c.nodes[2].cluster)
        .unwrap()
        .node_uid;
    // Isolate n2 with two-way cuts set on n2 alone.
    for peer in [0, 1] {
        let body = format!(
            r#"{{"peer":"{}","cutOutbound":true,"cutInbound":true}}"#,
            c.nodes[peer].cluster
        );
        let reply = c
            .call(2, "POST", "/faults/links", Some((JSON, body)))
            .unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let code = c.nodes[2].wait_exit(LONG);
    assert_eq!(
        code,
        Some(3),
        "the minority downs itself and exits with the downed code"
    );
    c.wait(LONG, "majority removes n2", |c| c.all_see_up(&[0, 1]));
    c.restart(2);
    c.wait(LONG, "n2 rejoins", |c| c.all_see_up(&[0, 1, 2]));
    let n2 = c
        .members(0)
        .unwrap()
        .members
        .into_iter()
        .find(|m| m.node == c.nodes[2].cluster)
        .unwrap();
    assert_ne!(n2.node_uid, old_uid, "n2 came back as a new incarnation");
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next WebSocket message as JSON (panics after the deadline).
fn next_json(rt: &tokio::runtime::Runtime, stream: &mut Ws) -> serde_json::Value {
    use futures_util::StreamExt;
    let read = rt.block_on(async { tokio::time::timeout(LONG, stream.next()).await });
    let message = read
        .expect("a message within the deadline")
        .expect("stream open")
        .expect("frame");
    serde_json::from_str(message.to_text().expect("text frame")).expect("JSON")
}

#[test]
fn sigterm_leaves_gracefully_and_the_event_stream_shows_leaving_exiting_removed() {
    let mut c = Cluster::start(3);
    c.wait(LONG, "three Up members", |c| c.all_see_up(&[0, 1, 2]));
    let leaver = c.nodes[1].cluster.clone();
    let url = format!("ws://{}/ws", c.nodes[0].http);
    let (mut stream, _) =
        c.rt.block_on(tokio_tungstenite::connect_async(url))
            .expect("websocket");
    let first = next_json(&c.rt, &mut stream);
    assert_eq!(
        first["type"], "snapshot",
        "the stream starts with a snapshot"
    );
    assert_eq!(
        first["snapshot"]["members"].as_array().map(Vec::len),
        Some(3)
    );
    let mut last_seq = first["seq"].as_u64().unwrap();
    assert!(c.nodes[1].signal("TERM"));
    let mut seen = Vec::new();
    while !seen.contains(&"MemberRemoved".to_string()) {
        let message = next_json(&c.rt, &mut stream);
        let seq = message["seq"].as_u64().unwrap();
        assert!(seq > last_seq, "sequence numbers increase");
        last_seq = seq;
        let event = &message["event"];
        if event["member"]["node"]["address"]["port"]
            .as_u64()
            .map(|p| format!("127.0.0.1:{p}"))
            == Some(leaver.clone())
        {
            seen.push(event["type"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(seen, ["MemberLeft", "MemberExited", "MemberRemoved"]);
    assert_eq!(
        c.nodes[1].wait_exit(Duration::from_secs(30)),
        Some(0),
        "a graceful leave exits 0"
    );
    c.wait(LONG, "two Up", |c| c.all_see_up(&[0, 2]));
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    use std::io::Write;
    let c = Cluster::start(3);
    c.wait(LONG, "three Up members", |c| c.all_see_up(&[0, 1, 2]));
    // Cluster port: garbage, an oversized length prefix, a stalled handshake.
    let mut garbage = std::net::TcpStream::connect(&c.nodes[0].cluster).unwrap();
    garbage.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut huge = std::net::TcpStream::connect(&c.nodes[0].cluster).unwrap();
    huge.write_all(&u32::MAX.to_be_bytes()).unwrap();
    let _stalled = std::net::TcpStream::connect(&c.nodes[0].cluster).unwrap();
    // A node with the wrong secret and one with the wrong cluster name.
    let wrong_secret = c.spawn_with_secret(
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
        "not-the-secret",
        &[],
    );
    let wrong_name = c.spawn(
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
        &["--cluster-name", "other"],
    );
    // API: malformed JSON, unknown fields, unknown and malformed addresses, no token.
    let cases: Vec<BadRequest> = vec![
        (
            "POST",
            "/faults/links".into(),
            Some((JSON, "{not json".into())),
            true,
            400,
        ),
        (
            "POST",
            "/faults/links".into(),
            Some((JSON, r#"{"peer":"x:1","bogus":1}"#.into())),
            true,
            400,
        ),
        (
            "POST",
            "/faults/links".into(),
            Some((JSON, r#"{"peer":"nohost"}"#.into())),
            true,
            400,
        ),
        (
            "POST",
            "/faults/freeze".into(),
            Some((JSON, r#"{"millis":0}"#.into())),
            true,
            400,
        ),
        (
            "GET",
            "/cluster/members/127.0.0.1:1".into(),
            None,
            true,
            404,
        ),
        (
            "GET",
            "/cluster/members/not-an-address".into(),
            None,
            true,
            400,
        ),
        (
            "PUT",
            "/cluster/members/127.0.0.1:1".into(),
            Some((FORM, "operation=Down".into())),
            true,
            404,
        ),
        (
            "PUT",
            format!("/cluster/members/{}", c.nodes[1].cluster),
            Some((FORM, "operation=Explode".into())),
            true,
            400,
        ),
        (
            "PUT",
            format!("/cluster/members/{}", c.nodes[1].cluster),
            Some((FORM, "operation=Down".into())),
            false,
            401,
        ),
        ("DELETE", "/faults".into(), None, false, 401),
    ];
    for (method, path, body, with_token, expected) in cases {
        let token = with_token.then_some(TOKEN);
        let reply =
            c.rt.block_on(request(&c.nodes[0].http, method, &path, token, body))
                .unwrap();
        assert_eq!(reply.status, expected, "{method} {path}: {}", reply.body);
        let error: shared::api::ErrorBody = serde_json::from_str(&reply.body)
            .unwrap_or_else(|_| panic!("JSON error body for {method} {path}: {}", reply.body));
        assert!(!error.error.is_empty());
    }
    std::thread::sleep(Duration::from_secs(3));
    assert!(c.all_see_up(&[0, 1, 2]), "the cluster is untouched");
    for stranger in [&wrong_secret, &wrong_name] {
        let reply =
            c.rt.block_on(request(
                &stranger.http,
                "GET",
                "/cluster/members",
                None,
                None,
            ))
            .unwrap_or_else(|e| panic!("stranger {} is not serving: {e}", stranger.cluster));
        let m: MembersResponse = serde_json::from_str(&reply.body).unwrap();
        assert!(
            m.self_status.is_none(),
            "{} joined: {:?}",
            stranger.cluster,
            m.self_status
        );
    }
    let metrics = c.call(0, "GET", "/metrics", None).unwrap();
    let refused: u64 = metrics
        .body
        .lines()
        .find_map(|l| l.strip_prefix("cluster_refused_connections_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(refused >= 3, "refused connections counted: {refused}");
}

#[test]
fn the_operator_cli_shows_members_and_downs_one() {
    let c = Cluster::start(3);
    c.wait(LONG, "three Up members", |c| c.all_see_up(&[0, 1, 2]));
    let show = Command::new(env!("CARGO_BIN_EXE_node"))
        .args(["cluster", "--api", &c.nodes[0].http, "show"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(show.status.success());
    for n in &c.nodes {
        assert!(text.contains(&n.cluster), "{text}");
    }
    let denied = Command::new(env!("CARGO_BIN_EXE_node"))
        .args([
            "cluster",
            "--api",
            &c.nodes[0].http,
            "down",
            &c.nodes[2].cluster,
        ])
        .output()
        .unwrap();
    assert!(!denied.status.success(), "no token, no down");
    let down = Command::new(env!("CARGO_BIN_EXE_node"))
        .args([
            "cluster",
            "--api",
            &c.nodes[0].http,
            "--token",
            TOKEN,
            "down",
            &c.nodes[2].cluster,
        ])
        .output()
        .unwrap();
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    c.wait(LONG, "n2 removed", |c| c.all_see_up(&[0, 1]));
}

#[test]
fn nodes_seeded_by_a_dns_name_that_resolves_to_loopback_form_one_cluster() {
    // `localhost` resolves to 127.0.0.1 here; every node gets the same DNS seed,
    // which expands to the first node's address.
    let c = Cluster::start_seeded(3, |ports| format!("dns:localhost:{}", ports[0].0));
    c.wait(LONG, "three Up members", |c| c.all_see_up(&[0, 1, 2]));
}

/// The first seed (the one that may form a cluster alone) is SIGKILLed and restarted
/// while another member is SIGSTOPped and a link is slow: whatever the resolver does
/// meanwhile, with a supervisor restarting whatever exits, all members end in one
/// cluster (ALGORITHM.md, section 10, seed 63366856).
#[test]
fn a_restarted_first_seed_with_a_member_paused_and_a_slow_link_ends_in_one_cluster() {
    let mut c = Cluster::start(4);
    let all = [0, 1, 2, 3];
    c.wait(LONG, "four Up members", |c| c.all_see_up(&all));
    let slow = format!(
        r#"{{"peer":"{}","delayMs":250,"jitterMs":100}}"#,
        c.nodes[2].cluster
    );
    let reply = c
        .call(1, "POST", "/faults/links", Some((JSON, slow)))
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    // n3 stays frozen for 5 s: long enough to be marked unreachable and decided on
    // while the first seed is down and back (as in seed 63366856).
    assert!(c.nodes[3].signal("STOP"));
    c.nodes[0].kill();
    std::thread::sleep(Duration::from_millis(800));
    c.restart(0);
    std::thread::sleep(Duration::from_millis(4200));
    assert!(c.nodes[3].signal("CONT"));
    let healed = c.call(1, "DELETE", "/faults", None);
    assert!(healed.is_ok_and(|r| r.status < 300), "heal on n1");
    // A supervisor: whatever exits (downed, or told to rejoin) is started again.
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline && !c.all_see_up(&all) {
        for i in all {
            if c.nodes[i].wait_exit(Duration::ZERO).is_some() {
                c.restart(i);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    c.wait(Duration::from_secs(1), "one cluster of all four, Up", |c| {
        c.all_see_up(&all)
    });
}
