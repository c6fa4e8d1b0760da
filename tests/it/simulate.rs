//! The operator commands against the real binary: `simulate` (route explanations, planned
//! steps, the budget state it reads, and that it touches nothing), `incidents` and the
//! lints `check` reports.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use alert_responder::limits::Budget;
use alert_responder::store::{SqliteStore, Store};
use serde_json::Value;
use time::OffsetDateTime;

use crate::support::app::{am_alert, shipped_catalog, Options, TestApp};

/// The binary running `args` then the shipped catalog and `database_url`, with none of the
/// caller's settings leaking in from the environment.
pub(crate) fn binary(dir: &Path, args: &[&str], database_url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_alert-responder"));
    cmd.current_dir(dir).stdin(Stdio::null()).args(args);
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("RESPONDER_") || k.starts_with("SLACK_") || k == "RUST_LOG" {
            cmd.env_remove(&key);
        }
    }
    let (routes, responders) = shipped_catalog();
    if args[0] != "check" && !args.contains(&"--routes-dir") {
        cmd.arg("--routes-dir")
            .arg(routes)
            .arg("--responders-dir")
            .arg(responders);
    }
    cmd.arg("--database-url").arg(database_url);
    cmd
}

/// Runs a short command to completion (off the async runtime), returning (ok, stdout, stderr).
pub(crate) async fn run(mut cmd: Command) -> (bool, String, String) {
    let out: Output = tokio::task::spawn_blocking(move || cmd.output().expect("run the binary"))
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn payload(dir: &Path, alertname: &str, container: &str) -> PathBuf {
    let body = am_alert(
        "firing",
        alertname,
        container,
        "5151515151510001",
        "2026-11-27T05:00:00Z",
    );
    let file = dir.join(format!("{alertname}.json"));
    std::fs::write(&file, body.to_string()).unwrap();
    file
}

fn simulate(dir: &Path, db: &str, file: &Path, json: bool) -> Command {
    let file = file.display().to_string();
    let mut args = vec!["simulate", file.as_str()];
    if json {
        args.push("--json");
    }
    binary(dir, &args, db)
}

#[tokio::test]
async fn high_memory_alert_shows_its_route_steps_and_restart_plan_and_creates_no_database() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("none.db");
    let db = format!("sqlite://{}", db_path.display());
    let file = payload(dir.path(), "HighMemoryUsage", "k2-bronze-binance-stream");
    let (ok, out, err) = run(simulate(dir.path(), &db, &file, false)).await;
    assert!(ok, "{out}{err}");
    for expected in [
        "routes/k2.yaml: routes[0]: matched -> high-memory",
        r#"routes/dlq-checkpoint.yaml: routes[0]: alertname="DlqRateHigh" does not match "HighMemoryUsage""#,
        "target: k2-bronze-binance-stream",
        "allow-list: ok",
        "4. restart (docker_restart) [DESTRUCTIVE, budgeted]",
        "plan: restart container k2-bronze-binance-stream",
        "when: steps.mem.memory_percent >= 90 -> depends on steps.mem.memory_percent at run time",
        "budget now: no history",
        "dry-run: record \"would restart container k2-bronze-binance-stream",
        "would open an incident and run high-memory on k2-bronze-binance-stream (live)",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    let (ok, out, err) = run(simulate(dir.path(), &db, &file, true)).await;
    assert!(ok, "{out}{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let responder = &doc["alerts"][0]["responders"][0];
    assert_eq!(responder["responder"], "high-memory");
    assert_eq!(
        responder["escalation"],
        "P1 (multiple job failures, data loss risk), pages PagerDuty"
    );
    assert_eq!(responder["steps"][3]["destructive"], true);
    assert!(responder["steps"][3]["plan"]["Ok"]
        .as_str()
        .unwrap()
        .starts_with("restart container k2-bronze-binance-stream"));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("none.db"))
        .collect();
    assert!(leftovers.is_empty(), "simulate created {leftovers:?}");
}

#[tokio::test]
async fn an_unrouted_alert_explains_why_each_route_failed() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/none.db", dir.path().display());
    let file = payload(dir.path(), "DiskSlow", "k2-x");
    let (ok, out, err) = run(simulate(dir.path(), &db, &file, false)).await;
    assert!(ok, "{out}{err}");
    let route_lines: Vec<&str> = out.lines().filter(|l| l.contains("routes[")).collect();
    // One line per shipped route, however many the catalog ships.
    let (routes, _) = shipped_catalog();
    let shipped: usize = std::fs::read_dir(routes)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .map(|text| {
            text.lines()
                .filter(|l| l.starts_with("  - matchers:"))
                .count()
        })
        .sum();
    assert_eq!(route_lines.len(), shipped, "{out}");
    for line in route_lines {
        assert!(line.contains(r#"does not match "DiskSlow""#), "{line}");
    }
    assert!(out.contains("no route matches"), "{out}");
}

#[tokio::test]
async fn a_spent_budget_shows_the_refusal_and_the_database_is_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("responder.db");
    let db = format!("sqlite://{}", db_path.display());
    let store = SqliteStore::connect(&db).await.unwrap();
    let five_minutes_ago = OffsetDateTime::now_utc() - Duration::from_secs(300);
    let budget = Budget::default();
    store
        .consume_budget(
            "high-memory",
            "k2-bronze-binance-stream",
            "restart",
            &budget,
            0,
            five_minutes_ago,
        )
        .await
        .unwrap();
    store.close().await;
    let before = std::fs::read(&db_path).unwrap();
    let mtime = std::fs::metadata(&db_path).unwrap().modified().unwrap();

    let file = payload(dir.path(), "HighMemoryUsage", "k2-bronze-binance-stream");
    let (ok, out, err) = run(simulate(dir.path(), &db, &file, false)).await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("budget now: would be refused: cooldown: last use 5m"),
        "{out}"
    );
    assert_eq!(std::fs::read(&db_path).unwrap(), before, "bytes changed");
    assert_eq!(
        std::fs::metadata(&db_path).unwrap().modified().unwrap(),
        mtime
    );
    // Another target's budget is untouched.
    let file = payload(dir.path(), "HighMemoryUsage", "k2-other");
    let (_, out, _) = run(simulate(dir.path(), &db, &file, false)).await;
    assert!(
        out.contains("budget now: allowed: no use recorded"),
        "{out}"
    );
}

