//! The shipped weekly-maintenance responder on its Saturday slot, on real containers: a Spark
//! master whose image carries the stand-in `uv` (the maintenance script's output), a Kafka
//! container with a scripted `kafka-consumer-groups` for four groups, and a cleaner whose log
//! shows a permission error. The dry run and the reviews are posted; `--execute` waits for a
//! person: approved it runs and the snapshot check follows, denied it never runs.

use alert_responder::sources::schedule::Clock;
use serde_json::{json, Value};
use time::macros::datetime;

use super::routine::{armed, assert_holds, closed, options, shipped, thread};
use super::wait_for_message as message;
use crate::support::app::{step_states, TestApp, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::FakeSlack;

const ADMIN: &str = "admin-token-weekly";
const CHANNEL: &str = "#data-platform-oncall";
const EXECUTED: &str = "/tmp/iceberg_maintenance.executed";

/// `kafka-consumer-groups` for `--list --state` and `--describe --all-groups`, from the files
/// in /tmp/groups: one per group, its state on the first line, then `topic partition current
/// log-end step` lines; each describe call advances both offsets by `step` (0: stuck). A Dead
/// group is answered as Kafka answers it: "does not exist".
const FAKE_KAFKA: &str = r#"#!/bin/sh
case " $* " in *" --list "*)
  printf '\nGROUP                              STATE\n'
  for f in /tmp/groups/*; do printf '%-34s %s\n' "${f##*/}" "$(head -n 1 "$f")"; done
  exit 0 ;;
esac
n=$(cat /tmp/calls 2>/dev/null || echo 0); n=$((n + 1)); echo $n > /tmp/calls
fmt='%-34s %-34s %-10s %-15s %-15s %-8s %-12s %-12s %s\n'
for f in /tmp/groups/*; do
  g=${f##*/}
  if [ "$(head -n 1 "$f")" = Dead ]; then
    printf "\nError: Consumer group '%s' does not exist.\n" "$g"; continue
  fi
  printf '\n'
  printf "$fmt" GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
  tail -n +2 "$f" | while read -r topic part cur end step; do
    cur=$((cur + n * step)); end=$((end + n * step))
    printf "$fmt" "$g" "$topic" "$part" "$cur" "$end" "$((end - cur))" consumer-1 /172.18.0.5 consumer-1
  done
done
"#;

/// spark-sql printing the snapshot count the stand-in `uv` leaves: 412 before `--execute`,
/// 100 after.
const FAKE_SPARK_SQL: &str = r#"#!/bin/sh
echo 'WARN NativeCodeLoader: Unable to load native-hadoop library' >&2
if [ -e /tmp/iceberg_maintenance.executed ]; then echo 100; else echo 412; fi
echo 'Time taken: 2.1 seconds, Fetched 1 row(s)'
"#;

fn sh(c: &TestContainer, script: &str, arg: &str) {
    c.exec(&["sh", "-c", script, "sh", arg]);
}

/// Installs `content` as the executable `path` in `c` (passed as data, never parsed by sh).
fn install(c: &TestContainer, path: &str, content: &str) {
    let dir = path.rsplit_once('/').map_or("/", |(d, _)| d);
    c.exec(&["mkdir", "-p", dir]);
    c.exec(&[
        "sh",
        "-c",
        "printf '%s' \"$2\" > \"$1\" && chmod 755 \"$1\"",
        "sh",
        path,
        content,
    ]);
}

struct Parts {
    master: TestContainer,
    _kafka: TestContainer,
    _cleaner: TestContainer,
    slack: FakeSlack,
    app: TestApp,
    _dir: tempfile::TempDir,
}

impl Parts {
    fn executed(&self) -> bool {
        let out = self.master.exec(&[
            "sh",
            "-c",
            "test -e \"$1\" && echo yes || echo no",
            "sh",
            EXECUTED,
        ]);
        out.trim() == "yes"
    }
}

