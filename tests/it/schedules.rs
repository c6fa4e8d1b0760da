//! Scheduled responders against the real app on a clock the test sets: a slot runs once, in
//! the responder's own channel, across restarts (even when the scheduler submits it again);
//! a slot missed while the service was down runs late within `catch_up` and is reported
//! missed beyond it, once; `check` refuses bad schedules; `/responder run` and
//! `/responder schedule` from Slack.

use std::path::{Path, PathBuf};
use std::time::Duration;

use alert_responder::sources::schedule::Clock;
use serde_json::Value;
use time::macros::datetime;
use time::OffsetDateTime;

use crate::support::app::{catalog_dir, Options, TestApp, SLACK_TOKEN};
use crate::support::fake_slack::{FakeSlack, Recorded};
use crate::support::slack::{command, reply, User, SIGNING_SECRET};

mod backup;
mod budget;
mod cli;
mod daily;
mod daily_grades;
mod replicas;
mod routine;
mod weekly;

const OPS: User = ("U0OPS", "ops");
const CHANNEL: &str = "#data-platform-oncall";

/// Daily at 08:00 in Paris (07:00 UTC in winter), no target, its own channel.
const NIGHTLY: &str = r##"
name: nightly
description: A routine report, on schedule.
schedule: "0 8 * * *"
timezone: Europe/Paris
catch_up: 1h
channel: "#data-platform-oncall"
steps:
  - id: hello
    action: report
    text: "Routine report for slot {{ alert.labels.schedule_slot }}"
"##;

fn catalog(dir: &Path) -> (PathBuf, PathBuf) {
    catalog_dir(
        dir,
        "routes:\n  - matchers: ['alertname=\"Never\"']\n    responder: nightly\n",
        &[("nightly", NIGHTLY)],
    )
}

fn options(dir: &Path, clock: &Clock) -> Options {
    Options {
        catalog: Some(catalog(dir)),
        clock: Some(clock.clone()),
        slack_signing_secret: Some(SIGNING_SECRET.into()),
        slack_allowed: [Some(OPS.0.into()), None, None],
        ..Default::default()
    }
}

