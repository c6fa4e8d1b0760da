//! Checkpoint corruption, from a dead container's last words: the runbook's "Checkpoint
//! Corruption" symptoms ("checkpoint corrupted", "Unable to read checkpoint metadata") in the
//! last [`LOG_TAIL`] lines a container printed in the life that just ended.
//!
//! One death, one alert: a container that exits on its own (any exit code but 137) with a
//! symptom becomes a `CheckpointCorrupted` alert; one that exits without a symptom stays
//! what it was before (no alert: a job that stops on its own is not news by itself). A death
//! by SIGKILL (137) is the OOM path's ([`super::Deaths`]), whatever its logs say: the kernel
//! or a person killed it, so its last lines are not its own diagnosis, and one death must not
//! open two incidents.
//!
//! Reading the logs is bounded (a tail, a timeout) and only for containers the source
//! watches (`RESPONDER_OOM_CONTAINERS`). The pure parts are here; the live task reads the logs.

use time::OffsetDateTime;

use super::ContainerEvent;
use crate::alert::{Alert, Labels, Source, Status, ONE_SHOT};

/// The `alertname` of a corruption alert.
pub const ALERTNAME: &str = "CheckpointCorrupted";

/// How many of the dead container's last log lines are read.
pub const LOG_TAIL: usize = 50;

/// The runbook's symptoms, matched case-insensitively anywhere in a line.
pub const SYMPTOMS: &[&str] = &["checkpoint corrupted", "unable to read checkpoint metadata"];

/// A symptom line is cut to this many characters in the alert (it is shown in Slack).
const MAX_LINE_CHARS: usize = 300;

/// A container that died saying its checkpoint is corrupted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    /// Container ID.
    pub id: String,
    /// Container name.
    pub name: String,
    /// Image, when known.
    pub image: Option<String>,
    /// Its exit code.
    pub exit_code: i64,
    /// When it died (the `die`'s engine time): the alert's start, stable across replays.
    pub time: OffsetDateTime,
    /// The last line that shows a symptom, trimmed and bounded.
    pub line: String,
}

/// Whether a `die` with `exit_code` is one whose logs are read: the process exited on its
/// own (anything but SIGKILL, which is the OOM path's).
pub fn exited_on_its_own(exit_code: i64) -> bool {
    exit_code != super::SIGKILL_EXIT
}

/// The last of `lines` that shows a symptom, if any. Pure.
pub fn symptom<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let found = lines.into_iter().filter(|line| {
        let lower = line.to_lowercase();
        SYMPTOMS.iter().any(|s| lower.contains(s))
    });
    found
        .last()
        .map(|line| line.trim().chars().take(MAX_LINE_CHARS).collect())
}

/// The corruption `event` (a `die`) shows, given its container's last `lines`. Pure.
pub fn diagnose<'a>(
    event: &ContainerEvent,
    lines: impl IntoIterator<Item = &'a str>,
) -> Option<Corruption> {
    let super::Kind::Die { exit_code } = event.kind else {
        return None;
    };
    if !exited_on_its_own(exit_code) {
        return None;
    }
    Some(Corruption {
        id: event.id.clone(),
        name: event.name.clone(),
        image: event.image.clone(),
        exit_code,
        time: event.time,
        line: symptom(lines)?,
    })
}

/// The alert for one corruption. Pure.
pub fn to_alert(c: &Corruption) -> Alert {
    let mut labels = Labels::new();
    labels.insert("alertname".into(), ALERTNAME.into());
    labels.insert("container".into(), c.name.clone());
    // The runbook: data loss risk, P1.
    labels.insert("severity".into(), "critical".into());
    labels.insert("exit_code".into(), c.exit_code.to_string());
    if let Some(image) = &c.image {
        labels.insert("image".into(), image.clone());
    }
    let mut annotations = Labels::new();
    annotations.insert(
        "summary".into(),
        format!(
            "Container {} exited (code {}) with a corrupted checkpoint: {}",
            c.name, c.exit_code, c.line
        ),
    );
    annotations.insert("symptom".into(), c.line.clone());
    annotations.insert("container_id".into(), c.id.clone());
    annotations.insert(ONE_SHOT.into(), "true".into());
    Alert {
        source: Source::Docker,
        fingerprint: super::fnv_hex(&format!("docker/checkpoint/{}", c.name)),
        status: Status::Firing,
        labels,
        annotations,
        starts_at: c.time,
        ends_at: None,
        generator_url: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::docker_events::Kind;

    fn die(code: i64) -> ContainerEvent {
        ContainerEvent {
            id: "c0ffee".into(),
            name: "k2-bronze-binance-stream".into(),
            image: Some("k2/stream:1".into()),
            kind: Kind::Die { exit_code: code },
            time: OffsetDateTime::from_unix_timestamp(1_795_757_900).unwrap(),
        }
    }

    const LOGS: &[&str] = &[
        "INFO MicroBatchExecution: Starting query",
        "ERROR MicroBatchExecution: Query failed: checkpoint corrupted",
        "Caused by: java.io.IOException: Unable to read checkpoint metadata at /checkpoints/bronze-binance/metadata",
        "INFO ShutdownHookManager: Shutdown hook called",
    ];

    #[test]
    fn the_last_symptom_line_of_a_death_on_its_own_becomes_one_alert() {
        let c = diagnose(&die(1), LOGS.iter().copied()).unwrap();
        assert!(
            c.line
                .starts_with("Caused by: java.io.IOException: Unable to read checkpoint metadata"),
            "{}",
            c.line
        );
        let alert = to_alert(&c);
        assert_eq!(alert.labels["alertname"], ALERTNAME);
        assert_eq!(alert.labels["container"], "k2-bronze-binance-stream");
        assert_eq!(alert.labels["exit_code"], "1");
        assert_eq!(alert.annotations["symptom"], c.line);
        assert!(alert.is_one_shot());
        assert_eq!(
            alert.starts_at,
            die(1).time,
            "keyed by the death: replays are no-ops"
        );
        assert_eq!(alert.fingerprint, to_alert(&c).fingerprint);
    }

    #[test]
    fn no_symptom_or_a_sigkill_is_not_a_corruption() {
        assert!(diagnose(&die(1), LOGS[..1].iter().copied()).is_none());
        assert!(
            diagnose(&die(137), LOGS.iter().copied()).is_none(),
            "137 is the OOM path's"
        );
        assert!(
            symptom(["CHECKPOINT CORRUPTED somewhere"]).is_some(),
            "case-insensitive"
        );
        let long = format!("checkpoint corrupted {}", "x".repeat(1000));
        assert_eq!(
            symptom([long.as_str()]).unwrap().chars().count(),
            MAX_LINE_CHARS
        );
    }
}
