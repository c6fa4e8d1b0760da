//! Docker unreachable (a closed port) or hung (a socket that accepts and never answers):
//! the step fails with a clear error at its timeout, the run fails and escalates, the service
//! stays responsive, and once the engine answers again the next alert is handled normally.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::Value;
use tokio::net::{UnixListener, UnixStream};

use super::one_route;
use crate::support::app::{am_alert, decision_kinds, step_states, Options, TestApp, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::FakeSlack;

const RESPONDER: &str = r#"
name: bounce
description: Inspect the container, then restart it.
target: "{{ alert.labels.container }}"
allow_targets: ['k2-test-.*']
budget: { cooldown: 0s, max: 10, per: 1h }
timeout: 1m
steps:
  - id: state
    action: docker_inspect
    container: "{{ target }}"
    timeout: 2s
  - id: restart
    action: docker_restart
    container: "{{ target }}"
    stop_timeout: 5s
    timeout: 20s
"#;

/// A stand-in for the engine's socket: while `answering` is false it accepts connections and
/// never says a word (a hung daemon); once true, new connections are relayed to the real
/// engine at `/var/run/docker.sock`.
struct HungDocker {
    answering: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl HungDocker {
    fn start(path: &Path) -> Self {
        let listener = UnixListener::bind(path).expect("bind the stand-in socket");
        let answering = Arc::new(AtomicBool::new(false));
        let flag = answering.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut client, _)) = listener.accept().await {
                if flag.load(Ordering::SeqCst) {
                    tokio::spawn(async move {
                        let mut engine = UnixStream::connect("/var/run/docker.sock")
                            .await
                            .expect("the real engine's socket");
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut engine).await;
                    });
                } else {
                    held.push(client); // open, silent, until the test ends
                }
            }
        });
        Self { answering, task }
    }

    fn recover(&self) {
        self.answering.store(true, Ordering::SeqCst);
    }
}

impl Drop for HungDocker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn spawn_app(dir: &Path, slack: &FakeSlack, docker_host: String) -> TestApp {
    let catalog = one_route(dir, "DockerFault", "bounce", RESPONDER);
    TestApp::spawn(
        dir,
        Some(slack),
        Options {
            catalog: Some(catalog),
            oncall_group: Some("S0ONCALL".into()),
            docker_host: Some(docker_host),
            ..Default::default()
        },
    )
    .await
}

fn alert(container: &str, fingerprint: &str) -> Value {
    am_alert(
        "firing",
        "DockerFault",
        container,
        fingerprint,
        "2026-11-27T05:00:00Z",
    )
}

/// The run failed at `state` with an error containing `error`, `restart` never ran, the
/// failure was recorded as escalated and the on-call group was paged in the thread.
async fn assert_failed_and_escalated(app: &TestApp, slack: &FakeSlack, target: &str, error: &str) {
    // The page comes last (after the run and its decision are recorded), so wait for it first.
    let paged = slack
        .wait_for(
            |calls| {
                calls
                    .iter()
                    .any(|c| c.text.contains(":sos:") && c.text.contains("<!subteam^S0ONCALL>"))
            },
            std::time::Duration::from_secs(30),
        )
        .await;
    assert!(paged, "{:#?}", slack.messages());
    let detail = app.wait_for_finished_run(target, 1).await;
    let run = &detail["runs"][0];
    assert_eq!(run["outcome"], "failed", "{detail:#}");
    let states = step_states(&detail, 0);
    assert_eq!(states[0], ("state".to_owned(), "failed".to_owned()));
    let message = run["steps"][0]["error"].as_str().unwrap_or("");
    assert!(message.contains(error), "clear error: {message}");
    assert!(
        states
            .iter()
            .all(|(id, state)| id != "restart" || state != "succeeded"),
        "{states:?}"
    );
    assert!(
        decision_kinds(&detail).contains(&"escalated".to_owned()),
        "{detail:#}"
    );
}

#[tokio::test]
async fn docker_at_a_closed_port_fails_the_step_clearly_and_escalates() {
    let idle = TestContainer::idle("dockerdown");
    let before = idle.started_at();
    let closed = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app(dir.path(), &slack, format!("tcp://127.0.0.1:{closed}")).await;
    let response = app
        .post_alertmanager(&alert(idle.name(), "e100000000000001"))
        .await;
    assert_eq!(response.status(), 200, "alerts are taken without Docker");
    assert_failed_and_escalated(
        &app,
        &slack,
        idle.name(),
        "cannot reach the Docker engine (DOCKER_HOST): Connection refused",
    )
    .await;
    assert_eq!(idle.started_at(), before, "nothing touched");
    assert_eq!(app.get_json("/readyz").await["status"], "ready");
    app.stop().await;
}

#[tokio::test]
async fn a_docker_socket_that_never_answers_times_out_escalates_and_recovers_when_docker_returns() {
    let idle = TestContainer::idle("dockerhung");
    let before = idle.started_at();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let hung = HungDocker::start(&socket);
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let app = spawn_app(dir.path(), &slack, format!("unix://{}", socket.display())).await;

    app.post_alertmanager(&alert(idle.name(), "e200000000000001"))
        .await;
    // While the step waits on the silent engine, the service answers as usual.
    assert_eq!(app.get_json("/healthz").await["status"], "ok");
    assert_eq!(app.get_json("/readyz").await["status"], "ready");
    assert_failed_and_escalated(&app, &slack, idle.name(), "timed out after 2s").await;
    assert_eq!(idle.started_at(), before, "nothing touched");

    // The engine answers again; the alert resolves and fires again: handled normally.
    hung.recover();
    let mut resolved = alert(idle.name(), "e200000000000001");
    resolved["alerts"][0]["status"] = "resolved".into();
    assert_eq!(app.post_alertmanager(&resolved).await.status(), 200);
    let response = app
        .post_alertmanager(&alert(idle.name(), "e200000000000002"))
        .await;
    assert_eq!(response.status(), 200);
    let detail = app.wait_for_newest_finished(idle.name(), 2).await;
    assert_eq!(detail["runs"][0]["outcome"], "succeeded", "{detail:#}");
    assert_eq!(
        step_states(&detail, 0),
        [
            ("state".to_owned(), "succeeded".to_owned()),
            ("restart".to_owned(), "succeeded".to_owned())
        ]
    );
    assert_ne!(idle.started_at(), before, "restarted once Docker was back");
    app.stop().await;
}