/// Waits (bounded) until the scheduler's mark of `nightly` is `at`.
async fn wait_for_mark(app: &TestApp, at: OffsetDateTime) {
    for _ in 0..300 {
        let marks = app.store.schedule_marks().await.unwrap();
        if marks.contains(&("nightly".to_owned(), at.unix_timestamp())) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the schedule's mark never reached {at}");
}

/// Arms the schedule at the clock's time (a schedule first seen counts from then on).
async fn armed(app: &TestApp, clock: &Clock) {
    wait_for_mark(app, clock.now()).await;
}

/// The incidents of `nightly`'s slots, newest first.
async fn slot_incidents(app: &TestApp) -> Vec<Value> {
    let all = app.incidents().await;
    all.into_iter()
        .filter(|i| i["alertname"] == "nightly (scheduled)")
        .collect()
}

/// Waits (bounded) until `count` slot incidents are closed; returns them, newest first.
async fn wait_for_closed(app: &TestApp, count: usize) -> Vec<Value> {
    for _ in 0..600 {
        let incidents = slot_incidents(app).await;
        if incidents.len() >= count && incidents.iter().all(|i| i["status"] == "resolved") {
            return incidents;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{count} slot incidents never closed within 60 s");
}

async fn wait_for_message(slack: &FakeSlack, words: &[&str]) -> Recorded {
    let has = |m: &Recorded| words.iter().all(|w| m.text.contains(w));
    let seen = slack
        .wait_for(|m| m.iter().any(has), Duration::from_secs(30))
        .await;
    assert!(
        seen,
        "no Slack message with {words:?}: {:#?}",
        slack.messages()
    );
    slack.messages().into_iter().find(has).unwrap()
}

/// Sets the schedule's mark back, as if a crash had come between the journal taking a slot
/// and the mark moving: the scheduler will submit that slot again.
async fn rewind_mark(database_url: &str, to: OffsetDateTime) {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(database_url).await.unwrap();
    sqlx::query("UPDATE schedule_marks SET mark_unix = ?")
        .bind(to.unix_timestamp())
        .execute(&mut conn)
        .await
        .unwrap();
}

/// A fake Slack with the team's channel, and the app on a clock at 2026-12-04 06:00 UTC
/// with its schedule armed.
struct Started {
    slack: FakeSlack,
    channel: String,
    dir: tempfile::TempDir,
    clock: Clock,
    app: TestApp,
}

async fn start() -> Started {
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let channel = slack.add_channel(CHANNEL);
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(datetime!(2026-12-04 06:00 UTC));
    let app = TestApp::spawn(dir.path(), Some(&slack), options(dir.path(), &clock)).await;
    armed(&app, &clock).await;
    Started {
        slack,
        channel,
        dir,
        clock,
        app,
    }
}

#[tokio::test]
async fn each_slot_runs_once_in_its_channel_across_restarts() {
    let Started {
        slack,
        channel,
        dir,
        clock,
        app,
    } = start().await;

    // 08:00 in Paris is 07:00 UTC in December.
    let first = datetime!(2026-12-04 07:00 UTC);
    clock.set(first + time::Duration::seconds(5));
    let closed = wait_for_closed(&app, 1).await;
    let detail = app
        .get_json(&format!("/api/incidents/{}", closed[0]["id"]))
        .await;
    assert_eq!(detail["runs"][0]["responder"], "nightly", "{detail:#}");
    assert_eq!(detail["runs"][0]["target"], "nightly", "{detail:#}");
    assert_eq!(detail["runs"][0]["outcome"], "succeeded", "{detail:#}");
    let report = wait_for_message(&slack, &["Routine report for slot 2026-12-04T07:00:00Z"]).await;
    let parent = slack
        .messages()
        .into_iter()
        .find(|m| m.thread_ts.is_none() && m.text.contains("nightly"))
        .expect("a parent message");
    assert_eq!(
        parent.channel, channel,
        "routine reports go to the team's channel"
    );
    assert_eq!(report.thread_ts.as_deref(), Some(parent.ts.as_str()));

    // A crash after the journal took the slot but before the mark moved: the restarted
    // scheduler submits the slot again, and the journal's key makes that a no-op.
    let url = app.database_url.clone();
    app.stop().await;
    rewind_mark(&url, first - time::Duration::minutes(1)).await;
    let app = TestApp::spawn_on(url, Some(&slack), options(dir.path(), &clock)).await;
    wait_for_mark(&app, first).await;

    // The next day's slot runs: exactly two slots ran, each once.
    let second = datetime!(2026-12-05 07:00 UTC);
    clock.set(second + time::Duration::seconds(5));
    let closed = wait_for_closed(&app, 2).await;
    assert_eq!(closed.len(), 2, "{closed:#?}");
    assert_eq!(app.journal_rows().await, 2, "one journal entry per slot");
    let reports = slack
        .messages()
        .into_iter()
        .filter(|m| m.text.contains("Routine report for slot"))
        .count();
    assert_eq!(reports, 2);
    app.stop().await;
}

#[tokio::test]
async fn a_missed_slot_runs_late_within_catch_up_and_is_reported_beyond_it() {
    let Started {
        slack,
        channel,
        dir,
        clock,
        app,
    } = start().await;
    app.stop().await;

    // Down across the 07:00 UTC slot; back 30 minutes later, within catch_up (1h).
    clock.set(datetime!(2026-12-04 07:30 UTC));
    let url = format!("sqlite://{}/responder.db", dir.path().display());
    let app = TestApp::spawn_on(url.clone(), Some(&slack), options(dir.path(), &clock)).await;
    let closed = wait_for_closed(&app, 1).await;
    let detail = app
        .get_json(&format!("/api/incidents/{}", closed[0]["id"]))
        .await;
    assert_eq!(detail["runs"][0]["outcome"], "succeeded", "{detail:#}");
    wait_for_message(&slack, &["runs 30m late", "2026-12-04 08:00 Europe/Paris"]).await;
    app.stop().await;

    // Down across two more slots; back 2h30 after the latest: beyond catch_up. One line in
    // the channel about the latest, none about the one before, and nothing runs.
    clock.set(datetime!(2026-12-06 09:30 UTC));
    let app = TestApp::spawn_on(url, Some(&slack), options(dir.path(), &clock)).await;
    let missed = wait_for_message(&slack, &["missed", "2026-12-06 08:00 Europe/Paris"]).await;
    assert_eq!(missed.channel, channel);
    assert!(
        missed.text.contains("beyond its catch_up (1h)"),
        "{}",
        missed.text
    );
    assert!(
        missed.thread_ts.is_none() && !missed.text.contains('\n'),
        "{missed:?}"
    );
    let closed = wait_for_closed(&app, 2).await;
    assert_eq!(closed.len(), 2, "no backlog replayed: {closed:#?}");
    let mentions = |day: &str| {
        slack
            .messages()
            .into_iter()
            .filter(|m| m.text.contains(day))
            .count()
    };
    assert_eq!(
        mentions("2026-12-05 08:00"),
        0,
        "only the latest missed slot matters"
    );
    assert_eq!(mentions("missed"), 1);
    let runs: usize = futures::future::join_all(closed.iter().map(|i| {
        let path = format!("/api/incidents/{}", i["id"]);
        let app = &app;
        async move { app.get_json(&path).await["runs"].as_array().unwrap().len() }
    }))
    .await
    .into_iter()
    .sum();
    assert_eq!(runs, 1, "the missed slot ran nothing");
    app.stop().await;
}

#[tokio::test]
async fn slack_runs_a_scheduled_responder_now_and_lists_the_next_slots() {
    let Started { slack, app, .. } = start().await;

    let listed = reply(&app, OPS, "schedule").await;
    assert!(
        listed.contains("*nightly* `0 8 * * *` (Europe/Paris): next "),
        "{listed}"
    );
    assert!(
        listed.contains("reports to #data-platform-oncall"),
        "{listed}"
    );

    let refused = reply(&app, ("U0EVE", "eve"), "run nightly").await;
    assert!(refused.contains("SLACK_RUN_ALLOWED"), "{refused}");
    let (code, json) = command(&app, OPS, "run nightly", &slack.response_url("now")).await;
    assert_eq!(code, 200, "{json}");
    let started = json["text"].as_str().unwrap();
    assert!(
        started.contains("Run of scheduled *nightly* now requested (live)"),
        "{started}"
    );
    let closed = wait_for_closed(&app, 1).await;
    let detail = app
        .get_json(&format!("/api/incidents/{}", closed[0]["id"]))
        .await;
    assert_eq!(detail["runs"][0]["outcome"], "succeeded", "{detail:#}");
    wait_for_message(&slack, &["Routine report for slot"]).await;

    let audit = app.get_json("/api/audit").await;
    let runs: Vec<(&str, &str)> = (audit.as_array().unwrap().iter().rev())
        .filter(|e| e["command"] == "run")
        .map(|e| {
            (
                e["user_id"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(runs, [("U0EVE", "refused"), (OPS.0, "allowed")]);

    let schedules = app.get_json("/api/schedules").await;
    assert_eq!(schedules[0]["responder"], "nightly", "{schedules:#}");
    let next = schedules[0]["next"].as_array().unwrap();
    assert_eq!(next.len(), 5, "{schedules:#}");
    assert!(next[0]["local"]
        .as_str()
        .unwrap()
        .contains(" 08:00 Europe/Paris"));
    let page = app.client.get(format!("{}/", app.address)).send().await;
    let page = page.unwrap().text().await.unwrap();
    assert!(page.contains("<h2>Scheduled (1)</h2>"), "{page}");
    assert!(page.contains(" 08:00 Europe&#x2f;Paris (+0"), "{page}");
    app.stop().await;
}
