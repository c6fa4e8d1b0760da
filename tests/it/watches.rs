//! Did the fix hold: the shipped high-memory responder restarts a real hog, then its alert
//! fires again inside the watch (both threads say the fix did not hold, linking each other,
//! and the run counts as ineffective), or the watch ends quietly ("held for").
//!
//! The shipped catalog is copied with high-memory's `watch: 30m` made short, so no test
//! waits half an hour; the ends are waited for as conditions, never timed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::app::{am_alert, shipped_catalog, Options, TestApp};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::{FakeSlack, Recorded};

mod silences;
mod trust;

/// The shipped catalog in `dir`, with each `(from, to)` replaced in high-memory's file.
fn catalog_with(dir: &Path, edits: &[(&str, &str)]) -> (PathBuf, PathBuf) {
    let (routes, responders) = shipped_catalog();
    let copy = |from: &Path, to: PathBuf| {
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            let mut text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap();
            if name == "high-memory.yaml" {
                for (was, now) in edits {
                    assert!(text.contains(was), "shipped high-memory has {was:?}");
                    text = text.replace(was, now);
                }
            }
            std::fs::write(to.join(name), text).unwrap();
        }
        to
    };
    (
        copy(&routes, dir.join("routes")),
        copy(&responders, dir.join("responders")),
    )
}

/// The shipped catalog in `dir`, with high-memory watching for `watch`.
fn catalog_watching(dir: &Path, watch: &str) -> (PathBuf, PathBuf) {
    catalog_with(dir, &[("\nwatch: 30m\n", &format!("\nwatch: {watch}\n"))])
}

/// The replies in the thread of the parent message `parent_ts`, in order.
fn thread_of(slack: &FakeSlack, parent_ts: &str) -> Vec<String> {
    slack
        .messages()
        .into_iter()
        .filter(|m| m.thread_ts.as_deref() == Some(parent_ts))
        .map(|m| m.text)
        .collect()
}

fn parents(calls: &[Recorded]) -> Vec<&Recorded> {
    calls
        .iter()
        .filter(|c| c.method == "chat.postMessage" && c.thread_ts.is_none())
        .collect()
}

