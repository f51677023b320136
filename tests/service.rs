//! Process-level tests of the recommendation service: real node processes on
//! loopback (three nodes with roles `api` and `worker`, the synthetic catalogue),
//! real SIGKILLs, and clients that count every answer.

mod support;

use node::tooling::failover;
use shared::api::{ErrorBody, HistoryResponse, RecommendationsResponse, WatchResponse};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::Cluster;

const LONG: Duration = Duration::from_secs(60);
const JSON: &str = "application/json";
/// Users and videos of the synthetic catalogue (`Dataset::synthetic(200, 300, 6, 7)`).
const USERS: u32 = 200;
const VIDEOS: u32 = 300;

fn recommendations(c: &Cluster, i: usize, user: u32) -> Result<RecommendationsResponse, String> {
    let reply = c.call(i, "GET", &format!("/api/recommendations/{user}?n=10"), None)?;
    if reply.status != 200 {
        return Err(format!("{}: {}", reply.status, reply.body));
    }
    serde_json::from_str(&reply.body).map_err(|e| e.to_string())
}

fn history(c: &Cluster, i: usize, user: u32) -> Result<HistoryResponse, String> {
    let reply = c.call(i, "GET", &format!("/api/users/{user}/history"), None)?;
    if reply.status != 200 {
        return Err(format!("{}: {}", reply.status, reply.body));
    }
    serde_json::from_str(&reply.body).map_err(|e| e.to_string())
}

fn watch(c: &Cluster, i: usize, user: u32, video: u32) -> Result<WatchResponse, String> {
    let body = format!("{{\"video\":{video}}}");
    let reply = c.call(
        i,
        "POST",
        &format!("/api/users/{user}/watched"),
        Some((JSON, body)),
    )?;
    if reply.status != 201 {
        return Err(format!("{}: {}", reply.status, reply.body));
    }
    serde_json::from_str(&reply.body).map_err(|e| e.to_string())
}

fn recorded_videos(h: &HistoryResponse) -> BTreeSet<u32> {
    h.watched
        .iter()
        .filter(|w| w.recorded_at_ms.is_some())
        .map(|w| w.video.id)
        .collect()
}

/// Three Up members, and the service answering personally from node 0.
fn start_service() -> Cluster {
    let c = Cluster::start(3);
    c.wait(LONG, "three Up members", |c| c.all_see_up(&[0, 1, 2]));
    c.wait(LONG, "a watch acknowledged by a majority", |c| {
        watch(c, 0, 1, 1).is_ok()
    });
    c
}

/// What a steady client saw.
#[derive(Default)]
struct Tally {
    ok: u64,
    degraded: u64,
    failures: Vec<String>,
    acknowledged: Vec<(u32, u32)>,
}

/// Sends recommendation requests and watches to the given api nodes, alternating,
/// until `stop` is set. Like a real client it starts at any node (so also at one that
/// is about to die) and fails over to the next on an error or a timeout.
fn steady_client(
    http: Vec<String>,
    seed: u32,
    stop: Arc<std::sync::atomic::AtomicBool>,
    tally: Arc<Mutex<Tally>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut k: u32 = seed;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            k = k.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let user = 1 + (k >> 8) % USERS;
            let video = 1 + (k >> 4) % VIDEOS;
            let first = (k as usize >> 3) % http.len();
            let node = &http[first];
            if k.is_multiple_of(2) {
                let path = format!("/api/recommendations/{user}?n=10");
                let result = rt
                    .block_on(failover::send(&http, first, "GET", &path, None))
                    .map(|a| a.reply);
                let mut t = tally.lock().unwrap();
                match result {
                    Ok(r) if r.status == 200 => {
                        let answer: RecommendationsResponse =
                            serde_json::from_str(&r.body).unwrap();
                        if answer.degraded {
                            t.degraded += 1;
                        } else {
                            t.ok += 1;
                        }
                    }
                    Ok(r) => t
                        .failures
                        .push(format!("GET {path} on {node}: {} {}", r.status, r.body)),
                    Err(e) => t.failures.push(format!("GET {path} on {node}: {e}")),
                }
            } else {
                let path = format!("/api/users/{user}/watched");
                let body = format!("{{\"video\":{video}}}");
                let result = rt
                    .block_on(failover::send(&http, first, "POST", &path, Some(body)))
                    .map(|a| a.reply);
                let mut t = tally.lock().unwrap();
                match result {
                    Ok(r) if r.status == 201 => {
                        t.ok += 1;
                        t.acknowledged.push((user, video));
                    }
                    Ok(r) => t
                        .failures
                        .push(format!("POST {path} on {node}: {} {}", r.status, r.body)),
                    Err(e) => t.failures.push(format!("POST {path} on {node}: {e}")),
                }
            }
        }
    })
}

