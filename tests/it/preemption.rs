//! Preemption on real Docker: a container that dies while another incident's run only watches
//! it is started again at once, that run reported preempted; one whose holder is in a
//! destructive step waits for the step, as for any busy target.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::oom_responder::Remove;
use crate::support::app::{am_alert, catalog_dir, decision_kinds, Options, TestApp, SLACK_TOKEN};
use crate::support::docker::{docker_ok, test_image, TestContainer};
use crate::support::fake_slack::FakeSlack;

/// `Watch` (and `WatchToo`, another incident) verifies after 60 s; `Sample` samples for 60 s (a read-only command in a helper
/// container, so the target's death does not end it); `Careful` waits for approval of a
/// restart; `Bounce` restarts a helper container that ignores SIGTERM
/// (a destructive step of 15 s, its stop timeout); `Restart` restarts the container with a
/// 2 s stop timeout, then verifies after 20 s; a death of the container starts it again.
pub(crate) fn catalog(dir: &Path) -> (PathBuf, PathBuf) {
    let inspect = |id: &str, extra: &str| {
        format!("  - id: {id}\n    action: docker_inspect\n    container: \"{{{{ target }}}}\"\n{extra}")
    };
    let watch = format!(
        "name: watch\ntarget: \"{{{{ alert.labels.container }}}}\"\nallow_targets: ['k2-test-.*']\ntimeout: 5m\nsteps:\n{}{}",
        inspect("look", ""),
        inspect("verify", "    after: 60s\n"),
    );
    let bounce = format!(
        "name: bounce\ntarget: \"{{{{ alert.labels.container }}}}\"\nallow_targets: ['k2-test-.*']\ntimeout: 5m\nsteps:\n{}{}{}",
        inspect("look", ""),
        "  - id: restart_helper\n    action: docker_restart\n    container: \"{{ alert.labels.helper }}\"\n    stop_timeout: 15s\n    timeout: 60s\n",
        inspect("verify", "    after: 5s\n"),
    );
    let sample = format!(
        "name: sample\ntarget: \"{{{{ alert.labels.container }}}}\"\nallow_targets: ['k2-test-.*']\ntimeout: 5m\nsteps:\n{}{}",
        inspect("look", ""),
        "  - id: sample\n    action: docker_exec\n    container: \"{{ alert.labels.helper }}\"\n    argv: [sleep, '60']\n    read_only: true\n    timeout: 2m\n",
    );
    let careful = format!(
        "name: careful\ntarget: \"{{{{ alert.labels.container }}}}\"\nallow_targets: ['k2-test-.*']\ntimeout: 5m\nsteps:\n{}{}",
        inspect("look", ""),
        "  - id: restart\n    approval: required\n    action: docker_restart\n    container: \"{{ target }}\"\n",
    );
    let restart = format!(
        "name: restart\ntarget: \"{{{{ alert.labels.container }}}}\"\nallow_targets: ['k2-test-.*']\ntimeout: 5m\nsteps:\n{}{}",
        "  - id: restart\n    action: docker_restart\n    container: \"{{ target }}\"\n    stop_timeout: 2s\n    timeout: 60s\n",
        inspect("verify", "    after: 20s\n"),
    );
    let revive = format!(
        "name: revive\ntarget: \"{{{{ alert.labels.container }}}}\"\nallow_targets: ['k2-test-.*']\nsteps:\n{}{}",
        inspect("state", ""),
        "  - id: start\n    when: \"not steps.state.running\"\n    action: docker_start\n    container: \"{{ target }}\"\n",
    );
    let routes = [
        ("Watch", "watch"),
        ("WatchToo", "watch"),
        ("Sample", "sample"),
        ("Careful", "careful"),
        ("Bounce", "bounce"),
        ("Restart", "restart"),
        ("ContainerOomKilled", "revive"),
    ]
    .map(|(alert, responder)| {
        format!("  - matchers: ['alertname=\"{alert}\"']\n    responder: {responder}\n")
    })
    .concat();
    catalog_dir(
        dir,
        &format!("routes:\n{routes}"),
        &[
            ("watch", &watch),
            ("sample", &sample),
            ("careful", &careful),
            ("bounce", &bounce),
            ("restart", &restart),
            ("revive", &revive),
        ],
    )
}

