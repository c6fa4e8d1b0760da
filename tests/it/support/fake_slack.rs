//! A protocol-faithful fake of the Slack Web API methods the app uses (`chat.postMessage`,
//! `chat.update` with text and blocks, `usergroups.users.list`, the external file upload flow
//! in `files`) and of `response_url`s, served by axum on `127.0.0.1:0`, with fault knobs (429, 500, 503) and a record
//! of every accepted call.
//!
//! Faithful where the client's behaviour depends on it: errors are HTTP 200 with
//! `{"ok":false,"error":CODE}`, rate limits are HTTP 429 with `Retry-After`, channel names resolve
//! to IDs in answers, and arguments may come as a JSON or form-encoded POST body or in the
//! query string (of a GET or a POST), as Slack's Web API takes them.
#![allow(unreachable_pub)] // a test fixture: `pub` is for the sibling test modules

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

mod files;
pub use files::{LegFault, SharedFile, COMPLETE, GET_URL, UPLOAD};

/// The ID every spelling of the default channel resolves to.
pub const INCIDENTS_ID: &str = "C0INCIDENTS";

/// Slack's limit on `text`; longer messages get `msg_too_long`.
const MAX_TEXT_CHARS: usize = 40_000;

/// One accepted Web API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// `chat.postMessage` or `chat.update`.
    pub method: String,
    /// The channel ID the call resolved to (`#incidents` is recorded as `C0INCIDENTS`).
    pub channel: String,
    /// The message's ts: the new one for a post, the edited one for an update.
    pub ts: String,
    /// The thread the message belongs to (from the post's `thread_ts`).
    pub thread_ts: Option<String>,
    /// The text sent.
    pub text: String,
}

/// Everything the fake knows; exposed read-only through [`FakeSlack`]'s accessors.
#[derive(Debug, Default)]
struct FakeSlackState {
    token: String,
    /// Channel name or ID as a client may send it -> channel ID.
    channels: HashMap<String, String>,
    /// ts -> (channel ID, thread_ts, current text) of every posted message.
    posted: HashMap<String, (String, Option<String>, String)>,
    calls: Vec<Recorded>,
    requests_seen: usize,
    next_ts: u64,
    rate_limit_next: usize,
    retry_after_secs: u64,
    fail_next: usize,
    stall_next: usize,
    down: bool,
    /// ts -> the Block Kit blocks of the message's latest post or update.
    blocks: HashMap<String, Value>,
    /// User group ID -> member user IDs, for `usergroups.users.list`.
    usergroups: HashMap<String, Vec<String>>,
    /// Bodies POSTed to response URLs, with the URL's id.
    responses: Vec<(String, Value)>,
    failing: bool,
    throttled: Option<u64>,
    /// `http://127.0.0.1:PORT`, for the upload URLs the fake hands out.
    base: String,
    /// Files announced, uploaded and shared.
    uploads: files::Uploads,
}

impl FakeSlackState {
    fn lock(state: &Mutex<Self>) -> MutexGuard<'_, Self> {
        // A panicking test thread must not turn every later assertion into a poison error.
        state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh ts, unique and increasing, shaped like Slack's (`1764210000.000100`).
    fn new_ts(&mut self) -> String {
        self.next_ts += 100;
        let secs = 1_764_210_000 + self.next_ts / 1_000_000;
        format!("{secs}.{:06}", self.next_ts % 1_000_000)
    }
}

