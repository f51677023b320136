//! Composition of one node, in one place: the membership core on the cluster runtime,
//! the Globomantics service beside it, and one HTTP router for the management API,
//! the service API, the single-origin relay and the dashboard.
//!
//! [`serve`] takes its listeners and a shutdown future from the caller, as
//! mini-redis's `server::run` does: `main` binds the configured ports and passes
//! SIGTERM, and fast tests start several nodes in one process on ports they bound.
//! Processes remain the way to test signals (SIGKILL, SIGSTOP).

use crate::app::catalog::Dataset;
use crate::app::service::store::WatchStore;
use crate::app::service::{api as service_api, Identity, Library, Service, Timing};
use crate::cluster::dashboard::dashboard_fallback;
use crate::cluster::management::{app, AppState};
use crate::cluster::metrics::Metrics;
use crate::cluster::relay::{self, Relay, TargetList};
use crate::cluster::runtime::{self, clock_ms, Handle};
use crate::cluster::transport::Transport;
use crate::cluster::visitors::{VisitorLimits, Visitors};
use crate::cluster::{https, reachability_check, seeds};
use crate::config::{DataSource, NodeConfig};
use axum::Router;
use rand::Rng;
use shared::frame::Frame;
use shared::service::ServiceBody;
use shared::{Command, Message, Node, ShutdownReason, UniqueAddress};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

/// The two sockets a node serves on, bound by the caller.
pub struct Listeners {
    /// The cluster transport's.
    pub cluster: TcpListener,
    /// The HTTP API's.
    pub http: TcpListener,
}

/// Why a node could not start, or ended without a membership reason.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The catalogue could not be loaded.
    #[error("{0} (or pass --synthetic-data true)")]
    Data(String),
    /// The watch-history store could not be opened.
    #[error("{0}")]
    Store(String),
    /// The membership core's task ended without a reason: it crashed.
    #[error("the membership core stopped unexpectedly")]
    CoreFailed,
    /// The HTTP API could not be served (its TLS files, say).
    #[error("{0}")]
    Http(String),
}

