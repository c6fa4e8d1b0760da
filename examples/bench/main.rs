//! The benchmark: alert-responder side by side with adnanh/webhook, loaded the same way.
//!
//! `./scripts/bench` builds and runs this; see BENCHMARKS.md for the method. Phases, each on a
//! freshly started process with a fresh database: footprint (ready time, idle RSS), intake
//! (saturation, then fixed rates), response (webhook to first Slack message and to the first
//! action) and storm (100,000 alerts over 1,000 targets). Results go to `<out>/results.json`
//! and a Markdown table on stdout.

mod fakes;
mod load;
mod phases;
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
}

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
            other => panic!("unknown option {other}"),
        }
    }
    o
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
    };
    let binary_mb = |p: &PathBuf| std::fs::metadata(p).map_or(0.0, |m| m.len() as f64 / 1e6);
    let mut runs: BTreeMap<&str, Vec<Figures>> = BTreeMap::new();
    for run in 0..o.runs {
        for kind in [Kind::Responder, Kind::Webhook] {
            let name = name(kind);
            eprintln!("== run {} of {}: {name}", run + 1, o.runs);
            let mut f = Figures::new();
            f.insert(
                "binary_mb".into(),
                binary_mb(match kind {
                    Kind::Responder => &o.responder,
                    Kind::Webhook => &o.webhook,
                }),
            );
            let ctx = phases::Ctx {
                setup: &setup,
                fakes: &fakes,
                kind,
                seconds: Duration::from_secs(o.seconds),
                connections: &o.connections,
            };
            phases::intake(&ctx, &o.rates, &mut f).await;
            phases::response(&ctx, &mut f).await;
            phases::storm(&ctx, o.storm, &mut f).await;
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
        "median": medians,
        "all": runs,
    });
    let path = o.out.join("results.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&json).expect("figures serialize"),
    )
    .expect("the output directory is writable");
    print!("{}", table(&medians));
    eprintln!("Wrote {}", path.display());
}

fn name(kind: Kind) -> &'static str {
    match kind {
        Kind::Responder => "alert-responder",
        Kind::Webhook => "webhook",
    }
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

/// Markdown: one row per figure, ours, the peer's, and ours divided by the peer's.
fn table(medians: &BTreeMap<&str, Figures>) -> String {
    let empty = Figures::new();
    let ours = medians.get("alert-responder").unwrap_or(&empty);
    let peer = medians.get("webhook").unwrap_or(&empty);
    let mut s = String::from(
        "| figure | alert-responder | webhook | ratio (ours / peer) |\n|---|---:|---:|---:|\n",
    );
    for (key, value) in ours {
        let (p, ratio) = match peer.get(key) {
            Some(p) if *p != 0.0 => (format!("{p:.2}"), format!("{:.2}", value / p)),
            Some(p) => (format!("{p:.2}"), "–".to_owned()),
            None => ("n/a".to_owned(), "–".to_owned()),
        };
        s.push_str(&format!("| {key} | {value:.2} | {p} | {ratio} |\n"));
    }
    s
}
