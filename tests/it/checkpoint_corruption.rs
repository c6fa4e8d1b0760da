//! The runbook's "Checkpoint Corruption" on real Docker: a streaming job that dies saying its
//! checkpoint is corrupted becomes one CheckpointCorrupted incident; the shipped responder
//! diagnoses through the Spark master, offers restore (with a backup) and delete as one
//! choice of which at most one is approved, and only then touches the checkpoint.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::app::{Options, TestApp, SLACK_TOKEN};
use crate::support::docker::{CheckpointVolume, TestContainer};
use crate::support::fake_slack::FakeSlack;

const ADMIN: &str = "admin-token-ck77";

/// The app, watching only containers named `k2-test-<watch>...` (tests run in parallel, and
/// one test's deaths must not become another's incidents).
async fn start(
    dir: &std::path::Path,
    slack: &FakeSlack,
    master: &TestContainer,
    watch: &str,
) -> TestApp {
    let options = Options {
        oom_containers: Some(format!("k2-test-{watch}.*")),
        admin_token: Some(ADMIN.into()),
        config: vec![("spark_master_container", master.name().to_owned())],
        ..Default::default()
    };
    let app = TestApp::spawn(dir, Some(slack), options).await;
    // Let the Docker events source take its start time (it follows events from then on)
    // before a test container can die.
    tokio::task::yield_now().await;
    app
}

/// A job (see [`TestContainer::streaming_job`]) created, and waited for until it exited, off
/// the runtime: the app's event source runs on this test's runtime meanwhile.
async fn dead_job(
    prefix: &'static str,
    volume: &CheckpointVolume,
    symptom: bool,
    backup: bool,
) -> TestContainer {
    let volume = volume.name().to_owned();
    tokio::task::spawn_blocking(move || {
        let job = TestContainer::streaming_job(prefix, &volume, symptom, backup);
        job.wait_running(false);
        job
    })
    .await
    .unwrap()
}

