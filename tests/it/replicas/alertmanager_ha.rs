//! Three replicas behind a real HA Alertmanager pair whose receiver lists all three: every
//! notification reaches every replica, and still one incident, one run, one restart of the
//! container and one Slack thread, each message sent once and in thread order.

use std::time::Instant;

use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{count_for, only_parent, runs_of, start_replicas, wait_outbox_drained, wait_runs_done};
use crate::support::alertmanager::{prometheus_alert, AlertmanagerCluster};
use crate::support::app::SLACK_TOKEN;
use crate::support::docker::TestContainer;
use crate::support::fake_slack::FakeSlack;
use crate::support::psql::literal;
use crate::support::replicas::WEBHOOK_TOKEN;

const REPLICAS: usize = 3;

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("formats as RFC 3339")
}

#[tokio::test]
async fn an_alert_through_an_ha_pair_to_three_replicas_restarts_once_in_one_thread() {
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let hog = TestContainer::memory_hog("rep-am");
    let set = start_replicas(REPLICAS, dir.path(), &slack).await;
    let ams = AlertmanagerCluster::start_for(2, &set.webhook_urls(), WEBHOOK_TOKEN).await;

    let labels =
        json!({"alertname": "HighMemoryUsage", "container": hog.name(), "severity": "critical"});
    let starts = OffsetDateTime::now_utc();
    let posted = Instant::now();
    ams.post_alerts(&json!([prometheus_alert(
        &labels,
        &json!({"summary": "memory above 90%"}),
        &rfc3339(starts),
        &rfc3339(starts + time::Duration::hours(1)),
    )]))
    .await;
    wait_runs_done(&set, hog.name(), 1).await;
    let to_done = posted.elapsed();

    // Past the second peer's turn: every delivery to every replica (and any HA duplicate)
    // has been answered, and once a barrier is recorded, so is whatever it became, which
    // must have been a no-op.
    ams.wait_first_flush_over(REPLICAS).await;
    set.barrier().await;
    let (sent, failed) = ams.webhook_notifications().await;
    assert_eq!(failed, 0, "every notification acknowledged\n{}", ams.logs());
    assert!(
        sent >= REPLICAS as u64,
        "the notification went to every replica: {sent} sent\n{}",
        ams.logs()
    );
    let db = &set.database;
    let journaled = db.count(&format!(
        "SELECT COUNT(*) FROM journal WHERE alert::text LIKE {}",
        literal(&format!("%{}%", hog.name()))
    ));
    assert_eq!(journaled, 1, "one journal entry for the alert instance");
    assert_eq!(count_for(db, "incidents", hog.name()), 1, "one incident");
    let runs = runs_of(db, hog.name());
    assert_eq!(runs.len(), 1, "one run: {runs:?}\n{}", set.logs());
    let detail = &set.replicas[REPLICAS - 1].incidents_of(hog.name()).await[0];
    assert_eq!(detail["runs"][0]["outcome"], "succeeded", "{detail:#}");
    assert_eq!(hog.starts(), 2, "restarted exactly once");

    // One parent, every other message a reply in its thread; each outbox message posted
    // once, and the replies posted in the order the outbox holds them.
    wait_outbox_drained(&set).await;
    let parent = only_parent(&slack, hog.name());
    let messages = slack.messages();
    let stray: Vec<_> = messages
        .iter()
        .filter(|m| m.ts != parent.ts && m.thread_ts.as_deref() != Some(parent.ts.as_str()))
        .collect();
    assert!(stray.is_empty(), "messages outside the thread: {stray:#?}");
    let outbox_ts = db.strings(
        "SELECT ts FROM outbox WHERE destination = 'slack' AND state = 'sent' \
         AND kind IN ('parent', 'reply') ORDER BY id",
    );
    let posted_ts: Vec<String> = messages.iter().map(|m| m.ts.clone()).collect();
    assert_eq!(
        outbox_ts, posted_ts,
        "each outbox message posted once, in outbox order"
    );
    assert!(
        messages.len() >= 3,
        "a parent and its step replies: {messages:#?}"
    );
    eprintln!(
        "replicas/alertmanager: {REPLICAS} replicas, post -> run done {:.1} s, \
         {sent} webhook deliveries, {} Slack messages",
        to_done.as_secs_f64(),
        messages.len()
    );
}
