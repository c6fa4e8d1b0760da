//! Attack: every mutating endpoint refuses missing or bad credentials, and alert text is
//! data. Labels carrying shell metacharacters, `$(...)`, backticks, quotes, `../`, newlines
//! or SQL reach a command only as one argv element, and never name a container outside the
//! allow-list or outside Docker's name grammar (tests on real containers).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::pagerduty::sign;
use crate::support::app::{am_alert, catalog_dir, Options, TestApp};
use crate::support::docker::TestContainer;
use crate::support::slack as slack_support;

const WEBHOOK: &str = "attack-webhook-token-31d7";
const ADMIN: &str = "attack-admin-token-8e02";
const PD_SECRET: &str = "attack-pd-secret-c4a9";
const SLACK_SECRET: &str = "attack-slack-signing-5b1e";

/// One way of presenting credentials to a route.
#[derive(Debug, Clone, Copy)]
enum Cred {
    None,
    Bearer(&'static str),
    Raw(&'static str),
    PdSignature(&'static str),
    PdHeader(&'static str),
    /// Slack v0 signature with this secret, over a timestamp this many seconds old.
    Slack(&'static str, i64),
}

/// A route, its body, refused credentials with the status each gets, and the accepted
/// credential with its status.
type Case<'a> = (&'a str, &'a str, Vec<(Cred, u16)>, Cred, u16);

/// The POST routes the router documents (`//! - `POST /path`` in src/http/mod.rs).
fn documented_post_routes() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/mod.rs"))
        .expect("src/http/mod.rs is readable");
    text.lines()
        .filter_map(|l| l.strip_prefix("//! - `POST "))
        .map(|l| l.split('`').next().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn every_mutating_route_refuses_missing_wrong_and_misplaced_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(
        dir.path(),
        None,
        Options {
            webhook_token: Some(WEBHOOK.into()),
            admin_token: Some(ADMIN.into()),
            pagerduty_webhook_secret: Some(PD_SECRET.into()),
            slack_signing_secret: Some(SLACK_SECRET.into()),
            no_slack: true,
            ..Default::default()
        },
    )
    .await;
    let am_body = am_alert(
        "firing",
        "HighMemoryUsage",
        "web-frontend",
        "a77ac0000000001",
        "2026-11-27T05:00:00Z",
    )
    .to_string();
    let pd_body = json!({"event": {"event_type": "incident.triggered", "occurred_at": "2026-11-27T05:00:00Z",
        "data": {"id": "PATTACK1", "title": "High Memory Usage: web-frontend", "created_at": "2026-11-27T05:00:00Z"}}})
    .to_string();
    let decision = json!({"decision": "approve", "by": "mallory"}).to_string();
    let command = slack_support::command_body("/responder", "help", ("U0MALLORY", "mallory"), "");
    let click = serde_urlencoded::to_string([(
        "payload",
        slack_support::click_payload(("U0MALLORY", "mallory"), "approval_approve", "1", "")
            .to_string(),
    )])
    .unwrap();
    let slack_refused = || {
        vec![
            (Cred::None, 401),
            (Cred::Bearer(WEBHOOK), 401),
            (Cred::Slack("another-secret", 0), 401),
            (Cred::Slack(PD_SECRET, 0), 401),
            // Signed right, but outside Slack's five-minute window: a replay.
            (Cred::Slack(SLACK_SECRET, 301), 401),
            (Cred::Slack(SLACK_SECRET, -301), 401),
            (Cred::PdSignature(SLACK_SECRET), 401),
        ]
    };
    let table: Vec<Case<'_>> = vec![
        (
            "/webhook/alertmanager",
            &am_body,
            vec![
                (Cred::None, 401),
                (Cred::Bearer("wrong"), 401),
                (Cred::Bearer("attack-webhook-token-31d"), 401),
                (Cred::Bearer("attack-webhook-token-31d7x"), 401),
                (Cred::Raw(WEBHOOK), 401),
                (Cred::Raw("Basic YXR0YWNrOmF0dGFjaw=="), 401),
                (Cred::Bearer(ADMIN), 401),
                (Cred::PdSignature(PD_SECRET), 401),
            ],
            Cred::Bearer(WEBHOOK),
            200,
        ),
        (
            "/webhook/pagerduty",
            &pd_body,
            vec![
                (Cred::None, 403),
                (Cred::Bearer(WEBHOOK), 403),
                (Cred::PdSignature("another-secret"), 403),
                (Cred::PdSignature(WEBHOOK), 403),
                (Cred::PdHeader("v1="), 403),
                (Cred::PdHeader("v0=00, v2=11"), 403),
                (Cred::PdHeader("v1=zz"), 403),
            ],
            Cred::PdSignature(PD_SECRET),
            202,
        ),
        (
            "/api/incidents/{id}/approvals",
            &decision,
            vec![
                (Cred::None, 401),
                (Cred::Bearer("wrong"), 401),
                // The webhook token lets a sender report alerts, never approve a restart.
                (Cred::Bearer(WEBHOOK), 401),
                (Cred::Raw(ADMIN), 401),
            ],
            Cred::Bearer(ADMIN),
            409,
        ),
        (
            "/slack/commands",
            &command,
            slack_refused(),
            Cred::Slack(SLACK_SECRET, 0),
            200,
        ),
        // Mallory may not approve: accepted as a request, refused (and audited) as a decision.
        (
            "/slack/interactions",
            &click,
            slack_refused(),
            Cred::Slack(SLACK_SECRET, 0),
            200,
        ),
    ];
    let mut tested: Vec<&str> = table.iter().map(|(path, ..)| *path).collect();
    tested.sort_unstable();
    let mut documented = documented_post_routes();
    documented.sort_unstable();
    assert_eq!(
        tested, documented,
        "every documented POST route is in the table"
    );

    let mut stored = 0;
    for (path, body, refused, accepted, status) in &table {
        let url = format!("{}{}", app.address, path.replace("{id}", "1"));
        let content_type = if path.starts_with("/slack/") {
            "application/x-www-form-urlencoded"
        } else {
            "application/json"
        };
        let send = |cred: Cred| {
            let mut request = app
                .client
                .post(&url)
                .header("content-type", content_type)
                .body(body.to_string());
            match cred {
                Cred::None => {}
                Cred::Bearer(token) => request = request.bearer_auth(token),
                Cred::Raw(value) => request = request.header("authorization", value),
                Cred::PdSignature(secret) => {
                    let signature = format!("v1={}", sign(secret, body.as_bytes()));
                    request = request.header("x-pagerduty-signature", signature);
                }
                Cred::PdHeader(value) => request = request.header("x-pagerduty-signature", value),
                Cred::Slack(secret, age) => {
                    let ts = slack_support::now() - age;
                    request = request
                        .header("x-slack-request-timestamp", ts.to_string())
                        .header(
                            "x-slack-signature",
                            slack_support::signature(secret, ts, body),
                        );
                }
            }
            request.send()
        };
        for (cred, expected) in refused {
            let response = send(*cred).await.unwrap();
            assert_eq!(
                response.status().as_u16(),
                *expected,
                "{path} with {cred:?}"
            );
            let error: Value = response.json().await.unwrap();
            assert!(error["error"].is_string(), "{path} with {cred:?}: {error}");
        }
        assert_eq!(
            app.journal_rows().await,
            stored,
            "{path}: nothing refused was stored"
        );
        let response = send(*accepted).await.unwrap();
        assert_eq!(
            response.status().as_u16(),
            *status,
            "{path} with {accepted:?}"
        );
        if path.starts_with("/webhook/") {
            stored += i64::from(response.status().is_success());
        }
    }
    // The two accepted webhooks, and nothing else.
    assert_eq!(app.journal_rows().await, 2);
    app.stop().await;
}

/// Every kind of text an attacker would put in a label, in one value.
const HOSTILE: &str = "x; touch /tmp/pwned && $(touch /tmp/pwned) `touch /tmp/pwned` \
    'single' \"double\" ../../etc/passwd\nsecond line | rm -rf / ; DROP TABLE journal; -- \\ $HOME *";

fn probe_catalog(dir: &Path, allow: &str) -> (PathBuf, PathBuf) {
    catalog_dir(
        dir,
        "routes:\n  - matchers: ['alertname=\"InjectionProbe\"']\n    responder: probe\n",
        &[(
            "probe",
            &format!(
                r#"
name: probe
target: "{{{{ alert.labels.container }}}}"
allow_targets: ['{allow}']
steps:
  - id: echo
    action: docker_exec
    read_only: true
    container: "{{{{ target }}}}"
    argv: ["printf", "%s", "{{{{ alert.labels.note }}}}"]
  - id: tmp
    action: docker_exec
    read_only: true
    container: "{{{{ target }}}}"
    argv: ["ls", "-a", "/tmp"]
"#
            ),
        )],
    )
}

fn probe(container: &str, note: &str, fingerprint: &str) -> Value {
    let mut body = am_alert(
        "firing",
        "InjectionProbe",
        container,
        fingerprint,
        "2026-11-27T05:00:00Z",
    );
    body["alerts"][0]["labels"]["note"] = json!(note);
    body
}

fn step<'a>(detail: &'a Value, id: &str) -> &'a Value {
    detail["runs"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step_id"] == id)
        .unwrap_or_else(|| panic!("no step {id}: {detail:#}"))
}

#[tokio::test]
async fn a_hostile_label_reaches_exec_as_one_argument_and_no_shell_runs_it() {
    let c = TestContainer::idle("inject");
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(
        dir.path(),
        None,
        Options {
            catalog: Some(probe_catalog(dir.path(), "k2-test-inject-.*")),
            no_slack: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        app.post_alertmanager(&probe(c.name(), HOSTILE, "a77ac0000000101"))
            .await
            .status(),
        200
    );
    let detail = app.wait_for_finished_run(c.name(), 1).await;
    let echo = step(&detail, "echo");
    assert_eq!(echo["state"], "succeeded", "{echo:#}");
    assert_eq!(
        echo["outputs"]["stdout"],
        json!(HOSTILE),
        "printf got the label as one argument, byte for byte"
    );
    let tmp = step(&detail, "tmp");
    assert!(
        !tmp["outputs"]["stdout"].as_str().unwrap().contains("pwned"),
        "{tmp:#}"
    );
    assert_eq!(
        c.exec(&["sh", "-c", "ls /tmp | grep -c pwned || true"])
            .trim(),
        "0"
    );
    // The SQL in the label was a string in a parameterised insert: the journal still stands.
    assert_eq!(app.journal_rows().await, 1);
    app.stop().await;
}

#[tokio::test]
async fn targets_outside_the_allow_list_or_docker_names_are_never_touched() {
    let c = TestContainer::idle("victim");
    let started = c.started_at();
    let dir = tempfile::tempdir().unwrap();
    // `k2-.*` is the loose pattern the shipped playbooks use: it permits every string below
    // that starts with k2-, so the name grammar is what stops them.
    let app = TestApp::spawn(
        dir.path(),
        None,
        Options {
            catalog: Some(probe_catalog(dir.path(), "k2-.*")),
            no_slack: true,
            ..Default::default()
        },
    )
    .await;
    let hostile_targets = [
        format!("k2-x; docker restart {}", c.name()),
        "k2-x; touch /tmp/pwned".to_owned(),
        "k2-$(touch /tmp/pwned)".to_owned(),
        "k2-`touch /tmp/pwned`".to_owned(),
        format!("k2-x/../{}", c.name()),
        format!("k2-x/../../containers/{}/restart?t=0", c.name()),
        format!("{}\nk2-y", c.name()),
        format!("k2-x' OR name='{}", c.name()),
    ];
    for (i, target) in hostile_targets.iter().enumerate() {
        let fp = format!("a77ac00000002{i:02}");
        assert_eq!(
            app.post_alertmanager(&probe(target, "hi", &fp))
                .await
                .status(),
            200
        );
    }
    // And a plain name outside the allow-list: refused before any run.
    let outside = probe("web-frontend", "hi", "a77ac0000000299");
    assert_eq!(app.post_alertmanager(&outside).await.status(), 200);
    let mut refused_names = 0;
    let mut refused_targets = 0;
    for _ in 0..300 {
        let incidents = app.incidents().await;
        refused_names = 0;
        refused_targets = 0;
        for incident in &incidents {
            let detail = app
                .get_json(&format!("/api/incidents/{}", incident["id"]))
                .await;
            let text = detail.to_string();
            refused_names +=
                usize::from(text.contains("is not a Docker container name; not touched"));
            refused_targets += usize::from(text.contains("outside probe's allow-list"));
        }
        if refused_names + refused_targets == hostile_targets.len() + 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // `.` does not match a newline, so the name with one is refused by the allow-list itself.
    assert_eq!(
        (refused_names, refused_targets),
        (hostile_targets.len() - 1, 2)
    );
    assert_eq!(
        c.started_at(),
        started,
        "the real container was never restarted"
    );
    assert_eq!(
        c.exec(&["sh", "-c", "ls /tmp | grep -c pwned || true"])
            .trim(),
        "0"
    );
    app.stop().await;
}
