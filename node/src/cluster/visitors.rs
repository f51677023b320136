//! Who a visitor is and how much of the demo they may use: the client address (from
//! `X-Forwarded-For` only when the connection comes from a configured proxy), an
//! anonymous tag for the timeline, and the per-client and total limits on event
//! streams and service writes. Outside public mode only the total stream cap applies,
//! so a runaway script cannot exhaust the relay either.
//!
//! Every refusal is a 429 with a JSON error and `Retry-After`, and it changes nothing:
//! the demo stays up for everyone else.

use axum::extract::{ConnectInfo, Request};
use axum::http::{header, Extensions, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use shared::api::ErrorBody;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The limits. `None` for a rate means unlimited.
#[derive(Clone, Debug)]
pub struct VisitorLimits {
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Event streams one client may hold at once.
    pub streams_per_client: Option<usize>,
    /// Event streams the relay holds in all.
    pub streams_total: usize,
    /// New event streams one client may open per minute.
    pub stream_opens_per_minute: Option<u32>,
    /// Writes (POST, PUT, DELETE) one client may send per minute.
    pub writes_per_minute: Option<u32>,
}

impl VisitorLimits {
    /// No per-client limits; a total stream cap of `streams_total`.
    pub fn open(streams_total: usize) -> Self {
        VisitorLimits {
            trusted_proxies: Vec::new(),
            streams_per_client: None,
            streams_total,
            stream_opens_per_minute: None,
            writes_per_minute: None,
        }
    }

    /// The limits of a public demo: a browser tab holds one stream per node, so a
    /// visitor gets room for a few tabs of a full cluster.
    pub fn public(trusted_proxies: Vec<IpAddr>, writes_per_minute: u32) -> Self {
        VisitorLimits {
            trusted_proxies,
            streams_per_client: Some(24),
            streams_total: 2000,
            stream_opens_per_minute: Some(120),
            writes_per_minute: Some(writes_per_minute),
        }
    }
}

/// Why a visitor was turned away.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Too many open streams for this client.
    #[error("at most {0} event streams per visitor; close a tab and try again")]
    StreamsPerClient(usize),
    /// The relay is full.
    #[error("the demo is full ({0} event streams); try again in a minute")]
    StreamsTotal(usize),
    /// Opening streams too fast.
    #[error("at most {0} new event streams per minute per visitor")]
    StreamOpens(u32),
    /// Writing too fast.
    #[error("at most {0} service writes per minute per visitor")]
    Writes(u32),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = Json(ErrorBody {
            error: self.to_string(),
        });
        let retry = match self {
            Refusal::StreamsPerClient(_) | Refusal::StreamsTotal(_) => 30,
            Refusal::StreamOpens(_) | Refusal::Writes(_) => 60,
        };
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry.to_string())],
            body,
        )
            .into_response()
    }
}

/// The outcome of asking for a stream.
pub enum Admission {
    /// Admitted; the stream counts until the ticket is dropped.
    Admitted(StreamTicket),
    /// Refused.
    Refused(Refusal),
}

/// One open stream, counted until dropped.
pub struct StreamTicket {
    visitors: Arc<Visitors>,
    client: IpAddr,
}

impl Drop for StreamTicket {
    fn drop(&mut self) {
        let mut state = self.visitors.state.lock().expect("visitors");
        state.streams_total = state.streams_total.saturating_sub(1);
        if let Some(count) = state.streams.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.streams.remove(&self.client);
            }
        }
    }
}

/// Events in the last minute, per client.
#[derive(Default)]
struct Window {
    times: Vec<Instant>,
}

impl Window {
    /// Records an event at `now` unless `limit` events already fell in the last minute.
    fn admit(&mut self, now: Instant, limit: u32) -> bool {
        self.times
            .retain(|t| now.duration_since(*t) < Duration::from_secs(60));
        if self.times.len() >= limit as usize {
            return false;
        }
        self.times.push(now);
        true
    }
}

#[derive(Default)]
struct State {
    streams: HashMap<IpAddr, usize>,
    streams_total: usize,
    stream_opens: HashMap<IpAddr, Window>,
    writes: HashMap<IpAddr, Window>,
}

/// The visitors of one relay.
pub struct Visitors {
    limits: VisitorLimits,
    salt: u64,
    state: Mutex<State>,
}

impl Visitors {
    /// Visitors under `limits`.
    pub fn new(limits: VisitorLimits) -> Arc<Visitors> {
        Arc::new(Visitors {
            limits,
            salt: rand::random(),
            state: Mutex::new(State::default()),
        })
    }

    /// The visitor's address: the connecting peer, or, when the peer is a trusted
    /// proxy, the right-most address in `X-Forwarded-For` that is not a trusted proxy
    /// (everything left of it was written by the visitor and proves nothing).
    pub fn client_of(&self, request: &Request) -> IpAddr {
        self.client_of_parts(request.extensions(), request.headers())
    }

