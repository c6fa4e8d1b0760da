//! The shipped checkpoint-backup responder on its monthly slots, on a real container with a
//! /checkpoints volume: each checkpoint directory gets a `<dir>.backup` copy, the copy it
//! replaces is kept as `<dir>.backup.prev`, never more than one, and the sizes are reported.
//! On a full volume a failed or impossible copy never costs the existing backup.

use alert_responder::sources::schedule::Clock;
use time::macros::datetime;
use time::OffsetDateTime;

use super::routine::{armed, assert_holds, closed, options, shipped, thread};
use super::wait_for_message as message;
use crate::support::app::{step_states, TestApp, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::FakeSlack;

const NAME: &str = "checkpoint-backup";

fn sh(c: &TestContainer, script: &str) -> String {
    c.exec(&["sh", "-c", script])
}

/// The entries of /checkpoints, sorted.
fn entries(c: &TestContainer) -> Vec<String> {
    let mut names: Vec<String> = sh(c, "ls /checkpoints")
        .lines()
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

/// The app with the shipped responder on `master`, armed on a clock before 2027-01-01.
async fn start(master: &TestContainer, dir: &std::path::Path) -> (FakeSlack, Clock, TestApp) {
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    slack.add_channel("#data-platform-oncall");
    let clock = Clock::manual(datetime!(2026-12-31 12:00 UTC));
    // Budgets count real time, and these tests' months pass in seconds.
    let responder = shipped(
        NAME,
        &[(
            "cooldown: 1d, max: 3, per: 31d",
            "cooldown: 0s, max: 3, per: 31d",
        )],
    );
    let mut opts = options(dir, NAME, &responder, &clock);
    opts.config = vec![("spark_master_container", master.name().to_owned())];
    let app = TestApp::spawn(dir, Some(&slack), opts).await;
    armed(&app, NAME, &clock).await;
    (slack, clock, app)
}

/// Fires the slot at `at` and waits until `count` slots have closed; the newest run must
/// have succeeded with every step.
async fn slot(app: &TestApp, clock: &Clock, at: OffsetDateTime, count: usize) {
    clock.set(at + time::Duration::seconds(5));
    let detail = closed(app, NAME, count).await.remove(0);
    assert_eq!(detail["runs"][0]["outcome"], "succeeded", "{detail:#}");
    let states: Vec<String> = (step_states(&detail, 0).into_iter())
        .map(|(id, s)| format!("{id}={s}"))
        .collect();
    assert_eq!(
        states,
        [
            "before=succeeded",
            "backup=succeeded",
            "after=succeeded",
            "report=succeeded"
        ],
        "{detail:#}"
    );
}

#[tokio::test]
async fn monthly_backups_keep_one_previous_copy_and_report_sizes() {
    let master = TestContainer::idle("bk-master");
    sh(
        &master,
        "mkdir -p /checkpoints/bronze-binance/offsets /checkpoints/bronze-binance/commits \
         /checkpoints/silver-binance/offsets \
         && echo v1 > /checkpoints/bronze-binance/offsets/0 \
         && echo v1 > /checkpoints/bronze-binance/commits/0 \
         && echo '{\"id\":\"b1\"}' > /checkpoints/bronze-binance/metadata \
         && dd if=/dev/zero of=/checkpoints/silver-binance/offsets/0 bs=1k count=300 2>/dev/null",
    );
    let dir = tempfile::tempdir().unwrap();
    let (slack, clock, app) = start(&master, dir.path()).await;

    // January: the first copies, nothing previous yet.
    slot(&app, &clock, datetime!(2027-01-01 03:00 UTC), 1).await;
    assert_eq!(
        entries(&master),
        [
            "bronze-binance",
            "bronze-binance.backup",
            "silver-binance",
            "silver-binance.backup"
        ]
    );
    assert_eq!(
        sh(&master, "cat /checkpoints/bronze-binance.backup/offsets/0"),
        "v1\n"
    );
    let report = message(&slack, &["*Checkpoint backup*", "2027-01-01 03:00"]).await;
    assert_holds(
        &report.text,
        &[
            ":large_green_circle: *Checkpoint backup*",
            "OK bronze-binance: 3 of 3 files",
            "copied to bronze-binance.backup",
            "OK silver-binance: 1 of 1 files, 30",
            "/checkpoints went from 0.3 MiB to ",
        ],
    );
    // A copy doubles the volume's use (block sizes vary by filesystem: 0.6 or 0.7 MiB).
    let after: f64 = (report.text.split("0.3 MiB to ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the size after");
    assert!((0.6..=0.7).contains(&after), "{}", report.text);
    assert!(
        !report.text.contains("kept as bronze-binance.backup.prev"),
        "{}",
        report.text
    );

    // February: the job moved on; the new copy has batch 1, January's is kept as .prev.
    sh(&master, "echo v2 > /checkpoints/bronze-binance/offsets/1");
    slot(&app, &clock, datetime!(2027-02-01 03:00 UTC), 2).await;
    assert_eq!(
        sh(&master, "cat /checkpoints/bronze-binance.backup/offsets/1"),
        "v2\n"
    );
    assert_eq!(
        sh(
            &master,
            "ls /checkpoints/bronze-binance.backup.prev/offsets"
        ),
        "0\n",
        "the previous copy is January's"
    );
    message(
        &slack,
        &[
            "previous copy kept as bronze-binance.backup.prev",
            "2027-02-01",
        ],
    )
    .await;

    // March: still exactly one previous copy (February's), and no temporary left over.
    sh(&master, "echo v3 > /checkpoints/bronze-binance/offsets/2");
    slot(&app, &clock, datetime!(2027-03-01 03:00 UTC), 3).await;
    assert_eq!(
        entries(&master),
        [
            "bronze-binance",
            "bronze-binance.backup",
            "bronze-binance.backup.prev",
            "silver-binance",
            "silver-binance.backup",
            "silver-binance.backup.prev"
        ]
    );
    assert_eq!(
        sh(
            &master,
            "ls /checkpoints/bronze-binance.backup.prev/offsets"
        ),
        "0\n1\n"
    );
    assert_eq!(
        sh(&master, "ls /checkpoints/bronze-binance.backup/offsets"),
        "0\n1\n2\n"
    );
    let march = message(&slack, &["*Checkpoint backup*", "2027-03-01"]).await;
    let parent = slack
        .messages()
        .into_iter()
        .find(|m| Some(m.ts.as_str()) == march.thread_ts.as_deref())
        .expect("the March slot's parent");
    println!(
        "--- the March backup thread ---\n{}",
        thread(&slack, &parent)
    );
    app.stop().await;
}

#[tokio::test]
async fn a_copy_that_cannot_complete_keeps_the_existing_backup() {
    // A 1 MiB volume. bronze-binance holds a sparse 2 MiB file: du counts it as nothing, so
    // the space check passes, and the copy (busybox writes the zeros) runs out of space.
    // silver-binance holds 600 KiB: its copy visibly does not fit, so it is skipped.
    let master = TestContainer::idle_with("bk-full", &["--tmpfs", "/checkpoints:size=1m"]);
    sh(
        &master,
        "mkdir -p /checkpoints/bronze-binance/offsets /checkpoints/bronze-binance.backup/offsets \
         /checkpoints/silver-binance \
         && dd if=/dev/zero of=/checkpoints/bronze-binance/offsets/0 bs=1 count=0 seek=2M 2>/dev/null \
         && echo december > /checkpoints/bronze-binance.backup/offsets/0 \
         && dd if=/dev/zero of=/checkpoints/silver-binance/0 bs=1k count=600 2>/dev/null",
    );
    let dir = tempfile::tempdir().unwrap();
    let (slack, clock, app) = start(&master, dir.path()).await;

    slot(&app, &clock, datetime!(2027-01-01 03:00 UTC), 1).await;
    assert_eq!(
        entries(&master),
        ["bronze-binance", "bronze-binance.backup", "silver-binance"],
        "no temporary copy left, nothing rotated"
    );
    assert_eq!(
        sh(&master, "cat /checkpoints/bronze-binance.backup/offsets/0"),
        "december\n",
        "the only backup survives a failed copy"
    );
    let report = message(&slack, &["*Checkpoint backup*", "2027-01-01 03:00"]).await;
    assert_holds(
        &report.text,
        &[
            ":red_circle: *Checkpoint backup*",
            "NOT every directory was copied",
            "FAILED bronze-binance: the copy failed; the existing backups are kept",
            "SKIPPED silver-binance: its copy needs 60",
            "back up the directories named above by hand",
        ],
    );
    app.stop().await;
}
