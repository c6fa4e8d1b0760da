//! SIGKILL under load: the real binary takes 5,000 distinct alerts from concurrent senders, is
//! killed mid-load, and restarted on the same database; the senders retry what got no 2xx,
//! as Alertmanager does. Every acknowledged alert is in the store and processed exactly once,
//! no run is started twice, runs the crash cut short are reported as interrupted, and the one
//! real container's restart (a budgeted destructive step) happened at most once.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::load::Load;
use super::{database_url, one_route, query_i64, serve_command};
use crate::support::app::am_alert;
use crate::support::binary::{free_port, Child};
use crate::support::docker::TestContainer;

const ALERTS: usize = 5_000;
/// Every this many alerts, one targets the real container (the rest name containers that
/// only a `report` step sees).
const REAL_EVERY: usize = 250;
/// Every this many alerts (others than the real container's), one names a slow target whose
/// run waits a second, so that the kill finds runs in flight.
const SLOW_EVERY: usize = 100;

/// Writes the catalog: a cheap `report` step for every target, and a restart, budgeted to
/// one per hour, that only the real container's alerts reach.
fn catalog(dir: &Path, real: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let responder = format!(
        r#"
name: crash-load
description: Note the alert; restart the real container, at most once an hour.
target: "{{{{ alert.labels.container }}}}"
allow_targets: ['k2-test-.*']
budget: {{ cooldown: 1h, max: 1, per: 1h }}
timeout: 1m
steps:
  - id: note
    action: report
    text: "Seen {{{{ alert.labels.container }}}}"
  - id: linger
    when: "'slow' in alert.labels.container"
    after: 1s
    action: report
    text: "Still here"
  - id: restart
    when: "alert.labels.container == '{real}'"
    action: docker_restart
    container: "{{{{ target }}}}"
    stop_timeout: 5s
    timeout: 30s
"#
    );
    one_route(dir, "CrashLoad", "crash-load", &responder)
}

fn serve(dir: &Path, port: u16, catalog: &(std::path::PathBuf, std::path::PathBuf)) -> Child {
    let mut cmd = serve_command(dir, port, catalog);
    cmd.env("RESPONDER_SHUTDOWN_DRAIN", "0s")
        // The budget brake, not the global rate, is what this test is about.
        .env("RESPONDER_ACTIONS_PER_MINUTE", "1000")
        .env("RESPONDER_MAX_RUNS", "32");
    Child::spawn(cmd, dir)
}

fn bodies(real: &str) -> Vec<Value> {
    (0..ALERTS)
        .map(|n| {
            // The real container's alert fires again and again (one incident, a run each
            // time, the budget deciding); every other alert is its own incident.
            if n % REAL_EVERY == 0 {
                let starts_at = format!("2026-11-27T05:{:02}:00Z", n / REAL_EVERY);
                return am_alert("firing", "CrashLoad", real, "c0000000000real0", &starts_at);
            }
            let container = if n % SLOW_EVERY == 1 {
                format!("k2-test-crash-slow-{n}")
            } else {
                format!("k2-test-crash-load-{n}")
            };
            am_alert(
                "firing",
                "CrashLoad",
                &container,
                &format!("c{n:015x}"),
                "2026-11-27T05:00:00Z",
            )
        })
        .collect()
}

