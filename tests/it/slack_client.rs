//! `SlackWebApi` against the fake Slack: the happy path of one incident thread, and how every
//! kind of failure is classified (and that the token never leaks into Debug or error texts).

use std::time::Duration;

use alert_responder::notify::slack::{ChatApi, SlackError, SlackWebApi};
use secrecy::SecretString;

use crate::support::fake_slack::{FakeSlack, INCIDENTS_ID};

const TOKEN: &str = "xoxb-test-0123456789-secret";

fn client(api_url: &str, token: &str) -> SlackWebApi {
    SlackWebApi::new(api_url, SecretString::from(token)).expect("build client")
}

/// Asserts the token appears in neither the Display nor the Debug of `err`.
fn assert_no_token(err: &SlackError) {
    let shown = format!("{err} / {err:?}");
    assert!(!shown.contains(TOKEN), "token leaked: {shown}");
    assert!(!shown.contains('\n'), "multi-line error: {shown}");
}

#[tokio::test]
async fn post_reply_in_thread_then_update() {
    let slack = FakeSlack::start(TOKEN).await;
    let api = client(&slack.api_url(), TOKEN);

    let root = api
        .post_message("#incidents", "*FIRING* k2-x memory 94%", None)
        .await
        .expect("post root");
    // Slack answers with the channel ID, which chat.update needs.
    assert_eq!(root.channel, INCIDENTS_ID);

    let reply = api
        .post_message(&root.channel, "restarted `k2-x`", Some(&root.ts))
        .await
        .expect("reply in thread");
    assert_ne!(reply.ts, root.ts);
    assert!(
        reply.ts > root.ts,
        "ts must increase: {} then {}",
        root.ts,
        reply.ts
    );

    api.update_message(&root.channel, &root.ts, "*RESOLVED* k2-x")
        .await
        .expect("update root");

    let msgs = slack.messages();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].text, "*FIRING* k2-x memory 94%");
    assert_eq!(msgs[0].thread_ts, None);
    assert_eq!(msgs[1].thread_ts.as_deref(), Some(root.ts.as_str()));
    assert_eq!(msgs[1].channel, INCIDENTS_ID);

    let updates = slack.updates();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].ts, root.ts);
    assert_eq!(updates[0].text, "*RESOLVED* k2-x");
    assert_eq!(
        slack.current_text(&root.ts).as_deref(),
        Some("*RESOLVED* k2-x")
    );

    let methods: Vec<_> = slack.calls().into_iter().map(|c| c.method).collect();
    assert_eq!(
        methods,
        ["chat.postMessage", "chat.postMessage", "chat.update"]
    );
    assert_eq!(slack.requests_seen(), 3);
    assert!(
        slack
            .wait_for(|calls| calls.len() == 3, Duration::from_secs(1))
            .await
    );
}

#[tokio::test]
async fn http_429_is_rate_limited_with_retry_after() {
    let slack = FakeSlack::start(TOKEN).await;
    let api = client(&slack.api_url(), TOKEN);
    slack.rate_limit_next(1, 2);

    let err = api
        .post_message("#incidents", "hello", None)
        .await
        .expect_err("rate limited");
    assert_eq!(
        err,
        SlackError::RateLimited {
            retry_after: Some(Duration::from_secs(2))
        }
    );
    assert!(err.is_retryable());
    assert_no_token(&err);
    assert!(slack.calls().is_empty(), "a refused call is not recorded");

    // Only one request was throttled, and the client did not retry on its own.
    assert_eq!(slack.requests_seen(), 1);
    api.post_message("#incidents", "hello", None)
        .await
        .expect("next call goes through");
    assert_eq!(slack.messages().len(), 1);
}

