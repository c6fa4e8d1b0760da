use super::*;
use reqwest::StatusCode;

#[test]
fn answers_become_labelled_series_or_say_why_not() {
    let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{"__name__":"mem","name":"k2-a"},"values":[[1000,"1.5"],[1060,"NaN"],[1120,"2"]]},
        {"metric":{},"values":[[1000,"90"]]}]}}"#;
    let series = parse("mem > 90", StatusCode::OK, body).expect("a matrix");
    assert_eq!(series[0].label, "mem{name=\"k2-a\"}");
    assert_eq!(
        series[0].points,
        [(1000.0, 1.5), (1120.0, 2.0)],
        "NaN is skipped"
    );
    assert_eq!(series[1].label, "mem > 90", "no labels: the query names it");

    let refused = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#;
    assert_eq!(
        parse("x", StatusCode::BAD_REQUEST, refused),
        Err(ChartError::Query("parse error at char 3".into()))
    );
    assert!(matches!(
        parse("x", StatusCode::BAD_GATEWAY, "<html>"),
        Err(ChartError::Unavailable(_))
    ));
}

/// A `query_range` the test controls: `mem` rises from 10 to 100 over the range, `90` is flat.
async fn fake_prometheus() -> String {
    use axum::extract::Query;
    use axum::routing::get;
    async fn query_range(
        Query(q): Query<BTreeMap<String, String>>,
    ) -> axum::Json<serde_json::Value> {
        let num = |k: &str| q.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let (start, end, step) = (num("start"), num("end"), num("step"));
        let query = q.get("query").cloned().unwrap_or_default();
        let mut values = Vec::new();
        let mut t = start;
        while t <= end {
            let v = if query == "mem" {
                10.0 + 90.0 * (t - start) / (end - start)
            } else {
                90.0
            };
            values.push(serde_json::json!([t, v.to_string()]));
            t += step;
        }
        let metric = if query == "mem" {
            serde_json::json!({"__name__": "mem", "name": "k2-a"})
        } else {
            serde_json::json!({})
        };
        axum::Json(
            serde_json::json!({"status": "success", "data": {"resultType": "matrix",
            "result": [{"metric": metric, "values": values}]}}),
        )
    }
    let app = axum::Router::new().route("/api/v1/query_range", get(query_range));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn both_sides_of_a_comparison_are_fetched_and_drawn() {
    let base = fake_prometheus().await;
    let http = reqwest::Client::new();
    let range = (1_764_219_000.0, 1_764_221_400.0);
    let series = fetch(&http, &base, "mem > 90", range)
        .await
        .expect("fetched");
    assert_eq!(series.len(), 2, "{series:?}");
    assert_eq!(series[0].label, "mem{name=\"k2-a\"}");
    assert_eq!(series[1].label, "90");
    assert!(series[0].points.len() >= 200, "{}", series[0].points.len());
    let picture = render::Picture {
        title: "HighMemoryUsage: mem > 90",
        series: &series,
        action: Some(range.0 + 1800.0),
        range,
    };
    let png = render::png(&picture).expect("drawn");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
}

#[tokio::test]
async fn prometheus_unreachable_is_said_plainly() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let http = reqwest::Client::new();
    let err = fetch(&http, &format!("http://{addr}"), "up", (0.0, 60.0))
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, ChartError::Unavailable(_)), "{err}");
    assert!(
        err.to_string().starts_with("Prometheus unavailable"),
        "{err}"
    );
}
