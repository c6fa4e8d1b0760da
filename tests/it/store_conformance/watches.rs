//! Watches (did the fix hold): a watch ends once, by a recurrence inside its window or by
//! its window running out, whichever replica looks; an incident lists the watches it started
//! and the one it is the recurrence of.

use alert_responder::store::{NewWatch, Store, WatchState};

use super::Backend;

on_both_backends!(a_watch_ends_once_by_recurrence_or_quietly);
on_postgres!(two_replicas_report_a_quiet_end_once);

fn watch(incident_id: i64, run_id: i64, target: &str, acted: i64, ends: i64) -> NewWatch {
    NewWatch {
        incident_id,
        run_id,
        responder: "high-memory".into(),
        alertname: "HighMemoryUsage".into(),
        target: target.into(),
        step: "restart".into(),
        acted_unix: acted,
        ends_unix: ends,
    }
}

async fn a_watch_ends_once_by_recurrence_or_quietly(b: Backend) {
    let store = b.open().await;
    store
        .start_watch(&watch(10, 100, "w-a", 1000, 2000))
        .await
        .unwrap();
    // The same run again (a second replica's report, a retry) starts nothing new.
    store
        .start_watch(&watch(10, 100, "w-a", 1001, 9000))
        .await
        .unwrap();
    store
        .start_watch(&watch(12, 101, "w-b", 1000, 2000))
        .await
        .unwrap();

    let own = store
        .watch_recurred("HighMemoryUsage", "w-a", 10, 1500)
        .await
        .unwrap();
    assert!(
        own.is_empty(),
        "{b}: the watched incident's own re-fire is no recurrence"
    );
    let other_name = store
        .watch_recurred("OtherAlert", "w-a", 11, 1500)
        .await
        .unwrap();
    assert!(
        other_name.is_empty(),
        "{b}: another alert name is no recurrence"
    );
    let late = store
        .watch_recurred("HighMemoryUsage", "w-a", 11, 2000)
        .await
        .unwrap();
    assert!(late.is_empty(), "{b}: the window had ended");

    let recurred = store
        .watch_recurred("HighMemoryUsage", "w-a", 11, 1252)
        .await
        .unwrap();
    assert_eq!(recurred.len(), 1, "{b}: {recurred:#?}");
    let r = &recurred[0];
    assert_eq!(r.watch, watch(10, 100, "w-a", 1000, 2000), "{b}");
    assert_eq!(r.state, WatchState::Recurred, "{b}");
    assert_eq!(
        (r.recurred_incident, r.recurred_unix),
        (Some(11), Some(1252)),
        "{b}"
    );
    let again = store
        .watch_recurred("HighMemoryUsage", "w-a", 13, 1300)
        .await
        .unwrap();
    assert!(again.is_empty(), "{b}: a watch recurs once");

    assert!(
        store.watches_held(1999).await.unwrap().is_empty(),
        "{b}: not over yet"
    );
    let held = store.watches_held(2000).await.unwrap();
    assert_eq!(held.len(), 1, "{b}: only the quiet one holds: {held:#?}");
    assert_eq!(
        (held[0].watch.target.as_str(), held[0].state.as_str()),
        ("w-b", "held"),
        "{b}"
    );
    assert!(
        store.watches_held(5000).await.unwrap().is_empty(),
        "{b}: said once"
    );

    let of_new = store.incident_watches(11).await.unwrap();
    assert_eq!(
        of_new.len(),
        1,
        "{b}: the recurrence lists the watch it ended"
    );
    assert_eq!(of_new[0].watch.incident_id, 10, "{b}");
    assert_eq!(store.incident_watches(10).await.unwrap().len(), 1, "{b}");
    assert!(store.incident_watches(99).await.unwrap().is_empty(), "{b}");

    // Recurrences count per responder and target, from a time on and after a trust.
    let store = &*store;
    assert_eq!(
        recurrences(store, "high-memory", "w-a", 0).await,
        [1252],
        "{b}"
    );
    let others = [
        ("high-memory", "w-a", 1253),
        ("high-memory", "w-b", 0),
        ("oom-killed", "w-a", 0),
    ];
    for (responder, target, since) in others {
        let found = recurrences(store, responder, target, since).await;
        assert!(found.is_empty(), "{b}: {responder} {target} {since}");
    }
    store
        .trust_fix("high-memory", "w-a", "@alice", 1252)
        .await
        .unwrap();
    assert_eq!(
        recurrences(store, "high-memory", "w-a", 0).await,
        Vec::<i64>::new(),
        "{b}: trusted"
    );
    store
        .start_watch(&watch(14, 102, "w-a", 1300, 2300))
        .await
        .unwrap();
    store
        .watch_recurred("HighMemoryUsage", "w-a", 15, 1400)
        .await
        .unwrap();
    assert_eq!(
        recurrences(store, "high-memory", "w-a", 0).await,
        [1400],
        "{b}"
    );
    store
        .trust_fix("high-memory", "w-a", "@bob", 1400)
        .await
        .unwrap();

    // Across a restart: a new store on the same database sees them as they ended.
    let reopened: std::sync::Arc<dyn Store> = b.open().await;
    let kept = reopened.incident_watches(12).await.unwrap();
    assert_eq!(kept[0].state, WatchState::Held, "{b}");
    let trusted = recurrences(&*reopened, "high-memory", "w-a", 0).await;
    assert!(trusted.is_empty(), "{b}: the trust holds");
}

async fn recurrences(store: &dyn Store, responder: &str, target: &str, since: i64) -> Vec<i64> {
    store.recurrences(responder, target, since).await.unwrap()
}

async fn two_replicas_report_a_quiet_end_once(b: Backend) {
    let (one, two) = b.replicas().await;
    for run in 0..20 {
        one.start_watch(&watch(
            20 + run,
            200 + run,
            &format!("w-r{run}"),
            1000,
            2000,
        ))
        .await
        .unwrap();
    }
    let (a, c) = tokio::join!(one.watches_held(3000), two.watches_held(3000));
    let (a, c) = (a.unwrap(), c.unwrap());
    assert_eq!(
        a.len() + c.len(),
        20,
        "{b}: every watch reported: {a:#?} {c:#?}"
    );
    let mut runs: Vec<i64> = a.iter().chain(&c).map(|w| w.watch.run_id).collect();
    runs.sort_unstable();
    runs.dedup();
    assert_eq!(runs.len(), 20, "{b}: and each by one replica only");
}
