//! Docker engine source: OOM kills of allow-listed containers, from the engine's event stream,
//! and deaths that say their checkpoint is corrupted ([`corruption`]).
//!
//! The live task ([`stream::run`]) subscribes to `type=container`, `event=oom`, `event=die`,
//! `event=start` and feeds each event through pure steps defined here: [`read_event`] keeps the facts of an
//! event for a container whose whole name matches `RESPONDER_OOM_CONTAINERS`, [`Deaths`]
//! folds them into deaths, and [`to_alert`] makes one `ContainerOomKilled` alert per death.
//!
//! One death, one alert: the kernel OOM killer gives an `oom` event and a `die` with exit code
//! 137, in either order, usually milliseconds apart but seconds apart under load. A death is
//! keyed by its container and its `die` (the alert starts at the `die`'s engine time), and the
//! OOM flag is merged into it whichever way it arrives:
//! - an `oom` and a `die` of the same container within their wait ([`OOM_WAIT`] after an
//!   `oom`, [`DIE_WAIT`] after a `die`) are one death, `reason: oom`;
//! - the engine's own `OOMKilled` flag, read when a `die` 137 arrives (the live task does),
//!   counts as its `oom`;
//! - an `oom` that comes after its container's `die` was reported, with no `start` between,
//!   belongs to that death: it adds nothing (the death is already reported);
//! - a `die` 137 with no `oom` is a SIGKILL from elsewhere (`docker kill`, a stop that timed
//!   out, `docker rm -f`, or an OOM kill whose event containerd lost) and counts as
//!   `reason: killed`; an `oom` whose container does not die counts too (`reason: oom`, no
//!   `exit_code` label: a child was killed, the container lives on). Other deaths are ignored.
//!
//! The fingerprint is stable per container and the start is the death's engine time, so a
//! replay of the same events (a reconnect resumes with `since`) yields the same dedup keys and
//! the journal turns it into a no-op.
//!
//! One-shot alerts: Docker never sends a "resolved", so every alert from this source carries
//! the annotation `one_shot: "true"` ([`ONE_SHOT`], tested by [`is_one_shot`]). An annotation
//! rather than a property of [`Source::Docker`] because it travels with the alert through the
//! journal and the API, and a later Docker alert that does resolve (health checks) can omit
//! it. Whatever closes incidents should close one opened by a one-shot alert once its runs
//! are done (at once if it has none), rather than wait for a resolution that never comes.
//!
//! The fingerprint is per container, so while that incident is open, later deaths of the same
//! container are further alerts of it; once it is closed, the next death opens a new one.

pub mod corruption;
mod last_words;
pub mod stream;

use std::collections::BTreeMap;

use bollard::models::{EventMessage, EventMessageTypeEnum};
use regex::Regex;
use time::{Duration, OffsetDateTime};

use crate::alert::{Alert, Labels, Source, Status};

/// The `alertname` of every alert from this source.
pub const ALERTNAME: &str = "ContainerOomKilled";

/// The annotation marking an alert no "resolved" will ever follow.
pub use crate::alert::ONE_SHOT;

/// How long a `die` 137 waits for its `oom` before it counts as a plain SIGKILL. The engine's
/// `OOMKilled` flag usually settles it at once; this wait covers an `oom` event that lags.
pub const DIE_WAIT: Duration = Duration::seconds(2);

/// How long an `oom` waits for its container's `die` before it counts as a child killed in a
/// container that lives on. Longer than [`DIE_WAIT`]: such an alert is rarely urgent, and a
/// `die` that lags must not become a second alert for one death.
pub const OOM_WAIT: Duration = Duration::seconds(10);

/// How long a container's last `die` or `start` is remembered, to recognise an `oom` that
/// comes after the death it belongs to was reported.
const LIFE_MEMORY: Duration = Duration::hours(1);

/// The exit code of a process killed by SIGKILL (128 + 9).
pub(crate) const SIGKILL_EXIT: i64 = 137;

/// Whether `alert` is one-shot: it opens an incident that nothing will ever resolve.
pub fn is_one_shot(alert: &Alert) -> bool {
    alert.is_one_shot()
}

/// What an engine event says happened to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The kernel OOM killer killed a process in the container's memory cgroup.
    Oom,
    /// The container's main process exited.
    Die {
        /// Its exit code.
        exit_code: i64,
    },
    /// The container started (again): later events belong to its new life.
    Start,
}

