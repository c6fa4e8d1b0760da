//! Docker step kinds: inspect, stats, logs, exec, restart and start of one named container,
//! and the list of every container matching a pattern.
//!
//! Every kind resolves its `container` field through [`StepEnv::container`] first, so a name
//! outside the responder's allow-list is refused before any call reaches the engine. Engine
//! errors become [`ActionError::NotFound`] (HTTP 404) or a one-line [`ActionError::Docker`].

mod exec;
mod list;
mod logs;
mod state;
mod stats;

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::ActionError;

pub(crate) use exec::{run_argv, Keep, Ran};
pub use exec::{Exec, ExecOutput};
pub(crate) use list::{memory_percent, names};
pub use list::{List, ListOutput, Listed};
pub use logs::{GrepPattern, Logs, LogsOutput};
pub(crate) use state::inspect;
pub use state::{Inspect, InspectOutput, Restart, RestartOutput, Start, StartOutput};
pub use stats::{memory_usage, MemoryUsage, Stats, StatsOutput};

/// Maps a bollard error for `container` to the action error the engine records.
fn docker_error(container: &str, err: bollard::errors::Error) -> ActionError {
    match err {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        } => ActionError::NotFound(container.to_owned()),
        // Engine messages are short, but a few carry newlines; the run log wants one line.
        other => ActionError::Docker(one_line(&unreachable(&other).unwrap_or(other.to_string()))),
    }
}

/// "cannot reach the Docker engine: <cause>" when the request never got to the engine (the
/// client's own message, "client error (Connect)", does not say what happened).
fn unreachable(err: &bollard::errors::Error) -> Option<String> {
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(format!(
                "cannot reach the Docker engine (DOCKER_HOST): {io}"
            ));
        }
        source = cause.source();
    }
    None
}

/// Collapses whitespace runs (including newlines) to single spaces.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A duration written like `10s` or `5m` in YAML, parsed when the playbook loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text)
            .map(HumanDuration)
            .map_err(|e| serde::de::Error::custom(format!("invalid duration {text:?}: {e}")))
    }
}

impl std::fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// Formats a byte count the way `docker stats` does (binary units, one decimal).
pub(crate) fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    // f64 is exact enough for display; byte counts here never approach 2^53.
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_format_like_docker_stats() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(60 * 1024 * 1024), "60.0 MiB");
        assert_eq!(format_bytes(67_108_864), "64.0 MiB");
        assert_eq!(format_bytes(1536), "1.5 KiB");
    }

    #[test]
    fn errors_map_404_to_not_found_and_keep_others_on_one_line() {
        let e = bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            message: "No such container: k2-x".into(),
        };
        assert!(matches!(docker_error("k2-x", e), ActionError::NotFound(n) if n == "k2-x"));
        let e = bollard::errors::Error::DockerResponseServerError {
            status_code: 409,
            message: "container is\nnot running".into(),
        };
        match docker_error("k2-x", e) {
            ActionError::Docker(m) => assert!(!m.contains('\n') && m.contains("not running")),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn durations_parse_at_load() {
        let d: HumanDuration = serde_json::from_str("\"10m\"").unwrap();
        assert_eq!(d.0, Duration::from_secs(600));
        assert!(serde_json::from_str::<HumanDuration>("\"ten\"").is_err());
    }
}
