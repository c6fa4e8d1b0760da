//! `spark_master_status` against the fixtures of a real master's `/json/`.

use super::*;

fn fixture(name: &str) -> MasterJson {
    let path = format!("{}/tests/fixtures/spark/{name}", env!("CARGO_MANIFEST_DIR"));
    let body = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    parse(&body).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn fixtures_summarize() {
    // (fixture, app, alive, ok, present, state, duration, started, running, completed)
    type Row = (
        &'static str,
        &'static str,
        u32,
        bool,
        bool,
        &'static str,
        u64,
        &'static str,
        u32,
        Option<&'static str>,
    );
    let table: &[Row] = &[
        (
            "master.json",
            "K2-Bronze-Binance-Ingestion",
            2,
            true,
            true,
            "RUNNING",
            3_600_289,
            "2026-01-20T10:15:30.123Z",
            3,
            None,
        ),
        (
            "master.json",
            "k2-bronze-binance-ingestion",
            2,
            true,
            true,
            "RUNNING",
            3_600_289,
            "2026-01-20T10:15:30.123Z",
            3,
            None,
        ),
        (
            "master.json",
            "K2-Silver-Kraken-Transformation",
            2,
            true,
            true,
            "WAITING",
            60_410,
            "2026-01-20T11:14:30.002Z",
            3,
            Some("FAILED"),
        ),
        (
            "master.json",
            "k2-bronze-binance-stream",
            2,
            true,
            false,
            "",
            0,
            "",
            3,
            None,
        ),
        (
            "master_worker_dead.json",
            "K2-Bronze-Binance-Ingestion",
            1,
            false,
            false,
            "",
            0,
            "",
            2,
            None,
        ),
    ];
    for &(file, app, alive, ok, present, state, duration, started, running, completed) in table {
        let (out, last) = summarize(&fixture(file), app, window(600_000));
        let got = (
            out.workers_alive,
            out.workers_ok,
            out.app_present,
            out.app_state.as_str(),
            out.app_duration_ms,
            out.app_started_at.as_str(),
            out.apps_running,
            last.as_deref(),
        );
        let want = (
            alive, ok, present, state, duration, started, running, completed,
        );
        assert_eq!(got, want, "{file} / {app}");
        assert_eq!(out.workers_expected, 2);
    }
}

/// A read at the fixtures' time (their last heartbeat), looking back `since_ms`.
fn window(since_ms: i64) -> Window {
    Window {
        now_ms: 1_768_907_731_077,
        since_ms,
        expected: 2,
    }
}

#[test]
fn red_flags_are_dead_workers_failed_apps_and_reset_durations() {
    let (out, _) = summarize(&fixture("master_worker_dead.json"), "", window(600_000));
    assert_eq!(out.workers_dead, 1);
    assert!(!out.app_present);
    // The FAILED run ended about a minute before the read: within 10 minutes.
    assert_eq!(out.apps_failed, ["K2-Silver-Kraken-Transformation"]);
    assert!(out.apps_restarted.is_empty(), "{out:?}");
    // Looking back a day, both RUNNING apps started within it: their durations reset.
    let (day, _) = summarize(&fixture("master_worker_dead.json"), "", window(86_400_000));
    assert_eq!(
        day.apps_restarted,
        [
            "K2-Bronze-Kraken-Ingestion",
            "K2-Silver-Binance-Transformation"
        ]
    );
    // A FAILED run that ended before the window is old news.
    let (none, _) = summarize(&fixture("master_worker_dead.json"), "", window(1_000));
    assert!(none.apps_failed.is_empty());
    let (healthy, _) = summarize(&fixture("master.json"), "", window(600_000));
    assert_eq!(healthy.workers_dead, 0);
}

#[test]
fn non_master_bodies_are_errors() {
    assert!(parse("<html>Spark Master at spark://m:7077</html>").is_err());
    assert!(parse(r#"{"status":"ALIVE"}"#).is_err());
}

#[test]
fn yaml_shape_and_defaults() {
    let mut s: MasterStatus =
        serde_yaml_ng::from_str("url: '{{ config.spark_master_url }}'\napp: x")
            .expect("valid YAML");
    assert_eq!(s.expected_workers, 2);
    assert!(!s.destructive());
    let names: Vec<&str> = s.templates_mut().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["url", "app"]);
    assert!(serde_yaml_ng::from_str::<MasterStatus>("url: u\napp: x\nworkers: 3").is_err());
    let mut cluster: MasterStatus = serde_yaml_ng::from_str("url: u").expect("app is optional");
    assert_eq!(cluster.since.0.as_secs(), 86_400);
    let names: Vec<&str> = cluster
        .templates_mut()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["url"]);
}

#[test]
fn output_keys_equal_outputs() {
    let (typed, _) = summarize(&fixture("master.json"), "x", window(1));
    let out = StepOutput::from_typed(&typed, String::new());
    let mut got: Vec<&str> = out.fields.keys().map(String::as_str).collect();
    let mut want = OUTPUTS.to_vec();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
}
