//! The shipped `daily-health` report's grading, table-driven: its report step, taken from
//! the shipped file, rendered against step outputs at the runbook's thresholds (memory 80 and
//! 90 %, DLQ 10 and 100 rows a day), restarts, stopped containers, Spark red flags,
//! checkpoint grades and checks that could not run.

use serde_json::{json, Value};

use crate::support::app::shipped_catalog;
use crate::support::step::Step;

/// The report step of the shipped file, as a step YAML (its common keys removed).
fn report_step() -> String {
    let text = std::fs::read_to_string(shipped_catalog().1.join("daily-health.yaml")).unwrap();
    let file: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let steps = file["steps"].as_sequence().unwrap();
    let mut report = steps.last().unwrap().as_mapping().unwrap().clone();
    assert_eq!(report["id"].as_str(), Some("report"));
    report.remove("id");
    serde_yaml_ng::to_string(&report).unwrap()
}

/// Outputs of a morning where everything is green.
fn green() -> Value {
    let container = |name: &str, mem: f64| {
        json!({ "name": name, "state": "running", "running": true, "restart_count": 0,
                "started_at": "2026-11-01T00:00:00Z", "restarted": false, "memory_percent": mem })
    };
    json!({
        "alert": { "labels": { "schedule_slot": "2026-12-04T08:00:00Z" },
                   "annotations": { "slot_local": "2026-12-04 08:00 UTC" } },
        "config": { "spark_master_container": "k2-spark-master",
                    "cleaner_container": "k2-checkpoint-cleaner" },
        "failed": {},
        "steps": {
            "containers": {
                "containers": [container("k2-spark-worker-1", 41.0), container("k2-bronze-binance-stream", 62.5)],
                "count": 2, "running": 2, "not_running": [], "restarted": [],
                "max_memory_percent": 62.5
            },
            "spark": { "workers_alive": 2, "workers_expected": 2, "workers_ok": true,
                       "workers_dead": 0, "app_present": false, "app_state": "",
                       "app_duration_ms": 0, "app_started_at": "", "apps_running": 4,
                       "apps_failed": [], "apps_restarted": [] },
            "checkpoints": { "container": "k2-spark-master", "path": "/checkpoints",
                             "dirs": [{ "path": "/checkpoints/bronze", "bytes": 1048576, "grade": "green" }],
                             "total_bytes": 1048576, "largest": "/checkpoints/bronze",
                             "largest_bytes": 1048576, "grade": "green", "reds": 0, "yellows": 0 },
            "dlq": { "container": "k2-spark-master", "rows": [["binance", "3"], ["kraken", "9"]],
                     "row_count": 2, "table": "", "exit_code": 0 }
        }
    })
}

/// Sets the second container's memory to `percent`.
fn memory(vars: &mut Value, percent: f64) {
    let c = &mut vars["steps"]["containers"];
    c["containers"][1]["memory_percent"] = json!(percent);
    c["max_memory_percent"] = json!(percent.max(41.0));
}