/// Starts the app with Docker deaths of `watched` (only) becoming alerts.
async fn start(dir: &Path, slack: &FakeSlack, watched: &str) -> TestApp {
    let options = Options {
        catalog: Some(catalog(dir)),
        oom_containers: Some(watched.to_owned()),
        ..Default::default()
    };
    TestApp::spawn(dir, Some(slack), options).await
}

/// The detail of the incident opened by `alertname` on `target`, once `ready` holds of it.
async fn incident_when(
    app: &TestApp,
    alertname: &str,
    target: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..900 {
        for incident in app.incidents().await {
            if incident["target"] == target && incident["alertname"] == alertname {
                last = app
                    .get_json(&format!("/api/incidents/{}", incident["id"]))
                    .await;
                if ready(&last) {
                    return last;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the {alertname} incident on {target} never got there within 90 s; last seen: {last:#}");
}

/// Step `id` of the incident's first run (null when absent).
fn step<'a>(detail: &'a Value, id: &str) -> &'a Value {
    detail["runs"][0]["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["step_id"] == id))
        .unwrap_or(&Value::Null)
}

/// The state of step `id` in the incident's first run.
fn step_state<'a>(detail: &'a Value, id: &str) -> &'a str {
    step(detail, id)["state"].as_str().unwrap_or("")
}

/// The outcome of the incident's first run.
fn outcome(detail: &Value) -> &str {
    detail["runs"][0]["outcome"].as_str().unwrap_or("")
}

/// How the container died, as the death's alert says.
fn reason(detail: &Value) -> &str {
    detail["alerts"][0]["labels"]["reason"]
        .as_str()
        .unwrap_or("")
}

fn finished(detail: &Value) -> bool {
    detail["runs"][0]["state"] == "finished"
}

pub(crate) fn kill(name: &str) {
    let out = std::process::Command::new("docker")
        .args(["kill", name])
        .output()
        .expect("the docker CLI runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn time(detail: &Value, field: &str) -> time::OffsetDateTime {
    let text = detail["runs"][0][field].as_str().unwrap_or_default();
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{field} {text:?}: {e}"))
}

#[tokio::test]
async fn a_container_killed_while_a_run_waits_to_verify_it_is_started_at_once() {
    let d = preempted_while("Watch", "verify", None).await;
    let cut = step(&d, "verify")["summary"].as_str().unwrap_or_default();
    assert!(cut.starts_with("cancelled: preempted by incident"), "{cut}");
}

#[tokio::test]
async fn a_container_killed_while_a_run_samples_it_is_started_at_once() {
    let helper = TestContainer::idle("preempt-sampler");
    let d = preempted_while("Sample", "sample", Some(helper.name())).await;
    let cut = step(&d, "sample")["summary"].as_str().unwrap_or_default();
    assert!(cut.starts_with("cut short: preempted by incident"), "{cut}");
}

#[tokio::test]
async fn a_container_killed_while_a_run_waits_for_approval_is_started_at_once() {
    let d = preempted_while("Careful", "restart", None).await;
    assert_eq!(d["approvals"][0]["state"], "preempted", "{d:#}");
}

/// A run of `alertname` looks at a container, then observes it for 60 s in step `observing`
/// (with `helper` as its `helper` label); the container is killed meanwhile. Checks that the
/// death's run started it again at once and the observer was preempted; returns the
/// observer's incident.
async fn preempted_while(alertname: &str, observing: &str, helper: Option<&str>) -> Value {
    let watched = TestContainer::idle("preempt-watched");
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), &slack, watched.name()).await;
    let mut alert = am_alert(
        "firing",
        alertname,
        watched.name(),
        "a100000000000001",
        "2026-12-05T04:00:00Z",
    );
    if let Some(helper) = helper {
        alert["alerts"][0]["labels"]["helper"] = helper.into();
    }
    app.post_alertmanager(&alert).await;
    // The run has looked and now observes for 60 s.
    let watching = incident_when(&app, alertname, watched.name(), |d| {
        step_state(d, "look") == "succeeded"
    })
    .await;

    let killed = Instant::now();
    kill(watched.name());
    let death = incident_when(&app, "ContainerOomKilled", watched.name(), finished).await;
    let back = killed.elapsed();
    let watch_id = watching["incident"]["id"].as_i64().unwrap();
    let watched_detail = app.get_json(&format!("/api/incidents/{watch_id}")).await;
    let death_id = death["incident"]["id"].as_i64().unwrap();
    eprintln!("killed -> started again: {back:?}");

    assert_eq!(outcome(&death), "succeeded", "{death:#}");
    assert_eq!(step_state(&death, "start"), "succeeded", "{death:#}");
    assert!(watched.is_running(), "started again");
    assert_eq!(reason(&death), "killed", "{death:#}");
    assert_eq!(outcome(&watched_detail), "preempted", "{watched_detail:#}");
    assert_eq!(
        step_state(&watched_detail, observing),
        "cancelled",
        "{watched_detail:#}"
    );
    assert!(
        decision_kinds(&watched_detail).contains(&"preempted".to_owned()),
        "{watched_detail:#}"
    );
    // The run would have observed until 60 s after its look: the death's run did not wait.
    let verify_due = time(&watching, "started_at") + time::Duration::seconds(60);
    let left = time::Duration::seconds(50);
    assert!(
        time(&watched_detail, "finished_at") + left < verify_due,
        "preempted with 50+ s of its wait left: {watched_detail:#}"
    );
    assert!(
        time(&death, "finished_at") + left < verify_due,
        "the dead container waited for the observer: {death:#}"
    );
    assert!(back < Duration::from_secs(30), "{back:?}");

    // Its thread says why, naming the new incident.
    let said = format!("Preempted by incident {death_id} (container died)");
    let parent = watched_detail["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["kind"] == "parent"))
        .and_then(|m| m["ts"].as_str())
        .map(str::to_owned);
    assert!(parent.is_some(), "{watched_detail:#}");
    assert!(
        slack
            .wait_for(
                |m| m
                    .iter()
                    .any(|c| c.text.contains(&said) && c.thread_ts == parent),
                Duration::from_secs(10)
            )
            .await,
        "no {said:?} in thread {parent:?}: {:#?}",
        slack.messages()
    );
    app.stop().await;
    watched_detail
}

#[tokio::test]
async fn a_run_in_a_destructive_step_is_not_preempted() {
    let watched = TestContainer::idle("preempt-acting");
    let (helper, _removed) = stubborn("preempt-helper");
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), &slack, watched.name()).await;
    let mut alert = am_alert(
        "firing",
        "Bounce",
        watched.name(),
        "a100000000000002",
        "2026-12-05T04:00:00Z",
    );
    alert["alerts"][0]["labels"]["helper"] = helper.clone().into();
    app.post_alertmanager(&alert).await;
    incident_when(&app, "Bounce", watched.name(), |d| {
        step_state(d, "restart_helper") == "started"
    })
    .await;

    kill(watched.name());
    let death = incident_when(&app, "ContainerOomKilled", watched.name(), finished).await;
    let bouncing = incident_when(&app, "Bounce", watched.name(), finished).await;

    assert_eq!(outcome(&bouncing), "succeeded", "{bouncing:#}");
    assert_eq!(
        step_state(&bouncing, "restart_helper"),
        "succeeded",
        "{bouncing:#}"
    );
    assert_eq!(step_state(&bouncing, "verify"), "succeeded", "{bouncing:#}");
    assert!(
        !decision_kinds(&bouncing).contains(&"preempted".to_owned()),
        "{bouncing:#}"
    );
    // The death's run waited for the bounce run to end, as for any busy target.
    assert!(
        time(&death, "started_at") >= time(&bouncing, "finished_at"),
        "death: {death:#}\nbounce: {bouncing:#}"
    );
    assert_eq!(step_state(&death, "start"), "succeeded", "{death:#}");
    assert!(
        watched.is_running(),
        "started again once the target was free"
    );
    app.stop().await;
}

