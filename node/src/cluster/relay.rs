//! The single-origin relay: whatever serves the dashboard (the demo launcher, or any
//! node) also carries every node's API and event stream under `/nodes/{http}/...`, so
//! the page talks only to the origin it was loaded from. A hosted demo then publishes
//! one port behind one certificate, and a browser elsewhere needs no node port.
//!
//! The relay is not an open proxy. It forwards only to HTTP addresses it knows (the
//! launcher's slots, or the peers a node heard from over the authenticated cluster
//! transport), only paths of the nodes' own API, only bounded bodies, and it drops
//! anything that looks like a path trick (`..`, encoded slashes) with a 400. Its own
//! connections to the nodes are plain HTTP, outside the cluster transport, so injected
//! link faults never touch them.
//!
//! Event streams are relayed one upstream connection per client, each bounded: a
//! client that stops reading is cut off once one message has waited `SLOW_CLIENT`,
//! so it costs one message of memory, never a growing queue. Visitor limits (per
//! client and in total) live in `visitors.rs`.

use crate::cluster::visitors::{Admission, Visitors};
use axum::body::{to_bytes, Body};
use axum::extract::ws::{Message as ClientMessage, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::http::{header, HeaderName, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use futures_util::StreamExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use shared::api::ErrorBody;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as UpstreamMessage;

/// Largest request body relayed (the API's largest is a few hundred bytes).
pub const MAX_BODY: usize = 64 * 1024;
/// Largest query string relayed.
const MAX_QUERY: usize = 2048;
/// Largest frame accepted from a dashboard client (it sends none of its own).
const MAX_CLIENT_FRAME: usize = 4 * 1024;
/// How long one message may wait for a client that does not read.
pub const SLOW_CLIENT: Duration = Duration::from_secs(5);
/// How long a relayed request may take in all.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);
/// The first path segments of the nodes' API that the relay passes on.
const NODE_API: [&str; 7] = [
    "api", "cluster", "faults", "metrics", "alive", "ready", "ws",
];

/// The HTTP addresses the relay may forward to, asked afresh for every request.
pub type TargetList = Arc<dyn Fn() -> BTreeSet<String> + Send + Sync>;

/// Forwards `/nodes/{http}/...` (and, on a node started by a launcher,
/// `/launcher/...`) to the address it names.
#[derive(Clone)]
pub struct Relay {
    targets: TargetList,
    launcher: Option<String>,
    client: Client<HttpConnector, Body>,
    visitors: Arc<Visitors>,
}

/// A JSON error answer.
fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    let body = ErrorBody {
        error: message.into(),
    };
    (status, Json(body)).into_response()
}

/// The node and the path to ask it, parsed from `/nodes/{http}/{rest}`.
#[derive(Debug, PartialEq, Eq)]
pub struct NodePath {
    /// The node's HTTP address.
    pub http: String,
    /// The path on the node, with its leading slash and without the query.
    pub path: String,
}

/// Why a path is not relayed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not under `/nodes/{http}/`.
    #[error("not a relayed path")]
    NotRelayed,
    /// `..`, `.`, empty segments, backslashes or percent-encoded separators.
    #[error("the path has dot segments, empty segments or encoded separators")]
    Tricky,
    /// A path the nodes' API does not have.
    #[error("the relay passes on only the nodes' API")]
    NotApi,
}

/// Whether one raw (still percent-encoded) path segment is plain.
fn plain_segment(segment: &str) -> bool {
    let lower = segment.to_ascii_lowercase();
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && !segment.contains('\\')
        && !["%2f", "%5c", "%2e", "%00"]
            .iter()
            .any(|encoded| lower.contains(encoded))
}

/// Parses `/nodes/{http}/{rest}`; the result names a node and a path of its API.
pub fn parse_node_path(raw_path: &str) -> Result<NodePath, PathError> {
    let rest = raw_path
        .strip_prefix("/nodes/")
        .ok_or(PathError::NotRelayed)?;
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.len() < 2 {
        return Err(PathError::NotRelayed);
    }
    if !segments.iter().all(|s| plain_segment(s)) {
        return Err(PathError::Tricky);
    }
    if !NODE_API.contains(&segments[1]) {
        return Err(PathError::NotApi);
    }
    Ok(NodePath {
        http: segments[0].to_string(),
        path: format!("/{}", segments[1..].join("/")),
    })
}

