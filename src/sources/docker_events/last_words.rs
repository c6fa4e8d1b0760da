//! A dead container's last words: the log lines it printed in the life that just ended,
//! read from the engine within bounds (a tail of lines, a cap in bytes), for
//! [`super::corruption`].

use std::pin::pin;

use bollard::container::LogOutput;
use bollard::query_parameters::{InspectContainerOptions, LogsOptionsBuilder};
use bollard::Docker;
use futures::StreamExt;
use time::OffsetDateTime;

use super::corruption;

/// The most bytes of those lines read: a tail of lines can still be one huge line.
const LOGS_MAX_BYTES: usize = 256 * 1024;

/// The last [`corruption::LOG_TAIL`] lines container `id` printed in the life that just
/// ended (its `StartedAt` bounds the read, so an earlier life's symptom is not this death's).
pub(super) async fn last_lines(
    engine: &Docker,
    id: &str,
) -> Result<Vec<String>, bollard::errors::Error> {
    let started = engine
        .inspect_container(id, None::<InspectContainerOptions>)
        .await?
        .state
        .and_then(|s| s.started_at)
        .and_then(|t| {
            OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok()
        });
    let mut options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&corruption::LOG_TAIL.to_string());
    if let Some(started) = started {
        // The API takes i32 seconds; past 2038 clamp rather than wrap.
        options = options.since(i32::try_from(started.unix_timestamp()).unwrap_or(i32::MAX));
    }
    let mut frames = pin!(engine.logs(id, Some(options.build())));
    let mut text = String::new();
    while let Some(frame) = frames.next().await {
        let frame: LogOutput = frame?;
        text.push_str(&String::from_utf8_lossy(frame.as_ref()));
        if text.len() >= LOGS_MAX_BYTES {
            break;
        }
    }
    Ok(text.lines().map(str::to_owned).collect())
}
