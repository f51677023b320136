//! `node run`: one cluster node process. `node cluster ...`: the operator CLI.
//!
//! Exit codes tell a supervisor what happened: 0 after a graceful leave (SIGTERM or
//! SIGINT start one), 3 when downed, 4 when removed without leaving, 5 when it must
//! restart to join the real cluster, 2 on bad configuration, 1 if the core failed.

use clap::Parser;
use node::config::{Cli, CliCommand, NodeConfig};
use node::start::{serve, Listeners};
use shared::ShutdownReason;
use std::process::ExitCode;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        CliCommand::Run(args) => {
            init_logging(true);
            match args.resolve() {
                Ok(config) => run(config).await,
                Err(e) => {
                    eprintln!("node: {e}");
                    ExitCode::from(2)
                }
            }
        }
        CliCommand::Demo(args) => {
            init_logging(false);
            exit_on(node::tooling::launcher::run(args).await, "node demo")
        }
        CliCommand::Cluster(args) => exit_on(node::tooling::cli::run(args).await, "node cluster"),
    }
}

/// Logs to stderr; a node's level comes from `RUST_LOG` (default info).
fn init_logging(from_env: bool) {
    let subscriber = tracing_subscriber::fmt()
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if from_env {
        subscriber
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info".into()),
            )
            .init();
    } else {
        subscriber.init();
    }
}

fn exit_on<E: std::fmt::Display>(result: Result<(), E>, what: &str) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{what}: {e}");
            ExitCode::from(1)
        }
    }
}

/// Binds the configured ports and serves until the membership ends; SIGTERM or
/// SIGINT starts a graceful leave.
async fn run(config: NodeConfig) -> ExitCode {
    let listeners = match bind(&config).await {
        Ok(l) => l,
        Err(message) => {
            eprintln!("node: {message}");
            return ExitCode::from(2);
        }
    };
    match serve(config, listeners, termination()).await {
        Ok(reason) => exit_code(reason),
        Err(e @ node::start::StartError::CoreFailed) => {
            eprintln!("node: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("node: {e}");
            ExitCode::from(2)
        }
    }
}

async fn bind(config: &NodeConfig) -> Result<Listeners, String> {
    let listen = |address| async move {
        TcpListener::bind(address)
            .await
            .map_err(|e| format!("cannot listen on {address}: {e}"))
    };
    Ok(Listeners {
        cluster: listen(config.bind).await?,
        http: listen(config.http).await?,
    })
}

fn exit_code(reason: ShutdownReason) -> ExitCode {
    ExitCode::from(match reason {
        ShutdownReason::Left => 0,
        ShutdownReason::Downed => 3,
        ShutdownReason::Removed => 4,
        ShutdownReason::Rejoin => 5,
    })
}

async fn termination() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("signal handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
