//! An OOM kill seen by every replica is one incident: three replicas follow the same Docker
//! engine's events, each journals the death under the same dedup key, so the database holds
//! it once, as one incident with one run of the shipped oom-killed responder.

use std::time::Duration;

use crate::oom_responder::{run_until_oom_killed, Remove};
use crate::support::app::{shipped_catalog, SLACK_TOKEN};
use crate::support::fake_slack::FakeSlack;
use crate::support::postgres::fresh_database;
use crate::support::psql::literal;
use crate::support::replicas::{poll, ReplicaConfig, Replicas};

const REPLICAS: usize = 3;

#[tokio::test]
async fn an_oom_kill_seen_by_every_replica_is_one_incident() {
    let prefix = format!("k2-test-repoom-{}", std::process::id());
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let mut config = ReplicaConfig::new(shipped_catalog(), slack.api_url());
    config.oom_containers = format!("{prefix}-[0-9]");
    let set = Replicas::start(REPLICAS, &fresh_database(), &config).await;
    let db = &set.database;

    // containerd now and then loses a task's OOM event and the engine reports a plain
    // SIGKILL (see oom_responder.rs): either way each death must be one incident, but only a
    // death the engine calls an OOM runs the responder, so try up to three containers.
    let mut cleanup = Vec::new();
    let mut oom_killed = None;
    for attempt in 0..3 {
        let name = format!("{prefix}-{attempt}");
        cleanup.push(Remove(name.clone()));
        run_until_oom_killed(&name);
        let reasons_sql = format!(
            "SELECT alert::jsonb -> 'labels' ->> 'reason' FROM journal WHERE alert::jsonb -> 'labels' ->> 'container' = {}",
            literal(&name)
        );
        let reason = poll(
            &format!("the death of {name} journaled"),
            Duration::from_secs(30),
            || db.strings(&reasons_sql).into_iter().next(),
            || set.logs(),
        )
        .await;
        // Every replica has seen the event by now; any second record would be there.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let reasons = db.strings(&reasons_sql);
        assert_eq!(
            reasons.len(),
            1,
            "one journal entry for the death of {name}: {reasons:?}"
        );
        let incidents = db.count(&format!(
            "SELECT COUNT(*) FROM incidents WHERE target = {}",
            literal(&name)
        ));
        assert_eq!(
            incidents,
            1,
            "one incident for the death of {name}\n{}",
            set.logs()
        );
        if reason == "oom" {
            oom_killed = Some(name);
            break;
        }
        eprintln!("the engine reported no OOM for {name} (lost OOM event); trying again");
    }
    let name = oom_killed.expect("the engine saw none of three real OOM kills");
    let done = format!(
        "SELECT COUNT(*) FROM runs WHERE target = {} AND state = 'finished'",
        literal(&name)
    );
    poll(
        "the oom-killed run finished",
        Duration::from_secs(60),
        || (db.count(&done) >= 1).then_some(()),
        || set.logs(),
    )
    .await;
    // Anything journaled since (a second record of the death) is recorded by now.
    set.barrier().await;
    let runs = db.count(&format!(
        "SELECT COUNT(*) FROM runs WHERE target = {}",
        literal(&name)
    ));
    assert_eq!(runs, 1, "one run for one death\n{}", set.logs());
    let seen_by = set
        .replicas
        .iter()
        .filter(|r| r.log().contains(name.as_str()))
        .count();
    eprintln!("replicas/oom: the death of {name} is named in the logs of {seen_by} of {REPLICAS} replicas");
}
