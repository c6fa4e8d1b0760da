use super::*;

fn config(dashboard: Option<&str>, public: Option<&str>) -> GrafanaConfig {
    GrafanaConfig {
        url: "http://grafana.example".into(),
        token: SecretString::from("glsa_secret"),
        dashboard_uid: dashboard.map(str::to_owned),
        public_url: public.map(str::to_owned),
    }
}

fn due(kind: AnnotationKind, body: Value) -> DueAnnotation {
    DueAnnotation {
        id: 9,
        incident_id: 4,
        run_id: 7,
        kind,
        body,
        attempts: 0,
        annotation_id: None,
        start: None,
        thread: None,
    }
}

#[test]
fn answers_are_done_retried_or_refused() {
    let mut headers = HeaderMap::new();
    assert_eq!(classify(StatusCode::OK, &headers, ""), Ok(()));
    assert_eq!(
        classify(StatusCode::TOO_MANY_REQUESTS, &headers, ""),
        Err(GrafanaError::RateLimited { retry_after: None })
    );
    headers.insert(
        reqwest::header::RETRY_AFTER,
        "7".parse().expect("a header value"),
    );
    assert_eq!(
        classify(StatusCode::TOO_MANY_REQUESTS, &headers, ""),
        Err(GrafanaError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        })
    );
    for status in [StatusCode::BAD_GATEWAY, StatusCode::REQUEST_TIMEOUT] {
        assert!(matches!(
            classify(status, &headers, "boom"),
            Err(GrafanaError::Unavailable(_))
        ));
    }
    let refused = classify(
        StatusCode::UNAUTHORIZED,
        &headers,
        "{\"message\":\"invalid API key\"}",
    );
    assert_eq!(
        refused,
        Err(GrafanaError::Rejected(
            "HTTP 401 Unauthorized: {\"message\":\"invalid API key\"}".into()
        ))
    );
}

#[test]
fn a_start_creates_on_the_dashboard_and_a_completion_updates_the_annotation() {
    let run = RunLabel {
        responder: "high-memory",
        target: "k2-a",
        dry_run: false,
    };
    let mut start = fields(&run, None, "started");
    start["time"] = json!(1_000);
    let create = call_for(
        &due(AnnotationKind::Create, start),
        &config(Some("dash1"), None),
    );
    let Call::Create(body) = create else {
        panic!("{create:?}")
    };
    assert_eq!(body["dashboardUID"], "dash1");
    assert_eq!(
        body["tags"],
        json!(["alert-responder", "high-memory", "k2-a"])
    );
    assert_eq!(body["time"], 1_000);

    let mut end = fields(&run, Some("succeeded"), "done");
    end["timeEnd"] = json!(2_000);
    let mut completion = due(AnnotationKind::Complete, end);
    completion.annotation_id = Some(31);
    let update = call_for(&completion, &config(Some("dash1"), None));
    let Call::Update(31, body) = update else {
        panic!("{update:?}")
    };
    assert_eq!(
        body["tags"],
        json!(["alert-responder", "high-memory", "k2-a", "succeeded"])
    );
    assert_eq!(body["timeEnd"], 2_000);
    assert!(body.get("dashboardUID").is_none(), "{body}");
}

#[test]
fn a_completion_whose_annotation_was_never_created_creates_the_whole_region() {
    let run = RunLabel {
        responder: "r",
        target: "t",
        dry_run: true,
    };
    let mut end = fields(&run, Some("failed"), "done");
    end["timeEnd"] = json!(5_000);
    let mut completion = due(AnnotationKind::Complete, end.clone());
    completion.start = Some(json!({"time": 3_000}));
    let Call::Create(body) = call_for(&completion, &config(None, None)) else {
        panic!("a region is created")
    };
    assert_eq!(
        (body["time"].clone(), body["timeEnd"].clone()),
        (json!(3_000), json!(5_000))
    );
    assert_eq!(
        body["tags"],
        json!(["alert-responder", "r", "t", "dry-run", "failed"])
    );
    // Without a create row at all: a point at the end beats nothing.
    let Call::Create(body) = call_for(&due(AnnotationKind::Complete, end), &config(None, None))
    else {
        panic!("a point is created")
    };
    assert_eq!(body["time"], 5_000);
}

#[test]
fn text_is_escaped_and_links_the_incident_page_and_the_slack_thread() {
    let mut d = due(
        AnnotationKind::Create,
        json!({"text": "<b>x</b> & \"y\"", "tags": []}),
    );
    d.thread = Some(("C0INC".into(), "1764219300.000100".into()));
    let Call::Create(body) = call_for(&d, &config(None, Some("https://responder.example"))) else {
        panic!("created")
    };
    assert_eq!(
        body["text"],
        concat!(
            "&lt;b&gt;x&lt;/b&gt; &amp; &quot;y&quot;",
            "<br><a href=\"https://responder.example/incidents/4\">Incident 4</a>",
            " · <a href=\"https://slack.com/archives/C0INC/p1764219300000100\">Slack thread</a>"
        )
    );
    let plain = call_for(
        &due(AnnotationKind::Create, json!({"text": "t"})),
        &config(None, None),
    );
    assert_eq!(plain, Call::Create(json!({"text": "t"})));
}
