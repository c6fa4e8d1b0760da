//! `docker_stats`: a container's memory use, computed exactly as `docker stats` shows it.

use async_trait::async_trait;
use bollard::models::ContainerMemoryStats;
use bollard::query_parameters::{InspectContainerOptions, StatsOptionsBuilder};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::{docker_error, format_bytes};
use crate::actions::{ActionCtx, ActionError, StepEnv, StepKind, StepOutput};
use crate::template::Tmpl;

/// Reads one stats sample and reports memory use as a percentage of the limit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    /// The container to sample.
    pub container: Tmpl,
}

/// The typed outputs of [`Stats`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsOutput {
    /// The rendered container name.
    pub container: String,
    /// Used memory as a percentage of the limit, rounded to 0.1.
    pub memory_percent: f64,
    /// Used memory without the inactive page cache, in bytes.
    pub memory_used_bytes: u64,
    /// The memory limit (the host's memory when the container has none), in bytes.
    pub memory_limit_bytes: u64,
    /// The number of processes in the container.
    pub pids: u64,
}

const OUTPUTS: &[&str] = &[
    "container",
    "memory_percent",
    "memory_used_bytes",
    "memory_limit_bytes",
    "pids",
];

/// Memory use as `docker stats` computes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryUsage {
    /// Usage minus inactive file cache, in bytes.
    pub used_bytes: u64,
    /// The cgroup limit, in bytes.
    pub limit_bytes: u64,
    /// `used / limit * 100`, or 0 when the limit is 0 (unrounded).
    pub percent: f64,
}

/// Computes memory use like docker/cli's `calculateMemUsageUnixNoCache` and
/// `calculateMemPercentUnixNoCache`; `None` when the sample carries no usage (container stopped).
pub fn memory_usage(mem: &ContainerMemoryStats) -> Option<MemoryUsage> {
    let usage = mem.usage?;
    let limit = mem.limit.unwrap_or(0);
    let stats = mem.stats.as_ref();
    let get = |key: &str| stats.and_then(|s| s.get(key)).copied();
    // cgroup v1 reports `total_inactive_file`; its presence decides the branch, as in docker/cli,
    // even when it is not below usage (then v2's key is tried, and finally plain usage).
    let used = match get("total_inactive_file") {
        Some(v) if v < usage => usage - v,
        _ => match get("inactive_file") {
            Some(v) if v < usage => usage - v,
            _ => usage,
        },
    };
    let percent = if limit == 0 {
        0.0
    } else {
        used as f64 / limit as f64 * 100.0
    };
    Some(MemoryUsage {
        used_bytes: used,
        limit_bytes: limit,
        percent,
    })
}

