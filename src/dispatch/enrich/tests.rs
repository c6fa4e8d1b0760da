//! The lookup's fallbacks, with a stand-in API and paused time (no sleeps).

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use serde_json::{json, Value};

use super::*;
use crate::notify::pagerduty::PagerDutyError;
use crate::routing::extract::tests::incident;

/// Answers every lookup with `answer`, after `delay`; counts the calls.
#[derive(Debug)]
struct StandIn {
    answer: Result<Option<Value>, PagerDutyError>,
    delay: Duration,
    calls: AtomicUsize,
}

#[async_trait]
impl PagerDutyApi for StandIn {
    async fn add_note(&self, _: &str, _: &str) -> Result<(), PagerDutyError> {
        Ok(())
    }

    async fn send_event(&self, _: &Value) -> Result<(), PagerDutyError> {
        Ok(())
    }

    async fn first_alert_details(&self, _: &str) -> Result<Option<Value>, PagerDutyError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.answer.clone()
    }
}

fn lookup(
    answer: Result<Option<Value>, PagerDutyError>,
    delay: Duration,
) -> (PagerDutyLookup, Arc<StandIn>) {
    let api = Arc::new(StandIn {
        answer,
        delay,
        calls: AtomicUsize::new(0),
    });
    (PagerDutyLookup::new(api.clone()), api)
}

#[tokio::test(start_paused = true)]
async fn details_give_labels_and_say_so() {
    let details =
        json!({"firing": "Labels:\n - alertname = HighMemoryUsage\n - container = k2-a\n"});
    let (lookup, api) = lookup(Ok(Some(details)), Duration::from_millis(200));
    let mut alert = incident("[FIRING:2] HighMemoryUsage (critical)");
    let report = enrich(&mut alert, &[], Some(&lookup)).await;
    assert_eq!(alert.labels["container"], "k2-a");
    assert_eq!(alert.labels["alertname"], "HighMemoryUsage");
    assert!(report.notes.is_empty(), "{report:?}");
    assert!(alert.annotations[extract::PD_LABELS].contains("container=k2-a (the PagerDuty API"));
    assert_eq!(api.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_slow_api_times_out_and_lookups_pause_after_a_failure() {
    let (lookup, api) = lookup(Ok(None), LOOKUP_TIMEOUT * 2);
    let mut alert = incident("High Memory Usage: k2-a");
    let report = enrich(&mut alert, &[], Some(&lookup)).await;
    assert_eq!(alert.labels["container"], "k2-a", "the title still counts");
    assert!(
        report.notes[0].contains("no answer within 5s"),
        "{report:?}"
    );
    assert!(alert.annotations[extract::PD_LABELS_NOTE].contains("title rules only"));

    // Within the pause the API is not asked; after it, it is again.
    let mut next = incident("High Memory Usage: k2-b");
    let report = enrich(&mut next, &[], Some(&lookup)).await;
    assert!(report.notes[0].contains("not asked"), "{report:?}");
    assert_eq!(api.calls.load(Ordering::SeqCst), 1);
    tokio::time::advance(QUIET_AFTER_FAILURE).await;
    let _ = lookup.labels("Q2").await;
    assert_eq!(api.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn refusals_and_empty_details_fall_back_to_the_rules() {
    for (answer, said) in [
        (
            Err(PagerDutyError::Rejected("HTTP 404 Not Found".into())),
            "404",
        ),
        (
            Err(PagerDutyError::RateLimited { retry_after: None }),
            "rate limited",
        ),
        (Ok(None), "no alert with details"),
        (Ok(Some(json!({"summary": "free text"}))), "list no labels"),
    ] {
        let (lookup, _) = lookup(answer, Duration::ZERO);
        let mut alert = incident("High Memory Usage: k2-a");
        let report = enrich(&mut alert, &[], Some(&lookup)).await;
        assert_eq!(alert.labels["container"], "k2-a");
        assert!(report.notes[0].contains(said), "{said}: {report:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn other_alerts_are_not_looked_up() {
    let (lookup, api) = lookup(Ok(None), Duration::ZERO);
    let mut alert = incident("High Memory Usage: k2-a");
    alert.status = crate::alert::Status::Resolved;
    assert!(enrich(&mut alert, &[], Some(&lookup)).await.is_empty());
    assert_eq!(api.calls.load(Ordering::SeqCst), 0);
}
