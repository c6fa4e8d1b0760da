//! Spending a destructive action: the step's budget, the cluster-wide action rate (uses spent
//! through any replica count) and fencing (only the run's holder may act), in one check.

use std::time::Duration;

use alert_responder::limits::Budget;
use alert_responder::store::{ActionSpend, Claim, RecoverScope, Spend, Store, RATE_LIMITED};

use super::{incident_with_run, now, outlive_short_lease, Backend, SHORT_LEASE};

on_both_backends!(
    the_budget_allows_a_use_then_refuses_the_next,
    the_action_rate_counts_uses_spent_through_every_replica,
    only_the_runs_holder_may_act,
);
on_postgres!(a_replica_whose_lease_expired_and_was_taken_over_is_fenced);

/// One use per hour, no cooldown.
const ONCE_AN_HOUR: Budget = Budget {
    cooldown: Duration::ZERO,
    max: 1,
    per: Duration::from_secs(3_600),
};

/// Never the reason for a refusal.
const PLENTY: Budget = Budget {
    cooldown: Duration::ZERO,
    max: 1_000,
    per: Duration::from_secs(3_600),
};

fn restart<'a>(target: &'a str, run_id: i64, budget: &'a Budget) -> ActionSpend<'a> {
    ActionSpend {
        responder: "high-memory",
        target,
        step: "restart",
        budget,
        run_id,
        actions_per_minute: 1_000,
    }
}

/// A running run on `target`, held by `store`.
async fn running_run(store: &dyn Store, target: &str, fingerprint: &str) -> i64 {
    let (_, run) = incident_with_run(store, target, fingerprint).await;
    assert_eq!(
        store.claim_run(run, 10, now()).await.unwrap(),
        Claim::Started
    );
    run
}

async fn the_budget_allows_a_use_then_refuses_the_next(b: Backend) {
    let store = b.open().await;
    let run = running_run(&*store, "s-a", "c000000000000001").await;
    let spend = restart("s-a", run, &ONCE_AN_HOUR);
    assert_eq!(
        store.spend_action(&spend, now()).await.unwrap(),
        Spend::Allowed,
        "{b}"
    );
    let refused = store.spend_action(&spend, now()).await.unwrap();
    assert!(matches!(refused, Spend::Budget(_)), "{b}: {refused:?}");
    let uses = store
        .budget_uses("high-memory", "s-a", "restart", 0)
        .await
        .unwrap();
    assert_eq!(
        uses.len(),
        1,
        "{b}: only the allowed use is recorded: {uses:?}"
    );
}

async fn the_action_rate_counts_uses_spent_through_every_replica(b: Backend) {
    let (a, other) = b.replicas().await;
    let on_a = running_run(&*a, "s-b", "c000000000000002").await;
    let on_other = running_run(&*other, "s-c", "c000000000000003").await;
    let two_a_minute = |target, run| ActionSpend {
        actions_per_minute: 2,
        ..restart(target, run, &PLENTY)
    };
    let first = a
        .spend_action(&two_a_minute("s-b", on_a), now())
        .await
        .unwrap();
    let second = other
        .spend_action(&two_a_minute("s-c", on_other), now())
        .await
        .unwrap();
    assert_eq!((first, second), (Spend::Allowed, Spend::Allowed), "{b}");
    assert_eq!(
        a.spend_action(&two_a_minute("s-b", on_a), now())
            .await
            .unwrap(),
        Spend::RateLimited(RATE_LIMITED.to_owned()),
        "{b}: two uses in the last minute, one through each replica"
    );
}

async fn only_the_runs_holder_may_act(b: Backend) {
    let (holder, other) = b.replicas().await;
    let run = running_run(&*holder, "s-d", "c000000000000004").await;
    let refused = other
        .spend_action(&restart("s-d", run, &PLENTY), now())
        .await
        .unwrap();
    assert!(matches!(refused, Spend::Fenced(_)), "{b}: {refused:?}");
    assert!(
        other
            .budget_uses("high-memory", "s-d", "restart", 0)
            .await
            .unwrap()
            .is_empty(),
        "{b}: a fenced spend records nothing"
    );
}

async fn a_replica_whose_lease_expired_and_was_taken_over_is_fenced(b: Backend) {
    let cut_off = b.open_with_lease(SHORT_LEASE).await;
    let reaper = b.open().await;
    let run = running_run(&*cut_off, "s-e", "c000000000000005").await;
    outlive_short_lease().await;
    let recovery = reaper
        .recover_runs(RecoverScope::Abandoned, now())
        .await
        .unwrap();
    assert_eq!(recovery.interrupted.len(), 1, "{b}: {recovery:?}");
    let refused = cut_off
        .spend_action(&restart("s-e", run, &PLENTY), now())
        .await
        .unwrap();
    assert!(matches!(refused, Spend::Fenced(_)), "{b}: {refused:?}");
}
