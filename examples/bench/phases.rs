//! The measured phases. Each starts its system afresh, loads it, records figures, stops it.

use std::time::{Duration, Instant};

use crate::accounted::wait_accounted;
use crate::fakes::Fakes;
use crate::load::{self, alert_body, Outcome, Target, Until};
use crate::system::{Kind, Running, Setup};
use crate::Figures;

/// Probes in the response phase, sent at [`PROBE_RATE`] per second.
const PROBES: u64 = 600;
const PROBE_RATE: u64 = 20;
/// Targets the intake and storm alerts spread over.
const TARGETS: u64 = 1_000;
/// Client connections for the storm (saturation tries each of `--connections`).
const CONNECTIONS: u64 = 64;

/// What every phase needs.
pub(crate) struct Ctx<'a> {
    pub(crate) setup: &'a Setup,
    pub(crate) fakes: &'a Fakes,
    pub(crate) kind: Kind,
    pub(crate) seconds: Duration,
    /// Client connection counts the saturation run is tried with.
    pub(crate) connections: &'a [u64],
}

fn put(f: &mut Figures, prefix: &str, o: &Outcome) {
    f.insert(format!("{prefix}_per_s"), o.per_second);
    f.insert(format!("{prefix}_p50_ms"), o.p50_ms);
    f.insert(format!("{prefix}_p99_ms"), o.p99_ms);
    f.insert(format!("{prefix}_p999_ms"), o.p999_ms);
    f.insert(format!("{prefix}_errors"), o.errors as f64);
}

