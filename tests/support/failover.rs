//! A steady load of clients that behave like real ones (`node::tooling::failover`):
//! each request goes to one of the api nodes it knows (round-robin, so also to the one
//! about to fail) and fails over to the next. It records every watch the service acknowledged, so a test can
//! check that none is lost, and counts the requests that failed on every attempt.

use node::tooling::failover;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
                let list = nodes.lock().unwrap().clone();
                let outcome = rt
                    .block_on(failover::send(&list, turn as usize, method, &path, body))
                    .and_then(|a| match a.reply.status {
                        200..=299 => Ok(a.attempts),
                        status => Err(format!("{status} {}", a.reply.body)),
                    });
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
