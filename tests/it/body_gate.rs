//! The gate before the body: credentials are checked from the headers before a body is read,
//! a declared length over the limit is a 413 at once, the bytes of all bodies in flight stay
//! within `RESPONDER_BODY_BUDGET` (503 beyond it), and malformed ids and query strings are
//! refused after the credential check without being echoed back.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::app::{Options, TestApp};
use crate::support::slack::{now, SIGNING_SECRET};

const TOKEN: &str = "gate-webhook-token-5e1";
const ADMIN: &str = "gate-admin-token-77c";
const LIMIT: usize = 64 * 1024;

async fn app(dir: &std::path::Path, budget: Option<usize>) -> TestApp {
    TestApp::spawn(
        dir,
        None,
        Options {
            webhook_token: Some(TOKEN.into()),
            admin_token: Some(ADMIN.into()),
            pagerduty_webhook_secret: Some("gate-pd-secret".into()),
            slack_signing_secret: Some(SIGNING_SECRET.into()),
            body_limit: Some(LIMIT),
            body_budget: budget,
            // A server that waited for a body never sent would answer 408 after this, and
            // the held bodies of the budget test must not be cut off.
            request_timeout: Some("30s".into()),
            no_slack: true,
            ..Default::default()
        },
    )
    .await
}

/// A POST head declaring `length` body bytes, with `headers` (`Name: value` lines).
fn head(path: &str, headers: &[String], length: usize) -> String {
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n");
    for line in headers {
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head
}

/// Reads the answer's status line and headers (the first bytes are enough).
async fn answer(stream: &mut TcpStream) -> String {
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    // Bounded so a server that never answers fails the test instead of hanging it.
    let read = async {
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed without an answer: {got:?}");
            got.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("an answer");
    String::from_utf8_lossy(&got).into_owned()
}

fn status_of(answer: &str) -> u16 {
    answer
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {answer}"))
}

/// Sends only a head that declares `length` bytes; returns the answer. The body never comes.
async fn head_only(app: &TestApp, path: &str, headers: &[String], length: usize) -> String {
    let mut stream = TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap();
    stream
        .write_all(head(path, headers, length).as_bytes())
        .await
        .unwrap();
    answer(&mut stream).await
}

#[tokio::test]
async fn credentials_and_declared_sizes_are_judged_from_the_headers_before_any_body() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), None).await;
    let fresh = format!("X-Slack-Request-Timestamp: {}", now());
    let stale = format!("X-Slack-Request-Timestamp: {}", now() - 301);
    let signature = "X-Slack-Signature: v0=00".to_owned();
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let admin = format!("Authorization: bearer {ADMIN}");
    let near = LIMIT - 10;
    // (what, path, headers, declared length, status without the body ever being sent)
    let cases: Vec<(&str, &str, Vec<String>, usize, u16)> = vec![
        ("no token", "/webhook/alertmanager", vec![], near, 401),
        (
            "wrong token",
            "/webhook/alertmanager",
            vec!["Authorization: Bearer nope".into()],
            near,
            401,
        ),
        ("no signature", "/webhook/pagerduty", vec![], near, 403),
        (
            "no v1 entry",
            "/webhook/pagerduty",
            vec!["X-PagerDuty-Signature: v0=ab".into()],
            near,
            403,
        ),
        ("no Slack headers", "/slack/commands", vec![], near, 401),
        (
            "no Slack signature",
            "/slack/interactions",
            vec![fresh.clone()],
            near,
            401,
        ),
        (
            "stale Slack timestamp",
            "/slack/commands",
            vec![stale, signature.clone()],
            near,
            401,
        ),
        (
            "no admin token",
            "/api/incidents/1/approvals",
            vec![bearer.clone()],
            near,
            401,
        ),
        (
            "over the limit",
            "/webhook/alertmanager",
            vec![bearer.clone()],
            LIMIT + 1,
            413,
        ),
        (
            "Slack over the limit",
            "/slack/commands",
            vec![fresh, signature],
            LIMIT + 1,
            413,
        ),
        (
            "approval over the limit",
            "/api/incidents/1/approvals",
            vec![admin],
            LIMIT + 1,
            413,
        ),
    ];
    for (what, path, headers, length, expected) in cases {
        let answer = head_only(&app, path, &headers, length).await;
        assert_eq!(status_of(&answer), expected, "{what}: {answer}");
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{what}: the unread body ends the connection: {answer}"
        );
    }
    assert_eq!(app.journal_rows().await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_a_413_on_slack_and_approvals_too() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), None).await;
    let big = "a".repeat(LIMIT + 1);
    let chunked = format!("{:x}\r\n{big}\r\n0\r\n\r\n", big.len());
    let cases = [
        (
            "/slack/commands",
            format!(
                "X-Slack-Request-Timestamp: {}\r\nX-Slack-Signature: v0=00",
                now()
            ),
        ),
        (
            "/api/incidents/1/approvals",
            format!("Authorization: Bearer {ADMIN}\r\nContent-Type: application/json"),
        ),
    ];
    for (path, headers) in cases {
        let mut stream = TcpStream::connect(app.address.trim_start_matches("http://"))
            .await
            .unwrap();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n{headers}\r\n\r\n{chunked}"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let answer = answer(&mut stream).await;
        assert_eq!(status_of(&answer), 413, "{path}: {answer}");
    }
    app.stop().await;
}

