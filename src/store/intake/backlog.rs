//! The bound on the journal's backlog: beyond `RESPONDER_MAX_BACKLOG` unprocessed entries,
//! webhooks are answered 503 (Alertmanager and PagerDuty retry) instead of letting the
//! journal, and the time to work it off, grow without limit.
//!
//! The count is the store's, read once a second (every replica shares it), plus what this
//! process accepted since: a burst cannot overshoot by more than a second of intake.
//! Only webhook sources are held back. A container's death and a person's `/responder run`
//! are few, and no sender would retry them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::alert::{Alert, Source};
use crate::store::{Store, StoreError};

/// How often the store's count replaces the estimate.
const REFRESH: Duration = Duration::from_secs(1);

/// The estimated backlog and its bound, shared by the intake and its refresher.
#[derive(Debug, Clone)]
pub(crate) struct Backlog {
    pending: Arc<AtomicU64>,
    limit: u64,
}

impl Backlog {
    /// A bound of `limit` entries, counted by `store` from now until `stop`.
    pub(crate) fn follow(store: Arc<dyn Store>, limit: u64, stop: CancellationToken) -> Self {
        let backlog = Self {
            pending: Arc::default(),
            limit,
        };
        let pending = backlog.pending.clone();
        tokio::spawn(async move {
            loop {
                match store.gauges(OffsetDateTime::now_utc()).await {
                    Ok(g) => pending.store(
                        u64::try_from(g.journal_pending).unwrap_or(0),
                        Ordering::Relaxed,
                    ),
                    Err(e) => {
                        tracing::debug!(error.message = %e, "Could not count the journal's backlog.")
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(REFRESH) => {}
                    () = stop.cancelled() => return,
                }
            }
        });
        backlog
    }

    /// No bound (tests of the intake alone).
    pub(crate) fn unbounded() -> Self {
        Self {
            pending: Arc::default(),
            limit: u64::MAX,
        }
    }

    /// Refuses `alerts` from a webhook while the backlog is at its bound.
    pub(crate) fn admit(&self, alerts: &[Alert]) -> Result<(), StoreError> {
        let from_webhooks = alerts
            .iter()
            .all(|a| matches!(a.source, Source::Alertmanager | Source::PagerDuty));
        let pending = self.pending.load(Ordering::Relaxed);
        if from_webhooks && pending >= self.limit {
            return Err(StoreError::Backlog {
                pending,
                limit: self.limit,
            });
        }
        Ok(())
    }

    /// Counts `accepted` new entries until the next look at the store.
    pub(crate) fn accepted(&self, accepted: usize) {
        self.pending.fetch_add(
            u64::try_from(accepted).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Labels, Status};

    fn from(source: Source) -> Alert {
        Alert {
            source,
            fingerprint: "f".into(),
            status: Status::Firing,
            labels: Labels::new(),
            annotations: Labels::new(),
            starts_at: OffsetDateTime::UNIX_EPOCH,
            ends_at: None,
            generator_url: None,
        }
    }

    #[test]
    fn webhooks_wait_at_the_bound_a_death_and_a_person_never_do() {
        let backlog = Backlog {
            pending: Arc::default(),
            limit: 10,
        };
        let webhook = [from(Source::Alertmanager), from(Source::PagerDuty)];
        assert!(backlog.admit(&webhook).is_ok());
        backlog.accepted(10);
        let refused = backlog.admit(&webhook[..1]).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "the journal holds 10 unprocessed alerts (RESPONDER_MAX_BACKLOG is 10): retry later"
        );
        assert!(backlog.admit(&[from(Source::PagerDuty)]).is_err());
        assert!(backlog.admit(&[from(Source::Docker)]).is_ok());
        assert!(backlog.admit(&[from(Source::Slack)]).is_ok());
    }
}
