//! The Docker step kinds against the real engine: each test parses a step from YAML, compiles
//! its templates like the catalog does, and runs it on its own throwaway container.

use alert_responder::actions::{Action, ActionError, StepOutput};
use serde_json::json;

use crate::support::docker::{test_image, TestContainer, OOM_LINE};
use crate::support::step::Step;

fn f64_field(out: &StepOutput, key: &str) -> f64 {
    out.fields[key].as_f64().expect("numeric output field")
}

#[tokio::test]
async fn inspect_reports_a_running_container() {
    let c = TestContainer::idle("inspect");
    let step = Step::for_target(
        "action: docker_inspect\ncontainer: '{{ target }}'",
        c.name(),
    );
    assert_eq!(
        step.plan().expect("an allowed container plans"),
        format!("inspect container {}", c.name())
    );
    let out = step.run_ok().await;
    let f = &out.fields;
    assert_eq!(f["container"], json!(c.name()));
    assert_eq!(f["status"], json!("running"));
    assert_eq!(f["running"], json!(true));
    assert_eq!(f["restarting"], json!(false));
    assert_eq!(f["oom_killed"], json!(false));
    assert_eq!(f["exit_code"], json!(0));
    assert_eq!(f["restart_count"], json!(0));
    assert_eq!(f["health"], json!("none"));
    assert_eq!(f["image"], json!(test_image()));
    assert_eq!(f["started_at"], json!(c.started_at()));
    assert!(f["pid"].as_i64().expect("pid is a number") > 0);
    assert_eq!(
        out.summary,
        "running, restart count 0, OOMKilled no, exit code 0"
    );
}

#[tokio::test]
async fn stats_match_docker_stats_for_a_hog_and_an_idle_container() {
    let hog = TestContainer::memory_hog("stats-hog");
    let idle = TestContainer::idle("stats-idle");
    let yaml = "action: docker_stats\ncontainer: '{{ target }}'";

    let out = Step::for_target(yaml, hog.name()).run_ok().await;
    let pct = f64_field(&out, "memory_percent");
    eprintln!(
        "hog: {} (docker stats: {}%)",
        out.summary,
        hog.cli_memory_percent()
    );
    assert!(pct > 90.0, "hog at {pct}% ({})", out.summary);
    assert_eq!(out.fields["memory_limit_bytes"], json!(64 * 1024 * 1024));
    // Same formula as the CLI, so the two agree up to the memory that moved between samples.
    let cli = hog.cli_memory_percent();
    assert!(
        (pct - cli).abs() < 3.0,
        "ours {pct}% vs docker stats {cli}%"
    );
    assert!(out.summary.starts_with("memory ") && out.summary.ends_with("of 64.0 MiB)"));
    assert!(out.fields["pids"].as_u64().expect("pids is a number") >= 1);

    let out = Step::for_target(yaml, idle.name()).run_ok().await;
    let pct = f64_field(&out, "memory_percent");
    assert!(pct < 50.0, "idle at {pct}% ({})", out.summary);
}

#[tokio::test]
async fn stats_of_a_stopped_container_is_an_error_not_zero() {
    let c = TestContainer::idle("stats-stopped");
    c.stop();
    let step = Step::for_target("action: docker_stats\ncontainer: '{{ target }}'", c.name());
    match step.run().await {
        Err(ActionError::Failed(msg)) => assert!(msg.contains("not running"), "{msg}"),
        other => panic!("expected a not-running error, got {other:?}"),
    }
}

#[tokio::test]
async fn logs_grep_finds_the_line_the_container_printed() {
    let c = TestContainer::idle("logs");
    let step = Step::for_target(
        "action: docker_logs\ncontainer: '{{ target }}'\ntail: 50\nsince: 10m\n\
         grep: 'OutOfMemoryError|Killed'",
        c.name(),
    );
    let out = step.run_ok().await;
    assert_eq!(out.fields["lines"], json!(2));
    assert_eq!(out.fields["match_count"], json!(1));
    assert_eq!(out.fields["matches"], json!([OOM_LINE]));
    assert_eq!(out.fields["excerpt"], json!(OOM_LINE));
    assert_eq!(out.summary, "1 of 2 lines match OutOfMemoryError|Killed");

    let plain = Step::for_target("action: docker_logs\ncontainer: '{{ target }}'", c.name());
    let out = plain.run_ok().await;
    assert_eq!(
        out.fields["excerpt"],
        json!(format!("k2 test container starting\n{OOM_LINE}"))
    );
}

#[tokio::test]
async fn exec_passes_each_argv_element_literally_without_a_shell() {
    let c = TestContainer::idle("exec");
    let step = Step::for_target(
        "action: docker_exec\ncontainer: '{{ target }}'\nread_only: true\n\
         argv: [echo, '{{ target }}', 'a b; echo injected $HOME']",
        c.name(),
    );
    assert!(!step.action.kind().destructive());
    assert_eq!(
        step.plan().expect("an allowed container plans"),
        format!("run [echo, {0}, a b; echo injected $HOME] in {0}", c.name())
    );
    let out = step.run_ok().await;
    // A shell would have run the second echo and expanded $HOME; echo got three arguments.
    assert_eq!(
        out.fields["stdout"],
        json!(format!("{} a b; echo injected $HOME\n", c.name()))
    );
    assert_eq!(out.fields["exit_code"], json!(0));
    assert_eq!(out.fields["truncated"], json!(false));
}