/// Whether a `/launcher/...` path is plain (the launcher checks the rest).
fn plain_launcher_path(raw_path: &str) -> bool {
    raw_path
        .strip_prefix('/')
        .is_some_and(|p| p.split('/').all(plain_segment))
}

impl Relay {
    /// A relay to `targets`, and to `launcher` for `/launcher/...` when set.
    pub fn new(targets: TargetList, launcher: Option<String>, visitors: Arc<Visitors>) -> Relay {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(3)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Relay {
            targets,
            launcher,
            client,
            visitors,
        }
    }

    /// Handles `/nodes/...`: checks the path and the target, then relays the request or
    /// the event stream.
    pub async fn nodes(self, request: Request) -> Response {
        let parsed = match parse_node_path(request.uri().path()) {
            Ok(parsed) => parsed,
            Err(PathError::NotApi | PathError::NotRelayed) => {
                return refuse(StatusCode::NOT_FOUND, "no such endpoint behind the relay")
            }
            Err(e) => return refuse(StatusCode::BAD_REQUEST, e.to_string()),
        };
        if !(self.targets)().contains(&parsed.http) {
            return refuse(
                StatusCode::NOT_FOUND,
                format!("{} is not a node this relay knows", parsed.http),
            );
        }
        let client = self.visitors.client_of(&request);
        if parsed.path == "/ws" {
            return self.stream(request, &parsed.http, client).await;
        }
        if let Err(refusal) = self.visitors.admit_request(client, request.method()) {
            return refusal.into_response();
        }
        self.forward(request, &parsed.http, &parsed.path, client)
            .await
    }

    /// Handles `/launcher/...` on a node that a launcher started.
    pub async fn launcher(self, request: Request) -> Response {
        let Some(launcher) = self.launcher.clone() else {
            return refuse(StatusCode::NOT_FOUND, "no launcher started this node");
        };
        let path = request.uri().path().to_string();
        if !plain_launcher_path(&path) {
            return refuse(StatusCode::BAD_REQUEST, PathError::Tricky.to_string());
        }
        let client = self.visitors.client_of(&request);
        self.forward(request, &launcher, &path, client).await
    }

