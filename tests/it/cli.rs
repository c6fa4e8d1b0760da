//! The real `alert-responder` binary as a subprocess: `serve` on a fresh directory, refusal to
//! listen beyond loopback without a token, secrets kept out of logs and Slack, `check`, `--help`
//! and the `--config` file.
//!
//! Every child runs in a temp dir with its output in files there (no pipe can fill up), on a
//! free port, with bounded waits, and is stopped with SIGTERM (or killed when a test fails).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use crate::support::app::am_alert;
use crate::support::binary::{binary, free_port, http, Child};
use crate::support::fake_grafana::{FakeGrafana, GF_TOKEN};
use crate::support::fake_pagerduty::{FakePagerDuty, PD_FROM, PD_ROUTING_KEY, PD_TOKEN};
use crate::support::fake_slack::FakeSlack;
use crate::support::slack as slack_support;

/// The shipped catalog, as `--routes-dir`/`--responders-dir` arguments.
pub(crate) fn shipped_catalog_args() -> [String; 4] {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        "--routes-dir".to_owned(),
        root.join("routes").display().to_string(),
        "--responders-dir".to_owned(),
        root.join("responders").display().to_string(),
    ]
}

/// A random-looking string no log line would contain by accident.
fn secret(prefix: &str) -> String {
    let a = RandomState::new().build_hasher().finish();
    let b = RandomState::new().build_hasher().finish();
    format!("{prefix}{a:016x}{b:016x}")
}

/// Runs a short command to completion: (status, stdout, stderr).
pub(crate) async fn run(cmd: Command, dir: &Path) -> (ExitStatus, String, String) {
    let mut child = Child::spawn(cmd, dir);
    let status = child.finished().await;
    (status, child.stdout(), child.stderr())
}

#[tokio::test]
async fn serve_on_a_fresh_directory_runs_with_defaults_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = binary(dir.path());
    cmd.arg("serve")
        .args(shipped_catalog_args())
        .env("RESPONDER_LISTEN", format!("127.0.0.1:{port}"));
    let mut server = Child::spawn(cmd, dir.path());
    server.wait_healthy(port).await;

    let client = http();
    for path in ["/healthz", "/readyz"] {
        let response = client
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await
            .expect("the server answers");
        assert_eq!(response.status(), 200, "{path}");
    }
    assert!(
        dir.path().join("data/alert-responder.db").is_file(),
        "the default database is created under ./data; output:\n{}",
        server.output()
    );

    let status = server.terminate().await;
    let output = server.output();
    assert!(
        status.success(),
        "SIGTERM exits 0, got {status}; output:\n{output}"
    );
    assert!(
        output.contains("Slack delivery is off") && output.contains("SLACK_BOT_TOKEN"),
        "says plainly that Slack is off and why; output:\n{output}"
    );
    assert!(
        output.contains("Grafana annotations are off")
            && output.contains("GRAFANA_URL and GRAFANA_API_TOKEN"),
        "says plainly that annotations are off and why; output:\n{output}"
    );
    assert!(
        !output.contains('\u{1b}'),
        "logs to a file are plain text, without terminal colour codes:\n{output}"
    );
}

