//! Process tests of the encrypted transport: real node processes on loopback, with
//! every connection to n0 passing through a man-in-the-middle relay (n0 advertises
//! the relay's address), a plaintext node, and a stranger.

mod support;

use shared::api::{HistoryResponse, MembersResponse};
use std::io::{Read, Write};
use std::sync::OnceLock;
use std::time::Duration;
use support::mitm::{Mitm, Tamper};
use support::Cluster;

const LONG: Duration = Duration::from_secs(60);
const JSON: &str = "application/json";

/// Whether node `i` sees `n` Up members and nothing unreachable.
fn sees_up(c: &Cluster, i: usize, n: usize) -> bool {
    c.members(i).is_some_and(|m: MembersResponse| {
        m.unreachable.is_empty()
            && m.members.len() == n
            && m.members.iter().all(|x| x.status == "Up")
    })
}

/// How many lines of node `i`'s log contain `text`.
fn logged(c: &Cluster, i: usize, text: &str) -> usize {
    c.log_tail(i, 100_000).matches(text).count()
}

/// Three nodes; every connection to n0 goes through the relay.
fn behind_a_relay(relay_rt: &tokio::runtime::Runtime) -> (Cluster, &'static Mitm) {
    static RELAY: OnceLock<Mitm> = OnceLock::new();
    let c = Cluster::start_custom(
        3,
        |ports| {
            let mitm = Mitm::start(relay_rt, format!("127.0.0.1:{}", ports[0].0));
            let seeds = format!(
                "127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}",
                mitm.port, ports[1].0, ports[2].0
            );
            let _ = RELAY.set(mitm);
            seeds
        },
        |i| match i {
            0 => {
                let relayed = format!("127.0.0.1:{}", RELAY.get().expect("relay").port);
                vec!["--advertise", Box::leak(relayed.into_boxed_str())]
            }
            _ => vec![],
        },
    );
    c.wait(LONG, "three Up members", |c| {
        (0..3).all(|i| sees_up(c, i, 3))
    });
    (c, RELAY.get().expect("relay"))
}

fn recorded(c: &Cluster, i: usize, user: u32) -> Vec<u32> {
    let Ok(reply) = c.call(i, "GET", &format!("/api/users/{user}/history"), None) else {
        return Vec::new();
    };
    serde_json::from_str::<HistoryResponse>(&reply.body)
        .map(|h| {
            h.watched
                .iter()
                .filter(|w| w.recorded_at_ms.is_some())
                .map(|w| w.video.id)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn altered_replayed_and_cut_frames_drop_only_their_connection() {
    let relay_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (c, mitm) = behind_a_relay(&relay_rt);
    c.wait(LONG, "a watch acknowledged", |c| {
        c.call(
            1,
            "POST",
            "/api/users/5/watched",
            Some((JSON, "{\"video\":7}".into())),
        )
        .is_ok_and(|r| r.status == 201)
    });
    let cases = [
        (Tamper::Flip, "a frame failed to authenticate"),
        (Tamper::Replay, "a frame failed to authenticate"),
        (Tamper::Truncate, "bytes remaining on stream"),
    ];
    for (tamper, reason) in cases {
        let before = logged(&c, 0, reason);
        mitm.arm(tamper);
        c.wait(LONG, &format!("{tamper:?} done by the relay"), |_| {
            mitm.done().contains(&tamper)
        });
        c.wait(
            LONG,
            &format!("n0 logs why it dropped the {tamper:?} link"),
            |c| logged(c, 0, reason) > before,
        );
        c.wait(LONG, "the link reconnects: three Up everywhere", |c| {
            (0..3).all(|i| sees_up(c, i, 3))
        });
    }
    for i in 0..3 {
        assert!(sees_up(&c, i, 3), "n{i}'s membership is intact");
        assert!(
            recorded(&c, i, 5).contains(&7),
            "n{i} still reads the watch"
        );
    }
    // A plaintext node is refused, and says so in the log of the node it tried.
    let (cp, hp) = (
        node::tooling::procs::free_port(),
        node::tooling::procs::free_port(),
    );
    let mut plain = c.spawn(
        format!("127.0.0.1:{cp}"),
        format!("127.0.0.1:{hp}"),
        &["--transport-encryption", "false"],
    );
    c.wait(LONG, "n1 logs the plaintext peer it refused", |c| {
        logged(c, 1, "speaks the plaintext handshake") > 0
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        (0..3).all(|i| sees_up(&c, i, 3)),
        "the plaintext node did not join"
    );
    plain.kill();
    // A stranger without the key gets not one byte back.
    let mut stranger = std::net::TcpStream::connect(&c.nodes[1].cluster).unwrap();
    stranger
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stranger.write_all(&[0, 0, 0, 48]).unwrap();
    stranger.write_all(&[7u8; 48]).unwrap();
    let mut answer = Vec::new();
    let _ = stranger.read_to_end(&mut answer);
    assert!(answer.is_empty(), "the stranger learned {answer:?}");
    assert!((0..3).all(|i| sees_up(&c, i, 3)));
}

#[test]
fn the_http_api_can_be_served_over_tls_from_given_files() {
    let dir = std::env::temp_dir().join(format!("https-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(made.success());
    let leak = |p: &std::path::Path| -> &'static str {
        Box::leak(p.display().to_string().into_boxed_str())
    };
    let (cert_arg, key_arg) = (leak(&cert), leak(&key));
    let c = Cluster::start_with(1, move |_| {
        vec!["--http-tls-cert", cert_arg, "--http-tls-key", key_arg]
    });
    let url = format!("https://{}/cluster/members", c.nodes[0].http);
    let curl = |url: &str| {
        std::process::Command::new("curl")
            .args(["-sk", "--max-time", "5", url])
            .output()
            .expect("curl runs")
    };
    c.wait(LONG, "the node answers over HTTPS and is Up", |_| {
        let out = curl(&url);
        serde_json::from_slice::<MembersResponse>(&out.stdout)
            .is_ok_and(|m| m.self_status.as_deref() == Some("Up"))
    });
    // Plain HTTP on the same port gets no HTTP answer.
    let plain = c.call(0, "GET", "/cluster/members", None);
    assert!(
        plain
            .as_ref()
            .map_or(true, |r| r.status == 400 || r.body.is_empty()),
        "{plain:?}"
    );
    // A certificate file that is not one stops the node at start with a clear error.
    let bad = dir.join("bad.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_node"))
        .args([
            "run",
            "--demo",
            "true",
            "--synthetic-data",
            "true",
            "--bind",
            "127.0.0.1:0",
        ])
        .args(["--http", "127.0.0.1:0", "--store"])
        .arg(dir.join("store"))
        .arg("--http-tls-key")
        .arg(&key)
        .arg("--http-tls-cert")
        .arg(&bad)
        .output()
        .expect("node runs");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("HTTP TLS") && said.contains("bad.pem"),
        "{said}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
