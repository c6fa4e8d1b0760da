//! Silences on a real Alertmanager HA pair: the shipped high-memory route says `silence:
//! true`, so while its restart runs and the watch follows it, the alert is silenced there;
//! the silence goes once the alert resolves, or once the fix does not hold. Alertmanager
//! sends nothing for a silenced alert, so the app must see the resolve and the re-fire by
//! reading Alertmanager's alerts itself.
//!
//! `ALERTMANAGER_URL` lists a dead port first: the silence is made on the first peer that
//! answers, and the pair gossips it to the other.

use std::time::Duration;

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{catalog_watching, parents, thread_of};
use crate::support::alertmanager::{config_yaml, prometheus_alert, AlertmanagerCluster};
use crate::support::app::{am_alert, Options, TestApp, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::{FakeSlack, Recorded};
use crate::support::wait;

const TOKEN: &str = "silences-webhook-token-0123456789";

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// A loopback port nothing listens on.
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Every silence `peer` knows.
async fn silences(peer: &str) -> Vec<Value> {
    let url = format!("{peer}/api/v2/silences");
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200, "GET {url}");
    response.json().await.unwrap()
}

/// The silences `peer` knows that this service made, with `state` (`active`, `expired`).
async fn ours(peer: &str, state: &str) -> Vec<Value> {
    (silences(peer).await.into_iter())
        .filter(|s| s["createdBy"] == "alert-responder" && s["status"]["state"] == state)
        .collect()
}

/// Waits up to `seconds` for a Slack message containing `text`; fails with every call.
/// Thread lines go through the outbox, so they arrive after what they report.
async fn said_within(slack: &FakeSlack, text: &str, seconds: u64) {
    let said = |calls: &[Recorded]| calls.iter().any(|c| c.text.contains(text));
    assert!(
        slack.wait_for(said, Duration::from_secs(seconds)).await,
        "no message with {text:?}: {:#?}",
        slack.calls()
    );
}

/// An app with the shipped catalog (high-memory watching for an hour) and a real
/// Alertmanager pair sending to it; the app knows the pair behind a dead URL.
async fn setup(dir: &std::path::Path, slack: &FakeSlack) -> (TestApp, AlertmanagerCluster) {
    let ports = AlertmanagerCluster::ports(2);
    let peers: Vec<String> = ports
        .iter()
        .map(|p| AlertmanagerCluster::url_of(*p))
        .collect();
    let dead = format!("http://127.0.0.1:{}", dead_port());
    let options = Options {
        webhook_token: Some(TOKEN.to_owned()),
        alertmanager_url: Some(format!("{dead},{}", peers.join(","))),
        ..Options::with_catalog(catalog_watching(dir, "1h"))
    };
    let app = TestApp::spawn(dir, Some(slack), options).await;
    let webhook = format!("{}/webhook/alertmanager", app.address);
    let ams = AlertmanagerCluster::start_on(ports, &config_yaml(&webhook, TOKEN)).await;
    (app, ams)
}

fn hog_labels(hog: &TestContainer) -> Value {
    json!({"alertname": "HighMemoryUsage", "container": hog.name(), "severity": "critical"})
}

/// Prometheus's post of the alert on `hog` from `starts` until `ends`.
fn posted(hog: &TestContainer, starts: OffsetDateTime, ends: OffsetDateTime) -> Value {
    let annotations = json!({"summary": format!("memory above 90% on {}", hog.name())});
    json!([prometheus_alert(
        &hog_labels(hog),
        &annotations,
        &rfc3339(starts),
        &rfc3339(ends),
    )])
}

/// Fires the alert on `hog` through the pair and waits for the restart; returns the run's
/// detail, its start (for the resolve) and our one active silence.
async fn fire_and_restart(
    app: &TestApp,
    ams: &AlertmanagerCluster,
    hog: &TestContainer,
) -> (Value, OffsetDateTime, Value) {
    let before = hog.started_at();
    let starts = OffsetDateTime::now_utc() - time::Duration::seconds(30);
    let firing = posted(hog, starts, starts + time::Duration::hours(1));
    ams.post_alerts(&firing).await;
    let detail = app.wait_for_finished_run(hog.name(), 1).await;
    assert_eq!(detail["runs"][0]["outcome"], "succeeded", "{detail:#}");
    assert_ne!(hog.started_at(), before, "the hog was restarted");
    let active = ours(&ams.peers[0].url, "active").await;
    assert_eq!(
        active.len(),
        1,
        "one silence while the fix is watched: {active:#?}"
    );
    (detail, starts, active[0].clone())
}

