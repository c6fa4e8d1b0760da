//! The one Slack client of the process: a slack-morphism client on one connector, pointed at
//! one Web API base URL (`SLACK_API_URL`), built once at startup and shared by every call to
//! Slack in both directions: the outbox's messages and files ([`super::SlackWebApi`]), ChatOps'
//! group lookups (`usergroups.users.list`) and its `response_url` follow-ups.
//!
//! The bot token is not part of the link: each caller holds its own `SecretString` and lends
//! it for one call, so the raw value is never stored twice and never logged.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use super::{classify, one_line, SlackError};

/// One slack-morphism client and the Web API base URL it calls; cheap to clone (the
/// connector, its connection pool included, is shared).
#[derive(Clone)]
pub struct SlackLink {
    // HTTPS for real Slack; plain HTTP is allowed too, for a local fake.
    client: SlackHyperClient,
    api_url: String,
}

impl fmt::Debug for SlackLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackLink")
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

/// What a `response_url` follow-up sends: slack-morphism's webhook message plus
/// `response_type`, which its request type lacks (see [`SlackLink::respond`]).
#[derive(Serialize)]
struct FollowUp<'a> {
    #[serde(flatten)]
    message: &'a SlackApiPostWebhookMessageRequest,
    response_type: SlackMessageResponseType,
}

impl SlackLink {
    /// A client for the Web API at `api_url` (`https://slack.com/api`, or a fake's `http://…/api`).
    pub fn new(api_url: &str) -> Result<Self, SlackError> {
        let api_url = api_url.trim_end_matches('/');
        if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
            return Err(SlackError::Rejected(format!(
                "invalid api url {:?}: must start with https:// or http://",
                one_line(api_url)
            )));
        }
        // When more than one rustls provider is compiled in (ring, plus aws-lc-rs via another
        // dependency), rustls cannot pick one and the connector panics; installing ring first is
        // harmless if a provider is already set.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| {
                // Missing CA roots are a host setup problem that no retry fixes.
                SlackError::Rejected(format!(
                    "no TLS root certificates: {}",
                    one_line(&e.to_string())
                ))
            })?
            // `https_or_http` (not slack-morphism's `new()`, which is https-only) so tests can
            // point the client at a plain-HTTP fake Slack.
            .https_or_http()
            .enable_http1()
            .build();
        // Deliberately no `with_rate_control`: retries and pacing belong to the persisted
        // outbox, and a command cannot wait out a rate limit inside Slack's three seconds.
        let connector =
            SlackClientHyperConnector::with_connector(https).with_slack_api_url(api_url);
        Ok(Self {
            client: SlackClient::new(connector),
            api_url: api_url.to_owned(),
        })
    }

    /// The Web API base URL, without a trailing slash.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// The slack-morphism client, for the Web API calls of this module's siblings.
    pub(super) fn client(&self) -> &SlackHyperClient {
        &self.client
    }

    /// The members of user group `group` (`S…`), from `usergroups.users.list` (scope
    /// `usergroups:read`). The error is one line for a person to read: Slack's `ok:false`
    /// code, `Slack answered HTTP …`, or `Slack unreachable (…)`. No timeout of its own: the
    /// caller knows how long it can wait.
    pub async fn usergroup_members(
        &self,
        token: &SecretString,
        group: &str,
    ) -> Result<Vec<String>, String> {
        let token = SlackApiToken::new(SlackApiTokenValue(token.expose_secret().to_owned()));
        let session = self.client.open_session(&token);
        let req = SlackApiUserGroupsUsersListRequest::new(SlackUserGroupId(group.to_owned()));
        match session.usergroups_users_list(&req).await {
            Ok(list) => Ok(list.users.into_iter().map(|u| u.0).collect()),
            Err(e) => Err(lookup_error(&e)),
        }
    }

    /// Posts `text` (mrkdwn, escaped by the caller) to a `response_url` as an ephemeral
    /// message that leaves the original in place (`replace_original: false`). No timeout of
    /// its own.
    ///
    /// This is slack-morphism's `respond_to_event`, one level down: that call posts its
    /// `SlackApiPostWebhookMessageRequest` as JSON through the client's connector, with no
    /// token and the URL redacted in its logs, but the request type has no `response_type`.
    /// The same request goes through the same connector here, with `response_type` beside it,
    /// so the message is ephemeral by our word rather than by Slack's default.
    pub async fn respond(&self, response_url: &str, text: &str) -> Result<(), SlackError> {
        // `reqwest::Url` is the `url` crate's type, which slack-morphism takes.
        let url = reqwest::Url::parse(response_url)
            .map_err(|e| SlackError::Rejected(format!("invalid response_url: {e}")))?;
        let message = SlackApiPostWebhookMessageRequest::new(
            SlackMessageContent::new().with_text(text.to_owned()),
        )
        .with_replace_original(false);
        let body = FollowUp {
            message: &message,
            response_type: SlackMessageResponseType::Ephemeral,
        };
        let span = tracing::debug_span!("Slack response_url");
        let context = SlackClientApiCallContext {
            rate_control_params: None,
            token: None,
            tracing_span: &span,
            // A response_url is a bearer credential for five replies: never logged whole.
            is_sensitive_url: true,
        };
        let posted: Result<SlackApiPostWebhookMessageResponse, SlackClientError> = self
            .client
            .http_api
            .connector
            .http_post_uri(url, &body, context)
            .await;
        posted.map(drop).map_err(|e| classify(&e))
    }
}

