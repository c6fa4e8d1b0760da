//! Approvals: a decision never changes twice, even when two replicas decide at once, and an
//! expired approval can no longer be decided.

use std::time::Duration;

use alert_responder::store::{ApprovalState, NewApproval, Store};

use super::{incident_with_run, now, Backend};

on_both_backends!(
    two_decisions_at_once_exactly_one_wins,
    an_expired_approval_is_not_decided,
    two_options_of_one_choice_approved_at_once_only_one_wins,
);

async fn request(store: &dyn Store, target: &str, fingerprint: &str) -> (i64, i64) {
    let (incident, run) = incident_with_run(store, target, fingerprint).await;
    let approval = NewApproval {
        incident_id: incident,
        run_id: run,
        step_id: "restart".into(),
        plan: format!("restart {target}"),
        expires_at: now() + Duration::from_secs(600),
        choice: None,
    };
    (
        incident,
        store.request_approval(&approval, now()).await.unwrap(),
    )
}

async fn two_decisions_at_once_exactly_one_wins(b: Backend) {
    let (a, other) = b.replicas().await;
    let (_, by_id) = request(&*a, "v-a", "7000000000000001").await;
    let (x, y) = tokio::join!(
        a.decide_approval_by_id(by_id, true, "alice", now()),
        other.decide_approval_by_id(by_id, false, "bob", now()),
    );
    let winners: Vec<_> = [x.unwrap(), y.unwrap()].into_iter().flatten().collect();
    assert_eq!(
        winners.len(),
        1,
        "{b}: exactly one decision wins: {winners:?}"
    );
    let stored = other.approval(by_id).await.unwrap().unwrap();
    assert_eq!(
        stored.state, winners[0].state,
        "{b}: the winner's decision is the one kept"
    );
    assert_eq!(stored.decided_by, winners[0].decided_by, "{b}");

    let (incident, _) = request(&*a, "v-b", "7000000000000002").await;
    let (x, y) = tokio::join!(
        a.decide_approval(incident, true, "alice", now()),
        other.decide_approval(incident, true, "bob", now()),
    );
    let decided = [x.unwrap(), y.unwrap()].into_iter().flatten().count();
    assert_eq!(decided, 1, "{b}: by incident too");
}

async fn an_expired_approval_is_not_decided(b: Backend) {
    let store = b.open().await;
    let (_, id) = request(&*store, "v-c", "7000000000000003").await;
    let later = now() + Duration::from_secs(601);
    assert!(
        store
            .decide_approval_by_id(id, true, "alice", later)
            .await
            .unwrap()
            .is_none(),
        "{b}: expired"
    );
    store
        .close_approval(id, ApprovalState::Expired, later)
        .await
        .unwrap();
    let stored = store.approval(id).await.unwrap().unwrap();
    assert_eq!(stored.state, ApprovalState::Expired, "{b}");
    assert!(
        store
            .decide_approval_by_id(id, true, "alice", now())
            .await
            .unwrap()
            .is_none(),
        "{b}: a closed approval stays closed"
    );
}

/// Two options of one choice (`choice:` steps) on `run`: their approval ids.
async fn options(store: &dyn Store, incident: i64, run: i64) -> (i64, i64) {
    let option = |step: &str| NewApproval {
        incident_id: incident,
        run_id: run,
        step_id: step.into(),
        plan: format!("{step} the checkpoint"),
        expires_at: now() + Duration::from_secs(600),
        choice: Some("resolution".into()),
    };
    (
        store
            .request_approval(&option("restore"), now())
            .await
            .unwrap(),
        store
            .request_approval(&option("delete"), now())
            .await
            .unwrap(),
    )
}

async fn two_options_of_one_choice_approved_at_once_only_one_wins(b: Backend) {
    let (a, other) = b.replicas().await;
    // Many rounds: the two clicks race on two rows, which only the store can settle.
    for round in 0..10 {
        let fingerprint = format!("70000000000001{round:02}");
        let (incident, run) =
            incident_with_run(&*a, &format!("v-choice-{round}"), &fingerprint).await;
        let (restore, delete) = options(&*a, incident, run).await;
        let (x, y) = tokio::join!(
            a.decide_approval_by_id(restore, true, "alice", now()),
            other.decide_approval_by_id(delete, true, "bob", now()),
        );
        let winners: Vec<_> = [x.unwrap(), y.unwrap()].into_iter().flatten().collect();
        assert_eq!(
            winners.len(),
            1,
            "{b}: round {round}: one option wins: {winners:?}"
        );
        let states = [
            other.approval(restore).await.unwrap().unwrap().state,
            other.approval(delete).await.unwrap().unwrap().state,
        ];
        let approved = states
            .iter()
            .filter(|s| **s == ApprovalState::Approved)
            .count();
        assert_eq!(approved, 1, "{b}: round {round}: {states:?}");
        // The loser stays refused however often it is clicked; denying it is still allowed
        // (it denies nothing that runs), and an approval by incident never picks an option.
        let loser = if winners[0].id == restore {
            delete
        } else {
            restore
        };
        assert!(
            a.decide_approval_by_id(loser, true, "carol", now())
                .await
                .unwrap()
                .is_none(),
            "{b}: round {round}: the other option cannot be approved any more"
        );
    }
    let (incident, run) = incident_with_run(&*a, "v-choice-x", "7000000000000199").await;
    options(&*a, incident, run).await;
    assert!(
        a.decide_approval(incident, true, "dave", now())
            .await
            .unwrap()
            .is_none(),
        "{b}: `approve <incident>` does not pick an option for a person"
    );
    let denied = a
        .decide_approval(incident, false, "dave", now())
        .await
        .unwrap();
    assert_eq!(
        denied.map(|r| r.state),
        Some(ApprovalState::Denied),
        "{b}: a deny denies the choice"
    );
}