#[tokio::test]
async fn serve_refuses_to_listen_beyond_loopback_without_a_webhook_token() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = binary(dir.path());
    cmd.arg("serve")
        .args(shipped_catalog_args())
        .env("RESPONDER_LISTEN", format!("0.0.0.0:{port}"));
    let (status, stdout, stderr) = run(cmd, dir.path()).await;
    assert!(
        !status.success(),
        "must refuse; stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains("RESPONDER_WEBHOOK_TOKEN")
            && stderr.contains(&format!("0.0.0.0:{port}"))
            && stderr.contains("anyone who can reach this address could trigger remediation"),
        "names the setting, the address and why; stderr:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_logs_or_slack_messages() {
    let webhook_token = secret("whk-");
    let slack_token = secret("xoxb-");
    let wrong_token = secret("wrong-");
    let signing_secret = secret("sss-");
    let admin_token = secret("adm-");
    let pd_secret = secret("pds-");
    let slack = FakeSlack::start(&slack_token).await;
    let pagerduty = FakePagerDuty::start().await;
    let grafana = FakeGrafana::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = binary(dir.path());
    cmd.arg("serve")
        .args(shipped_catalog_args())
        .env("RUST_LOG", "debug")
        .env("RESPONDER_LISTEN", format!("127.0.0.1:{port}"))
        .env("RESPONDER_WEBHOOK_TOKEN", &webhook_token)
        .env("RESPONDER_ADMIN_TOKEN", &admin_token)
        .env("PAGERDUTY_WEBHOOK_SECRET", &pd_secret)
        .env("SLACK_BOT_TOKEN", &slack_token)
        .env("SLACK_SIGNING_SECRET", &signing_secret)
        .env("SLACK_API_URL", slack.api_url())
        .env("PAGERDUTY_API_URL", pagerduty.url())
        .env("PAGERDUTY_EVENTS_URL", pagerduty.url())
        .env("PAGERDUTY_API_TOKEN", PD_TOKEN)
        .env("PAGERDUTY_FROM", PD_FROM)
        .env("PAGERDUTY_ROUTING_KEY", PD_ROUTING_KEY)
        .env("GRAFANA_URL", grafana.url())
        .env("GRAFANA_API_TOKEN", GF_TOKEN);
    let mut server = Child::spawn(cmd, dir.path());
    server.wait_healthy(port).await;
    // A signed slash command and a forged one: neither answer nor log shows the secret.
    for key in [signing_secret.as_str(), wrong_token.as_str()] {
        let command = slack_support::command_body("/responder", "help", ("U0X", "x"), "");
        let ts = slack_support::now();
        let answer = http()
            .post(format!("http://127.0.0.1:{port}/slack/commands"))
            .header("x-slack-request-timestamp", ts.to_string())
            .header(
                "x-slack-signature",
                slack_support::signature(key, ts, &command),
            )
            .body(command)
            .send()
            .await
            .expect("answers");
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap_or_default();
        assert_eq!(
            status,
            if key == signing_secret { 200 } else { 401 },
            "{text}"
        );
        assert!(!text.contains(&signing_secret), "{text}");
    }

    // web-frontend is outside high-memory's allow-list: recorded and reported, never touched.
    let body = am_alert(
        "firing",
        "HighMemoryUsage",
        "web-frontend",
        "c11c11c11c11c001",
        "2026-11-27T05:00:00Z",
    );
    let client = http();
    let url = format!("http://127.0.0.1:{port}/webhook/alertmanager");
    let post = |token: Option<&str>| {
        let mut request = client.post(&url).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let right = post(Some(&webhook_token)).await.expect("answers");
    assert_eq!(right.status(), 200, "the right token is accepted");
    let wrong = post(Some(&wrong_token)).await.expect("answers");
    assert_eq!(wrong.status(), 401, "a wrong token is refused");
    let none = post(None).await.expect("answers");
    assert_eq!(none.status(), 401, "no token is refused");
    let produced = every_answer(port, &webhook_token, &admin_token, &wrong_token, &pd_secret).await;

    let parent_posted = slack
        .wait_for(
            |calls| {
                calls
                    .iter()
                    .any(|c| c.method == "chat.postMessage" && c.thread_ts.is_none())
            },
            Duration::from_secs(15),
        )
        .await;
    assert!(
        parent_posted,
        "no parent message reached Slack; calls: {:?}; output:\n{}",
        slack.calls(),
        server.output()
    );
    let parent = slack
        .messages()
        .into_iter()
        .find(|m| m.thread_ts.is_none())
        .expect("a parent message");
    assert!(
        parent.text.contains("web-frontend") && parent.text.contains("Not acted on"),
        "{}",
        parent.text
    );

    let status = server.terminate().await;
    let output = server.output();
    assert!(
        status.success(),
        "SIGTERM exits 0, got {status}; output:\n{output}"
    );
    assert!(
        output.contains("Slack delivery is on") && output.contains("Grafana annotations are on"),
        "the output was captured (debug logs on); output:\n{output}"
    );
    for (what, value) in [
        ("RESPONDER_WEBHOOK_TOKEN", &webhook_token),
        ("RESPONDER_ADMIN_TOKEN", &admin_token),
        ("PAGERDUTY_WEBHOOK_SECRET", &pd_secret),
        ("SLACK_BOT_TOKEN", &slack_token),
        ("SLACK_SIGNING_SECRET", &signing_secret),
        ("PAGERDUTY_API_TOKEN", &PD_TOKEN.to_owned()),
        ("PAGERDUTY_ROUTING_KEY", &PD_ROUTING_KEY.to_owned()),
        ("GRAFANA_API_TOKEN", &GF_TOKEN.to_owned()),
        ("the wrong token a caller presented", &wrong_token),
    ] {
        assert!(
            !output.contains(value.as_str()),
            "{what} appears in the output:\n{output}"
        );
        assert!(
            !produced.contains(value.as_str()),
            "{what} appears in an HTTP answer:\n{produced}"
        );
        for call in slack.calls() {
            assert!(
                !call.text.contains(value.as_str()),
                "{what} appears in a Slack message: {call:?}"
            );
        }
    }
}

/// Drives every endpoint with good and bad credentials (PagerDuty signed right and wrong,
/// approvals with the wrong and the right token, the API, the page, metrics) and returns
/// every status line and body, for the caller to search for secrets.
async fn every_answer(port: u16, webhook: &str, admin: &str, wrong: &str, pd: &str) -> String {
    let base = format!("http://127.0.0.1:{port}");
    let client = http();
    let pd_body = serde_json::json!({"event": {"event_type": "incident.triggered",
        "data": {"id": "PSECRET1", "title": "High Memory Usage: web-frontend",
                 "created_at": "2026-11-27T05:00:00Z"}}})
    .to_string();
    let signed = format!("v1={}", crate::pagerduty::sign(pd, pd_body.as_bytes()));
    let forged = format!("v1={}", crate::pagerduty::sign(wrong, pd_body.as_bytes()));
    let decision = r#"{"decision":"approve","by":"tester"}"#;
    let requests = [
        client
            .post(format!("{base}/webhook/pagerduty"))
            .header("x-pagerduty-signature", signed),
        client
            .post(format!("{base}/webhook/pagerduty"))
            .header("x-pagerduty-signature", forged),
        client
            .post(format!("{base}/api/incidents/1/approvals"))
            .bearer_auth(wrong),
        client
            .post(format!("{base}/api/incidents/1/approvals"))
            .bearer_auth(admin),
        client
            .get(format!("{base}/api/incidents"))
            .bearer_auth(webhook),
        client
            .get(format!("{base}/api/incidents/1"))
            .bearer_auth(webhook),
        client
            .get(format!("{base}/api/incidents"))
            .bearer_auth(wrong),
        client.get(format!("{base}/")).bearer_auth(webhook),
        client.get(format!("{base}/metrics")),
        client.get(format!("{base}/readyz")),
    ];
    let mut produced = String::new();
    for (i, request) in requests.into_iter().enumerate() {
        let body = if i < 2 {
            pd_body.clone()
        } else {
            decision.to_owned()
        };
        let response = request.body(body).send().await.expect("answers");
        produced.push_str(&format!("{:?} {}\n", response.headers(), response.status()));
        produced.push_str(&response.text().await.expect("a body"));
        produced.push('\n');
    }
    assert!(
        produced.contains("202 Accepted") && produced.contains("403 Forbidden"),
        "{produced}"
    );
    assert!(
        produced.contains("alert_responder_"),
        "metrics answered: {produced}"
    );
    produced
}

#[tokio::test]
async fn check_accepts_the_shipped_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = binary(dir.path());
    cmd.arg("check").args(shipped_catalog_args());
    let (status, stdout, stderr) = run(cmd, dir.path()).await;
    assert!(status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("ok:") && stdout.contains("high-memory"),
        "{stdout}"
    );
}

