//! A protocol-faithful fake of the two PagerDuty APIs the app calls, served by axum on
//! `127.0.0.1:0`, with scriptable faults (429 with or without `Retry-After`, 500) and a record
//! of every accepted call.
//!
//! Faithful where the client's behaviour depends on it:
//! - REST `POST /incidents/{id}/notes`: `Authorization: Token token=…` (401 otherwise), the
//!   `From` header (400 without it), `Accept: application/vnd.pagerduty+json;version=2`, a body
//!   `{"note":{"content":…}}` (400 otherwise); 201 with the created note.
//! - REST `GET /incidents/{id}/alerts`: the same token and `Accept` checks; 200 with the
//!   incident's one alert, whose `body.details` a test sets, or 404 for an unknown incident.
//! - Events `POST /v2/enqueue`: the routing key in the body, `event_action` trigger /
//!   acknowledge / resolve, a trigger's `payload` with summary, source and a known severity,
//!   a `dedup_key` on acknowledge and resolve; 202 `{"status":"success",…,"dedup_key"}`, or
//!   400 `{"status":"invalid event",…}`.
#![allow(unreachable_pub)] // a test fixture: `pub` is for the sibling test modules

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// The REST API token the fake accepts.
pub const PD_TOKEN: &str = "u+fake-pagerduty-rest-token";
/// The Events API v2 routing key the fake accepts.
pub const PD_ROUTING_KEY: &str = "R0FAKEINTEGRATIONKEY000000000001";
/// The `From` email the tests configure.
pub const PD_FROM: &str = "responder@k2.example";

/// A scripted answer to the next request, before any check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429, with `Retry-After: n` when given.
    RateLimited(Option<u64>),
    /// 500.
    ServerError,
}

/// A note PagerDuty accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The incident id from the path.
    pub incident: String,
    /// The note's content.
    pub content: String,
    /// The `From` header.
    pub from: String,
}

#[derive(Debug, Default)]
struct PdState {
    faults: VecDeque<Fault>,
    notes: Vec<Note>,
    events: Vec<Value>,
    requests_seen: usize,
    alert_details: HashMap<String, Value>,
    lookups: Vec<String>,
}

fn lock(state: &Mutex<PdState>) -> MutexGuard<'_, PdState> {
    // A panicking test thread must not turn every later assertion into a poison error.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The running fake; the server stops when this is dropped.
#[derive(Debug)]
pub struct FakePagerDuty {
    state: Arc<Mutex<PdState>>,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakePagerDuty {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakePagerDuty {
    /// Starts the fake on `127.0.0.1:0`, on the current runtime.
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(PdState::default()));
        let app = Router::new()
            .route("/incidents/{id}/notes", post(create_note))
            .route("/incidents/{id}/alerts", get(list_alerts))
            .route("/v2/enqueue", post(enqueue))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake pagerduty");
        let addr = listener.local_addr().expect("fake pagerduty addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            state,
            addr,
            server,
        }
    }

    /// The base URL of both APIs (`PAGERDUTY_API_URL` and `PAGERDUTY_EVENTS_URL`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers the next requests with these faults, in order.
    pub fn script(&self, faults: &[Fault]) {
        lock(&self.state).faults.extend(faults.iter().copied());
    }

    /// The notes accepted so far.
    pub fn notes(&self) -> Vec<Note> {
        lock(&self.state).notes.clone()
    }

    /// The events accepted so far, as sent (routing key included).
    pub fn events(&self) -> Vec<Value> {
        lock(&self.state).events.clone()
    }

    /// Makes `GET /incidents/{incident}/alerts` answer one alert with these `body.details`.
    pub fn set_alert_details(&self, incident: &str, details: Value) {
        lock(&self.state)
            .alert_details
            .insert(incident.to_owned(), details);
    }

    /// The incidents whose alerts were read with a valid token, in order.
    pub fn lookups(&self) -> Vec<String> {
        lock(&self.state).lookups.clone()
    }

    /// Every request received, refused ones included.
    pub fn requests_seen(&self) -> usize {
        lock(&self.state).requests_seen
    }

    /// Polls (bounded) until `done` holds for (notes, events); returns whether it did.
    pub async fn wait_for(
        &self,
        done: impl Fn(&[Note], &[Value]) -> bool,
        timeout: Duration,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            {
                let st = lock(&self.state);
                if done(&st.notes, &st.events) {
                    return true;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Counts the request and answers a scripted fault, if one is queued.
fn fault(state: &Mutex<PdState>) -> Option<Response> {
    let mut st = lock(state);
    st.requests_seen += 1;
    match st.faults.pop_front()? {
        Fault::RateLimited(after) => {
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({"error": {"message": "Rate Limit Exceeded", "code": 2020}})),
            )
                .into_response();
            if let Some(secs) = after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, secs.to_string().parse().unwrap());
            }
            Some(response)
        }
        Fault::ServerError => Some(
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": {"message": "Internal Server Error"}})),
            )
                .into_response(),
        ),
    }
}

