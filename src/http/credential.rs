//! What a request must show in its headers before its body is read.
//!
//! A body costs memory the sender chooses (up to `RESPONDER_BODY_LIMIT` a request), so whatever
//! can be refused from the headers alone is refused before it is read: a missing or wrong
//! bearer token, and for the signed endpoints whatever no body could make valid (a missing
//! signature or timestamp header, a Slack timestamp outside the five-minute window). The
//! signatures themselves cover the body; the handlers check them once it is read, inside the
//! body budget (see [`super::Gate`]). Each signed endpoint brings its own [`SignedHeaders`],
//! so this layer knows no source.

use std::sync::Arc;

use axum::http::HeaderMap;
use secrecy::SecretString;

use super::{check_bearer, Access, ApiError};

/// Why approvals over the API are refused when no admin token is set.
const ADMIN_OFF: &str =
    "approvals over the API need RESPONDER_ADMIN_TOKEN to be set on the responder";

/// The headers of a signature scheme, checked before the body is read.
pub trait SignedHeaders: std::fmt::Debug + Send + Sync {
    /// Refuses headers no body could make valid at `now` (unix seconds).
    ///
    /// # Errors
    /// The refusal the handler would give after reading the body.
    fn check(&self, headers: &HeaderMap, now: i64) -> Result<(), ApiError>;
}

/// The credential a route asks for, as far as headers can show it.
#[derive(Debug, Clone)]
pub enum Credential {
    /// `Authorization: Bearer` with the webhook token (open when none is configured: the
    /// service then listens on loopback only), or Basic auth of a user of the web
    /// configuration file when it has any (see [`Access`]).
    Access(Access),
    /// `Authorization: Bearer` with the admin token; nobody may when none is configured.
    Admin(Option<Arc<SecretString>>),
    /// A signature scheme's headers (Slack's v0, PagerDuty's `v1=`).
    Signed(Arc<dyn SignedHeaders>),
}

impl Credential {
    /// Refuses a request whose headers cannot carry this credential, at `now` (unix seconds).
    ///
    /// # Errors
    /// The refusal the handler would give after reading the body: 401 for a bearer token or a
    /// login, 403 for approvals without an admin token, and what [`SignedHeaders`] says.
    pub async fn check(&self, headers: &HeaderMap, now: i64) -> Result<(), ApiError> {
        match self {
            Credential::Access(access) => access.check(headers).await?,
            Credential::Admin(None) => return Err(ApiError::Forbidden(ADMIN_OFF.to_owned())),
            Credential::Admin(Some(token)) => check_bearer(headers, Some(&**token))?,
            Credential::Signed(scheme) => scheme.check(headers, now)?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    /// A scheme that wants one header, to show the gate asks it.
    #[derive(Debug)]
    struct Wants(&'static str);

    impl SignedHeaders for Wants {
        fn check(&self, headers: &HeaderMap, _now: i64) -> Result<(), ApiError> {
            match headers.contains_key(self.0) {
                true => Ok(()),
                false => Err(ApiError::Unsigned(format!("missing {}", self.0))),
            }
        }
    }

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
        let signed = Credential::Signed(Arc::new(Wants("x-sig")));
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
            (signed.clone(), headers(&[]), Some(StatusCode::UNAUTHORIZED)),
            (signed, headers(&[("x-sig", "v0=00")]), None),
        ];
        for (credential, headers, expected) in cases {
            let got = credential
                .check(&headers, 1_800_000_000)
                .await
                .err()
                .map(|e| e.status());
            assert_eq!(got, expected, "{credential:?} with {headers:?}");
        }
    }
}