#[tokio::test]
async fn exec_reports_a_non_zero_exit_as_output() {
    let c = TestContainer::idle("exec-exit");
    let step = Step::for_target(
        "action: docker_exec\ncontainer: '{{ target }}'\nargv: [sh, -c, 'echo oops >&2; exit 3']",
        c.name(),
    );
    assert!(step.action.kind().destructive());
    let out = step.run_ok().await;
    assert_eq!(out.fields["exit_code"], json!(3));
    assert_eq!(out.fields["stderr"], json!("oops\n"));
}

#[tokio::test]
async fn exec_caps_stdout_and_stderr_each() {
    let c = TestContainer::idle("exec-cap");
    let step = Step::for_target(
        "action: docker_exec\ncontainer: '{{ target }}'\nmax_output_bytes: 100\n\
         argv: [sh, -c, 'seq 1 5000; seq 1 5000 >&2']",
        c.name(),
    );
    let out = step.run_ok().await;
    let stdout = out.fields["stdout"].as_str().expect("stdout is a string");
    let stderr = out.fields["stderr"].as_str().expect("stderr is a string");
    assert_eq!((stdout.len(), stderr.len()), (100, 100));
    assert!(stdout.starts_with("1\n2\n3\n"));
    assert_eq!(out.fields["truncated"], json!(true));
    assert_eq!(out.fields["exit_code"], json!(0));
}

#[tokio::test]
async fn restart_brings_the_hog_back_with_low_memory() {
    let c = TestContainer::memory_hog("restart");
    let before = c.started_at();
    assert!(c.cli_memory_percent() > 90.0);
    let step = Step::for_target(
        "action: docker_restart\ncontainer: '{{ target }}'\nstop_timeout: 5s",
        c.name(),
    );
    assert!(step.action.kind().destructive());
    assert_eq!(
        step.plan().expect("an allowed container plans"),
        format!("restart container {} (stop timeout 5s)", c.name())
    );
    let out = step.run_ok().await;
    assert_eq!(out.fields["restarted"], json!(true));
    assert_eq!(out.fields["running"], json!(true));
    let started = out.fields["started_at"]
        .as_str()
        .expect("started_at is a string");
    assert_ne!(started, before, "StartedAt must move on a restart");
    assert_eq!(started, c.started_at());
    // The engine counts only restart-policy restarts; an API restart leaves RestartCount alone.
    assert_eq!(out.fields["restart_count"], json!(c.restart_count()));
    assert!(c.is_running());
    assert!(out
        .summary
        .starts_with(&format!("restarted {}; running again", c.name())));

    let stats = Step::for_target("action: docker_stats\ncontainer: '{{ target }}'", c.name());
    let after = stats.run_ok().await;
    eprintln!("{}; then {}", out.summary, after.summary);
    let pct = f64_field(&after, "memory_percent");
    assert!(pct < 50.0, "after the restart the hog is at {pct}%");
}

#[tokio::test]
async fn start_starts_a_stopped_container_and_leaves_a_running_one() {
    let c = TestContainer::idle("start");
    c.stop();
    assert!(!c.is_running());
    let step = Step::for_target("action: docker_start\ncontainer: '{{ target }}'", c.name());
    assert!(step.action.kind().destructive());
    let out = step.run_ok().await;
    assert_eq!(out.fields["started"], json!(true));
    assert_eq!(out.fields["running"], json!(true));
    assert!(c.is_running());
    assert_eq!(out.fields["started_at"], json!(c.started_at()));

    let again = step.run_ok().await;
    assert_eq!(again.fields["started"], json!(false));
    assert_eq!(again.fields["running"], json!(true));
    assert_eq!(again.fields["started_at"], out.fields["started_at"]);
}

#[tokio::test]
async fn a_container_outside_the_allow_list_is_refused_and_untouched() {
    let c = TestContainer::idle("notallowed");
    let before = c.started_at();
    let step = Step::with_allow(
        "action: docker_restart\ncontainer: '{{ target }}'",
        json!({ "target": c.name() }),
        &["k2-prod-.*"],
    );
    assert!(matches!(step.plan(), Err(ActionError::NotAllowed(n)) if n == c.name()));
    match step.run().await {
        Err(ActionError::NotAllowed(n)) => assert_eq!(n, c.name()),
        other => panic!("expected NotAllowed, got {other:?}"),
    }
    assert!(c.is_running());
    assert_eq!(c.started_at(), before);
}

#[test]
fn unknown_yaml_fields_and_kinds_are_rejected() {
    for yaml in [
        "action: docker_restart\ncontainer: k2-x\nforce: true",
        "action: docker_inspect\ncontainer: k2-x\ntail: 5",
        "action: docker_exec\ncontainer: k2-x\nargv: [ls]\nshell: true",
        "action: docker_kill\ncontainer: k2-x",
        "action: docker_logs\ncontainer: k2-x\ngrep: '(unclosed'",
        "action: docker_exec\ncontainer: k2-x\nargv: []",
    ] {
        assert!(
            serde_yaml_ng::from_str::<Action>(yaml).is_err(),
            "accepted: {yaml}"
        );
    }
}

#[tokio::test]
async fn a_missing_container_is_not_found() {
    let name = format!("k2-test-missing-{}", std::process::id());
    for kind in [
        "docker_inspect",
        "docker_stats",
        "docker_logs",
        "docker_restart",
        "docker_start",
    ] {
        let step = Step::for_target(
            &format!("action: {kind}\ncontainer: '{{{{ target }}}}'"),
            &name,
        );
        match step.run().await {
            Err(ActionError::NotFound(n)) => assert_eq!(n, name, "{kind}"),
            other => panic!("{kind}: expected NotFound, got {other:?}"),
        }
    }
    let exec = Step::for_target(
        "action: docker_exec\ncontainer: '{{ target }}'\nargv: [ls]",
        &name,
    );
    assert!(matches!(exec.run().await, Err(ActionError::NotFound(_))));
}
