//! Safety semantics on real Docker: budgets across restarts, resolve cancels, dry-run,
//! crash honesty.

use std::path::Path;
use std::time::Duration;

use alert_responder::responders::Mode;
use alert_responder::store::{AlertPlan, NewStep, RunPlan, SqliteStore, Store};
use serde_json::Value;
use time::OffsetDateTime;

use crate::support::app::{am_alert, catalog_dir, step_states, Options, TestApp, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::FakeSlack;

fn refill(hog: &TestContainer) {
    hog.exec(&["dd", "if=/dev/zero", "of=/fill/x", "bs=1M", "count=60"]);
}

fn state_of(detail: &Value, run: usize, step: &str) -> String {
    step_states(detail, run)
        .into_iter()
        .find(|(id, _)| id == step)
        .map(|(_, s)| s)
        .unwrap_or_default()
}

#[tokio::test]
async fn a_second_alert_inside_the_budget_escalates_instead_of_restarting_even_after_a_service_restart(
) {
    let hog = TestContainer::memory_hog("budget");
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        oncall_group: Some("S0ONCALL".into()),
        ..Default::default()
    };
    let app = TestApp::spawn(dir.path(), Some(&slack), options).await;
    let fp = "c000000000000001";

    let first = am_alert(
        "firing",
        "HighMemoryUsage",
        hog.name(),
        fp,
        "2026-11-27T05:00:00Z",
    );
    app.post_alertmanager(&first).await;
    let detail = app.wait_for_finished_run(hog.name(), 1).await;
    assert_eq!(state_of(&detail, 0, "restart"), "succeeded");
    let restarted_at = hog.started_at();

    // It resolves, then fires again with memory high again, inside the 15-minute cooldown.
    app.post_alertmanager(&am_alert(
        "resolved",
        "HighMemoryUsage",
        hog.name(),
        fp,
        "2026-11-27T05:00:00Z",
    ))
    .await;
    refill(&hog);
    app.post_alertmanager(&am_alert(
        "firing",
        "HighMemoryUsage",
        hog.name(),
        fp,
        "2026-11-27T05:10:00Z",
    ))
    .await;
    let second = app.wait_for_newest_finished(hog.name(), 2).await;
    assert_eq!(state_of(&second, 0, "restart"), "refused", "{second:#}");
    assert_eq!(second["runs"][0]["outcome"], "escalated");
    let kinds: Vec<_> = second["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        kinds.contains(&"budget_exhausted".to_owned()) && kinds.contains(&"escalated".to_owned()),
        "{kinds:?}"
    );
    assert_eq!(hog.started_at(), restarted_at, "not restarted again");
    assert!(
        slack
            .wait_for(
                |m| m.iter().any(|c| c.text.contains("restart budget exhausted")
                    && c.text.contains("escalating to a human <!subteam^S0ONCALL>")),
                Duration::from_secs(10)
            )
            .await,
        "{:#?}",
        slack.messages()
    );

    // Budgets live in the store: a restarted service still refuses.
    let app = app.restart(Some(&slack)).await;
    app.post_alertmanager(&am_alert(
        "resolved",
        "HighMemoryUsage",
        hog.name(),
        fp,
        "2026-11-27T05:10:00Z",
    ))
    .await;
    app.post_alertmanager(&am_alert(
        "firing",
        "HighMemoryUsage",
        hog.name(),
        fp,
        "2026-11-27T05:12:00Z",
    ))
    .await;
    let third = app.wait_for_newest_finished(hog.name(), 3).await;
    assert_eq!(state_of(&third, 0, "restart"), "refused", "{third:#}");
    assert_eq!(hog.started_at(), restarted_at, "still not restarted");
    app.stop().await;
}

fn write_catalog(dir: &Path, responder: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    catalog_dir(
        dir,
        "routes:\n  - matchers: ['alertname=~\"Slow.*\"']\n    responder: slow\n",
        &[("slow", responder)],
    )
}

