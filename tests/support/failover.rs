//! A client that behaves like a real one: it sends each request to one of the api
//! nodes it knows (round-robin, so also to the one about to fail), and on an error,
//! a refused connection or a per-attempt timeout it tries the next node, until one
//! overall deadline. It records every watch the service acknowledged, so a test can
//! check that none is lost, and counts the requests that failed on every attempt.

use node::tooling::client::request;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Per attempt: long enough for a hedged request, short enough to fail over from a
/// frozen node.
pub const ATTEMPT: Duration = Duration::from_millis(1500);
/// Per request, all attempts together.
pub const DEADLINE: Duration = Duration::from_secs(8);

/// What the client saw.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Requests answered.
    pub ok: u64,
    /// Requests answered only after failing over.
    pub retried: u64,
    /// Requests that failed on every attempt, with the last error.
    pub failures: Vec<String>,
    /// Watches the service acknowledged: (user, video).
    pub acknowledged: Vec<(u32, u32)>,
}

/// Runs a steady load on its own thread until stopped.
pub struct LoadClient {
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LoadClient {
    /// Alternates a watch of `user`'s next video and a recommendation request for a
    /// user drawn from `1..=users`, every `pause`, against `nodes` (HTTP addresses).
    pub fn start(nodes: Arc<Mutex<Vec<String>>>, users: u32, videos: u32, pause: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let (stop2, tally2) = (Arc::clone(&stop), Arc::clone(&tally));
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let mut turn = 0u64;
            while !stop2.load(Ordering::Relaxed) {
                turn += 1;
                let user = (turn % u64::from(users)) as u32 + 1;
                let video = ((turn / 2) % u64::from(videos)) as u32 + 1;
                let (method, path, body) = if turn.is_multiple_of(2) {
                    let body = format!("{{\"video\":{video}}}");
                    ("POST", format!("/api/users/{user}/watched"), Some(body))
                } else {
                    ("GET", format!("/api/recommendations/{user}?n=10"), None)
                };
                let outcome = rt.block_on(send(&nodes, turn as usize, method, &path, body));
                let mut t = tally2.lock().unwrap();
                match outcome {
                    Ok(attempts) => {
                        t.ok += 1;
                        if attempts > 1 {
                            t.retried += 1;
                        }
                        if method == "POST" {
                            t.acknowledged.push((user, video));
                        }
                    }
                    Err(e) => t.failures.push(format!("{method} {path}: {e}")),
                }
                drop(t);
                std::thread::sleep(pause);
            }
        });
        LoadClient {
            stop,
            tally,
            thread: Some(thread),
        }
    }

    /// What it has seen so far.
    pub fn tally(&self) -> Tally {
        self.tally.lock().unwrap().clone()
    }

    /// Stops it and returns what it saw.
    pub fn finish(mut self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.tally()
    }
}

impl Drop for LoadClient {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One request with fail-over: returns the number of attempts it took.
async fn send(
    nodes: &Mutex<Vec<String>>,
    first: usize,
    method: &str,
    path: &str,
    body: Option<String>,
) -> Result<u32, String> {
    let began = Instant::now();
    let mut attempts = 0u32;
    let mut last = String::from("no node to ask");
    while began.elapsed() < DEADLINE {
        let list = nodes.lock().unwrap().clone();
        if list.is_empty() {
            break;
        }
        let node = &list[(first + attempts as usize) % list.len()];
        attempts += 1;
        let sent = request(
            node,
            method,
            path,
            None,
            body.clone().map(|b| ("application/json", b)),
        );
        match tokio::time::timeout(ATTEMPT, sent).await {
            Ok(Ok(reply)) if reply.status < 300 => return Ok(attempts),
            Ok(Ok(reply)) => last = format!("{node}: {} {}", reply.status, reply.body),
            Ok(Err(e)) => last = e,
            Err(_) => last = format!("{node}: no answer within {ATTEMPT:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("{last} (after {attempts} attempts)"))
}
