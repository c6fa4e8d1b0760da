//! The PagerDuty Webhooks V3 contract: signatures (with rotation), status codes, redeliveries,
//! triggered → incident → resolved, event types that are not recorded acknowledged anyway.

use std::time::Duration;

use crate::support::app::{Options, TestApp};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

pub(crate) const SECRET: &str = "pd-subscription-secret-5b9e";
const OLD_SECRET: &str = "pd-rotated-out-secret-0a11";

/// The app with a PagerDuty secret (or none), and PagerDuty-shaped requests.
struct PdApp {
    app: TestApp,
}

impl PdApp {
    async fn spawn(dir: &std::path::Path, secret: Option<&str>) -> Self {
        let options = Options {
            pagerduty_webhook_secret: secret.map(str::to_owned),
            ..Default::default()
        };
        Self {
            app: TestApp::spawn(dir, None, options).await,
        }
    }

    async fn post(&self, body: &[u8], signature: Option<&str>, webhook_id: &str) -> (u16, Value) {
        let mut request = self
            .app
            .client
            .post(format!("{}/webhook/pagerduty", self.app.address))
            .header("content-type", "application/json")
            .header("user-agent", "PagerDuty-Webhook/V3.0")
            .header("x-webhook-id", webhook_id)
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header("x-pagerduty-signature", signature);
        }
        let response = request.send().await.expect("the app answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post_signed(&self, body: &[u8], webhook_id: &str) -> (u16, Value) {
        self.post(
            body,
            Some(&format!("v1={}", sign(SECRET, body))),
            webhook_id,
        )
        .await
    }

    async fn get_json(&self, path: &str) -> Value {
        self.app.get_json(path).await
    }

    async fn incidents(&self) -> Vec<Value> {
        self.app.incidents().await
    }

    async fn journal_rows(&self) -> i64 {
        self.app.journal_rows().await
    }

    async fn stop(self) {
        self.app.stop().await;
    }
}

pub(crate) fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A V3 event; the title's container `web-frontend` is outside the shipped allow-list, so the
/// incident is recorded with a refusal and Docker is never needed.
fn event(event_type: &str, incident_id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({ "event": {
        "id": format!("evt-{event_type}-{incident_id}"),
        "event_type": event_type,
        "resource_type": "incident",
        "occurred_at": "2026-11-27T05:10:00.250Z",
        "agent": null,
        "client": null,
        "data": {
            "id": incident_id,
            "type": "incident",
            "html_url": format!("https://k2.pagerduty.com/incidents/{incident_id}"),
            "number": 77,
            "status": "triggered",
            "created_at": "2026-11-27T05:00:00Z",
            "title": "High Memory Usage: web-frontend",
            "service": { "id": "PSVC1", "type": "service_reference", "summary": "Web" },
            "priority": { "id": "PPRI1", "type": "priority_reference", "summary": "P3" },
            "urgency": "high"
        }
    }}))
    .unwrap()
}

