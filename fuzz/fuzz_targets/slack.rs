//! Any slash-command text, timestamp, signature and body posted to `/slack/*`: parsing and
//! verification never panic, a request signed with the secret over its own bytes is accepted,
//! and the same signature over other bytes is refused.
#![no_main]

use alert_responder::chatops::{self as slack, command};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

const SECRET: &str = "fuzz-signing-secret";
const NOW: i64 = 1_764_210_000;

fn sign(timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v0={hex}")
}

fuzz_target!(|input: (&str, &str, &str, &[u8])| {
    let (text, timestamp, signature, body) = input;
    let _ = command::parse(text);
    let _ = slack::verify_signature(Some(timestamp), Some(signature), body, SECRET, NOW);
    let now = NOW.to_string();
    let good = sign(&now, body);
    assert!(
        slack::verify_signature(Some(&now), Some(&good), body, SECRET, NOW).is_ok(),
        "a request signed over its own bytes is accepted"
    );
    let mut other = body.to_vec();
    other.push(b'x');
    assert!(
        slack::verify_signature(Some(&now), Some(&good), &other, SECRET, NOW).is_err(),
        "the signature of other bytes is refused"
    );
});
