//! Any body posted to `/webhook/alertmanager`: parsing never panics, and what it accepts is
//! a set of alerts with a fingerprint and a stable dedup key.
#![no_main]

use alert_responder::sources::alertmanager;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(alerts) = alertmanager::parse(body) {
        for alert in &alerts {
            assert!(!alert.fingerprint.is_empty(), "an accepted alert has a fingerprint");
            assert_eq!(alert.dedup_key(), alert.clone().dedup_key());
        }
        // Parsing is pure: the same body gives the same alerts.
        assert_eq!(alertmanager::parse(body).ok(), Some(alerts));
    }
});