/// Waits (bounded) for the incidents whose target is `target`, once there are `count`.
async fn incidents_of(app: &TestApp, target: &str, count: usize) -> Vec<Value> {
    for _ in 0..300 {
        let found: Vec<Value> = app
            .incidents()
            .await
            .into_iter()
            .filter(|i| i["target"] == target)
            .collect();
        if found.len() >= count {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {count} incidents for {target} within 30 s");
}

/// Waits (bounded) until `job`'s incident offers its choice, and returns its detail then.
async fn wait_for_choice(
    app: &TestApp,
    slack: &FakeSlack,
    incident: i64,
    job: &TestContainer,
) -> Value {
    let dir = job.checkpoint_dir();
    let asked = slack
        .wait_for(
            |m| {
                m.iter().any(|c| {
                    c.text.contains("Choose one option of *resolution*") && c.text.contains(&dir)
                })
            },
            Duration::from_secs(60),
        )
        .await;
    assert!(asked, "{:#?}", slack.messages());
    app.get_json(&format!("/api/incidents/{incident}")).await
}

async fn decide(app: &TestApp, incident: i64, body: Value) -> reqwest::Response {
    app.client
        .post(format!(
            "{}/api/incidents/{incident}/approvals",
            app.address
        ))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The run's step states by id.
fn states(detail: &Value) -> Vec<(String, String)> {
    crate::support::app::step_states(detail, 0)
}

fn state_of(detail: &Value, step: &str) -> Option<String> {
    states(detail)
        .into_iter()
        .find(|(id, _)| id == step)
        .map(|(_, s)| s)
}

#[tokio::test]
async fn a_corrupted_job_is_one_incident_and_its_checkpoint_is_deleted_only_once_approved() {
    let volume = CheckpointVolume::new("ckv");
    let master = TestContainer::with_checkpoints("ck-master1", &volume);
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), &slack, &master, "ck1-").await;

    // A job that dies of something else first: it stays a plain death, no incident.
    let quiet = dead_job("ck1-quiet", &volume, false, false).await;
    let job = dead_job("ck1-job", &volume, true, false).await;
    let checkpoint = job.checkpoint_dir();

    let found = incidents_of(&app, job.name(), 1).await;
    let incident = found[0]["id"].as_i64().unwrap();
    let detail = wait_for_choice(&app, &slack, incident, &job).await;
    let alert = &detail["alerts"][0];
    assert_eq!(
        alert["labels"]["alertname"], "CheckpointCorrupted",
        "{detail:#}"
    );
    assert!(
        alert["annotations"]["symptom"]
            .as_str()
            .unwrap()
            .contains("Unable to read checkpoint metadata"),
        "{alert:#}"
    );
    // The Docker events are handled in order: the quiet death came first and opened nothing.
    assert!(
        app.incidents()
            .await
            .iter()
            .all(|i| i["target"] != quiet.name()),
        "a death without the symptom is no corruption"
    );
    assert_eq!(
        incidents_of(&app, job.name(), 1).await.len(),
        1,
        "one death, one incident"
    );

    // Diagnosis ran through the Spark master; Option 1 is not offered without a backup.
    for step in ["state", "listing", "metadata", "backup", "diagnosis"] {
        assert_eq!(
            state_of(&detail, step).as_deref(),
            Some("succeeded"),
            "{step}: {detail:#}"
        );
    }
    let steps = detail["runs"][0]["steps"].as_array().unwrap();
    let output = |id: &str| steps.iter().find(|s| s["step_id"] == id).unwrap()["summary"].clone();
    let diagnosis = output("diagnosis").to_string();
    assert!(
        diagnosis.contains("corrupt batch 41"),
        "the metadata head: {diagnosis}"
    );
    assert!(
        diagnosis.contains("Option 1 (restore) is not offered"),
        "{diagnosis}"
    );
    let approvals = detail["approvals"].as_array().unwrap();
    let offered: Vec<_> = approvals
        .iter()
        .map(|a| a["step_id"].as_str().unwrap())
        .collect();
    assert_eq!(offered, ["delete_checkpoint"], "{approvals:#?}");
    let request = slack
        .messages()
        .into_iter()
        .find(|c| c.text.contains("Choose one option"))
        .unwrap();
    assert!(request.text.contains("Data loss risk"), "{}", request.text);

    // Nothing destructive before a person says so.
    master.exec(&["test", "-e", &format!("{checkpoint}/metadata")]);
    assert!(!job.is_running());

    // `approve <incident>` does not pick an option for a person: it must be named.
    let unnamed = decide(
        &app,
        incident,
        json!({"decision": "approve", "by": "carol"}),
    )
    .await;
    assert_eq!(unnamed.status(), 409);
    let approved = decide(
        &app,
        incident,
        json!({"decision": "approve", "step": "delete_checkpoint", "by": "alice"}),
    )
    .await;
    assert_eq!(approved.status(), 200);

    let done = app.wait_for_finished_run(job.name(), 1).await;
    assert_eq!(done["runs"][0]["outcome"], "succeeded", "{done:#}");
    for (step, state) in [
        ("restore_backup", "skipped"),
        ("delete_checkpoint", "succeeded"),
        ("restart", "succeeded"),
        ("verify", "succeeded"),
        ("option_3", "succeeded"),
    ] {
        assert_eq!(
            state_of(&done, step).as_deref(),
            Some(state),
            "{step}: {done:#}"
        );
    }
    let gone = master.exec(&[
        "sh",
        "-c",
        &format!("test -e {checkpoint} && echo present || echo gone"),
    ]);
    assert_eq!(gone.trim(), "gone");
    assert!(job.is_running(), "started again on a fresh checkpoint");
    app.stop().await;
}

#[tokio::test]
async fn with_a_backup_option_1_restores_it_and_the_other_option_is_refused() {
    let volume = CheckpointVolume::new("ckv");
    let master = TestContainer::with_checkpoints("ck-master", &volume);
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), &slack, &master, "ck2-").await;

    let job = dead_job("ck2-back", &volume, true, true).await;
    let checkpoint = job.checkpoint_dir();
    let incident = incidents_of(&app, job.name(), 1).await[0]["id"]
        .as_i64()
        .unwrap();
    let detail = wait_for_choice(&app, &slack, incident, &job).await;
    let offered: Vec<_> = detail["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["step_id"].as_str().unwrap().to_owned(),
                a["choice"].clone(),
            )
        })
        .collect();
    assert_eq!(
        offered,
        [
            ("restore_backup".to_owned(), json!("resolution")),
            ("delete_checkpoint".to_owned(), json!("resolution"))
        ]
    );
    let restore = decide(
        &app,
        incident,
        json!({"decision": "approve", "step": "restore_backup", "by": "alice"}),
    )
    .await;
    assert_eq!(restore.status(), 200);
    // Once one option is approved, the other cannot be, whoever asks.
    let other = decide(
        &app,
        incident,
        json!({"decision": "approve", "step": "delete_checkpoint", "by": "bob"}),
    )
    .await;
    assert_eq!(other.status(), 409);
    let why = other.text().await.unwrap();
    assert!(
        why.contains(
            "another option of choice resolution was chosen (restore_backup, approved by alice)"
        ),
        "{why}"
    );

    let done = app.wait_for_finished_run(job.name(), 1).await;
    assert_eq!(done["runs"][0]["outcome"], "succeeded", "{done:#}");
    assert_eq!(
        state_of(&done, "restore_backup").as_deref(),
        Some("succeeded"),
        "{done:#}"
    );
    assert_eq!(
        state_of(&done, "delete_checkpoint").as_deref(),
        Some("refused"),
        "{done:#}"
    );
    let states: Vec<_> = done["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(states, ["approved", "refused"]);
    let metadata = master.exec(&["cat", &format!("{checkpoint}/metadata")]);
    assert!(metadata.contains("good-backup"), "{metadata}");
    let kept = master.exec(&["cat", &format!("{checkpoint}.corrupted/metadata")]);
    assert!(
        kept.contains("corrupt"),
        "the corrupted checkpoint is kept aside: {kept}"
    );
    assert!(job.is_running(), "started again on the restored checkpoint");
    let settled = slack
        .wait_for(
            |m| {
                m.iter()
                    .any(|c| c.method == "chat.update" && c.text.contains("Not chosen"))
            },
            Duration::from_secs(20),
        )
        .await;
    assert!(settled, "{:#?}", slack.updates());
    app.stop().await;
}