/// The three containers, the app on a clock just before Saturday 2026-12-05 09:00 UTC with
/// the shipped responder (its lag interval cut to 1 s), and the slot fired. With `failure`,
/// the maintenance script fails one table with that error.
async fn at_the_slot(failure: Option<&str>) -> Parts {
    let master = TestContainer::idle("wk-master");
    install(&master, "/opt/spark/bin/spark-sql", FAKE_SPARK_SQL);
    if let Some(error) = failure {
        let write = "printf '%s' \"$1\" > /tmp/iceberg_maintenance.fail";
        master.exec(&["sh", "-c", write, "sh", error]);
    }
    let kafka = TestContainer::idle("wk-kafka");
    install(&kafka, "/bin/kafka-consumer-groups", FAKE_KAFKA);
    for (group, spec) in [
        (
            "k2-bronze-binance-ingestion",
            "Stable\nmarket.crypto.trades.binance.raw 0 1000 1120 10\n",
        ),
        (
            "k2-silver-binance-transformation",
            "Stable\nmarket.crypto.trades.binance.raw 0 5000 7500 25\n",
        ),
        (
            "k2-bronze-kraken-ingestion",
            "Empty\nmarket.crypto.trades.kraken.raw 0 300 15300 0\n",
        ),
        ("k2-console-consumer-4242", "Dead\n"),
    ] {
        kafka.exec(&["mkdir", "-p", "/tmp/groups"]);
        kafka.exec(&[
            "sh",
            "-c",
            "printf '%s' \"$2\" > \"/tmp/groups/$1\"",
            "sh",
            group,
            spec,
        ]);
    }
    let cleaner = TestContainer::idle("wk-cleaner");
    // Written to PID 1's stdout, so it is in the container's log like the cleaner's own lines.
    sh(
        &cleaner,
        "echo \"$1\" > /proc/1/fd/1",
        "find: /checkpoints/bronze-binance/offsets: Permission denied",
    );

    let slack = FakeSlack::start(SLACK_TOKEN).await;
    slack.add_channel(CHANNEL);
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(datetime!(2026-12-05 08:00 UTC));
    let responder = shipped("weekly-maintenance", &[("interval: 30s", "interval: 1s")]);
    let mut opts = options(dir.path(), "weekly-maintenance", &responder, &clock);
    opts.admin_token = Some(ADMIN.into());
    opts.config = vec![
        ("spark_master_container", master.name().to_owned()),
        ("kafka_container", kafka.name().to_owned()),
        ("cleaner_container", cleaner.name().to_owned()),
    ];
    let app = TestApp::spawn(dir.path(), Some(&slack), opts).await;
    armed(&app, "weekly-maintenance", &clock).await;
    clock.set(datetime!(2026-12-05 09:00:05 UTC));
    Parts {
        master,
        _kafka: kafka,
        _cleaner: cleaner,
        slack,
        app,
        _dir: dir,
    }
}

/// Waits for the approval request, checks nothing ran yet, and answers it.
async fn decide(p: &Parts, decision: &str) -> reqwest::Response {
    message(&p.slack, &["Approval needed for *execute*"]).await;
    assert!(!p.executed(), "--execute ran before anyone approved it");
    let incidents = p.app.incidents().await;
    let id = incidents[0]["id"].as_i64().unwrap();
    p.app
        .client
        .post(format!("{}/api/incidents/{id}/approvals", p.app.address))
        .bearer_auth(ADMIN)
        .json(&json!({"decision": decision, "by": "alice"}))
        .send()
        .await
        .unwrap()
}

fn states(detail: &Value) -> Vec<String> {
    step_states(detail, 0)
        .into_iter()
        .map(|(id, s)| format!("{id}={s}"))
        .collect()
}

