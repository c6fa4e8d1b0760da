//! Property tests for the webhook parsers: no JSON value makes them panic, and the dedup key
//! of an alert depends on its identity only, never on how the body was written.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::{alertmanager, pagerduty};

/// Any JSON value, up to a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".*".prop_map(Value::from),
        // The strings the parsers look for, so values reach the deeper checks.
        prop_oneof![
            Just("4"),
            Just("firing"),
            Just("resolved"),
            Just("2026-11-27T05:00:00Z"),
            Just("incident.triggered"),
            Just("incident.resolved"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("version".to_owned()),
                    Just("alerts".to_owned()),
                    Just("status".to_owned()),
                    Just("labels".to_owned()),
                    Just("startsAt".to_owned()),
                    Just("fingerprint".to_owned()),
                    Just("event".to_owned()),
                    Just("event_type".to_owned()),
                    Just("data".to_owned()),
                    Just("id".to_owned()),
                    Just("created_at".to_owned()),
                    Just("title".to_owned()),
                    ".{0,8}",
                ],
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn no_json_value_makes_a_parser_panic(value in any_json()) {
        let wrapped = json!({"version": "4", "alerts": [value.clone()]});
        let event = json!({"event": {"event_type": "incident.triggered", "data": value.clone()}});
        for body in [value, wrapped, event] {
            let bytes = body.to_string().into_bytes();
            let _ = alertmanager::parse(&bytes);
            let _ = pagerduty::parse(&bytes);
        }
    }

    #[test]
    fn the_dedup_key_depends_on_identity_not_on_spelling(
        fingerprint in "[0-9a-f]{1,16}",
        labels in prop::collection::btree_map("[a-z_]{1,8}", ".*", 0..5),
        seconds in 0i64..4_000_000_000,
        nanos in 0u32..1_000_000_000,
        firing in any::<bool>(),
    ) {
        let status = if firing { "firing" } else { "resolved" };
        let start = time::OffsetDateTime::from_unix_timestamp(seconds).unwrap()
            + time::Duration::nanoseconds(i64::from(nanos));
        let utc = start.format(&time::format_description::well_known::Rfc3339).unwrap();
        // The same instant written in another offset, with labels in another order.
        let shifted = start
            .to_offset(time::UtcOffset::from_hms(5, 30, 0).unwrap())
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let reversed: serde_json::Map<String, Value> =
            labels.iter().rev().map(|(k, v)| (k.clone(), json!(v))).collect();
        let body = |starts_at: &str, labels: Value| {
            json!({"version": "4", "alerts": [{"status": status, "labels": labels,
                "startsAt": starts_at, "fingerprint": fingerprint}]})
            .to_string()
        };
        let a = &alertmanager::parse(body(&utc, json!(labels)).as_bytes()).unwrap()[0];
        let b = &alertmanager::parse(body(&shifted, Value::Object(reversed)).as_bytes()).unwrap()[0];
        prop_assert_eq!(a.dedup_key(), b.dedup_key());
        let other = if firing { "resolved" } else { "firing" };
        let flipped = body(&utc, json!(labels)).replacen(status, other, 1);
        let c = &alertmanager::parse(flipped.as_bytes()).unwrap()[0];
        prop_assert_ne!(a.dedup_key(), c.dedup_key());
    }
}
