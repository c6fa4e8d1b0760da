//! Bad input at the webhook door: oversized, deeply nested, invalid UTF-8, enormous alert
//! lists, megabyte labels and clients too slow to finish. Each gets a clear 4xx or is cut
//! off, the service never crashes or stalls, and every alert it acknowledged is kept.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::app::{am_alert, Options, TestApp, SLACK_TOKEN};
use crate::support::fake_slack::FakeSlack;

/// A webhook of `n` distinct alerts with no route: recorded, never acted on.
fn many_alerts(n: usize) -> Value {
    let alerts: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "status": "firing",
                "labels": {"alertname": "BadInputProbe", "instance": format!("i{i}")},
                "annotations": {},
                "startsAt": "2026-11-27T05:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": format!("{i:016x}"),
            })
        })
        .collect();
    json!({"version": "4", "status": "firing", "receiver": "r", "alerts": alerts})
}

async fn post_raw(app: &TestApp, path: &str, body: Vec<u8>) -> (u16, String) {
    let response = app
        .client
        .post(format!("{}{path}", app.address))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let json: Value = response.json().await.unwrap();
    (status, json["error"].as_str().unwrap_or("").to_owned())
}

#[tokio::test]
async fn nested_invalid_utf8_and_oversized_bodies_get_clear_4xx_on_every_body_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(
        dir.path(),
        None,
        Options {
            body_limit: Some(64 * 1024),
            pagerduty_webhook_secret: Some("pd-secret-bad-input".into()),
            admin_token: Some("admin-bad-input".into()),
            no_slack: true,
            ..Default::default()
        },
    )
    .await;
    // 20,000 levels of nesting: a recursive parser without a limit would blow the stack.
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let nested = format!(r#"{{"version":"4","alerts":[{{"labels":{deep}}}]}}"#);
    let mut invalid_utf8 =
        br#"{"version":"4","alerts":[{"status":"firing","labels":{"a":""#.to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    invalid_utf8
        .extend_from_slice(br#""},"startsAt":"2026-11-27T05:00:00Z","fingerprint":"f1"}]}"#);
    let oversized = many_alerts(1_000).to_string().into_bytes();
    assert!(oversized.len() > 64 * 1024);

    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("nested", nested.clone().into_bytes(), 400, "expected a map"),
        (
            "invalid utf-8",
            invalid_utf8.clone(),
            400,
            "invalid unicode code point",
        ),
        ("oversized", oversized.clone(), 413, "RESPONDER_BODY_LIMIT"),
        ("empty", Vec::new(), 400, "EOF"),
        (
            "not an object",
            b"\"\\u0000\"".to_vec(),
            400,
            "not an Alertmanager v4 payload",
        ),
    ];
    for (what, body, status, reason) in &cases {
        let (got, error) = post_raw(&app, "/webhook/alertmanager", body.clone()).await;
        assert_eq!(got, *status, "{what}: {error}");
        assert!(
            error.contains(reason),
            "{what}: {error:?} should say {reason:?}"
        );
        assert!(!error.contains('\n'), "{what}: one line: {error:?}");
    }
    // Unknown fields are skipped without recursion, however deep: accepted, nothing stored.
    let skipped = format!(r#"{{"version":"4","alerts":[],"extra":{deep}}}"#);
    let (status, _) = post_raw(&app, "/webhook/alertmanager", skipped.into_bytes()).await;
    assert_eq!(status, 200);
    // PagerDuty checks the signature over the raw bytes first: unsigned junk is a 403 and
    // never reaches the parser. Signed, the nesting meets serde_json's recursion limit.
    let pd_nested = format!(r#"{{"event":{{"event_type":"incident.triggered","data":{deep}}}}}"#);
    let (status, _) = post_raw(&app, "/webhook/pagerduty", pd_nested.clone().into_bytes()).await;
    assert_eq!(status, 403);
    let response = app
        .client
        .post(format!("{}/webhook/pagerduty", app.address))
        .header(
            "x-pagerduty-signature",
            format!(
                "v1={}",
                crate::pagerduty::sign("pd-secret-bad-input", pd_nested.as_bytes())
            ),
        )
        .body(pd_nested)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let json: Value = response.json().await.unwrap();
    assert!(
        json["error"].as_str().unwrap().contains("recursion limit"),
        "{json}"
    );
    // An oversized body is refused before anything is read: once the headers carry a
    // signature (without one, the 403 comes first).
    let response = app
        .client
        .post(format!("{}/webhook/pagerduty", app.address))
        .header("x-pagerduty-signature", "v1=00")
        .body(oversized)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let error = response.json::<Value>().await.unwrap()["error"].to_string();
    assert_eq!(
        (status, error.contains("RESPONDER_BODY_LIMIT")),
        (413, true),
        "{error}"
    );
    // The approvals endpoint parses JSON too.
    let nested_decision = format!(
        r#"{{"decision":{}{}}}"#,
        "[".repeat(20_000),
        "]".repeat(20_000)
    );
    let response = app
        .client
        .post(format!("{}/api/incidents/1/approvals", app.address))
        .bearer_auth("admin-bad-input")
        .header("content-type", "application/json")
        .body(nested_decision)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    assert_eq!(app.journal_rows().await, 0, "nothing half-accepted");
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "still serving");
    app.stop().await;
}

#[tokio::test]
async fn ten_thousand_alerts_in_one_webhook_are_all_kept_and_one_bad_alert_refuses_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(
        dir.path(),
        None,
        Options {
            no_slack: true,
            ..Default::default()
        },
    )
    .await;
    // One malformed alert at the very end: the whole webhook is refused, none is stored, and
    // Alertmanager (which drops 4xx) is told why.
    let mut spoiled = many_alerts(10_000);
    spoiled["alerts"][9_999]["fingerprint"] = json!("");
    let body = spoiled.to_string().into_bytes();
    assert!(body.len() < 4 * 1024 * 1024, "fits the default body limit");
    let (status, error) = post_raw(&app, "/webhook/alertmanager", body).await;
    assert_eq!(
        (status, error.as_str()),
        (400, "alert without a fingerprint")
    );
    assert_eq!(app.journal_rows().await, 0, "all or nothing");

    let response = app.post_alertmanager(&many_alerts(10_000)).await;
    assert_eq!(response.status(), 200);
    let receipt: Value = response.json().await.unwrap();
    assert_eq!(
        (receipt["alerts"].clone(), receipt["new"].clone()),
        (json!(10_000), json!(10_000))
    );
    assert_eq!(
        app.journal_rows().await,
        10_000,
        "every acknowledged alert is durable"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_megabyte_label_value_is_kept_whole_and_its_slack_messages_stay_within_slack_limits() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let app = TestApp::spawn(dir.path(), Some(&slack), Options::default()).await;
    // A container label of a megabyte that the loose allow-list `k2-.*` permits: the Docker
    // steps refuse it as no container name, and every report still fits Slack.
    let huge = format!("k2-{}", "x".repeat(1024 * 1024));
    let body = am_alert(
        "firing",
        "HighMemoryUsage",
        &huge,
        "d000000000000001",
        "2026-11-27T05:00:00Z",
    );
    assert_eq!(app.post_alertmanager(&body).await.status(), 200);
    assert!(
        slack
            .wait_for(
                |m| m.iter().any(|c| c
                    .text
                    .contains("is not a Docker container name; not touched")),
                Duration::from_secs(30)
            )
            .await,
        "the refusal reaches Slack: {} requests seen, accepted: {:?}",
        slack.requests_seen(),
        slack
            .calls()
            .iter()
            .map(|c| c.text.chars().take(300).collect::<String>())
            .collect::<Vec<_>>()
    );
    assert!(slack
        .calls()
        .iter()
        .any(|c| c.text.contains("characters cut)")));
    for call in slack.calls() {
        assert!(
            call.text.chars().count() <= 40_000,
            "{} chars",
            call.text.len()
        );
    }
    let incidents = app.incidents().await;
    let detail = app
        .get_json(&format!("/api/incidents/{}", incidents[0]["id"]))
        .await;
    assert_eq!(
        detail["alerts"][0]["labels"]["container"],
        json!(huge),
        "kept whole in the record"
    );
    app.stop().await;
}

/// Reads until the server closes the connection; returns what it sent.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    // Bounded so a server that never closes fails the test instead of hanging it.
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes a slow client's connection")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn clients_that_never_finish_headers_or_body_are_cut_off_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(
        dir.path(),
        None,
        Options {
            request_timeout: Some("1s".into()),
            no_slack: true,
            ..Default::default()
        },
    )
    .await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut slow_headers = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream
            .write_all(b"POST /webhook/alertmanager HTTP/1.1\r\nHost: x\r\nContent-Le")
            .await
            .unwrap();
        slow_headers.push(stream);
    }
    let mut slow_body = TcpStream::connect(&addr).await.unwrap();
    slow_body
        .write_all(b"POST /webhook/alertmanager HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"version\":")
        .await
        .unwrap();
    let mut idle = TcpStream::connect(&addr).await.unwrap();

    // Others are served meanwhile.
    let body = many_alerts(3);
    assert_eq!(app.post_alertmanager(&body).await.status(), 200);

    for stream in &mut slow_headers {
        let answer = read_until_closed(stream).await;
        assert!(!answer.contains("200 OK"), "{answer}");
    }
    let answer = read_until_closed(&mut slow_body).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    read_until_closed(&mut idle).await;

    // A fresh connection: the server also closes keep-alive connections left idle past the
    // timeout, and a pooled one could be reused just as it closes.
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let response = fresh
        .post(format!("{}/webhook/alertmanager", app.address))
        .json(&many_alerts(4))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.journal_rows().await,
        4,
        "the 3 and 1 new of the 4: all kept"
    );
    app.stop().await;
}
