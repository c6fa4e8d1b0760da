//! Helpers for the shipped routine responders (weekly maintenance, checkpoint backup): their
//! files loaded into a test catalog with only the settings the test must shorten replaced,
//! and their slot incidents and Slack threads read back.

use std::path::Path;
use std::time::Duration;

use alert_responder::sources::schedule::Clock;
use serde_json::Value;

use crate::support::app::{catalog_dir, Options, TestApp};
use crate::support::fake_slack::{FakeSlack, Recorded};

/// The shipped `responders/<name>.yaml`, with each `(from, to)` replaced; every `from` must
/// occur, so a changed file fails the test instead of silently testing something else.
pub(crate) fn shipped(name: &str, replacements: &[(&str, &str)]) -> String {
    let path = format!("{}/responders/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (from, to) in replacements {
        assert!(text.contains(from), "{path} no longer holds {from:?}");
        text = text.replace(from, to);
    }
    text
}

/// Options for an app whose catalog is `responder` alone, on `clock`.
pub(crate) fn options(dir: &Path, name: &str, responder: &str, clock: &Clock) -> Options {
    let routes = format!("routes:\n  - matchers: ['alertname=\"Never\"']\n    responder: {name}\n");
    Options {
        catalog: Some(catalog_dir(dir, &routes, &[(name, responder)])),
        clock: Some(clock.clone()),
        ..Default::default()
    }
}

/// Waits (bounded) until the scheduler's mark of `name` reaches the clock's time: armed.
pub(crate) async fn armed(app: &TestApp, name: &str, clock: &Clock) {
    let at = clock.now().unix_timestamp();
    for _ in 0..300 {
        let marks = app.store.schedule_marks().await.unwrap();
        if marks.iter().any(|(n, mark)| n == name && *mark >= at) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the schedule of {name} was never armed");
}

/// Waits (bounded) until `count` slot incidents of `name` exist and all are closed; returns
/// their details, newest first.
pub(crate) async fn closed(app: &TestApp, name: &str, count: usize) -> Vec<Value> {
    let alertname = format!("{name} (scheduled)");
    for _ in 0..1200 {
        let mine: Vec<Value> = (app.incidents().await.into_iter())
            .filter(|i| i["alertname"] == alertname.as_str())
            .collect();
        if mine.len() >= count && mine.iter().all(|i| i["status"] == "resolved") {
            let mut details = Vec::new();
            for i in mine {
                details.push(app.get_json(&format!("/api/incidents/{}", i["id"])).await);
            }
            return details;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{count} slot incidents of {name} never closed within 120 s");
}

/// The thread of `parent` as posted: the parent's latest text, then its replies in order.
pub(crate) fn thread(slack: &FakeSlack, parent: &Recorded) -> String {
    let mut out = format!(
        "[parent] {}\n",
        slack
            .current_text(&parent.ts)
            .unwrap_or(parent.text.clone())
    );
    for m in slack.messages() {
        if m.thread_ts.as_deref() == Some(parent.ts.as_str()) {
            out.push_str(&format!("[reply] {}\n", m.text));
        }
    }
    out
}

/// Asserts `text` holds every one of `words`, showing the whole text when one is missing.
pub(crate) fn assert_holds(text: &str, words: &[&str]) {
    for words in words {
        assert!(text.contains(words), "{words:?} not in:\n{text}");
    }
}
