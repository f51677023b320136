//! The cluster as containers: the project's own image and `compose.yaml`, three nodes
//! on a private bridge network with their own addresses, seeded by DNS name, and the
//! faults a deployment meets applied from outside the processes (`docker kill`,
//! `docker pause`, iptables partitions in a container's network namespace), with
//! clients that send to any node and fail over. Skipped, with one line, where no
//! Docker daemon answers.

mod support;

use node::tooling::containers::{docker_answers, Deployment};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::failover::{LoadClient, Tally};

const LONG: Duration = Duration::from_secs(90);
const NODES: [&str; 3] = ["n1", "n2", "n3"];
/// The synthetic catalogue's users and videos.
const USERS: u32 = 200;
const VIDEOS: u32 = 300;

macro_rules! needs_docker {
    () => {
        if !docker_answers() {
            eprintln!("container tests skipped: no Docker daemon answers");
            return;
        }
    };
}

fn formed(name: &str) -> Deployment {
    let d = Deployment::up(name);
    d.wait(LONG, "three containers Up in every view", |d| {
        d.all_up(&NODES)
    });
    d
}

fn api_nodes(d: &Deployment, services: &[&str]) -> Arc<Mutex<Vec<String>>> {
    Arc::new(Mutex::new(services.iter().map(|s| d.http(s)).collect()))
}

/// Every acknowledged watch, read back through `http`.
fn lost_watches(d: &Deployment, http: &str, tally: &Tally) -> Vec<(u32, u32)> {
    tally
        .acknowledged
        .iter()
        .filter(|(user, video)| {
            let reply = d
                .call(http, "GET", &format!("/api/users/{user}/history"))
                .expect("history answers");
            let history: shared::api::HistoryResponse =
                serde_json::from_str(&reply.body).expect("history json");
            !history.watched.iter().any(|w| w.video.id == *video)
        })
        .copied()
        .collect()
}

fn assert_clean(tally: &Tally, what: &str) {
    assert!(
        tally.ok > 20,
        "{what}: too few requests answered: {tally:?}"
    );
    assert!(
        tally.failures.is_empty(),
        "{what}: {} of {} requests failed on every node: {:?}",
        tally.failures.len(),
        tally.ok + tally.failures.len() as u64,
        tally.failures
    );
}

#[test]
fn three_containers_form_one_cluster_by_dns_and_serve_the_dashboard_from_one_origin() {
    needs_docker!();
    let d = formed("form");
    for s in NODES {
        let m = d.members(&d.http(s)).unwrap();
        assert_eq!(
            m.self_node,
            d.cluster_address(s),
            "{s} advertises its own container IP"
        );
        let page = d.call(&d.http(s), "GET", "/").unwrap();
        assert!(
            page.status == 200 && page.body.contains("<html"),
            "{s} serves the dashboard"
        );
        let dash = d.call(&d.http(s), "GET", "/api/dashboard").unwrap();
        assert!(
            dash.body.contains(&d.http(s)),
            "{s} reports its advertised HTTP address: {}",
            dash.body
        );
    }
    // One origin: n1 relays every other node's API, so the page needs n1's port alone.
    for s in ["n2", "n3"] {
        let relayed = d
            .call(
                &d.http("n1"),
                "GET",
                &format!("/nodes/{}/cluster/members", d.http(s)),
            )
            .unwrap();
        assert_eq!(relayed.status, 200, "n1 relays {s}: {}", relayed.body);
        assert!(
            relayed.body.contains(&d.cluster_address(s)),
            "the answer is {s}'s own: {}",
            relayed.body
        );
    }
    let id = d.container("n1");
    assert_eq!(
        d.inspect(&id, "{{.Config.User}}"),
        "10001:10001",
        "runs as a non-root user"
    );
}