/// Every acknowledged watch, read back through node `i`; the ones missing.
fn missing_watches(c: &Cluster, i: usize, acknowledged: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut by_user: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
    for (user, video) in acknowledged {
        by_user.entry(*user).or_default().insert(*video);
    }
    let mut missing = Vec::new();
    for (user, videos) in by_user {
        let recorded = history(c, i, user)
            .map(|h| recorded_videos(&h))
            .unwrap_or_else(|e| panic!("history of user {user}: {e}"));
        missing.extend(videos.difference(&recorded).map(|v| (user, *v)));
    }
    missing
}

/// Runs four fail-over clients against every api node (the faulty one included) for
/// 4 s, then `fault`, then 4 s more; asserts that no request failed, none degraded,
/// and every acknowledged watch reads back through node 0. `fault` says what it did.
fn under_load(c: &mut Cluster, what: &str, fault: impl FnOnce(&mut Cluster)) {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let api: Vec<String> = c.nodes.iter().map(|n| n.http.clone()).collect();
    let clients: Vec<_> = (0..4)
        .map(|i| steady_client(api.clone(), 7 + i, Arc::clone(&stop), Arc::clone(&tally)))
        .collect();
    std::thread::sleep(Duration::from_secs(4));
    let before = tally.lock().unwrap().ok;
    let began = Instant::now();
    fault(c);
    let took = began.elapsed();
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for client in clients {
        client.join().unwrap();
    }
    let t = tally.lock().unwrap();
    eprintln!(
        "{what}: {} answered ({before} before), {} degraded, {} failed, {} watches acknowledged; \
         the fault took {took:?}",
        t.ok,
        t.degraded,
        t.failures.len(),
        t.acknowledged.len(),
    );
    assert!(before > 20, "the load ran before the fault");
    assert!(t.ok > before + 20, "the load ran after the fault");
    assert!(
        t.failures.is_empty(),
        "{what}: failed requests: {:#?}",
        &t.failures[..t.failures.len().min(10)]
    );
    assert_eq!(t.degraded, 0, "{what}: a majority of workers stays up");
    let missing = missing_watches(c, 0, &t.acknowledged);
    assert!(
        missing.is_empty(),
        "{what}: acknowledged watches lost: {missing:?}"
    );
}

/// Waits until every node sees three Up and node `i`'s replica has caught up.
fn back_and_caught_up(c: &Cluster, i: usize) {
    c.wait(LONG, "three Up members again", |c| c.all_see_up(&[0, 1, 2]));
    c.wait(LONG, "the restarted replica caught up", |c| {
        replica(c, i).is_some_and(|r| r.ready)
    });
}

#[test]
fn a_sigkilled_worker_fails_no_request_and_loses_no_acknowledged_watch() {
    let mut c = start_service();
    under_load(&mut c, "SIGKILL", |c| {
        c.nodes[2].kill();
        c.wait(LONG, "n2 removed, two Up", |c| c.all_see_up(&[0, 1]));
    });
}

