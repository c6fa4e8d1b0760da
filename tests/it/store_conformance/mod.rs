//! The store's contract, told as stories and run against every backend: a fresh SQLite file
//! and a fresh database on a real PostgreSQL server ([`crate::support::postgres`]).
//!
//! Each story is an `async fn(Backend)`; [`on_both_backends!`] turns it into one test per
//! backend (`…::story::sqlite`, `…::story::postgres`), so a failure names its backend in the
//! test name and, through `{b}` in every message, in the assertion too. Stories about
//! replicas open two stores on one database: each is a replica with its own `owner()`.
//! Where the backends' rules differ on purpose (SQLite: one process per file), each rule has
//! its own story ([`on_postgres!`], [`on_sqlite!`]).
#![allow(unreachable_pub)] // a test binary exports nothing; `pub` marks what stories share

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use alert_responder::alert::Alert;
use alert_responder::responders::Mode;
use alert_responder::store::{
    connect, AlertPlan, JournalEntry, Recorded, RunPlan, Store, StoreOptions,
};
use time::OffsetDateTime;

use crate::support::app::am_alert;

/// One test per backend for each story named.
macro_rules! on_both_backends {
    ($($story:ident),+ $(,)?) => {$(
        mod $story {
            #[tokio::test]
            async fn sqlite() {
                super::$story(crate::store_conformance::Backend::sqlite()).await
            }
            #[tokio::test]
            async fn postgres() {
                super::$story(crate::store_conformance::Backend::postgres()).await
            }
        }
    )+};
}

/// A story of PostgreSQL's own rule (replicas sharing one database).
macro_rules! on_postgres {
    ($($story:ident),+ $(,)?) => {$(
        mod $story {
            #[tokio::test]
            async fn postgres() {
                super::$story(crate::store_conformance::Backend::postgres()).await
            }
        }
    )+};
}

/// A story of SQLite's own rule (one process per file).
macro_rules! on_sqlite {
    ($($story:ident),+ $(,)?) => {$(
        mod $story {
            #[tokio::test]
            async fn sqlite() {
                super::$story(crate::store_conformance::Backend::sqlite()).await
            }
        }
    )+};
}

mod annotations;
mod approvals;
mod batching;
mod chatops;
mod folding;
mod harness;
mod history;
mod incidents;
mod journal;
mod leases;
mod outbox;
mod pagerduty;
mod preemption;
mod roles;
mod runs;
mod silences;
mod spend;
mod watches;

/// Which database a story runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A SQLite file in a temp dir.
    Sqlite,
    /// A database of its own on the shared PostgreSQL server.
    Postgres,
}

/// A fresh, empty database of one backend; [`Backend::open`] connects a store (a replica) to it.
#[derive(Debug)]
pub struct Backend {
    pub kind: Kind,
    url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Backend {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/responder.db", dir.path().display());
        Self {
            kind: Kind::Sqlite,
            url,
            _dir: Some(dir),
        }
    }

    pub fn postgres() -> Self {
        Self {
            kind: Kind::Postgres,
            url: crate::support::postgres::fresh_database(),
            _dir: None,
        }
    }

    /// A store on this database with the default lease.
    pub async fn open(&self) -> Arc<dyn Store> {
        self.open_with_lease(StoreOptions::default().lease).await
    }

    /// A store on this database whose runs and roles are held for `lease` without renewal.
    pub async fn open_with_lease(&self, lease: Duration) -> Arc<dyn Store> {
        let options = StoreOptions {
            pool_size: 5,
            lease,
            ..StoreOptions::default()
        };
        connect(&self.url, &options)
            .await
            .unwrap_or_else(|e| panic!("{self}: cannot open the store at {}: {e}", self.url))
    }

    /// Two stores on this database: two replicas, each its own holder.
    pub async fn replicas(&self) -> (Arc<dyn Store>, Arc<dyn Store>) {
        let (a, b) = (self.open().await, self.open().await);
        assert_ne!(a.owner(), b.owner(), "{self}: each store is its own holder");
        (a, b)
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            Kind::Sqlite => "sqlite",
            Kind::Postgres => "postgres",
        })
    }
}

