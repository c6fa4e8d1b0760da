//! Silences: one per run, listed while active, lifted once whichever replica asks, and the
//! alert they mute read back as it was received.

use alert_responder::alert::Alert;
use alert_responder::store::NewSilence;

use super::Backend;
use crate::support::app::am_alert;

on_both_backends!(a_silence_is_listed_until_lifted_once);
on_postgres!(two_replicas_lift_a_silence_once);

fn alert(fingerprint: &str) -> Alert {
    let body = am_alert(
        "firing",
        "HighMemoryUsage",
        "k2-silenced",
        fingerprint,
        "2026-11-27T05:00:00Z",
    );
    alert_responder::sources::alertmanager::parse(&serde_json::to_vec(&body).unwrap())
        .unwrap()
        .remove(0)
}

fn silence(incident_id: i64, run_id: i64, id: &str) -> NewSilence {
    NewSilence {
        incident_id,
        run_id,
        silence_id: id.into(),
        made_on: "http://am-1:9093".into(),
        alert: alert(&format!("f{run_id:015}")),
        made_unix: 1_000,
        ends_unix: 5_000,
    }
}

async fn a_silence_is_listed_until_lifted_once(b: Backend) {
    let store = b.open().await;
    store.record_silence(&silence(1, 10, "s-a")).await.unwrap();
    // The same run again (a retry) records nothing new.
    store
        .record_silence(&silence(1, 10, "s-other"))
        .await
        .unwrap();
    store.record_silence(&silence(2, 20, "s-b")).await.unwrap();

    let active = store.active_silences().await.unwrap();
    let ids: Vec<_> = active
        .iter()
        .map(|s| s.silence.silence_id.as_str())
        .collect();
    assert_eq!(ids, ["s-a", "s-b"], "{b}: oldest first, one per run");
    assert_eq!(
        active[0].silence,
        silence(1, 10, "s-a"),
        "{b}: read back as written"
    );

    assert!(
        store
            .lift_silence(active[0].id, "the alert resolved", 1_000)
            .await
            .unwrap(),
        "{b}"
    );
    assert!(
        !store
            .lift_silence(active[0].id, "the watch ended", 1_001)
            .await
            .unwrap(),
        "{b}: lifted once"
    );
    let left: Vec<_> = (store.active_silences().await.unwrap().into_iter())
        .map(|s| s.silence.silence_id)
        .collect();
    assert_eq!(left, ["s-b"], "{b}");
}

async fn two_replicas_lift_a_silence_once(b: Backend) {
    let (one, two) = b.replicas().await;
    one.record_silence(&silence(3, 30, "s-c")).await.unwrap();
    let id = two.active_silences().await.unwrap()[0].id;
    let (a, c) = tokio::join!(
        one.lift_silence(id, "the fix did not hold", 1_000),
        two.lift_silence(id, "the fix did not hold", 1_000),
    );
    let lifted = [a.unwrap(), c.unwrap()];
    assert_eq!(lifted.iter().filter(|l| **l).count(), 1, "{b}: {lifted:?}");
}