#[test]
fn a_killed_container_is_removed_while_the_service_answers() {
    needs_docker!();
    let d = formed("kill");
    let victim = d.container("n3");
    let victim_uid = d
        .members(&d.http("n3"))
        .unwrap()
        .members
        .iter()
        .find(|m| m.node == d.cluster_address("n3"))
        .unwrap()
        .node_uid
        .clone();
    let load = LoadClient::start(
        api_nodes(&d, &NODES),
        USERS,
        VIDEOS,
        Duration::from_millis(20),
    );
    std::thread::sleep(Duration::from_secs(3));
    d.docker(&["kill", &victim]);
    d.wait(
        LONG,
        "the killed incarnation gone from both survivors' views",
        |d| {
            ["n1", "n2"].iter().all(|s| {
                d.members(&d.http(s)).is_some_and(|m| {
                    m.unreachable.is_empty() && !m.members.iter().any(|x| x.node_uid == victim_uid)
                })
            })
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    let tally = load.finish();
    assert_clean(&tally, "through docker kill");
    assert_eq!(lost_watches(&d, &d.http("n1"), &tally), vec![]);
}

#[test]
fn a_paused_container_is_downed_and_comes_back_as_a_new_incarnation() {
    needs_docker!();
    let d = formed("pause");
    let victim = d.container("n3");
    let address = d.cluster_address("n3");
    let old_uid = d
        .members(&d.http("n1"))
        .unwrap()
        .members
        .iter()
        .find(|m| m.node == address)
        .unwrap()
        .node_uid
        .clone();
    d.docker(&["pause", &victim]);
    d.wait(LONG, "n3 unreachable", |d| {
        d.members(&d.http("n1"))
            .is_some_and(|m| m.unreachable.iter().any(|u| u.node == address))
    });
    d.wait(LONG, "n3 downed and removed by the majority", |d| {
        d.members(&d.http("n1"))
            .is_some_and(|m| m.members.len() == 2 && m.unreachable.is_empty())
    });
    d.docker(&["unpause", &victim]);
    d.wait(
        LONG,
        "the unpaused node exits as downed (code 3) and is restarted",
        |d| d.inspect(&victim, "{{.RestartCount}}") != "0",
    );
    d.wait(LONG, "n3 back as a new incarnation, Up everywhere", |d| {
        d.all_up(&NODES)
            && d.members(&d.http("n1")).is_some_and(|m| {
                m.members
                    .iter()
                    .any(|x| x.node == address && x.node_uid != old_uid)
            })
    });
    let logs = d.logs(&victim);
    let ended: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("membership ended"))
        .collect();
    // It learns it was downed, or, if the others have already removed it, that it was
    // removed (exit 3 or 4): either way it never serves again as that incarnation.
    assert!(
        ended
            .first()
            .is_some_and(|l| l.contains("Downed") || l.contains("Removed")),
        "the unpaused node stopped as downed: {ended:?}"
    );
}

#[test]
fn a_partitioned_minority_is_downed_the_majority_serves_and_the_cluster_heals() {
    needs_docker!();
    let d = formed("part");
    let minority = d.container("n3");
    let address = d.cluster_address("n3");
    let majority_ips: Vec<String> = ["n1", "n2"].iter().map(|s| d.ip(&d.container(s))).collect();
    let load = LoadClient::start(
        api_nodes(&d, &["n1", "n2"]),
        USERS,
        VIDEOS,
        Duration::from_millis(20),
    );
    d.partition(&minority, &majority_ips);
    d.wait(LONG, "the majority downs and removes n3", |d| {
        ["n1", "n2"].iter().all(|s| {
            d.members(&d.http(s)).is_some_and(|m| {
                m.members.len() == 2
                    && m.unreachable.is_empty()
                    && !m.members.iter().any(|x| x.node == address)
            })
        })
    });
    d.wait(
        LONG,
        "the minority downs itself (restarted by Docker)",
        |d| d.inspect(&minority, "{{.RestartCount}}") != "0",
    );
    // No split brain: neither survivor sees the other downed. (n3's new incarnation
    // may already be joining: a container restart brings a fresh network namespace,
    // without the partition's rules.)
    let survivors = [d.cluster_address("n1"), d.cluster_address("n2")];
    for s in ["n1", "n2"] {
        let m = d.members(&d.http(s)).unwrap();
        let downed = m
            .members
            .iter()
            .any(|x| survivors.contains(&x.node) && x.status != "Up");
        assert!(!downed, "{s}: {m:?}");
    }
    d.heal(&minority);
    d.wait(LONG, "one cluster of three again", |d| d.all_up(&NODES));
    let tally = load.finish();
    assert_clean(&tally, "through a 1 | 2 partition, asking the majority");
    assert_eq!(lost_watches(&d, &d.http("n3"), &tally), vec![]);
}

#[test]
fn scaling_workers_up_and_down_loses_no_request_and_no_watch() {
    needs_docker!();
    let d = formed("scale");
    let load = LoadClient::start(
        api_nodes(&d, &NODES),
        USERS,
        VIDEOS,
        Duration::from_millis(20),
    );
    d.compose(&["up", "-d", "--scale", "worker=2", "--no-recreate"]);
    let workers = d.containers("worker");
    assert_eq!(workers.len(), 2);
    let worker_addresses: Vec<String> = workers
        .iter()
        .map(|w| format!("{}:2551", d.ip(w)))
        .collect();
    d.wait(LONG, "five Up members", |d| {
        d.up_members(&d.http("n1")).is_some_and(|up| {
            up.len() == 5
                && worker_addresses
                    .iter()
                    .all(|w| up.iter().any(|(n, _)| n == w))
        })
    });
    std::thread::sleep(Duration::from_secs(3));
    // Compose removes scaled-down containers: wait for their exit codes first.
    let exits: Vec<_> = workers
        .iter()
        .map(|w| {
            let w = w.clone();
            std::thread::spawn(move || {
                let out = std::process::Command::new("docker")
                    .args(["wait", &w])
                    .output()
                    .expect("docker wait");
                String::from_utf8_lossy(&out.stdout).trim().to_string()
            })
        })
        .collect();
    d.compose(&["up", "-d", "--scale", "worker=0", "--no-recreate"]);
    for exit in exits {
        assert_eq!(
            exit.join().unwrap(),
            "0",
            "a scaled-down worker left gracefully"
        );
    }
    d.wait(LONG, "three Up members again", |d| d.all_up(&NODES));
    for s in NODES {
        let logs = d.logs(&d.container(s));
        for w in &worker_addresses {
            let host = w.split(':').next().unwrap();
            assert!(
                !logs
                    .lines()
                    .any(|l| l.contains("UnreachableMember") && l.contains(host)),
                "{s} saw a leaving worker ({w}) unreachable"
            );
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    let tally = load.finish();
    assert_clean(&tally, "through scale 3 -> 5 -> 3");
    assert_eq!(lost_watches(&d, &d.http("n2"), &tally), vec![]);
}

#[test]
fn compose_down_and_up_keeps_every_acknowledged_watch() {
    needs_docker!();
    let d = formed("restart");
    let load = LoadClient::start(
        api_nodes(&d, &NODES),
        USERS,
        VIDEOS,
        Duration::from_millis(20),
    );
    std::thread::sleep(Duration::from_secs(5));
    let tally = load.finish();
    assert_clean(&tally, "before the restart");
    d.compose(&["down", "-t", "30"]);
    d.compose(&["up", "-d"]);
    d.wait(LONG, "three containers Up after down and up", |d| {
        d.all_up(&NODES)
    });
    d.wait(LONG, "reads answer", |d| {
        d.call(&d.http("n1"), "GET", "/api/users/1/history")
            .is_ok_and(|r| r.status == 200)
    });
    assert_eq!(lost_watches(&d, &d.http("n1"), &tally), vec![]);
}

/// `docker run` of the image with what an operator gets wrong.
fn run_image(env: &[(&str, &str)], wait: Duration) -> (Option<i32>, String) {
    let name = format!("gmt{}bad{}", std::process::id(), env.len());
    let mut args = vec![
        "run".to_string(),
        "-d".into(),
        "--name".into(),
        name.clone(),
    ];
    for (k, v) in env {
        args.push("-e".into());
        args.push(format!("{k}={v}"));
    }
    args.push(node::tooling::containers::image());
    let started = std::process::Command::new("docker")
        .args(&args)
        .output()
        .unwrap();
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    std::thread::sleep(wait);
    let inspect = |format: &str| {
        let out = std::process::Command::new("docker")
            .args(["inspect", "-f", format, &name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let code = (inspect("{{.State.Running}}") == "false")
        .then(|| inspect("{{.State.ExitCode}}").parse().unwrap());
    let logs = std::process::Command::new("docker")
        .args(["logs", &name])
        .output()
        .unwrap();
    let _ = std::process::Command::new("docker")
        .args(["rm", "-f", &name])
        .output();
    (code, String::from_utf8_lossy(&logs.stderr).to_string())
}

#[test]
fn a_bad_secret_exits_2_and_an_unreachable_advertised_address_is_logged() {
    needs_docker!();
    node::tooling::containers::require_image();
    let long = "long-enough-token";
    for (secret, token) in [("", long), ("short", long), (long, "short")] {
        let mut env = vec![("NODE_SYNTHETIC_DATA", "true")];
        if !secret.is_empty() {
            env.push(("NODE_SECRET", secret));
        }
        env.push(("NODE_TOKEN", token));
        let (code, logs) = run_image(&env, Duration::from_secs(2));
        assert_eq!(code, Some(2), "secret {secret:?}, token {token:?}: {logs}");
        assert!(
            logs.contains("secret") || logs.contains("token"),
            "a clear message: {logs}"
        );
    }
    // Advertising an address where nothing of ours listens: said in the log at once.
    let (code, logs) = run_image(
        &[
            ("NODE_SYNTHETIC_DATA", "true"),
            ("NODE_SECRET", long),
            ("NODE_TOKEN", long),
            ("NODE_ADVERTISE", "127.0.0.1:2999"),
            ("NODE_SEEDS", "127.0.0.1:2999"),
        ],
        Duration::from_secs(4),
    );
    assert_eq!(code, None, "it keeps running (and trying): {logs}");
    assert!(
        logs.contains("does not reach this node"),
        "the log names the unreachable advertised address: {logs}"
    );
}