/// A short lease for expiry stories: leases are whole unix seconds, so one second is the
/// shortest there is.
pub const SHORT_LEASE: Duration = Duration::from_secs(1);

/// Waits until a [`SHORT_LEASE`] taken before the call has surely expired: it ends at the
/// taking second plus one at the latest (whole unix seconds), and "expired" means a later
/// second, so the clock must read the call's second plus two. Waiting for that second, not
/// for a fixed span, takes one to two seconds instead of always the worst case.
pub async fn outlive_short_lease() {
    let expired_from = now().unix_timestamp() + 2;
    while now().unix_timestamp() < expired_from {
        // Until the next whole second, plus a little so it has surely begun.
        let into_second = u64::from(now().millisecond());
        tokio::time::sleep(Duration::from_millis(1_000 - into_second + 10)).await;
    }
}

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A firing Alertmanager alert of `alertname` on `container`.
pub fn firing(alertname: &str, container: &str, fingerprint: &str, starts_at: &str) -> Alert {
    parse(am_alert(
        "firing",
        alertname,
        container,
        fingerprint,
        starts_at,
    ))
}

/// The resolve of [`firing`]'s alert.
pub fn resolved(alertname: &str, container: &str, fingerprint: &str, starts_at: &str) -> Alert {
    parse(am_alert(
        "resolved",
        alertname,
        container,
        fingerprint,
        starts_at,
    ))
}

fn parse(body: serde_json::Value) -> Alert {
    alert_responder::sources::alertmanager::parse(body.to_string().as_bytes())
        .unwrap()
        .remove(0)
}

/// What dispatch plans for a firing alert with one route: a `high-memory` run on its container.
pub fn plan_for(entry: &JournalEntry) -> AlertPlan {
    match entry.alert.status {
        alert_responder::alert::Status::Resolved => AlertPlan::Resolve,
        _ => {
            let target = entry.alert.labels["container"].clone();
            AlertPlan::Firing {
                runs: vec![RunPlan {
                    responder: "high-memory".into(),
                    target: target.clone(),
                    mode: Mode::Live,
                    preempts: false,
                }],
                declines: vec![],
                target: Some(target),
            }
        }
    }
}

/// Journals `alert` and records it with [`plan_for`], as dispatch does.
pub async fn journal_and_record(store: &dyn Store, alert: Alert) -> Recorded {
    journal_and_record_with(store, alert, plan_for).await
}

/// Journals `alert` and records it with the plan `plan` makes of its entry.
pub async fn journal_and_record_with(
    store: &dyn Store,
    alert: Alert,
    plan: impl Fn(&JournalEntry) -> AlertPlan,
) -> Recorded {
    let new = store.append_journal(&[alert]).await.unwrap();
    assert_eq!(new, [true], "the alert is new to the journal");
    let entry = store
        .pending_journal(1_000)
        .await
        .unwrap()
        .into_iter()
        .max_by_key(|e| e.id)
        .unwrap();
    store
        .record_alert(&entry, &plan(&entry), now())
        .await
        .unwrap()
}

/// Opens an incident with one pending run on `container`; returns (incident, run).
pub async fn incident_with_run(
    store: &dyn Store,
    container: &str,
    fingerprint: &str,
) -> (i64, i64) {
    let recorded = journal_and_record(
        store,
        firing(
            "HighMemoryUsage",
            container,
            fingerprint,
            "2026-11-27T05:00:00Z",
        ),
    )
    .await;
    (recorded.incident_id.unwrap(), recorded.run_ids[0])
}

/// The incident's detail as JSON, for asserting on what the API shows.
pub async fn detail(store: &dyn Store, incident: i64) -> serde_json::Value {
    let detail = store.incident_detail(incident).await.unwrap().unwrap();
    serde_json::to_value(&detail).unwrap()
}