/// Starts a container whose PID 1 ignores SIGTERM, so a stop takes its whole timeout and
/// ends in SIGKILL (exit 137); removed when the guard drops.
fn stubborn(prefix: &str) -> (String, Remove) {
    let name = format!("k2-test-{prefix}-{}", std::process::id());
    let removed = Remove(name.clone());
    let image = test_image();
    let pid1 = "trap '' TERM; sleep 3600 & wait";
    docker_ok(&["run", "-d", "--name", &name, &image, "sh", "-c", pid1]);
    (name, removed)
}

#[tokio::test]
async fn a_death_caused_by_the_runs_own_restart_does_not_preempt_it() {
    // The restart's stop times out and kills the container (a JVM that ignores SIGTERM): the
    // death is reported seconds later, while the run verifies the restart it made.
    let (target, _removed) = stubborn("preempt-self");
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), &slack, &target).await;
    let alert = am_alert(
        "firing",
        "Restart",
        &target,
        "a100000000000003",
        "2026-12-05T04:00:00Z",
    );
    app.post_alertmanager(&alert).await;
    let death = incident_when(&app, "ContainerOomKilled", &target, finished).await;
    let restarting = incident_when(&app, "Restart", &target, finished).await;

    assert_eq!(reason(&death), "killed", "{death:#}");
    assert_eq!(outcome(&restarting), "succeeded", "{restarting:#}");
    assert_eq!(
        step_state(&restarting, "verify"),
        "succeeded",
        "{restarting:#}"
    );
    assert!(
        time(&death, "started_at") >= time(&restarting, "finished_at"),
        "death: {death:#}\nrestart: {restarting:#}"
    );
    assert_eq!(
        step_state(&death, "start"),
        "skipped",
        "already back: {death:#}"
    );
    eprintln!(
        "decisions of the restart: {:?}",
        decision_kinds(&restarting)
    );
    app.stop().await;
}

