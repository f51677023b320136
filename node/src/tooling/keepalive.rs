//! A keep-alive HTTP/1.1 connection for the load generators of the benchmarks: one
//! request at a time on one TCP connection, GET or a JSON POST, content-length
//! answers only (what our API sends). Unlike `client`, which opens a connection per
//! request for the CLI and the tests, it keeps the connection, so a load generator
//! measures the server and not the handshakes; and the [`Sample`] of latencies and
//! outcomes both load generators keep.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A status and the body of an answer.
pub type Answer = (u16, Vec<u8>);

/// One keep-alive connection to `address` (`host:port`), opened on first use.
pub struct KeepAlive {
    address: String,
    stream: Option<BufReader<TcpStream>>,
}

impl KeepAlive {
    /// A connection to `address`, not opened yet.
    pub fn new(address: String) -> KeepAlive {
        KeepAlive {
            address,
            stream: None,
        }
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Result<Answer, String> {
        self.send(&format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n",
            self.address
        ))
        .await
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&mut self, path: &str, body: &str) -> Result<Answer, String> {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.address,
            body.len()
        );
        self.send(&request).await
    }

    /// Sends `request`; a stale keep-alive connection is reopened once.
    async fn send(&mut self, request: &str) -> Result<Answer, String> {
        let reused = self.stream.is_some();
        match self.try_send(request).await {
            Ok(answer) => Ok(answer),
            Err(_) if reused => {
                self.stream = None;
                self.try_send(request).await
            }
            Err(e) => Err(e),
        }
    }

    async fn try_send(&mut self, request: &str) -> Result<Answer, String> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.address)
                .await
                .map_err(|e| e.to_string())?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            self.stream = Some(BufReader::new(s));
        }
        let stream = self.stream.as_mut().expect("connected");
        let result = exchange(stream, request).await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }
}

/// Writes `request` and reads one content-length answer.
async fn exchange(stream: &mut BufReader<TcpStream>, request: &str) -> Result<Answer, String> {
    stream
        .get_mut()
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    stream
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line {line:?}"))?;
    let mut length = 0usize;
    loop {
        line.clear();
        stream
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().map_err(|_| "bad length")?;
            }
        }
    }
    let mut body = vec![0; length];
    stream
        .read_exact(&mut body)
        .await
        .map_err(|e| e.to_string())?;
    Ok((status, body))
}

/// What a load generator records of its requests: latencies and outcomes.
#[derive(Default, Clone)]
pub struct Sample {
    /// Every request's latency, in microseconds.
    pub latencies_us: Vec<u64>,
    /// Answered with a 2xx status and a personal answer.
    pub ok: u64,
    /// Answered with a 2xx status and `"degraded":true`.
    pub degraded: u64,
    /// Not answered, or answered with another status.
    pub failed: u64,
}

impl Sample {
    /// Records one request that began at `started`.
    pub fn record(&mut self, answer: &Result<Answer, String>, started: std::time::Instant) {
        self.latencies_us.push(started.elapsed().as_micros() as u64);
        match answer {
            Ok((status, body)) if (200..300).contains(status) => {
                if body.windows(15).any(|w| w == b"\"degraded\":true") {
                    self.degraded += 1;
                } else {
                    self.ok += 1;
                }
            }
            _ => self.failed += 1,
        }
    }

    /// Adds `other`'s requests to these.
    pub fn add(&mut self, other: &Sample) {
        self.latencies_us.extend_from_slice(&other.latencies_us);
        self.ok += other.ok;
        self.degraded += other.degraded;
        self.failed += other.failed;
    }

    /// The `p` quantile of the latencies (0 to 1), in ms; NaN without requests.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        sorted
            .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
            .map_or(f64::NAN, |us| *us as f64 / 1000.0)
    }

    /// Requests answered (personal or degraded).
    pub fn answered(&self) -> u64 {
        self.ok + self.degraded
    }

    /// Requests sent.
    pub fn total(&self) -> u64 {
        self.ok + self.degraded + self.failed
    }
}