/// Waits until the journal is drained and no run is pending or running. What is asserted is
/// that the drain never stalls, not how fast it goes: a loaded 2-core machine running the whole
/// suite drains this backlog in one to several minutes. It fails when the counts stop moving
/// for a minute (a stuck dispatcher), or after ten minutes in all.
async fn wait_settled(url: &str) {
    let started = Instant::now();
    let (mut last, mut moved) = ((-1, -1, -1), Instant::now());
    loop {
        let unprocessed = query_i64(url, "SELECT COUNT(*) FROM journal WHERE processed = 0").await;
        let open = query_i64(
            url,
            "SELECT COUNT(*) FROM runs WHERE state IN ('pending', 'running')",
        )
        .await;
        let journal = query_i64(url, "SELECT COUNT(*) FROM journal").await;
        if journal == ALERTS as i64 && unprocessed == 0 && open == 0 {
            return;
        }
        if (journal, unprocessed, open) != last {
            (last, moved) = ((journal, unprocessed, open), Instant::now());
        }
        assert!(
            moved.elapsed() < Duration::from_secs(60)
                && started.elapsed() < Duration::from_secs(600),
            "the restarted server stopped settling: {journal} of {ALERTS} alerts in the journal, \
             {unprocessed} unprocessed, {open} runs pending or running, unchanged for {:?} \
             ({:?} since it started)",
            moved.elapsed(),
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn sigkill_under_load_loses_no_acknowledged_alert_and_never_acts_twice() {
    let real = TestContainer::idle("crash");
    assert_eq!(real.starts(), 1);
    // fsync is free on tmpfs, so the test measures crash behaviour, not this disk's latency;
    // SIGKILL leaves the page cache to the kernel either way.
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let catalog = catalog(dir.path(), real.name());
    let port = free_port();
    let mut server = serve(dir.path(), port, &catalog);
    server.wait_healthy(port).await;

    let load = Load::new(&format!("http://127.0.0.1:{port}"));
    let mut senders = load.start(bodies(real.name()), 32);
    load.wait_acked(ALERTS / 3).await;
    let url = database_url(dir.path());
    let slow_running =
        "SELECT COUNT(*) FROM runs WHERE state = 'running' AND target LIKE 'k2-test-crash-slow-%'";
    for _ in 0..6_000 {
        if query_i64(&url, slow_running).await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill();
    let acked_at_kill = load.acked.load(Ordering::SeqCst);
    let journal_at_kill = query_i64(&url, "SELECT COUNT(*) FROM journal").await;
    assert!(
        journal_at_kill >= acked_at_kill as i64,
        "every alert acknowledged before the kill is in the journal: {journal_at_kill} < {acked_at_kill}"
    );

    // Restarted on the same database (a new port, as a new pod would have).
    let port = free_port();
    let mut server = serve(dir.path(), port, &catalog);
    server.wait_healthy(port).await;
    load.retarget(&format!("http://127.0.0.1:{port}"));
    while senders.join_next().await.is_some() {}
    assert_eq!(
        load.acked.load(Ordering::SeqCst),
        ALERTS,
        "every alert got a 2xx in the end"
    );
    wait_settled(&url).await;
    let status = server.terminate().await;
    assert!(status.success(), "{}", server.output());

    let count = |sql: &'static str| query_i64(&url, sql);
    // In the store, once each.
    assert_eq!(
        count("SELECT COUNT(DISTINCT dedup_key) FROM journal").await,
        ALERTS as i64
    );
    assert_eq!(count("SELECT COUNT(*) FROM journal").await, ALERTS as i64);
    assert_eq!(
        count("SELECT COUNT(*) FROM journal WHERE processed = 0").await,
        0
    );
    // Processed exactly once: one alert row and one incident per journal entry.
    assert_eq!(
        count("SELECT COUNT(DISTINCT journal_id) FROM alerts").await,
        ALERTS as i64
    );
    assert_eq!(count("SELECT COUNT(*) FROM alerts").await, ALERTS as i64);
    let real_alerts = ALERTS.div_ceil(REAL_EVERY) as i64;
    assert_eq!(
        count("SELECT COUNT(*) FROM incidents").await,
        ALERTS as i64 - real_alerts + 1
    );
    // One run per alert, or the alert joined a run of its incident still waiting to start
    // (recorded as a decision); none started twice (each step recorded at most once per run).
    let joined = count("SELECT COUNT(*) FROM decisions WHERE kind = 'joined'").await;
    assert_eq!(
        count("SELECT COUNT(*) FROM runs").await + joined,
        ALERTS as i64
    );
    assert_eq!(
        count("SELECT COUNT(DISTINCT alert_id) FROM runs").await + joined,
        ALERTS as i64
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM (SELECT run_id, step_id FROM steps GROUP BY run_id, step_id HAVING COUNT(*) > 1)").await,
        0
    );
    // Runs the kill cut short are reported as interrupted, each with an escalation queued.
    let interrupted = count("SELECT COUNT(*) FROM runs WHERE state = 'interrupted'").await;
    assert!(interrupted >= 1, "the kill found a slow run in flight");
    assert_eq!(
        count("SELECT COUNT(*) FROM outbox WHERE kind = 'reply' AND text LIKE '%interrupted by a restart%'").await,
        interrupted
    );
    // The destructive step: budgeted to one, done at most once, and the engine agrees.
    let budget_uses = count("SELECT COUNT(*) FROM budget_uses").await;
    assert!(budget_uses <= 1, "{budget_uses} budget uses");
    let restarted = count(
        "SELECT COUNT(*) FROM steps WHERE step_id = 'restart' AND state IN ('succeeded', 'unknown')",
    )
    .await;
    assert!(restarted <= 1, "{restarted} restarts recorded");
    let restarts = real.starts() - 1;
    assert!(restarts <= 1, "the container restarted {restarts} times");
    let succeeded =
        count("SELECT COUNT(*) FROM steps WHERE step_id = 'restart' AND state = 'succeeded'").await;
    assert!(restarts as i64 >= succeeded, "a recorded restart happened");
    eprintln!(
        "crash: {ALERTS} alerts, {acked_at_kill} acknowledged before SIGKILL ({journal_at_kill} in the journal), \
         {} retried attempts, {interrupted} runs interrupted, {restarts} restart(s), {budget_uses} budget use(s)",
        load.retried.load(Ordering::SeqCst)
    );
}
