//! Fast tests of whole nodes started in this process with `node::start::serve`: the
//! listeners are bound here on port 0 (no port can be taken between choosing and
//! binding), and each node's shutdown is a channel the test fires. What needs real
//! signals (SIGKILL, SIGSTOP) stays in `process.rs`.

use node::config::{DataSource, NodeConfig};
use node::start::{serve, Listeners, StartError};
use node::tooling::client::request;
use shared::api::{HistoryResponse, MembersResponse};
use shared::{Address, Settings, ShutdownReason};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const TOKEN: &str = "in-process-token";

/// A node running in this process: its HTTP address, its way out, and its outcome.
struct InProcessNode {
    http: String,
    shutdown: Option<oneshot::Sender<()>>,
    outcome: JoinHandle<Result<ShutdownReason, StartError>>,
}

async fn bound() -> (TcpListener, Address) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, Address::new("127.0.0.1", port))
}

fn config(
    cluster: &Address,
    http: &Address,
    seeds: &[Address],
    store: std::path::PathBuf,
) -> NodeConfig {
    let socket = |a: &Address| format!("{}:{}", a.host, a.port).parse().unwrap();
    NodeConfig {
        bind: socket(cluster),
        advertise: cluster.clone(),
        http: socket(http),
        http_advertise: http.clone(),
        seeds: seeds
            .iter()
            .cloned()
            .map(node::cluster::seeds::SeedSpec::Fixed)
            .collect(),
        roles: ["api".to_string(), "worker".to_string()].into(),
        settings: Settings::demo("in-process"),
        secret: "in-process-secret".into(),
        accept_secrets: Vec::new(),
        http_tls: None,
        encryption: true,
        token: Some(TOKEN.into()),
        demo: false,
        data: DataSource::Synthetic,
        store,
        web_root: "dist".into(),
        launcher: None,
    }
}

/// `n` nodes, every one a seed, each with a store under `folder`.
async fn start_nodes(n: usize, folder: &std::path::Path) -> Vec<InProcessNode> {
    let mut sockets = Vec::new();
    for _ in 0..n {
        sockets.push((bound().await, bound().await));
    }
    let seeds: Vec<Address> = sockets.iter().map(|((_, c), _)| c.clone()).collect();
    let mut nodes = Vec::new();
    for (i, ((cluster, cluster_address), (http, http_address))) in sockets.into_iter().enumerate() {
        let config = config(
            &cluster_address,
            &http_address,
            &seeds,
            folder.join(i.to_string()),
        );
        let (tx, rx) = oneshot::channel::<()>();
        let listeners = Listeners { cluster, http };
        let outcome = tokio::spawn(serve(config, listeners, async move {
            let _ = rx.await;
        }));
        nodes.push(InProcessNode {
            http: format!("{}:{}", http_address.host, http_address.port),
            shutdown: Some(tx),
            outcome,
        });
    }
    nodes
}

async fn members(node: &InProcessNode) -> Option<MembersResponse> {
    let reply = request(&node.http, "GET", "/cluster/members", Some(TOKEN), None)
        .await
        .ok()?;
    serde_json::from_str(&reply.body).ok()
}

async fn metrics_of(node: &InProcessNode) -> String {
    request(&node.http, "GET", "/metrics", None, None)
        .await
        .unwrap()
        .body
}