#[async_trait]
impl StepKind for Stats {
    fn name(&self) -> &'static str {
        "docker_stats"
    }

    fn outputs(&self) -> &'static [&'static str] {
        OUTPUTS
    }

    fn templates_mut(&mut self) -> Vec<(&'static str, &mut Tmpl)> {
        vec![("container", &mut self.container)]
    }

    fn plan(&self, env: &StepEnv<'_>) -> Result<String, ActionError> {
        Ok(format!(
            "read memory stats of {}",
            env.container(&self.container)?
        ))
    }

    async fn run(&self, ctx: &ActionCtx, env: &StepEnv<'_>) -> Result<StepOutput, ActionError> {
        let name = env.container(&self.container)?;
        // A stopped container yields an all-empty sample; say so rather than report 0%.
        let inspect = ctx
            .docker
            .inspect_container(&name, None::<InspectContainerOptions>)
            .await
            .map_err(|e| docker_error(&name, e))?;
        let running = inspect
            .state
            .as_ref()
            .and_then(|s| s.running)
            .unwrap_or(false);
        if !running {
            return Err(ActionError::Failed(format!(
                "container {name:?} is not running; no memory stats"
            )));
        }
        let options = StatsOptionsBuilder::default()
            .stream(false)
            .one_shot(true)
            .build();
        let sample = ctx
            .docker
            .stats(&name, Some(options))
            .next()
            .await
            .ok_or_else(|| ActionError::Docker("stats stream ended without a sample".into()))?
            .map_err(|e| docker_error(&name, e))?;
        let mem = sample
            .memory_stats
            .as_ref()
            .and_then(memory_usage)
            .ok_or_else(|| {
                ActionError::Failed(format!(
                    "container {name:?} reported no memory usage (it may have just stopped)"
                ))
            })?;
        let pids = sample
            .pids_stats
            .as_ref()
            .and_then(|p| p.current)
            .unwrap_or(0);
        let typed = StatsOutput {
            container: name,
            memory_percent: (mem.percent * 10.0).round() / 10.0,
            memory_used_bytes: mem.used_bytes,
            memory_limit_bytes: mem.limit_bytes,
            pids,
        };
        let summary = format!(
            "memory {:.1}% ({} of {})",
            typed.memory_percent,
            format_bytes(mem.used_bytes),
            format_bytes(mem.limit_bytes)
        );
        Ok(StepOutput::from_typed(&typed, summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shapes as the engine sends them (trimmed): cgroup v1 carries `total_*` keys, v2 does not.
    const CGROUP_V1: &str = r#"{"usage": 66060288, "max_usage": 66256896, "limit": 67108864,
        "stats": {"cache": 63176704, "inactive_file": 0, "total_inactive_file": 1146880,
                  "total_active_file": 0, "rss": 1884160}}"#;
    const CGROUP_V2: &str = r#"{"usage": 20971520, "limit": 104857600,
        "stats": {"anon": 10485760, "file": 10485760, "inactive_file": 4194304,
                  "active_file": 6291456}}"#;
    // total_inactive_file >= usage: docker/cli falls through to inactive_file, then usage.
    const V1_INACTIVE_NOT_BELOW_USAGE: &str = r#"{"usage": 1000, "limit": 4000,
        "stats": {"total_inactive_file": 1000, "inactive_file": 200}}"#;
    const V2_INACTIVE_ABOVE_USAGE: &str = r#"{"usage": 1000, "limit": 4000,
        "stats": {"inactive_file": 5000}}"#;
    const ZERO_LIMIT: &str = r#"{"usage": 1000, "limit": 0, "stats": {"inactive_file": 100}}"#;
    const NO_STATS_MAP: &str = r#"{"usage": 2048, "limit": 4096}"#;
    const STOPPED: &str = r#"{}"#;

    /// Expected (used bytes, limit bytes, percent), or `None` for no usage at all.
    type Want = Option<(u64, u64, f64)>;

    #[test]
    fn memory_usage_matches_docker_cli() {
        let cases: &[(&str, &str, Want)] = &[
            (
                "cgroup v1",
                CGROUP_V1,
                Some((66060288 - 1146880, 67108864, 96.728515625)),
            ),
            (
                "cgroup v2",
                CGROUP_V2,
                Some((20971520 - 4194304, 104857600, 16.0)),
            ),
            (
                "v1 inactive >= usage",
                V1_INACTIVE_NOT_BELOW_USAGE,
                Some((800, 4000, 20.0)),
            ),
            (
                "v2 inactive >= usage",
                V2_INACTIVE_ABOVE_USAGE,
                Some((1000, 4000, 25.0)),
            ),
            ("zero limit", ZERO_LIMIT, Some((900, 0, 0.0))),
            ("no stats map", NO_STATS_MAP, Some((2048, 4096, 50.0))),
            ("stopped", STOPPED, None),
        ];
        for (label, json, want) in cases {
            let mem: ContainerMemoryStats =
                serde_json::from_str(json).expect("fixture is valid JSON");
            let got = memory_usage(&mem).map(|m| (m.used_bytes, m.limit_bytes, m.percent));
            match (got, want) {
                (Some((u, l, p)), Some((wu, wl, wp))) => {
                    assert_eq!((u, l), (*wu, *wl), "{label}");
                    assert!((p - wp).abs() < 1e-9, "{label}: {p} != {wp}");
                }
                (None, None) => {}
                (got, want) => panic!("{label}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn output_keys_equal_outputs() {
        let typed = StatsOutput {
            container: "k2-x".into(),
            memory_percent: 1.0,
            memory_used_bytes: 1,
            memory_limit_bytes: 2,
            pids: 3,
        };
        let out = StepOutput::from_typed(&typed, String::new());
        let keys: Vec<&str> = out.fields.keys().map(String::as_str).collect();
        let mut want = OUTPUTS.to_vec();
        let mut got = keys.clone();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want);
    }
}