#[test]
fn a_worker_paused_for_ten_seconds_fails_no_request() {
    let mut c = start_service();
    under_load(&mut c, "SIGSTOP 10 s", |c| {
        assert!(c.nodes[2].signal("STOP"));
        std::thread::sleep(Duration::from_secs(10));
        assert!(c.nodes[2].signal("CONT"));
        // Downed meanwhile, it learns so and exits; a supervisor starts it again.
        let code = c.nodes[2].wait_exit(LONG);
        assert!(matches!(code, Some(3) | Some(4)), "downed, got {code:?}");
        c.restart(2);
        back_and_caught_up(c, 2);
    });
}

#[test]
fn a_worker_restarted_without_its_disk_fails_no_request_and_loses_nothing() {
    let mut c = start_service();
    under_load(&mut c, "restart without the disk", |c| {
        c.nodes[2].kill();
        let port = c.nodes[2].cluster.rsplit(':').next().unwrap().to_string();
        std::fs::remove_dir_all(c.state.join(port)).expect("n2's store folder");
        c.restart(2);
        back_and_caught_up(c, 2);
    });
}

#[test]
fn a_rolling_restart_of_every_node_fails_no_request() {
    let mut c = start_service();
    under_load(&mut c, "rolling restart", |c| {
        for i in 0..3 {
            c.nodes[i].kill();
            c.restart(i);
            back_and_caught_up(c, i);
        }
    });
}

/// Cuts every link between node `i` and the others, at both ends, through the
/// fault API.
fn isolate(c: &Cluster, i: usize) {
    for j in (0..c.nodes.len()).filter(|j| *j != i) {
        for (on, peer) in [(i, j), (j, i)] {
            let cut = format!(
                "{{\"peer\":\"{}\",\"cutOutbound\":true,\"cutInbound\":true}}",
                c.nodes[peer].cluster
            );
            let reply = c
                .call(on, "POST", "/faults/links", Some((JSON, cut)))
                .unwrap();
            assert!(reply.status < 300, "{}", reply.body);
        }
    }
}

#[test]
fn a_one_node_partition_and_its_healing_fail_no_request() {
    let mut c = start_service();
    under_load(&mut c, "one-node partition for 6 s", |c| {
        isolate(c, 2);
        std::thread::sleep(Duration::from_secs(6));
        // Healing: the resolver has downed n2 by now (3 s stable-after), so it exits
        // on learning so and a supervisor starts it again.
        let code = c.nodes[2].wait_exit(LONG);
        assert!(matches!(code, Some(3) | Some(4)), "downed, got {code:?}");
        for i in [0, 1] {
            let healed = c.call(i, "DELETE", "/faults", None).unwrap();
            assert!(healed.status < 300, "{}", healed.body);
        }
        c.restart(2);
        back_and_caught_up(c, 2);
    });
}

/// The keyring of node `i`: `(id, primary)`, primary first.
fn keys(c: &Cluster, i: usize) -> Vec<(String, bool)> {
    let reply = c.call(i, "GET", "/cluster/keys", None).unwrap();
    let listed: shared::api::KeysResponse = serde_json::from_str(&reply.body).unwrap();
    listed.keys.into_iter().map(|k| (k.id, k.primary)).collect()
}

