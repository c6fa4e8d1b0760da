//! SQLite keeps the intake journal in a file of its own, and the main database says which of
//! its entries are recorded: a crash between the two commits neither loses nor doubles an
//! entry, and a database from before the split keeps its pending entries and their keys.

use alert_responder::store::{sqlite_journal_file, Store};
use sqlx::Connection;

use super::{firing, now, plan_for, Backend};

on_sqlite!(
    an_entry_recorded_before_its_mark_was_lost_is_not_recorded_again,
    a_database_from_before_the_split_keeps_its_pending_entries_and_their_keys,
);

fn alert(i: usize) -> alert_responder::alert::Alert {
    firing(
        "HighMemoryUsage",
        &format!("jf-{i}"),
        &format!("f0000000000000{i:02}"),
        "2026-11-27T05:00:00Z",
    )
}

/// A connection to one of the two files, beside the store.
async fn open_file(url: &str, journal: bool) -> sqlx::SqliteConnection {
    let url = if journal {
        crate::support::journal_url(url)
    } else {
        url.to_owned()
    };
    sqlx::SqliteConnection::connect(&url).await.unwrap()
}

async fn count(conn: &mut sqlx::SqliteConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(conn).await.unwrap()
}

async fn record_pending(store: &dyn Store) -> usize {
    let pending = store.pending_journal(100).await.unwrap();
    let plans: Vec<_> = pending.iter().map(plan_for).collect();
    let batch: Vec<_> = pending.iter().zip(&plans).collect();
    store.record_alerts(&batch, now()).await.unwrap();
    pending.len()
}

async fn an_entry_recorded_before_its_mark_was_lost_is_not_recorded_again(b: Backend) {
    let store = b.open().await;
    store.append_journal(&[alert(1), alert(2)]).await.unwrap();
    assert_eq!(record_pending(store.as_ref()).await, 2);
    store.close().await;
    drop(store);

    // As if the process died after the main database's commit and before the journal file's
    // mark: both entries pending in the journal file, recorded in the main database.
    let mut journal = open_file(b.url(), true).await;
    sqlx::query("UPDATE journal SET processed = 0")
        .execute(&mut journal)
        .await
        .unwrap();
    let mut main = open_file(b.url(), false).await;
    assert_eq!(
        count(
            &mut main,
            "SELECT COUNT(*) FROM journal WHERE processed = 1"
        )
        .await,
        2
    );

    let store = b.open().await;
    store.append_journal(&[alert(3)]).await.unwrap();
    let pending = store.pending_journal(100).await.unwrap();
    let containers: Vec<_> = pending
        .iter()
        .map(|e| e.alert.labels["container"].as_str())
        .collect();
    assert_eq!(containers, ["jf-3"], "only the entry never recorded");
    assert_eq!(
        count(
            &mut journal,
            "SELECT COUNT(*) FROM journal WHERE processed = 0"
        )
        .await,
        1,
        "the recorded ones found were marked processed"
    );
    assert_eq!(record_pending(store.as_ref()).await, 1);
    assert_eq!(
        count(&mut main, "SELECT COUNT(*) FROM alerts").await,
        3,
        "each entry recorded once"
    );
    assert!(store.pending_journal(100).await.unwrap().is_empty());
}

async fn a_database_from_before_the_split_keeps_its_pending_entries_and_their_keys(b: Backend) {
    let store = b.open().await;
    store.close().await;
    drop(store);
    // The old layout: no journal file, the journal in the main database, one entry recorded
    // and one pending.
    let path = b.url().trim_start_matches("sqlite://").to_owned();
    let journal_file = sqlite_journal_file(std::path::Path::new(&path));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", journal_file.display()));
    }
    let mut main = open_file(b.url(), false).await;
    let (done, waiting) = (alert(1), alert(2));
    for (id, alert, processed) in [(7_i64, &done, 1), (9, &waiting, 0)] {
        sqlx::query(
            "INSERT INTO journal (id, dedup_key, source, alert, received_at, priority, processed)
             VALUES (?, ?, 'alertmanager', ?, '2026-11-27T05:00:01Z', 0, ?)",
        )
        .bind(id)
        .bind(alert.dedup_key())
        .bind(serde_json::to_string(alert).unwrap())
        .bind(processed)
        .execute(&mut main)
        .await
        .unwrap();
    }

    let store = b.open().await;
    assert!(journal_file.exists(), "the journal file is made");
    let pending = store.pending_journal(100).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].id, &pending[0].alert), (9, &waiting));
    assert_eq!(
        store.append_journal(&[done, alert(3)]).await.unwrap(),
        [false, true],
        "an old key is still a duplicate; a new alert is new"
    );
    let ids: Vec<i64> = store
        .pending_journal(100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids[1] > 9, "new ids follow the old ones: {ids:?}");
    assert_eq!(record_pending(store.as_ref()).await, 2);
    assert!(store.pending_journal(100).await.unwrap().is_empty());
}
