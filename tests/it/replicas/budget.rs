//! A budget spent through one replica refuses on another: `restart-once` may restart a
//! container once an hour; the first alert, through A, restarts it; after it resolves, A is
//! killed (so B must record and run what comes next) and a second alert instance through B is
//! refused by the budget (recorded and escalated): the container was restarted once in all.

use std::time::Duration;

use super::{firing, resolved, runs_of, start_replicas, step_state, wait_runs_done};
use crate::support::app::{decision_kinds, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::FakeSlack;
use crate::support::psql::literal;
use crate::support::replicas::poll;

#[tokio::test]
async fn a_budget_spent_through_one_replica_refuses_on_another() {
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let idle = TestContainer::idle("rep-budget");
    let mut set = start_replicas(2, dir.path(), &slack).await;
    let a = &set.replicas[0];

    a.post_alert_ok(&firing("HighMemoryUsage", idle.name(), "b100000000000001"))
        .await;
    wait_runs_done(&set, idle.name(), 1).await;
    let first = &a.incidents_of(idle.name()).await[0];
    assert_eq!(step_state(first, 0, "restart"), "succeeded", "{first:#}");
    assert_eq!(idle.starts(), 2, "the first alert restarted it");

    a.post_alert_ok(&resolved(
        "HighMemoryUsage",
        idle.name(),
        "b100000000000001",
    ))
    .await;
    let open = format!(
        "SELECT COUNT(*) FROM incidents WHERE target = {} AND status = 'open'",
        literal(idle.name())
    );
    poll(
        "the first incident resolved",
        Duration::from_secs(30),
        || (set.database.count(&open) == 0).then_some(()),
        || set.logs(),
    )
    .await;

    set.replicas[0].kill();
    let (b, db) = (&set.replicas[1], &set.database);
    b.post_alert_ok(&firing("HighMemoryUsage", idle.name(), "b100000000000002"))
        .await;
    wait_runs_done(&set, idle.name(), 2).await;
    let runs = runs_of(db, idle.name());
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(
        runs[1][4], b.owner,
        "B recorded the second alert and ran it"
    );
    // Newest first: the second incident is the first in the list.
    let second = &b.incidents_of(idle.name()).await[0];
    assert_eq!(step_state(second, 0, "restart"), "refused", "{second:#}");
    let kinds = decision_kinds(second);
    assert!(
        kinds.iter().any(|k| k == "budget_exhausted") && kinds.iter().any(|k| k == "escalated"),
        "refused by the budget and escalated: {kinds:?}\n{second:#}"
    );
    assert_eq!(idle.starts(), 2, "restarted once in all\n{}", set.logs());
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM budget_uses WHERE target = {}",
            literal(idle.name())
        )),
        1,
        "one use of the budget"
    );
}
