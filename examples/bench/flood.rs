//! Urgent alert under flood: a flood of distinct alerts no route matches, sent as fast as they
//! go, then one routed alert. What is timed is how long that one waits behind the flood.
//!
//! For alert-responder: from the urgent request's 2xx (its ack) to the start of its
//! destructive step (`docker_restart`), as the responder recorded it in `steps.started_at`
//! (written before the step acts; same machine, same wall clock as the bench's). Beside it the
//! bench's own observation of the step just before it (the fake registry's GET, "first
//! action"). For the peer: from its 2xx to the probe hook's command running (the command tells
//! the fakes). Also the journal backlog at the ack (from `/metrics`), how long the whole flood
//! took to drain, and whether every flood alert was recorded.

use std::time::{Duration, Instant, SystemTime};

use time::OffsetDateTime;

use crate::accounted::{wait_accounted, Source};
use crate::load::{self, alert_body, batch_body, Outcome, Target, Until};
use crate::phases::Ctx;
use crate::system::Running;
use crate::Figures;

/// Alerts per flood request: Alertmanager batches a group's alerts into one notification.
pub(crate) const BATCH: u64 = 10;
/// Client connections sending the flood.
const CONNECTIONS: u64 = 32;
/// How long the urgent alert may take before the run counts it as missing.
const URGENT_LIMIT: Duration = Duration::from_secs(300);

/// One run: what the urgent alert and the flood did.
#[derive(Debug, Default)]
struct Run {
    /// Urgent ack to destructive step started (responder) or command running (peer), ms.
    urgent_ms: Option<f64>,
    /// Urgent ack to the fake's first sighting (registry GET, or the peer's command), ms.
    action_ms: Option<f64>,
    /// The urgent request's round trip, ms.
    ack_ms: f64,
    /// `alert_responder_journal_pending` right after the urgent ack.
    pending: Option<f64>,
    flood: Outcome,
    /// Urgent ack to everything accounted for, s.
    drain_s: f64,
    /// Flood alerts not recorded once drained.
    missing: f64,
}

/// `runs` runs of each flood size, each on a fresh system; p50 and p99 (nearest rank over
/// the runs) of the urgent alert's wait, medians of the rest, the worst count of missing.
pub(crate) async fn flood(ctx: &Ctx<'_>, sizes: &[u64], runs: usize, f: &mut Figures) {
    for &size in sizes {
        let mut all = Vec::new();
        for run in 0..runs {
            let r = one(ctx, size, run as u64).await;
            eprintln!("  flood {size}, run {}: {r:?}", run + 1);
            all.push(r);
        }
        let p = format!("flood{size}");
        let ms = |pick: fn(&Run) -> Option<f64>| -> Vec<u64> {
            let mut v: Vec<u64> = all
                .iter()
                .filter_map(|r| pick(r).map(|ms| (ms.max(0.0) * 1000.0) as u64))
                .collect();
            v.sort_unstable();
            v
        };
        for (name, v) in [
            ("urgent", ms(|r| r.urgent_ms)),
            ("first_action", ms(|r| r.action_ms)),
        ] {
            f.insert(format!("{p}_{name}_p50_ms"), load::percentile(&v, 0.5));
            f.insert(format!("{p}_{name}_p99_ms"), load::percentile(&v, 0.99));
            f.insert(format!("{p}_{name}_missing"), (runs - v.len()) as f64);
        }
        let med = |pick: fn(&Run) -> f64| median(all.iter().map(pick).collect());
        f.insert(format!("{p}_urgent_ack_ms"), med(|r| r.ack_ms));
        f.insert(format!("{p}_send_s"), med(|r| r.flood.seconds));
        f.insert(
            format!("{p}_send_alerts_per_s"),
            med(|r| r.flood.per_second * BATCH as f64),
        );
        f.insert(format!("{p}_drain_s"), med(|r| r.drain_s));
        let worst = |pick: fn(&Run) -> f64| all.iter().map(pick).fold(0.0, f64::max);
        f.insert(format!("{p}_errors"), worst(|r| r.flood.errors as f64));
        f.insert(format!("{p}_recorded_missing"), worst(|r| r.missing));
        if ctx.kind.is_responder() {
            f.insert(
                format!("{p}_pending_at_ack"),
                med(|r| r.pending.unwrap_or(-1.0)),
            );
        }
    }
}

