//! Fixes that keep not holding: after `ineffective_limit` (2) recurrences within a day, the
//! responder's restart on that target waits for an approval, saying why with the times,
//! until someone runs `/responder trust` (signed, authorized like `mode`, audited).

use std::time::Duration;

use super::catalog_with;
use crate::support::app::{am_alert, step_states, Options, TestApp, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::{FakeSlack, Recorded};
use crate::support::slack::{reply, User, SIGNING_SECRET};

const ALICE: User = ("U0ALICE", "alice");
const FINGERPRINT: &str = "f0000000000w0003";

/// Fires HighMemoryUsage on the hog at `at`, resolving the previous firing (started at
/// `previous`) first: each firing opens a new incident.
async fn fire(app: &TestApp, hog: &TestContainer, previous: Option<&str>, at: &str) {
    if let Some(previous) = previous {
        let resolve = am_alert(
            "resolved",
            "HighMemoryUsage",
            hog.name(),
            FINGERPRINT,
            previous,
        );
        assert_eq!(app.post_alertmanager(&resolve).await.status(), 200);
    }
    let fire = am_alert("firing", "HighMemoryUsage", hog.name(), FINGERPRINT, at);
    assert_eq!(app.post_alertmanager(&fire).await.status(), 200);
}

/// Fills the hog's memory again, as its leak would after a restart that did not fix it.
fn leak_again(hog: &TestContainer) {
    hog.exec(&["dd", "if=/dev/zero", "of=/fill/x", "bs=1M", "count=60"]);
}

fn restart_state(detail: &serde_json::Value) -> String {
    let states = step_states(detail, 0);
    let restart = states.iter().find(|(id, _)| id == "restart");
    restart.map(|(_, s)| s.clone()).unwrap_or_default()
}

#[tokio::test]
async fn two_recurrences_require_an_approval_until_trust() {
    let hog = TestContainer::memory_hog("watch-trust");
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_with(
        dir.path(),
        &[
            ("\nwatch: 30m\n", "\nwatch: 1h\n"),
            // Restarts as often as the test needs; the budget is not what is tested here.
            ("cooldown: 15m, max: 3,", "cooldown: 0s, max: 10,"),
        ],
    );
    let mut options = Options::with_catalog(catalog);
    options.slack_signing_secret = Some(SIGNING_SECRET.into());
    options.slack_allowed = [None, Some(ALICE.0.into()), Some(ALICE.0.into())];
    let app = TestApp::spawn(dir.path(), Some(&slack), options).await;

    // A restart, then one recurrence: under the limit, the second restart needs nobody.
    fire(&app, &hog, None, "2026-11-27T05:00:00Z").await;
    let first = app.wait_for_newest_finished(hog.name(), 1).await;
    assert_eq!(restart_state(&first), "succeeded", "{first:#}");
    leak_again(&hog);
    fire(
        &app,
        &hog,
        Some("2026-11-27T05:00:00Z"),
        "2026-11-27T05:10:00Z",
    )
    .await;
    let second = app.wait_for_newest_finished(hog.name(), 2).await;
    assert_eq!(restart_state(&second), "succeeded", "{second:#}");

    // The second recurrence reaches the limit: the restart waits for a person.
    leak_again(&hog);
    fire(
        &app,
        &hog,
        Some("2026-11-27T05:10:00Z"),
        "2026-11-27T05:20:00Z",
    )
    .await;
    let asked = |calls: &[Recorded]| {
        calls
            .iter()
            .any(|c| c.text.contains("Approval needed for *restart*"))
    };
    assert!(
        slack.wait_for(asked, Duration::from_secs(60)).await,
        "{:#?}",
        slack.calls()
    );
    let calls = slack.calls();
    let why = calls
        .iter()
        .find(|c| c.text.contains(":lock:"))
        .unwrap_or_else(|| panic!("the thread says why: {calls:#?}"));
    assert!(
        why.text.contains("did not hold 2 times in 24h"),
        "{}",
        why.text
    );
    let times = why.text.split("fired again at ").nth(1).unwrap_or_default();
    let times: Vec<&str> = times
        .split(". ")
        .next()
        .unwrap_or_default()
        .split(", ")
        .collect();
    assert_eq!(times.len(), 2, "both recurrences' times: {}", why.text);
    assert!(times.iter().all(|t| t.starts_with("20")), "{}", why.text);
    let third = app.incidents().await[0]["id"].as_i64().unwrap();

    // Trusted again (by someone allowed to set modes), and the waiting restart denied.
    let trusted = reply(&app, ALICE, &format!("trust high-memory {}", hog.name())).await;
    assert!(trusted.contains("is trusted again"), "{trusted}");
    let denied = reply(&app, ALICE, &format!("deny {third}")).await;
    assert!(!denied.contains("Not allowed"), "{denied}");
    let third_detail = app.wait_for_newest_finished(hog.name(), 3).await;
    assert_ne!(
        restart_state(&third_detail),
        "succeeded",
        "{third_detail:#}"
    );

    // The next firing restarts without asking anyone.
    fire(
        &app,
        &hog,
        Some("2026-11-27T05:20:00Z"),
        "2026-11-27T05:30:00Z",
    )
    .await;
    let fourth = app.wait_for_newest_finished(hog.name(), 4).await;
    assert_eq!(restart_state(&fourth), "succeeded", "{fourth:#}");
    assert_eq!(
        fourth["approvals"].as_array().map(Vec::len),
        Some(0),
        "{fourth:#}"
    );

    let audit = app.get_json("/api/audit").await;
    let trusts: Vec<_> = (audit.as_array().unwrap().iter())
        .filter(|e| e["command"] == "trust")
        .collect();
    assert_eq!(trusts.len(), 1, "{audit:#}");
    assert_eq!(trusts[0]["outcome"], "allowed", "{audit:#}");
    app.stop().await;
}