#[tokio::test]
async fn the_weekly_slot_posts_its_reviews_and_executes_only_once_approved() {
    let p = at_the_slot(None).await;
    let summary = message(
        &p.slack,
        &["*Weekly maintenance*", "Iceberg maintenance, dry run"],
    )
    .await;
    assert_holds(
        &summary.text,
        &[
            "5 tables, 1385 snapshots, ~885 would expire",
            "bronze_binance_trades: 412 snapshots, would expire ~312",
            ":large_green_circle: `k2-bronze-binance-ingestion` (Stable): lag 120",
            ":large_yellow_circle: `k2-silver-binance-transformation` (Stable): lag 2500",
            ":red_circle: `k2-bronze-kraken-ingestion` (Empty): lag 15000 and offsets not moving: consumer stuck",
            ":red_circle: `k2-console-consumer-4242` (Dead): group Dead",
            "4 groups, 2 red, 1 yellow",
            "1 error line(s) in its last 50",
            "Permission denied",
            "Next: *execute*",
        ],
    );
    assert!(
        summary
            .text
            .contains(":red_circle: *Weekly maintenance*, 2026-12-05 09:00"),
        "the worst part colours the whole: {}",
        summary.text
    );
    assert_eq!(summary.channel, p.slack.add_channel(CHANNEL));

    // Nothing has executed while the request waits; approved, it runs, then the check.
    let approved = decide(&p, "approve").await;
    assert_eq!(approved.status(), 200);
    let detail = closed(&p.app, "weekly-maintenance", 1).await.remove(0);
    assert!(p.executed(), "approved, --execute ran");
    assert_eq!(
        states(&detail),
        [
            "dry_run=succeeded",
            "lag=succeeded",
            "cleaner=succeeded",
            "cleaner_recent=succeeded",
            "cleaner_errors=succeeded",
            "summary=succeeded",
            "execute=succeeded",
            "snapshots=succeeded",
            "executed=succeeded",
        ],
        "{detail:#}"
    );
    assert_eq!(detail["runs"][0]["outcome"], "succeeded", "{detail:#}");
    let done = message(&p.slack, &["*Iceberg maintenance executed*"]).await;
    assert!(done.text.contains("885 snapshots expired"), "{}", done.text);
    assert!(
        done.text.contains("26 orphan files removed"),
        "{}",
        done.text
    );
    assert!(
        done.text
            .contains("bronze_binance_trades now has 100 snapshots"),
        "{}",
        done.text
    );
    let runs = p.master.exec(&["cat", EXECUTED]);
    assert_eq!(runs.lines().count(), 1, "executed exactly once");

    let parent = (p.slack.messages().into_iter())
        .find(|m| m.thread_ts.is_none() && m.text.contains("weekly-maintenance"))
        .expect("a parent message");
    assert_eq!(summary.thread_ts.as_deref(), Some(parent.ts.as_str()));
    println!("--- the weekly thread ---\n{}", thread(&p.slack, &parent));
    p.app.stop().await;
}

#[tokio::test]
async fn a_denied_execute_never_runs() {
    let p = at_the_slot(None).await;
    let denied = decide(&p, "deny").await;
    assert_eq!(denied.status(), 200);
    let detail = closed(&p.app, "weekly-maintenance", 1).await.remove(0);
    assert_eq!(detail["runs"][0]["outcome"], "cancelled", "{detail:#}");
    let states = states(&detail);
    assert!(states.contains(&"execute=refused".to_owned()), "{states:?}");
    assert!(
        !states.contains(&"snapshots=succeeded".to_owned()),
        "{states:?}"
    );
    assert!(!p.executed(), "denied, --execute never ran");
    assert!(!p
        .slack
        .messages()
        .iter()
        .any(|m| m.text.contains("Iceberg maintenance executed")));
    p.app.stop().await;
}

#[tokio::test]
async fn a_dry_run_with_errors_offers_no_execute() {
    let p = at_the_slot(Some("NotFoundException: File does not exist: snap-1.avro")).await;
    let detail = closed(&p.app, "weekly-maintenance", 1).await.remove(0);
    assert_eq!(detail["runs"][0]["outcome"], "succeeded", "{detail:#}");
    let states = states(&detail);
    for skipped in ["execute=skipped", "snapshots=skipped", "executed=skipped"] {
        assert!(states.contains(&skipped.to_owned()), "{states:?}");
    }
    let summary = message(&p.slack, &["*Weekly maintenance*"]).await;
    assert_holds(
        &summary.text,
        &[
            ":red_circle: *Iceberg maintenance, dry run*: 5 tables, 987 snapshots",
            "• 1 error(s): table corruption? silver_binance_trades: NotFoundException",
            "silver_binance_trades: ERROR NotFoundException",
            "`--execute` is not offered this week",
        ],
    );
    assert!(!p.executed(), "no --execute after a dry run with errors");
    let asked = p
        .slack
        .messages()
        .iter()
        .any(|m| m.text.contains("Approval needed"));
    assert!(!asked, "nobody was asked to approve it");
    p.app.stop().await;
}
