//! Proof that the app has worked off everything it was given before a point in time, for
//! tests that assert that something did *not* happen (no second run, no duplicate message).
//!
//! The dispatcher takes journal entries by priority, and entries of equal priority in arrival
//! order (`src/dispatch/priority.rs`). An alert no route matches, without a severity, has the
//! lowest priority there is: once it is recorded, every entry journaled before it has been
//! recorded too, with the runs and decisions it planned (one transaction each).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::app::{am_alert, TestApp};
use super::psql::literal;
use super::replicas::{poll, Replicas};
use super::wait;

/// The alert name and target of barriers start so: no catalog routes them, and no test acts
/// on them. Each barrier has its own (numbered), so that none folds into an earlier one's
/// open incident (alerts of one name and target fold into one) and each opens its own.
pub const BARRIER: &str = "ResponderTestBarrier";

/// How long a barrier may take to be recorded.
const WITHIN: Duration = Duration::from_secs(60);

/// Barriers posted so far in this process, for distinct fingerprints.
static POSTED: AtomicU64 = AtomicU64::new(0);

/// A firing Alertmanager body for a fresh barrier: unrouted, no severity (lowest priority),
/// and its fingerprint.
pub fn barrier_alert() -> (Value, String) {
    let n = POSTED.fetch_add(1, Ordering::SeqCst);
    let fingerprint = format!("ba{:06x}{n:08x}", std::process::id() & 0xff_ffff);
    let starts_at = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .expect("now formats as RFC 3339");
    let mut body = am_alert(
        "firing",
        &format!("{BARRIER}{n}"),
        &format!("{BARRIER}-target-{n}"),
        &fingerprint,
        &starts_at,
    );
    for labels in ["/alerts/0/labels", "/commonLabels"] {
        (body.pointer_mut(labels).and_then(Value::as_object_mut))
            .expect("am_alert has labels")
            .remove("severity");
    }
    (body, fingerprint)
}

impl TestApp {
    /// Posts a barrier alert and waits until it is recorded: everything journaled before
    /// has then been recorded. Returns the barrier's fingerprint.
    pub async fn barrier(&self) -> String {
        let (body, fingerprint) = barrier_alert();
        let response = self.post_alertmanager(&body).await;
        assert!(
            response.status().is_success(),
            "the barrier alert is acknowledged: {}",
            response.status()
        );
        let recorded = wait::until(WITHIN, || async {
            (self.incidents().await)
                .iter()
                .any(|i| i["fingerprint"] == fingerprint.as_str())
        })
        .await;
        assert!(
            recorded,
            "the barrier alert {fingerprint} was not recorded within {WITHIN:?}; incidents: {:#?}",
            self.incidents().await
        );
        fingerprint
    }

    /// Rows of the outbox to `destination` not yet delivered (`pending`, claimed included).
    pub async fn outbox_pending(&self, destination: &str) -> i64 {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&self.database_url)
            .await
            .expect("the test database opens");
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE destination = ? AND state = 'pending'",
        )
        .bind(destination)
        .fetch_one(&mut conn)
        .await
        .expect("the outbox is readable")
    }

    /// Waits (30 s at most) until every outbox row to `destination` is delivered, and says
    /// whether it was: nothing is left to be (re)sent, so nothing can be delivered twice.
    pub async fn wait_outbox_drained(&self, destination: &str) -> bool {
        wait::until(Duration::from_secs(30), || async {
            self.outbox_pending(destination).await == 0
        })
        .await
    }
}

impl Replicas {
    /// Posts a barrier alert to a live replica and waits until the database holds its
    /// incident: recording is serialized in the database and takes the shared journal by the
    /// same priority order, so everything journaled before has been recorded.
    pub async fn barrier(&self) -> String {
        let (body, fingerprint) = barrier_alert();
        self.any_alive().post_alert_ok(&body).await;
        let sql = format!(
            "SELECT COUNT(*) FROM incidents WHERE fingerprint = {}",
            literal(&fingerprint)
        );
        poll(
            "the barrier alert recorded",
            WITHIN,
            || (self.database.count(&sql) >= 1).then_some(()),
            || self.logs(),
        )
        .await;
        fingerprint
    }
}
