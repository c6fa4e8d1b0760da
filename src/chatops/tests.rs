//! Signature checks against Slack's documented example and the edges around it.

use super::*;

// From Slack's "Verifying requests from Slack" page: secret, timestamp, body and signature.
const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const TS: &str = "1531420618";
const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
const NOW: i64 = 1_531_420_618;

#[test]
fn slacks_documented_example_verifies() {
    verify_signature(Some(TS), Some(SIGNATURE), BODY.as_bytes(), SECRET, NOW).unwrap();
    // Within five minutes either way still verifies.
    verify_signature(
        Some(TS),
        Some(SIGNATURE),
        BODY.as_bytes(),
        SECRET,
        NOW + 300,
    )
    .unwrap();
    verify_signature(
        Some(TS),
        Some(SIGNATURE),
        BODY.as_bytes(),
        SECRET,
        NOW - 300,
    )
    .unwrap();
}

#[test]
fn anything_else_is_refused() {
    let refused = |ts: Option<&str>, sig: Option<&str>, body: &str, secret: &str, now: i64| {
        matches!(
            verify_signature(ts, sig, body.as_bytes(), secret, now),
            Err(IngestError::Unsigned(_))
        )
    };
    assert!(
        refused(Some(TS), Some(SIGNATURE), BODY, SECRET, NOW + 301),
        "stale"
    );
    assert!(
        refused(Some(TS), Some(SIGNATURE), BODY, SECRET, NOW - 301),
        "future"
    );
    assert!(
        refused(Some(TS), Some(SIGNATURE), &format!("{BODY}x"), SECRET, NOW),
        "body"
    );
    assert!(
        refused(Some(TS), Some(SIGNATURE), BODY, "other-secret", NOW),
        "secret"
    );
    assert!(
        refused(Some("1531420619"), Some(SIGNATURE), BODY, SECRET, NOW),
        "timestamp"
    );
    assert!(
        refused(None, Some(SIGNATURE), BODY, SECRET, NOW),
        "no timestamp"
    );
    assert!(refused(Some(TS), None, BODY, SECRET, NOW), "no signature");
    assert!(
        refused(Some("soon"), Some(SIGNATURE), BODY, SECRET, NOW),
        "not a number"
    );
    let v1 = SIGNATURE.replacen("v0=", "v1=", 1);
    assert!(
        refused(Some(TS), Some(&v1), BODY, SECRET, NOW),
        "other version"
    );
}

#[test]
fn command_text_reaches_the_log_without_control_characters() {
    let cases = [
        ("plain run k2-x", "plain run k2-x"),
        ("a\0b", "a\\u{0}b"),
        ("forged\nINFO Approved", "forged\\nINFO Approved"),
        ("\u{1b}[2Jwiped", "\\u{1b}[2Jwiped"),
        ("tab\tand\rreturn", "tab\\tand\\rreturn"),
    ];
    for (given, logged) in cases {
        let out = loggable(given);
        assert_eq!(out, logged);
        assert!(!out.chars().any(char::is_control), "{out:?}");
    }
}

#[test]
fn replies_are_escaped_as_a_whole() {
    let Json(reply) = ephemeral("*#1* firing Probe<!channel><https://evil.example|Approve> & co");
    assert_eq!(
        reply["text"],
        "*#1* firing Probe&lt;!channel&gt;&lt;https://evil.example|Approve&gt; &amp; co"
    );
}