async fn one(ctx: &Ctx<'_>, size: u64, run: u64) -> Run {
    let sys = ctx.setup.start(ctx.kind, &format!("flood-{size}")).await;
    ctx.fakes.reset();
    // The peer runs its counting command per request; the responder has one endpoint.
    let target = Target::new(sys.urls("storm"), CONNECTIONS as usize);
    let requests = size.div_ceil(BATCH);
    let flood = load::closed_loop(&target, CONNECTIONS, Until::Sent(requests), move |i| {
        // `Flood…` matches no route of the bench catalog (`Bench.*`); one target per alert.
        let first = i * BATCH;
        batch_body("FloodUnrouted", first, BATCH.min(size - first), |k| {
            format!("arbench-f{k}")
        })
    })
    .await;
    // The urgent one: a routed, critical high-memory alert for its own target; `arbench-p<run>`
    // lets the fakes (and the peer's probe command) name it.
    let urgent = Target::new(sys.urls("probe"), 1);
    let body = alert_body("BenchHighMemoryUsage", &format!("arbench-p{run}"), run);
    let sent = Instant::now();
    let acked_ok = urgent.send(0, body).await;
    let (acked, acked_wall) = (Instant::now(), SystemTime::now());
    let responder = sys.kind.is_responder();
    let pending = if responder {
        journal_pending(&sys).await
    } else {
        None
    };
    assert!(acked_ok, "the urgent alert was not accepted");
    let (action, restart) = wait_urgent(ctx, &sys, run).await;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let action_ms = action.map(|a| ms(a.saturating_duration_since(acked)));
    let urgent_ms = if responder {
        restart.map(|t| since(acked_wall, t))
    } else {
        action_ms
    };
    let want = if responder { u64::MAX } else { flood.ok };
    let done = wait_accounted(&sys, want, Duration::from_secs(900)).await;
    let drain_s = acked.elapsed().as_secs_f64();
    // The responder's alerts include the urgent one; the peer's count file has a line per
    // flood request.
    let recorded = if responder {
        Source::open(&sys)
            .await
            .alerts(&sys)
            .await
            .saturating_sub(1)
    } else {
        done.processed * BATCH
    };
    sys.stop();
    Run {
        urgent_ms,
        action_ms,
        ack_ms: ms(acked - sent),
        pending,
        drain_s,
        missing: size.saturating_sub(recorded) as f64,
        flood,
    }
}

/// Waits for the urgent alert's first action (the fakes) and, for the responder, its
/// destructive step's record.
async fn wait_urgent(
    ctx: &Ctx<'_>,
    sys: &Running,
    run: u64,
) -> (Option<Instant>, Option<OffsetDateTime>) {
    let source = Source::open(sys).await;
    let deadline = Instant::now() + URGENT_LIMIT;
    let mut action = None;
    loop {
        if action.is_none() {
            action = ctx
                .fakes
                .seen
                .lock()
                .expect("no panic while holding the lock")
                .action
                .get(&run)
                .copied();
        }
        let restart = if sys.kind.is_responder() {
            source.restart_started().await.and_then(|t| {
                OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok()
            })
        } else {
            None
        };
        let done = action.is_some() && (restart.is_some() || !sys.kind.is_responder());
        if done || Instant::now() > deadline {
            return (action, restart);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Milliseconds from `from` (the bench's wall clock) to `to` (the responder's), signed.
fn since(from: SystemTime, to: OffsetDateTime) -> f64 {
    let from = OffsetDateTime::from(from);
    (to - from).as_seconds_f64() * 1000.0
}

/// `alert_responder_journal_pending` from the responder's `/metrics`.
async fn journal_pending(sys: &Running) -> Option<f64> {
    let text = reqwest::get(sys.metrics_url())
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| l.starts_with("alert_responder_journal_pending"))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
