//! The live task: follow the engine's event stream, store each death, and when the stream
//! breaks (engine restart, network), reconnect with a bounded backoff and resume from the
//! last event handled, so deaths during the gap are still delivered.
//!
//! Resuming replays some events already handled; their alerts have the same dedup keys, so
//! the journal makes them no-ops. The engine keeps only a bounded in-memory buffer of recent
//! events, emptied when it restarts: deaths that fell out of it before the resume are lost.

use std::collections::HashMap;
use std::pin::pin;
use std::time::Duration;

use bollard::models::EventMessage;
use bollard::query_parameters::{EventsOptions, EventsOptionsBuilder, InspectContainerOptions};
use bollard::Docker;
use futures::{Stream, StreamExt};
use regex::Regex;
use time::OffsetDateTime;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::corruption::{self, Corruption};
use super::last_words::last_lines;
use super::{event_time, read_event, to_alert, ContainerEvent, Death, Deaths, Kind, SIGKILL_EXIT};
use crate::store::{Intake, Receipt, StoreError};

/// The first reconnect delay; it doubles per failed attempt.
const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// The longest reconnect delay.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often a waiting `oom` is checked for a `die` that never came.
const EXPIRY_TICK: Duration = Duration::from_millis(250);
/// How long reading a dead container's `OOMKilled` flag may hold up the event stream.
const INSPECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long reading a dead container's last log lines may hold up the event stream.
const LOGS_TIMEOUT: Duration = Duration::from_secs(3);

/// Follows the engine's `oom` / `die` events of containers matching `allow` and submits one
/// alert per death to `intake`, until `shutdown` is cancelled.
pub async fn run(docker: Docker, allow: Regex, intake: Intake, shutdown: CancellationToken) {
    tracing::info!(containers = allow.as_str(), "Following Docker OOM kills.");
    // Starting from now rather than "live" covers the moment before the subscription is up.
    let mut follower = Follower::new(allow, intake, OffsetDateTime::now_utc());
    follower.engine = Some(docker.clone());
    let mut delay = MIN_BACKOFF;
    loop {
        let since = follower.subscribe();
        let subscribed = Instant::now();
        let end = follower
            .follow(docker.events(Some(options(since))), &shutdown)
            .await;
        let (reason, healthy) = match end {
            End::Shutdown => return,
            End::Broken { reason, healthy } => (reason, healthy),
        };
        // A quiet stream that stayed up a while was healthy too (events are rare).
        if healthy || subscribed.elapsed() >= MAX_BACKOFF {
            delay = MIN_BACKOFF;
        }
        tracing::warn!(
            error.message = %reason,
            retry_in_s = delay.as_secs(),
            since = %since_param(follower.resume_from()),
            "Docker event stream broke; reconnecting and resuming from the last event handled."
        );
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => return,
        }
        delay = (delay * 2).min(MAX_BACKOFF);
    }
}

fn options(since: OffsetDateTime) -> EventsOptions {
    let mut filters = HashMap::new();
    filters.insert("type", vec!["container"]);
    filters.insert("event", vec!["oom", "die", "start"]);
    EventsOptionsBuilder::default()
        .filters(&filters)
        .since(&since_param(since))
        .build()
}

/// The engine's `since` syntax with nanoseconds: `<unix seconds>.<nanoseconds>`.
fn since_param(t: OffsetDateTime) -> String {
    format!("{}.{:09}", t.unix_timestamp(), t.nanosecond())
}

/// Why one subscription ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The service is stopping.
    Shutdown,
    /// The stream ended or failed, or a death could not be stored.
    Broken {
        /// What happened, for the log.
        reason: String,
        /// Whether the stream worked before breaking (resets the backoff).
        healthy: bool,
    },
}

/// The state that outlives one subscription: waiting `oom`s and where to resume.
#[derive(Debug)]
struct Follower {
    allow: Regex,
    intake: Intake,
    deaths: Deaths,
    /// The newest event handled: its deaths are durable.
    cursor: OffsetDateTime,
    /// The first event of a death that could not be stored, to replay it.
    unstored: Option<OffsetDateTime>,
    /// Totals over every subscription.
    totals: Receipt,
    /// The engine, asked for its `OOMKilled` flag when a container dies with SIGKILL.
    engine: Option<Docker>,
}

impl Follower {
    fn new(allow: Regex, intake: Intake, start: OffsetDateTime) -> Self {
        Self {
            allow,
            intake,
            deaths: Deaths::default(),
            cursor: start,
            unstored: None,
            totals: Receipt {
                accepted: 0,
                duplicates: 0,
            },
            engine: None,
        }
    }

    /// Where the next subscription must start to see every death not yet stored whole.
    fn resume_from(&self) -> OffsetDateTime {
        [self.deaths.earliest_pending(), self.unstored]
            .into_iter()
            .flatten()
            .fold(self.cursor, OffsetDateTime::min)
    }

