//! `node run`: one cluster node process. `node cluster ...`: the operator CLI.
//!
//! Exit codes tell a supervisor what happened: 0 after a graceful leave (SIGTERM or
//! SIGINT start one), 3 when downed, 4 when removed without leaving, 5 when it must
//! restart to join the real cluster, 2 on bad configuration, 1 if the core failed.

use clap::Parser;
use node::catalog::Dataset;
use node::config::{Cli, CliCommand, DataSource, NodeConfig};
use node::http::{app, AppState};
use node::metrics::Metrics;
use node::runtime::{self, clock_ms};
use node::service::store::WatchStore;
use node::service::{Identity, Library, Service, Timing};
use node::transport::Transport;
use rand::Rng;
use shared::{Command, Message, Node, ShutdownReason, UniqueAddress};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        CliCommand::Run(args) => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .with_target(false)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_writer(std::io::stderr)
                .init();
            match args.resolve() {
                Ok(config) => run(config).await,
                Err(e) => {
                    eprintln!("node: {e}");
                    ExitCode::from(2)
                }
            }
        }
        CliCommand::Demo(args) => {
            tracing_subscriber::fmt()
                .with_target(false)
                .with_writer(std::io::stderr)
                .init();
            match node::launcher::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("node demo: {e}");
                    ExitCode::from(1)
                }
            }
        }
        CliCommand::Cluster(args) => match node::cli::run(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("node cluster: {e}");
                ExitCode::from(1)
            }
        },
    }
}

fn exit_code(reason: ShutdownReason) -> ExitCode {
    ExitCode::from(match reason {
        ShutdownReason::Left => 0,
        ShutdownReason::Downed => 3,
        ShutdownReason::Removed => 4,
        ShutdownReason::Rejoin => 5,
    })
}

async fn run(config: NodeConfig) -> ExitCode {
    let uid: u64 = rand::rng().random();
    let me = UniqueAddress::new(config.advertise.clone(), uid);
    let metrics = Arc::new(Metrics::default());
    let transport = Transport::new(
        config.advertise.clone(),
        config.settings.cluster_name.clone(),
        &config.secret,
        Arc::clone(&metrics),
    );
    let cluster_listener = match TcpListener::bind(config.bind).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("node: cannot listen on {}: {e}", config.bind);
            return ExitCode::from(2);
        }
    };
    let http_listener = match TcpListener::bind(config.http).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("node: cannot listen on {}: {e}", config.http);
            return ExitCode::from(2);
        }
    };
    let dataset = match &config.data {
        DataSource::Synthetic => Dataset::synthetic(200, 300, 6, 7),
        DataSource::MovieLens(folder) => match Dataset::load(folder) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("node: {e} (or pass --synthetic-data true)");
                return ExitCode::from(2);
            }
        },
    };
    let store = match WatchStore::open(&config.store) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("node: {e}");
            return ExitCode::from(2);
        }
    };
    let library = Arc::new(Library::build(dataset));
    tracing::info!(
        videos = library.videos.len(),
        users = library.base_history.len(),
        recorded_watches = store.len(),
        "catalogue loaded and model trained"
    );
    let (inbound_tx, mut inbound_rx) = tokio::sync::mpsc::channel(4096);
    let (core_tx, core_rx) = tokio::sync::mpsc::channel(4096);
    tokio::spawn(Arc::clone(&transport).accept_loop(cluster_listener, inbound_tx));
    let exiting_timeout = config.settings.exiting_timeout_ms;
    let seeds = node::seeds::resolve(&config.seeds).await;
    let core = Node::new(
        me.clone(),
        config.roles.clone(),
        seeds.clone(),
        config.settings.clone(),
        rand::rng().random(),
        clock_ms(),
    );
    let handle = runtime::start(core, core_rx, Arc::clone(&transport));
    if config
        .seeds
        .iter()
        .any(|s| matches!(s, node::seeds::SeedSpec::Dns { .. }))
    {
        // DNS seeds: resolve again on the join retry period (seed-node timeout),
        // so seeds that start after this node are found.
        let (specs, handle, period) = (
            config.seeds.clone(),
            handle.clone(),
            Duration::from_millis(config.settings.seed_node_timeout_ms.max(500)),
        );
        tokio::spawn(async move {
            let mut last = seeds;
            loop {
                tokio::time::sleep(period).await;
                let now = node::seeds::resolve(&specs).await;
                if now != last {
                    tracing::info!(?now, "seed list re-resolved");
                    if handle.update_seeds(now.clone()).await.is_err() {
                        return;
                    }
                    last = now;
                }
            }
        });
    }
    let identity = Identity {
        me: me.clone(),
        http: config.http_advertise.to_string(),
        roles: config.roles.clone(),
        demo: config.demo,
        launcher: config.launcher.clone(),
    };
    let (service, service_tx) = Service::start(
        identity,
        library,
        store,
        Timing::default(),
        Arc::clone(&transport),
        handle.clone(),
    );
    // One reader of the transport: membership messages go to the core, service
    // messages to the service.
    tokio::spawn(async move {
        while let Some(message) = inbound_rx.recv().await {
            let delivered = match message {
                Message::Service { from, body } => service_tx.send((from, body)).await.is_ok(),
                other => core_tx.send(other).await.is_ok(),
            };
            if !delivered {
                return;
            }
        }
    });
    let state = AppState {
        handle: handle.clone(),
        transport: Arc::clone(&transport),
        metrics,
        token: config.token.clone(),
    };
    let router = node::http::with_service_and_dashboard(app(state), service, &config.web_root);
    tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        if let Err(e) = axum::serve(http_listener, service).await {
            tracing::error!("http server failed: {e}");
        }
    });
    tracing::info!(node = %me, http = %config.http, http_advertise = %config.http_advertise, demo = config.demo, "node started");
    tokio::spawn(node::reachability_check::watch(
        config.advertise.clone(),
        handle.clone(),
        Duration::from_millis(config.settings.seed_node_timeout_ms.max(1000) * 5),
    ));
    let reason = tokio::select! {
        reason = stopped(handle.stopped.clone()) => reason,
        _ = termination() => {
            tracing::info!("termination signal: leaving the cluster");
            let bound = Duration::from_millis(exiting_timeout + 10_000);
            let asked = tokio::time::timeout(bound, handle.command(Command::Leave(me.address.clone()))).await;
            match asked {
                Ok(Ok(Ok(()))) => {
                    match tokio::time::timeout(bound, stopped(handle.stopped.clone())).await {
                        Ok(reason) => reason,
                        Err(_) => {
                            tracing::warn!("leave did not complete within {bound:?}; exiting anyway");
                            ShutdownReason::Left
                        }
                    }
                }
                // Not a member (still joining): nothing to leave.
                _ => ShutdownReason::Left,
            }
        }
    };
    tracing::info!(?reason, "membership ended");
    // Let the last messages (a final gossip) leave the queues.
    tokio::time::sleep(Duration::from_millis(200)).await;
    exit_code(reason)
}

/// Resolves when the membership core stops, with its reason.
async fn stopped(
    mut watch: tokio::sync::watch::Receiver<Option<ShutdownReason>>,
) -> ShutdownReason {
    loop {
        if let Some(reason) = *watch.borrow_and_update() {
            return reason;
        }
        if watch.changed().await.is_err() {
            // The core task ended without a reason: it crashed.
            tracing::error!("the membership core stopped unexpectedly");
            std::process::exit(1);
        }
    }
}

async fn termination() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("signal handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
