//! The Slack Web API client: the calls the outbox makes (`chat.postMessage`, `chat.update`, and
//! the external file upload flow, see `upload`),
//! and the mapping of every Slack failure into retryable or permanent [`SlackError`]s. Every
//! call goes through the one client the process shares, [`SlackLink`].
//!
//! It owns no retry or rate control: the persisted outbox decides when to try again, so a 429
//! surfaces as [`SlackError::RateLimited`] with Slack's `Retry-After` instead of being slept on here.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

/// Default upper bound on one Web API call, connection included; beyond it the call counts as unavailable.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Slack refuses a `text` longer than this (`msg_too_long`); longer reports are cut to fit.
pub const MAX_TEXT_CHARS: usize = 40_000;

/// `text` cut to [`MAX_TEXT_CHARS`] with a note of how much was left out, so a report carrying
/// a huge label value still arrives (a refused message would be lost, not retried).
pub fn fit_text(text: &str) -> std::borrow::Cow<'_, str> {
    let total = text.chars().count();
    if total <= MAX_TEXT_CHARS {
        return text.into();
    }
    let note = format!("\n… ({} characters cut)", total - (MAX_TEXT_CHARS - 64));
    let kept: String = text.chars().take(MAX_TEXT_CHARS - 64).collect();
    format!("{kept}{note}").into()
}

/// `ok:false` codes Slack documents as transient: trying again later can succeed.
const TRANSIENT_CODES: &[&str] = &[
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

/// The two Slack Web API calls the outbox needs; a trait so tests and other chat backends can stand in.
#[async_trait]
pub trait ChatApi: Send + Sync + fmt::Debug {
    /// Posts `text` (mrkdwn) to `channel`, as a reply in the thread `thread_ts` when given.
    async fn post_message(
        &self,
        channel: &str,
        text: &str,
        thread_ts: Option<&str>,
    ) -> Result<Posted, SlackError>;

    /// Replaces the text of the message `ts` in `channel` (a channel ID, as [`Posted::channel`]).
    async fn update_message(&self, channel: &str, ts: &str, text: &str) -> Result<(), SlackError>;

    /// Like [`ChatApi::post_message`], with Block Kit `blocks` (a JSON array) when given;
    /// `text` stays the notification fallback. Backends without blocks post the text.
    async fn post_rich(
        &self,
        channel: &str,
        text: &str,
        blocks: Option<&str>,
        thread_ts: Option<&str>,
    ) -> Result<Posted, SlackError> {
        let _ = blocks;
        self.post_message(channel, text, thread_ts).await
    }

    /// Like [`ChatApi::update_message`], replacing the blocks too (none given: text only).
    async fn update_rich(
        &self,
        channel: &str,
        ts: &str,
        text: &str,
        blocks: Option<&str>,
    ) -> Result<(), SlackError> {
        let _ = blocks;
        self.update_message(channel, ts, text).await
    }

    /// Shares `file` in the thread `thread_ts` of `channel` (a channel ID). Backends without
    /// files refuse it.
    async fn upload_file(
        &self,
        channel: &str,
        thread_ts: &str,
        file: &FileUpload,
    ) -> Result<(), SlackError> {
        let _ = (channel, thread_ts, file);
        Err(SlackError::Rejected(
            "files are not supported here".to_owned(),
        ))
    }
}

/// Where a posted message landed: what a later reply or update needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// The channel ID Slack answered (e.g. `C0123`): `chat.update` needs the ID, not `#incidents`.
    pub channel: String,
    /// The message timestamp, Slack's message ID and the `thread_ts` of replies.
    pub ts: String,
}

/// Why a Slack call failed, classified by whether trying again later can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackError {
    /// Slack asked us to slow down (HTTP 429 or `ok:false` `ratelimited`); wait `retry_after` if given.
    #[error("slack rate limited{}", match .retry_after {
        Some(d) => format!(" (retry after {}s)", d.as_secs()),
        None => String::new(),
    })]
    RateLimited {
        /// Slack's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// Slack could not be reached or failed transiently (network, timeout, 5xx, transient codes).
    #[error("slack unavailable: {0}")]
    Unavailable(String),
    /// Slack refused the call for good (e.g. `invalid_auth`, `channel_not_found`); carries Slack's code.
    #[error("slack rejected the call: {0}")]
    Rejected(String),
}