#[test]
fn a_key_rotation_of_the_running_cluster_fails_no_request() {
    let mut c = start_service();
    let old = keys(&c, 0)[0].0.clone();
    under_load(&mut c, "key rotation", |c| {
        let install = Some((JSON, "{\"secret\":\"rotated-cluster-secret\"}".to_string()));
        for i in 0..3 {
            let reply = c.call(i, "POST", "/cluster/keys", install.clone()).unwrap();
            assert_eq!(reply.status, 201, "{}", reply.body);
        }
        let new = keys(c, 0)
            .into_iter()
            .find(|(id, _)| *id != old)
            .expect("the new key is listed")
            .0;
        for i in 0..3 {
            let reply = c
                .call(i, "PUT", &format!("/cluster/keys/{new}/primary"), None)
                .unwrap();
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
        std::thread::sleep(Duration::from_secs(1));
        for i in 0..3 {
            let reply = c
                .call(i, "DELETE", &format!("/cluster/keys/{old}"), None)
                .unwrap();
            assert_eq!(reply.status, 200, "{}", reply.body);
            assert_eq!(keys(c, i), vec![(new.clone(), true)]);
        }
        c.wait(LONG, "three Up on the new key", |c| {
            c.all_see_up(&[0, 1, 2])
        });
    });
    // Removing the primary key is refused, and changes need the token.
    let new = keys(&c, 0)[0].0.clone();
    let primary = c
        .call(0, "DELETE", &format!("/cluster/keys/{new}"), None)
        .unwrap();
    assert_eq!(primary.status, 409, "{}", primary.body);
    let anonymous =
        c.rt.block_on(node::tooling::client::request(
            &c.nodes[0].http,
            "DELETE",
            &format!("/cluster/keys/{new}"),
            None,
            None,
        ))
        .unwrap();
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
}

#[test]
fn a_full_cluster_restart_keeps_every_acknowledged_watch() {
    let mut c = start_service();
    let mut acknowledged = Vec::new();
    for k in 0..30u32 {
        let (user, video) = (1 + (k * 37) % USERS, 1 + (k * 53) % VIDEOS);
        let answer = watch(&c, (k % 3) as usize, user, video).expect("watch acknowledged");
        assert!(
            answer.acknowledged_by.len() >= 2,
            "a majority of 3 acknowledged"
        );
        acknowledged.push((user, video));
    }
    for i in 0..3 {
        c.nodes[i].kill();
    }
    for i in 0..3 {
        c.restart(i);
    }
    c.wait(LONG, "three Up members again", |c| c.all_see_up(&[0, 1, 2]));
    c.wait(LONG, "history readable from a majority", |c| {
        history(c, 2, 1).is_ok()
    });
    let missing = missing_watches(&c, 2, &acknowledged);
    assert!(
        missing.is_empty(),
        "watches lost in the restart: {missing:?}"
    );
}

#[test]
fn recommendations_follow_what_the_user_watches() {
    let c = start_service();
    // User 2 likes taste group 1 (videos 2, 8, 14, ...); they now watch taste group 4.
    let user = 2;
    let before = recommendations(&c, 0, user).unwrap();
    assert!(before.personal && !before.degraded);
    let watched: Vec<u32> = (0..8).map(|k| 5 + 6 * k).collect();
    for v in &watched {
        watch(&c, 1, user, *v).unwrap();
    }
    let h = history(&c, 2, user).unwrap();
    assert!(recorded_videos(&h).is_superset(&watched.iter().copied().collect()));
    let after = recommendations(&c, 0, user).unwrap();
    let after_ids: Vec<u32> = after.items.iter().map(|r| r.video.id).collect();
    assert!(
        watched.iter().all(|v| !after_ids.contains(v)),
        "watched videos are not recommended again"
    );
    let scores = |r: &RecommendationsResponse| -> BTreeMap<u32, f32> {
        r.items.iter().map(|i| (i.video.id, i.score)).collect()
    };
    let (old, new) = (scores(&before), scores(&after));
    let rescored = old
        .iter()
        .any(|(id, s)| new.get(id).is_some_and(|n| (n - s).abs() > 1e-6));
    let new_taste = after_ids.iter().filter(|id| (*id - 1) % 6 == 4).count();
    assert!(
        rescored || new_taste > 0,
        "the new history changed neither scores nor picks: before {old:?}, after {new:?}"
    );
}

/// Method, path, body, expected status.
type BadCase = (&'static str, String, Option<(&'static str, String)>, u16);

