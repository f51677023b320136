//! A client request that behaves like a real client's: sent to one of the api nodes
//! it knows (the caller picks which, so also the one about to fail), backed up on the
//! next node when slow, and tried on the next on a refused connection, a 5xx status,
//! a per-attempt timeout or a degraded answer, until one overall deadline. The process tests, the container tests and
//! the service benchmark all count what such a client sees.

use crate::tooling::client::{request, Reply};
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::time::Duration;

/// Per attempt: long enough for a hedged request, short enough to fail over from a
/// frozen node.
pub const ATTEMPT: Duration = Duration::from_millis(1500);
/// Without an answer after this long, the next node is asked as well.
pub const HEDGE: Duration = Duration::from_millis(300);
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

/// Sends one request to `nodes[first]`. If no answer has come after `HEDGE`, the
/// next node is asked as well (a backup request, as Finagle's and gRPC's hedging
/// do; every call of our API is idempotent, so asking two nodes is safe), and a
/// failed attempt moves on to the next node at once; at most two attempts are in
/// flight. After a whole round of nodes, attempts pause 50 ms first. Errors with the
/// last failure if no node answered without error before the deadline.
pub async fn send(
    nodes: &[String],
    first: usize,
    method: &str,
    path: &str,
    body: Option<String>,
) -> Result<Answer, String> {
    if nodes.is_empty() {
        return Err("no node to ask".into());
    }
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut last = String::new();
    let mut degraded = None;
    let mut asked = 0u32;
    let mut in_flight = FuturesUnordered::new();
    let attempt = |asked: u32| {
        let node = nodes[(first + asked as usize) % nodes.len()].clone();
        let json = body.clone().map(|b| ("application/json", b));
        let pause = asked as usize >= nodes.len();
        async move {
            if pause {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let sent = request(&node, method, path, None, json);
            match tokio::time::timeout(ATTEMPT, sent).await {
                Ok(result) => result.map_err(|e| format!("{node}: {e}")),
                Err(_) => Err(format!("{node}: no answer within {ATTEMPT:?}")),
            }
        }
    };
    in_flight.push(attempt(asked));
    asked += 1;
    loop {
        tokio::select! {
            Some(result) = in_flight.next() => match result {
                Ok(reply) if reply.status < 500 && !is_degraded(&reply) => {
                    return Ok(Answer { reply, attempts: asked });
                }
                Ok(reply) if reply.status < 500 => degraded = Some(reply),
                Ok(reply) => last = format!("{} {}", reply.status, reply.body),
                Err(e) => last = e,
            },
            _ = tokio::time::sleep(HEDGE), if in_flight.len() < 2 => {}
            _ = tokio::time::sleep_until(deadline) => break,
        }
        if in_flight.len() < 2 && tokio::time::Instant::now() < deadline {
            in_flight.push(attempt(asked));
            asked += 1;
        }
    }
    match degraded {
        Some(reply) => Ok(Answer {
            reply,
            attempts: asked,
        }),
        None => Err(format!("{last} (after {asked} attempts)")),
    }
}
