//! The DLQ and checkpoint step kinds against real parts: `spark_sql`, `disk_usage` and
//! `find_files` on throwaway busybox containers, `schema_registry_versions` against a small
//! axum registry on `127.0.0.1:0`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use alert_responder::actions::ActionError;
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use minijinja::context;
use serde_json::json;

use crate::support::docker::TestContainer;
use crate::support::step::Step;

/// A fake `spark-sql`: logs to stderr, prints two TSV rows, then one `argv[i]<TAB>arg` row per
/// argv element (`$0` first) and `argc<TAB>N` (arguments after the program); a query containing FAIL makes it exit 2 like a missing table.
const FAKE_SPARK_SQL: &str = r#"#!/bin/sh
echo "26/01/20 10:00:00 WARN NativeCodeLoader: Unable to load native-hadoop library" >&2
for a in "$@"; do case "$a" in *FAIL*)
  echo "26/01/20 10:00:01 INFO SparkContext: stopping" >&2
  echo "[TABLE_OR_VIEW_NOT_FOUND] The table or view iceberg.x cannot be found." >&2
  exit 2;;
esac; done
printf '412\tprice must be positive\n7\tmissing symbol\n'
printf 'argv[0]\t%s\n' "$0"
i=1
for a in "$@"; do printf 'argv[%d]\t%s\n' "$i" "$a"; i=$((i+1)); done
printf 'argc\t%d\n' "$#"
echo "Time taken: 0.42 seconds, Fetched 2 row(s)"
"#;

/// An idle container carrying [`FAKE_SPARK_SQL`] at `/opt/spark/bin/spark-sql`.
fn spark_container() -> TestContainer {
    let c = TestContainer::idle("spark");
    c.exec(&[
        "sh",
        "-c",
        "mkdir -p /opt/spark/bin && printf '%s' \"$1\" > /opt/spark/bin/spark-sql \
         && chmod +x /opt/spark/bin/spark-sql",
        "sh",
        FAKE_SPARK_SQL,
    ]);
    c
}

const INJECTION: &str = "x'; DROP TABLE t; -- $(touch /tmp/pwned) `touch /tmp/pwned`";

#[tokio::test]
async fn spark_sql_passes_the_query_as_one_argv_element_and_parses_rows() {
    let c = spark_container();
    let yaml = "action: spark_sql\ncontainer: '{{ target }}'\nmax_rows: 3\n\
        query: \"SELECT COUNT(*) AS count, error_message FROM iceberg.market_data.silver_dlq_trades \
        WHERE bronze_source = '{{ alert.labels.source }}' GROUP BY error_message\"";
    let vars = context! { target => c.name(), alert => context! { labels => context! {
    source => INJECTION } } };
    let step = Step::new(yaml, vars);
    let query = format!(
        "SELECT COUNT(*) AS count, error_message FROM iceberg.market_data.silver_dlq_trades \
         WHERE bronze_source = '{INJECTION}' GROUP BY error_message"
    );
    assert_eq!(
        step.plan().expect("plans"),
        format!("run spark-sql in {}: {query}", c.name())
    );
    let out = step.run_ok().await;
    let f = &out.fields;
    eprintln!("{}\n{}", out.summary, f["table"]);
    // 2 data rows + 9 argv rows + argc; stderr noise and `Time taken` are not rows.
    assert_eq!(f["row_count"], json!(12));
    assert_eq!(
        f["rows"],
        json!([
            ["412", "price must be positive"],
            ["7", "missing symbol"],
            ["argv[0]", "/opt/spark/bin/spark-sql"]
        ])
    );
    assert_eq!(
        f["table"],
        json!("412      price must be positive\n7        missing symbol\nargv[0]  /opt/spark/bin/spark-sql")
    );
    assert_eq!(f["exit_code"], json!(0));
    assert_eq!(f["container"], json!(c.name()));

    // The same step with every row kept shows the whole argv as the fake received it.
    let all = Step::new(
        &yaml.replace("max_rows: 3", "max_rows: 20"),
        context! { target => c.name(), alert => context! { labels => context! {
        source => INJECTION } } },
    )
    .run_ok()
    .await;
    let rows = all.fields["rows"].as_array().expect("rows is a list");
    assert_eq!(rows[11], json!(["argc", "8"]));
    assert_eq!(rows[3], json!(["argv[1]", "--conf"]));
    assert_eq!(
        rows[4],
        json!([
            "argv[2]",
            "spark.sql.catalog.iceberg=org.apache.iceberg.spark.SparkCatalog"
        ])
    );
    assert_eq!(
        rows[8],
        json!([
            "argv[6]",
            "spark.sql.catalog.iceberg.uri=http://iceberg-rest:8181"
        ])
    );
    assert_eq!(rows[9], json!(["argv[7]", "-e"]));
    assert_eq!(rows[10], json!(["argv[8]", query]));
    // No shell ever saw the label: neither $(...) nor backticks ran.
    let pwned = c.exec(&["sh", "-c", "test -e /tmp/pwned && echo yes || echo no"]);
    assert_eq!(pwned.trim(), "no");
}