/// Runs one node on `listeners` until its membership ends (downed, removed, or left
/// after `shutdown` resolved, which starts a graceful leave); returns why.
pub async fn serve(
    config: NodeConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<ShutdownReason, StartError> {
    let me = UniqueAddress::new(config.advertise.clone(), rand::rng().random());
    let library = Arc::new(Library::build(load_dataset(&config.data)?));
    let store = WatchStore::open(&config.store).map_err(|e| StartError::Store(e.to_string()))?;
    tracing::info!(
        videos = library.videos.len(),
        users = library.base_history.len(),
        recorded_watches = store.len(),
        "catalogue loaded and model trained"
    );
    let metrics = Arc::new(Metrics::default());
    let transport = Transport::new(
        config.advertise.clone(),
        config.settings.cluster_name.clone(),
        &config.secret,
        config.encryption,
        Arc::clone(&metrics),
    );
    if let Some(keyring) = transport.keyring() {
        let mut keyring = keyring.write().expect("keyring lock");
        for secret in &config.accept_secrets {
            keyring.install(transport.key_for(secret));
        }
    } else {
        tracing::warn!("transport encryption is off: frames between nodes travel in the clear");
    }
    let (inbound_tx, inbound_rx) = mpsc::channel(4096);
    tokio::spawn(Arc::clone(&transport).accept_loop(listeners.cluster, inbound_tx));
    let (handle, core_tx) = start_core(&config, me.clone(), &transport).await;
    let (service, service_tx) = Service::start(
        identity(&config, &me),
        library,
        store,
        Timing::default(),
        Arc::clone(&transport),
        handle.clone(),
    );
    split_inbound(inbound_rx, core_tx, service_tx);
    // Weak: the service holds the transport, which holds these metrics.
    let figures = Arc::downgrade(&service);
    metrics.add_section(move || {
        figures
            .upgrade()
            .map(|service| service.metrics_text())
            .unwrap_or_default()
    });
    let management = app(AppState {
        handle: handle.clone(),
        transport,
        metrics,
        token: config.token.clone(),
    });
    let router = router(management, service, &config.web_root);
    let tls = match &config.http_tls {
        Some((cert, key)) => {
            Some(https::acceptor(cert, key).map_err(|e| StartError::Http(e.to_string()))?)
        }
        None => None,
    };
    serve_http(listeners.http, router, tls).map_err(|e| StartError::Http(e.to_string()))?;
    tracing::info!(node = %me, http = %config.http, http_advertise = %config.http_advertise, demo = config.demo, "node started");
    tokio::spawn(reachability_check::watch(
        config.advertise.clone(),
        handle.clone(),
        Duration::from_millis(config.settings.seed_node_timeout_ms.max(1000) * 5),
    ));
    let reason = membership_end(&handle, &me, config.settings.exiting_timeout_ms, shutdown).await;
    tracing::info!(?reason, "membership ended");
    // Let the last messages (a final gossip) leave the queues.
    tokio::time::sleep(Duration::from_millis(200)).await;
    reason
}

fn load_dataset(source: &DataSource) -> Result<Dataset, StartError> {
    match source {
        DataSource::Synthetic => Ok(Dataset::synthetic(200, 300, 6, 7)),
        DataSource::MovieLens(folder) => {
            Dataset::load(folder).map_err(|e| StartError::Data(e.to_string()))
        }
    }
}

fn identity(config: &NodeConfig, me: &UniqueAddress) -> Identity {
    Identity {
        me: me.clone(),
        http: config.http_advertise.to_string(),
        roles: config.roles.clone(),
        demo: config.demo,
        launcher: config.launcher.clone(),
        monitored_by: config.settings.monitored_by_nr_of_members,
    }
}

/// The membership core on its runtime task, and where its messages go in. Seeds
/// given as a DNS name are resolved again on the join retry period (the seed-node
/// timeout), so seeds that start after this node are found.
async fn start_core(
    config: &NodeConfig,
    me: UniqueAddress,
    transport: &Arc<Transport>,
) -> (Handle, mpsc::Sender<Message>) {
    let (core_tx, core_rx) = mpsc::channel(4096);
    let resolved = seeds::resolve(&config.seeds).await;
    let core = Node::new(
        me,
        config.roles.clone(),
        resolved.clone(),
        config.settings.clone(),
        rand::rng().random(),
        clock_ms(),
    );
    let handle = runtime::start(core, core_rx, Arc::clone(transport));
    if config
        .seeds
        .iter()
        .any(|s| matches!(s, seeds::SeedSpec::Dns { .. }))
    {
        let period = Duration::from_millis(config.settings.seed_node_timeout_ms.max(500));
        tokio::spawn(follow_seeds(
            config.seeds.clone(),
            resolved,
            handle.clone(),
            period,
        ));
    }
    (handle, core_tx)
}

async fn follow_seeds(
    specs: Vec<seeds::SeedSpec>,
    mut last: Vec<shared::Address>,
    handle: Handle,
    period: Duration,
) {
    loop {
        tokio::time::sleep(period).await;
        let now = seeds::resolve(&specs).await;
        if now != last {
            tracing::info!(?now, "seed list re-resolved");
            if handle.update_seeds(now.clone()).await.is_err() {
                return;
            }
            last = now;
        }
    }
}

/// One reader of the transport: membership messages go to the core, service
/// messages to the service.
fn split_inbound(
    mut inbound: mpsc::Receiver<Frame>,
    core: mpsc::Sender<Message>,
    service: mpsc::Sender<(UniqueAddress, ServiceBody)>,
) {
    tokio::spawn(async move {
        while let Some(message) = inbound.recv().await {
            let delivered = match message {
                Frame::Service { from, body } => service.send((from, body)).await.is_ok(),
                Frame::Membership(message) => core.send(message).await.is_ok(),
            };
            if !delivered {
                return;
            }
        }
    });
}

/// The management router joined with the service API (`/api/...`), the single-origin
/// relay (`/nodes/{http}/...` to any node this one knows, `/launcher/...` to the
/// launcher that started it) and the built dashboard (`web_root`, served at `/`).
/// Unknown API paths get a JSON 404. The page uses relative URLs only; every answer
/// still allows any origin (CORS) for scripts and `trunk serve`, and mutating
/// endpoints need the token outside demo mode, relayed or not.
pub fn router(management: Router, service: Arc<Service>, web_root: &std::path::Path) -> Router {
    let targets_of = Arc::clone(&service);
    let targets: TargetList = Arc::new(move || targets_of.known_http());
    let relay = Relay::new(
        targets,
        service.identity.launcher.clone(),
        Visitors::new(VisitorLimits::open(2000)),
    );
    management
        .merge(service_api::router(service))
        .merge(relay::routes(relay))
        .fallback(dashboard_fallback(web_root))
        .layer(crate::cluster::http_common::any_origin())
}

/// Serves `router` on `listener`, over TLS when `tls` is set.
fn serve_http(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
) -> std::io::Result<()> {
    match tls {
        Some(acceptor) => {
            let listener = https::TlsListener::new(listener, acceptor)?;
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, https::WithPeer(router)).await {
                    tracing::error!("https server failed: {e}");
                }
            });
        }
        None => {
            let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, service).await {
                    tracing::error!("http server failed: {e}");
                }
            });
        }
    }
    Ok(())
}

/// Waits for the membership to end, or for `shutdown`, which asks the core to leave
/// and then waits (bounded) for the leave to complete.
async fn membership_end(
    handle: &Handle,
    me: &UniqueAddress,
    exiting_timeout_ms: u64,
    shutdown: impl Future<Output = ()>,
) -> Result<ShutdownReason, StartError> {
    tokio::select! {
        reason = stopped(handle.stopped.clone()) => reason,
        _ = shutdown => {
            tracing::info!("shutdown asked: leaving the cluster");
            let bound = Duration::from_millis(exiting_timeout_ms + 10_000);
            let leave = handle.command(Command::Leave(me.address.clone()));
            match tokio::time::timeout(bound, leave).await {
                Ok(Ok(Ok(()))) => match tokio::time::timeout(bound, stopped(handle.stopped.clone())).await {
                    Ok(reason) => reason,
                    Err(_) => {
                        tracing::warn!("leave did not complete within {bound:?}; exiting anyway");
                        Ok(ShutdownReason::Left)
                    }
                },
                // Not a member (still joining): nothing to leave.
                _ => Ok(ShutdownReason::Left),
            }
        }
    }
}

/// Resolves when the membership core stops, with its reason.
async fn stopped(
    mut watch: tokio::sync::watch::Receiver<Option<ShutdownReason>>,
) -> Result<ShutdownReason, StartError> {
    loop {
        if let Some(reason) = *watch.borrow_and_update() {
            return Ok(reason);
        }
        if watch.changed().await.is_err() {
            tracing::error!("the membership core stopped unexpectedly");
            return Err(StartError::CoreFailed);
        }
    }
}
