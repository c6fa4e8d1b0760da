//! `docker_list`: every container whose name matches a pattern, with its state, restarts and
//! memory, for checks that cover a whole family (the runbook's daily `docker ps` and
//! `docker stats` of all K2 containers) rather than one target.
//!
//! Read-only. Only containers the responder's allow-list permits are listed, so a broad
//! pattern cannot show what the responder may not look at.

use async_trait::async_trait;
use bollard::query_parameters::{ListContainersOptionsBuilder, StatsOptionsBuilder};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{docker_error, inspect, memory_usage, HumanDuration};
use crate::actions::{ActionCtx, ActionError, StepEnv, StepKind, StepOutput};
use crate::template::Tmpl;

/// Lists the containers whose whole name matches `name`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct List {
    /// A regex over whole container names, e.g. `k2-.*`.
    pub name: Tmpl,
    /// How far back a start counts as a recent restart (runbook: daily, so 24h).
    #[serde(default = "default_since")]
    pub since: HumanDuration,
}

fn default_since() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(24 * 3600))
}

/// A start this long after creation is a restart, not the container's first start.
const FIRST_START_GRACE: i64 = 60;

/// One listed container.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listed {
    /// Its name.
    pub name: String,
    /// `running`, `exited`, `restarting`, ... (`unknown` when it vanished while listed).
    pub state: String,
    /// Whether it runs.
    pub running: bool,
    /// Restarts by its restart policy.
    pub restart_count: i64,
    /// When it last started (RFC 3339).
    pub started_at: String,
    /// Whether it started again within `since` (a policy restart, or a start well after it
    /// was created, as `docker restart` and `docker compose restart` do).
    pub restarted: bool,
    /// Memory use as `docker stats` shows it, while running (`null` otherwise).
    pub memory_percent: Option<f64>,
}

/// The typed outputs of [`List`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListOutput {
    /// Every matching container, by name.
    pub containers: Vec<Listed>,
    /// How many matched.
    pub count: usize,
    /// How many run.
    pub running: usize,
    /// The names of those that do not run.
    pub not_running: Vec<String>,
    /// The names of those restarted within `since`.
    pub restarted: Vec<String>,
    /// The highest memory use among those running (0 when none runs).
    pub max_memory_percent: f64,
}

const OUTPUTS: &[&str] = &[
    "containers",
    "count",
    "running",
    "not_running",
    "restarted",
    "max_memory_percent",
];