#[tokio::test]
async fn spark_sql_failure_reports_the_last_stderr_line() {
    let c = spark_container();
    let step = Step::new(
        "action: spark_sql\ncontainer: '{{ target }}'\nquery: SELECT * FROM FAIL",
        context! { target => c.name() },
    );
    match step.run().await {
        Err(ActionError::Failed(msg)) => assert_eq!(
            msg,
            format!(
                "spark-sql exited 2 in {}: [TABLE_OR_VIEW_NOT_FOUND] The table or view \
                 iceberg.x cannot be found.",
                c.name()
            )
        ),
        other => panic!("expected Failed, got {other:?}"),
    }
}

/// Old (2020) and new `metadata` files, plus sized data, under `/checkpoints`.
const CHECKPOINTS: &str = r#"set -e
mkdir -p /checkpoints/big/offsets /checkpoints/mid/recent /checkpoints/small "/checkpoints/with space"
dd if=/dev/zero of=/checkpoints/big/data bs=1024 count=3072 2>/dev/null
dd if=/dev/zero of=/checkpoints/mid/data bs=1024 count=1536 2>/dev/null
dd if=/dev/zero of=/checkpoints/small/data bs=1024 count=100 2>/dev/null
for f in /checkpoints/big/metadata /checkpoints/big/offsets/metadata /checkpoints/mid/metadata "/checkpoints/with space/metadata"; do
  dd if=/dev/zero of="$f" bs=1 count=45 2>/dev/null
  touch -d "2020-01-01 00:00" "$f"
done
dd if=/dev/zero of=/checkpoints/small/metadata bs=1 count=45 2>/dev/null
dd if=/dev/zero of=/checkpoints/mid/recent/metadata bs=1 count=45 2>/dev/null
echo old > /checkpoints/big/old.log
touch -d "2020-01-01 00:00" /checkpoints/big/old.log
"#;

const OLD_METADATA: [&str; 4] = [
    "/checkpoints/big/metadata",
    "/checkpoints/big/offsets/metadata",
    "/checkpoints/mid/metadata",
    "/checkpoints/with space/metadata",
];

fn checkpoint_container() -> TestContainer {
    let c = TestContainer::idle("checkpoints");
    c.exec(&["sh", "-c", CHECKPOINTS]);
    c
}

/// Every file named `metadata` under `/checkpoints`, as `find` in the container lists them.
fn metadata_files(c: &TestContainer) -> BTreeSet<String> {
    c.exec(&["find", "/checkpoints", "-type", "f", "-name", "metadata"])
        .lines()
        .map(str::to_owned)
        .collect()
}

fn set(paths: &[&str]) -> BTreeSet<String> {
    paths.iter().map(|p| (*p).to_owned()).collect()
}

