//! Replicas on PostgreSQL, end to end: several copies of the real binary on one real
//! database, fed by a real HA Alertmanager pair (or straight to one replica), acting on real
//! Docker containers and posting to one fake Slack. Each test proves one thing the replicas
//! must agree on through the database: one incident and one restart per alert, a mode set
//! anywhere, a budget spent anywhere, a dead replica's run reported and never re-run, one
//! incident for one container death, a death preempting another replica's observing run,
//! and no acknowledged alert lost when PostgreSQL restarts.

mod alertmanager_ha;
mod budget;
mod faults;
mod load;
mod mode;
mod oom;
mod preempt;
mod sigkill;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::app::{am_alert, catalog_dir};
use crate::support::fake_slack::{FakeSlack, Recorded};
use crate::support::postgres::fresh_database;
use crate::support::psql::{literal, Database};
use crate::support::replicas::{poll, ReplicaConfig, Replicas};

/// Bound on a run finishing (a restart takes about a second; the machines are noisy).
const RUN_DONE: Duration = Duration::from_secs(60);

/// The catalog every replica gets: `HighMemoryUsage` restarts the container at most once an
/// hour; `SlowFix` first runs a destructive 30-second command in it (marking each time it
/// ran in `/tmp/marks`), then restarts it, so a test can kill a replica mid-step.
fn catalog(dir: &Path) -> (PathBuf, PathBuf) {
    let restart_once = r#"
name: restart-once
description: Restart the container, at most once an hour.
target: "{{ alert.labels.container }}"
allow_targets: ['k2-test-.*']
budget: { cooldown: 1s, max: 1, per: 1h }
timeout: 2m
steps:
  - id: state
    action: docker_inspect
    container: "{{ target }}"
  - id: restart
    action: docker_restart
    container: "{{ target }}"
    stop_timeout: 5s
    timeout: 30s
"#;
    let slow_fix = r#"
name: slow-fix
description: A long destructive step, then a restart.
target: "{{ alert.labels.container }}"
allow_targets: ['k2-test-.*']
timeout: 5m
steps:
  - id: mark
    action: docker_exec
    container: "{{ target }}"
    argv: [sh, -c, "echo ran >> /tmp/marks; sleep 30"]
    timeout: 2m
  - id: restart
    action: docker_restart
    container: "{{ target }}"
    stop_timeout: 5s
    timeout: 30s
"#;
    catalog_dir(
        dir,
        "routes:
  - matchers: ['alertname=\"HighMemoryUsage\"']
    responder: restart-once
  - matchers: ['alertname=\"SlowFix\"']
    responder: slow-fix
",
        &[("restart-once", restart_once), ("slow-fix", slow_fix)],
    )
}

/// `n` replicas with [`catalog`] on a fresh database, posting to `slack`.
async fn start_replicas(n: usize, dir: &Path, slack: &FakeSlack) -> Replicas {
    let config = ReplicaConfig::new(catalog(dir), slack.api_url());
    Replicas::start(n, &fresh_database(), &config).await
}

/// A firing Alertmanager webhook body for `container`.
fn firing(alertname: &str, container: &str, fingerprint: &str) -> Value {
    am_alert(
        "firing",
        alertname,
        container,
        fingerprint,
        "2026-11-27T05:00:00Z",
    )
}

/// The same alert instance, resolved.
fn resolved(alertname: &str, container: &str, fingerprint: &str) -> Value {
    am_alert(
        "resolved",
        alertname,
        container,
        fingerprint,
        "2026-11-27T05:00:00Z",
    )
}

/// Waits until `target` has `runs` runs, all finished or interrupted.
async fn wait_runs_done(set: &Replicas, target: &str, runs: i64) {
    let db = &set.database;
    let sql = format!(
        "SELECT COUNT(*) FROM runs WHERE target = {} AND state IN ('finished', 'interrupted')",
        literal(target)
    );
    poll(
        &format!("{runs} run(s) of {target} done"),
        RUN_DONE,
        || (db.count(&sql) >= runs).then_some(()),
        || format!("runs: {:?}\n{}", runs_of(db, target), set.logs()),
    )
    .await;
}

/// `(id, state, outcome, mode, owner)` of every run of `target`, oldest first.
fn runs_of(db: &Database, target: &str) -> Vec<Vec<String>> {
    db.rows(&format!(
        "SELECT id, state, outcome, mode, owner FROM runs WHERE target = {} ORDER BY id",
        literal(target)
    ))
}

/// How many rows `table` has for `target`.
fn count_for(db: &Database, table: &str, target: &str) -> i64 {
    db.count(&format!(
        "SELECT COUNT(*) FROM {table} WHERE target = {}",
        literal(target)
    ))
}

/// The one Slack parent message naming `target`; fails unless there is exactly one.
fn only_parent(slack: &FakeSlack, target: &str) -> Recorded {
    let parents: Vec<Recorded> = slack
        .messages()
        .into_iter()
        .filter(|m| m.thread_ts.is_none() && m.text.contains(target))
        .collect();
    assert_eq!(parents.len(), 1, "one parent for {target}: {parents:#?}");
    parents[0].clone()
}

/// Waits until the Slack outbox has nothing left to send.
async fn wait_outbox_drained(set: &Replicas) {
    let db = &set.database;
    poll(
        "the Slack outbox drained",
        Duration::from_secs(30),
        || {
            (db.count(
                "SELECT COUNT(*) FROM outbox WHERE destination = 'slack' AND state = 'pending'",
            ) == 0)
                .then_some(())
        },
        || set.log_lines("outbox"),
    )
    .await;
}

/// The state of step `step_id` in run `run` of an incident detail (empty if absent).
fn step_state(detail: &Value, run: usize, step_id: &str) -> String {
    detail["runs"][run]["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["step_id"] == step_id)
        .and_then(|s| s["state"].as_str())
        .unwrap_or_default()
        .to_owned()
}
