//! The bearer token check (webhook, API and admin tokens): one constant-time comparison for all.

use axum::http::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::IngestError;

/// The credentials of an `Authorization` value of the Bearer scheme. The scheme is
/// case-insensitive and followed by one or more spaces (RFC 9110, section 11).
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim_start_matches(' '))
}

/// Checks `Authorization: Bearer <token>` in constant time when a token is configured.
pub fn check_bearer(headers: &HeaderMap, token: Option<&SecretString>) -> Result<(), IngestError> {
    let Some(token) = token else { return Ok(()) };
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_credentials)
        .unwrap_or("");
    // Comparing digests keeps the time independent of where the texts differ and of the
    // token's length (a slice comparison returns early on a length mismatch).
    let presented = Sha256::digest(presented.as_bytes());
    let expected = Sha256::digest(token.expose_secret().as_bytes());
    if bool::from(presented.as_slice().ct_eq(expected.as_slice())) {
        Ok(())
    } else {
        Err(IngestError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_token_is_not() {
        let token = SecretString::from("s3cret-Token");
        let cases = [
            ("Bearer s3cret-Token", true),
            ("bearer s3cret-Token", true),
            ("BEARER s3cret-Token", true),
            ("Bearer   s3cret-Token", true),
            ("Bearer s3cret-token", false),
            ("Basic s3cret-Token", false),
            ("Bearers3cret-Token", false),
            ("s3cret-Token", false),
            ("", false),
        ];
        for (value, accepted) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(
                axum::http::header::AUTHORIZATION,
                value.parse().expect("a header value"),
            );
            assert_eq!(
                check_bearer(&headers, Some(&token)).is_ok(),
                accepted,
                "{value:?}"
            );
        }
    }
}
