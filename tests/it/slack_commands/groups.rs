//! User groups in an allow-list: members come from Slack's `usergroups.users.list`, and a
//! lookup that fails (Slack's `ok:false`, an outage, a hang) refuses with the reason, within
//! the time Slack gives a command.

use super::{options, ALICE, MALLORY};
use crate::support::app::{TestApp, SLACK_TOKEN};
use crate::support::fake_slack::FakeSlack;
use crate::support::slack::reply;

/// A target outside `check`'s allow-list: whoever passes the access check hears that, and
/// nothing runs.
const OUTSIDE: &str = "run check k2-kafka";

#[tokio::test]
async fn a_failed_group_lookup_refuses_and_says_why() {
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.slack_allowed[0] = Some(format!("{},S0ONCALL", ALICE.0));
    let app = TestApp::spawn(dir.path(), Some(&slack), opts).await;

    // Slack does not know the group: its `ok:false` code is shown.
    let refused = reply(&app, MALLORY, OUTSIDE).await;
    assert!(
        refused.contains("could not read group S0ONCALL: no_such_subteam"),
        "{refused}"
    );

    slack.set_down(true);
    let refused = reply(&app, MALLORY, OUTSIDE).await;
    assert!(
        refused.contains("could not read group S0ONCALL: Slack answered HTTP 503"),
        "{refused}"
    );
    slack.set_down(false);

    // A lookup that never answers is given up on, and the command still answers.
    slack.stall_next(1);
    let refused = reply(&app, MALLORY, OUTSIDE).await;
    assert!(
        refused.contains("could not read group S0ONCALL: Slack unreachable (timed out)"),
        "{refused}"
    );

    // Failures are not remembered: once Slack answers, a member gets through.
    slack.set_usergroup("S0ONCALL", &[MALLORY.0]);
    let passed = reply(&app, MALLORY, OUTSIDE).await;
    assert!(passed.contains("outside check's allow-list"), "{passed}");
    assert!(!passed.contains(SLACK_TOKEN), "{passed}");
    app.stop().await;
}