/// The running fake; the server stops when this is dropped.
#[derive(Debug)]
pub struct FakeSlack {
    state: Arc<Mutex<FakeSlackState>>,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeSlack {
    /// Starts the fake on `127.0.0.1:0`, on the current runtime, accepting only `Bearer <token>`.
    pub async fn start(token: &str) -> FakeSlack {
        let mut st = FakeSlackState {
            token: token.to_owned(),
            ..FakeSlackState::default()
        };
        for spelling in ["#incidents", "incidents", INCIDENTS_ID] {
            st.channels
                .insert(spelling.to_owned(), INCIDENTS_ID.to_owned());
        }
        let state = Arc::new(Mutex::new(st));
        let app = Router::new()
            .route("/api/{method}", get(api).post(api))
            .route("/response/{id}", post(response))
            .route("/upload/{id}", post(files::upload))
            .fallback(not_found)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake slack");
        let addr = listener.local_addr().expect("fake slack addr");
        FakeSlackState::lock(&state).base = format!("http://{addr}");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeSlack {
            state,
            addr,
            server,
        }
    }

    /// The Web API base URL, e.g. `http://127.0.0.1:PORT/api` (what `with_slack_api_url` takes).
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// Registers channel `name` (with or without `#`) and returns its ID (`ops` -> `C0OPS`).
    pub fn add_channel(&self, name: &str) -> String {
        let bare = name.trim_start_matches('#');
        let id = format!(
            "C0{}",
            bare.chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
                .to_ascii_uppercase()
        );
        let mut st = FakeSlackState::lock(&self.state);
        for spelling in [format!("#{bare}"), bare.to_owned(), id.clone()] {
            st.channels.insert(spelling, id.clone());
        }
        id
    }

    /// The next `n` requests get HTTP 429 with `Retry-After: retry_after_secs`.
    pub fn rate_limit_next(&self, n: usize, retry_after_secs: u64) {
        let mut st = FakeSlackState::lock(&self.state);
        st.rate_limit_next = n;
        st.retry_after_secs = retry_after_secs;
    }

    /// The next `n` requests get HTTP 500.
    pub fn fail_next(&self, n: usize) {
        FakeSlackState::lock(&self.state).fail_next = n;
    }

    /// The next `n` requests never get an answer (the connection stays open), to exercise timeouts.
    pub fn stall_next(&self, n: usize) {
        FakeSlackState::lock(&self.state).stall_next = n;
    }

    /// While down, every request gets HTTP 503.
    pub fn set_down(&self, down: bool) {
        FakeSlackState::lock(&self.state).down = down;
    }

    /// While failing, every request gets HTTP 500.
    pub fn set_failing(&self, failing: bool) {
        FakeSlackState::lock(&self.state).failing = failing;
    }

    /// While throttled, every request gets HTTP 429 with `Retry-After: secs`.
    pub fn set_throttled(&self, retry_after_secs: Option<u64>) {
        FakeSlackState::lock(&self.state).throttled = retry_after_secs;
    }

    /// Accepted `chat.postMessage` calls, in order.
    pub fn messages(&self) -> Vec<Recorded> {
        self.calls_of("chat.postMessage")
    }

    /// Accepted `chat.update` calls, in order.
    pub fn updates(&self) -> Vec<Recorded> {
        self.calls_of("chat.update")
    }

    /// Every accepted call, in order.
    pub fn calls(&self) -> Vec<Recorded> {
        FakeSlackState::lock(&self.state).calls.clone()
    }

    /// The current text of message `ts` (after updates), if it was posted.
    pub fn current_text(&self, ts: &str) -> Option<String> {
        FakeSlackState::lock(&self.state)
            .posted
            .get(ts)
            .map(|(_, _, text)| text.clone())
    }

    /// Every HTTP request received, refused ones included.
    pub fn requests_seen(&self) -> usize {
        FakeSlackState::lock(&self.state).requests_seen
    }

    /// Polls every 20 ms until `what(calls)` holds or `timeout` passes; returns whether it held.
    pub async fn wait_for(&self, what: impl Fn(&[Recorded]) -> bool, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if what(&FakeSlackState::lock(&self.state).calls) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The blocks message `ts` carries now (after updates), if any.
    pub fn blocks_of(&self, ts: &str) -> Option<Value> {
        FakeSlackState::lock(&self.state).blocks.get(ts).cloned()
    }

    /// Makes user group `id` (S…) have these members, for `usergroups.users.list`.
    pub fn set_usergroup(&self, id: &str, users: &[&str]) {
        let users = users.iter().map(|u| (*u).to_owned()).collect();
        FakeSlackState::lock(&self.state)
            .usergroups
            .insert(id.to_owned(), users);
    }

    /// A `response_url` served by this fake, as Slack sends in commands and interactions.
    pub fn response_url(&self, id: &str) -> String {
        format!("http://{}/response/{id}", self.addr)
    }

    /// Bodies POSTed to the response URL `id`, in order.
    pub fn responses(&self, id: &str) -> Vec<Value> {
        FakeSlackState::lock(&self.state)
            .responses
            .iter()
            .filter(|(r, _)| r == id)
            .map(|(_, body)| body.clone())
            .collect()
    }

    /// Polls every 20 ms until the response URL `id` received a body; returns the first one.
    pub async fn wait_for_response(&self, id: &str, timeout: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(first) = self.responses(id).into_iter().next() {
                return Some(first);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until at least `n` files were shared; false when `timeout` passed first.
    pub async fn wait_for_files(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.shared_files().len() < n {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// The files shared so far.
    pub fn shared_files(&self) -> Vec<SharedFile> {
        FakeSlackState::lock(&self.state).uploads.shared.clone()
    }

    /// Answers the next calls of one upload leg ([`files::GET_URL`], [`files::UPLOAD`],
    /// [`files::COMPLETE`]) with these faults, in order.
    pub fn fault_leg(&self, leg: &str, faults: &[LegFault]) {
        FakeSlackState::lock(&self.state)
            .uploads
            .faults
            .entry(leg.to_owned())
            .or_default()
            .extend(faults.iter().copied());
    }

    fn calls_of(&self, method: &str) -> Vec<Recorded> {
        FakeSlackState::lock(&self.state)
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }
}

/// Slack's error shape: HTTP 200, `ok:false`.
fn slack_error(code: &str) -> Response {
    Json(json!({"ok": false, "error": code})).into_response()
}

async fn not_found(State(state): State<Arc<Mutex<FakeSlackState>>>) -> Response {
    FakeSlackState::lock(&state).requests_seen += 1;
    (StatusCode::NOT_FOUND, "not found").into_response()
}

async fn api(
    State(state): State<Arc<Mutex<FakeSlackState>>>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let stall = {
        let mut st = FakeSlackState::lock(&state);
        st.requests_seen += 1;
        let stall = st.stall_next > 0;
        st.stall_next = st.stall_next.saturating_sub(1);
        stall
    };
    if stall {
        // Hang until the client gives up; hyper drops this future when the connection closes.
        std::future::pending::<()>().await;
    }
    let mut st = FakeSlackState::lock(&state);
    if let Some(response) = files::leg_fault(&mut st, &method) {
        return response;
    }

    // Faults first: a real outage or throttle answers before looking at the request.
    if st.down {
        return (StatusCode::SERVICE_UNAVAILABLE, "service unavailable").into_response();
    }
    if st.failing {
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal server error").into_response();
    }
    let throttle = st.throttled.or_else(|| {
        (st.rate_limit_next > 0).then(|| {
            st.rate_limit_next -= 1;
            st.retry_after_secs
        })
    });
    if let Some(retry_after) = throttle {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after.to_string())],
            Json(json!({"ok": false, "error": "ratelimited"})),
        )
            .into_response();
    }
    if st.fail_next > 0 {
        st.fail_next -= 1;
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal server error").into_response();
    }

    let Some(mut args) = parse_args(&headers, &body) else {
        return slack_error("invalid_form_data");
    };
    // Query arguments count too (a GET has nothing else); the body wins where both name one.
    let Some(query) = form_args(query.as_deref().unwrap_or("")) else {
        return slack_error("invalid_form_data");
    };
    for (k, v) in query {
        args.entry(k).or_insert(v);
    }

    // Slack takes the token from the Authorization header, or from a form body's `token` field.
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim().to_owned());
    let token = bearer.or_else(|| args.get("token").cloned());
    match token {
        None => return slack_error("not_authed"),
        Some(t) if t.is_empty() => return slack_error("not_authed"),
        Some(t) if t != st.token => return slack_error("invalid_auth"),
        Some(_) => {}
    }

    if method.starts_with("files.") {
        return files::call(&mut st, &method, &args);
    }

    if method == "usergroups.users.list" {
        let Some(group) = args.get("usergroup") else {
            return slack_error("invalid_arguments");
        };
        return match st.usergroups.get(group) {
            Some(users) => Json(json!({"ok": true, "users": users})).into_response(),
            None => slack_error("no_such_subteam"),
        };
    }

    let Some(channel) = args
        .get("channel")
        .and_then(|c| st.channels.get(c))
        .cloned()
    else {
        return slack_error("channel_not_found");
    };
    let text = args.get("text").cloned().unwrap_or_default();
    if text.is_empty() && !args.contains_key("blocks") && !args.contains_key("attachments") {
        return slack_error("no_text");
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return slack_error("msg_too_long");
    }

    match method.as_str() {
        "chat.postMessage" => {
            let thread_ts = args.get("thread_ts").filter(|t| !t.is_empty()).cloned();
            if let Some(parent) = &thread_ts {
                let known = st
                    .posted
                    .get(parent)
                    .is_some_and(|(chan, _, _)| *chan == channel);
                if !known {
                    return slack_error("thread_not_found");
                }
            }
            let ts = st.new_ts();
            if let Some(blocks) = args
                .get("blocks")
                .and_then(|b| serde_json::from_str(b).ok())
            {
                st.blocks.insert(ts.clone(), blocks);
            }
            st.posted.insert(
                ts.clone(),
                (channel.clone(), thread_ts.clone(), text.clone()),
            );
            st.calls.push(Recorded {
                method,
                channel: channel.clone(),
                ts: ts.clone(),
                thread_ts: thread_ts.clone(),
                text: text.clone(),
            });
            let mut message =
                json!({"type": "message", "text": text, "ts": ts, "bot_id": "B0FAKE"});
            if let Some(parent) = thread_ts {
                message["thread_ts"] = Value::String(parent);
            }
            Json(json!({"ok": true, "channel": channel, "ts": ts, "message": message}))
                .into_response()
        }
        "chat.update" => {
            let Some(ts) = args.get("ts").cloned() else {
                return slack_error("invalid_arguments");
            };
            let thread_ts = match st.posted.get_mut(&ts) {
                Some((chan, thread_ts, current)) if *chan == channel => {
                    *current = text.clone();
                    thread_ts.clone()
                }
                _ => return slack_error("message_not_found"),
            };
            // chat.update replaces the blocks; an update without them leaves none.
            match args
                .get("blocks")
                .and_then(|b| serde_json::from_str(b).ok())
            {
                Some(blocks) => st.blocks.insert(ts.clone(), blocks),
                None => st.blocks.remove(&ts),
            };
            st.calls.push(Recorded {
                method,
                channel: channel.clone(),
                ts: ts.clone(),
                thread_ts,
                text: text.clone(),
            });
            Json(json!({
                "ok": true,
                "channel": channel,
                "ts": ts,
                "text": text,
                "message": {"type": "message", "text": text, "bot_id": "B0FAKE"},
            }))
            .into_response()
        }
        _ => slack_error("unknown_method"),
    }
}

/// A `response_url`: Slack answers `ok` to any JSON body and shows it to the user.
async fn response(
    State(state): State<Arc<Mutex<FakeSlackState>>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let mut st = FakeSlackState::lock(&state);
    st.requests_seen += 1;
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "invalid_payload").into_response();
    };
    st.responses.push((id, body));
    (StatusCode::OK, "ok").into_response()
}

/// The call's arguments from a JSON or form body, as strings (Slack's own coercion).
fn parse_args(headers: &HeaderMap, body: &[u8]) -> Option<HashMap<String, String>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") {
        let Value::Object(map) = serde_json::from_slice::<Value>(body).ok()? else {
            return None;
        };
        Some(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| match v {
                    Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect(),
        )
    } else {
        form_args(std::str::from_utf8(body).ok()?)
    }
}

/// `k=v&…` pairs of a form body or a query string, decoded.
fn form_args(s: &str) -> Option<HashMap<String, String>> {
    s.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((form_decode(k)?, form_decode(v)?))
        })
        .collect()
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}
