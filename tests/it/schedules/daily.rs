//! The shipped `daily-health` responder on its 08:00 UTC slot, driven by the injected clock,
//! against real containers and a fake Spark master: the channel gets one message, the
//! report, whose first line carries the worst colour and whose lines grade each check as the
//! runbook does; a check that cannot run says why instead of stopping the report.
//!
//! The shipped file lists `k2-.*`; each test narrows that to its own containers so tests
//! running beside it (and their memory hogs) stay out of its report.

use std::path::{Path, PathBuf};
use std::time::Duration;

use alert_responder::sources::schedule::Clock;
use time::macros::datetime;

use crate::lag_actions::http::spark_master_serving;
use crate::support::app::{catalog_dir, shipped_catalog, Options, TestApp, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::{FakeSlack, Recorded};

/// The shipped file, its container pattern narrowed to `pattern`.
fn catalog(dir: &Path, pattern: &str) -> (PathBuf, PathBuf) {
    let shipped = std::fs::read_to_string(shipped_catalog().1.join("daily-health.yaml")).unwrap();
    let line = "    name: 'k2-.*'";
    assert!(
        shipped.contains(line),
        "the shipped pattern moved: {shipped}"
    );
    let narrowed = shipped.replace(line, &format!("    name: '{pattern}'"));
    catalog_dir(
        dir,
        "routes:\n  - matchers: ['alertname=\"Never\"']\n    responder: daily-health\n",
        &[("daily-health", &narrowed)],
    )
}

/// A URL nothing listens on: a port bound, then released.
fn nobody_listening() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

/// Runs the 08:00 UTC slot of `daily-health` and returns the channel's message for it, as
/// it reads once the run ended, and the channel's top-level posts.
async fn run_slot(
    dir: &Path,
    pattern: &str,
    config: Vec<(&'static str, String)>,
) -> (String, Vec<Recorded>) {
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let clock = Clock::manual(datetime!(2026-12-04 07:00 UTC));
    let options = Options {
        catalog: Some(catalog(dir, pattern)),
        clock: Some(clock.clone()),
        config,
        ..Default::default()
    };
    let app = TestApp::spawn(dir, Some(&slack), options).await;
    // The schedule counts from the moment it is first seen: wait until it is armed.
    let armed = clock.now().unix_timestamp();
    let mut seen = false;
    for _ in 0..300 {
        let marks = app.store.schedule_marks().await.unwrap();
        if marks.contains(&("daily-health".to_owned(), armed)) {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "the schedule was never armed");
    clock.set(datetime!(2026-12-04 08:00:05 UTC));
    let reported = |calls: &[Recorded]| {
        calls
            .iter()
            .any(|m| m.method == "chat.update" && m.text.contains("Daily health"))
    };
    let done = slack.wait_for(reported, Duration::from_secs(120)).await;
    assert!(done, "no daily report: {:#?}", slack.calls());
    let parents: Vec<Recorded> = (slack.messages().into_iter())
        .filter(|m| m.thread_ts.is_none())
        .collect();
    assert_eq!(parents.len(), 1, "one message in the channel: {parents:#?}");
    let text = slack.current_text(&parents[0].ts).unwrap();
    app.stop().await;
    (text, parents)
}

/// The line of `text` that names `check` (`*Memory*`, ...).
fn line<'a>(text: &'a str, check: &str) -> &'a str {
    let name = format!("*{check}*");
    (text.lines().find(|l| l.contains(&name)))
        .unwrap_or_else(|| panic!("no {name} line in:\n{text}"))
}

/// The fake spark-sql answers the runbook's DLQ query: 150 rows for binance, 3 for kraken.
const FAKE_SPARK_SQL: &str = r#"mkdir -p /opt/spark/bin /checkpoints/bronze_binance && echo 1 > /checkpoints/bronze_binance/metadata && printf '%s\n' '#!/bin/sh' 'printf "binance\t150\nkraken\t3\n"' > /opt/spark/bin/spark-sql && chmod +x /opt/spark/bin/spark-sql"#;

#[tokio::test]
async fn a_container_at_93_percent_memory_turns_the_daily_message_red() {
    let prefix = format!("dailyred-{}", std::process::id());
    let hog = TestContainer::memory_hog(&prefix);
    let calm = TestContainer::idle(&prefix);
    // `calm` also plays the Spark master container: checkpoints and spark-sql live there.
    calm.exec(&["sh", "-c", FAKE_SPARK_SQL]);
    let url =
        spark_master_serving(include_str!("../../fixtures/spark/master_worker_dead.json")).await;
    let dir = tempfile::tempdir().unwrap();
    let config = vec![
        ("spark_master_url", url),
        ("spark_master_container", calm.name().to_owned()),
    ];
    let pattern = format!("k2-test-{prefix}-.*");
    let (text, _) = run_slot(dir.path(), &pattern, config).await;
    println!("The daily message as posted:\n{text}");

    let first = text.lines().next().unwrap();
    assert!(first.contains("Daily health"), "{first}");
    assert!(first.contains(":red_circle: *red*"), "{first}");

    let memory = line(&text, "Memory");
    assert!(memory.starts_with(":red_circle:"), "{memory}");
    let hog_part = format!("{} ", hog.name());
    let hog_at = memory.find(&hog_part).expect("the hog is named");
    let tail = &memory[hog_at + hog_part.len()..];
    let percent: f64 = tail.split('%').next().unwrap().parse().unwrap();
    assert!(percent > 90.0, "{memory}");
    assert!(tail.contains("% (red)"), "{memory}");
    assert!(
        memory.contains("Restart job to clear memory, then investigate root cause"),
        "{memory}"
    );
    // The calm one is listed below 80 %, untagged.
    let calm_at = memory.find(calm.name()).expect("the calm one is named");
    assert!(!memory[calm_at..].starts_with(&format!("{} 9", calm.name())));
    assert!(!memory.contains(&format!("{} (yellow)", calm.name())));

    let up = line(&text, "Containers up");
    assert!(
        up.starts_with(":large_green_circle:") && up.contains("2/2 Up"),
        "{up}"
    );
    let restarts = line(&text, "Restarts (24 h)");
    assert!(restarts.ends_with("none"), "{restarts}");
    let workers = line(&text, "Spark workers");
    assert!(workers.starts_with(":red_circle:"), "{workers}");
    assert!(workers.contains("1/2 ALIVE, 1 DEAD"), "{workers}");
    assert!(
        workers.contains("Red flag: a worker \"DEAD\" or missing"),
        "{workers}"
    );
    let apps = line(&text, "Spark applications");
    assert!(
        apps.starts_with(":red_circle:") && apps.contains("2/4 running"),
        "{apps}"
    );
    let checkpoints = line(&text, "Checkpoints");
    assert!(
        checkpoints.starts_with(":large_green_circle:"),
        "{checkpoints}"
    );
    assert!(
        checkpoints.contains("/checkpoints/bronze_binance"),
        "{checkpoints}"
    );
    let dlq = line(&text, "DLQ rows (24 h)");
    assert!(dlq.starts_with(":red_circle:"), "{dlq}");
    assert!(dlq.contains("binance 150 (red), kraken 3"), "{dlq}");
    assert!(
        dlq.contains("Investigate upstream data quality issue (Binance/Kraken API changes?)"),
        "{dlq}"
    );
    assert!(
        text.lines()
            .last()
            .unwrap()
            .contains("responder daily-health (live) *succeeded*"),
        "{text}"
    );
}

#[tokio::test]
async fn a_healthy_container_is_green_and_checks_that_cannot_run_say_why() {
    let prefix = format!("dailycalm-{}", std::process::id());
    let calm = TestContainer::idle(&prefix);
    let dir = tempfile::tempdir().unwrap();
    // No Spark master answers; the container has neither /checkpoints nor spark-sql.
    let config = vec![
        ("spark_master_url", nobody_listening()),
        ("spark_master_container", calm.name().to_owned()),
    ];
    let pattern = format!("k2-test-{prefix}-.*");
    let (text, _) = run_slot(dir.path(), &pattern, config).await;
    println!("The daily message as posted:\n{text}");

    let first = text.lines().next().unwrap();
    assert!(
        first.contains("Daily health") && first.contains("*red*"),
        "{first}"
    );
    let memory = line(&text, "Memory");
    assert!(memory.starts_with(":large_green_circle:"), "{memory}");
    assert!(memory.contains(calm.name()), "{memory}");
    let up = line(&text, "Containers up");
    assert!(
        up.starts_with(":large_green_circle:") && up.contains("1/1 Up"),
        "{up}"
    );
    let workers = line(&text, "Spark workers");
    assert!(workers.starts_with(":red_circle:"), "{workers}");
    assert!(
        workers.contains("Spark master could not be read: "),
        "{workers}"
    );
    assert!(
        workers.contains("/json/"),
        "the reason names the URL: {workers}"
    );
    let checkpoints = line(&text, "Checkpoints");
    assert!(checkpoints.starts_with(":grey_question:"), "{checkpoints}");
    assert!(
        checkpoints.contains("could not measure /checkpoints: "),
        "{checkpoints}"
    );
    let dlq = line(&text, "DLQ rows (24 h)");
    assert!(dlq.starts_with(":grey_question:"), "{dlq}");
    assert!(dlq.contains("the DLQ query failed: "), "{dlq}");
}
