//! What a request must show in its headers before its body is read.
//!
//! A body costs memory the sender chooses (up to `RESPONDER_BODY_LIMIT` a request), so whatever
//! can be refused from the headers alone is refused before it is read: a missing or wrong
//! bearer token, and for the signed endpoints whatever no body could make valid (a missing
//! signature or timestamp header, a Slack timestamp outside the five-minute window). The
//! signatures themselves cover the body; the handlers check them once it is read, inside the
//! body budget (see [`crate::http::Gate`]).

use std::sync::Arc;

use axum::http::HeaderMap;
use secrecy::SecretString;

use super::{check_bearer, pagerduty, slack, IngestError};
use crate::http::{Access, ApiError};

/// Why approvals over the API are refused when no admin token is set.
const ADMIN_OFF: &str =
    "approvals over the API need RESPONDER_ADMIN_TOKEN to be set on the responder";

/// The credential a route asks for, as far as headers can show it.
#[derive(Debug, Clone)]
pub enum Credential {
    /// `Authorization: Bearer` with the webhook token (open when none is configured: the
    /// service then listens on loopback only), or Basic auth of a user of the web
    /// configuration file when it has any (see [`Access`]).
    Access(Access),
    /// `Authorization: Bearer` with the admin token; nobody may when none is configured.
    Admin(Option<Arc<SecretString>>),
    /// Slack's v0 signature headers, with a fresh timestamp.
    SlackSigned {
        /// Whether `SLACK_SIGNING_SECRET` is set; without it the endpoint is off (503).
        configured: bool,
    },
    /// `X-PagerDuty-Signature` with at least one `v1=` entry.
    PagerDutySigned {
        /// Whether `PAGERDUTY_WEBHOOK_SECRET` is set; without it the endpoint is off (503).
        configured: bool,
    },
}

impl Credential {
    /// Refuses a request whose headers cannot carry this credential, at `now` (unix seconds).
    ///
    /// # Errors
    /// The refusal the handler would give after reading the body: 401 for a bearer token, a
    /// login or a Slack signature, 403 for a PagerDuty signature or approvals without an admin token,
    /// 503 for an endpoint whose secret is not configured.
    pub async fn check(&self, headers: &HeaderMap, now: i64) -> Result<(), ApiError> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        match self {
            Credential::Access(access) => access.check(headers).await?,
            Credential::Admin(None) => return Err(ApiError::Forbidden(ADMIN_OFF.to_owned())),
            Credential::Admin(Some(token)) => check_bearer(headers, Some(&**token))?,
            Credential::SlackSigned { configured: false } => {
                return Err(IngestError::NotConfigured(slack::OFF).into())
            }
            Credential::SlackSigned { configured: true } => {
                slack::fresh_headers(
                    header(slack::TIMESTAMP_HEADER),
                    header(slack::SIGNATURE_HEADER),
                    now,
                )
                .inspect_err(
                    |e| tracing::warn!(reason = %e, "Refused an unsigned Slack request."),
                )?;
            }
            Credential::PagerDutySigned { configured: false } => {
                return Err(IngestError::NotConfigured(pagerduty::OFF).into())
            }
            Credential::PagerDutySigned { configured: true } => {
                pagerduty::v1_digests(header(pagerduty::SIGNATURE_HEADER))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("a header value"));
        }
        map
    }

    #[tokio::test]
    async fn headers_that_cannot_be_valid_are_refused_with_the_handlers_status() {
        let token = Some(Arc::new(SecretString::from("t0ken")));
        let now = 1_800_000_000;
        let fresh = now.to_string();
        let stale = (now - 301).to_string();
        let slack = Credential::SlackSigned { configured: true };
        let pagerduty = Credential::PagerDutySigned { configured: true };
        let cases: Vec<(Credential, HeaderMap, Option<StatusCode>)> = vec![
            (
                Credential::Access(Access::new(None, None)),
                headers(&[]),
                None,
            ),
            (
                Credential::Access(Access::new(token.clone(), None)),
                headers(&[]),
                Some(StatusCode::UNAUTHORIZED),
            ),
            (
                Credential::Access(Access::new(token.clone(), None)),
                headers(&[("authorization", "bearer t0ken")]),
                None,
            ),
            (
                Credential::Admin(None),
                headers(&[("authorization", "Bearer t0ken")]),
                Some(StatusCode::FORBIDDEN),
            ),
            (
                Credential::Admin(token.clone()),
                headers(&[("authorization", "Bearer nope")]),
                Some(StatusCode::UNAUTHORIZED),
            ),
            (
                Credential::SlackSigned { configured: false },
                headers(&[]),
                Some(StatusCode::SERVICE_UNAVAILABLE),
            ),
            (
                slack.clone(),
                headers(&[("x-slack-signature", "v0=00")]),
                Some(StatusCode::UNAUTHORIZED),
            ),
            (
                slack.clone(),
                headers(&[("x-slack-request-timestamp", fresh.as_str())]),
                Some(StatusCode::UNAUTHORIZED),
            ),
            (
                slack.clone(),
                headers(&[
                    ("x-slack-request-timestamp", stale.as_str()),
                    ("x-slack-signature", "v0=00"),
                ]),
                Some(StatusCode::UNAUTHORIZED),
            ),
            (
                slack,
                headers(&[
                    ("x-slack-request-timestamp", fresh.as_str()),
                    ("x-slack-signature", "v0=00"),
                ]),
                None,
            ),
            (
                Credential::PagerDutySigned { configured: false },
                headers(&[]),
                Some(StatusCode::SERVICE_UNAVAILABLE),
            ),
            (pagerduty.clone(), headers(&[]), Some(StatusCode::FORBIDDEN)),
            (
                pagerduty.clone(),
                headers(&[("x-pagerduty-signature", "v0=abc")]),
                Some(StatusCode::FORBIDDEN),
            ),
            (
                pagerduty,
                headers(&[("x-pagerduty-signature", "v1=abc")]),
                None,
            ),
        ];
        for (credential, headers, expected) in cases {
            let got = credential
                .check(&headers, now)
                .await
                .err()
                .map(|e| e.status());
            assert_eq!(got, expected, "{credential:?} with {headers:?}");
        }
    }
}
