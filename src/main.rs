//! The `alert-responder` command: `serve` the responder, or `check` its catalog.

use std::process::ExitCode;

use alert_responder::app::Application;
use alert_responder::config::{Catalog, Settings, SettingsArgs};
use clap::{Parser, Subcommand};

/// An automated first responder: Alertmanager webhooks in, runbook actions on Docker within
/// safety budgets, one Slack thread per incident.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service: receive webhooks, respond, report. Every setting can also come from
    /// the environment variable shown, or from the --config file.
    Serve(SettingsArgs),
    /// Load routes/ and responders/, report every problem (file, path, reason) and exit
    /// non-zero if there is any. Run it in CI and before deploying a playbook change.
    Check(SettingsArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    alert_responder::telemetry::init();
    match cli.command {
        Command::Serve(args) => serve(&args).await,
        Command::Check(args) => check(&args),
    }
}

async fn serve(args: &SettingsArgs) -> ExitCode {
    let result = async {
        let settings = Settings::load(args)?;
        let app = Application::build(settings).await?;
        let stop = app.shutdown_token();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("Shutting down.");
            stop.cancel();
        });
        app.run_until_stopped().await
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("alert-responder: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check(args: &SettingsArgs) -> ExitCode {
    let settings = match Settings::load(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("alert-responder: {e}");
            return ExitCode::FAILURE;
        }
    };
    match Catalog::load(&settings.routes_dir, &settings.responders_dir) {
        Ok(catalog) => {
            println!(
                "ok: {} route(s), {} responder(s) ({})",
                catalog.routes.routes.len(),
                catalog.responders.len(),
                catalog
                    .responders
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return ctrl_c.await.unwrap_or(());
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or(());
}
