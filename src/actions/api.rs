//! What the HTTP status-API step kinds (Spark master, Prometheus) share: one GET that turns
//! transport failures and non-2xx answers into one-line [`ActionError`]s, and timestamps.

use reqwest::StatusCode;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::docker::one_line;
use super::ActionError;

/// How much of an error body goes into the step's error: enough for Prometheus' `error`
/// text or a proxy's one-line message, not a whole HTML error page.
const ERROR_BODY_CHARS: usize = 300;

/// GETs `url` with `query` and returns the status and body of any answer, so callers that
/// understand an API's error bodies (Prometheus) can read them; transport failures (refused,
/// timed out) are errors here.
pub(crate) async fn get(
    http: &reqwest::Client,
    url: &str,
    query: &[(&str, String)],
) -> Result<(StatusCode, String), ActionError> {
    let response = http
        .get(url)
        .query(query)
        .send()
        .await
        .map_err(|e| ActionError::Failed(format!("GET {url}: {}", one_line(&e.to_string()))))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| {
        ActionError::Failed(format!(
            "GET {url}: HTTP {status}, body unreadable: {}",
            one_line(&e.to_string())
        ))
    })?;
    Ok((status, body))
}

/// The error for a non-2xx answer: status and the head of the body, on one line.
pub(crate) fn status_error(url: &str, status: StatusCode, body: &str) -> ActionError {
    let head: String = one_line(body).chars().take(ERROR_BODY_CHARS).collect();
    if head.is_empty() {
        ActionError::Failed(format!("GET {url}: HTTP {status}"))
    } else {
        ActionError::Failed(format!("GET {url}: HTTP {status}: {head}"))
    }
}

/// Joins a base URL from config (with or without a trailing slash) and an absolute path.
pub(crate) fn join(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

/// RFC 3339 (UTC) of a Unix time in milliseconds; `""` when it is out of range, which no
/// real API sends but a corrupt one must not turn into a failed run.
pub(crate) fn rfc3339_millis(millis: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// RFC 3339 (UTC) of now.
pub(crate) fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_with_or_without_a_trailing_slash() {
        assert_eq!(join("http://m:8090", "/json/"), "http://m:8090/json/");
        assert_eq!(join("http://m:8090/", "/json/"), "http://m:8090/json/");
    }

    #[test]
    fn millis_format_as_rfc3339_utc() {
        assert_eq!(
            rfc3339_millis(1_768_904_130_123),
            "2026-01-20T10:15:30.123Z"
        );
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_millis(i64::MAX), "");
    }

    #[test]
    fn status_errors_are_one_line_and_bounded() {
        let body = format!("<html>\n<h1>oops</h1>{}", "x".repeat(1000));
        let ActionError::Failed(msg) = status_error("http://p/x", StatusCode::NOT_FOUND, &body)
        else {
            panic!("status errors are Failed");
        };
        assert!(msg.starts_with("GET http://p/x: HTTP 404 Not Found: <html> <h1>oops"));
        assert!(!msg.contains('\n') && msg.len() < 400, "{msg}");
    }
}
