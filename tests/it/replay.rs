//! `alert-responder replay`, the real binary, on a database holding a real high-memory
//! incident on real Docker: the hog restarted (96% of its limit), the idle container left
//! alone. Replayed against the shipped catalog nothing differs; with the threshold raised to
//! 99 the restart would not have happened; lowered to 0, the idle container's restart would
//! now happen and what reads it is unknown. Plus `--help` and the errors (exit 2).

mod postgres;

use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use serde_json::Value;

use crate::support::app::{am_alert, shipped_catalog, step_states, Options, TestApp};
use crate::support::binary::{binary, Child};
use crate::support::docker::TestContainer;

/// The line of responders/high-memory.yaml that decides the restart.
const THRESHOLD: &str = r#"when: "steps.mem.memory_percent >= 90""#;

/// A copy of the shipped responders with the restart threshold of high-memory set to `to`.
pub(crate) fn responders_with_threshold(dir: &Path, to: &str) -> PathBuf {
    let (_, shipped) = shipped_catalog();
    let copy = dir.join(format!("responders-{to}"));
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(&shipped).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, copy.join(path.file_name().unwrap())).unwrap();
    }
    let file = copy.join("high-memory.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains(THRESHOLD),
        "the shipped threshold moved:\n{text}"
    );
    let changed = THRESHOLD.replace(">= 90", &format!(">= {to}"));
    std::fs::write(&file, text.replace(THRESHOLD, &changed)).unwrap();
    copy
}

/// A directory `name` in `dir` holding one file `file` with `text`; returns its path.
fn one_file_dir(dir: &Path, name: &str, file: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(path.join(file), text).unwrap();
    path.display().to_string()
}

/// Runs `replay` with `args` on `database`: (status, stdout, stderr).
pub(crate) async fn replay(
    dir: &Path,
    database: &str,
    args: &[&str],
) -> (ExitStatus, String, String) {
    let mut cmd = binary(dir);
    cmd.arg("replay")
        .args(args)
        .env("RESPONDER_DATABASE_URL", database);
    let run_dir = tempfile::tempdir_in(dir).unwrap();
    let mut child = Child::spawn(cmd, run_dir.path());
    let status = child.finished().await;
    (status, child.stdout(), child.stderr())
}

pub(crate) fn catalog_args<'a>(routes: &'a str, responders: &'a str) -> Vec<&'a str> {
    vec![
        "--since",
        "1h",
        "--routes",
        routes,
        "--responders",
        responders,
    ]
}

