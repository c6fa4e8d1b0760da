//! A death recorded by one replica preempts the observing run another replica holds: the
//! request goes through the database, and the holder acts on it at its next renewal.

use std::time::{Duration, Instant};

use crate::preemption::{catalog, kill};
use crate::support::app::{am_alert, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::FakeSlack;
use crate::support::postgres::fresh_database;
use crate::support::psql::literal;
use crate::support::replicas::{poll, ReplicaConfig, Replicas};

#[tokio::test]
async fn a_death_recorded_by_one_replica_preempts_the_run_another_holds() {
    let watched = TestContainer::idle("reppre");
    let target = literal(watched.name());
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = ReplicaConfig::new(catalog(dir.path()), slack.api_url());
    config.oom_containers = watched.name().to_owned();
    // Long enough that the holder, paused below, keeps its run rather than have it reaped.
    config.env.push(("RESPONDER_LEASE", "30s".into()));
    let set = Replicas::start(2, &fresh_database(), &config).await;
    let alert = am_alert(
        "firing",
        "Watch",
        watched.name(),
        "a200000000000001",
        "2026-12-05T04:00:00Z",
    );
    set.replicas[0].post_alert_ok(&alert).await;
    let db = &set.database;
    let looked = format!(
        "SELECT r.owner FROM runs r JOIN steps s ON s.run_id = r.id
         WHERE r.target = {target} AND r.responder = 'watch' AND s.step_id = 'look' AND s.state = 'succeeded'"
    );
    let owner = first_row(&set, "the watch run looked", &looked).await;

    // The holder is paused, so the other replica records the death and asks through the
    // database; the holder hears of it only once resumed.
    let holder = &set.replicas[set.replicas.iter().position(|r| r.owner == owner).unwrap()];
    holder.pause();
    let killed = Instant::now();
    kill(watched.name());
    let asked = format!(
        "SELECT preempt_by FROM runs WHERE target = {target} AND responder = 'watch' AND preempt_by IS NOT NULL"
    );
    first_row(&set, "the death recorded by the other replica", &asked).await;
    holder.resume();
    let resumed = Instant::now();

    let revived = format!(
        "SELECT owner FROM runs WHERE target = {target} AND responder = 'revive' AND state = 'finished'"
    );
    let reviver = first_row(&set, "the death's run finished", &revived).await;
    eprintln!(
        "killed -> started again: {:?} ({:?} after the holder resumed)",
        killed.elapsed(),
        resumed.elapsed()
    );
    assert_ne!(reviver, owner, "the death's run ran on the other replica");
    let outcomes = db.strings(&format!(
        "SELECT outcome FROM runs WHERE target = {target} ORDER BY id"
    ));
    assert_eq!(outcomes, ["preempted", "succeeded"], "{}", set.logs());
    assert!(watched.is_running(), "started again");
    // The watch run would have verified 60 s after its look.
    assert!(
        killed.elapsed() < Duration::from_secs(40),
        "{:?}",
        killed.elapsed()
    );
}

/// The first value `sql` selects, once it selects one (within 30 s).
async fn first_row(set: &Replicas, what: &str, sql: &str) -> String {
    let db = &set.database;
    let first = || db.strings(sql).into_iter().next();
    poll(what, Duration::from_secs(30), first, || set.logs()).await
}
