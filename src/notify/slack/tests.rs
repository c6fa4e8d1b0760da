use super::*;
use slack_morphism::errors::{
    SlackClientApiError, SlackClientEndOfStreamError, SlackClientHttpError,
    SlackClientHttpProtocolError, SlackClientSystemError, SlackRateLimitError,
};

fn api(code: &str) -> SlackClientError {
    SlackClientError::ApiError(
        SlackClientApiError::new(code.to_owned())
            .with_http_response_body(format!("{{\"ok\":false,\"error\":\"{code}\"}}")),
    )
}

fn http(status: u16) -> SlackClientError {
    SlackClientError::HttpError(SlackClientHttpError::new(
        axum::http::StatusCode::from_u16(status).expect("valid status"),
    ))
}

#[test]
fn rate_limit_error_keeps_retry_after() {
    let err = SlackClientError::RateLimitError(
        SlackRateLimitError::new().with_retry_after(Duration::from_secs(7)),
    );
    assert_eq!(
        classify(&err),
        SlackError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );
    let err = SlackClientError::RateLimitError(SlackRateLimitError::new());
    assert_eq!(
        classify(&err),
        SlackError::RateLimited { retry_after: None }
    );
}

#[test]
fn ok_false_ratelimited_is_rate_limited() {
    assert_eq!(
        classify(&api("ratelimited")),
        SlackError::RateLimited { retry_after: None }
    );
}

#[test]
fn transient_codes_are_unavailable() {
    for code in TRANSIENT_CODES {
        let e = classify(&api(code));
        assert_eq!(e, SlackError::Unavailable((*code).to_owned()));
        assert!(e.is_retryable());
    }
}

#[test]
fn permanent_codes_are_rejected_with_the_code() {
    for code in [
        "invalid_auth",
        "not_authed",
        "channel_not_found",
        "msg_too_long",
        "is_archived",
        "some_future_code",
    ] {
        let e = classify(&api(code));
        assert_eq!(e, SlackError::Rejected(code.to_owned()));
        assert!(!e.is_retryable());
    }
}

#[test]
fn http_status_classification() {
    assert!(matches!(classify(&http(500)), SlackError::Unavailable(s) if s == "HTTP 500"));
    assert!(matches!(classify(&http(502)), SlackError::Unavailable(_)));
    assert!(matches!(classify(&http(503)), SlackError::Unavailable(_)));
    assert!(matches!(classify(&http(408)), SlackError::Unavailable(_)));
    assert!(matches!(classify(&http(404)), SlackError::Rejected(s) if s == "HTTP 404"));
    assert!(matches!(classify(&http(403)), SlackError::Rejected(_)));
}

#[test]
fn transport_errors_are_unavailable_and_one_line() {
    let io = std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "refused\nsecond line",
    );
    let err = SlackClientError::HttpProtocolError(
        SlackClientHttpProtocolError::new().with_cause(Box::new(io)),
    );
    match classify(&err) {
        SlackError::Unavailable(s) => {
            assert!(s.contains("refused"), "{s}");
            assert!(!s.contains('\n'), "{s}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let err = SlackClientError::SystemError(
        SlackClientSystemError::new().with_message("boom".to_owned()),
    );
    assert_eq!(classify(&err), SlackError::Unavailable("boom".to_owned()));
    let err = SlackClientError::EndOfStream(SlackClientEndOfStreamError::new());
    assert!(classify(&err).is_retryable());
}

#[test]
fn protocol_error_is_unavailable() {
    let json_error = serde_json::from_str::<serde_json::Value>("<html>").expect_err("invalid");
    let err = SlackClientError::ProtocolError(
        slack_morphism::errors::SlackClientProtocolError::new(json_error),
    );
    assert!(
        matches!(classify(&err), SlackError::Unavailable(s) if s.starts_with("unexpected response"))
    );
}

#[test]
fn display_is_one_line() {
    let e = SlackError::RateLimited {
        retry_after: Some(Duration::from_secs(2)),
    };
    assert_eq!(e.to_string(), "slack rate limited (retry after 2s)");
    assert_eq!(
        SlackError::Rejected("invalid_auth".into()).to_string(),
        "slack rejected the call: invalid_auth"
    );
}

#[test]
fn debug_redacts_token_and_new_rejects_bad_urls() {
    let client = SlackWebApi::new(
        "http://127.0.0.1:1/api/",
        SecretString::from("xoxb-very-secret"),
    )
    .expect("client");
    let dbg = format!("{client:?}");
    assert!(!dbg.contains("xoxb-very-secret"), "{dbg}");
    assert!(dbg.contains("http://127.0.0.1:1/api\""), "{dbg}");
    let err = SlackWebApi::new("ftp://x", SecretString::from("t")).expect_err("bad url");
    assert!(!err.is_retryable());
}

#[test]
fn redact_scrubs_the_token() {
    let client = SlackWebApi::new("https://slack.com/api", SecretString::from("xoxb-s3cr3t"))
        .expect("client");
    let e = client.redact(SlackError::Unavailable("saw xoxb-s3cr3t here".into()));
    assert_eq!(e, SlackError::Unavailable("saw [redacted] here".into()));
}

#[test]
fn texts_longer_than_slack_takes_are_cut_with_a_note() {
    assert_eq!(fit_text("short"), "short");
    let exact = "é".repeat(MAX_TEXT_CHARS);
    assert_eq!(fit_text(&exact), exact);
    let huge = "x".repeat(1024 * 1024);
    let fitted = fit_text(&huge);
    assert!(fitted.chars().count() <= MAX_TEXT_CHARS);
    assert!(
        fitted.ends_with("characters cut)"),
        "{}",
        &fitted[fitted.len() - 40..]
    );
}
