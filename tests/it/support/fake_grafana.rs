//! A protocol-faithful fake of Grafana's annotations API, served by axum on `127.0.0.1`, with
//! scriptable faults (429 with or without `Retry-After`, 500) and a record of the annotations.
//!
//! Faithful where the client's behaviour depends on it:
//! - `Authorization: Bearer <service account token>`, else 401 `{"message":"invalid API key"}`.
//! - `POST /api/annotations` takes `{"dashboardUID"?, "panelId"?, "time"?, "timeEnd"?, "tags"?,
//!   "text"}`: times in epoch milliseconds, tags strings, text required (400 otherwise), a
//!   dashboard it knows (404 `Dashboard not found` otherwise); answers
//!   `{"id": N, "message": "Annotation added"}`.
//! - `PATCH /api/annotations/{id}` updates the fields given (tags replaced); 404 for an unknown
//!   annotation; answers `{"message": "Annotation patched"}`.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

/// The service account token the fake accepts.
pub const GF_TOKEN: &str = "glsa_fakeServiceAccountToken_0123456789";
/// The one dashboard the fake knows.
pub const GF_DASHBOARD: &str = "k2-overview";

/// A scripted answer to the next request, before any check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429, with `Retry-After: n` when given.
    RateLimited(Option<u64>),
    /// 500.
    ServerError,
}

#[derive(Debug, Default)]
struct GfState {
    faults: VecDeque<Fault>,
    annotations: BTreeMap<i64, Value>,
    next_id: i64,
    requests_seen: usize,
}

fn lock(state: &Mutex<GfState>) -> MutexGuard<'_, GfState> {
    // A panicking test thread must not turn every later assertion into a poison error.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The running fake; the server stops when this is dropped.
#[derive(Debug)]
pub struct FakeGrafana {
    state: Arc<Mutex<GfState>>,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGrafana {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeGrafana {
    /// Starts the fake on `127.0.0.1:0`.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// Starts the fake on `addr` (a port the app was given while Grafana was down).
    pub async fn start_on(addr: SocketAddr) -> Self {
        let state = Arc::new(Mutex::new(GfState {
            next_id: 1,
            ..GfState::default()
        }));
        let app = Router::new()
            .route("/api/annotations", post(create))
            .route("/api/annotations/{id}", patch(update))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind fake grafana");
        let addr = listener.local_addr().expect("fake grafana addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            state,
            addr,
            server,
        }
    }

    /// The base URL (`GRAFANA_URL`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers the next requests with these faults, in order.
    pub fn script(&self, faults: &[Fault]) {
        lock(&self.state).faults.extend(faults.iter().copied());
    }

    /// The annotations as stored, each with its `id`, in creation order.
    pub fn annotations(&self) -> Vec<Value> {
        lock(&self.state).annotations.values().cloned().collect()
    }

    /// Every request received, refused ones included.
    pub fn requests_seen(&self) -> usize {
        lock(&self.state).requests_seen
    }

    /// Polls (bounded) until `done` holds for the annotations; returns whether it did.
    pub async fn wait_for(&self, done: impl Fn(&[Value]) -> bool, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if done(&self.annotations()) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "message": text }))).into_response()
}

/// Counts the request, then answers a scripted fault or a refused token, if any.
fn gate(state: &Mutex<GfState>, headers: &HeaderMap) -> Option<Response> {
    let mut st = lock(state);
    st.requests_seen += 1;
    if let Some(fault) = st.faults.pop_front() {
        return Some(match fault {
            Fault::RateLimited(after) => {
                let mut response = message(StatusCode::TOO_MANY_REQUESTS, "Too many requests");
                if let Some(secs) = after {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, secs.to_string().parse().unwrap());
                }
                response
            }
            Fault::ServerError => message(StatusCode::INTERNAL_SERVER_ERROR, "Internal error"),
        });
    }
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    (auth != Some(&format!("Bearer {GF_TOKEN}")))
        .then(|| message(StatusCode::UNAUTHORIZED, "invalid API key"))
}

/// The fields Grafana would take from `body`, or the message of the 400 it would answer.
fn fields(body: &[u8], text_required: bool) -> Result<Map<String, Value>, String> {
    let bad = |why: &str| why.to_owned();
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(bad("bad request data"));
    };
    for key in ["time", "timeEnd", "panelId"] {
        if fields.get(key).is_some_and(|v| !v.is_i64()) {
            return Err(bad(&format!("bad request data: {key}")));
        }
    }
    let tags_ok = fields.get("tags").is_none_or(|t| {
        t.as_array()
            .is_some_and(|tags| tags.iter().all(Value::is_string))
    });
    if !tags_ok {
        return Err(bad("bad request data: tags"));
    }
    let text = fields.get("text").and_then(Value::as_str);
    if text.is_some_and(str::is_empty) || (text_required && text.is_none()) {
        return Err(bad("Failed to save annotation: text is required"));
    }
    Ok(fields)
}

async fn create(
    State(state): State<Arc<Mutex<GfState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(response) = gate(&state, &headers) {
        return response;
    }
    let mut fields = match fields(&body, true) {
        Ok(fields) => fields,
        Err(why) => return message(StatusCode::BAD_REQUEST, &why),
    };
    if fields
        .get("dashboardUID")
        .is_some_and(|uid| uid != GF_DASHBOARD)
    {
        return message(StatusCode::NOT_FOUND, "Dashboard not found");
    }
    let mut st = lock(&state);
    let id = st.next_id;
    st.next_id += 1;
    fields.insert("id".into(), id.into());
    st.annotations.insert(id, Value::Object(fields));
    Json(json!({ "id": id, "message": "Annotation added" })).into_response()
}

async fn update(
    State(state): State<Arc<Mutex<GfState>>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(response) = gate(&state, &headers) {
        return response;
    }
    let fields = match fields(&body, false) {
        Ok(fields) => fields,
        Err(why) => return message(StatusCode::BAD_REQUEST, &why),
    };
    let mut st = lock(&state);
    let Some(Value::Object(stored)) = st.annotations.get_mut(&id) else {
        return message(StatusCode::NOT_FOUND, "Could not find annotation to update");
    };
    stored.extend(fields);
    message(StatusCode::OK, "Annotation patched")
}