/// Footprint, saturation throughput and ack latency at fixed rates.
pub(crate) async fn intake(ctx: &Ctx<'_>, rates: &[u64], f: &mut Figures) {
    let sys = ctx.setup.start(ctx.kind, "intake").await;
    f.insert("ready_ms".into(), sys.ready.as_secs_f64() * 1000.0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    f.insert("idle_rss_mb".into(), sys.memory().0);
    let most = ctx.connections.iter().copied().max().unwrap_or(CONNECTIONS);
    let target = Target::new(sys.urls("alertmanager"), most as usize);
    let body = |offset: u64| {
        move |i: u64| {
            alert_body(
                "BenchIntake",
                &format!("arbench-t{}", i % TARGETS),
                offset + i,
            )
        }
    };
    // Group commit batches at most the requests in flight, so the connection count matters:
    // the best of the tried counts is "saturation", each is reported too.
    let mut best: Option<Outcome> = None;
    let (cpu_before, mut acked) = (sys.cpu_seconds(ctx.setup), 0);
    for (n, connections) in ctx.connections.iter().enumerate() {
        if n > 0 {
            settle(&sys).await;
        }
        let offset = (n as u64 + 1) * 1_000_000_000;
        let sat = load::closed_loop(
            &target,
            *connections,
            Until::Elapsed(ctx.seconds),
            body(offset),
        )
        .await;
        eprintln!("  saturation, {connections} connections: {sat:?}");
        put(f, &format!("saturation_c{connections}"), &sat);
        acked += sat.ok;
        if best.as_ref().is_none_or(|b| sat.per_second > b.per_second) {
            best = Some(sat);
        }
    }
    if let Some(sat) = best {
        put(f, "saturation", &sat);
    }
    // Everything an accepted alert costs, acknowledging and recording it: the saturation
    // runs and the settling after the last. What bounds intake on a machine of N cores is
    // about N × 1,000 / this (less what the load generator takes).
    settle(&sys).await;
    let cpu = sys.cpu_seconds(ctx.setup) - cpu_before;
    f.insert(
        "cpu_ms_per_1000_alerts".into(),
        cpu * 1e6 / acked.max(1) as f64,
    );
    for (n, rate) in rates.iter().enumerate() {
        settle(&sys).await;
        let o = load::fixed_rate(
            &target,
            *rate,
            ctx.seconds,
            body((n as u64 + 1) * 10_000_000),
        )
        .await;
        eprintln!("  {rate}/s: {o:?}");
        put(f, &format!("ack_{rate}"), &o);
    }
    f.insert("intake_peak_rss_mb".into(), sys.memory().1);
    sys.stop();
}

/// Lets the system finish the previous load's background work before the next measurement.
async fn settle(sys: &Running) {
    if sys.kind.is_responder() {
        let _ = wait_accounted(sys, u64::MAX, Duration::from_secs(60)).await;
    } else {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Webhook to first Slack message, and to the start of the first action, per alert.
pub(crate) async fn response(ctx: &Ctx<'_>, f: &mut Figures) {
    let sys = ctx.setup.start(ctx.kind, "response").await;
    ctx.fakes.reset();
    let target = Target::new(sys.urls("probe"), 16);
    let start = Instant::now();
    let mut sent = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..PROBES {
        let due = start + Duration::from_nanos(i * 1_000_000_000 / PROBE_RATE);
        tokio::time::sleep_until(due.into()).await;
        sent.push(due);
        // To every replica at once, as a pair of Alertmanagers listing each would: the first
        // copy recorded wins, the other is a journal duplicate. Latency counts from this send.
        for replica in 0..target.urls.len() as u64 {
            let (t, body) = (
                target.clone(),
                alert_body("BenchProbe", &format!("arbench-p{i}"), i),
            );
            tasks.spawn(async move { t.send(replica, body).await });
        }
    }
    while tasks.join_next().await.is_some() {}
    let deadline = Instant::now() + Duration::from_secs(30);
    let wants_slack = ctx.kind.is_responder();
    loop {
        let done = {
            let seen = ctx
                .fakes
                .seen
                .lock()
                .expect("no panic while holding the lock");
            seen.action.len() as u64 >= PROBES
                && (!wants_slack || seen.slack.len() as u64 >= PROBES)
        };
        if done || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = ctx
        .fakes
        .seen
        .lock()
        .expect("no panic while holding the lock");
    let lat = |map: &std::collections::HashMap<u64, Instant>| {
        let mut micros: Vec<u64> = (0..PROBES)
            .filter_map(|i| Some(map.get(&i)?.duration_since(sent[i as usize]).as_micros() as u64))
            .collect();
        micros.sort_unstable();
        (micros.len(), micros)
    };
    let (n, action) = lat(&seen.action);
    f.insert("first_action_p50_ms".into(), load::percentile(&action, 0.5));
    f.insert(
        "first_action_p99_ms".into(),
        load::percentile(&action, 0.99),
    );
    f.insert("first_action_missing".into(), (PROBES as usize - n) as f64);
    if wants_slack {
        let (n, slack) = lat(&seen.slack);
        f.insert("first_slack_p50_ms".into(), load::percentile(&slack, 0.5));
        f.insert("first_slack_p99_ms".into(), load::percentile(&slack, 0.99));
        f.insert("first_slack_missing".into(), (PROBES as usize - n) as f64);
    }
    drop(seen);
    sys.stop();
}

/// `total` alerts over [`TARGETS`] targets as fast as they come; then wait until each is
/// accounted for.
pub(crate) async fn storm(ctx: &Ctx<'_>, total: u64, f: &mut Figures) {
    let sys = ctx.setup.start(ctx.kind, "storm").await;
    ctx.fakes.reset();
    let target = Target::new(sys.urls("storm"), CONNECTIONS as usize);
    let start = Instant::now();
    let sent = load::closed_loop(&target, CONNECTIONS, Until::Sent(total), move |i| {
        alert_body("BenchStorm", &format!("arbench-t{}", i % TARGETS), i)
    })
    .await;
    eprintln!("  storm sent: {sent:?}");
    f.insert("storm_send_s".into(), sent.seconds);
    f.insert("storm_errors".into(), sent.errors as f64);
    let accounted = wait_accounted(&sys, sent.ok, Duration::from_secs(900)).await;
    f.insert("storm_accounted_s".into(), start.elapsed().as_secs_f64());
    f.insert("storm_accounted".into(), accounted.processed as f64);
    f.insert("storm_peak_rss_mb".into(), sys.memory().1);
    if sys.kind.is_responder() {
        f.insert("storm_runs".into(), accounted.runs as f64);
        f.insert("storm_restarts".into(), accounted.restarts as f64);
        f.insert("storm_slack_calls".into(), ctx.fakes.slack_calls() as f64);
    }
    sys.stop();
}
