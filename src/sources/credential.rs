//! PagerDuty's signature headers, checked before the body is read (see
//! [`crate::http::Credential`]): the signature covers the body, so its handler checks it once
//! read; what headers alone show (no `v1=` entry, no secret configured) is refused at once.

use axum::http::HeaderMap;

use super::pagerduty;
use crate::http::{ApiError, IngestError, SignedHeaders};

/// `X-PagerDuty-Signature` with at least one `v1=` entry.
#[derive(Debug, Clone, Copy)]
pub struct PagerDutySigned {
    /// Whether `PAGERDUTY_WEBHOOK_SECRET` is set; without it the endpoint is off (503).
    pub configured: bool,
}

impl SignedHeaders for PagerDutySigned {
    fn check(&self, headers: &HeaderMap, _now: i64) -> Result<(), ApiError> {
        if !self.configured {
            return Err(IngestError::NotConfigured(pagerduty::OFF).into());
        }
        let header = headers
            .get(pagerduty::SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok());
        pagerduty::v1_digests(header)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn headers_that_cannot_be_valid_are_refused_with_the_handlers_status() {
        let cases = [
            (false, None, Some(StatusCode::SERVICE_UNAVAILABLE)),
            (true, None, Some(StatusCode::FORBIDDEN)),
            (true, Some("v0=abc"), Some(StatusCode::FORBIDDEN)),
            (true, Some("v1=abc"), None),
        ];
        for (configured, signature, expected) in cases {
            let mut headers = HeaderMap::new();
            if let Some(value) = signature {
                headers.insert(
                    "x-pagerduty-signature",
                    value.parse().expect("a header value"),
                );
            }
            let got = PagerDutySigned { configured }
                .check(&headers, 1_800_000_000)
                .err()
                .map(|e| e.status());
            assert_eq!(got, expected, "{configured} {signature:?}");
        }
    }
}