#[tokio::test]
async fn replay_names_the_restart_a_raised_threshold_would_not_have_made() {
    let hog = TestContainer::memory_hog("rp-hog");
    let idle = TestContainer::idle("rp-idle");
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(dir.path(), None, Options::default()).await;
    for (container, fingerprint) in [
        (hog.name(), "f0000000000r0001"),
        (idle.name(), "f0000000000r0002"),
    ] {
        let body = am_alert(
            "firing",
            "HighMemoryUsage",
            container,
            fingerprint,
            "2026-11-27T05:00:00Z",
        );
        assert_eq!(app.post_alertmanager(&body).await.status(), 200);
    }
    let hog_run = app.wait_for_finished_run(hog.name(), 1).await;
    assert_eq!(
        step_states(&hog_run, 0)[3],
        ("restart".into(), "succeeded".into())
    );
    let idle_run = app.wait_for_finished_run(idle.name(), 1).await;
    assert_eq!(
        step_states(&idle_run, 0)[3],
        ("restart".into(), "skipped".into())
    );
    let database = app.database_url.clone();
    app.stop().await;

    let (routes, shipped) = shipped_catalog();
    let routes = routes.display().to_string();

    // The configured catalog (here from the environment), unchanged: nothing differs.
    let mut cmd = binary(dir.path());
    cmd.args(["replay", "--fail-on-diff"])
        .env("RESPONDER_DATABASE_URL", &database)
        .env("RESPONDER_ROUTES_DIR", &routes)
        .env("RESPONDER_RESPONDERS_DIR", &shipped);
    let mut child = Child::spawn(cmd, &dir.path().join("."));
    let status = child.finished().await;
    let (out, err) = (child.stdout(), child.stderr());
    assert_eq!(status.code(), Some(0), "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("Replay of 2 alert(s)"), "{out}");
    assert!(out.contains("No difference"), "{out}");
    assert!(!out.contains(hog.name()), "{out}");

    // Raised to 99: the hog (at ~96%) would not have been restarted, nor verified.
    let raised = responders_with_threshold(dir.path(), "99")
        .display()
        .to_string();
    let (status, out, err) = replay(
        dir.path(),
        &database,
        &[&catalog_args(&routes, &raised)[..], &["--fail-on-diff"]].concat(),
    )
    .await;
    println!("--- replay, threshold 99 ---\n{out}");
    assert_eq!(status.code(), Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("- restart (docker_restart DESTRUCTIVE): would NOT have happened")
            && out.contains("`steps.mem.memory_percent >= 99` is false"),
        "{out}"
    );
    assert!(
        out.contains(&format!("run 1 on {}", hog.name())) || out.contains(hog.name()),
        "{out}"
    );
    assert!(
        out.contains("- verify_running (docker_inspect): ran then, skipped now"),
        "{out}"
    );
    assert!(
        !out.contains(idle.name()),
        "the idle container fares the same: {out}"
    );
    assert!(!out.contains("unknown: not run then ("), "{out}");

    // The same finding for machines.
    let (status, out, err) = replay(
        dir.path(),
        &database,
        &[
            &catalog_args(&routes, &raised)[..],
            &["--json", "--fail-on-diff"],
        ]
        .concat(),
    )
    .await;
    assert_eq!(status.code(), Some(1), "stdout:\n{out}\nstderr:\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["alerts_replayed"], 2, "{report:#}");
    let incidents = report["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{report:#}");
    let run = &incidents[0]["alerts"][0]["runs"][0];
    assert_eq!(run["responder"], "high-memory");
    assert_eq!(run["then"]["target"], hog.name());
    let restart = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "restart")
        .unwrap();
    assert_eq!(restart["destructive"], true, "{restart:#}");
    assert_eq!(restart["differs"], true, "{restart:#}");
    assert_eq!(restart["then"]["kind"], "ran", "{restart:#}");
    assert_eq!(restart["now"]["kind"], "skipped", "{restart:#}");
    assert!(report["differences"].as_u64().unwrap() >= 3, "{report:#}");

    // Lowered to 0: the idle container would now be restarted; its verification reads the
    // restart, which did not run then.
    let lowered = responders_with_threshold(dir.path(), "0")
        .display()
        .to_string();
    let (status, out, err) = replay(
        dir.path(),
        &database,
        &[&catalog_args(&routes, &lowered)[..], &["--fail-on-diff"]].concat(),
    )
    .await;
    println!("--- replay, threshold 0 ---\n{out}");
    assert_eq!(status.code(), Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains(idle.name()) && !out.contains(hog.name()),
        "{out}"
    );
    assert!(
        out.contains("- restart (docker_restart DESTRUCTIVE): would now happen"),
        "{out}"
    );
    assert!(
        out.contains("- verify_running (docker_inspect): unknown: not run then")
            && out.contains("reads steps.restart"),
        "{out}"
    );
    // Routed nowhere: neither run would happen; the restart is named.
    let unrouted = one_file_dir(
        dir.path(),
        "routes-none",
        "r.yaml",
        "routes:\n  - matchers: ['alertname=\"SomethingElse\"']\n    responder: high-memory\n",
    );
    let (status, out, err) = replay(
        dir.path(),
        &database,
        &[
            &catalog_args(&unrouted, &shipped.display().to_string())[..],
            &["--fail-on-diff"],
        ]
        .concat(),
    )
    .await;
    assert_eq!(status.code(), Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("! would no longer run: no_route: no route matches HighMemoryUsage")
            && out.contains("- restart (docker_restart DESTRUCTIVE): would NOT have happened")
            && out.contains(idle.name())
            && out.contains("refusals: then none; now no_route"),
        "{out}"
    );

    // Without --fail-on-diff a difference is reported, not failed.
    let (status, _, _) = replay(dir.path(), &database, &catalog_args(&routes, &lowered)).await;
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn replay_exits_2_on_a_missing_database_or_a_broken_catalog_and_explains_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (routes, responders) = shipped_catalog();
    let (routes, responders) = (
        routes.display().to_string(),
        responders.display().to_string(),
    );
    let missing = format!("sqlite://{}/nothing-here.db", dir.path().display());
    let (status, out, err) = replay(
        dir.path(),
        &missing,
        &[&catalog_args(&routes, &responders)[..], &["--fail-on-diff"]].concat(),
    )
    .await;
    assert_eq!(status.code(), Some(2), "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("does not exist"), "{err}");
    assert!(
        !dir.path().join("nothing-here.db").exists(),
        "never created"
    );

    let broken = one_file_dir(
        dir.path(),
        "broken",
        "x.yaml",
        "name: x\ntarget: '{{ alert.labels.container }}'\nsteps:\n  - id: a\n    action: no_such_action\n",
    );
    let (status, out, err) = replay(
        dir.path(),
        &missing,
        &[&catalog_args(&routes, &broken)[..], &["--fail-on-diff"]].concat(),
    )
    .await;
    assert_eq!(status.code(), Some(2), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.contains("the catalog does not load") && err.contains("x.yaml"),
        "{err}"
    );

    // A catalog that loads but fails `check`'s lints: the second route can never match.
    let shadowed = one_file_dir(
        dir.path(),
        "shadowed",
        "r.yaml",
        "routes:\n  - matchers: ['alertname=\"HighMemoryUsage\"']\n    responder: high-memory\n  - matchers: ['alertname=\"HighMemoryUsage\"', 'team=\"x\"']\n    responder: high-memory\n",
    );
    let (status, out, err) =
        replay(dir.path(), &missing, &catalog_args(&shadowed, &responders)).await;
    assert_eq!(status.code(), Some(2), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.contains("the catalog fails `check`") && err.contains("can never match"),
        "{err}"
    );

    let mut help = binary(dir.path());
    help.args(["replay", "--help"]);
    let mut child = Child::spawn(help, dir.path());
    assert!(child.finished().await.success());
    let text = child.stdout();
    for needle in [
        "--since",
        "--routes",
        "--responders",
        "--fail-on-diff",
        "--json",
        "unknown: not run then",
        "Exit status",
        "replay --since 168h --routes routes --responders responders --fail-on-diff",
    ] {
        assert!(
            text.contains(needle),
            "`replay --help` lacks {needle:?}:\n{text}"
        );
    }
}
