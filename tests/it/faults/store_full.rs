//! The store runs out of space: webhooks answer 503 (Alertmanager retries 5xx), `/readyz` says
//! why, nothing panics, and once space returns the retried alerts are taken and processed.
//!
//! The database lives on a real tmpfs (`mount -t tmpfs`, which the tests, running as root like
//! CI, may do), shrunk once the service has started to what it uses plus a few alerts' worth;
//! growing it with `remount` is space returning.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;
use serde_json::Value;

use super::query_i64;
use alert_responder::store::{SqliteStore, Store};

use crate::support::app::{am_alert, Options, TestApp};

/// A tmpfs mounted on a fresh directory, unmounted (lazily) when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        mount(
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"],
            dir.path(),
        );
        Self { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    fn resize(&self, size: &str) {
        mount(&["-o", &format!("remount,size={size}")], self.dir.path());
    }

    /// KiB in use on the disk, as `df` counts them.
    fn used_kib(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=used", "-k"])
            .arg(self.dir.path())
            .output()
            .expect("df runs");
        let text = String::from_utf8_lossy(&out.stdout);
        (text.lines().nth(1).and_then(|l| l.trim().parse().ok()))
            .unwrap_or_else(|| panic!("df said: {text}"))
    }
}

fn mount(args: &[&str], on: &Path) {
    let out = Command::new("mount")
        .args(args)
        .arg(on)
        .output()
        .expect("the mount command runs");
    assert!(
        out.status.success(),
        "mount {args:?} {}: {} (these tests run as root, like CI)",
        on.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .output();
    }
}

/// An alert nobody routes (so no Docker is involved), with a 4 KiB annotation to fill space.
fn bulky_alert(n: usize) -> Value {
    let mut body = am_alert(
        "firing",
        "StoreFillTest",
        "k2-test-storefull",
        &format!("f{n:015x}"),
        "2026-11-27T05:00:00Z",
    );
    body["alerts"][0]["annotations"]["description"] = Value::String("x".repeat(4096));
    body
}

async fn readyz(app: &TestApp) -> (StatusCode, Value) {
    let response = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_full_disk_answers_503_says_why_in_readyz_and_recovers_when_space_returns() {
    let disk = SmallDisk::mount("64m");
    let app = TestApp::spawn(&disk.path(), None, Options::default()).await;
    // What a started service uses grows with every migration (the schema and its WAL, 590 KiB
    // at 16 migrations), so a fixed size either leaves no room at all or too much: leave room
    // for a few alerts beyond it (4 fit, each commit writing several WAL pages).
    disk.resize(&format!("{}k", disk.used_kib() + 256));

    let mut accepted = 0;
    let mut refused = None;
    for n in 0..2_000 {
        let response = app.post_alertmanager(&bulky_alert(n)).await;
        match response.status() {
            StatusCode::OK => accepted += 1,
            status => {
                assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
                let json: Value = response.json().await.unwrap();
                assert_eq!(
                    json["error"], "store unavailable: the database or disk is full",
                    "{json}"
                );
                refused = Some(n);
                break;
            }
        }
    }
    let refused = refused.expect("256 KiB of room fill up within 2,000 alerts of 4 KiB");
    assert!(accepted > 0, "some alerts fit before the disk filled");

    let (status, ready) = readyz(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready["status"], "unavailable");
    assert_eq!(
        ready["reason"],
        "the store cannot take alerts: the database or disk is full"
    );
    assert_eq!(app.get_json("/healthz").await["status"], "ok", "no panic");
    // Alertmanager retries: still refused while the disk is full.
    let again = app.post_alertmanager(&bulky_alert(refused)).await;
    assert_eq!(again.status(), StatusCode::SERVICE_UNAVAILABLE);

    disk.resize("64m");
    let retried = app.post_alertmanager(&bulky_alert(refused)).await;
    assert_eq!(retried.status(), StatusCode::OK, "taken once space returns");
    let retried: Value = retried.json().await.unwrap();
    assert_eq!(retried["new"], 1, "{retried}");
    let (status, ready) = readyz(&app).await;
    assert_eq!(status, StatusCode::OK, "{ready}");

    // Every acknowledged alert is in the journal, and all of them get processed.
    let url = app.database_url.clone();
    assert_eq!(
        query_i64(&url, "SELECT COUNT(*) FROM journal").await,
        accepted + 1
    );
    let mut pending = i64::MAX;
    for _ in 0..300 {
        pending = query_i64(&url, "SELECT COUNT(*) FROM journal WHERE processed = 0").await;
        if pending == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        pending, 0,
        "the dispatcher caught up after the disk had room"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_read_only_database_is_refused_with_a_reason_that_says_so() {
    // As root, file modes do not stop writes and a read-only remount is refused while the
    // service has the file open; SQLite's own read-only mode gives the same error it would.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/responder.db", dir.path().display());
    SqliteStore::connect(&url).await.unwrap().close().await;
    let store = SqliteStore::open_read_only(&url).await.unwrap().unwrap();
    let alert = alert_responder::sources::alertmanager::parse(
        &serde_json::to_vec(&bulky_alert(0)).unwrap(),
    )
    .unwrap();
    let err = store.append_journal(&alert).await.unwrap_err();
    assert_eq!(err.reason(), "the database is read-only", "{err}");
}
