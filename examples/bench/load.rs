//! Load: realistic Alertmanager v4 bodies, open-loop fixed-rate sending (latency measured from
//! each request's *scheduled* time, so a stalled server cannot hide its queue), closed-loop
//! saturation, and exact percentiles.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

/// Requests in flight at once before the generator counts a request as dropped: beyond it the
/// generator, not the server, would be the bottleneck.
const MAX_IN_FLIGHT: u64 = 4096;

/// Where and what to send: one URL per replica of the system under test.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) client: reqwest::Client,
    pub(crate) urls: Arc<[String]>,
}

impl Target {
    pub(crate) fn new(urls: Vec<String>, connections: usize) -> Self {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a plain HTTP client builds");
        Self {
            client,
            urls: urls.into(),
        }
    }

    /// Sends one body to replica `n` (modulo their number), as a load balancer doing round
    /// robin would; true for a 2xx.
    pub(crate) async fn send(&self, n: u64, body: String) -> bool {
        let url = &self.urls[(n % self.urls.len() as u64) as usize];
        match self
            .client
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
        {
            Ok(r) => {
                let ok = r.status().is_success();
                let _ = r.bytes().await;
                ok
            }
            Err(_) => false,
        }
    }
}

/// One Alertmanager v4 webhook carrying one firing alert (about 1.5 KB), for `target`
/// (a container name) and a unique start time `seq`, so every body has its own dedup key.
pub(crate) fn alert_body(alertname: &str, container: &str, seq: u64) -> String {
    envelope(
        alertname,
        &format!(r#","container":"{container}""#),
        &alert_json(alertname, container, seq),
    )
}

/// One webhook carrying `n` firing alerts of one group, as Alertmanager batches them: alert
/// `k` is for `container(first + k)` with start time `first + k`.
pub(crate) fn batch_body(
    alertname: &str,
    first: u64,
    n: u64,
    container: impl Fn(u64) -> String,
) -> String {
    let alerts: Vec<String> = (first..first + n)
        .map(|seq| alert_json(alertname, &container(seq), seq))
        .collect();
    envelope(alertname, "", &alerts.join(","))
}

/// The webhook around `alerts` (JSON objects, comma-separated); `common` adds to the common
/// labels (a leading comma, or nothing).
fn envelope(alertname: &str, common: &str, alerts: &str) -> String {
    format!(
        r#"{{"version":"4","groupKey":"{{}}:{{alertname=\"{alertname}\"}}","truncatedAlerts":0,"status":"firing","receiver":"responder","groupLabels":{{"alertname":"{alertname}"}},"commonLabels":{{"alertname":"{alertname}"{common},"severity":"critical"}},"commonAnnotations":{{}},"externalURL":"http://alertmanager.k2.internal:9093","alerts":[{alerts}]}}"#
    )
}

/// One firing alert (about 1.4 KB of JSON).
fn alert_json(alertname: &str, container: &str, seq: u64) -> String {
    let starts = OffsetDateTime::from_unix_timestamp_nanos(
        1_790_000_000_000_000_000 + i128::from(seq) * 1_000_000,
    )
    .expect("a 2026 timestamp is in range")
    .format(&time::format_description::well_known::Rfc3339)
    .expect("RFC 3339 formats any UTC time");
    let fingerprint = fingerprint(alertname, container);
    format!(
        r#"{{"status":"firing","labels":{{"alertname":"{alertname}","container":"{container}","instance":"{container}.k2.internal:9100","job":"cadvisor","namespace":"k2-market-data","service":"k2-stream-processor","severity":"critical","team":"platform","cluster":"k2-prod-eu-west-1"}},"annotations":{{"summary":"Container {container} memory usage above 90% for 5 minutes","description":"Memory working set of {container} is 93.7% of its limit (7.5 GiB of 8 GiB). The JVM heap is close to its maximum and the last three GC cycles reclaimed less than 2% each; an OOM kill is likely within minutes. Check the streaming query's state store size, the number of open Kafka partitions per executor and recent deploys before restarting.","runbook_url":"https://runbooks.k2.internal/k2-spark#alert-high-memory-usage-90","dashboard":"https://grafana.k2.internal/d/k2-containers/containers?var-container={container}&from=now-1h&to=now"}},"startsAt":"{starts}","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus.k2.internal:9090/graph?g0.expr=container_memory_working_set_bytes%7Bname%3D%22{container}%22%7D+%2F+container_spec_memory_limit_bytes+%3E+0.9&g0.tab=1","fingerprint":"{fingerprint}"}}"#
    )
}

fn fingerprint(alertname: &str, container: &str) -> String {
    // FNV-1a: stable across runs, unlike std's randomly keyed hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in alertname.bytes().chain(container.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// What a fixed-rate or saturation run measured.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub(crate) struct Outcome {
    pub(crate) sent: u64,
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    pub(crate) seconds: f64,
    pub(crate) per_second: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) p999_ms: f64,
    pub(crate) max_ms: f64,
}