async fn render(vars: &Value) -> String {
    let out = Step::new(&report_step(), vars).run_ok().await;
    out.fields["text"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn each_line_is_graded_with_the_runbooks_thresholds_and_actions() {
    type Tweak = fn(&mut Value);
    // (what, tweak, the line's check, its colour, words it must carry, the overall colour)
    let cases: &[(&str, Tweak, &str, &str, &str, &str)] = &[
        ("all green", |_| {}, "Memory", "green", "62.5%", "green"),
        ("memory 79.9", |v| memory(v, 79.9), "Memory", "green", "79.9%", "green"),
        ("memory 80", |v| memory(v, 80.0), "Memory", "yellow", "80.0% (yellow)", "yellow"),
        (
            "memory 90",
            |v| memory(v, 90.0),
            "Memory",
            "yellow",
            "Check Spark UI for state store size, may need to tune retention",
            "yellow",
        ),
        (
            "memory 90.1",
            |v| memory(v, 90.1),
            "Memory",
            "red",
            "90.1% (red); ",
            "red",
        ),
        (
            "a stopped container",
            |v| {
                let c = &mut v["steps"]["containers"];
                c["running"] = json!(1);
                c["not_running"] = json!(["k2-spark-worker-2"]);
            },
            "Containers up",
            "red",
            "NOT Up: k2-spark-worker-2",
            "red",
        ),
        (
            "a restart",
            |v| v["steps"]["containers"]["restarted"] = json!(["k2-spark-worker-1"]),
            "Restarts (24 h)",
            "yellow",
            "k2-spark-worker-1. Action: \"If any container restarted recently, investigate logs\"",
            "yellow",
        ),
        (
            "an application restarted",
            |v| v["steps"]["spark"]["apps_restarted"] = json!(["K2-Bronze-Binance-Ingestion"]),
            "Spark applications",
            "red",
            "duration reset (restarted in 24 h): K2-Bronze-Binance-Ingestion",
            "red",
        ),
        (
            "a FAILED application",
            |v| {
                v["steps"]["spark"]["apps_running"] = json!(3);
                v["steps"]["spark"]["apps_failed"] = json!(["K2-Silver-Kraken-Transformation"]);
            },
            "Spark applications",
            "red",
            "3/4 running; FAILED: K2-Silver-Kraken-Transformation",
            "red",
        ),
        (
            "a missing worker",
            |v| v["steps"]["spark"]["workers_alive"] = json!(1),
            "Spark workers",
            "red",
            "1/2 ALIVE. Red flag",
            "red",
        ),
        (
            "a yellow checkpoint",
            |v| {
                let k = &mut v["steps"]["checkpoints"];
                k["grade"] = json!("yellow");
                k["dirs"][0] = json!({ "path": "/checkpoints/bronze", "bytes": 1_610_612_736_u64, "grade": "yellow" });
                k["largest_bytes"] = json!(1_610_612_736_u64);
            },
            "Checkpoints",
            "yellow",
            "/checkpoints/bronze 1.5 GiB (yellow); 1 dir(s), largest /checkpoints/bronze 1536.0 MiB. Yellow action: check checkpoint cleaner logs, `docker logs k2-checkpoint-cleaner`",
            "yellow",
        ),
        (
            "a red checkpoint",
            |v| v["steps"]["checkpoints"]["grade"] = json!("red"),
            "Checkpoints",
            "red",
            "`docker exec k2-spark-master find /checkpoints -type f -name \"metadata\" -mtime +7 -delete`",
            "red",
        ),
        ("DLQ 9", |_| {}, "DLQ rows (24 h)", "green", "binance 3, kraken 9", "green"),
        (
            "DLQ 10",
            |v| v["steps"]["dlq"]["rows"][1][1] = json!("10"),
            "DLQ rows (24 h)",
            "yellow",
            "kraken 10 (yellow). Yellow action: review DLQ records for patterns, `SELECT * FROM silver_dlq_trades LIMIT 10`",
            "yellow",
        ),
        (
            "DLQ 100",
            |v| v["steps"]["dlq"]["rows"][1][1] = json!("100"),
            "DLQ rows (24 h)",
            "yellow",
            "kraken 100 (yellow)",
            "yellow",
        ),
        (
            "DLQ 101",
            |v| v["steps"]["dlq"]["rows"][1][1] = json!("101"),
            "DLQ rows (24 h)",
            "red",
            "kraken 101 (red). Red action",
            "red",
        ),
        (
            "no DLQ rows",
            |v| v["steps"]["dlq"]["rows"] = json!([]),
            "DLQ rows (24 h)",
            "green",
            "none",
            "green",
        ),
        (
            "the DLQ query failed",
            |v| {
                v["steps"].as_object_mut().unwrap().remove("dlq");
                v["failed"]["dlq"] = json!("spark-sql exited 127 in k2-spark-master: not found");
            },
            "DLQ rows (24 h)",
            "unknown",
            "the DLQ query failed: spark-sql exited 127 in k2-spark-master: not found",
            "yellow",
        ),
    ];
    let icon = |colour: &str| match colour {
        "green" => ":large_green_circle:",
        "yellow" => ":large_yellow_circle:",
        "red" => ":red_circle:",
        _ => ":grey_question:",
    };
    for (what, tweak, check, colour, words, overall) in cases {
        let mut vars = green();
        tweak(&mut vars);
        let text = render(&vars).await;
        let first = text.lines().next().unwrap();
        assert_eq!(
            first,
            format!(
                "*Daily health* {} *{overall}* · 2026-12-04 08:00 UTC",
                icon(overall)
            ),
            "{what}:\n{text}"
        );
        assert_eq!(
            text.lines().count(),
            8,
            "{what}: one line per check:\n{text}"
        );
        let name = format!("*{check}*");
        let line = (text.lines().find(|l| l.contains(&name)))
            .unwrap_or_else(|| panic!("{what}: no {name} line:\n{text}"));
        assert!(line.starts_with(icon(colour)), "{what}: {line}");
        assert!(line.contains(words), "{what}: {line}");
        if *colour == "green" {
            assert!(!line.contains("action"), "{what}: {line}");
        }
    }
}
