//! `spark_master_status` and `prometheus_range` against axum servers on 127.0.0.1:0 that
//! answer on the real paths (`/json/`, `/api/v1/query_range`) with the fixture JSON.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use crate::support::step::Step;

const GROUP: &str = "k2-bronze-binance-ingestion";

/// Serves `router` on 127.0.0.1:0 for the rest of the test; returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("port 0 binds");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn json_body(body: &'static str) -> ([(header::HeaderName, &'static str); 1], &'static str) {
    ([(header::CONTENT_TYPE, "application/json")], body)
}

/// A Spark master answering `/json/` with `body`, for the playbook tests; returns its URL.
pub(crate) async fn spark_master_serving(body: &'static str) -> String {
    serve(Router::new().route("/json/", get(move || async move { json_body(body) }))).await
}

/// A Spark master answering `/json/` like Spark 3.x, plus a broken one under `/broken`.
async fn spark_master() -> String {
    serve(
        Router::new()
            .route(
                "/json/",
                get(|| async { json_body(include_str!("../../fixtures/spark/master.json")) }),
            )
            .route(
                "/broken/json/",
                get(|| async {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "java.lang.IllegalStateException",
                    )
                }),
            ),
    )
    .await
}

fn spark_step(url: &str, app: &str) -> Step {
    Step::new(
        "action: spark_master_status\nurl: '{{ config.spark_master_url }}'\napp: '{{ app }}'",
        json!({ "config": { "spark_master_url": url }, "app": app }),
    )
}

#[tokio::test]
async fn spark_status_reads_workers_and_the_app() {
    let base = spark_master().await;
    // A trailing slash in config must not produce `//json/`.
    let step = spark_step(&format!("{base}/"), "K2-Bronze-Binance-Ingestion");
    assert_eq!(
        step.plan().expect("plans"),
        format!("read Spark master {base}/json/ for workers and app K2-Bronze-Binance-Ingestion")
    );
    let out = step.run_ok().await;
    let f = &out.fields;
    assert_eq!(
        (f["workers_alive"].clone(), f["workers_ok"].clone()),
        (json!(2), json!(true))
    );
    assert_eq!(f["app_present"], json!(true));
    assert_eq!(f["app_state"], json!("RUNNING"));
    assert_eq!(f["app_duration_ms"], json!(3_600_289));
    assert_eq!(f["app_started_at"], json!("2026-01-20T10:15:30.123Z"));
    assert_eq!(f["apps_running"], json!(3));
    assert_eq!(
        out.summary,
        "workers 2/2 ALIVE, app K2-Bronze-Binance-Ingestion RUNNING for 1h, 3 apps running"
    );

    let out = spark_step(&base, "k2-nope").run_ok().await;
    assert_eq!(
        (
            out.fields["app_present"].clone(),
            out.fields["app_state"].clone()
        ),
        (json!(false), json!(""))
    );
}

#[tokio::test]
async fn spark_status_errors_say_what_answered() {
    let base = spark_master().await;
    let msg = spark_step(&format!("{base}/broken"), "x").run_err().await;
    assert_eq!(
        msg,
        format!("GET {base}/broken/json/: HTTP 500 Internal Server Error: java.lang.IllegalStateException")
    );
    let msg = spark_step(&format!("{base}/nope"), "x").run_err().await;
    assert_eq!(msg, format!("GET {base}/nope/json/: HTTP 404 Not Found"));
}

