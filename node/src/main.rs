//! The node daemon: read the config, start, serve until SIGINT or SIGTERM.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use maillage_node::config::{Config, ConfigError, LogFormat};
use maillage_node::server;
use tracing_subscriber::EnvFilter;

// A full sync allocates and frees millions of small buffers (decoded records,
// envelope bytes) across threads; mimalloc does that with less contention and
// fragmentation than glibc's malloc (docs/benchmarks.md measures the sync).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs a maillage node.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// The node's config file, written by `maillage init`.
    #[arg(long, short, env = "MAILLAGE_CONFIG", default_value = "maillage.toml")]
    config: PathBuf,
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // A configuration the operator must fix: systemd does not
            // restart the node in a loop (RestartPreventExitStatus=78).
            let configuration = e.downcast_ref::<ConfigError>().is_some()
                || e.downcast_ref::<server::StartError>()
                    .is_some_and(server::StartError::is_configuration);
            if configuration {
                std::process::ExitCode::from(server::EXIT_CONFIG as u8)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}

fn run() -> anyhow::Result<()> {
    // First: what the node allocates from now on is in small pages.
    maillage_node::no_transparent_huge_pages();
    let args = Args::parse();
    let config = Config::load(&args.config)?;
    init_logging(&config);
    // Everything the node creates (store files, the admin socket) is private to
    // its user, from the first byte: no window where the socket is world-open.
    // SAFETY: umask only changes this process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let started = server::start(&config).await?;
        server::run(started, shutdown_signal()).await?;
        anyhow::Ok(())
    })
}

fn init_logging(config: &Config) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("can listen for SIGTERM");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}
