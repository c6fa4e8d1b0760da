//! The benchmark: alert-responder on SQLite, on PostgreSQL with one and with two replicas, and
//! adnanh/webhook, side by side, loaded the same way.
//!
//! `./scripts/bench` builds and runs this; see BENCHMARKS.md for the method. Phases, each on
//! freshly started processes with a fresh database: footprint (ready time, idle RSS), intake
//! (saturation, then fixed rates), response (webhook to first Slack message and to the first
//! action), storm (100,000 alerts over 1,000 targets) and urgent alert under flood (one routed
//! alert after floods of distinct unrouted ones). Results go to `<out>/results.json`
//! and a Markdown table on stdout.

mod accounted;
mod cpu;
mod fakes;
mod flood;
mod load;
mod phases;
mod postgres;
mod system;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use system::{Kind, Setup};

/// Command-line options (`--name value`).
struct Options {
    responder: PathBuf,
    webhook: PathBuf,
    out: PathBuf,
    runs: usize,
    seconds: u64,
    storm: u64,
    rates: Vec<u64>,
    connections: Vec<u64>,
    systems: Vec<Kind>,
    /// Systems the storm phase runs for (a subset of `systems`).
    storm_systems: Vec<Kind>,
    pg_bin: PathBuf,
    /// Phases to run, from [`PHASES`].
    phases: Vec<String>,
    /// Flood sizes of the urgent-alert-under-flood phase.
    flood: Vec<u64>,
    /// Runs per flood size (on top of `runs`: the phase runs in the first round only).
    flood_runs: usize,
}

/// Every phase, in the order they run.
const PHASES: [&str; 4] = ["intake", "response", "storm", "flood"];

fn options() -> Options {
    let mut o = Options {
        responder: PathBuf::from("target/release/alert-responder"),
        webhook: PathBuf::from("/usr/bin/webhook"),
        out: PathBuf::from("target/bench"),
        runs: 3,
        seconds: 5,
        storm: 100_000,
        rates: vec![1_000, 5_000, 10_000],
        connections: vec![64, 256],
        systems: Kind::ALL.to_vec(),
        storm_systems: Kind::ALL.to_vec(),
        pg_bin: postgres::find_bin(),
        phases: PHASES.iter().map(|p| p.to_string()).collect(),
        flood: vec![10_000, 50_000, 100_000],
        flood_runs: 5,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--responder" => o.responder = value.into(),
            "--webhook" => o.webhook = value.into(),
            "--out" => o.out = value.into(),
            "--runs" => o.runs = value.parse().expect("--runs takes a number"),
            "--seconds" => o.seconds = value.parse().expect("--seconds takes a number"),
            "--storm" => o.storm = value.parse().expect("--storm takes a number"),
            "--rates" => o.rates = numbers("--rates", &value),
            "--connections" => o.connections = numbers("--connections", &value),
            "--systems" => o.systems = systems("--systems", &value),
            "--storm-systems" => o.storm_systems = systems("--storm-systems", &value),
            "--pg-bin" => o.pg_bin = value.into(),
            "--phases" => o.phases = phases(&value),
            "--flood" => o.flood = numbers("--flood", &value),
            "--flood-runs" => o.flood_runs = value.parse().expect("--flood-runs takes a number"),
            other => panic!("unknown option {other}"),
        }
    }
    o
}

/// `sqlite,pg1,pg2,webhook` (any subset, any order; runs keep [`Kind::ALL`]'s order).
fn systems(option: &str, value: &str) -> Vec<Kind> {
    let wanted: Vec<&str> = value.split(',').map(str::trim).collect();
    for w in &wanted {
        assert!(
            w.is_empty() || Kind::ALL.iter().any(|k| k.key() == *w),
            "{option} takes names from sqlite,pg1,pg2,webhook, comma-separated; not {w}"
        );
    }
    Kind::ALL
        .into_iter()
        .filter(|k| wanted.contains(&k.key()))
        .collect()
}

/// `intake,response,storm,flood` (any subset; they run in [`PHASES`]' order).
fn phases(value: &str) -> Vec<String> {
    let wanted: Vec<&str> = value.split(',').map(str::trim).collect();
    for w in &wanted {
        assert!(
            w.is_empty() || PHASES.contains(w),
            "--phases takes names from {}, comma-separated; not {w}",
            PHASES.join(",")
        );
    }
    wanted.iter().map(|w| w.to_string()).collect()
}

fn numbers(option: &str, value: &str) -> Vec<u64> {
    value
        .split(',')
        .map(|r| {
            r.parse()
                .unwrap_or_else(|_| panic!("{option} takes numbers, comma-separated"))
        })
        .collect()
}

/// Every figure of one run of one system, by name.
pub(crate) type Figures = BTreeMap<String, f64>;