async fn scrape(app: &TestApp) -> String {
    let url = format!("{}/metrics", app.address);
    let response = app.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

#[tokio::test]
async fn a_refire_within_the_watch_says_the_fix_did_not_hold_in_both_threads() {
    let hog = TestContainer::memory_hog("watch-refire");
    let started = hog.started_at();
    let slack = FakeSlack::start(crate::support::app::SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_watching(dir.path(), "1h");
    let app = TestApp::spawn(dir.path(), Some(&slack), Options::with_catalog(catalog)).await;

    let first_start = "2026-11-27T05:00:00Z";
    let fire = am_alert(
        "firing",
        "HighMemoryUsage",
        hog.name(),
        "f0000000000w0001",
        first_start,
    );
    assert_eq!(app.post_alertmanager(&fire).await.status(), 200);
    let detail = app.wait_for_finished_run(hog.name(), 1).await;
    assert_eq!(detail["runs"][0]["outcome"], "succeeded", "{detail:#}");
    assert_ne!(hog.started_at(), started, "the hog was restarted");
    let first = detail["incident"]["id"].as_i64().unwrap();

    // It resolves, then fires again: a new incident of the same alert name and target.
    let resolve = am_alert(
        "resolved",
        "HighMemoryUsage",
        hog.name(),
        "f0000000000w0001",
        first_start,
    );
    assert_eq!(app.post_alertmanager(&resolve).await.status(), 200);
    let again = am_alert(
        "firing",
        "HighMemoryUsage",
        hog.name(),
        "f0000000000w0001",
        "2026-11-27T05:20:00Z",
    );
    assert_eq!(app.post_alertmanager(&again).await.status(), 200);

    let said = |calls: &[Recorded]| {
        calls
            .iter()
            .filter(|c| c.text.contains("The fix did not hold (fired again "))
            .count()
            >= 2
    };
    assert!(
        slack.wait_for(said, Duration::from_secs(60)).await,
        "{:#?}",
        slack.calls()
    );
    let calls = slack.calls();
    let parents = parents(&calls);
    assert_eq!(parents.len(), 2, "two incidents, two threads: {parents:#?}");
    let second = app
        .incidents()
        .await
        .iter()
        .filter_map(|i| i["id"].as_i64())
        .max()
        .unwrap();
    assert_ne!(second, first);
    let earlier = thread_of(&slack, &parents[0].ts);
    let later = thread_of(&slack, &parents[1].ts);
    let earlier_line = earlier
        .iter()
        .find(|t| t.contains("The fix did not hold"))
        .unwrap_or_else(|| panic!("the first thread says it: {earlier:#?}"));
    assert!(earlier_line.contains("after *restart*"), "{earlier_line}");
    assert!(
        earlier_line.contains(&format!("incident #{second}")),
        "{earlier_line}"
    );
    assert!(
        earlier_line.contains("counts as ineffective"),
        "{earlier_line}"
    );
    let later_line = later
        .iter()
        .find(|t| t.contains("The fix did not hold"))
        .unwrap_or_else(|| panic!("the new thread says it: {later:#?}"));
    assert!(
        later_line.contains(&format!("incident #{first}")),
        "{later_line}"
    );
    assert!(later_line.contains("by high-memory"), "{later_line}");

    let metrics = scrape(&app).await;
    assert!(
        metrics.contains("alert_responder_ineffective_runs_total{responder=\"high-memory\"} 1"),
        "{metrics}"
    );
    // Once only: the watch ended with the recurrence, so it never also "held".
    let page = app.get_json(&format!("/api/incidents/{first}")).await;
    assert_eq!(page["watches"][0]["state"], "recurred", "{page:#}");
    assert_eq!(page["watches"][0]["recurred_incident"], second, "{page:#}");
    let html = app.get_text(&format!("/incidents/{first}")).await;
    assert!(html.contains("Ineffective run"), "{html}");
    assert!(
        html.contains(&format!("href=\"/incidents/{second}\"")),
        "{html}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_watch_that_ends_quietly_says_the_fix_held_once() {
    let hog = TestContainer::memory_hog("watch-held");
    let slack = FakeSlack::start(crate::support::app::SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_watching(dir.path(), "8s");
    let app = TestApp::spawn(dir.path(), Some(&slack), Options::with_catalog(catalog)).await;

    let fire = am_alert(
        "firing",
        "HighMemoryUsage",
        hog.name(),
        "f0000000000w0002",
        "2026-11-27T05:00:00Z",
    );
    assert_eq!(app.post_alertmanager(&fire).await.status(), 200);
    let detail = app.wait_for_finished_run(hog.name(), 1).await;
    assert_eq!(detail["runs"][0]["outcome"], "succeeded", "{detail:#}");
    // The alert resolves after the restart (well inside the window): the fix held. One that
    // never resolves is not said to have held.
    let resolve = am_alert(
        "resolved",
        "HighMemoryUsage",
        hog.name(),
        "f0000000000w0002",
        "2026-11-27T05:00:00Z",
    );
    assert_eq!(app.post_alertmanager(&resolve).await.status(), 200);

    let held = |calls: &[Recorded]| calls.iter().any(|c| c.text.contains("The fix held for 8s"));
    assert!(
        slack.wait_for(held, Duration::from_secs(60)).await,
        "{:#?}",
        slack.calls()
    );
    let calls = slack.calls();
    let parent = parents(&calls)[0].ts.clone();
    let thread = thread_of(&slack, &parent);
    let line = thread.iter().find(|t| t.contains("The fix held")).unwrap();
    assert!(
        line.contains("HighMemoryUsage did not fire again"),
        "{line}"
    );
    assert!(line.contains("after *restart*"), "{line}");
    // Said once, however many times the dispatcher's loop looks afterwards.
    app.stop().await;
    let said = slack
        .calls()
        .iter()
        .filter(|c| c.text.contains("The fix held"))
        .count();
    assert_eq!(said, 1, "{:#?}", slack.calls());
    let metrics_free = !thread.iter().any(|t| t.contains("did not hold"));
    assert!(metrics_free, "{thread:#?}");
}