impl SlackError {
    /// Whether the same call may succeed later (rate limits and outages), as opposed to a refusal.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SlackError::RateLimited { .. } | SlackError::Unavailable(_)
        )
    }
}

/// [`ChatApi`] over Slack's Web API, through the process's one slack-morphism client ([`SlackLink`]).
pub struct SlackWebApi {
    link: SlackLink,
    token: SecretString,
    timeout: Duration,
    // The file upload legs: one goes to a URL outside the Web API, which slack-morphism's
    // session does not sign for; plain HTTP keeps all three legs in one place.
    http: reqwest::Client,
}

impl fmt::Debug for SlackWebApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Written by hand so the bot token can never reach logs.
        f.debug_struct("SlackWebApi")
            .field("api_url", &self.link.api_url())
            .field("token", &"[redacted]")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SlackWebApi {
    /// A client for the Web API at `api_url` (`https://slack.com/api`, or a fake's `http://…/api`)
    /// on a link of its own; the app shares one link through [`SlackWebApi::over`].
    pub fn new(api_url: &str, token: SecretString) -> Result<Self, SlackError> {
        Self::over(SlackLink::new(api_url)?, token)
    }

    /// The outbox's calls over `link`, the client the rest of the process uses too.
    pub fn over(link: SlackLink, token: SecretString) -> Result<Self, SlackError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("alert-responder/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SlackError::Rejected(format!("HTTP client: {e}")))?;
        Ok(Self {
            link,
            token,
            timeout: CALL_TIMEOUT,
            http,
        })
    }

    /// Replaces the per-call timeout (default [`CALL_TIMEOUT`]), e.g. to keep tests short.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A slack-morphism token for one call; built per call so the raw value is held in one place.
    fn api_token(&self) -> SlackApiToken {
        SlackApiToken::new(SlackApiTokenValue(self.token.expose_secret().to_owned()))
    }

    /// Classifies a slack-morphism result, bounded by the call timeout, with the token scrubbed.
    async fn call<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, SlackClientError>>,
    ) -> Result<T, SlackError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Err(_elapsed) => Err(SlackError::Unavailable("timed out".to_owned())),
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(self.redact(classify(&err))),
        }
    }

    /// Removes the token from an error text, in case a lower layer ever echoes it.
    fn redact(&self, err: SlackError) -> SlackError {
        let secret = self.token.expose_secret();
        if secret.is_empty() {
            return err;
        }
        let scrub = |s: String| s.replace(secret, "[redacted]");
        match err {
            SlackError::Unavailable(s) => SlackError::Unavailable(scrub(s)),
            SlackError::Rejected(s) => SlackError::Rejected(scrub(s)),
            other => other,
        }
    }
}

#[async_trait]
impl ChatApi for SlackWebApi {
    async fn post_message(
        &self,
        channel: &str,
        text: &str,
        thread_ts: Option<&str>,
    ) -> Result<Posted, SlackError> {
        self.post_rich(channel, text, None, thread_ts).await
    }

    async fn update_message(&self, channel: &str, ts: &str, text: &str) -> Result<(), SlackError> {
        self.update_rich(channel, ts, text, None).await
    }

    async fn post_rich(
        &self,
        channel: &str,
        text: &str,
        blocks: Option<&str>,
        thread_ts: Option<&str>,
    ) -> Result<Posted, SlackError> {
        // `text` is rendered as mrkdwn by default (chat.postMessage `mrkdwn` defaults to true).
        let req = SlackApiChatPostMessageRequest::new(
            SlackChannelId(channel.to_owned()),
            content(&fit_text(text), blocks)?,
        )
        .opt_thread_ts(thread_ts.map(|ts| SlackTs(ts.to_owned())))
        // Incident reports carry dashboard and runbook links; previews would bury the text.
        .with_unfurl_links(false);
        let token = self.api_token();
        let session = self.link.client().open_session(&token);
        let resp = self.call(session.chat_post_message(&req)).await?;
        Ok(Posted {
            channel: resp.channel.0,
            ts: resp.ts.0,
        })
    }

