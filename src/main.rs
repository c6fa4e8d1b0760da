//! The `alert-responder` command: `serve` the responder, `check` its catalog, `simulate` a
//! payload, list `incidents`, `replay` recorded alerts against a catalog.

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
    /// Show what a catalog would have done differently with the alerts recorded lately,
    /// touching nothing: the database is opened read-only, nothing runs, nothing is sent.
    ///
    /// Every firing alert recorded in the window that opened an incident or started a run is
    /// planned again (routes, target, allow-list, mode), and each run's steps are replayed in
    /// order against the outputs recorded then: `when` and `expect` are evaluated again,
    /// budgets are weighed against the uses of that time. Printed per incident: a responder
    /// that would now run or no longer run, steps that would now run or be skipped
    /// (destructive ones marked), approvals, refusals. A step that did not run then has no
    /// recorded output: whatever reads it is "unknown: not run then".
    ///
    /// Exit status: 0, or with --fail-on-diff 1 when anything would differ; 2 when the
    /// replay cannot be made (the catalog fails `check`, the database is missing or
    /// unreadable).
    #[command(after_long_help = REPLAY_EXAMPLE)]
    Replay(ReplayArgs),
}

/// The example `replay --help` ends with.
const REPLAY_EXAMPLE: &str =
    "Example: in the catalog repository's CI, what the proposed routes/ and responders/\n\
would have changed in last week's alerts, against a read-only copy of the database:\n\n  \
RESPONDER_DATABASE_URL=sqlite://snapshot/alert-responder.db \\\n    \
alert-responder replay --since 168h --routes routes --responders responders --fail-on-diff";

#[derive(Debug, clap::Args)]
struct ReplayArgs {
    /// How far back to replay: alerts recorded within this long before now (e.g. 24h, 168h).
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    since: std::time::Duration,
    /// The routes directory to replay against (default: the configured one).
    #[arg(long, value_name = "DIR")]
    routes: Option<PathBuf>,
    /// The responders directory to replay against (default: the configured one).
    #[arg(long, value_name = "DIR")]
    responders: Option<PathBuf>,
    /// Exit 1 when anything would differ, 0 otherwise (for CI).
    #[arg(long)]
    fail_on_diff: bool,
    /// Print JSON for machines instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    settings: SettingsArgs,
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
        Command::Replay(args) => replay(args).await,
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

/// `replay`: 0 (or 1 with --fail-on-diff when something differs), 2 when it cannot be made.
async fn replay(args: ReplayArgs) -> ExitCode {
    let result = match Settings::load(&args.settings) {
        Ok(mut settings) => {
            if let Some(dir) = args.routes {
                settings.routes_dir = dir;
            }
            if let Some(dir) = args.responders {
                settings.responders_dir = dir;
            }
            commands::replay::replay(&settings, args.since).await
        }
        Err(e) => Err(e.to_string()),
    };
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            eprintln!("alert-responder: replay: {e}");
            return ExitCode::from(2);
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("alert-responder: replay: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        print!("{}", commands::replay::report::render_text(&report));
    }
    if args.fail_on_diff && report.differences > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
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
    if let Err(e) = catalog.playbook_config(&settings.playbook_config) {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
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