/// The facts of one engine event about an allow-listed container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    /// Container ID (the name when the engine sent none).
    pub id: String,
    /// Container name, without the leading slash.
    pub name: String,
    /// Image, when the engine named it.
    pub image: Option<String>,
    /// What happened.
    pub kind: Kind,
    /// When it happened, by the engine's clock.
    pub time: OffsetDateTime,
}

/// Why an engine event was set aside.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    /// Not a container event.
    #[error("not a container event")]
    NotContainer,
    /// A container event other than `oom` / `die` / `start`.
    #[error("action {0:?} is not oom, die or start")]
    OtherAction(String),
    /// No `name` attribute: the allow-list cannot be checked.
    #[error("no container name")]
    NoName,
    /// The name is outside `RESPONDER_OOM_CONTAINERS`.
    #[error("container {0} is not in RESPONDER_OOM_CONTAINERS")]
    NotAllowed(String),
    /// No time: the death could not be keyed stably across replays.
    #[error("event without a time")]
    NoTime,
    /// A `die` without a numeric `exitCode`.
    #[error("die event without a numeric exitCode")]
    NoExitCode,
}

/// The engine time of an event, to the nanosecond when the engine gave it.
pub fn event_time(msg: &EventMessage) -> Option<OffsetDateTime> {
    match (msg.time_nano, msg.time) {
        (Some(nanos), _) => OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).ok(),
        (None, Some(secs)) => OffsetDateTime::from_unix_timestamp(secs).ok(),
        (None, None) => None,
    }
}

/// Compiles `RESPONDER_OOM_CONTAINERS` to match whole names: `k2-.*` must not match `not-k2-x`.
///
/// # Errors
/// The regex error, when `pattern` is not a regex.
pub fn allow_list(pattern: &str) -> Result<Regex, regex::Error> {
    crate::pattern::anchored(pattern)
}

/// Reads the facts of `msg` if it is an `oom`, `die` or `start` of a container whose name matches
/// `allow` (made by [`allow_list`]). Pure.
///
/// # Errors
/// [`Skip`] saying why the event is not one this source reports.
pub fn read_event(msg: &EventMessage, allow: &Regex) -> Result<ContainerEvent, Skip> {
    if msg.typ != Some(EventMessageTypeEnum::CONTAINER) {
        return Err(Skip::NotContainer);
    }
    let action = msg.action.as_deref().unwrap_or("");
    let attributes = msg.actor.as_ref().and_then(|a| a.attributes.as_ref());
    let attribute = |key: &str| {
        attributes
            .and_then(|a| a.get(key))
            .filter(|v| !v.is_empty())
    };
    let name = attribute("name")
        .map(|n| n.trim_start_matches('/').to_owned())
        .ok_or(Skip::NoName)?;
    if !allow.is_match(&name) {
        return Err(Skip::NotAllowed(name));
    }
    let kind = match action {
        "oom" => Kind::Oom,
        "start" => Kind::Start,
        "die" => Kind::Die {
            exit_code: attribute("exitCode")
                .and_then(|c| c.parse().ok())
                .ok_or(Skip::NoExitCode)?,
        },
        other => return Err(Skip::OtherAction(other.to_owned())),
    };
    let id = msg
        .actor
        .as_ref()
        .and_then(|a| a.id.clone())
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| name.clone());
    Ok(ContainerEvent {
        id,
        image: attribute("image").cloned(),
        name,
        kind,
        time: event_time(msg).ok_or(Skip::NoTime)?,
    })
}

/// How a container died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The kernel OOM killer.
    Oom,
    /// SIGKILL and no OOM from the engine: `docker kill`, a stop that timed out, `docker rm -f`,
    /// or an OOM kill whose event containerd lost.
    Killed,
}

impl Reason {
    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Oom => "oom",
            Reason::Killed => "killed",
        }
    }
}

/// One death of a container, from one or two engine events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Death {
    /// Container ID.
    pub id: String,
    /// Container name.
    pub name: String,
    /// Image, when known.
    pub image: Option<String>,
    /// How it died.
    pub reason: Reason,
    /// The `die` exit code; `None` for an `oom` with no `die`.
    pub exit_code: Option<i64>,
    /// When it died (the `die`'s time, else the `oom`'s): the alert's start.
    pub time: OffsetDateTime,
    /// The time of its first event, where a replay must start to see the whole death.
    pub first_event: OffsetDateTime,
}

