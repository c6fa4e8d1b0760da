//! The shipped oom-killed responder on real Docker: a dead container is started under
//! budget and verified; one already brought back by its restart policy is left alone.

use std::time::Duration;

use serde_json::Value;

use crate::support::app::{am_alert, step_states, Options, TestApp, SLACK_TOKEN};
use crate::support::docker::{test_image, TestContainer};
use crate::support::fake_slack::FakeSlack;

#[tokio::test]
async fn a_killed_container_is_started_and_verified_and_a_running_one_is_left_alone() {
    let dead = TestContainer::idle("oomr-dead");
    dead.stop();
    let back = TestContainer::idle("oomr-back");
    let back_started = back.started_at();
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(dir.path(), Some(&slack), Options::default()).await;
    for (c, fp) in [
        (dead.name(), "f100000000000001"),
        (back.name(), "f100000000000002"),
    ] {
        let mut alert = am_alert(
            "firing",
            "ContainerOomKilled",
            c,
            fp,
            "2026-11-27T05:00:00Z",
        );
        alert["alerts"][0]["labels"]["reason"] = "oom".into();
        app.post_alertmanager(&alert).await;
    }

    let d = app.wait_for_finished_run(dead.name(), 1).await;
    let states: Vec<_> = step_states(&d, 0)
        .into_iter()
        .map(|(id, s)| format!("{id}={s}"))
        .collect();
    assert_eq!(
        states,
        [
            "state=succeeded",
            "logs=succeeded",
            "start=succeeded",
            "stays_up=succeeded",
            "memory=succeeded",
            "advice=succeeded"
        ],
        "{d:#}"
    );
    assert!(dead.is_running(), "started again");
    let advice = d["runs"][0]["steps"][5]["summary"].as_str().unwrap();
    assert!(
        advice.contains("64.0 MiB") && advice.contains("docker-compose.yml"),
        "{advice}"
    );

    let b = app.wait_for_finished_run(back.name(), 1).await;
    let states: Vec<_> = step_states(&b, 0)
        .into_iter()
        .map(|(id, s)| format!("{id}={s}"))
        .collect();
    assert_eq!(states[2], "start=skipped", "{b:#}");
    assert_eq!(
        back.started_at(),
        back_started,
        "its restart policy already brought it back"
    );
    assert!(
        slack
            .wait_for(
                |m| m.iter().any(|c| c.text.contains("*advice*")),
                Duration::from_secs(10)
            )
            .await
    );
    app.stop().await;
}

/// Starts a container that the kernel OOM-kills on its first start only (the marker survives
/// in its writable layer), like a job that blew up once: 16 MiB of memory and a 64 MiB write
/// to tmpfs. `exec` makes dd the main process, as a JVM is in a real job, so the kill ends
/// the container.
pub(crate) fn run_until_oom_killed(name: &str) {
    let script = "trap 'exit 0' TERM; if [ ! -e /started ]; then touch /started; \
                  exec dd if=/dev/zero of=/fill/x bs=1M count=64; fi; sleep 3600 & wait";
    let image = test_image();
    let run = std::process::Command::new("docker")
        .args([
            "run",
            "-d",
            "--name",
            name,
            "--memory",
            "16m",
            "--memory-swap",
            "16m",
            "--tmpfs",
            "/fill",
            &image,
            "sh",
            "-c",
            script,
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// Waits for the incident of `name`'s death and returns its reason: `oom`, or `killed` when
/// the engine reported a plain SIGKILL.
async fn death_reason(app: &TestApp, name: &str) -> String {
    for _ in 0..300 {
        for incident in app.incidents().await {
            let detail = app
                .get_json(&format!("/api/incidents/{}", incident["id"]))
                .await;
            let labels = &detail["alerts"][0]["labels"];
            if labels["container"] == name {
                return labels["reason"].as_str().unwrap_or_default().to_owned();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no incident for the death of {name} within 30 s");
}

/// Removes a container started by hand when the test ends, however it ends.
pub(crate) struct Remove(pub(crate) String);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &self.0])
            .output();
    }
}

#[tokio::test]
async fn a_real_oom_kill_becomes_one_incident_one_start_and_closes_itself() {
    let prefix = format!("k2-test-oome2e-{}", std::process::id());
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        oom_containers: Some(format!("{prefix}-[0-9]")),
        ..Default::default()
    };
    let app = TestApp::spawn(dir.path(), Some(&slack), options).await;
    // containerd now and then loses a task's OOM event (containerd#8893): the engine then
    // reports a plain SIGKILL, and nothing can tell it was an OOM. Such a death is not what
    // this test is about, so it tries again with a new container, up to three times.
    let mut cleanup = Vec::new();
    let mut name = None;
    for attempt in 0..3 {
        let candidate = format!("{prefix}-{attempt}");
        cleanup.push(Remove(candidate.clone()));
        run_until_oom_killed(&candidate);
        if death_reason(&app, &candidate).await == "oom" {
            name = Some(candidate);
            break;
        }
        eprintln!("the engine reported no OOM for {candidate} (lost OOM event); trying again");
    }
    let name = name.expect("the engine saw none of three real OOM kills");

    let detail = app.wait_for_finished_run(&name, 1).await;
    let states: Vec<_> = step_states(&detail, 0)
        .into_iter()
        .map(|(id, s)| format!("{id}={s}"))
        .collect();
    assert_eq!(
        states[..4],
        [
            "state=succeeded",
            "logs=succeeded",
            "start=succeeded",
            "stays_up=succeeded"
        ],
        "{detail:#}"
    );
    assert_eq!(detail["alerts"][0]["labels"]["reason"], "oom");
    // The inspect step reports the engine's flag as it is: true, or false when the engine lost
    // the flag but sent the event (moby#18510), which is why the reason follows the event.
    assert!(
        detail["runs"][0]["steps"][0]["outputs"]["oom_killed"].is_boolean(),
        "{detail:#}"
    );
    assert_eq!(detail["runs"][0]["steps"][0]["outputs"]["exit_code"], 137);
    // A one-shot incident closes once its run is done: no resolve will ever come.
    let mut closed = Value::Null;
    for _ in 0..50 {
        closed = app
            .get_json(&format!("/api/incidents/{}", detail["incident"]["id"]))
            .await;
        if closed["incident"]["status"] == "resolved" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(closed["incident"]["status"], "resolved", "{closed:#}");
    // Whatever was journaled of this death since (a second record) is recorded by now.
    app.barrier().await;
    let incidents: Vec<_> = app
        .incidents()
        .await
        .into_iter()
        .filter(|i| i["target"] == name.as_str())
        .collect();
    assert_eq!(
        incidents.len(),
        1,
        "one death, one incident: {incidents:#?}"
    );
    assert_eq!(
        closed["runs"].as_array().map(Vec::len),
        Some(1),
        "one run, one start"
    );
    app.stop().await;
}
