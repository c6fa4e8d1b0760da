//! Memory before authentication, against the real binary: bodies just under the 4 MiB limit
//! from senders without credentials cost the process almost nothing, because they are refused
//! from their headers and never read; and a burst of authenticated ones, read within the body
//! budget, gives its memory back once it is over. Resident memory comes from
//! `/proc/PID/status`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::faults::{one_route, serve_command};
use crate::support::binary::{free_port, http, Child};

const TOKEN: &str = "memory-webhook-token-a1c";
const CONNECTIONS: usize = 150;
/// Just under the default 4 MiB limit.
const NEAR_LIMIT: usize = 4 * 1024 * 1024 - 4096;
const HELD_MAX_KIB: u64 = 100 * 1024;
const AFTER_MAX_KIB: u64 = 30 * 1024;

/// A responder no alert of this test reaches.
const RESPONDER: &str = r#"
name: memory
description: Never runs here.
target: "{{ alert.labels.container }}"
allow_targets: ['k2-test-.*']
steps:
  - id: note
    action: report
    text: "Note {{ target }}"
"#;

async fn start(dir: &std::path::Path) -> (Child, u16) {
    let catalog = one_route(dir, "MemoryProbe", "memory", RESPONDER);
    let port = free_port();
    let mut cmd = serve_command(dir, port, &catalog);
    cmd.env("RESPONDER_WEBHOOK_TOKEN", TOKEN)
        .env("RESPONDER_ADMIN_TOKEN", "memory-admin-token")
        .env("PAGERDUTY_WEBHOOK_SECRET", "memory-pd-secret")
        .env("SLACK_SIGNING_SECRET", "memory-slack-secret")
        .env("RUST_LOG", "warn");
    let mut server = Child::spawn(cmd, dir);
    server.wait_healthy(port).await;
    (server, port)
}

/// One sender's connection, kept open until the test drops it.
type Held = (OwnedReadHalf, OwnedWriteHalf);

/// Opens a connection, sends a head for `path` with `auth`, then the body (as far as the server
/// lets it), and returns the connection, still open, with the status the server answered
/// (`none` when the connection was reset first: a server that closes on an unread body may).
async fn send(port: u16, path: &str, auth: String, body: Arc<Vec<u8>>) -> (Held, String) {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n",
        body.len()
    );
    writer.write_all(head.as_bytes()).await.unwrap();
    // Read while writing: a server that refuses from the headers answers before the body.
    let answer = tokio::spawn(async move {
        let mut status = [0u8; 12];
        let read = tokio::time::timeout(Duration::from_secs(60), reader.read_exact(&mut status));
        let status = match read.await {
            Ok(Ok(_)) => String::from_utf8_lossy(&status[9..12]).into_owned(),
            _ => "none".to_owned(),
        };
        (reader, status)
    });
    let _ = tokio::time::timeout(Duration::from_secs(60), writer.write_all(&body)).await;
    let (reader, status) = answer.await.unwrap();
    ((reader, writer), status)
}

/// Waits (bounded) until resident memory is within `max_kib` of `idle`; returns the last value.
async fn settle(server: &Child, idle: u64, max_kib: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rss = server.rss_kib();
        if rss <= idle + max_kib || Instant::now() >= deadline {
            return rss;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn burst(port: u16, routes: &[(&'static str, String)]) -> (Vec<Held>, Vec<String>) {
    let body = Arc::new(vec![b' '; NEAR_LIMIT]);
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let (path, auth) = routes[i % routes.len()].clone();
            tokio::spawn(send(port, path, auth, body.clone()))
        })
        .map(|task| async move { task.await.unwrap() })
        .collect();
    let mut streams = Vec::new();
    let mut statuses = Vec::new();
    for (stream, status) in futures::future::join_all(tasks).await {
        streams.push(stream);
        statuses.push(status);
    }
    (streams, statuses)
}

#[tokio::test]
async fn unauthenticated_near_limit_bodies_leave_memory_near_idle_and_a_burst_gives_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let (server, port) = start(dir.path()).await;
    // Warm: one request of each kind, so lazily built parts count as idle.
    let client = http();
    let warm = client
        .post(format!("http://127.0.0.1:{port}/webhook/alertmanager"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"version": "4", "alerts": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status(), 200);
    let idle = server.rss_kib();

    // 150 senders without credentials, each with a body just under the limit, spread over
    // every route that reads a body; their connections stay open while memory is read.
    let unauthenticated = [
        ("/webhook/alertmanager", String::new()),
        ("/webhook/pagerduty", String::new()),
        ("/slack/commands", String::new()),
        ("/slack/interactions", String::new()),
        (
            "/api/incidents/1/approvals",
            format!("Authorization: Bearer {TOKEN}\r\n"),
        ),
    ];
    let (held, statuses) = burst(port, &unauthenticated).await;
    let while_held = server.rss_kib();
    let peak = server.peak_rss_kib();
    assert!(
        statuses
            .iter()
            .all(|s| ["401", "403", "none"].contains(&s.as_str())),
        "every one refused: {statuses:?}"
    );
    assert!(statuses.iter().any(|s| s == "401"), "{statuses:?}");
    assert!(
        while_held <= idle + HELD_MAX_KIB && peak <= idle + HELD_MAX_KIB,
        "idle {idle} KiB, with {CONNECTIONS} connections held {while_held} KiB, peak {peak} KiB"
    );
    drop(held);
    let after = settle(&server, idle, AFTER_MAX_KIB).await;
    assert!(
        after <= idle + AFTER_MAX_KIB,
        "idle {idle} KiB, after {after} KiB"
    );

    // The same burst with the token: the budget reads a few at a time (the rest are told to
    // retry), and what was read is given back afterwards.
    let authenticated = [(
        "/webhook/alertmanager",
        format!("Authorization: Bearer {TOKEN}\r\n"),
    )];
    let (held, statuses) = burst(port, &authenticated).await;
    // Read and refused as malformed (400), or told to retry (503, or reset on the unread body).
    assert!(
        statuses
            .iter()
            .all(|s| ["400", "503", "none"].contains(&s.as_str())),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().any(|s| s == "400"),
        "some were read: {statuses:?}"
    );
    let peak = server.peak_rss_kib();
    assert!(
        peak <= idle + HELD_MAX_KIB,
        "idle {idle} KiB, peak of the authenticated burst {peak} KiB"
    );
    drop(held);
    let after = settle(&server, idle, AFTER_MAX_KIB).await;
    assert!(
        after <= idle + AFTER_MAX_KIB,
        "idle {idle} KiB, after the authenticated burst {after} KiB"
    );
    // For RELIABILITY-style reports: the figures, seen with --nocapture.
    eprintln!("RSS KiB: idle {idle}, peak {peak}, after the bursts {after}");
}