    /// Relays one request: method, query, body (at most `MAX_BODY`), the headers the
    /// API reads, and `X-Forwarded-For` with the visitor's address.
    pub async fn forward(
        &self,
        request: Request,
        http: &str,
        path: &str,
        client: IpAddr,
    ) -> Response {
        let query = request.uri().query().unwrap_or("").to_string();
        if query.len() > MAX_QUERY {
            return refuse(StatusCode::URI_TOO_LONG, "the query string is too long");
        }
        let (parts, body) = request.into_parts();
        let body = match to_bytes(body, MAX_BODY).await {
            Ok(body) => body,
            Err(_) => {
                return refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request bodies are limited to {MAX_BODY} bytes"),
                )
            }
        };
        let target = if query.is_empty() {
            format!("http://{http}{path}")
        } else {
            format!("http://{http}{path}?{query}")
        };
        let Ok(uri) = target.parse::<Uri>() else {
            return refuse(StatusCode::BAD_REQUEST, "not a valid address");
        };
        let mut upstream = axum::http::Request::builder()
            .method(parts.method.clone())
            .uri(uri);
        for name in [header::CONTENT_TYPE, header::AUTHORIZATION, header::ACCEPT] {
            if let Some(value) = parts.headers.get(&name) {
                upstream = upstream.header(name, value.clone());
            }
        }
        upstream = upstream.header(
            HeaderName::from_static("x-forwarded-for"),
            client.to_string(),
        );
        let Ok(upstream) = upstream.body(Body::from(body)) else {
            return refuse(StatusCode::BAD_REQUEST, "the request cannot be relayed");
        };
        match tokio::time::timeout(UPSTREAM_TIMEOUT, self.client.request(upstream)).await {
            Ok(Ok(answer)) => relayed_answer(answer),
            Ok(Err(e)) => refuse(
                StatusCode::BAD_GATEWAY,
                format!("{http} did not answer: {e}"),
            ),
            Err(_) => refuse(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "{http} did not answer within {} s",
                    UPSTREAM_TIMEOUT.as_secs()
                ),
            ),
        }
    }

    /// Relays one node's event stream to one client.
    async fn stream(&self, request: Request, http: &str, client: IpAddr) -> Response {
        let (mut parts, _body) = request.into_parts();
        let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(upgrade) => upgrade,
            Err(rejection) => return rejection.into_response(),
        };
        let ticket = match self.visitors.admit_stream(client) {
            Admission::Admitted(ticket) => ticket,
            Admission::Refused(refusal) => return refusal.into_response(),
        };
        let config = WebSocketConfig::default()
            .read_buffer_size(8 * 1024)
            .write_buffer_size(0)
            .max_message_size(Some(4 * 1024 * 1024));
        let connect = tokio_tungstenite::connect_async_with_config(
            format!("ws://{http}/ws"),
            Some(config),
            true,
        );
        let upstream = match tokio::time::timeout(Duration::from_secs(5), connect).await {
            Ok(Ok((upstream, _))) => upstream,
            Ok(Err(e)) => {
                return refuse(
                    StatusCode::BAD_GATEWAY,
                    format!("{http} did not answer: {e}"),
                )
            }
            Err(_) => {
                return refuse(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("{http} did not answer"),
                )
            }
        };
        // Small buffers: a relay holds one stream per node per open tab.
        upgrade
            .read_buffer_size(4 * 1024)
            .max_message_size(MAX_CLIENT_FRAME)
            .max_frame_size(MAX_CLIENT_FRAME)
            .write_buffer_size(0)
            .on_upgrade(move |socket| async move {
                pump(socket, upstream, SLOW_CLIENT).await;
                drop(ticket);
            })
    }
}