#[tokio::test]
async fn the_alert_is_silenced_while_the_fix_is_watched_and_the_silence_goes_when_it_resolves() {
    let hog = TestContainer::memory_hog("silence-resolve");
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (app, ams) = setup(dir.path(), &slack).await;
    let (detail, starts, silence) = fire_and_restart(&app, &ams, &hog).await;

    // Made with an equality matcher per label, before the restart ended, to last the run's
    // timeout plus the watch; the other peer has it by gossip.
    let mut matchers: Vec<(String, String, bool)> = (silence["matchers"].as_array().unwrap())
        .iter()
        .map(|m| {
            let text = |k: &str| m[k].as_str().unwrap().to_owned();
            (
                text("name"),
                text("value"),
                m["isRegex"] == false && m["isEqual"] != false,
            )
        })
        .collect();
    matchers.sort();
    let name = hog.name().to_owned();
    let expected = [
        ("alertname".to_owned(), "HighMemoryUsage".to_owned(), true),
        ("container".to_owned(), name.clone(), true),
        ("severity".to_owned(), "critical".to_owned(), true),
    ];
    assert_eq!(matchers, expected, "{silence:#}");
    let incident = detail["incident"]["id"].as_i64().unwrap();
    let comment = silence["comment"].as_str().unwrap();
    assert!(
        comment.contains(&format!("incident #{incident}")),
        "{comment}"
    );
    let time_of = |v: &Value| OffsetDateTime::parse(v.as_str().unwrap(), &Rfc3339).unwrap();
    let restart = (detail["runs"][0]["steps"].as_array().unwrap().iter())
        .find(|s| s["step_id"] == "restart")
        .unwrap()
        .clone();
    assert!(
        time_of(&silence["startsAt"]) <= time_of(&restart["finished_at"]),
        "silenced before the restart ended: {silence:#} {restart:#}"
    );
    let lasts = time_of(&silence["endsAt"]) - time_of(&silence["startsAt"]);
    assert!(
        lasts >= time::Duration::hours(1),
        "the watch is covered: {silence:#}"
    );
    let id = silence["id"].as_str().unwrap().to_owned();
    let other = &ams.peers[1].url;
    let gossiped = wait::until(Duration::from_secs(30), || async {
        ours(other, "active")
            .await
            .iter()
            .any(|s| s["id"] == id.as_str())
    })
    .await;
    assert!(
        gossiped,
        "the other peer has the silence: {:#}",
        json!(silences(other).await)
    );

    // Alertmanager sees the alert as silenced by it.
    let listed: Vec<Value> = reqwest::get(format!("{}/api/v2/alerts", ams.peers[0].url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let alert = listed
        .iter()
        .find(|a| a["labels"]["container"] == name.as_str())
        .unwrap();
    assert_eq!(alert["status"]["state"], "suppressed", "{alert:#}");
    assert_eq!(alert["status"]["silencedBy"], json!([id]), "{alert:#}");

    // The resolve: muted by the silence, so it comes only from following the alert.
    ams.post_alerts(&posted(&hog, starts, OffsetDateTime::now_utc()))
        .await;
    let lifted = wait::until(Duration::from_secs(60), || async {
        ours(&ams.peers[0].url, "active").await.is_empty()
    })
    .await;
    assert!(
        lifted,
        "the silence goes with the resolve: {:#}",
        json!(silences(&ams.peers[0].url).await)
    );
    let expired = ours(&ams.peers[0].url, "expired").await;
    assert!(
        expired.iter().any(|s| s["id"] == id.as_str()),
        "{expired:#?}"
    );
    let resolved = wait::until(Duration::from_secs(30), || async {
        app.get_json(&format!("/api/incidents/{incident}")).await["incident"]["status"]
            == "resolved"
    })
    .await;
    assert!(
        resolved,
        "{:#}",
        app.get_json(&format!("/api/incidents/{incident}")).await
    );

    said_within(&slack, "Silence lifted (the alert resolved)", 30).await;
    let calls = slack.calls();
    let thread = thread_of(&slack, &parents(&calls)[0].ts);
    let said = |text: &str| thread.iter().any(|t| t.contains(text));
    assert!(
        said("Silenced HighMemoryUsage in Alertmanager until"),
        "{thread:#?}"
    );
    assert!(said("Silence lifted (the alert resolved)"), "{thread:#?}");
    assert!(!said("No silence"), "{thread:#?}");
    app.stop().await;
}

#[tokio::test]
async fn a_refire_while_silenced_says_the_fix_did_not_hold_and_lifts_the_silence() {
    let hog = TestContainer::memory_hog("silence-refire");
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (app, ams) = setup(dir.path(), &slack).await;
    let (detail, starts, silence) = fire_and_restart(&app, &ams, &hog).await;
    let first = detail["incident"]["id"].as_i64().unwrap();
    let id = silence["id"].as_str().unwrap().to_owned();

    // It resolves and fires again at once, both muted by our silence.
    let now = OffsetDateTime::now_utc();
    let ended = now - time::Duration::seconds(2);
    ams.post_alerts(&posted(&hog, starts, ended)).await;
    let again = now - time::Duration::seconds(1);
    ams.post_alerts(&posted(&hog, again, again + time::Duration::hours(1)))
        .await;

    let did_not_hold = |calls: &[Recorded]| {
        (calls.iter())
            .filter(|c| c.text.contains("The fix did not hold (fired again "))
            .count()
            >= 2
    };
    assert!(
        slack.wait_for(did_not_hold, Duration::from_secs(60)).await,
        "{:#?}",
        slack.calls()
    );
    let lifted = wait::until(Duration::from_secs(30), || async {
        ours(&ams.peers[0].url, "expired")
            .await
            .iter()
            .any(|s| s["id"] == id.as_str())
    })
    .await;
    assert!(lifted, "{:#}", json!(silences(&ams.peers[0].url).await));
    said_within(&slack, "Silence lifted (", 30).await;
    let calls = slack.calls();
    let thread = thread_of(&slack, &parents(&calls)[0].ts);
    assert!(
        thread.iter().any(|t| t.contains("Silence lifted (")),
        "the first thread says the silence went: {thread:#?}"
    );
    // Shown with --nocapture: the thread as Slack got it.
    println!("--- thread of incident {first} ---\n{}", thread.join("\n"));
    let second = (app.incidents().await.iter())
        .filter_map(|i| i["id"].as_i64())
        .max()
        .unwrap();
    assert_ne!(second, first, "the re-fire is an incident of its own");
    app.stop().await;
}

#[tokio::test]
async fn alertmanager_unreachable_means_no_silence_one_line_and_the_fix_goes_on() {
    let hog = TestContainer::memory_hog("silence-down");
    let before = hog.started_at();
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        alertmanager_url: Some(format!("http://127.0.0.1:{}", dead_port())),
        ..Options::with_catalog(catalog_watching(dir.path(), "1h"))
    };
    let app = TestApp::spawn(dir.path(), Some(&slack), options).await;
    let fire = am_alert(
        "firing",
        "HighMemoryUsage",
        hog.name(),
        "f00000000000s003",
        "2026-11-27T05:00:00Z",
    );
    assert_eq!(app.post_alertmanager(&fire).await.status(), 200);
    let detail = app.wait_for_finished_run(hog.name(), 1).await;
    assert_eq!(detail["runs"][0]["outcome"], "succeeded", "{detail:#}");
    assert_ne!(
        hog.started_at(),
        before,
        "the hog was restarted all the same"
    );
    said_within(&slack, "No silence", 30).await;
    let calls = slack.calls();
    let thread = thread_of(&slack, &parents(&calls)[0].ts);
    let lines: Vec<_> = thread.iter().filter(|t| t.contains("No silence")).collect();
    assert_eq!(lines.len(), 1, "{thread:#?}");
    assert!(lines[0].contains("could not be reached"), "{}", lines[0]);
    assert!(
        !thread.iter().any(|t| t.contains("Silenced ")),
        "{thread:#?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_run_that_waits_for_a_person_lifts_its_silence() {
    let idle = TestContainer::idle("silence-wait");
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let ports = AlertmanagerCluster::ports(1);
    let peer = AlertmanagerCluster::url_of(ports[0]);
    let catalog = crate::support::app::catalog_dir(
        dir.path(),
        "routes:\n  - matchers: ['alertname=\"Careful\"']\n    responder: careful\n    silence: true\n",
        &[(
            "careful",
            r#"
name: careful
target: "{{ alert.labels.container }}"
steps:
  - id: restart
    action: docker_restart
    container: "{{ target }}"
  - id: again
    approval: required
    action: docker_restart
    container: "{{ target }}"
"#,
        )],
    );
    let options = Options {
        webhook_token: Some(TOKEN.to_owned()),
        alertmanager_url: Some(peer.clone()),
        approval_ttl: Some("1h".to_owned()),
        ..Options::with_catalog(catalog)
    };
    let app = TestApp::spawn(dir.path(), Some(&slack), options).await;
    let webhook = format!("{}/webhook/alertmanager", app.address);
    let ams = AlertmanagerCluster::start_on(ports, &config_yaml(&webhook, TOKEN)).await;
    // Through Alertmanager, as in production: it lists the alert while the run acts, so
    // following the silenced alert sees it still firing, not resolved.
    let labels = json!({"alertname": "Careful", "container": idle.name(), "severity": "critical"});
    let starts = OffsetDateTime::now_utc() - time::Duration::seconds(30);
    let firing = json!([prometheus_alert(
        &labels,
        &json!({"summary": "careful"}),
        &rfc3339(starts),
        &rfc3339(starts + time::Duration::hours(1)),
    )]);
    ams.post_alerts(&firing).await;

    said_within(&slack, "Approval needed for *again*", 60).await;
    let lifted = wait::until(Duration::from_secs(30), || async {
        ours(&peer, "active").await.is_empty() && ours(&peer, "expired").await.len() == 1
    })
    .await;
    assert!(
        lifted,
        "made at the restart, lifted for the approval: {:#}",
        json!(silences(&peer).await)
    );
    said_within(
        &slack,
        "Silence lifted (the run waits for a person's approval)",
        30,
    )
    .await;
    let calls = slack.calls();
    let thread = thread_of(&slack, &parents(&calls)[0].ts);
    let said = |text: &str| thread.iter().any(|t| t.contains(text));
    assert!(said("Silenced Careful in Alertmanager"), "{thread:#?}");
    assert!(
        said("Silence lifted (the run waits for a person's approval)"),
        "{thread:#?}"
    );
    app.stop().await;
}