/// The value of a counter line that starts with `name` (0 when absent).
fn counter(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn up_count(node: &InProcessNode) -> usize {
    members(node).await.map_or(0, |m| {
        let up = m.members.iter().filter(|x| x.status == "Up").count();
        if m.unreachable.is_empty() && up == m.members.len() {
            up
        } else {
            0
        }
    })
}

async fn wait_until(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after {limit:?} waiting for: {what}");
}

async fn every_node_sees_up(nodes: &[InProcessNode], n: usize) {
    let what = format!("{n} Up members on every node");
    wait_until(&what, Duration::from_secs(30), async || {
        for node in nodes {
            if up_count(node).await != n {
                return false;
            }
        }
        true
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_in_one_process_form_a_cluster_serve_and_one_leaves_on_shutdown() {
    let folder = std::env::temp_dir().join(format!("in-process-{}", std::process::id()));
    let mut nodes = start_nodes(3, &folder).await;
    every_node_sees_up(&nodes, 3).await;

    // The service answers through any node: a watch recorded at n1 is in n2's history.
    let body = r#"{"video":5}"#.to_string();
    let recorded = request(
        &nodes[1].http,
        "POST",
        "/api/users/7/watched",
        None,
        Some(("application/json", body)),
    )
    .await
    .unwrap();
    assert_eq!(recorded.status, 201, "{}", recorded.body);
    let reply = request(&nodes[2].http, "GET", "/api/users/7/history", None, None)
        .await
        .unwrap();
    let history: HistoryResponse = serde_json::from_str(&reply.body).unwrap();
    assert!(
        history.watched.iter().any(|w| w.video.id == 5),
        "the watch recorded at n1 is read at n2"
    );
    // Each answer is counted where it was given, and a refused one as rejected.
    let unknown = request(&nodes[1].http, "GET", "/api/users/0/history", None, None)
        .await
        .unwrap();
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let figures = metrics_of(&nodes[1]).await;
    for line in [
        "service_requests_total{endpoint=\"/api/users/{id}/watched\",outcome=\"ok\"} 1",
        "service_requests_total{endpoint=\"/api/users/{id}/history\",outcome=\"rejected\"} 1",
        "cluster_members{status=\"Up\"} 3",
    ] {
        assert!(
            figures.contains(line),
            "no `{line}` in n1's /metrics:\n{figures}"
        );
    }
    // A replica that just joined may still be catching up; the gauge says when it is done.
    wait_until(
        "n1's replica caught up",
        Duration::from_secs(30),
        async || {
            metrics_of(&nodes[1])
                .await
                .contains("service_replica_catching_up 0")
        },
    )
    .await;
    assert!(
        metrics_of(&nodes[2]).await.contains(
            "service_requests_total{endpoint=\"/api/users/{id}/history\",outcome=\"ok\"} 1"
        ),
        "n2 counts the history it answered"
    );
    let quorums = [&nodes[0], &nodes[1], &nodes[2]];
    let mut writes = 0;
    for node in quorums {
        writes += counter(
            &metrics_of(node).await,
            "service_quorum_seconds_count{op=\"write\"}",
        );
    }
    assert_eq!(
        writes, 1,
        "one write reached a majority once, on its worker"
    );

    // Shutdown of n2 is a graceful leave: it ends with Left, and the others see two.
    let leaving = nodes.pop().unwrap();
    leaving.shutdown.unwrap().send(()).unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(30), leaving.outcome)
        .await
        .expect("the leave completes")
        .unwrap();
    assert!(matches!(reason, Ok(ShutdownReason::Left)), "{reason:?}");
    wait_until("two Up members left", Duration::from_secs(30), async || {
        up_count(&nodes[0]).await == 2 && up_count(&nodes[1]).await == 2
    })
    .await;
    for node in nodes.iter_mut() {
        node.outcome.abort();
    }
    let _ = std::fs::remove_dir_all(&folder);
}

/// Cuts every link of node `target` (cluster address `target_address`; `clusters`
/// holds every node's) at both ends through the fault API.
async fn isolate(
    nodes: &[InProcessNode],
    clusters: &[String],
    target: usize,
    target_address: &str,
) {
    for (j, node) in nodes.iter().enumerate() {
        let peers: Vec<&str> = if j == target {
            clusters
                .iter()
                .map(String::as_str)
                .filter(|c| *c != target_address)
                .collect()
        } else {
            vec![target_address]
        };
        for peer in peers {
            let body = format!(r#"{{"peer":"{peer}","cutOutbound":true,"cutInbound":true}}"#);
            let reply = request(
                &node.http,
                "POST",
                "/faults/links",
                Some(TOKEN),
                Some(("application/json", body)),
            )
            .await
            .unwrap();
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_by_link_faults_is_downed_and_its_serve_returns_downed() {
    let folder = std::env::temp_dir().join(format!("in-process-cut-{}", std::process::id()));
    let mut nodes = start_nodes(3, &folder).await;
    every_node_sees_up(&nodes, 3).await;
    let clusters: Vec<String> = members(&nodes[0])
        .await
        .unwrap()
        .members
        .iter()
        .map(|m| m.node.clone())
        .collect();
    let target = members(&nodes[2]).await.unwrap().self_node;
    isolate(&nodes, &clusters, 2, &target).await;
    let cut_off = nodes.pop().unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(30), cut_off.outcome)
        .await
        .expect("the minority is downed")
        .unwrap();
    assert!(matches!(reason, Ok(ShutdownReason::Downed)), "{reason:?}");
    wait_until(
        "the majority sees two Up",
        Duration::from_secs(30),
        async || up_count(&nodes[0]).await == 2 && up_count(&nodes[1]).await == 2,
    )
    .await;
    for node in nodes.iter_mut() {
        node.outcome.abort();
    }
    let _ = std::fs::remove_dir_all(&folder);
}