#[tokio::test]
async fn incidents_lists_what_the_app_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(
        dir.path(),
        None,
        Options {
            no_slack: true,
            ..Options::default()
        },
    )
    .await;
    // web-frontend is outside high-memory's allow-list: recorded, never touched (no Docker).
    let body = am_alert(
        "firing",
        "HighMemoryUsage",
        "web-frontend",
        "5151515151510002",
        "2026-11-27T05:00:00Z",
    );
    assert!(app.post_alertmanager(&body).await.status().is_success());
    let mut found = false;
    for _ in 0..100 {
        if !app.incidents().await.is_empty() {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(found, "the app recorded no incident");
    let db = app.database_url.clone();
    app.stop().await;

    let cmd = binary(dir.path(), &["incidents", "--json"], &db);
    let (ok, out, err) = run(cmd).await;
    assert!(ok, "{out}{err}");
    let rows: Value = serde_json::from_str(&out).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(rows[0]["alertname"], "HighMemoryUsage");
    assert_eq!(rows[0]["target"], "web-frontend");
    assert_eq!(rows[0]["status"], "open");

    let cmd = binary(dir.path(), &["incidents", "--open", "--limit", "5"], &db);
    let (ok, out, err) = run(cmd).await;
    assert!(ok, "{out}{err}");
    assert!(out.starts_with("ID"), "{out}");
    assert!(
        out.contains("open") && out.contains("web-frontend"),
        "{out}"
    );
}

fn write_catalog(root: &Path, routes: &str, responder: &str) -> (PathBuf, PathBuf) {
    crate::support::app::catalog_dir(root, routes, &[("wide", responder)])
}

const WIDE: &str = "name: wide\ntarget: \"{{ alert.labels.container }}\"\nallow_targets: ['.*']\nsteps:\n  - id: restart\n    action: docker_restart\n    container: \"{{ target }}\"\n    approval: required\n";

fn check(dir: &Path, catalog: &(PathBuf, PathBuf)) -> Command {
    let mut cmd = binary(dir, &["check"], "sqlite::memory:");
    cmd.arg("--routes-dir")
        .arg(&catalog.0)
        .arg("--responders-dir")
        .arg(&catalog.1);
    cmd
}

#[tokio::test]
async fn check_warns_and_passes_but_fails_a_shadowed_route() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = write_catalog(
        dir.path(),
        "routes:\n  - matchers: ['alertname=\"A\"']\n    responder: wide\n",
        WIDE,
    );
    let (ok, out, err) = run(check(dir.path(), &catalog)).await;
    assert!(ok, "{out}{err}");
    for expected in [
        "warning: ",
        "wide.yaml: allow_targets[0]: \".*\" allows every target",
        "wide.yaml: steps[0]: destructive step \"restart\" (docker_restart) has no explicit `budget`",
        "wide.yaml: steps[0].approval: step \"restart\" waits for approval but no admin token",
        "ok: 1 route(s), 1 responder(s) (wide), 3 warning(s)",
    ] {
        assert!(out.contains(expected), "missing {expected:?}:\n{out}");
    }

    let dir = tempfile::tempdir().unwrap();
    let catalog = write_catalog(
        dir.path(),
        "routes:\n  - matchers: ['alertname=\"A\"']\n    responder: wide\n  - matchers: ['alertname=\"A\"', 'team=\"x\"']\n    responder: wide\n",
        WIDE,
    );
    let (ok, out, err) = run(check(dir.path(), &catalog)).await;
    assert!(!ok, "a shadowed route fails check:\n{out}{err}");
    assert!(
        err.contains("r.yaml: routes[1]: can never match: ") && err.contains("1 error(s)"),
        "{err}"
    );
}

#[tokio::test]
async fn every_new_command_explains_itself() {
    let dir = tempfile::tempdir().unwrap();
    for (args, expected) in [
        (["simulate", "--help"], "touching nothing"),
        (["incidents", "--help"], "read-only"),
        (["check", "--help"], "warnings"),
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_alert-responder"));
        cmd.args(args).current_dir(dir.path());
        let (ok, out, err) = run(cmd).await;
        assert!(ok && out.contains(expected), "{args:?}: {out}{err}");
    }
}

#[tokio::test]
async fn simulate_says_what_it_cannot_parse() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/none.db", dir.path().display());
    let file = dir.path().join("neither.json");
    std::fs::write(&file, r#"{"events":[{"event_type":"incident.triggered"}]}"#).unwrap();
    let (ok, out, err) = run(simulate(dir.path(), &db, &file, false)).await;
    assert!(!ok, "{out}");
    assert!(
        err.contains("cannot tell the payload's source") && err.contains("Alertmanager v4"),
        "{err}"
    );
    // A PagerDuty-shaped payload is read as one, and said so when it is not a usable one.
    std::fs::write(&file, r#"{"event":{"event_type":"incident.triggered"}}"#).unwrap();
    let (ok, out, err) = run(simulate(dir.path(), &db, &file, false)).await;
    assert!(!ok, "{out}");
    assert!(err.contains("not a valid PagerDuty V3 webhook"), "{err}");
}
