//! Rendering a hand-built incident: steps, outputs, order, escaping, error pages.

use serde_json::json;

use super::*;
use crate::responders::Mode;
use crate::store::{
    AlertRow, ApprovalRow, ApprovalState, DecisionRow, IncidentDetail, IncidentStatus, MessageRow,
    RunOutcome, RunRow, RunState, StepRow, StepState,
};

const EVIL: &str = "<script>alert(1)</script>";

fn incident(alertname: &str, status: &str) -> IncidentRow {
    IncidentRow {
        id: 7,
        fingerprint: "f00d".into(),
        alertname: alertname.into(),
        severity: Some("critical".into()),
        target: Some("k2-spark-master".into()),
        status: IncidentStatus::parse(status).expect("an incident status"),
        summary: Some("restarted".into()),
        opened_at: "2026-11-27T05:00:00Z".into(),
        resolved_at: None,
        run_state: Some(RunState::Finished),
        run_outcome: Some(RunOutcome::Succeeded),
    }
}

fn detail() -> IncidentDetail {
    IncidentDetail {
        incident: incident(EVIL, "open"),
        labels: json!({"alertname": EVIL, "container": "k2-spark-master"}),
        alerts: vec![AlertRow {
            id: 1,
            status: crate::alert::Status::Firing,
            starts_at: "2026-11-27T05:00:00Z".into(),
            ends_at: None,
            received_at: "2026-11-27T05:00:01.5Z".into(),
            labels: json!({"alertname": EVIL, "team": "\"quoted\" & <b>bold</b>"}),
            annotations: json!({"summary": format!("summary {EVIL}")}),
        }],
        runs: vec![RunRow {
            id: 3,
            responder: "high-memory".into(),
            target: "k2-spark-master".into(),
            mode: Mode::Live,
            state: RunState::Finished,
            outcome: Some(RunOutcome::Succeeded),
            summary: Some("restarted".into()),
            started_at: Some("2026-11-27T05:00:02Z".into()),
            finished_at: Some("2026-11-27T05:00:09Z".into()),
            steps: vec![
                StepRow {
                    step_id: "mem".into(),
                    action: "docker_stats".into(),
                    destructive: false,
                    state: StepState::Succeeded,
                    summary: Some("memory 97.5%".into()),
                    outputs: Some(json!({"memory_percent": 97.5, "nested": {"a": [1, 2]}})),
                    error: None,
                    started_at: "2026-11-27T05:00:02Z".into(),
                    finished_at: Some("2026-11-27T05:00:03Z".into()),
                },
                StepRow {
                    step_id: "restart".into(),
                    action: "docker_restart".into(),
                    destructive: true,
                    state: StepState::Succeeded,
                    summary: Some("restarted".into()),
                    outputs: None,
                    error: None,
                    started_at: "2026-11-27T05:00:04Z".into(),
                    finished_at: Some("2026-11-27T05:00:08Z".into()),
                },
            ],
        }],
        decisions: vec![DecisionRow {
            kind: crate::store::DecisionKind::Escalated,
            detail: format!("because {EVIL}"),
            run_id: Some(3),
            at: "2026-11-27T05:00:00.9Z".into(),
        }],
        messages: vec![MessageRow {
            kind: crate::store::MessageKind::Parent,
            state: crate::store::DeliveryState::Sent,
            text: "*HighMemoryUsage* FIRING".into(),
            attempts: 1,
            last_error: None,
            ts: Some("1.2".into()),
            created_at: "2026-11-27T05:00:01.6Z".into(),
            sent_at: Some("2026-11-27T05:00:01.7Z".into()),
        }],
        approvals: vec![ApprovalRow {
            id: 1,
            run_id: 3,
            step_id: "restart".into(),
            plan: "restart k2-spark-master".into(),
            state: ApprovalState::Pending,
            requested_at: "2026-11-27T05:00:03.5Z".into(),
            expires_at_unix: 1_800_000_000,
            decided_by: None,
            decided_at: None,
            choice: None,
        }],
    }
}

