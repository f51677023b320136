//! A client request that behaves like a real client's: sent to one of the api nodes
//! it knows (the caller picks which, so also the one about to fail), and tried on the
//! next on a refused connection, a 5xx status, a per-attempt timeout or a degraded
//! answer, until one overall deadline. The process tests, the container tests and
//! the service benchmark all count what such a client sees.

use crate::tooling::client::{request, Reply};
use std::time::{Duration, Instant};

/// Per attempt: long enough for a hedged request, short enough to fail over from a
/// frozen node.
pub const ATTEMPT: Duration = Duration::from_millis(1500);
/// Per request, all attempts together.
pub const DEADLINE: Duration = Duration::from_secs(8);

/// The answer a request got, and how many attempts it took.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The reply: a success, or a degraded answer if no node gave better.
    pub reply: Reply,
    /// Nodes asked (1: no fail-over).
    pub attempts: u32,
}

impl Answer {
    /// Whether the answer is a degraded one (the popularity list, not personal).
    pub fn is_degraded(&self) -> bool {
        is_degraded(&self.reply)
    }
}

/// Whether a reply carries `"degraded":true`.
pub fn is_degraded(reply: &Reply) -> bool {
    reply.body.contains("\"degraded\":true")
}

/// Sends one request to `nodes[first]`, failing over to the next in turn. After a
/// whole round of nodes has failed it pauses 50 ms between attempts. Errors with the
/// last failure if no node answered without error before the deadline.
pub async fn send(
    nodes: &[String],
    first: usize,
    method: &str,
    path: &str,
    body: Option<String>,
) -> Result<Answer, String> {
    let began = Instant::now();
    let mut last = String::from("no node to ask");
    let mut degraded = None;
    let mut attempts = 0u32;
    while began.elapsed() < DEADLINE && !nodes.is_empty() {
        if attempts as usize >= nodes.len() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let node = &nodes[(first + attempts as usize) % nodes.len()];
        attempts += 1;
        let json = body.clone().map(|b| ("application/json", b));
        match tokio::time::timeout(ATTEMPT, request(node, method, path, None, json)).await {
            Ok(Ok(reply)) if reply.status < 500 && !is_degraded(&reply) => {
                return Ok(Answer { reply, attempts });
            }
            Ok(Ok(reply)) if reply.status < 500 => degraded = Some(reply),
            Ok(Ok(reply)) => last = format!("{node}: {} {}", reply.status, reply.body),
            Ok(Err(e)) => last = e,
            Err(_) => last = format!("{node}: no answer within {ATTEMPT:?}"),
        }
    }
    match degraded {
        Some(reply) => Ok(Answer { reply, attempts }),
        None => Err(format!("{last} (after {attempts} attempts)")),
    }
}
