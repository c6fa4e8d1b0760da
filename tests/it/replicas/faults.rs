//! Faults under a steady stream of distinct alerts: PostgreSQL stopped (as a crash would) and
//! started again, and one replica SIGKILLed. Every alert a replica acknowledged (2xx) is in
//! the journal afterwards, exactly once; while the database is down the replicas say so
//! (`/readyz` 503 with a reason, webhooks 503) and they recover without a restart.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::load::{is_ack, Answer, Load};
use super::{catalog, firing, wait_outbox_drained};
use crate::support::app::SLACK_TOKEN;
use crate::support::fake_slack::FakeSlack;
use crate::support::postgres::{fresh_database, PgServer};
use crate::support::psql::Database;
use crate::support::replicas::{Replica, ReplicaConfig, Replicas};

/// Bound on the replicas noticing the database is gone, and on their recovering once back.
const NOTICE: Duration = Duration::from_secs(30);

/// How many answers of a kind show the load flowing through a phase of a test (a quarter
/// of a second of load when all goes well).
const FLOWING: usize = 10;

/// Fails unless every acknowledged alert of `answers` is in the journal exactly once.
fn assert_every_ack_journaled_once(db: &Database, answers: &[Answer]) -> usize {
    let mut journaled: HashMap<String, usize> = HashMap::new();
    for key in db.strings("SELECT dedup_key FROM journal") {
        // `alertmanager:<fingerprint>:<startsAt nanos>:<status>`.
        let fingerprint = key.split(':').nth(1).unwrap_or_default().to_owned();
        *journaled.entry(fingerprint).or_default() += 1;
    }
    let acked: Vec<&String> = answers
        .iter()
        .filter(|(_, s, _)| is_ack(*s))
        .map(|(fp, _, _)| fp)
        .collect();
    let wrong: Vec<(&String, usize)> = acked
        .iter()
        .map(|fp| (*fp, journaled.get(*fp).copied().unwrap_or(0)))
        .filter(|(_, n)| *n != 1)
        .collect();
    assert!(
        wrong.is_empty(),
        "acknowledged alerts not journaled exactly once (fingerprint, times): {wrong:?}"
    );
    let duplicated: Vec<_> = journaled.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicated.is_empty(), "journaled twice: {duplicated:?}");
    acked.len()
}

/// `GET /readyz`: the status and the JSON body.
async fn readyz(replica: &Replica) -> (u16, Value) {
    let client = reqwest::Client::new();
    match client
        .get(format!("{}/readyz", replica.address))
        .timeout(Duration::from_secs(5))
        .send()
        .await
    {
        Ok(r) => (r.status().as_u16(), r.json().await.unwrap_or(Value::Null)),
        Err(e) => (0, Value::String(e.to_string())),
    }
}