#[tokio::main]
async fn main() {
    let o = options();
    std::fs::create_dir_all(&o.out).expect("the output directory is writable");
    let fakes = fakes::Fakes::start().await;
    let setup = Setup {
        responder_bin: o.responder.clone(),
        webhook_bin: o.webhook.clone(),
        fakes_port: fakes.addr.port(),
        scratch: o.out.join("scratch"),
        postgres: o
            .systems
            .iter()
            .any(|k| matches!(k, Kind::Postgres { .. }))
            .then(|| postgres::Postgres::start(&o.pg_bin)),
    };
    let binary_mb = |p: &PathBuf| std::fs::metadata(p).map_or(0.0, |m| m.len() as f64 / 1e6);
    let mut runs: BTreeMap<&str, Vec<Figures>> = BTreeMap::new();
    for run in 0..o.runs {
        for kind in o.systems.iter().copied() {
            let name = kind.name();
            eprintln!("== run {} of {}: {name}", run + 1, o.runs);
            let mut f = Figures::new();
            f.insert(
                "binary_mb".into(),
                binary_mb(match kind {
                    Kind::Webhook => &o.webhook,
                    _ => &o.responder,
                }),
            );
            let ctx = phases::Ctx {
                setup: &setup,
                fakes: &fakes,
                kind,
                seconds: Duration::from_secs(o.seconds),
                connections: &o.connections,
            };
            let on = |phase: &str| o.phases.iter().any(|p| p == phase);
            if on("intake") {
                phases::intake(&ctx, &o.rates, &mut f).await;
            }
            if on("response") {
                phases::response(&ctx, &mut f).await;
            }
            if on("storm") && o.storm_systems.contains(&kind) {
                phases::storm(&ctx, o.storm, &mut f).await;
            }
            // It repeats itself (`--flood-runs`), so once per system is enough.
            if on("flood") && run == 0 {
                flood::flood(&ctx, &o.flood, o.flood_runs, &mut f).await;
            }
            eprintln!("{f:#?}");
            runs.entry(name).or_default().push(f);
        }
    }
    let medians: BTreeMap<&str, Figures> =
        runs.iter().map(|(k, v)| (*k, median_figures(v))).collect();
    let json = serde_json::json!({
        "date": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "runs": o.runs,
        "rates": o.rates,
        "storm": o.storm,
        "systems": o.systems.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "storm_systems": o.storm_systems.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "phases": o.phases,
        "flood": o.flood,
        "flood_runs": o.flood_runs,
        "median": medians,
        "all": runs,
    });
    let path = o.out.join("results.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&json).expect("figures serialize"),
    )
    .expect("the output directory is writable");
    print!("{}", table(&o.systems, &medians));
    eprintln!("Wrote {}", path.display());
}

fn median_figures(runs: &[Figures]) -> Figures {
    let mut out = Figures::new();
    for key in runs.iter().flat_map(|f| f.keys()) {
        let mut values: Vec<f64> = runs.iter().filter_map(|f| f.get(key).copied()).collect();
        values.sort_by(f64::total_cmp);
        out.insert(key.clone(), values[values.len() / 2]);
    }
    out
}

/// Markdown: one row per figure, a column per system, then ratios: each other responder
/// against the first responder (SQLite when benched), and that one against the peer.
fn table(systems: &[Kind], medians: &BTreeMap<&str, Figures>) -> String {
    let empty = Figures::new();
    let figures = |k: &Kind| medians.get(k.name()).unwrap_or(&empty);
    let base = systems.iter().find(|k| k.is_responder());
    let mut ratios: Vec<(Kind, Kind)> = Vec::new();
    if let Some(base) = base {
        for k in systems.iter().filter(|k| k.is_responder() && *k != base) {
            ratios.push((*k, *base));
        }
        if systems.contains(&Kind::Webhook) {
            ratios.push((*base, Kind::Webhook));
        }
    }
    let mut s = String::from("| figure |");
    for k in systems {
        s.push_str(&format!(" {} |", k.name()));
    }
    for (a, b) in &ratios {
        s.push_str(&format!(" {} / {} |", a.key(), b.key()));
    }
    s.push_str("\n|---|");
    s.push_str(&"---:|".repeat(systems.len() + ratios.len()));
    s.push('\n');
    let mut keys: Vec<&String> = systems.iter().flat_map(|k| figures(k).keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        s.push_str(&format!("| {key} |"));
        for k in systems {
            match figures(k).get(key) {
                Some(v) => s.push_str(&format!(" {v:.2} |")),
                None => s.push_str(" n/a |"),
            }
        }
        for (a, b) in &ratios {
            match (figures(a).get(key), figures(b).get(key)) {
                (Some(x), Some(y)) if *y != 0.0 => s.push_str(&format!(" {:.2} |", x / y)),
                _ => s.push_str(" – |"),
            }
        }
        s.push('\n');
    }
    s
}