async fn wait_for<F: Fn(&Value) -> bool>(app: &PdApp, what: &str, done: F) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        if let Some(incident) = app.incidents().await.first() {
            last = app
                .get_json(&format!("/api/incidents/{}", incident["id"]))
                .await;
            if done(&last) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: {last:#}");
}

#[tokio::test]
async fn a_signed_trigger_is_recorded_once_and_its_resolve_closes_the_incident() {
    let dir = tempfile::tempdir().unwrap();
    let app = PdApp::spawn(dir.path(), Some(SECRET)).await;
    let triggered = event("incident.triggered", "QPDTRIG001");

    let (status, body) = app.post_signed(&triggered, "wh-1").await;
    assert_eq!((status, body["new"].clone()), (202, json!(1)), "{body}");
    assert_eq!(app.journal_rows().await, 1, "durable at ack time");

    // PagerDuty redelivers with the same X-Webhook-Id: acknowledged, nothing written.
    let (status, body) = app.post_signed(&triggered, "wh-1").await;
    assert_eq!(
        (status, body["duplicates"].clone()),
        (202, json!(1)),
        "{body}"
    );
    assert_eq!(app.journal_rows().await, 1);

    let detail = wait_for(&app, "a target_refused decision", |d| {
        d["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["kind"] == "target_refused")
    })
    .await;
    assert_eq!(app.incidents().await.len(), 1);
    assert_eq!(detail["incident"]["target"], "web-frontend", "{detail:#}");
    assert!(
        detail["runs"].as_array().unwrap().is_empty(),
        "never touched"
    );
    let alert = detail.to_string();
    assert!(
        alert.contains("HighMemoryUsage") && alert.contains("QPDTRIG001"),
        "{detail:#}"
    );

    let (status, _) = app
        .post_signed(&event("incident.resolved", "QPDTRIG001"), "wh-2")
        .await;
    assert_eq!(status, 202);
    assert_eq!(app.journal_rows().await, 2);
    wait_for(&app, "the incident resolved", |d| {
        d["incident"]["status"] == "resolved"
    })
    .await;
    assert_eq!(app.incidents().await.len(), 1, "the same incident resolved");
    app.stop().await;
}

#[tokio::test]
async fn signatures_are_required_and_any_v1_entry_may_match() {
    let dir = tempfile::tempdir().unwrap();
    let app = PdApp::spawn(dir.path(), Some(SECRET)).await;
    let body = event("incident.triggered", "QPDSIG0001");
    let good = sign(SECRET, &body);
    let old = sign(OLD_SECRET, &body);
    let forged: Vec<(Option<String>, &str)> = vec![
        (None, "missing X-PagerDuty-Signature"),
        (Some(format!("v1={old}")), "does not match"),
        (
            Some(format!("v1={}", sign(SECRET, b"other body"))),
            "does not match",
        ),
        (Some(good.clone()), "no v1= signature"),
    ];
    for (signature, reason) in forged {
        let (status, json) = app.post(&body, signature.as_deref(), "wh-forged").await;
        assert_eq!(status, 403, "{signature:?}");
        let error = json["error"].as_str().unwrap();
        assert!(error.contains(reason) && !error.contains('\n'), "{error}");
    }
    assert_eq!(app.journal_rows().await, 0, "nothing forged was stored");

    // During a secret rotation PagerDuty sends both signatures on one line.
    let rotated = format!("v1={old},v1={good}");
    let (status, _) = app.post(&body, Some(&rotated), "wh-rotated").await;
    assert_eq!(status, 202);
    assert_eq!(app.journal_rows().await, 1);

    // Malformed JSON with a valid signature is a 400, not a 403.
    let (status, json) = app.post_signed(b"{not json", "wh-bad").await;
    assert_eq!(status, 400);
    assert!(json["error"]
        .as_str()
        .unwrap()
        .contains("not a PagerDuty V3 webhook"));
    app.stop().await;
}

#[tokio::test]
async fn other_event_types_are_acknowledged_and_not_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let app = PdApp::spawn(dir.path(), Some(SECRET)).await;
    for event_type in ["incident.delegated", "incident.hologram.projected"] {
        let (status, json) = app
            .post_signed(&event(event_type, "QPDOTHER01"), "wh-other")
            .await;
        assert_eq!(status, 202, "{event_type}");
        assert_eq!(json["status"], "ignored", "{json}");
        assert_eq!(json["event_type"], event_type);
    }
    assert_eq!(app.journal_rows().await, 0);
    assert!(app.incidents().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn without_the_secret_the_endpoint_answers_503_and_accepts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let app = PdApp::spawn(dir.path(), None).await;
    let body = event("incident.triggered", "QPDNOSEC01");
    for signature in [None, Some(format!("v1={}", sign(SECRET, &body)))] {
        let (status, json) = app.post(&body, signature.as_deref(), "wh-x").await;
        assert_eq!(status, 503, "{signature:?}");
        let error = json["error"].as_str().unwrap();
        assert!(
            error.contains("PAGERDUTY_WEBHOOK_SECRET is not configured") && !error.contains('\n'),
            "{error}"
        );
    }
    assert_eq!(app.journal_rows().await, 0);
    app.stop().await;
}
