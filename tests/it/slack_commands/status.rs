//! `status` against real Docker containers: the table, one container, a stopped one, and a
//! container outside SLACK_STATUS_CONTAINERS.

use std::time::Duration;

use super::{options, MALLORY};
use crate::support::app::{TestApp, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::FakeSlack;
use crate::support::slack::command;

/// `/responder <text>`'s table: the reply, or, when the engine is slower than the reply may
/// wait, the follow-up posted to the command's `response_url`.
async fn status(app: &TestApp, slack: &FakeSlack, text: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let id = format!(
        "status-{}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let (code, json) = command(app, MALLORY, text, &slack.response_url(&id)).await;
    assert_eq!(code, 200, "{json}");
    let reply = json["text"].as_str().unwrap().to_owned();
    if !reply.contains("the table follows") {
        return reply;
    }
    let followed = slack.wait_for_response(&id, Duration::from_secs(30)).await;
    followed.expect("the table follows")["text"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn status_shows_the_real_containers_as_a_table() {
    let hog = TestContainer::memory_hog("slackstat");
    let idle = TestContainer::idle("slackstat");
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    // Only this test's two containers, whatever else runs on the engine.
    opts.slack_status_containers = Some(format!("{}|{}", hog.name(), idle.name()));
    let app = TestApp::spawn(dir.path(), Some(&slack), opts).await;

    let table = status(&app, &slack, "status").await;
    assert!(table.starts_with("```\nCONTAINER"), "{table}");
    for line in [hog.name(), idle.name()].map(|name| {
        table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {table}"))
            .to_owned()
    }) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells[1], "running", "{line}");
        assert_eq!(cells[cells.len() - 2], "0", "restarts: {line}");
        assert_eq!(cells[cells.len() - 1], "none", "health: {line}");
    }
    let hog_line = table.lines().find(|l| l.starts_with(hog.name())).unwrap();
    let mem: f64 = hog_line
        .split_whitespace()
        .rev()
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (mem - hog.cli_memory_percent()).abs() < 5.0,
        "{mem} vs docker stats: {hog_line}"
    );
    assert!(
        // Escaped like every reply; Slack shows `>=`.
        table.contains(&format!("memory &gt;= 90% or unhealthy): `{}`", hog.name())),
        "{table}"
    );

    let one = status(&app, &slack, &format!("status {}", idle.name())).await;
    assert!(
        one.contains(idle.name()) && !one.contains(hog.name()),
        "{one}"
    );
    idle.stop();
    let stopped = status(&app, &slack, &format!("status {}", idle.name())).await;
    let line = stopped
        .lines()
        .find(|l| l.starts_with(idle.name()))
        .unwrap();
    assert!(line.contains("exited"), "{stopped}");
    let outside = status(&app, &slack, "status k2-kafka").await;
    assert!(
        outside.contains("not among the containers status reports"),
        "{outside}"
    );
    app.stop().await;
}