/// Folds engine events into deaths, pairing each `oom` with its container's `die`.
///
/// The engine emits the two from different paths, so under load a `die` can come before its
/// `oom`, or long after it: each waits for the other ([`DIE_WAIT`], [`OOM_WAIT`]), and an `oom`
/// that comes after its death was reported is recognised by the container's last life event
/// (a `die` with no `start` since) and adds nothing.
///
/// Pure: time only moves with the event times and the `now` the caller passes.
#[derive(Debug, Default)]
pub struct Deaths {
    /// `oom` or `die` 137 events still waiting for their partner, by container ID.
    pending: BTreeMap<String, ContainerEvent>,
    /// Each container's last `die` or `start`, by container ID.
    lives: BTreeMap<String, Life>,
}

/// The last thing the engine said about a container's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Life {
    /// Whether it was a `die` (else a `start`).
    dead: bool,
    /// Its engine time.
    at: OffsetDateTime,
}

impl Deaths {
    /// Takes the next event; returns the deaths it completes, in order.
    pub fn push(&mut self, event: ContainerEvent) -> Vec<Death> {
        // Events arrive in time order, so anything older than its wait is complete.
        let mut done = self.expire(event.time);
        let life = self.lives.get(&event.id).copied();
        if let Kind::Start | Kind::Die { .. } = event.kind {
            if life == Some(self.life_of(&event)) {
                // A replay of an event already handled (a resumed subscription).
                return done;
            }
            self.lives.insert(event.id.clone(), self.life_of(&event));
        }
        let waiting = self.pending.remove(&event.id);
        match (event.kind, waiting) {
            (Kind::Start, waiting) => {
                // A waiting event of the last life keeps waiting: its partner may still come.
                if let Some(waiting) = waiting {
                    self.pending.insert(waiting.id.clone(), waiting);
                }
            }
            (Kind::Oom, Some(waiting)) => match waiting.kind {
                // The `die` came first: the death is its exit, the reason the `oom`.
                Kind::Die { exit_code } => {
                    let first = waiting.time.min(event.time);
                    done.push(death(waiting, Reason::Oom, Some(exit_code), first));
                }
                // A second oom while one waits is the same episode (several processes killed).
                Kind::Oom | Kind::Start => {
                    self.pending.insert(waiting.id.clone(), waiting);
                }
            },
            (Kind::Oom, None) if life.is_some_and(|l| l.dead) => {
                // Its container's death was reported already, and it has not started since:
                // this `oom` is that death's, late. One death, one alert.
                tracing::debug!(container = %event.name, "Late oom event of a death already reported.");
            }
            (Kind::Oom, None) => {
                self.pending.insert(event.id.clone(), event);
            }
            (Kind::Die { exit_code }, Some(oom)) if oom.kind == Kind::Oom => {
                done.push(death(event, Reason::Oom, Some(exit_code), oom.time));
            }
            (Kind::Die { exit_code }, earlier) => {
                // An earlier lone `die` of a container that already died again is complete.
                done.extend(earlier.map(alone));
                if exit_code == SIGKILL_EXIT {
                    self.pending.insert(event.id.clone(), event);
                }
            }
        }
        done
    }

    fn life_of(&self, event: &ContainerEvent) -> Life {
        Life {
            dead: matches!(event.kind, Kind::Die { .. }),
            at: event.time,
        }
    }

    /// Whether an `oom` of container `id` waits for its `die`.
    pub fn oom_waits(&self, id: &str) -> bool {
        self.pending.get(id).is_some_and(|e| e.kind == Kind::Oom)
    }