#[test]
fn bad_service_input_gets_a_4xx_json_error_and_changes_nothing() {
    let c = start_service();
    let user = 3;
    let before = recorded_videos(&history(&c, 0, user).unwrap());
    let cases: Vec<BadCase> = vec![
        ("GET", "/api/recommendations/abc".into(), None, 400),
        ("GET", "/api/recommendations/99999".into(), None, 404),
        ("GET", format!("/api/recommendations/{user}?n=0"), None, 400),
        (
            "GET",
            format!("/api/recommendations/{user}?n=101"),
            None,
            400,
        ),
        (
            "GET",
            format!("/api/recommendations/{user}?n=ten"),
            None,
            400,
        ),
        (
            "GET",
            format!("/api/recommendations/{user}?bogus=1"),
            None,
            400,
        ),
        ("GET", "/api/videos/abc".into(), None, 400),
        ("GET", "/api/videos/999999".into(), None, 404),
        ("GET", "/api/videos?page=0".into(), None, 400),
        ("GET", "/api/videos?genre=Nope".into(), None, 400),
        ("GET", "/api/users/-1/history".into(), None, 400),
        ("GET", "/api/users/99999/history".into(), None, 404),
        (
            "POST",
            format!("/api/users/{user}/watched"),
            Some((JSON, "not json".into())),
            400,
        ),
        (
            "POST",
            format!("/api/users/{user}/watched"),
            Some((JSON, "{\"video\":999999}".into())),
            404,
        ),
        (
            "POST",
            format!("/api/users/{user}/watched"),
            Some((JSON, "{\"video\":-4}".into())),
            400,
        ),
        (
            "POST",
            format!("/api/users/{user}/watched"),
            Some((JSON, "{\"video\":4,\"x\":1}".into())),
            400,
        ),
        (
            "POST",
            format!("/api/users/{user}/watched"),
            Some(("text/plain", "{\"video\":4}".into())),
            400,
        ),
        (
            "POST",
            "/api/users/99999/watched".into(),
            Some((JSON, "{\"video\":4}".into())),
            404,
        ),
        ("GET", "/api/nothing-here".into(), None, 404),
    ];
    for (method, path, body, expected) in cases {
        let reply = c.call(0, method, &path, body).unwrap();
        assert_eq!(reply.status, expected, "{method} {path}: {}", reply.body);
        let error: ErrorBody = serde_json::from_str(&reply.body)
            .unwrap_or_else(|e| panic!("{method} {path}: not a JSON error ({e}): {}", reply.body));
        assert!(!error.error.is_empty());
    }
    assert_eq!(
        recorded_videos(&history(&c, 0, user).unwrap()),
        before,
        "nothing was recorded"
    );
    assert_eq!(c.call(0, "GET", "/ready", None).unwrap().status, 200);
    let r = recommendations(&c, 0, user).unwrap();
    assert_eq!(r.items.len(), 10);
    let page = c
        .call(0, "GET", "/api/videos?query=video%201&page=1", None)
        .unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
}

fn replica(c: &Cluster, i: usize) -> Option<shared::api::ReplicaStatus> {
    let reply = c.call(i, "GET", "/api/replica", None).ok()?;
    serde_json::from_str(&reply.body).ok()
}

#[test]
fn a_restarted_replica_catches_up_and_all_copies_converge() {
    let mut c = start_service();
    c.nodes[2].kill();
    c.wait(LONG, "n2 removed, two Up", |c| c.all_see_up(&[0, 1]));
    // Written while n2 is gone: only n0 and n1 hold these.
    for k in 0..20u32 {
        watch(&c, (k % 2) as usize, 1 + k, 1 + (k * 7) % VIDEOS)
            .expect("acknowledged by n0 and n1");
    }
    c.restart(2);
    c.wait(LONG, "three Up members", |c| c.all_see_up(&[0, 1, 2]));
    c.wait(LONG, "every replica ready with the same copy", |c| {
        let all: Vec<_> = (0..3).filter_map(|i| replica(c, i)).collect();
        all.len() == 3
            && all.iter().all(|r| r.replica && r.ready)
            && all
                .iter()
                .all(|r| r.digest == all[0].digest && r.watches == all[0].watches)
    });
    assert!(
        replica(&c, 2).unwrap().watches >= 20,
        "n2 holds what was written while it was gone"
    );
}