#[tokio::test]
async fn bodies_beyond_the_budget_wait_outside_with_a_503_and_the_budget_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), Some(2 * LIMIT)).await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    let bearer = format!("Authorization: Bearer {TOKEN}");
    // Two bodies at the limit, started and left unfinished: the whole budget is held.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        let start = format!(
            "{}{{\"version\":\"4\",",
            head(
                "/webhook/alertmanager",
                std::slice::from_ref(&bearer),
                LIMIT
            )
        );
        stream.write_all(start.as_bytes()).await.unwrap();
        held.push(stream);
    }
    // Whole requests meanwhile: once the two are admitted, each is refused at once.
    let body = "x".repeat(1000);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let busy = loop {
        let response = app
            .client
            .post(format!("{}/webhook/alertmanager", app.address))
            .bearer_auth(TOKEN)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        if response.status() == 503 {
            break response;
        }
        assert_eq!(response.status(), 400, "admitted before the two were");
        assert!(
            std::time::Instant::now() < deadline,
            "never refused: the budget does not hold"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(busy.headers()["retry-after"], "1");
    let error = busy.text().await.unwrap();
    assert!(error.contains("RESPONDER_BODY_BUDGET"), "{error}");
    // Credentials still come first: no token is a 401, not a 503.
    let anonymous = app
        .client
        .post(format!("{}/webhook/alertmanager", app.address))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    // The two finish (malformed: 400); their share of the budget comes back.
    for stream in &mut held {
        let rest = " ".repeat(LIMIT - "{\"version\":\"4\",".len());
        stream.write_all(rest.as_bytes()).await.unwrap();
        let answer = answer(stream).await;
        assert_eq!(status_of(&answer), 400, "{answer}");
    }
    let after = app
        .client
        .post(format!("{}/webhook/alertmanager", app.address))
        .bearer_auth(TOKEN)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        after.status(),
        400,
        "admitted again once the budget is back"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), None).await;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let alerts = app
            .client
            .post(format!("{}/webhook/alertmanager", app.address))
            .header("authorization", format!("{scheme} {TOKEN}"))
            .json(&serde_json::json!({"version": "4", "alerts": []}))
            .send()
            .await
            .unwrap();
        assert_eq!(alerts.status(), 200, "{scheme}");
        let api = app
            .client
            .get(format!("{}/api/incidents", app.address))
            .header("authorization", format!("{scheme} {TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(api.status(), 200, "{scheme}");
    }
    app.stop().await;
}

#[tokio::test]
async fn malformed_ids_and_query_strings_are_refused_after_the_token_and_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), None).await;
    let probe = "zq9probe";
    let cases = [
        ("GET", format!("/api/incidents/{probe}"), TOKEN),
        ("GET", format!("/api/incidents?limit={probe}"), TOKEN),
        ("GET", format!("/api/incidents?open={probe}"), TOKEN),
        ("GET", format!("/api/audit?limit={probe}"), TOKEN),
        ("GET", format!("/incidents/{probe}"), TOKEN),
        ("POST", format!("/api/incidents/{probe}/approvals"), ADMIN),
    ];
    for (method, path, token) in &cases {
        let url = format!("{}{path}", app.address);
        let request = |token: Option<&str>| {
            let mut request = match *method {
                "GET" => app.client.get(&url),
                _ => app
                    .client
                    .post(&url)
                    .json(&serde_json::json!({"decision": "approve"})),
            };
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        let anonymous = request(None).await.unwrap();
        assert_eq!(anonymous.status(), 401, "{method} {path}: the token first");
        let text = anonymous.text().await.unwrap();
        assert!(!text.contains(probe), "{method} {path}: {text}");
        let authorized = request(Some(token)).await.unwrap();
        assert_eq!(authorized.status(), 400, "{method} {path}");
        let text = authorized.text().await.unwrap();
        assert!(!text.contains(probe), "{method} {path} echoed: {text}");
    }
    app.stop().await;
}