/// The query parameters each `query_range` call carried.
type Seen = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// A Prometheus answering `/api/v1/query_range`: its `bad_data` envelope (HTTP 400) when a
/// parameter is missing or the query is `bad(`, the rising-lag fixture otherwise; and a 503
/// proxy page under `/down`.
async fn prometheus(seen: Seen) -> String {
    async fn query_range(
        State(seen): State<Seen>,
        Query(params): Query<HashMap<String, String>>,
    ) -> (StatusCode, [(header::HeaderName, &'static str); 1], String) {
        seen.lock().expect("not poisoned").push(params.clone());
        let missing = ["query", "start", "end", "step"]
            .iter()
            .find(|p| !params.contains_key(**p));
        let json = [(header::CONTENT_TYPE, "application/json")];
        if let Some(p) = missing {
            let body = json!({"status": "error", "errorType": "bad_data",
                              "error": format!("missing parameter {p:?}")});
            return (StatusCode::BAD_REQUEST, json, body.to_string());
        }
        if params["query"] == "bad(" {
            let body = include_str!("../../fixtures/prometheus/error_bad_data.json");
            return (StatusCode::BAD_REQUEST, json, body.to_owned());
        }
        let body = include_str!("../../fixtures/prometheus/lag_rising.json");
        (StatusCode::OK, json, body.to_owned())
    }
    serve(
        Router::new()
            .route("/api/v1/query_range", get(query_range))
            .route(
                "/down/api/v1/query_range",
                get(|| async {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "<html><body>503 Service Unavailable</body></html>",
                    )
                }),
            )
            .with_state(seen),
    )
    .await
}

fn prom_step(url: &str, query: &str) -> Step {
    Step::new(
        "action: prometheus_range\nurl: '{{ config.prometheus_url }}'\nrange: 15m\nstep: 30s\n\
         query: 'sum(kafka_consumergroup_lag{consumergroup=\"{{ alert.labels.consumer_group }}\"}) {{ extra }}'",
        json!({
            "config": { "prometheus_url": url },
            "alert": { "labels": { "consumer_group": GROUP } },
            "extra": query,
        }),
    )
}

#[tokio::test]
async fn prometheus_range_sends_the_query_and_sums_the_series() {
    let seen = Seen::default();
    let base = prometheus(seen.clone()).await;
    let out = prom_step(&base, "").run_ok().await;
    let f = &out.fields;
    assert_eq!(f["points"], json!(5));
    assert_eq!(
        (f["first"].clone(), f["last"].clone()),
        (json!(1200.0), json!(9000.0))
    );
    assert_eq!(f["change"], json!(7800.0));
    assert_eq!(f["trend"], json!("rising"));
    assert_eq!(f["from"], json!("2026-01-20T10:15:00Z"));
    assert_eq!(f["to"], json!("2026-01-20T10:17:00Z"));

    let params = seen.lock().expect("not poisoned")[0].clone();
    assert_eq!(
        params["query"],
        format!("sum(kafka_consumergroup_lag{{consumergroup=\"{GROUP}\"}}) ")
    );
    assert_eq!(params["step"], "30");
    let secs = |k: &str| {
        params[k]
            .parse::<f64>()
            .expect("start/end are Unix seconds")
    };
    assert!(
        (secs("end") - secs("start") - 900.0).abs() < 0.01,
        "{params:?}"
    );
}

#[tokio::test]
async fn prometheus_errors_carry_the_api_error_or_the_status() {
    let base = prometheus(Seen::default()).await;
    let url = format!("{base}/api/v1/query_range");
    let bad = Step::new(
        "action: prometheus_range\nurl: '{{ u }}'\nquery: 'bad('",
        json!({ "u": base }),
    );
    let msg = bad.run_err().await;
    assert!(
        msg.starts_with(&format!(
            "GET {url} (HTTP 400 Bad Request): Prometheus bad_data: "
        )),
        "{msg}"
    );
    let msg = prom_step(&format!("{base}/down"), "").run_err().await;
    assert_eq!(
        msg,
        format!("GET {base}/down/api/v1/query_range: HTTP 503 Service Unavailable: <html><body>503 Service Unavailable</body></html>")
    );
    let msg = prom_step(&format!("{base}/nope"), "").run_err().await;
    assert_eq!(
        msg,
        format!("GET {base}/nope/api/v1/query_range: HTTP 404 Not Found")
    );
}

/// The shipped streaming-lag responder's `trend` query, as written in its file.
fn shipped_trend_query() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/responders/streaming-lag.yaml");
    let file: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let steps = file["steps"].as_sequence().unwrap();
    let trend = steps.iter().find(|s| s["id"] == "trend").unwrap();
    trend["query"].as_str().unwrap().to_owned()
}

/// A consumer group label built to rewrite the query stays one label value: the query the
/// shipped responder sends, evaluated by the real Prometheus engine (`promtool test rules`),
/// sums exactly the series of that group and nothing else.
#[tokio::test]
async fn a_hostile_consumer_group_stays_one_label_value_in_promql() {
    assert!(
        std::process::Command::new("promtool")
            .arg("--version")
            .output()
            .is_ok(),
        "`promtool` is not installed: `apt-get install -y prometheus` (./scripts/test does this)"
    );
    let query = shipped_trend_query();
    let hostile = [
        r#"a"} or vector(1) #"#,
        r#"b"}) + sum(kafka_consumergroup_lag{consumergroup=~".+"#,
        r"back\slash\",
        "two\nlines",
        "it's ünïcode",
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, group) in hostile.iter().enumerate() {
        let seen = Seen::default();
        let base = prometheus(seen.clone()).await;
        let yaml = format!(
            "action: prometheus_range\nurl: '{{{{ config.prometheus_url }}}}'\nrange: 15m\nstep: 30s\nquery: {}",
            serde_json::to_string(&query).unwrap()
        );
        let vars = json!({ "config": { "prometheus_url": base }, "alert": { "labels": { "consumer_group": group } } });
        Step::new(&yaml, vars).run_ok().await;
        let sent = seen.lock().expect("not poisoned")[0]["query"].clone();

        // Rust's debug quoting of these values is also valid PromQL quoting.
        let test = json!({
            "rule_files": [],
            "tests": [{
                "interval": "1m",
                "input_series": [
                    { "series": format!("kafka_consumergroup_lag{{consumergroup={group:?}}}"), "values": "7" },
                    { "series": "kafka_consumergroup_lag{consumergroup=\"other\"}", "values": "1000" },
                ],
                "promql_expr_test": [{
                    "expr": sent,
                    "eval_time": "0m",
                    "exp_samples": [{ "labels": "{}", "value": 7 }],
                }],
            }],
        });
        let file = dir.path().join(format!("hostile-{i}.yml"));
        std::fs::write(&file, serde_yaml_ng::to_string(&test).unwrap()).unwrap();
        let out = std::process::Command::new("promtool")
            .args(["test", "rules"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "group {group:?} sent {sent:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