    async fn update_rich(
        &self,
        channel: &str,
        ts: &str,
        text: &str,
        blocks: Option<&str>,
    ) -> Result<(), SlackError> {
        let req = SlackApiChatUpdateRequest::new(
            SlackChannelId(channel.to_owned()),
            content(&fit_text(text), blocks)?,
            SlackTs(ts.to_owned()),
        );
        let token = self.api_token();
        let session = self.link.client().open_session(&token);
        self.call(session.chat_update(&req)).await?;
        Ok(())
    }

    async fn upload_file(
        &self,
        channel: &str,
        thread_ts: &str,
        file: &FileUpload,
    ) -> Result<(), SlackError> {
        let result = self.upload(channel, thread_ts, file).await;
        result.map_err(|e| self.redact(e))
    }
}

/// Message content: mrkdwn `text`, plus `blocks` (a JSON array of Block Kit blocks) when given.
fn content(text: &str, blocks: Option<&str>) -> Result<SlackMessageContent, SlackError> {
    let content = SlackMessageContent::new().with_text(text.to_owned());
    let Some(blocks) = blocks else {
        return Ok(content);
    };
    // Blocks are rendered by this service; one that does not parse will never be accepted.
    let blocks: Vec<SlackBlock> = serde_json::from_str(blocks).map_err(|e| {
        SlackError::Rejected(format!("invalid blocks: {}", one_line(&e.to_string())))
    })?;
    Ok(content.with_blocks(blocks))
}

/// Maps a slack-morphism error to retryable or permanent, keeping Slack's code and one line of detail.
fn classify(err: &SlackClientError) -> SlackError {
    match err {
        SlackClientError::RateLimitError(e) => SlackError::RateLimited {
            retry_after: e.retry_after,
        },
        SlackClientError::ApiError(e) => classify_code(&e.code),
        SlackClientError::HttpError(e) => {
            let status = e.status_code;
            // 408 is the one 4xx that means "try again"; other 4xx will fail the same way again.
            if status.is_server_error() || status.as_u16() == 408 {
                SlackError::Unavailable(format!("HTTP {}", status.as_u16()))
            } else {
                SlackError::Rejected(format!("HTTP {}", status.as_u16()))
            }
        }
        SlackClientError::HttpProtocolError(e) => SlackError::Unavailable(match &e.cause {
            Some(cause) => error_chain(cause.as_ref()),
            None => "http protocol error".to_owned(),
        }),
        SlackClientError::SystemError(e) => {
            let mut parts = Vec::new();
            if let Some(m) = &e.message {
                parts.push(m.clone());
            }
            if let Some(cause) = &e.cause {
                parts.push(error_chain(cause.as_ref()));
            }
            if parts.is_empty() {
                parts.push("system error".to_owned());
            }
            SlackError::Unavailable(one_line(&parts.join(": ")))
        }
        // A body we cannot decode is most often a proxy or outage page, not a refusal.
        SlackClientError::ProtocolError(e) => {
            SlackError::Unavailable(one_line(&format!("unexpected response: {}", e.json_error)))
        }
        SlackClientError::EndOfStream(_) => SlackError::Unavailable("connection closed".to_owned()),
        SlackClientError::SocketModeProtocolError(e) => {
            SlackError::Unavailable(one_line(&e.message))
        }
    }
}

/// Maps an `ok:false` error code: `ratelimited`, the transient codes, or a permanent refusal.
fn classify_code(code: &str) -> SlackError {
    let code = one_line(code);
    if code == "ratelimited" || code == "rate_limited" {
        SlackError::RateLimited { retry_after: None }
    } else if TRANSIENT_CODES.contains(&code.as_str()) {
        SlackError::Unavailable(code)
    } else {
        SlackError::Rejected(code)
    }
}

/// An error and its sources as one line, e.g. `client error (Connect): tcp connect error: refused`.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        // hyper repeats the inner message in some wrappers; skip exact repeats.
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    one_line(&parts.join(": "))
}

/// Collapses line breaks so every error text stays on one log line.
fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

mod link;
mod upload;
pub use link::SlackLink;
pub use upload::FileUpload;

#[cfg(test)]
mod tests;
