//! `kafka_consumer_lag` in a real busybox container whose `kafka-consumer-groups` is a script
//! printing what Kafka 3.x prints, for offsets the test changes between the two samples.

use std::process::Command;
use std::time::Duration;

use alert_responder::actions::StepOutput;
use serde_json::json;

use crate::support::docker::TestContainer;
use crate::support::step::Step;

/// A stand-in for Kafka's CLI: records its argv in /tmp/argv, prints what Kafka 3.x prints for
/// an Empty group (notice on stderr, table on stdout) for the offsets in /tmp/offsets (lines of
/// `topic partition current log-end`), or Kafka's error for a missing group when that file is
/// absent; then appends to /tmp/calls so the test knows a sample was taken.
pub(crate) const FAKE_CLI: &str = r#"#!/bin/sh
printf '%s\n' "$#" "$@" > /tmp/argv
group=
while [ $# -gt 0 ]; do
  if [ "$1" = --group ]; then group=$2; fi
  shift
done
if [ ! -e /tmp/offsets ]; then
  printf "\nError: Consumer group '%s' does not exist.\n" "$group"
  exit 0
fi
printf "\nConsumer group '%s' has no active members.\n" "$group" >&2
fmt='%-27s %-32s %-10s %-15s %-15s %-15s %-15s %-15s %s\n'
printf '\n'
printf "$fmt" GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
while read -r topic part cur end; do
  printf "$fmt" "$group" "$topic" "$part" "$cur" "$end" "$((end - cur))" - - -
done < /tmp/offsets
echo sampled >> /tmp/calls
"#;

const GROUP: &str = "k2-bronze-binance-ingestion";
const TOPIC: &str = "market.crypto.trades.binance.raw";

/// `docker exec NAME argv...`, returning whether it succeeded and its stdout.
fn docker_exec(name: &str, argv: &[&str]) -> (bool, String) {
    let out = Command::new("docker")
        .arg("exec")
        .arg(name)
        .args(argv)
        .output()
        .expect("the docker CLI runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Writes `content` to `path` in the container (passed as an argument, never parsed by sh).
pub(crate) fn write_file(name: &str, path: &str, content: &str) {
    let (ok, _) = docker_exec(
        name,
        &[
            "sh",
            "-c",
            "printf '%s' \"$2\" > \"$1\"",
            "sh",
            path,
            content,
        ],
    );
    assert!(ok, "writing {path} in {name}");
}

/// A busybox container carrying the fake `kafka-consumer-groups` on its PATH.
pub(crate) fn kafka_container(prefix: &str) -> TestContainer {
    let c = TestContainer::idle(prefix);
    write_file(c.name(), "/bin/kafka-consumer-groups", FAKE_CLI);
    c.exec(&["chmod", "755", "/bin/kafka-consumer-groups"]);
    c
}

/// How many samples the fake CLI has served.
async fn calls(name: &str) -> usize {
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || docker_exec(&name, &["cat", "/tmp/calls"]).1)
        .await
        .expect("the poll task runs")
        .lines()
        .count()
}

/// A lag step on `c` for `group`, sampling `interval` apart.
fn lag_step(c: &TestContainer, group: &str, interval: &str) -> Step {
    Step::new(
        &format!(
            "action: kafka_consumer_lag\ncontainer: '{{{{ config.kafka_container }}}}'\n\
             group: '{{{{ alert.labels.consumer_group }}}}'\ninterval: {interval}"
        ),
        json!({
            "config": { "kafka_container": c.name() },
            "alert": { "labels": { "consumer_group": group } },
        }),
    )
}

/// Runs `step` with `first` in /tmp/offsets for the first sample and `second` for the second,
/// switching as soon as the fake CLI reports the first sample.
async fn two_samples(c: &TestContainer, step: &Step, first: &str, second: &str) -> StepOutput {
    write_file(c.name(), "/tmp/offsets", first);
    let switch = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while calls(c.name()).await < 1 {
            assert!(tokio::time::Instant::now() < deadline, "no first sample");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (name, second) = (c.name().to_owned(), second.to_owned());
        tokio::task::spawn_blocking(move || write_file(&name, "/tmp/offsets", &second))
            .await
            .expect("the write task runs");
        assert_eq!(
            calls(c.name()).await,
            1,
            "the offsets changed only after the second sample; raise the interval"
        );
    };
    let (out, ()) = tokio::join!(step.run_ok(), switch);
    assert_eq!(calls(c.name()).await, 2, "exactly two samples");
    out
}

#[tokio::test]
async fn lag_with_fixed_offsets_is_stuck() {
    let c = kafka_container("lag-stuck");
    let step = lag_step(&c, GROUP, "1s");
    assert!(!step.action.kind().destructive());
    assert_eq!(
        step.plan().expect("plans"),
        format!(
            "sample lag of consumer group {GROUP} in {} twice, 1s apart",
            c.name()
        )
    );
    let offsets = format!("{TOPIC} 0 120345 126345\n{TOPIC} 1 98000 104000\n");
    let out = two_samples(&c, &step, &offsets, &offsets).await;
    let f = &out.fields;
    assert_eq!(f["classification"], json!("stuck"));
    assert_eq!(
        (f["lag_first"].clone(), f["lag_last"].clone()),
        (json!(12000), json!(12000))
    );
    assert_eq!(f["offsets_moved"], json!(false));
    assert_eq!(f["active_members"], json!(false));
    assert_eq!(f["partitions"], json!(2));
    assert_eq!(f["topics"], json!([TOPIC]));
    assert_eq!(f["container"], json!(c.name()));
    assert!(f["table"].as_str().expect("table").starts_with("GROUP "));
    assert!(f["sampled_at"].as_str().expect("sampled_at").ends_with('Z'));
    assert_eq!(
        out.summary,
        format!("group {GROUP}: lag 12000 → 12000 over 1s, offsets not moving: stuck")
    );
}

#[tokio::test]
async fn lag_growing_while_offsets_move_is_falling_behind_and_shrinking_is_catching_up() {
    let c = kafka_container("lag-moving");
    let step = lag_step(&c, GROUP, "2s");
    let out = two_samples(
        &c,
        &step,
        &format!("{TOPIC} 0 1000 3000\n"),
        &format!("{TOPIC} 0 1500 4500\n"),
    )
    .await;
    assert_eq!(out.fields["classification"], json!("falling_behind"));
    assert_eq!(out.fields["lag_change"], json!(1000));
    assert_eq!(out.fields["offsets_moved"], json!(true));

    write_file(c.name(), "/tmp/calls", "");
    let out = two_samples(
        &c,
        &step,
        &format!("{TOPIC} 0 1500 4500\n"),
        &format!("{TOPIC} 0 4000 5000\n"),
    )
    .await;
    assert_eq!(out.fields["classification"], json!("catching_up"));
    assert_eq!(out.fields["lag_change"], json!(-2000));
}

#[tokio::test]
async fn a_hostile_group_reaches_the_cli_as_one_argument() {
    let c = kafka_container("lag-inject");
    let group = "g'; touch /tmp/pwned; echo '$(id)";
    let step = lag_step(&c, group, "1s");
    let offsets = format!("{TOPIC} 0 10 15\n");
    let out = two_samples(&c, &step, &offsets, &offsets).await;
    assert_eq!(out.fields["group"], json!(group));
    assert_eq!(out.fields["lag_last"], json!(5));
    let argv = c.exec(&["cat", "/tmp/argv"]);
    assert_eq!(
        argv,
        format!("5\n--bootstrap-server\nlocalhost:9092\n--describe\n--group\n{group}\n")
    );
    let (pwned, _) = docker_exec(c.name(), &["test", "-e", "/tmp/pwned"]);
    assert!(!pwned, "/tmp/pwned exists: the group went through a shell");
}

#[tokio::test]
async fn a_missing_group_or_cli_is_an_error_with_the_reason() {
    let c = kafka_container("lag-missing");
    let msg = lag_step(&c, "k2-typo", "1s").run_err().await;
    assert_eq!(msg, "Error: Consumer group 'k2-typo' does not exist.");

    let plain = TestContainer::idle("lag-nocli");
    let msg = lag_step(&plain, GROUP, "1s").run_err().await;
    assert!(
        msg.starts_with("kafka-consumer-groups exited 12") && msg.contains(plain.name()),
        "{msg}"
    );
}
