//! How fast the store records a backlog of alerts nobody acts on, as the dispatcher does:
//! reads of the journal, recorded a batch per transaction. A measurement, not a test (it
//! asserts nothing about time); run it with `--ignored --nocapture` to see the rates.

use std::time::Instant;

use alert_responder::store::{AlertPlan, DecisionKind};

use super::{firing, now, Backend};

/// Alerts in the backlog: distinct fingerprints of one alert name over 50 containers.
const BACKLOG: usize = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it on purpose, with --nocapture"]
async fn record_a_backlog_of_unrouted_alerts() {
    for batch in [16, 64] {
        for backend in [Backend::sqlite(), Backend::postgres()] {
            let store = backend.open().await;
            let alerts: Vec<_> = (0..BACKLOG)
                .map(|n| {
                    let container = format!("node-{}", n % 50);
                    firing(
                        "FloodNobodyActsOn",
                        &container,
                        &format!("{n:016x}"),
                        "2026-11-27T05:00:00Z",
                    )
                })
                .collect();
            for chunk in alerts.chunks(1_000) {
                store.append_journal(chunk).await.unwrap();
            }
            let started = Instant::now();
            let mut recorded = 0;
            loop {
                let entries = store.pending_journal(256).await.unwrap();
                if entries.is_empty() {
                    break;
                }
                let plans: Vec<AlertPlan> = entries
                    .iter()
                    .map(|e| AlertPlan::Firing {
                        runs: vec![],
                        declines: vec![(DecisionKind::NoRoute, "no route matches".into())],
                        target: Some(e.alert.labels["container"].clone()),
                    })
                    .collect();
                let pairs: Vec<_> = entries.iter().zip(&plans).collect();
                for chunk in pairs.chunks(batch) {
                    recorded += store.record_alerts(chunk, now()).await.unwrap().len();
                }
            }
            let took = started.elapsed();
            assert_eq!(recorded, BACKLOG, "{backend}");
            println!(
                "{backend}: {BACKLOG} unrouted alerts recorded {batch} per transaction in {:.2} s: {:.0}/s",
                took.as_secs_f64(),
                BACKLOG as f64 / took.as_secs_f64()
            );
        }
    }
}
