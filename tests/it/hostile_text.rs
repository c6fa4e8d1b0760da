//! Hostile alert text against the real binary: alert names, labels and targets carrying
//! Slack's control syntax (`<!channel>`, `<https://evil.example|Approve>`) reach Slack only
//! escaped, in thread messages and in every slash command's reply and follow-up; control
//! characters in command text reach the log only escaped.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::faults::{database_url, query_i64, serve_command};
use crate::support::app::{catalog_dir, SLACK_TOKEN};
use crate::support::binary::{free_port, http, Child};
use crate::support::fake_slack::FakeSlack;
use crate::support::slack::{command_body, now, signature, SIGNING_SECRET};

/// The probe's alert name: a channel ping and a link dressed as a button.
const HOSTILE: &str = "Probe<!channel><https://evil.example|Approve>";

fn catalog(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    catalog_dir(
        dir,
        "routes:\n  - matchers: ['alertname=~\"Probe.*\"']\n    responder: echo\n",
        &[(
            "echo",
            r#"
name: echo
target: "{{ alert.labels.container }}"
allow_targets: ['k2-test-.*']
steps:
  - id: say
    action: report
    text: "Saw {{ alert.labels.alertname }} on {{ target }}: {{ alert.labels.note }}"
"#,
        )],
    )
}

fn alert(name: &str, container: &str, fingerprint: &str) -> Value {
    json!({
        "status": "firing",
        "labels": {"alertname": name, "container": container, "note": "<!everyone> & <@U0BOSS>"},
        "annotations": {"summary": "<https://evil.example|click>"},
        "startsAt": "2026-11-27T05:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": fingerprint,
    })
}

/// Sends `<command> <text>` signed as `user`, with a response URL of its own; returns the
/// reply text.
async fn send(
    base: &str,
    slack: &FakeSlack,
    (command, user): (&str, &'static str),
    id: &str,
    text: &str,
) -> String {
    let body = command_body(command, text, (user, "alice"), &slack.response_url(id));
    let ts = now();
    let response = http()
        .post(format!("{base}/slack/commands"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts.to_string())
        .header("x-slack-signature", signature(SIGNING_SECRET, ts, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{text}");
    let json: Value = response.json().await.unwrap();
    json["text"].as_str().unwrap().to_owned()
}

/// `/responder <text>` as Alice.
async fn slash(base: &str, slack: &FakeSlack, id: &str, text: &str) -> String {
    send(base, slack, ("/responder", "U0ALICE"), id, text).await
}

/// Fails on Slack syntax anywhere in `text`: every `<` and `>` of ours and of the data must
/// arrive as `&lt;` / `&gt;`.
fn assert_inert(what: &str, text: &str) {
    assert!(
        !text.contains('<') && !text.contains('>'),
        "{what} carries live Slack syntax: {text}"
    );
}

#[tokio::test]
async fn hostile_alert_text_reaches_slack_only_escaped_in_messages_and_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let port = free_port();
    let mut cmd = serve_command(dir.path(), port, &catalog(dir.path()));
    cmd.env("SLACK_BOT_TOKEN", SLACK_TOKEN)
        .env("SLACK_API_URL", slack.api_url())
        .env("SLACK_SIGNING_SECRET", SIGNING_SECRET)
        .env("SLACK_RUN_ALLOWED", "U0ALICE")
        .env("SLACK_APPROVE_ALLOWED", "U0ALICE")
        .env("SLACK_MODE_ALLOWED", "U0ALICE")
        .env("SLACK_STATUS_CONTAINERS", "k2-test-hostile-none")
        .env("SLACK_POST_UNROUTED", "true")
        .env("RESPONDER_SHUTDOWN_DRAIN", "0s")
        .env("RUST_LOG", "info");
    let mut server = Child::spawn(cmd, dir.path());
    server.wait_healthy(port).await;
    let base = format!("http://127.0.0.1:{port}");

    // Acted on (a run and its step reply), refused by the allow-list, and unrouted.
    let alerts = [
        alert(HOSTILE, "k2-test-<!here>", "a0000000000000a1"),
        alert(HOSTILE, "web<!channel>", "a0000000000000a2"),
        alert(
            "Other<!channel><https://evil.example|Approve>",
            "k2-x",
            "a0000000000000a3",
        ),
    ];
    let webhook = json!({
        "version": "4", "status": "firing", "receiver": "responder", "groupKey": "{}:{}",
        "alerts": alerts,
    });
    let status = http()
        .post(format!("{base}/webhook/alertmanager"))
        .json(&webhook)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let url = database_url(dir.path());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let settled = query_i64(&url, "SELECT COUNT(*) FROM journal WHERE processed = 1").await
            == 3
            && query_i64(
                &url,
                "SELECT COUNT(*) FROM runs WHERE state IN ('pending', 'running')",
            )
            .await
                == 0
            && query_i64(&url, "SELECT COUNT(*) FROM outbox WHERE state = 'pending'").await == 0;
        if settled {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let commands = [
        "help",
        "incidents",
        "incidents all",
        "status <!channel>",
        "run echo k2-test-<!here>",
        "run echo <https://evil.example|x>",
        "run <!channel> k2-test-a",
        "approve <!channel>",
        "deny 1",
        "mode dry-run <!channel>",
        "mode",
        "<!channel> <https://evil.example|Approve>",
    ];
    let mut replies = Vec::new();
    for (i, text) in commands.iter().enumerate() {
        let reply = slash(&base, &slack, &format!("c{i}"), text).await;
        assert_inert(&format!("the reply to `{text}`"), &reply);
        replies.push(reply);
    }
    let listed = &replies[1];
    assert!(
        listed.contains("Probe&lt;!channel&gt;&lt;https://evil.example|Approve&gt;"),
        "the hostile name is listed, escaped: {listed}"
    );
    // Follow-ups through response_url (status and run may answer there), once they came.
    let _ = slack.wait_for_response("c3", Duration::from_secs(10)).await;
    for i in 0..commands.len() {
        for body in slack.responses(&format!("c{i}")) {
            assert_inert(
                "a response_url follow-up",
                body["text"].as_str().unwrap_or(""),
            );
        }
    }

    let calls = slack.calls();
    assert!(
        calls.iter().any(|c| c.text.contains("&lt;!channel&gt;")),
        "the hostile alerts reached Slack: {calls:#?}"
    );
    assert!(calls.len() >= 4, "parents and the step reply: {calls:#?}");
    for call in &calls {
        assert_inert(&format!("{} {}", call.method, call.ts), &call.text);
        if let Some(text) = slack.current_text(&call.ts) {
            assert_inert("a message as it reads now", &text);
        }
    }

    // Control characters in what Slack sends (a command name, a user id) reach the log
    // escaped: no NUL, no forged line, no terminal sequence.
    let other = "/other\u{0}\nINFO forged\u{1b}[2J";
    let reply = send(&base, &slack, (other, "U0ALICE"), "x1", "help").await;
    assert_inert("the reply to another command", &reply);
    let user = "U0\u{0}\nINFO forged\u{1b}[2J";
    send(&base, &slack, ("/responder", user), "x2", "help").await;
    let status = server.terminate().await;
    assert!(status.success());
    let log = server.output();
    assert!(log.contains("Slack request."), "{log}");
    assert!(
        !log.contains('\u{0}') && !log.contains('\u{1b}'),
        "raw control characters in the log"
    );
    assert!(!log.contains("\nINFO forged"), "a forged log line: {log}");
}
