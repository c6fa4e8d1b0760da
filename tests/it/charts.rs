//! The chart of the alert's expression in the thread, on real Docker: a run on an alert whose
//! Prometheus link carries `g0.expr` ends with a PNG of both sides of its comparison, shared in
//! the incident's thread through Slack's external upload flow despite 429 and 500 on each leg;
//! with Prometheus unreachable, one line says why and the run is unaffected; a
//! `prometheus_range` step with `chart: true` shares its own series, the first action marked
//! only on a chart read after it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use axum::extract::Query;
use serde_json::{json, Value};

use crate::support::app::{am_alert, catalog_dir, Options, TestApp, SLACK_TOKEN};
use crate::support::docker::TestContainer;
use crate::support::fake_slack::{FakeSlack, LegFault, COMPLETE, GET_URL, UPLOAD};

/// A `query_range` the test controls: `mem` climbs from 10 to 100 over the range asked,
/// `90` is flat.
async fn fake_prometheus() -> String {
    async fn query_range(Query(q): Query<BTreeMap<String, String>>) -> axum::Json<Value> {
        let num = |k: &str| q.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let (start, end, step) = (num("start"), num("end"), num("step").max(1.0));
        let mem = q.get("query").is_some_and(|e| e == "mem");
        let mut values = Vec::new();
        let mut t = start;
        while t <= end {
            let v = if mem {
                10.0 + 90.0 * (t - start) / (end - start)
            } else {
                90.0
            };
            values.push(json!([t, v.to_string()]));
            t += step;
        }
        let metric = if mem {
            json!({"__name__": "mem", "name": "k2-x"})
        } else {
            json!({})
        };
        axum::Json(json!({"status": "success", "data": {"resultType": "matrix",
            "result": [{"metric": metric, "values": values}]}}))
    }
    let app = axum::Router::new().route("/api/v1/query_range", axum::routing::get(query_range));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn options(dir: &Path, prometheus: String) -> Options {
    let catalog = catalog_dir(
        dir,
        "routes:\n  - matchers: ['alertname=\"Bounce\"']\n    responder: bounce\n",
        &[(
            "bounce",
            "name: bounce\ntarget: \"{{ alert.labels.container }}\"\nallow_targets: ['k2-.*']\n\
             steps:\n  - id: restart\n    action: docker_restart\n    container: \"{{ target }}\"\n",
        )],
    );
    Options {
        config: vec![("prometheus_url", prometheus)],
        ..Options::with_catalog(catalog)
    }
}

async fn fire_with_expression(app: &TestApp, container: &str, fingerprint: &str) {
    let mut alert = am_alert(
        "firing",
        "Bounce",
        container,
        fingerprint,
        "2026-11-27T05:00:00Z",
    );
    alert["alerts"][0]["generatorURL"] =
        json!("http://prometheus:9090/graph?g0.expr=mem+%3E+90&g0.tab=1");
    assert_eq!(app.post_alertmanager(&alert).await.status(), 200);
}

#[tokio::test]
async fn a_run_ends_with_a_png_of_both_sides_in_its_thread_despite_429_and_500_on_each_leg() {
    let idle = TestContainer::idle("chart-png");
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    slack.fault_leg(GET_URL, &[LegFault::RateLimited(1), LegFault::ServerError]);
    slack.fault_leg(UPLOAD, &[LegFault::ServerError, LegFault::RateLimited(1)]);
    slack.fault_leg(COMPLETE, &[LegFault::RateLimited(1), LegFault::ServerError]);
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(
        dir.path(),
        Some(&slack),
        options(dir.path(), fake_prometheus().await),
    )
    .await;
    fire_with_expression(&app, idle.name(), "c4a7000000000001").await;
    let detail = app.wait_for_finished_run(idle.name(), 1).await;
    assert_eq!(detail["runs"][0]["outcome"], "succeeded", "{detail:#}");

    slack.wait_for_files(1, Duration::from_secs(60)).await;
    let files = slack.shared_files();
    assert_eq!(
        files.len(),
        1,
        "one chart, shared once: {:?}",
        slack.calls()
    );
    let chart = &files[0];
    let parent = slack
        .messages()
        .into_iter()
        .find(|m| m.thread_ts.is_none())
        .expect("the incident's parent");
    assert_eq!(
        chart.thread_ts.as_deref(),
        Some(parent.ts.as_str()),
        "in the thread"
    );
    assert_eq!(chart.filename, "chart.png");
    assert_eq!(chart.title, "Bounce: mem > 90");

    let mut reader = png::Decoder::new(std::io::Cursor::new(&chart.bytes))
        .read_info()
        .expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), (960, 480));
    let ink = pixels[..info.buffer_size()]
        .chunks(3)
        .filter(|p| p != &[255, 255, 255])
        .count();
    assert!(ink > 5_000, "not blank: {ink}");

    // The incident page shows the same chart, inline.
    use base64::Engine;
    let incident = detail["incident"]["id"].as_i64().unwrap();
    let page = app.get_text(&format!("/incidents/{incident}")).await;
    let inline = base64::engine::general_purpose::STANDARD.encode(&chart.bytes);
    assert!(
        page.contains(&inline.replace('/', "&#x2f;")),
        "the page shows the chart that was shared"
    );
    app.stop().await;
}