#[test]
fn the_detail_shows_every_step_with_outputs_in_time_order() {
    let html = detail_html(&detail(), None, &[]).unwrap();
    for needle in [
        "Step mem (docker_stats)",
        "memory 97.5%",
        "memory_percent",
        "97.5",
        "Step restart (docker_restart, destructive)",
        "Run #3 started: high-memory on k2-spark-master",
        "Run #3 finished",
        "Decision: escalated",
        "Slack parent message",
        "Waiting for approval:",
        "outputs (JSON)",
        "<meta http-equiv=\"refresh\" content=\"10\">",
    ] {
        assert!(html.contains(needle), "{needle} missing from:\n{html}");
    }
    let order = [
        "Decision: escalated",
        "Alert firing received",
        "Slack parent message",
        "Run #3 started",
        "Step mem",
        "Approval requested for step restart",
        "Step restart",
        "Run #3 finished",
    ];
    let positions: Vec<usize> = order.iter().map(|n| html.find(n).unwrap()).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "{order:?} at {positions:?}"
    );
    assert!(html.contains("class=\"approval pending\""), "{html}");
}

#[test]
fn attacker_controlled_text_is_escaped() {
    let html = detail_html(&detail(), None, &[]).unwrap();
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("<b>bold"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "{html}"
    );
    let list = render(
        "list.html",
        &ListPage {
            refresh: REFRESH_SECONDS,
            now: String::new(),
            open: vec![incident(EVIL, "open")],
            recent: vec![incident("Fine", "resolved")],
            schedules: Vec::new(),
        },
    )
    .unwrap();
    assert!(!list.contains("<script"), "{list}");
    assert!(list.contains("&lt;script&gt;"), "{list}");
    assert!(list.contains("href=\"/incidents/7\""), "{list}");
}

#[test]
fn the_list_shows_each_scheduled_responder_with_its_next_slots() {
    use crate::responders::schedule::{ScheduleView, SlotView};
    let view = ScheduleView {
        responder: "daily-health".into(),
        schedule: "0 8 * * *".into(),
        timezone: "Europe/Paris".into(),
        catch_up: "1h".into(),
        target: None,
        channel: Some(EVIL.into()),
        next: vec![SlotView {
            at: "2026-12-06T07:00:00Z".into(),
            local: "2026-12-06 08:00 Europe/Paris (+01:00)".into(),
        }],
    };
    let page = |schedules| ListPage {
        refresh: REFRESH_SECONDS,
        now: String::new(),
        open: Vec::new(),
        recent: Vec::new(),
        schedules,
    };
    let list = render("list.html", &page(vec![view])).unwrap();
    assert!(list.contains("<h2>Scheduled (1)</h2>"), "{list}");
    assert!(
        list.contains("2026-12-06 08:00 Europe&#x2f;Paris (+01:00)"),
        "{list}"
    );
    assert!(!list.contains("<script"), "{list}");
    let none = render("list.html", &page(Vec::new())).unwrap();
    assert!(!none.contains("Scheduled"), "{none}");
}

#[test]
fn times_sort_by_instant_not_by_text() {
    // "05:00:01.5Z" sorts before "05:00:01Z" as text but is later.
    let mut d = detail();
    d.decisions[0].at = "2026-11-27T05:00:01Z".into();
    d.alerts[0].received_at = "2026-11-27T05:00:01.5Z".into();
    let events = timeline::build(&d);
    let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
    assert_eq!(&kinds[..2], ["decision", "alert"], "{kinds:?}");
    assert_eq!(
        timeline::display_time("2026-11-27T05:00:01.5Z"),
        "2026-11-27 05:00:01 UTC"
    );
}

#[test]
fn an_error_page_keeps_status_and_escapes_its_message() {
    let response =
        PageError::Api(ApiError::NotFound(format!("no incident {EVIL}"))).into_response();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = PageError::Api(ApiError::Unauthorized).into_response();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
    assert!(response.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
}

#[test]
fn the_incidents_chart_is_shown_inline_under_its_title() {
    let png = vec![0x89, b'P', b'N', b'G', 1, 2, 3];
    let html = detail_html(
        &detail(),
        Some(("HighMemoryUsage: mem > 90".into(), png)),
        &[],
    )
    .unwrap();
    assert!(
        html.contains("<img src=\"data:image&#x2f;png;base64,iVBORwECAw==\""),
        "{html}"
    );
    assert!(html.contains("HighMemoryUsage: mem &gt; 90"), "{html}");
    assert!(!detail_html(&detail(), None, &[]).unwrap().contains("<img"));
}