    /// Starts a subscription: returns its `since` and forgets what it will replay.
    fn subscribe(&mut self) -> OffsetDateTime {
        let since = self.resume_from();
        self.deaths.forget_since(since);
        self.unstored = None;
        self.cursor = since;
        since
    }

    /// Handles one subscription's events until it breaks or `shutdown` is cancelled.
    async fn follow(
        &mut self,
        events: impl Stream<Item = Result<EventMessage, bollard::errors::Error>>,
        shutdown: &CancellationToken,
    ) -> End {
        let mut events = pin!(events);
        // The last event's engine time and when it arrived: the engine's clock, estimated
        // without trusting ours to agree with it (DOCKER_HOST may be another machine).
        let mut last: Option<(OffsetDateTime, Instant)> = None;
        let mut tick = tokio::time::interval(EXPIRY_TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut healthy = false;
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return End::Shutdown,
                item = events.next() => {
                    let msg = match item {
                        Some(Ok(msg)) => msg,
                        Some(Err(e)) => return End::Broken { reason: e.to_string(), healthy },
                        None => return End::Broken {
                            reason: "the engine closed the event stream".to_owned(),
                            healthy,
                        },
                    };
                    healthy = true;
                    let Some(time) = event_time(&msg) else {
                        tracing::debug!(action = ?msg.action, "Docker event without a time; ignored.");
                        continue;
                    };
                    last = Some((time, Instant::now()));
                    let (done, corrupt) = match read_event(&msg, &self.allow) {
                        Ok(event) => {
                            let mut done = Vec::new();
                            if self.oom_flagged(&event).await {
                                // The engine's flag is the `oom` event, however late that comes.
                                let oom = ContainerEvent { kind: Kind::Oom, ..event.clone() };
                                done = self.deaths.push(oom);
                            }
                            let corrupt = self.corruption(&event).await;
                            done.extend(self.deaths.push(event));
                            (done, corrupt)
                        }
                        Err(skip) => {
                            tracing::debug!(reason = %skip, "Docker event ignored.");
                            (self.deaths.expire(time), None)
                        }
                    };
                    if let Err(e) = self.store(done, corrupt).await {
                        return End::Broken { reason: e.to_string(), healthy: false };
                    }
                    self.cursor = self.cursor.max(time);
                }
                _ = tick.tick() => {
                    let Some((time, at)) = last else { continue };
                    let done = self.deaths.expire(time + at.elapsed());
                    if let Err(e) = self.store(done, None).await {
                        return End::Broken { reason: e.to_string(), healthy: false };
                    }
                }
            }
        }
    }

    /// Whether `event` is a `die` 137 with no `oom` waiting for it, of a container the engine
    /// flags `OOMKilled`. The flag and the `oom` event come from the same report of containerd,
    /// so either one settles the reason, and the death need not wait for the other.
    async fn oom_flagged(&self, event: &ContainerEvent) -> bool {
        let Some(engine) = &self.engine else {
            return false;
        };
        if event.kind
            != (Kind::Die {
                exit_code: SIGKILL_EXIT,
            })
            || self.deaths.oom_waits(&event.id)
        {
            return false;
        }
        let inspect = engine.inspect_container(&event.id, None::<InspectContainerOptions>);
        match tokio::time::timeout(INSPECT_TIMEOUT, inspect).await {
            Ok(Ok(details)) => details.state.and_then(|s| s.oom_killed).unwrap_or(false),
            Ok(Err(e)) => {
                tracing::debug!(container = %event.name, error.message = %e, "Could not read the OOMKilled flag; the events decide.");
                false
            }
            Err(_) => false,
        }
    }

    /// The corruption a container that exited on its own shows in its last log lines, if
    /// any; a read that fails or takes too long leaves the death what it was.
    async fn corruption(&self, event: &ContainerEvent) -> Option<Corruption> {
        let engine = self.engine.as_ref()?;
        match event.kind {
            Kind::Die { exit_code } if corruption::exited_on_its_own(exit_code) => {}
            _ => return None,
        }
        match tokio::time::timeout(LOGS_TIMEOUT, last_lines(engine, &event.id)).await {
            Ok(Ok(lines)) => corruption::diagnose(event, lines.iter().map(String::as_str)),
            Ok(Err(e)) => {
                tracing::debug!(container = %event.name, error.message = %e, "Could not read a dead container's logs; no corruption check.");
                None
            }
            Err(_) => {
                tracing::warn!(container = %event.name, "Reading a dead container's logs timed out; no corruption check.");
                None
            }
        }
    }

    /// Makes the alerts of `deaths` and `corrupt` durable; on failure remembers where to
    /// replay them from.
    async fn store(
        &mut self,
        deaths: Vec<Death>,
        corrupt: Option<Corruption>,
    ) -> Result<(), StoreError> {
        if deaths.is_empty() && corrupt.is_none() {
            return Ok(());
        }
        let mut alerts: Vec<_> = deaths.iter().map(to_alert).collect();
        alerts.extend(corrupt.iter().map(corruption::to_alert));
        match self.intake.submit(alerts).await {
            Ok(receipt) => {
                self.totals.accepted += receipt.accepted;
                self.totals.duplicates += receipt.duplicates;
                for d in &deaths {
                    tracing::info!(container = %d.name, reason = d.reason.as_str(), exit_code = ?d.exit_code, "Container killed; alert stored (replays are no-ops).");
                }
                if let Some(c) = &corrupt {
                    tracing::info!(container = %c.name, exit_code = c.exit_code, "Container died with a corrupted checkpoint; alert stored.");
                }
                Ok(())
            }
            Err(e) => {
                tracing::error!(error.message = %e, deaths = deaths.len(), "Could not store container deaths; will replay them.");
                let firsts = deaths.iter().map(|d| d.first_event);
                self.unstored = firsts.chain(corrupt.iter().map(|c| c.time)).min();
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::Notify;

    use super::*;
    use crate::sources::docker_events::allow_list;
    use crate::sources::docker_events::tests::{event, t};
    use crate::store::{SqliteStore, Store};

    async fn journal() -> (tempfile::TempDir, Arc<dyn Store>, Intake) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/j.db", dir.path().display());
        let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(&url).await.unwrap());
        let intake = Intake::start(
            store.clone(),
            Arc::new(Notify::new()),
            CancellationToken::new(),
        );
        (dir, store, intake)
    }

    fn ok_stream(
        events: Vec<EventMessage>,
    ) -> impl Stream<Item = Result<EventMessage, bollard::errors::Error>> {
        futures::stream::iter(events.into_iter().map(Ok))
    }

    #[tokio::test]
    async fn a_reconnect_resumes_at_the_waiting_oom_and_replays_are_no_ops() {
        let (_dir, store, intake) = journal().await;
        let allow = allow_list("k2-.*").unwrap();
        let mut f = Follower::new(allow, intake, t(0));
        let stop = CancellationToken::new();
        assert_eq!(f.subscribe(), t(0));

        let before_break = vec![
            event("oom", "a", "k2-a", None, t(1_000)),
            event("die", "a", "k2-a", Some("137"), t(1_040)),
            event("die", "b", "k2-b", Some("137"), t(5_000)),
            event("oom", "c", "k2-c", None, t(9_000)),
        ];
        let end = f.follow(ok_stream(before_break.clone()), &stop).await;
        assert!(matches!(end, End::Broken { healthy: true, .. }), "{end:?}");
        assert_eq!((f.totals.accepted, f.totals.duplicates), (2, 0));
        // c's oom still waits for its die: the next subscription must replay it.
        assert_eq!(f.resume_from(), t(9_000));
        assert_eq!(f.subscribe(), t(9_000));

        // Worst case: the engine replays everything, then c's die arrives.
        let mut replay = before_break;
        replay.push(event("die", "c", "k2-c", Some("137"), t(9_030)));
        let end = f.follow(ok_stream(replay), &stop).await;
        assert!(matches!(end, End::Broken { .. }), "{end:?}");
        // The deaths already stored are recognised and not submitted again (the journal would
        // make them no-ops anyway); c's is new.
        assert_eq!((f.totals.accepted, f.totals.duplicates), (3, 0));

        let entries = store.pending_journal(100).await.unwrap();
        let seen: Vec<(&str, &str)> = entries
            .iter()
            .map(|e| {
                (
                    e.alert.labels["container"].as_str(),
                    e.alert.labels["reason"].as_str(),
                )
            })
            .collect();
        assert_eq!(seen, [("k2-a", "oom"), ("k2-b", "killed"), ("k2-c", "oom")]);
        assert_eq!(entries[2].alert.starts_at, t(9_030), "the die's time");
    }

    #[tokio::test]
    async fn submitting_the_same_events_twice_writes_nothing_new() {
        let (_dir, store, intake) = journal().await;
        let allow = allow_list("k2-.*").unwrap();
        let events = [
            event("oom", "a", "k2-a", None, t(1_000)),
            event("die", "a", "k2-a", Some("137"), t(1_050)),
            event("die", "b", "k2-b", Some("137"), t(2_000)),
        ];
        let first = intake
            .submit(super::super::alerts_from_events(&events, &allow))
            .await
            .unwrap();
        let again = intake
            .submit(super::super::alerts_from_events(&events, &allow))
            .await
            .unwrap();
        assert_eq!((first.accepted, first.duplicates), (2, 0));
        assert_eq!((again.accepted, again.duplicates), (0, 2));
        assert_eq!(store.pending_journal(100).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn shutdown_ends_a_quiet_subscription() {
        let (_dir, _store, intake) = journal().await;
        let mut f = Follower::new(allow_list("k2-.*").unwrap(), intake, t(0));
        let stop = CancellationToken::new();
        stop.cancel();
        let end = f.follow(futures::stream::pending(), &stop).await;
        assert_eq!(end, End::Shutdown);
    }

    #[test]
    fn since_has_nanoseconds() {
        assert_eq!(since_param(t(1_500)), "1795757901.500000000");
    }
}
