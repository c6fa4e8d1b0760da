//! The `alert-responder` command: `serve` the responder, `check` its catalog, `simulate` a
//! payload, list `incidents`.

use std::process::ExitCode;

use std::path::PathBuf;

use alert_responder::app::Application;
use alert_responder::commands::{self, PayloadSource};
use alert_responder::config::{lints, Catalog, Settings, SettingsArgs, Severity};
use clap::{Parser, Subcommand};

/// jemalloc instead of glibc's malloc: glibc keeps freed memory in its arenas (its threshold
/// for handing large blocks back to the kernel rises with every large block freed), so a burst
/// of request bodies left the process hundreds of MB larger for good. jemalloc's background
/// threads give freed pages back within seconds even when the process is idle afterwards,
/// which is when it matters.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// non-zero if there is any. Then lint what loaded: errors (a route that can never match)
    /// fail too; warnings (a destructive step on the default budget, an allow-list that
    /// matches everything, an approval step nobody can approve) are explained and pass.
    /// Run it in CI and before deploying a playbook change.
    Check(SettingsArgs),
    /// Show what the service would do with an Alertmanager webhook payload, touching nothing:
    /// no Docker call, no database write (the database is opened read-only and never created),
    /// no Slack message. For each alert: why each route matched or not, the responder, its
    /// target, allow-list and required labels, every step with its rendered plan, each
    /// destructive step's budget as it stands now, and what live and dry-run mode would do.
    Simulate(SimulateArgs),
    /// List incidents from the database (opened read-only): id, status, alert, target, when
    /// it opened and the latest run's summary, newest first.
    Incidents(IncidentsArgs),
}

#[derive(Debug, clap::Args)]
struct SimulateArgs {
    /// The webhook body (JSON), or `-` for stdin.
    #[arg(required_unless_present = "schedule")]
    file: Option<PathBuf>,
    /// Instead of a payload: every scheduled responder (`schedule:`) with its next slots,
    /// in UTC and in its time zone.
    #[arg(long, conflicts_with = "file")]
    schedule: bool,
    /// The payload's format; detected when omitted (a top-level `event` object is a PagerDuty
    /// V3 webhook, anything else an Alertmanager v4 webhook).
    #[arg(long, value_enum)]
    source: Option<PayloadSource>,
    /// Print JSON for machines instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    settings: SettingsArgs,
}

#[derive(Debug, clap::Args)]
struct IncidentsArgs {
    /// Only incidents still open.
    #[arg(long)]
    open: bool,
    /// Print JSON for machines instead of a table.
    #[arg(long)]
    json: bool,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    #[command(flatten)]
    settings: SettingsArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    alert_responder::telemetry::init();
    match cli.command {
        Command::Serve(args) => serve(&args).await,
        Command::Check(args) => check(&args),
        Command::Simulate(args) if args.schedule => {
            let result = Settings::load(&args.settings)
                .map_err(|e| e.to_string())
                .and_then(|settings| commands::schedule::simulate(&settings, args.json));
            print_result(result)
        }
        Command::Simulate(args) => {
            let file = args.file.unwrap_or_else(|| PathBuf::from("-"));
            let result = match commands::read_payload(&file) {
                Ok(payload) => match Settings::load(&args.settings) {
                    Ok(settings) => {
                        commands::simulate(&settings, &payload, args.source, args.json).await
                    }
                    Err(e) => Err(e.to_string()),
                },
                Err(e) => Err(e),
            };
            print_result(result)
        }
        Command::Incidents(args) => {
            let result = match Settings::load(&args.settings) {
                Ok(settings) => {
                    commands::incidents(&settings, args.open, args.limit, args.json).await
                }
                Err(e) => Err(e.to_string()),
            };
            print_result(result)
        }
    }
}

fn print_result(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("alert-responder: {e}");
            ExitCode::FAILURE
        }
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
    let catalog = match Catalog::load(&settings.routes_dir, &settings.responders_dir) {
        Ok(catalog) => catalog,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let lints = lints(&catalog, &settings);
    for lint in &lints {
        match lint.severity {
            Severity::Error => eprintln!("{lint}"),
            Severity::Warning => println!("{lint}"),
        }
    }
    let errors = lints
        .iter()
        .filter(|l| l.severity == Severity::Error)
        .count();
    if errors > 0 {
        eprintln!("{errors} error(s) in the catalog");
        return ExitCode::FAILURE;
    }
    println!(
        "ok: {} route(s), {}{} responder(s) ({}){}",
        catalog.routes.routes.len(),
        match catalog.extract.len() {
            0 => String::new(),
            n => format!("{n} PagerDuty extract rule(s), "),
        },
        catalog.responders.len(),
        catalog
            .responders
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        match lints.len() {
            0 => String::new(),
            n => format!(", {n} warning(s)"),
        }
    );
    ExitCode::SUCCESS
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