/// A failed group lookup as a person reads it, the texts the command's refusal shows.
fn lookup_error(err: &SlackClientError) -> String {
    match err {
        SlackClientError::ApiError(e) => one_line(&e.code),
        SlackClientError::RateLimitError(e) => match &e.code {
            Some(code) => one_line(code),
            None => "Slack answered HTTP 429".to_owned(),
        },
        SlackClientError::HttpError(e) => {
            format!("Slack answered HTTP {}", e.status_code.as_u16())
        }
        // A 200 whose JSON is not a users list (nor an error).
        SlackClientError::ProtocolError(_) => "Slack answered HTTP 200".to_owned(),
        other => match classify(other) {
            SlackError::Unavailable(why) | SlackError::Rejected(why) => {
                format!("Slack unreachable ({why})")
            }
            limited @ SlackError::RateLimited { .. } => limited.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_urls_are_refused_and_debug_shows_only_the_base() {
        let link = SlackLink::new("http://127.0.0.1:1/api/").expect("link");
        assert_eq!(link.api_url(), "http://127.0.0.1:1/api");
        let dbg = format!("{link:?}");
        assert!(dbg.contains("http://127.0.0.1:1/api\""), "{dbg}");
        assert!(SlackLink::new("ftp://x").is_err());
    }

    #[test]
    fn a_follow_up_is_ephemeral_and_keeps_the_original() {
        let message = SlackApiPostWebhookMessageRequest::new(
            SlackMessageContent::new().with_text("a &lt;b&gt;".to_owned()),
        )
        .with_replace_original(false);
        let body = FollowUp {
            message: &message,
            response_type: SlackMessageResponseType::Ephemeral,
        };
        assert_eq!(
            serde_json::to_value(&body).expect("serializes"),
            serde_json::json!({
                "text": "a &lt;b&gt;",
                "replace_original": false,
                "response_type": "ephemeral",
            })
        );
    }

    #[tokio::test]
    async fn an_unreachable_slack_is_said_so() {
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let link = SlackLink::new("http://127.0.0.1:1/api").expect("link");
        let err = link
            .usergroup_members(&SecretString::from("xoxb-secret-123"), "S1")
            .await
            .expect_err("nothing listens");
        assert!(err.starts_with("Slack unreachable ("), "{err}");
        assert!(!err.contains("xoxb-secret-123"), "{err}");
        let err = link
            .respond("http://127.0.0.1:1/response/1", "hi")
            .await
            .expect_err("nothing listens");
        assert!(err.is_retryable(), "{err}");
        let err = link.respond("not a url", "hi").await.expect_err("bad url");
        assert!(!err.is_retryable(), "{err}");
    }
}
