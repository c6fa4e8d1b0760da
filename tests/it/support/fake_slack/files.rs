//! Slack's external file upload flow, in the fake: `files.getUploadURLExternal` (`filename`,
//! `length`) answers an upload URL on this server and a file id; a POST of the bytes there is
//! answered `OK - <length>`; `files.completeUploadExternal` (`files=[{id, title}]`,
//! `channel_id`, `thread_ts`) shares the uploaded files in the thread. Until that last call
//! nothing is shared, as in Slack. Each leg can be scripted to answer 429 or 500.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{slack_error, FakeSlackState};

/// A file shared in a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFile {
    /// The channel ID.
    pub channel: String,
    /// The thread it was shared in.
    pub thread_ts: Option<String>,
    /// Its name, as given to `files.getUploadURLExternal`.
    pub filename: String,
    /// Its title, as given to `files.completeUploadExternal`.
    pub title: String,
    /// The bytes uploaded.
    pub bytes: Vec<u8>,
}

/// A scripted answer to one leg's next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegFault {
    /// 429 with `Retry-After: n`.
    RateLimited(u64),
    /// 500.
    ServerError,
}

/// The legs, as scripts name them.
pub const GET_URL: &str = "files.getUploadURLExternal";
/// The POST of the bytes to the upload URL.
pub const UPLOAD: &str = "upload";
/// See [`GET_URL`].
pub const COMPLETE: &str = "files.completeUploadExternal";

#[derive(Debug, Default)]
pub(super) struct Uploads {
    /// file id -> (filename, declared length, bytes once uploaded).
    pending: HashMap<String, (String, usize, Option<Vec<u8>>)>,
    pub(super) shared: Vec<SharedFile>,
    next: u64,
    pub(super) faults: HashMap<String, VecDeque<LegFault>>,
}

/// The scripted fault of `leg`'s next call, if one is queued.
pub(super) fn leg_fault(st: &mut FakeSlackState, leg: &str) -> Option<Response> {
    let fault = st.uploads.faults.get_mut(leg)?.pop_front()?;
    Some(match fault {
        LegFault::RateLimited(secs) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, secs.to_string())],
            Json(json!({"ok": false, "error": "ratelimited"})),
        )
            .into_response(),
        LegFault::ServerError => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal server error").into_response()
        }
    })
}

/// A `files.*` Web API call, its token already checked.
pub(super) fn call(
    st: &mut FakeSlackState,
    method: &str,
    args: &HashMap<String, String>,
) -> Response {
    match method {
        GET_URL => {
            let filename = args.get("filename").filter(|f| !f.is_empty());
            let length = args.get("length").and_then(|l| l.parse::<usize>().ok());
            let (Some(filename), Some(length)) = (filename, length) else {
                return slack_error("invalid_arguments");
            };
            if length == 0 {
                return slack_error("invalid_arguments");
            }
            st.uploads.next += 1;
            let id = format!("F0FAKE{:04}", st.uploads.next);
            let url = format!("{}/upload/{id}", st.base);
            st.uploads
                .pending
                .insert(id.clone(), (filename.clone(), length, None));
            Json(json!({"ok": true, "upload_url": url, "file_id": id})).into_response()
        }
        COMPLETE => complete(st, args),
        _ => slack_error("unknown_method"),
    }
}

fn complete(st: &mut FakeSlackState, args: &HashMap<String, String>) -> Response {
    let files: Vec<Value> = args
        .get("files")
        .and_then(|f| serde_json::from_str(f).ok())
        .unwrap_or_default();
    if files.is_empty() {
        return slack_error("invalid_arguments");
    }
    let Some(channel) = args
        .get("channel_id")
        .and_then(|c| st.channels.get(c))
        .cloned()
    else {
        return slack_error("channel_not_found");
    };
    let thread_ts = args.get("thread_ts").filter(|t| !t.is_empty()).cloned();
    if let Some(parent) = &thread_ts {
        if st.posted.get(parent).is_none_or(|(c, _, _)| *c != channel) {
            return slack_error("thread_not_found");
        }
    }
    let mut done = Vec::new();
    for file in &files {
        let id = file["id"].as_str().unwrap_or_default();
        // Completed only once every byte declared arrived.
        let uploaded = st
            .uploads
            .pending
            .get(id)
            .is_some_and(|(_, length, bytes)| bytes.as_ref().is_some_and(|b| b.len() == *length));
        if !uploaded {
            return slack_error("file_not_found");
        }
        done.push((
            id.to_owned(),
            file["title"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    let mut answer = Vec::new();
    for (id, title) in done {
        let (filename, _, bytes) = st.uploads.pending.remove(&id).unwrap();
        st.uploads.shared.push(SharedFile {
            channel: channel.clone(),
            thread_ts: thread_ts.clone(),
            filename,
            title: title.clone(),
            bytes: bytes.unwrap_or_default(),
        });
        answer.push(json!({"id": id, "title": title}));
    }
    Json(json!({"ok": true, "files": answer})).into_response()
}

/// The upload URL: takes the bytes of a file `files.getUploadURLExternal` announced.
pub(super) async fn upload(
    State(state): State<Arc<Mutex<FakeSlackState>>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let mut st = FakeSlackState::lock(&state);
    st.requests_seen += 1;
    if let Some(response) = leg_fault(&mut st, UPLOAD) {
        return response;
    }
    let Some((_, _, bytes)) = st.uploads.pending.get_mut(&id) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    *bytes = Some(body.to_vec());
    (StatusCode::OK, format!("OK - {}", body.len())).into_response()
}