/// Polls `/readyz` of `replica` until it answers `status`; returns the last body.
async fn wait_readyz(replica: &Replica, status: u16, set: &Replicas) -> Value {
    let deadline = Instant::now() + NOTICE;
    loop {
        let (got, body) = readyz(replica).await;
        if got == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "replica {} /readyz still {got} {body} after {NOTICE:?}, not {status}\n{}",
            replica.label,
            set.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn postgres_restart_under_load_loses_no_acknowledged_alert() {
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let mut pg = PgServer::start();
    pg.create_database("replicas");
    let mut config = ReplicaConfig::new(catalog(dir.path()), slack.api_url());
    // The outbox sends each message once through a database outage shorter than the lease
    // (docs/replicas.md); this one lasts about ten seconds, so the lease is the default's
    // double, not the other tests' 3 s.
    config.env.push(("RESPONDER_LEASE", "30s".to_owned()));
    let set = Replicas::start(2, &pg.url("replicas"), &config).await;
    let load = Load::start(set.webhook_urls());
    load.wait_for_more(
        "the load acknowledged before the fault",
        FLOWING,
        is_ack,
        || set.logs(),
    )
    .await;

    pg.stop();
    let stopped = Instant::now();
    let mut probe_times = Vec::new();
    for replica in &set.replicas {
        let body = wait_readyz(replica, 503, &set).await;
        assert!(
            body["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "503 with a reason: {body}"
        );
        let probed = Instant::now();
        let probe = replica
            .post_alertmanager(&firing("LoadAlert", "k2-test-probe", "ffff000000000001"))
            .await;
        probe_times.push(probed.elapsed().as_secs_f64());
        assert_eq!(
            probe.status(),
            503,
            "replica {} takes no alert",
            replica.label
        );
    }
    let to_notice = stopped.elapsed();
    // The load meets the outage: a webhook refuses one of its alerts. One, not more: while
    // the database is down a refusal can take the pool's whole acquire timeout (3 s).
    load.wait_for_more(
        "the load refused during the outage",
        1,
        |s| s == Some(503),
        || set.logs(),
    )
    .await;

    pg.start_again();
    let restarted = Instant::now();
    for replica in &set.replicas {
        wait_readyz(replica, 200, &set).await;
    }
    let to_recover = restarted.elapsed();
    load.wait_for_more("alerts acknowledged again", FLOWING, is_ack, || set.logs())
        .await;
    let answers = load.finish().await;
    for replica in &set.replicas {
        replica
            .post_alert_ok(&firing("LoadAlert", "k2-test-probe", "ffff000000000002"))
            .await;
    }
    let acked = assert_every_ack_journaled_once(&set.database, &answers);
    // Messages sent while the database was going away are sent once: the outbox, drained,
    // posted no message twice (same thread, same text).
    wait_outbox_drained(&set).await;
    let mut posted: HashMap<(Option<String>, String), usize> = HashMap::new();
    for message in slack.messages() {
        *posted.entry((message.thread_ts, message.text)).or_default() += 1;
    }
    let twice: Vec<_> = posted.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "Slack messages posted more than once: {twice:#?}\n{}",
        set.log_lines("delivery")
    );
    let refused = answers.iter().filter(|(_, s, _)| *s == Some(503)).count();
    let unanswered = answers.iter().filter(|(_, s, _)| s.is_none()).count();
    let slowest = answers
        .iter()
        .map(|(_, _, took)| *took)
        .max()
        .unwrap_or_default();
    eprintln!(
        "replicas/postgres restart: {} alerts sent, {acked} acknowledged, {refused} answered 503, \
         {unanswered} unanswered within 5 s, slowest answer {:.1} s, probes answered 503 in {probe_times:.1?} s; \
         /readyz 503 on both {:.1} s after the stop, 200 on both {:.1} s after the start",
        answers.len(),
        slowest.as_secs_f64(),
        to_notice.as_secs_f64(),
        to_recover.as_secs_f64()
    );
}

#[tokio::test]
async fn sigkill_of_a_replica_under_load_loses_no_acknowledged_alert() {
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let config = ReplicaConfig::new(catalog(dir.path()), slack.api_url());
    let mut set = Replicas::start(2, &fresh_database(), &config).await;
    let load = Load::start(set.webhook_urls());
    load.wait_for_more(
        "the load acknowledged before the kill",
        FLOWING,
        is_ack,
        || set.logs(),
    )
    .await;
    set.replicas[0].kill();
    let acked_at_kill = load.acknowledged();
    // The survivor goes on acknowledging while the load keeps trying the dead replica too
    // (every other alert goes there: refused, never acknowledged).
    tokio::join!(
        load.wait_for_more(
            "the survivor acknowledging after the kill",
            FLOWING,
            is_ack,
            || set.logs()
        ),
        load.wait_for_more(
            "the load trying the dead replica",
            FLOWING,
            |s| s.is_none(),
            || set.logs()
        ),
    );
    let answers = load.finish().await;
    let acked = assert_every_ack_journaled_once(&set.database, &answers);
    assert!(
        acked > acked_at_kill,
        "the survivor kept acknowledging: {acked} <= {acked_at_kill}\n{}",
        set.logs()
    );
    eprintln!(
        "replicas/sigkill under load: {} alerts sent, {acked} acknowledged ({acked_at_kill} before the kill)",
        answers.len()
    );
}