/// The node's answer, passed on with its status and content type.
fn relayed_answer<B>(answer: axum::http::Response<B>) -> Response
where
    B: axum::body::HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let (parts, body) = answer.into_parts();
    let mut response = Response::new(Body::new(body));
    *response.status_mut() = parts.status;
    for name in [header::CONTENT_TYPE, header::CACHE_CONTROL] {
        if let Some(value) = parts.headers.get(&name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

/// Copies the node's messages to the client until either side closes, then closes
/// both. The client's own messages are read (so its closing is seen) and never passed
/// on. A message the client leaves unsent for `slow_client` ends the stream.
async fn pump<C, U, E>(mut client: C, mut upstream: U, slow_client: Duration)
where
    C: futures_util::Sink<ClientMessage>
        + futures_util::Stream<Item = Result<ClientMessage, E>>
        + Unpin,
    U: futures_util::Sink<UpstreamMessage>
        + futures_util::Stream<Item = Result<UpstreamMessage, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
{
    use futures_util::SinkExt;
    loop {
        tokio::select! {
            from_node = upstream.next() => {
                let message = match from_node {
                    Some(Ok(UpstreamMessage::Text(text))) => ClientMessage::Text(text.as_str().into()),
                    Some(Ok(UpstreamMessage::Binary(bytes))) => ClientMessage::Binary(bytes),
                    Some(Ok(UpstreamMessage::Ping(_) | UpstreamMessage::Pong(_) | UpstreamMessage::Frame(_))) => continue,
                    Some(Ok(UpstreamMessage::Close(_))) | Some(Err(_)) | None => break,
                };
                match tokio::time::timeout(slow_client, client.send(message)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break,
                    Err(_) => {
                        tracing::info!("relay: a client that does not read was cut off");
                        break;
                    }
                }
            }
            from_client = client.next() => match from_client {
                Some(Ok(ClientMessage::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), upstream.close()).await;
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        client.send(ClientMessage::Close(None)),
    )
    .await;
}

/// `/nodes/{http}/...` through `relay`.
pub fn node_routes<S: Clone + Send + Sync + 'static>(relay: Relay) -> Router<S> {
    Router::new().route(
        "/nodes/{*rest}",
        any(move |request: Request| relay.clone().nodes(request)),
    )
}

/// `/nodes/{http}/...` and `/launcher/...`, through `relay`.
pub fn routes(relay: Relay) -> Router {
    let launcher = relay.clone();
    node_routes(relay).route(
        "/launcher/{*rest}",
        any(move |request: Request| launcher.clone().launcher(request)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll};

    /// A dashboard client that never reads: its sink never has room, and it never
    /// sends or closes. Counts what it was handed.
    struct NeverReads(Arc<AtomicUsize>);

    impl futures_util::Sink<ClientMessage> for NeverReads {
        type Error = std::convert::Infallible;
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Pending
        }
        fn start_send(self: Pin<&mut Self>, _: ClientMessage) -> Result<(), Self::Error> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Pending
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Pending
        }
    }

    impl futures_util::Stream for NeverReads {
        type Item = Result<ClientMessage, std::convert::Infallible>;
        fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Poll::Pending
        }
    }

    /// A node that streams without end, counting how many messages were taken from it.
    struct EndlessNode(Arc<AtomicUsize>);

    impl futures_util::Stream for EndlessNode {
        type Item = Result<UpstreamMessage, tokio_tungstenite::tungstenite::Error>;
        fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Poll::Ready(Some(Ok(UpstreamMessage::Text(
                "{\"type\":\"event\"}".into(),
            ))))
        }
    }

    impl futures_util::Sink<UpstreamMessage> for EndlessNode {
        type Error = tokio_tungstenite::tungstenite::Error;
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
        fn start_send(self: Pin<&mut Self>, _: UpstreamMessage) -> Result<(), Self::Error> {
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_client_that_never_reads_is_cut_off_holding_one_message() {
        let taken = Arc::new(AtomicUsize::new(0));
        let handed = Arc::new(AtomicUsize::new(0));
        let started = std::time::Instant::now();
        let cut_off = tokio::time::timeout(
            Duration::from_secs(10),
            pump(
                NeverReads(Arc::clone(&handed)),
                EndlessNode(Arc::clone(&taken)),
                Duration::from_millis(200),
            ),
        )
        .await;
        assert!(cut_off.is_ok(), "the stream ended by itself");
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(
            taken.load(Ordering::SeqCst),
            1,
            "nothing more was read from the node while the client did not read"
        );
        assert_eq!(handed.load(Ordering::SeqCst), 0, "no queue built up");
    }

    #[test]
    fn node_paths_name_a_node_and_a_path_of_its_api() {
        assert_eq!(
            parse_node_path("/nodes/127.0.0.1:8552/api/users/7/history"),
            Ok(NodePath {
                http: "127.0.0.1:8552".into(),
                path: "/api/users/7/history".into()
            })
        );
        assert_eq!(
            parse_node_path("/nodes/10.1.0.3:8558/ws").map(|p| p.path),
            Ok("/ws".into())
        );
    }

    #[test]
    fn path_tricks_and_foreign_paths_are_refused() {
        for tricky in [
            "/nodes/127.0.0.1:8552/api/../launcher/nodes",
            "/nodes/127.0.0.1:8552/api/%2e%2e/x",
            "/nodes/127.0.0.1:8552/api%2Fusers",
            "/nodes/127.0.0.1:8552/api%5cusers",
            "/nodes/127.0.0.1:8552//api",
            "/nodes/127.0.0.1:8552/api/./x",
            "/nodes/127.0.0.1:8552/api\\x",
        ] {
            assert_eq!(parse_node_path(tricky), Err(PathError::Tricky), "{tricky}");
        }
        assert_eq!(
            parse_node_path("/nodes/127.0.0.1:8552/launcher/nodes"),
            Err(PathError::NotApi)
        );
        assert_eq!(
            parse_node_path("/nodes/127.0.0.1:8552"),
            Err(PathError::NotRelayed)
        );
        assert_eq!(
            parse_node_path("/api/dashboard"),
            Err(PathError::NotRelayed)
        );
        assert!(!plain_launcher_path("/launcher/../x"));
        assert!(plain_launcher_path("/launcher/nodes/1/kill"));
    }
}
