use super::*;
use crate::alert::{Labels, Source, Status};
use reqwest::header::HeaderValue;

fn config() -> PagerDutyConfig {
    PagerDutyConfig {
        api_url: "https://api.pagerduty.example/".into(),
        api_token: Some(SecretString::from("u+rest-token-123")),
        from: Some("responder@example.com".into()),
        events_url: "https://events.pagerduty.example".into(),
        routing_key: Some(SecretString::from("R0UT1NGKEY0000000000000000000000")),
    }
}

fn alert() -> Alert {
    let mut labels = Labels::new();
    labels.insert("alertname".into(), "HighMemoryUsage".into());
    labels.insert("severity".into(), "warning".into());
    Alert {
        source: Source::Alertmanager,
        fingerprint: "f00d".into(),
        status: Status::Firing,
        labels,
        annotations: Labels::new(),
        starts_at: time::OffsetDateTime::UNIX_EPOCH,
        ends_at: None,
        generator_url: None,
    }
}

fn body(request: &reqwest::Request) -> Value {
    let bytes = request.body().and_then(|b| b.as_bytes()).unwrap();
    serde_json::from_slice(bytes).unwrap()
}

#[test]
fn a_note_request_carries_the_rest_headers_and_the_note() {
    let client = PagerDutyClient::new(config()).unwrap();
    let request = client.note_request("Q1K2MEMX7A", "Restarted k2-x").unwrap();
    assert_eq!(request.method(), reqwest::Method::POST);
    assert_eq!(
        request.url().as_str(),
        "https://api.pagerduty.example/incidents/Q1K2MEMX7A/notes"
    );
    let h = request.headers();
    assert_eq!(h[AUTHORIZATION], "Token token=u+rest-token-123");
    assert_eq!(h["from"], "responder@example.com");
    assert_eq!(h[ACCEPT], REST_ACCEPT);
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(
        body(&request),
        json!({"note": {"content": "Restarted k2-x"}})
    );
}

#[test]
fn an_incident_id_cannot_change_the_path() {
    let client = PagerDutyClient::new(config()).unwrap();
    let request = client.note_request("../users/P1?x=1", "n").unwrap();
    assert_eq!(
        request.url().path(),
        "/incidents/..%2Fusers%2FP1%3Fx=1/notes"
    );
}

#[test]
fn an_event_request_adds_the_routing_key_and_no_auth_header() {
    let client = PagerDutyClient::new(config()).unwrap();
    let event = trigger_event(7, &alert(), "k2-x", "budget exhausted", Priority::P1);
    let request = client.event_request(&event).unwrap();
    assert_eq!(
        request.url().as_str(),
        "https://events.pagerduty.example/v2/enqueue"
    );
    assert!(request.headers().get(AUTHORIZATION).is_none());
    let sent = body(&request);
    assert_eq!(sent["routing_key"], "R0UT1NGKEY0000000000000000000000");
    assert_eq!(sent["event_action"], "trigger");
    assert_eq!(sent["dedup_key"], "alert-responder/f00d/7");
    assert_eq!(sent["payload"]["custom_details"]["priority"], "P1");
    assert_eq!(sent["payload"]["severity"], "warning");
    assert_eq!(sent["payload"]["source"], "k2-x");
    assert_eq!(
        sent["payload"]["summary"],
        "HighMemoryUsage on k2-x: budget exhausted"
    );
    assert!(
        !event.to_string().contains("R0UT1NG"),
        "the stored event has no key"
    );
    let resolve = resolve_event(7, &alert());
    assert_eq!(resolve["dedup_key"], sent["dedup_key"]);
    assert_eq!(resolve["event_action"], "resolve");
}

#[test]
fn outputs_without_their_settings_are_off_and_refuse() {
    let mut c = config();
    c.from = None;
    c.routing_key = None;
    assert!(!c.notes_on() && !c.events_on());
    let client = PagerDutyClient::new(c).unwrap();
    assert!(matches!(
        client.note_request("Q1", "n"),
        Err(PagerDutyError::Rejected(_))
    ));
    assert!(matches!(
        client.event_request(&json!({})),
        Err(PagerDutyError::Rejected(_))
    ));
}

#[test]
fn answers_are_classified_for_retry() {
    let none = HeaderMap::new();
    let mut after = HeaderMap::new();
    after.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("7"));
    let cases = [
        (201, &none, Ok(())),
        (202, &none, Ok(())),
        (
            429,
            &after,
            Err(PagerDutyError::RateLimited {
                retry_after: Some(Duration::from_secs(7)),
            }),
        ),
        (
            429,
            &none,
            Err(PagerDutyError::RateLimited { retry_after: None }),
        ),
        (
            500,
            &none,
            Err(PagerDutyError::Unavailable(
                "HTTP 500 Internal Server Error".into(),
            )),
        ),
        (
            503,
            &none,
            Err(PagerDutyError::Unavailable(
                "HTTP 503 Service Unavailable".into(),
            )),
        ),
    ];
    for (status, headers, expected) in cases {
        let status = StatusCode::from_u16(status).unwrap();
        assert_eq!(classify(status, headers, ""), expected, "{status}");
    }
    for status in [400, 401, 403, 404] {
        let status = StatusCode::from_u16(status).unwrap();
        assert!(
            matches!(
                classify(status, &none, "{\"error\":\"x\"}"),
                Err(PagerDutyError::Rejected(m)) if m.contains("\"error\"")
            ),
            "{status}"
        );
    }
}

#[test]
fn unknown_severities_page_and_long_keys_are_cut() {
    let mut a = alert();
    a.labels.insert("severity".into(), "page".into());
    a.fingerprint = "x".repeat(400);
    let event = trigger_event(1, &a, "t", "r", Priority::P0);
    assert_eq!(event["payload"]["severity"], "critical");
    assert_eq!(event["dedup_key"].as_str().unwrap().len(), 255);
}