    /// The events whose partner did not come within their wait before `now` (engine time).
    pub fn expire(&mut self, now: OffsetDateTime) -> Vec<Death> {
        self.lives.retain(|_, life| life.at + LIFE_MEMORY >= now);
        let stale: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, e)| e.time + wait(e.kind) < now)
            .map(|(id, _)| id.clone())
            .collect();
        let mut done: Vec<Death> = stale
            .iter()
            .filter_map(|id| self.pending.remove(id))
            .map(alone)
            .collect();
        done.sort_by_key(|d| d.time);
        done
    }

    /// Every waiting event as a death: the events are over.
    pub fn flush(&mut self) -> Vec<Death> {
        let mut done: Vec<Death> = std::mem::take(&mut self.pending)
            .into_values()
            .map(alone)
            .collect();
        done.sort_by_key(|d| d.time);
        done
    }

    /// Forgets what a replay from `since` brings back: waiting events, and lives whose last
    /// event is at or after it (so a death that could not be stored is reported again).
    pub fn forget_since(&mut self, since: OffsetDateTime) {
        self.pending.clear();
        self.lives.retain(|_, life| life.at < since);
    }

    /// The time of the oldest waiting event.
    pub fn earliest_pending(&self) -> Option<OffsetDateTime> {
        self.pending.values().map(|e| e.time).min()
    }
}

/// How long an event of `kind` waits for its partner.
fn wait(kind: Kind) -> Duration {
    match kind {
        Kind::Oom => OOM_WAIT,
        Kind::Die { .. } | Kind::Start => DIE_WAIT,
    }
}

fn death(
    event: ContainerEvent,
    reason: Reason,
    exit_code: Option<i64>,
    first_event: OffsetDateTime,
) -> Death {
    Death {
        id: event.id,
        name: event.name,
        image: event.image,
        reason,
        exit_code,
        time: event.time,
        first_event,
    }
}

/// A waiting event whose partner never came: an `oom` that did not end the container, or a
/// `die` 137 without an `oom` (docker kill, a stop that timed out, docker rm -f).
fn alone(event: ContainerEvent) -> Death {
    let first = event.time;
    match event.kind {
        Kind::Die { exit_code } => death(event, Reason::Killed, Some(exit_code), first),
        // A `start` never waits; it is here only to make the match whole.
        Kind::Oom | Kind::Start => death(event, Reason::Oom, None, first),
    }
}

/// The alert for one death. Pure.
pub fn to_alert(death: &Death) -> Alert {
    let mut labels = Labels::new();
    labels.insert("alertname".into(), ALERTNAME.into());
    labels.insert("container".into(), death.name.clone());
    labels.insert("severity".into(), "critical".into());
    labels.insert("reason".into(), death.reason.as_str().into());
    if let Some(code) = death.exit_code {
        labels.insert("exit_code".into(), code.to_string());
    }
    if let Some(image) = &death.image {
        labels.insert("image".into(), image.clone());
    }
    let summary = match (death.reason, death.exit_code) {
        (Reason::Oom, Some(code)) => format!(
            "Container {} was killed by the kernel OOM killer (exit code {code}).",
            death.name
        ),
        (Reason::Oom, None) => format!(
            "The kernel OOM killer killed a process in container {}; the container did not exit.",
            death.name
        ),
        (Reason::Killed, _) => format!(
            "Container {} was killed with SIGKILL (exit code 137) and the engine reported no OOM: docker kill, a stop that timed out, docker rm -f, or an OOM kill whose event the engine lost.",
            death.name
        ),
    };
    let mut annotations = Labels::new();
    annotations.insert("summary".into(), summary);
    annotations.insert("container_id".into(), death.id.clone());
    annotations.insert(ONE_SHOT.into(), "true".into());
    Alert {
        source: Source::Docker,
        fingerprint: fingerprint(&death.name),
        status: Status::Firing,
        labels,
        annotations,
        starts_at: death.time,
        ends_at: None,
        generator_url: None,
    }
}

/// Stable across processes and releases (unlike std's hasher): FNV-1a 64 of
/// `docker/oom/<name>`, as 16 hex digits like Alertmanager's.
fn fingerprint(name: &str) -> String {
    fnv_hex(&format!("docker/oom/{name}"))
}

/// FNV-1a 64 of `key` as 16 hex digits: a fingerprint stable across processes and releases.
fn fnv_hex(key: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The alerts a finished list of engine events yields, in order. Pure: the live task runs
/// the same steps one event at a time.
pub fn alerts_from_events(events: &[EventMessage], allow: &Regex) -> Vec<Alert> {
    let mut deaths = Deaths::default();
    let mut done = Vec::new();
    for msg in events {
        if let Ok(event) = read_event(msg, allow) {
            done.extend(deaths.push(event));
        }
    }
    done.extend(deaths.flush());
    done.iter().map(to_alert).collect()
}

#[cfg(test)]
mod tests;
