//! The `natsmon` binary: parses options, starts logging, runs the app until SIGTERM or
//! SIGINT, and maps failure to a non-zero exit code.

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

use natsmon::config::RawConfig;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line with the whole cause chain, not a backtrace; and no panic if stderr
            // is gone.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "natsmon: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let raw = RawConfig::parse()
        .with_file()
        .context("loading configuration")?;
    let settings = raw.validate().context("validating configuration")?;
    natsmon::telemetry::init(&settings.log, settings.log_format);
    // One process-wide TLS provider, chosen before any TLS client or server is built.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("Shutdown requested.");
        t.cancel();
    });
    natsmon::app::run(settings, token)
        .await
        .context("natsmon failed")?;
    tracing::info!("Stopped.");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
