//! Slack's v0 request signatures: the headers checked before the body is read (see
//! [`crate::http::Credential`]), the signature over the raw body once it is.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::http::{ApiError, IngestError, SignedHeaders};

/// Requests older or newer than this are refused, as Slack recommends.
pub const MAX_CLOCK_SKEW_SECS: i64 = 5 * 60;
/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-slack-signature";
/// The header carrying the request's unix time.
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";

/// Why both Slack endpoints answer 503 without a signing secret.
pub const OFF: &str = "Slack commands are off: SLACK_SIGNING_SECRET is not configured";

/// The timestamp and signature headers, refused when no body could make them valid: one
/// missing, a timestamp that is no unix time or lies outside [`MAX_CLOCK_SKEW_SECS`] of `now`.
/// Needs no body, so it runs before one is read.
///
/// # Errors
/// [`IngestError::Unsigned`] with a one-line reason.
pub fn fresh_headers<'h>(
    timestamp: Option<&'h str>,
    signature: Option<&'h str>,
    now: i64,
) -> Result<(&'h str, &'h str), IngestError> {
    let timestamp = timestamp.ok_or(IngestError::Unsigned(
        "missing X-Slack-Request-Timestamp header",
    ))?;
    let signature = signature.ok_or(IngestError::Unsigned("missing X-Slack-Signature header"))?;
    let at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| IngestError::Unsigned("X-Slack-Request-Timestamp is not a unix time"))?;
    if (now - at).abs() > MAX_CLOCK_SKEW_SECS {
        return Err(IngestError::Unsigned(
            "X-Slack-Request-Timestamp is more than 5 minutes from now (replayed or clock skew)",
        ));
    }
    Ok((timestamp, signature))
}

/// Checks Slack's v0 signature of `body` at `now` (unix seconds).
///
/// # Errors
/// [`IngestError::Unsigned`] with a one-line reason: a header missing, a timestamp outside
/// [`MAX_CLOCK_SKEW_SECS`], or a signature that does not match.
pub fn verify_signature(
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    secret: &str,
    now: i64,
) -> Result<(), IngestError> {
    let (timestamp, signature) = fresh_headers(timestamp, signature, now)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| IngestError::Unsigned("unusable signing secret"))?;
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    let expected = format!("v0={}", hex(&mac.finalize().into_bytes()));
    let presented = signature.trim().to_ascii_lowercase();
    if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(IngestError::Unsigned(
            "X-Slack-Signature does not match SLACK_SIGNING_SECRET",
        ))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Slack's signature headers, with a fresh timestamp.
#[derive(Debug, Clone, Copy)]
pub struct SlackSigned {
    /// Whether `SLACK_SIGNING_SECRET` is set; without it the endpoint is off (503).
    pub configured: bool,
}

impl SignedHeaders for SlackSigned {
    fn check(&self, headers: &HeaderMap, now: i64) -> Result<(), ApiError> {
        if !self.configured {
            return Err(IngestError::NotConfigured(OFF).into());
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        fresh_headers(header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER), now)
            .inspect_err(|e| tracing::warn!(reason = %e, "Refused an unsigned Slack request."))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn headers_that_cannot_be_valid_are_refused_with_the_handlers_status() {
        let now = 1_800_000_000;
        let (fresh, stale) = (now.to_string(), (now - 301).to_string());
        type Headers<'a> = &'a [(&'static str, &'a str)];
        let cases: [(bool, Headers<'_>, Option<StatusCode>); 5] = [
            (false, &[], Some(StatusCode::SERVICE_UNAVAILABLE)),
            (
                true,
                &[(SIGNATURE_HEADER, "v0=00")],
                Some(StatusCode::UNAUTHORIZED),
            ),
            (
                true,
                &[(TIMESTAMP_HEADER, &fresh)],
                Some(StatusCode::UNAUTHORIZED),
            ),
            (
                true,
                &[(TIMESTAMP_HEADER, &stale), (SIGNATURE_HEADER, "v0=00")],
                Some(StatusCode::UNAUTHORIZED),
            ),
            (
                true,
                &[(TIMESTAMP_HEADER, &fresh), (SIGNATURE_HEADER, "v0=00")],
                None,
            ),
        ];
        for (configured, pairs, expected) in cases {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(*name, value.parse().expect("a header value"));
            }
            let got = SlackSigned { configured }
                .check(&headers, now)
                .err()
                .map(|e| e.status());
            assert_eq!(got, expected, "{configured} {pairs:?}");
        }
    }
}