#[tokio::test]
async fn prometheus_unreachable_means_one_line_and_no_chart_and_the_run_is_unaffected() {
    let idle = TestContainer::idle("chart-down");
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(
        dir.path(),
        Some(&slack),
        options(dir.path(), format!("http://{closed}")),
    )
    .await;
    fire_with_expression(&app, idle.name(), "c4a7000000000002").await;
    let detail = app.wait_for_finished_run(idle.name(), 1).await;
    assert_eq!(detail["runs"][0]["outcome"], "succeeded", "{detail:#}");
    let said = slack
        .wait_for(
            |calls| calls.iter().any(|c| c.text.contains("No chart of")),
            Duration::from_secs(30),
        )
        .await;
    assert!(said, "{:#?}", slack.calls());
    let lines: Vec<_> = slack
        .calls()
        .into_iter()
        .filter(|c| c.text.contains("No chart of"))
        .collect();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].text.contains("Prometheus unavailable"),
        "{}",
        lines[0].text
    );
    assert!(slack.shared_files().is_empty());
    app.stop().await;
}

/// The red pixels of a decoded chart (the action line and its legend), and whether it has ink.
fn red_and_ink(bytes: &[u8]) -> (usize, usize) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let pixels = &pixels[..info.buffer_size()];
    let red = pixels
        .chunks(3)
        .filter(|p| p[0] > 215 && p[1] < 40 && p[2] < 40)
        .count();
    let ink = pixels.chunks(3).filter(|p| p != &[255, 255, 255]).count();
    (red, ink)
}

#[tokio::test]
async fn a_range_step_with_chart_true_shares_its_series_marking_only_an_action_before_it() {
    let idle = TestContainer::idle("chart-step");
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let step = |id: &str| {
        format!(
            "  - id: {id}\n    action: prometheus_range\n    url: \"{{{{ config.prometheus_url }}}}\"\n    \
             query: mem\n    range: 10m\n    chart: true\n"
        )
    };
    let responder = format!(
        "name: trendy\ntarget: \"{{{{ alert.labels.container }}}}\"\nallow_targets: ['k2-.*']\nsteps:\n{}  \
         - id: restart\n    action: docker_restart\n    container: \"{{{{ target }}}}\"\n{}",
        step("before"),
        step("after")
    );
    let catalog = catalog_dir(
        dir.path(),
        "routes:\n  - matchers: ['alertname=\"Trendy\"']\n    responder: trendy\n",
        &[("trendy", responder.as_str())],
    );
    let options = Options {
        config: vec![("prometheus_url", fake_prometheus().await)],
        ..Options::with_catalog(catalog)
    };
    let app = TestApp::spawn(dir.path(), Some(&slack), options).await;
    let alert = am_alert(
        "firing",
        "Trendy",
        idle.name(),
        "c4a7000000000003",
        "2026-11-27T05:00:00Z",
    );
    assert_eq!(app.post_alertmanager(&alert).await.status(), 200);
    let detail = app.wait_for_finished_run(idle.name(), 1).await;
    assert_eq!(detail["runs"][0]["outcome"], "succeeded", "{detail:#}");

    let shared = slack.wait_for_files(2, Duration::from_secs(60)).await;
    assert!(shared, "two charts: {:?}", slack.calls());
    let files = slack.shared_files();
    let titles: Vec<&str> = files.iter().map(|f| f.title.as_str()).collect();
    assert_eq!(
        titles,
        ["trendy before: mem", "trendy after: mem"],
        "in step order"
    );
    let parent = slack
        .messages()
        .into_iter()
        .find(|m| m.thread_ts.is_none())
        .expect("the incident's parent");
    for file in &files {
        assert_eq!(file.thread_ts.as_deref(), Some(parent.ts.as_str()));
    }
    let (red_before, ink_before) = red_and_ink(&files[0].bytes);
    let (red_after, ink_after) = red_and_ink(&files[1].bytes);
    assert!(ink_before > 5_000 && ink_after > 5_000, "not blank");
    assert_eq!(red_before, 0, "read before the restart: no action line");
    assert!(
        red_after > 200,
        "read after it: the restart marked ({red_after} red pixels)"
    );
    app.stop().await;
}
