//! Singleton roles (the outbox sender): on PostgreSQL one holder at a time, taken over when
//! its lease expires, freed at once by a resign; on SQLite every role is the one process's.

use super::{now, outlive_short_lease, Backend, SHORT_LEASE};

on_postgres!(
    one_replica_holds_a_role_until_it_resigns,
    a_role_whose_holder_stopped_renewing_is_taken_over,
);
on_sqlite!(the_one_process_holds_every_role);

const SENDER: &str = "outbox-sender";

async fn one_replica_holds_a_role_until_it_resigns(b: Backend) {
    let (a, other) = b.replicas().await;
    assert!(
        a.lead(SENDER, now()).await.unwrap(),
        "{b}: a free role is taken"
    );
    assert!(
        !other.lead(SENDER, now()).await.unwrap(),
        "{b}: one holder at a time"
    );
    assert!(
        a.lead(SENDER, now()).await.unwrap(),
        "{b}: its holder keeps it"
    );
    assert!(
        other.lead("reaper", now()).await.unwrap(),
        "{b}: another role is another matter"
    );
    a.resign(SENDER).await.unwrap();
    assert!(
        other.lead(SENDER, now()).await.unwrap(),
        "{b}: a resign frees it at once"
    );
    assert!(!a.lead(SENDER, now()).await.unwrap(), "{b}");
}

async fn a_role_whose_holder_stopped_renewing_is_taken_over(b: Backend) {
    let silent = b.open_with_lease(SHORT_LEASE).await;
    let other = b.open().await;
    assert!(silent.lead(SENDER, now()).await.unwrap(), "{b}");
    assert!(!other.lead(SENDER, now()).await.unwrap(), "{b}");
    outlive_short_lease().await;
    assert!(
        other.lead(SENDER, now()).await.unwrap(),
        "{b}: the lease expired"
    );
    assert!(
        !silent.lead(SENDER, now()).await.unwrap(),
        "{b}: the old holder learns it lost it"
    );
}

async fn the_one_process_holds_every_role(b: Backend) {
    let (a, other) = b.replicas().await;
    assert!(a.lead(SENDER, now()).await.unwrap(), "{b}");
    assert!(
        other.lead(SENDER, now()).await.unwrap(),
        "{b}: SQLite has no second replica"
    );
    a.resign(SENDER).await.unwrap();
    assert!(a.lead(SENDER, now()).await.unwrap(), "{b}");
}