    /// As [`Visitors::client_of`], from a request's parts.
    pub fn client_of_parts(&self, extensions: &Extensions, headers: &HeaderMap) -> IpAddr {
        let peer = peer_of(extensions).ip();
        client_address(
            peer,
            headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()),
            &self.limits.trusted_proxies,
        )
    }

    /// An anonymous, stable tag for a client, for the shared timeline.
    pub fn tag(&self, client: IpAddr) -> String {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.salt.hash(&mut hasher);
        client.hash(&mut hasher);
        format!("visitor-{:04x}", hasher.finish() & 0xffff)
    }

    /// Admits a relayed request: writes count against the per-client write rate.
    pub fn admit_request(&self, client: IpAddr, method: &Method) -> Result<(), Refusal> {
        let Some(limit) = self.limits.writes_per_minute else {
            return Ok(());
        };
        if !is_write(method) {
            return Ok(());
        }
        let mut state = self.state.lock().expect("visitors");
        if state
            .writes
            .entry(client)
            .or_default()
            .admit(Instant::now(), limit)
        {
            Ok(())
        } else {
            Err(Refusal::Writes(limit))
        }
    }

    /// Admits a new event stream, or says why not.
    pub fn admit_stream(self: &Arc<Self>, client: IpAddr) -> Admission {
        let mut state = self.state.lock().expect("visitors");
        if state.streams_total >= self.limits.streams_total {
            return Admission::Refused(Refusal::StreamsTotal(self.limits.streams_total));
        }
        let open = state.streams.get(&client).copied().unwrap_or(0);
        if let Some(cap) = self.limits.streams_per_client {
            if open >= cap {
                return Admission::Refused(Refusal::StreamsPerClient(cap));
            }
        }
        if let Some(limit) = self.limits.stream_opens_per_minute {
            let window = state.stream_opens.entry(client).or_default();
            if !window.admit(Instant::now(), limit) {
                return Admission::Refused(Refusal::StreamOpens(limit));
            }
        }
        state.streams_total += 1;
        *state.streams.entry(client).or_default() += 1;
        Admission::Admitted(StreamTicket {
            visitors: Arc::clone(self),
            client,
        })
    }

    /// Event streams open now.
    pub fn open_streams(&self) -> usize {
        self.state.lock().expect("visitors").streams_total
    }
}

/// The connecting peer's address, as the server recorded it (loopback when served
/// without connect info, as in tests that call a router directly).
pub fn peer_of(extensions: &Extensions) -> SocketAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0)
        .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
}

/// Whether a method changes something (and so counts against the write limit).
pub fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// See [`Visitors::client_of`].
pub fn client_address(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let Some(list) = forwarded_for else {
        return peer;
    };
    let mut client = peer;
    for hop in list.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(address) => {
                client = address;
                if !trusted.contains(&address) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let proxy = ip("10.0.0.1");
        let trusted = [proxy];
        let xff = Some("1.2.3.4, 5.6.7.8");
        assert_eq!(client_address(proxy, xff, &trusted), ip("5.6.7.8"));
        assert_eq!(
            client_address(ip("9.9.9.9"), xff, &trusted),
            ip("9.9.9.9"),
            "a visitor cannot name itself someone else"
        );
        assert_eq!(client_address(proxy, None, &trusted), proxy);
        assert_eq!(
            client_address(proxy, Some("1.2.3.4, 10.0.0.1"), &trusted),
            ip("1.2.3.4"),
            "proxies in the chain are skipped"
        );
        assert_eq!(
            client_address(proxy, Some("1.2.3.4, garbage"), &trusted),
            proxy,
            "an unreadable hop ends the chain"
        );
    }

    #[test]
    fn streams_are_capped_per_client_and_in_total_and_freed_when_closed() {
        let mut limits = VisitorLimits::open(3);
        limits.streams_per_client = Some(2);
        let visitors = Visitors::new(limits);
        let a = ip("1.1.1.1");
        let b = ip("2.2.2.2");
        let admitted = |x: Admission| match x {
            Admission::Admitted(t) => t,
            Admission::Refused(r) => panic!("refused: {r}"),
        };
        let first = admitted(visitors.admit_stream(a));
        let _second = admitted(visitors.admit_stream(a));
        assert!(matches!(
            visitors.admit_stream(a),
            Admission::Refused(Refusal::StreamsPerClient(2))
        ));
        let _third = admitted(visitors.admit_stream(b));
        assert!(matches!(
            visitors.admit_stream(ip("3.3.3.3")),
            Admission::Refused(Refusal::StreamsTotal(3))
        ));
        drop(first);
        assert_eq!(visitors.open_streams(), 2);
        let _again = admitted(visitors.admit_stream(a));
    }

    #[test]
    fn writes_are_rate_limited_per_client_and_reads_are_not() {
        let visitors = Visitors::new(VisitorLimits::public(vec![], 2));
        let a = ip("1.1.1.1");
        assert!(visitors.admit_request(a, &Method::POST).is_ok());
        assert!(visitors.admit_request(a, &Method::POST).is_ok());
        assert_eq!(
            visitors.admit_request(a, &Method::POST),
            Err(Refusal::Writes(2))
        );
        assert!(visitors.admit_request(a, &Method::GET).is_ok());
        assert!(visitors.admit_request(ip("2.2.2.2"), &Method::POST).is_ok());
        assert_ne!(visitors.tag(a), visitors.tag(ip("2.2.2.2")));
        assert_eq!(visitors.tag(a), visitors.tag(a));
    }
}