/// A responder with four kinds of mistake, one with only a bad allow-list, and routes with two.
fn write_broken_catalog(root: &Path) -> (PathBuf, PathBuf) {
    let routes = root.join("routes");
    let responders = root.join("responders");
    std::fs::create_dir_all(&routes).expect("mkdir routes");
    std::fs::create_dir_all(&responders).expect("mkdir responders");
    std::fs::write(
        responders.join("sloppy.yaml"),
        r#"name: sloppy
target: "{{ alert.labels.container }}"
steps:
  - id: state
    action: docker_inspect
    container: "{{ target }}"
    timout: 10s
  - id: mem
    action: docker_stats
    container: "{{ target }}"
  - id: restart
    when: "steps.mem.nonexistent >= 90"
    action: docker_restart
    container: "{{ target }}"
  - id: zap
    action: docker_explode
    container: "{{ target }}"
"#,
    )
    .expect("write a catalog file");
    std::fs::write(
        responders.join("fenced.yaml"),
        r#"name: fenced
target: "{{ alert.labels.container }}"
allow_targets: ['k2-(']
steps:
  - id: state
    action: docker_inspect
    container: "{{ target }}"
"#,
    )
    .expect("write a catalog file");
    std::fs::write(
        routes.join("main.yaml"),
        r#"routes:
  - matchers: ['alertname="HighMemoryUsage"']
    responder: nobody
  - matchers: ['alertname~"Disk"']
    responder: sloppy
  - matchers: ['alertname="Fence"']
    responder: fenced
"#,
    )
    .expect("write a catalog file");
    (routes, responders)
}

