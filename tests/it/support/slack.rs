//! Requests as Slack sends them: slash commands and block_actions clicks, form-encoded and
//! signed with the v0 scheme (HMAC-SHA256 of `v0:{timestamp}:{body}`).

use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::app::TestApp;

/// The signing secret test apps are given.
pub const SIGNING_SECRET: &str = "slack-signing-secret-7d41c0";

/// A Slack user: (ID, name).
pub type User = (&'static str, &'static str);

/// Unix seconds now.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `v0=<hex>` for `body` at `timestamp` under `secret`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("v0={hex}")
}

/// POSTs a form body to `path` with the given timestamp and signature headers.
pub async fn post_raw(
    app: &TestApp,
    path: &str,
    body: String,
    timestamp: i64,
    signature: &str,
) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", timestamp.to_string())
        .header("x-slack-signature", signature)
        .body(body)
        .send()
        .await
        .expect("the app answers")
}

/// POSTs a form body to `path`, signed now with [`SIGNING_SECRET`].
pub async fn post_signed(app: &TestApp, path: &str, body: String) -> reqwest::Response {
    let ts = now();
    let sig = signature(SIGNING_SECRET, ts, &body);
    post_raw(app, path, body, ts, &sig).await
}

/// A slash command body as Slack sends it (`command=/responder&text=…&user_id=…`).
pub fn command_body(command: &str, text: &str, user: User, response_url: &str) -> String {
    static TRIGGER: AtomicU64 = AtomicU64::new(1);
    let trigger = format!("{}.{}.test", now(), TRIGGER.fetch_add(1, Ordering::Relaxed));
    serde_urlencoded::to_string([
        ("token", "deprecated-verification-token"),
        ("team_id", "T0TEST"),
        ("team_domain", "k2"),
        ("channel_id", "C0OPS"),
        ("channel_name", "ops"),
        ("user_id", user.0),
        ("user_name", user.1),
        ("command", command),
        ("text", text),
        ("api_app_id", "A0RESPONDER"),
        ("response_url", response_url),
        ("trigger_id", &trigger),
    ])
    .unwrap()
}

/// Sends `/responder <text>` as `user`, signed; returns the status and the JSON reply.
pub async fn command(app: &TestApp, user: User, text: &str, response_url: &str) -> (u16, Value) {
    let body = command_body("/responder", text, user, response_url);
    let response = post_signed(app, "/slack/commands", body).await;
    let status = response.status().as_u16();
    let json = response.json().await.unwrap_or(Value::Null);
    (status, json)
}

/// The reply text of a successful command.
pub async fn reply(app: &TestApp, user: User, text: &str) -> String {
    let (status, json) = command(app, user, text, "").await;
    assert_eq!(status, 200, "{text}: {json}");
    assert_eq!(json["response_type"], "ephemeral", "{json}");
    json["text"].as_str().unwrap_or_default().to_owned()
}

/// A block_actions payload: `user` clicked the button `action_id` whose value is `value`.
/// Like Slack's, every click has its own `trigger_id` and `action_ts`, so two clicks are two
/// requests, never one request replayed.
pub fn click_payload(user: User, action_id: &str, value: &str, response_url: &str) -> Value {
    static CLICK: AtomicU64 = AtomicU64::new(1);
    let click = CLICK.fetch_add(1, Ordering::Relaxed);
    json!({
        "type": "block_actions",
        "user": {"id": user.0, "username": user.1, "name": user.1, "team_id": "T0TEST"},
        "api_app_id": "A0RESPONDER",
        "token": "deprecated-verification-token",
        "container": {"type": "message", "message_ts": "1764210000.000200", "channel_id": "C0INCIDENTS", "is_ephemeral": false},
        "trigger_id": format!("123.{click}.abc"),
        "team": {"id": "T0TEST", "domain": "k2"},
        "channel": {"id": "C0INCIDENTS", "name": "incidents"},
        "message": {"type": "message", "ts": "1764210000.000200", "text": "Approval needed"},
        "response_url": response_url,
        "actions": [{
            "type": "button",
            "action_id": action_id,
            "block_id": format!("approval-{value}"),
            "text": {"type": "plain_text", "text": "Approve"},
            "value": value,
            "action_ts": format!("1764210100.{click:06}"),
        }],
    })
}

/// POSTs a click to `/slack/interactions`, signed; returns the status.
pub async fn click(app: &TestApp, payload: &Value) -> u16 {
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    post_signed(app, "/slack/interactions", body)
        .await
        .status()
        .as_u16()
}