fn rest_error(status: StatusCode, message: &str, code: u32) -> Response {
    (
        status,
        Json(json!({"error": {"message": message, "code": code}})),
    )
        .into_response()
}

async fn create_note(
    State(state): State<Arc<Mutex<PdState>>>,
    Path(incident): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(response) = rest_gate(&state, &headers) {
        return response;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let from = header("from");
    if !from.contains('@') {
        return rest_error(
            StatusCode::BAD_REQUEST,
            "Invalid Input Provided: From header is required",
            2001,
        );
    }
    let content = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["note"]["content"].as_str().map(str::to_owned))
        .filter(|c| !c.is_empty());
    let Some(content) = content else {
        return rest_error(
            StatusCode::BAD_REQUEST,
            "Invalid Input Provided: note.content",
            2001,
        );
    };
    let mut st = lock(&state);
    st.notes.push(Note {
        incident,
        content: content.clone(),
        from: from.to_owned(),
    });
    let id = format!("PNOTE{:03}", st.notes.len());
    (
        StatusCode::CREATED,
        Json(json!({"note": {
            "id": id,
            "user": {"id": "PUSR1", "type": "user_reference", "summary": "Responder"},
            "channel": {"summary": "The PagerDuty API"},
            "content": content,
            "created_at": "2026-11-27T05:00:00Z"
        }})),
    )
        .into_response()
}

/// What a REST call is answered before it is served: a scripted fault, else a refusal of
/// its token or media type; `None` lets it through.
fn rest_gate(state: &Mutex<PdState>, headers: &HeaderMap) -> Option<Response> {
    fault(state).or_else(|| rest_refusal(headers))
}

/// The REST API's token and media type checks: the refusal, if any.
fn rest_refusal(headers: &HeaderMap) -> Option<Response> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    if header("authorization") != format!("Token token={PD_TOKEN}") {
        return Some(rest_error(StatusCode::UNAUTHORIZED, "Unauthorized", 2006));
    }
    (header("accept") != "application/vnd.pagerduty+json;version=2").then(|| {
        rest_error(
            StatusCode::NOT_ACCEPTABLE,
            "Unsupported Accept header",
            2001,
        )
    })
}

async fn list_alerts(
    State(state): State<Arc<Mutex<PdState>>>,
    Path(incident): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = rest_gate(&state, &headers) {
        return response;
    }
    let mut st = lock(&state);
    st.lookups.push(incident.clone());
    let Some(details) = st.alert_details.get(&incident).cloned() else {
        return rest_error(StatusCode::NOT_FOUND, "Not Found", 2100);
    };
    // The shape of PagerDuty's answer, trimmed to what matters here.
    Json(json!({
        "alerts": [{
            "id": "PALERT1", "type": "alert", "status": "triggered",
            "incident": { "id": incident, "type": "incident_reference" },
            "body": { "type": "alert_body", "contexts": [], "details": details,
                      "cef_details": { "details": details } }
        }],
        "limit": 1, "offset": 0, "more": false, "total": null
    }))
    .into_response()
}

fn invalid_event(reason: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"status": "invalid event", "message": "Event object is invalid", "errors": [reason]})),
    )
        .into_response()
}

async fn enqueue(State(state): State<Arc<Mutex<PdState>>>, body: Bytes) -> Response {
    if let Some(response) = fault(&state) {
        return response;
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return invalid_event("Body is not JSON");
    };
    if event["routing_key"] != PD_ROUTING_KEY {
        return invalid_event("Invalid routing key");
    }
    let action = event["event_action"].as_str().unwrap_or("");
    let dedup_key = event["dedup_key"].as_str().map(str::to_owned);
    match action {
        "trigger" => {
            let p = &event["payload"];
            let severity_ok = matches!(
                p["severity"].as_str(),
                Some("critical" | "error" | "warning" | "info")
            );
            if !(p["summary"].is_string() && p["source"].is_string() && severity_ok) {
                return invalid_event("payload needs summary, source and a valid severity");
            }
        }
        "acknowledge" | "resolve" if dedup_key.is_none() => {
            return invalid_event("dedup_key is required");
        }
        "acknowledge" | "resolve" => {}
        _ => return invalid_event("event_action must be trigger, acknowledge or resolve"),
    }
    let mut st = lock(&state);
    let n = st.events.len();
    st.events.push(event);
    let dedup_key = dedup_key.unwrap_or_else(|| format!("generated-{n}"));
    (
        StatusCode::ACCEPTED,
        Json(json!({"status": "success", "message": "Event processed", "dedup_key": dedup_key})),
    )
        .into_response()
}