#[tokio::test]
async fn disk_usage_sizes_and_grades_checkpoint_dirs() {
    let c = checkpoint_container();
    let step = Step::new(
        "action: disk_usage\ncontainer: '{{ target }}'\nyellow_bytes: 1048576\nred_bytes: 2097152",
        context! { target => c.name() },
    );
    assert_eq!(
        step.plan().expect("plans"),
        format!("measure dirs under /checkpoints in {}", c.name())
    );
    let out = step.run_ok().await;
    let f = &out.fields;
    eprintln!("{}: {}", out.summary, f["dirs"]);
    let dirs = f["dirs"].as_array().expect("dirs is a list");
    let paths: Vec<&str> = dirs
        .iter()
        .map(|d| d["path"].as_str().expect("path"))
        .collect();
    assert_eq!(
        paths,
        [
            "/checkpoints/big",
            "/checkpoints/mid",
            "/checkpoints/small",
            "/checkpoints/with space"
        ]
    );
    let grades: Vec<&str> = dirs
        .iter()
        .map(|d| d["grade"].as_str().expect("grade"))
        .collect();
    assert_eq!(grades, ["red", "yellow", "green", "green"]);
    // du counts allocated blocks: the data plus a few KiB of directories and small files.
    let kib = |i: usize| dirs[i]["bytes"].as_u64().expect("bytes") / 1024;
    for (i, data_kib) in [(0, 3072), (1, 1536), (2, 100)] {
        assert!(
            (data_kib..data_kib + 64).contains(&kib(i)),
            "{}: {} KiB",
            paths[i],
            kib(i)
        );
    }
    let total = f["total_bytes"].as_u64().expect("total") / 1024;
    assert!((4708..4708 + 128).contains(&total), "total {total} KiB");
    assert_eq!(f["largest"], json!("/checkpoints/big"));
    assert_eq!(f["grade"], json!("red"));
    assert_eq!(
        (f["reds"].clone(), f["yellows"].clone()),
        (json!(1), json!(1))
    );
    assert!(out
        .summary
        .starts_with("4 checkpoint dirs; largest /checkpoints/big 3.0 MiB (red)"));

    let missing = Step::new(
        "action: disk_usage\ncontainer: '{{ target }}'\npath: /nope",
        context! { target => c.name() },
    );
    match missing.run().await {
        Err(ActionError::Failed(msg)) => assert!(msg.contains("/nope"), "{msg}"),
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[tokio::test]
async fn find_files_lists_then_deletes_exactly_the_old_metadata() {
    let c = checkpoint_container();
    let all_before = metadata_files(&c);
    assert_eq!(all_before.len(), 6);

    let dry = Step::new(
        "action: find_files\ncontainer: '{{ target }}'",
        context! { target => c.name() },
    );
    assert!(!dry.action.kind().destructive());
    let out = dry.run_ok().await;
    eprintln!("{}", out.summary);
    let listed: BTreeSet<String> =
        serde_json::from_value(out.fields["files"].clone()).expect("files");
    assert_eq!(listed, set(&OLD_METADATA));
    assert_eq!(out.fields["count"], json!(4));
    assert_eq!(out.fields["bytes"], json!(4 * 45));
    assert_eq!(out.fields["deleted"], json!(false));
    assert_eq!(
        out.summary,
        "4 files older than 7 days, 180 B (dry run: nothing deleted)"
    );
    assert_eq!(metadata_files(&c), all_before, "a dry run deletes nothing");

    // Outside the allow-list, the deleting step touches nothing.
    let refused = Step::with_allow(
        "action: find_files\ncontainer: '{{ target }}'\ndelete: true",
        context! { target => c.name() },
        &["k2-prod-.*"],
    );
    assert!(matches!(
        refused.run().await,
        Err(ActionError::NotAllowed(_))
    ));
    assert_eq!(metadata_files(&c), all_before);

    let del = Step::new(
        "action: find_files\ncontainer: '{{ target }}'\ndelete: true",
        context! { target => c.name() },
    );
    assert!(del.action.kind().destructive());
    assert_eq!(
        del.plan().expect("plans"),
        format!(
            "delete files named metadata older than 7 days under /checkpoints in {}",
            c.name()
        )
    );
    let out = del.run_ok().await;
    eprintln!("{}", out.summary);
    let deleted: BTreeSet<String> =
        serde_json::from_value(out.fields["files"].clone()).expect("files");
    assert_eq!(deleted, set(&OLD_METADATA));
    assert_eq!(out.fields["deleted"], json!(true));
    assert_eq!(out.fields["count"], json!(4));
    assert_eq!(
        metadata_files(&c),
        set(&[
            "/checkpoints/small/metadata",
            "/checkpoints/mid/recent/metadata"
        ])
    );
    // Other old files and the data stay.
    let left = c.exec(&["ls", "/checkpoints/big"]);
    assert_eq!(
        left.split_whitespace().collect::<Vec<_>>(),
        ["data", "offsets", "old.log"]
    );

    let again = del.run_ok().await;
    assert_eq!(again.fields["count"], json!(0));
    assert_eq!(metadata_files(&c).len(), 2);
}

/// A registry answering `[1,2,3]` for the binance subject and 404 40401 for any other, and
/// recording each raw request path.
async fn fake_registry() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let record = Arc::clone(&record);
        async move {
            let path = uri.path().to_owned();
            record.lock().unwrap().push(path.clone());
            if path == "/subjects/market.crypto.trades.binance.raw-value/versions" {
                (StatusCode::OK, "[1,2,3]".to_owned()).into_response()
            } else {
                let subject = path.trim_start_matches("/subjects/").trim_end_matches("/versions");
                let body = json!({"error_code": 40401, "message": format!("Subject '{subject}' not found.")});
                (StatusCode::NOT_FOUND, body.to_string()).into_response()
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), seen)
}

fn registry_step(url: &str, source: &str) -> Step {
    Step::new(
        "action: schema_registry_versions\nurl: '{{ config.schema_registry_url }}'\n\
         subject: 'market.crypto.trades.{{ alert.labels.source }}.raw-value'",
        context! { config => context! { schema_registry_url => url },
        alert => context! { labels => context! { source => source } } },
    )
}

#[tokio::test]
async fn schema_registry_versions_reads_versions_and_reports_a_missing_subject() {
    let (url, seen) = fake_registry().await;
    let step = registry_step(&url, "binance");
    assert_eq!(
        step.plan().expect("plans"),
        format!("GET {url}/subjects/market.crypto.trades.binance.raw-value/versions")
    );
    let out = step.run_ok().await;
    assert_eq!(out.fields["versions"], json!([1, 2, 3]));
    assert_eq!(out.fields["latest_version"], json!(3));
    assert_eq!(out.fields["count"], json!(3));
    assert_eq!(
        out.fields["subject"],
        json!("market.crypto.trades.binance.raw-value")
    );
    assert_eq!(
        out.summary,
        "market.crypto.trades.binance.raw-value: 3 versions, latest 3"
    );

    match registry_step(&url, "kraken").run().await {
        Err(ActionError::Failed(msg)) => assert_eq!(
            msg,
            "schema registry answered 404: Subject 'market.crypto.trades.kraken.raw-value' \
             not found. (error 40401)"
        ),
        other => panic!("expected Failed, got {other:?}"),
    }

    // A label with `/` and `..` stays inside one segment of the subject.
    let _ = registry_step(&url, "x/../../../config?a#b").run().await;
    let paths = seen.lock().unwrap().clone();
    assert_eq!(
        paths.last().map(String::as_str),
        Some("/subjects/market.crypto.trades.x%2F..%2F..%2F..%2Fconfig%3Fa%23b.raw-value/versions")
    );
    assert_eq!(paths.len(), 3);
}