#[tokio::test]
async fn a_run_that_takes_the_dead_target_first_is_preempted_too() {
    let watched = TestContainer::idle("preempt-queue");
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), &slack, watched.name()).await;
    let at = "2026-12-05T04:00:00Z";
    let first = am_alert("firing", "Watch", watched.name(), "a100000000000004", at);
    app.post_alertmanager(&first).await;
    incident_when(&app, "Watch", watched.name(), |d| {
        step_state(d, "look") == "succeeded"
    })
    .await;
    // A second incident's run waits for the target, ahead of the death's.
    let second = am_alert("firing", "WatchToo", watched.name(), "a100000000000005", at);
    app.post_alertmanager(&second).await;
    incident_when(&app, "WatchToo", watched.name(), |d| {
        d["runs"][0]["state"] == "pending"
    })
    .await;

    let killed = Instant::now();
    kill(watched.name());
    let death = incident_when(&app, "ContainerOomKilled", watched.name(), finished).await;
    let back = killed.elapsed();
    eprintln!("killed -> started again past two observers: {back:?}");
    assert_eq!(step_state(&death, "start"), "succeeded", "{death:#}");
    assert!(watched.is_running(), "started again");
    for alertname in ["Watch", "WatchToo"] {
        let d = incident_when(&app, alertname, watched.name(), finished).await;
        assert_eq!(outcome(&d), "preempted", "{alertname}: {d:#}");
    }
    assert!(back < Duration::from_secs(30), "{back:?}");
    app.stop().await;
}
