//! The loopback services the systems under test talk to: a fake Slack Web API, a fake Schema
//! Registry (the bench playbook's first action) and a probe endpoint the peer's command calls.
//! Each records when it first heard of a probe (`arbench-p<N>` in the request).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

/// First sightings of probes, by probe number.
#[derive(Default)]
pub(crate) struct Seen {
    /// First Slack message naming the probe.
    pub(crate) slack: HashMap<u64, Instant>,
    /// First action (registry GET or peer command) for the probe.
    pub(crate) action: HashMap<u64, Instant>,
    /// Slack calls of any kind.
    pub(crate) slack_calls: u64,
    /// Actions of any kind.
    pub(crate) actions: u64,
}

/// The running fakes.
#[derive(Clone)]
pub(crate) struct Fakes {
    pub(crate) addr: SocketAddr,
    pub(crate) seen: Arc<Mutex<Seen>>,
}

impl Fakes {
    pub(crate) async fn start() -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let app = Router::new()
            .route("/api/{method}", post(slack))
            .route("/subjects/{subject}/versions", get(registry))
            .route("/action/{name}", get(action))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("loopback has a free port");
        let addr = listener
            .local_addr()
            .expect("a bound socket has an address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, seen }
    }

    /// Forgets everything seen (between phases).
    pub(crate) fn reset(&self) {
        *self.seen.lock().expect("no panic while holding the lock") = Seen::default();
    }

    pub(crate) fn slack_calls(&self) -> u64 {
        self.seen
            .lock()
            .expect("no panic while holding the lock")
            .slack_calls
    }
}

/// The probe number in `arbench-p<N>` followed by a non-digit, if any.
fn probe(text: &str) -> Option<u64> {
    let at = text.find("arbench-p")? + "arbench-p".len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

async fn slack(
    State(seen): State<Arc<Mutex<Seen>>>,
    Path(method): Path<String>,
    body: Bytes,
) -> Json<serde_json::Value> {
    let now = Instant::now();
    let text = String::from_utf8_lossy(&body);
    {
        let mut seen = seen.lock().expect("no panic while holding the lock");
        seen.slack_calls += 1;
        if let Some(p) = probe(&text) {
            seen.slack.entry(p).or_insert(now);
        }
    }
    // Every post gets its own ts so thread replies and edits point at a known parent.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let ts = format!("1790000000.{n:06}");
    if method == "chat.update" {
        return Json(
            json!({"ok": true, "channel": "C0BENCH", "ts": ts, "text": "", "message": {"type": "message", "text": "", "bot_id": "B0BENCH"}}),
        );
    }
    Json(
        json!({"ok": true, "channel": "C0BENCH", "ts": ts, "message": {"type": "message", "text": "", "ts": ts, "bot_id": "B0BENCH"}}),
    )
}

async fn registry(
    State(seen): State<Arc<Mutex<Seen>>>,
    Path(subject): Path<String>,
) -> Json<serde_json::Value> {
    record_action(&seen, &subject);
    Json(json!([1]))
}

async fn action(State(seen): State<Arc<Mutex<Seen>>>, Path(name): Path<String>) -> &'static str {
    record_action(&seen, &name);
    "ok"
}

fn record_action(seen: &Mutex<Seen>, name: &str) {
    let now = Instant::now();
    let mut seen = seen.lock().expect("no panic while holding the lock");
    seen.actions += 1;
    if let Some(p) = probe(name) {
        seen.action.entry(p).or_insert(now);
    }
}