#[tokio::test]
async fn a_resolve_cancels_steps_not_yet_started_and_never_acts() {
    let idle = TestContainer::idle("cancel");
    let before = idle.started_at();
    let dir = tempfile::tempdir().unwrap();
    let catalog = write_catalog(
        dir.path(),
        r#"
name: slow
target: "{{ alert.labels.container }}"
steps:
  - id: state
    action: docker_inspect
    container: "{{ target }}"
  - id: restart
    after: 30s
    action: docker_restart
    container: "{{ target }}"
  - id: verify
    action: docker_inspect
    container: "{{ target }}"
"#,
    );
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let app = TestApp::spawn(dir.path(), Some(&slack), Options::with_catalog(catalog)).await;
    let fp = "c000000000000002";
    app.post_alertmanager(&am_alert(
        "firing",
        "Slow",
        idle.name(),
        fp,
        "2026-11-27T05:00:00Z",
    ))
    .await;
    // Wait until the first step ran and the run is waiting before the restart.
    assert!(
        slack
            .wait_for(
                |m| m.iter().any(|c| c.text.contains("*state*")),
                Duration::from_secs(20)
            )
            .await
    );
    app.post_alertmanager(&am_alert(
        "resolved",
        "Slow",
        idle.name(),
        fp,
        "2026-11-27T05:00:00Z",
    ))
    .await;
    let detail = app.wait_for_finished_run(idle.name(), 1).await;
    assert_eq!(
        step_states(&detail, 0),
        [
            ("state", "succeeded"),
            ("restart", "cancelled"),
            ("verify", "cancelled")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(detail["runs"][0]["outcome"], "cancelled");
    assert_eq!(detail["incident"]["status"], "resolved");
    assert_eq!(idle.started_at(), before, "never restarted");
    assert!(
        slack
            .wait_for(
                |c| c
                    .iter()
                    .any(|m| m.method == "chat.update" && m.text.contains("RESOLVED")),
                Duration::from_secs(10)
            )
            .await
    );
    app.stop().await;
}

#[tokio::test]
async fn dry_run_reads_live_state_and_plans_the_restart_without_doing_it() {
    let hog = TestContainer::memory_hog("dryrun");
    let before = hog.started_at();
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(
        dir.path(),
        Some(&slack),
        Options {
            mode: Some("dry-run".into()),
            ..Default::default()
        },
    )
    .await;
    app.post_alertmanager(&am_alert(
        "firing",
        "HighMemoryUsage",
        hog.name(),
        "c000000000000003",
        "2026-11-27T05:00:00Z",
    ))
    .await;
    let detail = app.wait_for_finished_run(hog.name(), 1).await;
    assert_eq!(state_of(&detail, 0, "mem"), "succeeded");
    assert_eq!(state_of(&detail, 0, "restart"), "planned");
    assert_eq!(state_of(&detail, 0, "verify_running"), "skipped");
    assert_eq!(detail["runs"][0]["mode"], "dry-run");
    assert!(
        detail["runs"][0]["summary"]
            .as_str()
            .unwrap()
            .starts_with("would restart container"),
        "{detail:#}"
    );
    assert_eq!(hog.started_at(), before, "dry-run touched nothing");
    assert!(
        slack
            .wait_for(
                |m| m
                    .iter()
                    .any(|c| c.text.contains("[dry-run] ")
                        && c.text.contains("dry-run: would restart")),
                Duration::from_secs(10)
            )
            .await,
        "{:#?}",
        slack.messages()
    );
    app.stop().await;
}

#[tokio::test]
async fn after_a_crash_an_interrupted_run_is_reported_not_rerun_and_a_pending_one_starts() {
    let hog = TestContainer::memory_hog("crash");
    let idle = TestContainer::idle("crash");
    let hog_before = hog.started_at();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/responder.db", dir.path().display());
    // What a crash leaves: one run stopped inside its restart step, one never started.
    {
        let store = SqliteStore::connect(&url).await.unwrap();
        let now = OffsetDateTime::now_utc();
        let alerts: Vec<_> = [
            (hog.name(), "c000000000000004"),
            (idle.name(), "c000000000000005"),
        ]
        .iter()
        .map(|(c, fp)| {
            let body = am_alert("firing", "HighMemoryUsage", c, fp, "2026-11-27T05:00:00Z");
            alert_responder::sources::alertmanager::parse(body.to_string().as_bytes())
                .unwrap()
                .remove(0)
        })
        .collect();
        store.append_journal(&alerts).await.unwrap();
        let entries = store.pending_journal(10).await.unwrap();
        let mut runs = Vec::new();
        for entry in &entries {
            let target = entry.alert.labels["container"].clone();
            let plan = AlertPlan::Firing {
                runs: vec![RunPlan {
                    responder: "high-memory".into(),
                    target: target.clone(),
                    mode: Mode::Live,
                    preempts: false,
                }],
                declines: vec![],
                target: Some(target),
            };
            runs.push(store.record_alert(entry, &plan, now).await.unwrap().run_ids[0]);
        }
        store.start_run(runs[0], now).await.unwrap();
        store
            .step_started(
                &NewStep {
                    run_id: runs[0],
                    step_id: "restart".into(),
                    action: "docker_restart".into(),
                    destructive: true,
                },
                now,
            )
            .await
            .unwrap();
    }
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let app = TestApp::spawn_on(url, Some(&slack), Options::default()).await;
    let interrupted = app.wait_for_finished_run(hog.name(), 1).await;
    assert_eq!(interrupted["runs"][0]["state"], "interrupted");
    assert_eq!(state_of(&interrupted, 0, "restart"), "unknown");
    let pending = app.wait_for_finished_run(idle.name(), 1).await;
    assert_eq!(
        pending["runs"][0]["outcome"], "succeeded",
        "the never-started run ran after the restart"
    );
    assert!(
        slack
            .wait_for(
                |m| m
                    .iter()
                    .any(|c| c.text.contains(
                        "interrupted by a restart of the responder during step *restart*"
                    ) && c.text.contains("Not re-run")),
                Duration::from_secs(10)
            )
            .await,
        "{:#?}",
        slack.messages()
    );
    // Recovery is over (the never-started run ran after it); a re-run would be a new run
    // of the incident, recorded by the time a later alert is.
    app.barrier().await;
    let after = app.wait_for_finished_run(hog.name(), 1).await;
    assert_eq!(
        after["runs"].as_array().map(Vec::len),
        Some(1),
        "no new run: {after:#}"
    );
    assert_eq!(
        hog.started_at(),
        hog_before,
        "the interrupted restart was not blindly re-run"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_run_resolved_while_waiting_for_its_target_cancels_every_step_and_touches_nothing() {
    let idle = TestContainer::idle("queued");
    let before = idle.started_at();
    let dir = tempfile::tempdir().unwrap();
    let catalog = write_catalog(
        dir.path(),
        r#"
name: slow
target: "{{ alert.labels.container }}"
steps:
  - id: wait
    after: 30s
    action: docker_inspect
    container: "{{ target }}"
  - id: restart
    action: docker_restart
    container: "{{ target }}"
"#,
    );
    let app = TestApp::spawn(dir.path(), None, Options::with_catalog(catalog)).await;
    // Two alerts on one target (two names, so two incidents): the second run waits for the
    // first to finish.
    app.post_alertmanager(&am_alert(
        "firing",
        "Slow",
        idle.name(),
        "c000000000000010",
        "2026-11-27T05:00:00Z",
    ))
    .await;
    app.post_alertmanager(&am_alert(
        "firing",
        "SlowToo",
        idle.name(),
        "c000000000000011",
        "2026-11-27T05:00:00Z",
    ))
    .await;
    let mut queued = None;
    for _ in 0..100 {
        let incidents = app.incidents().await;
        if incidents.len() == 2 {
            queued = incidents
                .iter()
                .find(|i| i["fingerprint"] == "c000000000000011")
                .cloned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let queued = queued.expect("both incidents recorded");
    app.post_alertmanager(&am_alert(
        "resolved",
        "SlowToo",
        idle.name(),
        "c000000000000011",
        "2026-11-27T05:00:00Z",
    ))
    .await;
    let mut detail = Value::Null;
    for _ in 0..100 {
        detail = app
            .get_json(&format!("/api/incidents/{}", queued["id"]))
            .await;
        if detail["runs"][0]["state"] == "finished" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(detail["runs"][0]["outcome"], "cancelled", "{detail:#}");
    assert_eq!(
        step_states(&detail, 0),
        [("wait", "cancelled"), ("restart", "cancelled")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(idle.started_at(), before);
    // Resolving the first one too lets it end now instead of at shutdown.
    app.post_alertmanager(&am_alert(
        "resolved",
        "Slow",
        idle.name(),
        "c000000000000010",
        "2026-11-27T05:00:00Z",
    ))
    .await;
    app.wait_for_finished_run(idle.name(), 1).await;
    app.stop().await;
}