/// The names (without Docker's leading `/`) and creation times (Unix seconds) of every
/// container, running or not, whose name `keep` accepts; sorted by name.
///
/// # Errors
/// The engine's error when it cannot list containers.
pub(crate) async fn names(
    ctx: &ActionCtx,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<(String, i64)>, ActionError> {
    let options = ListContainersOptionsBuilder::new().all(true).build();
    let listed =
        (ctx.docker.list_containers(Some(options)).await).map_err(|e| docker_error("(list)", e))?;
    let mut wanted: Vec<(String, i64)> = listed
        .iter()
        .flat_map(|c| {
            let created = c.created.unwrap_or(0);
            c.names.iter().flatten().map(move |n| (n, created))
        })
        .map(|(n, created)| (n.trim_start_matches('/').to_owned(), created))
        .filter(|(n, _)| keep(n))
        .collect();
    wanted.sort();
    wanted.dedup_by(|a, b| a.0 == b.0);
    Ok(wanted)
}

/// One stats sample's memory use, as `docker stats` shows it (rounded to 0.1), if any.
pub(crate) async fn memory_percent(ctx: &ActionCtx, name: &str) -> Option<f64> {
    let options = StatsOptionsBuilder::default()
        .stream(false)
        .one_shot(true)
        .build();
    let sample = ctx.docker.stats(name, Some(options)).next().await?.ok()?;
    let mem = memory_usage(sample.memory_stats.as_ref()?)?;
    Some((mem.percent * 10.0).round() / 10.0)
}

/// Whether a container created at `created` and last started at `started_at` restarted
/// within `since` of `now`. Pure.
fn restarted(
    started_at: &str,
    created: i64,
    restart_count: i64,
    since: std::time::Duration,
    now: OffsetDateTime,
) -> bool {
    let Ok(started) = OffsetDateTime::parse(started_at, &Rfc3339) else {
        return false;
    };
    let recent = now - started <= since;
    let again = restart_count > 0 || started.unix_timestamp() - created > FIRST_START_GRACE;
    recent && again
}

async fn describe(ctx: &ActionCtx, name: &str, created: i64, since: HumanDuration) -> Listed {
    let Ok(state) = inspect(ctx, name).await else {
        // Removed between the list and the inspect: say so rather than fail the whole list.
        return Listed {
            name: name.to_owned(),
            state: "unknown".to_owned(),
            running: false,
            restart_count: 0,
            started_at: String::new(),
            restarted: false,
            memory_percent: None,
        };
    };
    let memory_percent = match state.running {
        true => memory_percent(ctx, name).await,
        false => None,
    };
    let now = OffsetDateTime::now_utc();
    Listed {
        restarted: restarted(
            &state.started_at,
            created,
            state.restart_count,
            since.0,
            now,
        ),
        name: name.to_owned(),
        state: state.status,
        running: state.running,
        restart_count: state.restart_count,
        started_at: state.started_at,
        memory_percent,
    }
}

/// Sums up the listed containers. Pure.
fn summarize(containers: Vec<Listed>) -> ListOutput {
    let names = |keep: fn(&Listed) -> bool| -> Vec<String> {
        (containers.iter().filter(|c| keep(c)))
            .map(|c| c.name.clone())
            .collect()
    };
    ListOutput {
        count: containers.len(),
        running: containers.iter().filter(|c| c.running).count(),
        not_running: names(|c| !c.running),
        restarted: names(|c| c.restarted),
        max_memory_percent: (containers.iter().filter_map(|c| c.memory_percent))
            .fold(0.0, f64::max),
        containers,
    }
}

#[async_trait]
impl StepKind for List {
    fn name(&self) -> &'static str {
        "docker_list"
    }

    fn outputs(&self) -> &'static [&'static str] {
        OUTPUTS
    }

    fn templates_mut(&mut self) -> Vec<(&'static str, &mut Tmpl)> {
        vec![("name", &mut self.name)]
    }

    fn plan(&self, env: &StepEnv<'_>) -> Result<String, ActionError> {
        Ok(format!(
            "list containers matching {}",
            env.render(&self.name)?
        ))
    }

    async fn run(&self, ctx: &ActionCtx, env: &StepEnv<'_>) -> Result<StepOutput, ActionError> {
        let pattern = env.render(&self.name)?;
        let re = crate::pattern::anchored(&pattern)
            .map_err(|e| ActionError::Failed(format!("name {pattern:?} is not a regex: {e}")))?;
        let found = names(ctx, |n| re.is_match(n) && env.allow.permits(n)).await?;
        let described = found
            .iter()
            .map(|(name, created)| describe(ctx, name, *created, self.since));
        let typed = summarize(futures::future::join_all(described).await);
        let mut summary = format!(
            "{} containers matching {pattern}, {} running",
            typed.count, typed.running
        );
        if !typed.not_running.is_empty() {
            summary.push_str(&format!("; not running: {}", typed.not_running.join(", ")));
        }
        if !typed.restarted.is_empty() {
            summary.push_str(&format!(
                "; restarted within {}: {}",
                self.since,
                typed.restarted.join(", ")
            ));
        }
        summary.push_str(&format!(
            "; memory at most {:.1}%",
            typed.max_memory_percent
        ));
        Ok(StepOutput::from_typed(&typed, summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_restart_is_a_recent_start_after_the_first() {
        let now = datetime!(2026-12-04 08:00 UTC);
        let day = std::time::Duration::from_secs(86_400);
        let created = datetime!(2026-11-01 00:00 UTC).unix_timestamp();
        // (started_at, created, restart_count, restarted)
        let cases = [
            ("2026-12-04T02:00:00.123456789Z", created, 0, true),
            ("2026-12-02T02:00:00Z", created, 3, false),
            ("2026-12-04T07:59:00Z", created, 0, true),
            // Created and started in the window: new, not restarted.
            (
                "2026-12-04T07:00:10Z",
                datetime!(2026-12-04 07:00 UTC).unix_timestamp(),
                0,
                false,
            ),
            // ...unless its restart policy restarted it.
            (
                "2026-12-04T07:00:10Z",
                datetime!(2026-12-04 07:00 UTC).unix_timestamp(),
                1,
                true,
            ),
            ("0001-01-01T00:00:00Z", created, 0, false),
            ("", created, 0, false),
        ];
        for (started, created, count, want) in cases {
            assert_eq!(
                restarted(started, created, count, day, now),
                want,
                "{started}"
            );
        }
    }

    #[test]
    fn the_summary_names_the_stopped_and_restarted_and_keys_equal_outputs() {
        let c = |name: &str, running: bool, restarted: bool, mem: Option<f64>| Listed {
            name: name.into(),
            state: if running { "running" } else { "exited" }.into(),
            running,
            restart_count: 0,
            started_at: String::new(),
            restarted,
            memory_percent: mem,
        };
        let out = summarize(vec![
            c("k2-a", true, false, Some(93.1)),
            c("k2-b", false, false, None),
            c("k2-c", true, true, Some(12.0)),
        ]);
        assert_eq!((out.count, out.running), (3, 2));
        assert_eq!(out.not_running, ["k2-b"]);
        assert_eq!(out.restarted, ["k2-c"]);
        assert!((out.max_memory_percent - 93.1).abs() < 1e-9);
        let fields = StepOutput::from_typed(&out, String::new()).fields;
        let mut got: Vec<&str> = fields.keys().map(String::as_str).collect();
        let mut want = OUTPUTS.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(summarize(Vec::new()).max_memory_percent, 0.0);
    }
}