#[test]
fn when_no_worker_answers_recommendations_degrade_and_watches_fail_fast() {
    // n0 serves the API only; n1 and n2 are the workers. The resolver waits a minute,
    // so nobody is downed while the workers are paused.
    let c = Cluster::start_with(3, |i| {
        let roles = if i == 0 { "api" } else { "worker" };
        vec!["--roles", roles, "--stable-after-ms", "60000"]
    });
    c.wait(LONG, "three Up members", |c| c.all_see_up(&[0, 1, 2]));
    c.wait(LONG, "a personal answer from a worker", |c| {
        recommendations(c, 0, 4).is_ok_and(|r| !r.degraded && r.served_by != c.nodes[0].cluster)
    });
    for i in [1, 2] {
        c.nodes[i].signal("STOP");
    }
    let asked = Instant::now();
    let r = recommendations(&c, 0, 4).expect("an answer, not an error");
    assert!(r.degraded && !r.personal, "{r:?}");
    assert_eq!(
        r.served_by, c.nodes[0].cluster,
        "the api node answered itself"
    );
    assert_eq!(r.items.len(), 10);
    assert!(
        asked.elapsed() < Duration::from_secs(9),
        "answered within the deadline"
    );
    let asked = Instant::now();
    let refused = c
        .call(
            0,
            "POST",
            "/api/users/4/watched",
            Some((JSON, "{\"video\":9}".into())),
        )
        .unwrap();
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(serde_json::from_str::<ErrorBody>(&refused.body).is_ok());
    assert!(asked.elapsed() < Duration::from_secs(9));
    for i in [1, 2] {
        c.nodes[i].signal("CONT");
    }
    c.wait(LONG, "personal answers again", |c| {
        recommendations(c, 0, 4).is_ok_and(|r| !r.degraded)
    });
    // An api-only node holds no replica.
    assert!(!replica(&c, 0).unwrap().replica);
}

#[test]
fn a_node_cut_off_from_the_majority_answers_503_at_once_and_a_client_fails_over() {
    // The resolver waits a minute, so n2 stays cut off (not downed) while it is asked.
    let c = Cluster::start_with(3, |_| vec!["--stable-after-ms", "60000"]);
    c.wait(LONG, "three Up members", |c| c.all_see_up(&[0, 1, 2]));
    c.wait(LONG, "a watch acknowledged by a majority", |c| {
        watch(c, 0, 1, 1).is_ok()
    });
    for (on, peer) in [(2, 0), (2, 1), (0, 2), (1, 2)] {
        let cut = format!(
            "{{\"peer\":\"{}\",\"cutOutbound\":true,\"cutInbound\":true}}",
            c.nodes[peer].cluster
        );
        let reply = c
            .call(on, "POST", "/faults/links", Some((JSON, cut)))
            .unwrap();
        assert!(reply.status < 300, "{}", reply.body);
    }
    c.wait(LONG, "n2 sees both others unreachable", |c| {
        c.unreachable_in(2, 0) && c.unreachable_in(2, 1)
    });
    let asked = Instant::now();
    let refused = c
        .call(
            2,
            "POST",
            "/api/users/4/watched",
            Some((JSON, "{\"video\":9}".into())),
        )
        .unwrap();
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.body.contains("not a majority"), "{}", refused.body);
    let history = c.call(2, "GET", "/api/users/4/history", None).unwrap();
    assert_eq!(history.status, 503, "{}", history.body);
    let r = recommendations(&c, 2, 4).expect("a degraded answer, not an error");
    assert!(r.degraded && r.attempts == 0, "{r:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "all three answered at once, not after the deadline: {:?}",
        asked.elapsed()
    );
    // A client that starts at n2 fails over and gets its watch acknowledged.
    let nodes: Vec<String> = c.nodes.iter().map(|n| n.http.clone()).collect();
    let began = Instant::now();
    let reply =
        c.rt.block_on(failover::send(
            &nodes,
            2,
            "POST",
            "/api/users/4/watched",
            Some("{\"video\":9}".into()),
        ))
        .expect("acknowledged through another node")
        .reply;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "failed over at once"
    );
}