#[tokio::test]
async fn check_lists_every_problem_with_file_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let (routes, responders) = write_broken_catalog(dir.path());
    let mut cmd = binary(dir.path());
    cmd.arg("check")
        .arg("--routes-dir")
        .arg(&routes)
        .arg("--responders-dir")
        .arg(&responders);
    let (status, stdout, stderr) = run(cmd, dir.path()).await;
    assert!(!status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stdout.contains("ok:"), "{stdout}");

    let lines: Vec<&str> = stderr.lines().collect();
    // (file, path, words of the reason): each must be on one line of stderr.
    let expected: [(&str, &str, &[&str]); 6] = [
        (
            "fenced.yaml",
            "allow_targets[0]",
            &["invalid regex", "k2-("],
        ),
        ("sloppy.yaml", "steps[0]", &["timout"]),
        (
            "sloppy.yaml",
            "steps[2].when",
            &["steps.mem.nonexistent", "no output"],
        ),
        ("sloppy.yaml", "steps[3]", &["docker_explode"]),
        ("main.yaml", "routes[0].responder", &["nobody"]),
        (
            "main.yaml",
            "routes[1].matchers[0]",
            &["alertname~", "operator must be one of"],
        ),
    ];
    for (file, path, words) in expected {
        let found = lines.iter().any(|line| {
            line.contains(file)
                && line.contains(&format!(": {path}: "))
                && words.iter().all(|w| line.contains(w))
        });
        assert!(
            found,
            "no line names {file}, {path} and {words:?}; stderr:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains("unknown responder \"fenced\""),
        "a responder with its own problems is not also called unknown; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("6 problem(s)"),
        "exactly the six mistakes are reported, nothing made up; stderr:\n{stderr}"
    );
}

#[tokio::test]
async fn help_documents_every_setting_and_never_shows_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let webhook_token = secret("whk-");
    let slack_token = secret("xoxb-");
    for args in [&["--help"][..], &["serve", "--help"], &["check", "--help"]] {
        let mut cmd = binary(dir.path());
        cmd.args(args)
            .env("RESPONDER_WEBHOOK_TOKEN", &webhook_token)
            .env("SLACK_BOT_TOKEN", &slack_token);
        let (status, stdout, stderr) = run(cmd, dir.path()).await;
        assert!(status.success(), "{args:?}: stderr:\n{stderr}");
        assert!(!stdout.is_empty(), "{args:?} prints help");
        for value in [&webhook_token, &slack_token] {
            assert!(
                !stdout.contains(value.as_str()) && !stderr.contains(value.as_str()),
                "{args:?} shows a secret:\n{stdout}{stderr}"
            );
        }
        if args == ["serve", "--help"] {
            for var in [
                "RESPONDER_LISTEN",
                "RESPONDER_DATABASE_URL",
                "RESPONDER_WEBHOOK_TOKEN",
                "RESPONDER_MODE",
                "SLACK_BOT_TOKEN",
                "SLACK_CHANNEL",
                "SLACK_API_URL",
            ] {
                assert!(
                    stdout.contains(&format!("[env: {var}")),
                    "serve --help does not mention {var}:\n{stdout}"
                );
            }
            assert!(
                stdout.contains("[env: RESPONDER_WEBHOOK_TOKEN]")
                    && stdout.contains("[env: SLACK_BOT_TOKEN]"),
                "token values are hidden, the names shown:\n{stdout}"
            );
        }
    }
}

#[tokio::test]
async fn config_file_is_honoured_and_its_unknown_keys_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("responder.yaml");
    std::fs::write(
        &config,
        format!("listen: 127.0.0.1:{port}\nmode: dry-run\n"),
    )
    .unwrap();
    let mut cmd = binary(dir.path());
    cmd.arg("serve")
        .arg("--config")
        .arg(&config)
        .args(shipped_catalog_args());
    let mut server = Child::spawn(cmd, dir.path());
    server.wait_healthy(port).await;
    let status = server.terminate().await;
    let output = server.output();
    assert!(
        status.success(),
        "SIGTERM exits 0, got {status}; output:\n{output}"
    );
    assert!(
        output.contains("dry-run"),
        "the mode from the file is used:\n{output}"
    );

    let typo_dir = tempfile::tempdir().unwrap();
    let typo = typo_dir.path().join("responder.yaml");
    std::fs::write(&typo, format!("listn: 127.0.0.1:{port}\n")).unwrap();
    let mut cmd = binary(typo_dir.path());
    cmd.arg("serve")
        .arg("--config")
        .arg(&typo)
        .args(shipped_catalog_args());
    let (status, stdout, stderr) = run(cmd, typo_dir.path()).await;
    assert!(!status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stderr.contains("listn") && stderr.contains(&typo.display().to_string()),
        "names the unknown key and the file; stderr:\n{stderr}"
    );
}