#[tokio::test]
async fn http_500_and_503_are_unavailable() {
    let slack = FakeSlack::start(TOKEN).await;
    let api = client(&slack.api_url(), TOKEN);

    slack.fail_next(1);
    let err = api
        .post_message("#incidents", "hello", None)
        .await
        .expect_err("500");
    assert!(
        matches!(&err, SlackError::Unavailable(s) if s.contains("500")),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_no_token(&err);

    slack.set_down(true);
    let err = api
        .update_message(INCIDENTS_ID, "1764210000.000100", "x")
        .await
        .expect_err("503");
    assert!(
        matches!(&err, SlackError::Unavailable(s) if s.contains("503")),
        "{err:?}"
    );
    slack.set_down(false);

    assert!(slack.calls().is_empty());
    assert_eq!(slack.requests_seen(), 2);
}

#[tokio::test]
async fn wrong_token_is_rejected_invalid_auth() {
    let slack = FakeSlack::start(TOKEN).await;
    let api = client(&slack.api_url(), "xoxb-wrong-token");

    let err = api
        .post_message("#incidents", "hello", None)
        .await
        .expect_err("invalid_auth");
    assert_eq!(err, SlackError::Rejected("invalid_auth".to_owned()));
    assert!(!err.is_retryable());
    assert!(!format!("{err} {err:?}").contains("xoxb-wrong-token"));
    assert!(slack.calls().is_empty());
}

#[tokio::test]
async fn unknown_channel_is_rejected_channel_not_found() {
    let slack = FakeSlack::start(TOKEN).await;
    let api = client(&slack.api_url(), TOKEN);

    let err = api
        .post_message("#no-such-channel", "hello", None)
        .await
        .expect_err("channel_not_found");
    assert_eq!(err, SlackError::Rejected("channel_not_found".to_owned()));
    assert_no_token(&err);

    // Channels added to the fake resolve to their ID.
    let ops = slack.add_channel("#ops");
    let posted = api
        .post_message("#ops", "hello", None)
        .await
        .expect("known channel");
    assert_eq!(posted.channel, ops);
}

#[tokio::test]
async fn unknown_thread_and_message_are_rejected() {
    let slack = FakeSlack::start(TOKEN).await;
    let api = client(&slack.api_url(), TOKEN);

    let err = api
        .post_message("#incidents", "reply", Some("1700000000.000001"))
        .await
        .expect_err("thread_not_found");
    assert_eq!(err, SlackError::Rejected("thread_not_found".to_owned()));

    let err = api
        .update_message(INCIDENTS_ID, "1700000000.000001", "new")
        .await
        .expect_err("message_not_found");
    assert_eq!(err, SlackError::Rejected("message_not_found".to_owned()));
    assert!(slack.calls().is_empty());
    assert_eq!(slack.requests_seen(), 2);
}

#[tokio::test]
async fn server_not_listening_is_unavailable() {
    // Bind then drop, so the port is (almost certainly) closed.
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let api = client(&format!("http://{addr}/api"), TOKEN);

    let err = api
        .post_message("#incidents", "hello", None)
        .await
        .expect_err("nothing listening");
    assert!(matches!(err, SlackError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());
    assert_no_token(&err);
}

#[tokio::test]
async fn token_never_in_debug() {
    let slack = FakeSlack::start(TOKEN).await;
    let api = client(&slack.api_url(), TOKEN);
    let shown = format!("{api:?} {api:#?}");
    assert!(!shown.contains(TOKEN), "{shown}");
    // ChatApi is usable as a trait object (the outbox holds one).
    let dyn_api: &dyn ChatApi = &api;
    assert!(!format!("{dyn_api:?}").contains(TOKEN));
}

#[tokio::test]
async fn stalled_call_times_out_as_unavailable() {
    let slack = FakeSlack::start(TOKEN).await;
    let api = client(&slack.api_url(), TOKEN).with_timeout(Duration::from_millis(300));
    slack.stall_next(1);

    let err = api
        .post_message("#incidents", "hello", None)
        .await
        .expect_err("timed out");
    assert_eq!(err, SlackError::Unavailable("timed out".to_owned()));
    assert!(slack.calls().is_empty());

    // The client is still usable after a timeout.
    api.post_message("#incidents", "hello", None)
        .await
        .expect("next call goes through");
    assert_eq!(slack.messages().len(), 1);
}

#[tokio::test]
async fn fake_accepts_form_bodies_and_token_in_body_like_slack() {
    let slack = FakeSlack::start(TOKEN).await;
    let http = reqwest::Client::new();
    let url = format!("{}/chat.postMessage", slack.api_url());
    let form = |body: String| {
        http.post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    };

    let ok: serde_json::Value = form(format!(
        "token={TOKEN}&channel=%23incidents&text=memory+94%25+on+%60k2-x%60"
    ))
    .send()
    .await
    .expect("send")
    .json()
    .await
    .expect("json");
    assert_eq!(ok["ok"], true, "{ok}");
    assert_eq!(ok["channel"], INCIDENTS_ID);
    assert_eq!(slack.messages()[0].text, "memory 94% on `k2-x`");

    let no_auth: serde_json::Value = form("channel=incidents&text=hi".to_owned())
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(
        no_auth,
        serde_json::json!({"ok": false, "error": "not_authed"})
    );
    assert_eq!(slack.messages().len(), 1);
    assert_eq!(slack.requests_seen(), 2);
}
