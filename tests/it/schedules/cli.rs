//! The binary's view of schedules: `check` refuses bad ones with file and path, and
//! `simulate --schedule` shows the next slots in each responder's zone.

use std::process::Command;

use super::catalog;
use crate::support::app::catalog_dir;
use crate::support::binary::{binary, Child};

#[tokio::test]
async fn check_refuses_bad_schedules_with_file_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let bad = |name: &str, keys: &str| {
        let text = format!(
            "name: {name}\n{keys}\nsteps:\n  - id: hello\n    action: report\n    text: hi\n"
        );
        (name.to_owned(), text)
    };
    let files = [
        bad("cron", "schedule: '0 8 * *'"),
        bad("zone", "schedule: '0 8 * * *'\ntimezone: Europe/Pariss"),
        bad("late", "schedule: '0 8 * * *'\ncatch_up: soon"),
        bad("lonely", "timezone: UTC\ntarget: k2-api"),
        bad("aimless", "channel: '#ops'"),
    ];
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let (routes, responders) = catalog_dir(
        dir.path(),
        "routes:\n  - matchers: ['alertname=\"Never\"']\n    responder: cron\n",
        &files,
    );
    let mut cmd: Command = binary(dir.path());
    cmd.arg("check")
        .arg("--routes-dir")
        .arg(&routes)
        .arg("--responders-dir")
        .arg(&responders);
    let mut child = Child::spawn(cmd, dir.path());
    let status = child.finished().await;
    let stderr = child.stderr();
    assert!(!status.success(), "{stderr}");
    let expected: [(&str, &str, &str); 5] = [
        ("cron.yaml", "schedule", "5-field cron"),
        ("zone.yaml", "timezone", "not an IANA time zone"),
        ("late.yaml", "catch_up", "not a duration"),
        (
            "lonely.yaml",
            "timezone",
            "only means something with a `schedule:`",
        ),
        (
            "aimless.yaml",
            "target",
            "only a responder with a `schedule:`",
        ),
    ];
    for (file, path, words) in expected {
        let found = stderr
            .lines()
            .any(|l| l.contains(file) && l.contains(&format!(": {path}: ")) && l.contains(words));
        assert!(
            found,
            "no line names {file}, {path} and {words:?}:\n{stderr}"
        );
    }
    assert!(stderr.contains("5 problem(s)"), "{stderr}");
}

#[tokio::test]
async fn simulate_shows_the_next_slots_in_the_responders_zone() {
    let dir = tempfile::tempdir().unwrap();
    let (routes, responders) = catalog(dir.path());
    let mut cmd: Command = binary(dir.path());
    cmd.args(["simulate", "--schedule", "--json", "--routes-dir"])
        .arg(&routes)
        .arg("--responders-dir")
        .arg(&responders);
    let mut child = Child::spawn(cmd, dir.path());
    let status = child.finished().await;
    let (stdout, stderr) = (child.stdout(), child.stderr());
    assert!(status.success(), "{stdout}\n{stderr}");
    let views: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(views[0]["responder"], "nightly", "{stdout}");
    assert_eq!(views[0]["schedule"], "0 8 * * *", "{stdout}");
    assert_eq!(views[0]["channel"], "#data-platform-oncall", "{stdout}");
    let next = views[0]["next"].as_array().unwrap();
    assert_eq!(next.len(), 3, "{stdout}");
    for slot in next {
        let local = slot["local"].as_str().unwrap();
        assert!(local.contains(" 08:00 Europe/Paris (+0"), "{stdout}");
    }
}
