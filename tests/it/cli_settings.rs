//! Settings through the real binary: every bad setting of one start reported together, named
//! the way it was given (variable, flag or file), without a secret's value; and playbook
//! settings as an open map, `RESPONDER_CONFIG_<NAME>` or `playbook_config:` in `--config`,
//! so a playbook reading a new `config.<name>` needs nothing but YAML.

use std::path::Path;

use crate::cli::{run, shipped_catalog_args};
use crate::support::app::{am_alert, catalog_dir};
use crate::support::binary::{binary, free_port};

#[tokio::test]
async fn two_bad_settings_in_one_start_are_reported_together() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let token = "webhook-token-never-shown-7f3a";
    let mut cmd = binary(dir.path());
    cmd.arg("serve")
        .args(shipped_catalog_args())
        .env("RESPONDER_LISTEN", format!("127.0.0.1:{port}"))
        .env("RESPONDER_MAX_RUNS", "abc")
        .env("RESPONDER_WEBHOOK_TOKEN", token)
        .args(["--slack-command", "responder"]);
    let (status, stdout, stderr) = run(cmd, dir.path()).await;
    assert!(!status.success(), "started anyway:\n{stdout}{stderr}");
    for want in [
        "2 bad settings:\n",
        "\n  RESPONDER_MAX_RUNS=abc: not a number; use a whole number of at least 1",
        "\n  SLACK_COMMAND=responder: use a slash command like /responder",
    ] {
        assert!(stderr.contains(want), "{want:?} in:\n{stderr}");
    }
    assert!(!format!("{stdout}{stderr}").contains(token), "{stderr}");
}

#[tokio::test]
async fn a_bad_file_value_and_an_unknown_key_are_reported_with_the_file_beside_a_variable() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("responder.yaml");
    std::fs::write(&config, "approval_ttl: soon\nmax_run: 3\n").unwrap();
    let mut cmd = binary(dir.path());
    cmd.arg("check")
        .arg("--config")
        .arg(&config)
        .args(shipped_catalog_args())
        .env("RESPONDER_MODE", "yolo");
    let (status, stdout, stderr) = run(cmd, dir.path()).await;
    assert!(!status.success(), "{stdout}{stderr}");
    let file = config.display();
    for want in [
        "3 bad settings:\n".to_owned(),
        format!("max_run (in {file}): unknown setting; did you mean `max_runs`?"),
        format!("approval_ttl: soon (in {file}): not a duration"),
        "RESPONDER_MODE=yolo: use live or dry-run".to_owned(),
    ] {
        assert!(stderr.contains(&want), "{want:?} in:\n{stderr}");
    }
}

/// A catalog whose one playbook reads a setting no shipped file knows: `config.probe_container`.
fn catalog_reading_a_new_setting(root: &Path) -> (String, String) {
    let (routes, responders) = catalog_dir(
        root,
        "routes:\n  - matchers: ['alertname=\"Probe\"']\n    responder: probe\n",
        &[(
            "probe",
            "name: probe\ntarget: \"{{ alert.labels.container }}\"\nallow_targets: ['.*']\nsteps:\n  - id: look\n    action: docker_inspect\n    container: \"{{ config.probe_container }}\"\n",
        )],
    );
    (
        routes.display().to_string(),
        responders.display().to_string(),
    )
}

#[tokio::test]
async fn a_new_playbook_setting_comes_from_the_environment_or_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let (routes, responders) = catalog_reading_a_new_setting(dir.path());
    let catalog = ["--routes-dir", &routes, "--responders-dir", &responders];

    let mut cmd = binary(dir.path());
    cmd.arg("check").args(catalog);
    let (status, stdout, stderr) = run(cmd, dir.path()).await;
    assert!(!status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains(
            "`config.probe_container` has no value: set RESPONDER_CONFIG_PROBE_CONTAINER"
        ),
        "{stderr}"
    );

    let mut cmd = binary(dir.path());
    cmd.arg("check")
        .args(catalog)
        .env("RESPONDER_CONFIG_PROBE_CONTAINER", "probe-from-env");
    let (status, stdout, stderr) = run(cmd, dir.path()).await;
    assert!(status.success(), "{stdout}{stderr}");

    // `simulate` renders the step with the value: the file's, then the variable's over it.
    let payload = dir.path().join("probe.json");
    let alert = am_alert(
        "firing",
        "Probe",
        "app-1",
        "7070707070700001",
        "2026-11-27T05:00:00Z",
    );
    std::fs::write(&payload, alert.to_string()).unwrap();
    let config = dir.path().join("responder.yaml");
    std::fs::write(
        &config,
        "playbook_config:\n  probe_container: probe-from-file\n",
    )
    .unwrap();
    let database = format!("sqlite://{}/none.db", dir.path().display());
    for (variable, expected) in [
        (None, "probe-from-file"),
        (Some("probe-from-env"), "probe-from-env"),
    ] {
        let mut cmd = binary(dir.path());
        cmd.arg("simulate")
            .arg(&payload)
            .args(catalog)
            .arg("--config")
            .arg(&config)
            .env("RESPONDER_DATABASE_URL", &database);
        if let Some(value) = variable {
            cmd.env("RESPONDER_CONFIG_PROBE_CONTAINER", value);
        }
        let (status, stdout, stderr) = run(cmd, dir.path()).await;
        assert!(status.success(), "{stdout}{stderr}");
        assert!(stdout.contains(expected), "{expected} in:\n{stdout}");
    }
}
