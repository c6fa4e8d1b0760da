use super::*;
use crate::alert::PD_NOTE;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/pagerduty/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).expect("fixture exists")
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

fn alert(event: Event) -> Alert {
    match event {
        Event::Alert(alert) => *alert,
        Event::Ignored { event_type } => panic!("{event_type} was ignored"),
    }
}

#[test]
fn hex_matches_a_known_hmac_vector() {
    // RFC 4231 test case 2.
    let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
    mac.update(b"what do ya want for nothing?");
    assert_eq!(
        hex(&mac.finalize().into_bytes()),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn signatures_are_checked_over_the_raw_body() {
    let body = br#"{"event":{"event_type":"incident.triggered"}}"#;
    let good = sign("s3cret", body);
    let other = sign("old-secret", body);
    let upper = good.to_ascii_uppercase();
    let cases: Vec<(Option<String>, Result<(), &str>)> = vec![
        (Some(format!("v1={good}")), Ok(())),
        (Some(format!("v1={upper}")), Ok(())),
        // Rotation: two signatures, either order, with or without spaces.
        (Some(format!("v1={other},v1={good}")), Ok(())),
        (Some(format!("v1={good}, v1={other}")), Ok(())),
        (Some(format!("v2=abc,v1={good}")), Ok(())),
        (None, Err("missing X-PagerDuty-Signature")),
        (Some(String::new()), Err("no v1= signature")),
        (Some(good.clone()), Err("no v1= signature")),
        (Some(format!("v2={good}")), Err("no v1= signature")),
        (Some(format!("v1={other}")), Err("does not match")),
        (Some("v1=".to_owned()), Err("does not match")),
        (Some(format!("v1={}", &good[..63])), Err("does not match")),
        (Some(format!("v1={good}00")), Err("does not match")),
    ];
    for (header, expected) in cases {
        let got = verify_signature(header.as_deref(), body, "s3cret");
        match (got, expected) {
            (Ok(()), Ok(())) => {}
            (Err(e), Err(reason)) => {
                let e = e.to_string();
                assert!(e.contains(reason) && !e.contains('\n'), "{header:?}: {e}");
            }
            (got, expected) => panic!("{header:?}: got {got:?}, expected {expected:?}"),
        }
    }
    // A body altered after signing (even re-serialised JSON) no longer verifies.
    let reformatted = br#"{"event": {"event_type": "incident.triggered"}}"#;
    assert!(verify_signature(Some(&format!("v1={good}")), reformatted, "s3cret").is_err());
}

#[test]
fn triggered_becomes_a_firing_alert_with_pd_labels() {
    let a = alert(parse(&fixture("triggered.json")).unwrap());
    assert_eq!(a.source, Source::PagerDuty);
    assert_eq!(a.status, Status::Firing);
    assert_eq!(a.fingerprint, "Q1K2MEMX7A");
    assert_eq!(
        a.starts_at,
        time::macros::datetime!(2026-11-27 05:00:00 UTC)
    );
    assert_eq!(a.ends_at, None);
    let expected: Labels = [
        ("alertname", "HighMemoryUsage"),
        ("container", "k2-bronze-binance-stream"),
        ("pd_title", "High Memory Usage: k2-bronze-binance-stream"),
        ("pd_service", "K2 Streaming"),
        ("pd_urgency", "high"),
        ("pd_priority", "P2"),
        ("pd_incident_id", "Q1K2MEMX7A"),
        ("pd_incident_number", "4211"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(a.labels, expected);
    assert_eq!(
        a.annotations["summary"],
        "High Memory Usage: k2-bronze-binance-stream"
    );
    assert_eq!(
        a.annotations["html_url"],
        "https://k2.pagerduty.com/incidents/Q1K2MEMX7A"
    );
}

#[test]
fn resolved_keeps_fingerprint_and_start_so_it_resolves_the_same_incident() {
    let firing = alert(parse(&fixture("triggered.json")).unwrap());
    let resolved = alert(parse(&fixture("resolved.json")).unwrap());
    assert_eq!(resolved.status, Status::Resolved);
    assert_eq!(resolved.fingerprint, firing.fingerprint);
    assert_eq!(resolved.starts_at, firing.starts_at);
    assert!(resolved.ends_at.is_some());
    assert_ne!(firing.dedup_key(), resolved.dedup_key());
    // A redelivery parses to the same key, which the journal stores once.
    let again = alert(parse(&fixture("triggered.json")).unwrap());
    assert_eq!(firing.dedup_key(), again.dedup_key());
}

#[test]
fn unmapped_titles_get_the_default_alertname_and_no_container() {
    let a = alert(parse(&fixture("triggered_unmapped.json")).unwrap());
    assert_eq!(a.name(), DEFAULT_ALERTNAME);
    assert!(!a.labels.contains_key("container"));
    assert!(!a.labels.contains_key("pd_priority"), "priority was null");
    assert_eq!(a.labels["pd_urgency"], "low");
}

#[test]
fn unknown_event_types_are_ignored() {
    assert_eq!(
        parse(&fixture("unknown_type.json")).unwrap(),
        Event::Ignored {
            event_type: "incident.hologram.projected".to_owned()
        },
    );
}

#[test]
fn acknowledgements_and_notes_are_updates_of_the_incident() {
    let ack = alert(parse(&fixture("acknowledged.json")).unwrap());
    assert_eq!(ack.status, Status::Update);
    assert_eq!(ack.fingerprint, "Q1K2MEMX7A");
    assert_eq!(ack.annotations[PD_EVENT], "acknowledged");
    assert_eq!(ack.annotations[PD_AGENT], "On Call");
    assert_eq!(ack.name(), "HighMemoryUsage");

    let note = alert(parse(&fixture("annotated.json")).unwrap());
    assert_eq!(note.status, Status::Update);
    assert_eq!(note.fingerprint, "Q1K2MEMX7A");
    assert_eq!(note.annotations[PD_EVENT], "annotated");
    assert_eq!(note.annotations[PD_NOTE], "Looking at the executor heap.");
    assert_eq!(note.annotations[PD_AGENT], "PagerDuty", "agent was null");
    assert_eq!(note.annotations[EVENT_ID], "01DEN4J000000000000NOTE01");

    // Each update is its own journal entry; a redelivery of one is the same entry.
    assert_ne!(ack.dedup_key(), note.dedup_key());
    let again = alert(parse(&fixture("annotated.json")).unwrap());
    assert_eq!(note.dedup_key(), again.dedup_key());
    let trigger = alert(parse(&fixture("triggered.json")).unwrap());
    assert_ne!(ack.dedup_key(), trigger.dedup_key());
}

#[test]
fn a_reopened_incident_is_a_new_instance_and_its_resolve_is_too() {
    let text = String::from_utf8(fixture("triggered.json")).unwrap();
    let reopened = text
        .replace("incident.triggered", "incident.reopened")
        .replace(
            "\"created_at\"",
            "\"reopened_at\": \"2026-11-27T07:00:00Z\", \"created_at\"",
        );
    assert!(
        reopened.contains("reopened_at"),
        "the fixture has created_at"
    );
    let first = alert(parse(&fixture("triggered.json")).unwrap());
    let again = alert(parse(reopened.as_bytes()).unwrap());
    assert_eq!(again.status, Status::Firing);
    assert_eq!(again.fingerprint, first.fingerprint);
    assert_eq!(again.labels, first.labels, "same routes and target");
    assert_ne!(again.dedup_key(), first.dedup_key(), "not a redelivery");
    let resolved = reopened.replace("incident.reopened", "incident.resolved");
    let resolved = alert(parse(resolved.as_bytes()).unwrap());
    assert_eq!(
        resolved.starts_at, again.starts_at,
        "resolves the reopened one"
    );
}

#[test]
fn titles_map_to_alertnames_and_containers() {
    let cases = [
        (
            "High Memory Usage: k2-bronze-binance-stream",
            "HighMemoryUsage",
            Some("k2-bronze-binance-stream"),
        ),
        (
            "high memory usage: web-frontend",
            "HighMemoryUsage",
            Some("web-frontend"),
        ),
        (
            "Streaming Query Behind: k2-silver_trades.1",
            "StreamingQueryBehind",
            Some("k2-silver_trades.1"),
        ),
        (
            "DLQ Rate above 1%: k2-bronze-kraken-stream",
            "DlqRateHigh",
            Some("k2-bronze-kraken-stream"),
        ),
        ("CHECKPOINT DISK FULL", "CheckpointDiskFull", None),
        (
            "Checkpoint Disk Full: /checkpoints",
            "CheckpointDiskFull",
            None,
        ),
        ("High Memory Usage: two words", "HighMemoryUsage", None),
        ("Memory: High Memory Usage", DEFAULT_ALERTNAME, None),
        ("", DEFAULT_ALERTNAME, None),
        ("Disk: ", DEFAULT_ALERTNAME, None),
    ];
    for (title, name, container_name) in cases {
        assert_eq!(alertname(title), name, "{title:?}");
        assert_eq!(container(title), container_name, "{title:?}");
    }
}

#[test]
fn bad_bodies_get_one_line_reasons() {
    let cases: &[(&[u8], &str)] = &[
        (b"{not json", "not a PagerDuty V3 webhook"),
        (b"{}", "missing field `event`"),
        (br#"{"event":{}}"#, "missing field `event_type`"),
        (
            br#"{"event":{"event_type":"incident.triggered","data":{"title":"x"}}}"#,
            "missing field `id`",
        ),
        (
            br#"{"event":{"event_type":"incident.triggered","data":{"id":"","created_at":"2026-01-01T00:00:00Z"}}}"#,
            "without an incident id",
        ),
        (
            br#"{"event":{"event_type":"incident.resolved","data":{"id":"Q1"}}}"#,
            "without data.created_at or occurred_at",
        ),
    ];
    for (body, expected) in cases {
        let err = parse(body).unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "{err:?} should contain {expected:?}"
        );
        assert!(!err.contains('\n'), "one line: {err:?}");
    }
}
