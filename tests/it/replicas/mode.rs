//! A mode set through one replica is obeyed by another: `/responder mode dry-run` through A,
//! then A is killed (so B, not A woken by B's journal entry, must record and run the alert)
//! and an alert is posted to B: the run is a dry run and the container is not restarted.

use std::cell::RefCell;
use std::time::Duration;

use serde_json::Value;

use super::{firing, runs_of, start_replicas, step_state, wait_runs_done};
use crate::support::app::SLACK_TOKEN;
use crate::support::docker::TestContainer;
use crate::support::fake_slack::FakeSlack;
use crate::support::replicas::OPERATOR;
use crate::support::wait;

/// Bound on a mode override reaching every replica (documented: at once through NOTIFY,
/// within about 1 s without); generous for a noisy machine.
const MODE_PROPAGATION: Duration = Duration::from_secs(30);

#[tokio::test]
async fn dry_run_set_through_one_replica_is_obeyed_by_another() {
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let idle = TestContainer::idle("rep-mode");
    let mut set = start_replicas(2, dir.path(), &slack).await;
    let (a, b) = (&set.replicas[0], &set.replicas[1]);

    let (status, answer) = a.slack_command(OPERATOR, "mode dry-run").await;
    assert_eq!(status, 200, "{answer}");
    let text = answer["text"].as_str().unwrap_or_default();
    assert!(text.contains("Global mode set to *dry-run*"), "{answer}");
    // B shows the modes its plans read (the same in-memory overrides), so once it reports
    // dry-run, its dispatcher obeys it.
    let shown = RefCell::new(Value::Null);
    let reached = wait::until(MODE_PROPAGATION, || async {
        let (status, answer) = b.slack_command(OPERATOR, "mode").await;
        assert_eq!(status, 200, "{answer}");
        let dry_run = answer["text"]
            .as_str()
            .unwrap_or_default()
            .contains("global *dry-run*");
        *shown.borrow_mut() = answer;
        dry_run
    })
    .await;
    assert!(
        reached,
        "B reports the mode A set within {MODE_PROPAGATION:?}: {}",
        shown.borrow()
    );

    set.replicas[0].kill();
    let b = &set.replicas[1];
    b.post_alert_ok(&firing("HighMemoryUsage", idle.name(), "e200000000000001"))
        .await;
    wait_runs_done(&set, idle.name(), 1).await;
    let runs = runs_of(&set.database, idle.name());
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(
        runs[0][4], b.owner,
        "B recorded the alert, so B ran it: {runs:?}"
    );
    let detail = &b.incidents_of(idle.name()).await[0];
    assert_eq!(detail["runs"][0]["mode"], "dry-run", "{detail:#}");
    assert_eq!(step_state(detail, 0, "restart"), "planned", "{detail:#}");
    assert_eq!(idle.starts(), 1, "not restarted\n{}", set.logs());
}