/// Sends `rate` requests per second for `duration`, each at its scheduled instant whatever
/// the answers before it did (open loop). `body(i)` makes the i-th body.
pub(crate) async fn fixed_rate(
    target: &Target,
    rate: u64,
    duration: Duration,
    body: impl Fn(u64) -> String,
) -> Outcome {
    let total = rate * duration.as_secs();
    let in_flight = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let mut dropped = 0;
    let start = Instant::now();
    for i in 0..total {
        let due = start + Duration::from_nanos(i * 1_000_000_000 / rate);
        tokio::time::sleep_until(due.into()).await;
        if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
            dropped += 1;
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let (target, body, in_flight) = (target.clone(), body(i), in_flight.clone());
        tasks.spawn(async move {
            // Requests alternate between replicas; reqwest keeps each one's connections.
            let ok = target.send(i, body).await;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            (ok, due.elapsed())
        });
    }
    let mut outcome = collect(tasks, start).await;
    outcome.sent += dropped;
    outcome.errors += dropped;
    outcome.seconds = duration.as_secs_f64();
    outcome.per_second = outcome.ok as f64 / outcome.seconds;
    outcome
}

/// When a closed-loop run stops.
#[derive(Clone, Copy)]
pub(crate) enum Until {
    /// After this long (saturation).
    Elapsed(Duration),
    /// After this many requests (a storm).
    Sent(u64),
}

/// `connections` clients each send back to back (closed loop) until `until`: the rate the
/// server sustains when it is the bottleneck.
pub(crate) async fn closed_loop(
    target: &Target,
    connections: u64,
    until: Until,
    body: impl Fn(u64) -> String + Send + Sync + 'static,
) -> Outcome {
    let next = Arc::new(AtomicU64::new(0));
    let body = Arc::new(body);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for connection in 0..connections {
        let (target, next, body) = (target.clone(), next.clone(), body.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let done = match until {
                    Until::Elapsed(d) => start.elapsed() >= d,
                    Until::Sent(total) => i >= total,
                };
                if done {
                    return latencies;
                }
                let sent = Instant::now();
                // Each connection stays with one replica: round robin per connection.
                let ok = target.send(connection, body(i)).await;
                latencies.push((ok, sent.elapsed()));
            }
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done.expect("a load task does not panic"));
    }
    summarize(all, start.elapsed())
}

async fn collect(mut tasks: tokio::task::JoinSet<(bool, Duration)>, start: Instant) -> Outcome {
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.push(done.expect("a load task does not panic"));
    }
    summarize(all, start.elapsed())
}

fn summarize(all: Vec<(bool, Duration)>, elapsed: Duration) -> Outcome {
    let ok = all.iter().filter(|(ok, _)| *ok).count() as u64;
    let mut micros: Vec<u64> = all.iter().map(|(_, d)| d.as_micros() as u64).collect();
    micros.sort_unstable();
    let seconds = elapsed.as_secs_f64();
    Outcome {
        sent: all.len() as u64,
        ok,
        errors: all.len() as u64 - ok,
        seconds,
        per_second: ok as f64 / seconds,
        p50_ms: percentile(&micros, 0.50),
        p99_ms: percentile(&micros, 0.99),
        p999_ms: percentile(&micros, 0.999),
        max_ms: micros.last().map_or(0.0, |m| *m as f64 / 1000.0),
    }
}

/// The exact `q` quantile (nearest rank) of sorted microseconds, in milliseconds.
pub(crate) fn percentile(sorted_micros: &[u64], q: f64) -> f64 {
    if sorted_micros.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted_micros.len() as f64).ceil() as usize).clamp(1, sorted_micros.len());
    sorted_micros[rank - 1] as f64 / 1000.0
}
