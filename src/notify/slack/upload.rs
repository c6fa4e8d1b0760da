//! Files into a thread with Slack's external upload flow (`files.upload` is retired):
//! `files.getUploadURLExternal` (`filename`, `length`) gives an upload URL and a file id; the
//! bytes are POSTed to that URL; `files.completeUploadExternal` with `channel_id` and
//! `thread_ts` shares the file in the thread. Until that last call nothing appears, so a
//! failure at any leg is retried from the first without leaving a half-posted file.

use secrecy::ExposeSecret;
use serde_json::{json, Value};

use super::{classify_code, one_line, SlackError, SlackWebApi};

/// A file to share in a thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUpload {
    /// The file name Slack shows and types it by, e.g. `chart.png`.
    pub filename: String,
    /// The title shown above it.
    pub title: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl SlackWebApi {
    /// Shares `file` in the thread `thread_ts` of `channel` (a channel ID), in three legs.
    pub(super) async fn upload(
        &self,
        channel: &str,
        thread_ts: &str,
        file: &FileUpload,
    ) -> Result<(), SlackError> {
        let length = file.bytes.len().to_string();
        let form = [("filename", file.filename.as_str()), ("length", &length)];
        let url = format!("{}/files.getUploadURLExternal", self.link.api_url());
        let answer = self
            .leg(
                self.http
                    .post(url)
                    .bearer_auth(self.token.expose_secret())
                    .form(&form),
            )
            .await?;
        let (Some(upload_url), Some(file_id)) =
            (answer["upload_url"].as_str(), answer["file_id"].as_str())
        else {
            return Err(SlackError::Unavailable(
                "files.getUploadURLExternal answered without upload_url and file_id".into(),
            ));
        };
        // The upload URL is Slack's own, signed for this file: it takes the bytes as they are.
        let put = self.http.post(upload_url).body(file.bytes.clone());
        let response = self.send(put).await?;
        status_only(response.status(), response.headers())?;
        let complete = json!({
            "files": [{ "id": file_id, "title": file.title }],
            "channel_id": channel,
            "thread_ts": thread_ts,
        });
        let url = format!("{}/files.completeUploadExternal", self.link.api_url());
        self.leg(
            self.http
                .post(url)
                .bearer_auth(self.token.expose_secret())
                .json(&complete),
        )
        .await?;
        Ok(())
    }

    /// One Web API leg: the answer's JSON when `ok`, else the classified failure.
    async fn leg(&self, request: reqwest::RequestBuilder) -> Result<Value, SlackError> {
        let response = self.send(request).await?;
        status_only(response.status(), response.headers())?;
        let body: Value = response
            .json()
            .await
            .map_err(|e| SlackError::Unavailable(one_line(&format!("unexpected response: {e}"))))?;
        if body["ok"].as_bool() == Some(true) {
            return Ok(body);
        }
        Err(classify_code(
            body["error"].as_str().unwrap_or("unknown_error"),
        ))
    }

    /// Sends within the call timeout; a network failure is an outage.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, SlackError> {
        request
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| SlackError::Unavailable(one_line(&e.without_url().to_string())))
    }
}

/// What an HTTP status alone says: 429 waits, 5xx and 408 retry, other 4xx refuse.
fn status_only(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
) -> Result<(), SlackError> {
    if status.is_success() {
        return Ok(());
    }
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        let retry_after = crate::notify::retry_after(headers);
        return Err(SlackError::RateLimited { retry_after });
    }
    let code = format!("HTTP {}", status.as_u16());
    if status.is_server_error() || status.as_u16() == 408 {
        Err(SlackError::Unavailable(code))
    } else {
        Err(SlackError::Rejected(code))
    }
}
