//! Two replicas on one PostgreSQL database, their schedulers on one clock: both submit each
//! slot, the journal keeps one, and each slot runs once.

use alert_responder::sources::schedule::Clock;
use time::macros::datetime;

use super::{options, wait_for_closed, wait_for_mark};
use crate::support::app::{TestApp, SLACK_TOKEN};
use crate::support::fake_slack::FakeSlack;
use crate::support::postgres::fresh_database;
use crate::support::psql::Database;

#[tokio::test]
async fn two_replicas_run_each_slot_once() {
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    slack.add_channel(super::CHANNEL);
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database();
    let clock = Clock::manual(datetime!(2026-12-04 06:00 UTC));
    let a = TestApp::spawn_on(url.clone(), Some(&slack), options(dir.path(), &clock)).await;
    let b = TestApp::spawn_on(url.clone(), Some(&slack), options(dir.path(), &clock)).await;
    wait_for_mark(&a, clock.now()).await;

    for (n, slot) in [
        datetime!(2026-12-04 07:00 UTC),
        datetime!(2026-12-05 07:00 UTC),
    ]
    .into_iter()
    .enumerate()
    {
        clock.set(slot + time::Duration::seconds(3));
        // Both schedulers took the slot: the mark moves only once a slot is journaled.
        wait_for_mark(&a, slot).await;
        let closed = wait_for_closed(&b, n + 1).await;
        assert_eq!(closed.len(), n + 1, "{closed:#?}");
    }
    let database = Database::new(&url);
    assert_eq!(database.count("SELECT COUNT(*) FROM journal"), 2);
    assert_eq!(
        database.count("SELECT COUNT(*) FROM runs"),
        2,
        "one run per slot"
    );
    a.stop().await;
    b.stop().await;
}
