//! Spark step kinds: `spark_master_status`, the runbook's "Check Spark UI" (workers ALIVE,
//! the application running, its duration; red flags: a DEAD worker, a FAILED application, a
//! duration reset) read from the standalone master's `/json/`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::docker::HumanDuration;
use super::{api, ActionCtx, ActionError, StepEnv, StepKind, StepOutput};
use crate::template::Tmpl;

/// Reads the Spark standalone master's state: live workers and one application.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterStatus {
    /// The master's web UI base URL, e.g. `http://k2-spark-master:8080`.
    pub url: Tmpl,
    /// The application name to look for among the active applications (case-insensitive);
    /// without it, only the cluster as a whole is read.
    #[serde(default)]
    pub app: Option<Tmpl>,
    /// How many ALIVE workers the cluster should have.
    #[serde(default = "default_expected_workers")]
    pub expected_workers: u32,
    /// How far back a FAILED application or a (re)started one counts (runbook: daily, 24h).
    #[serde(default = "default_since")]
    pub since: HumanDuration,
}

fn default_since() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(24 * 3600))
}

/// The runbook: "Workers tab: 2 workers registered, both ALIVE".
fn default_expected_workers() -> u32 {
    2
}

/// The typed outputs of [`MasterStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MasterStatusOutput {
    /// Workers in state ALIVE.
    pub workers_alive: u32,
    /// The `expected_workers` field.
    pub workers_expected: u32,
    /// Whether at least the expected number of workers are ALIVE.
    pub workers_ok: bool,
    /// Whether the application is among the active applications.
    pub app_present: bool,
    /// Its state (`RUNNING`, `WAITING`, ...), `""` when absent.
    pub app_state: String,
    /// How long it has been running, in ms (0 when absent); a reset means it restarted.
    pub app_duration_ms: u64,
    /// When it started (RFC 3339), `""` when absent.
    pub app_started_at: String,
    /// Active applications in state RUNNING, this one or not.
    pub apps_running: u32,
    /// Workers in state DEAD.
    pub workers_dead: u32,
    /// Completed applications that ended FAILED within `since`, by name.
    pub apps_failed: Vec<String>,
    /// RUNNING applications that started within `since` (their duration was reset: they
    /// restarted, or were deployed), by name.
    pub apps_restarted: Vec<String>,
}

const OUTPUTS: &[&str] = &[
    "workers_alive",
    "workers_expected",
    "workers_ok",
    "app_present",
    "app_state",
    "app_duration_ms",
    "app_started_at",
    "apps_running",
    "workers_dead",
    "apps_failed",
    "apps_restarted",
];

/// The parts of the master's `/json/` this step reads; the rest is ignored, since Spark
/// versions add fields freely.
#[derive(Debug, Deserialize)]
struct MasterJson {
    workers: Vec<WorkerJson>,
    activeapps: Vec<AppJson>,
    #[serde(default)]
    completedapps: Vec<AppJson>,
}

#[derive(Debug, Deserialize)]
struct WorkerJson {
    state: String,
}

#[derive(Debug, Deserialize)]
struct AppJson {
    name: String,
    state: String,
    starttime: i64,
    duration: u64,
}

/// Parses the master's `/json/` body.
fn parse(body: &str) -> Result<MasterJson, String> {
    serde_json::from_str(body).map_err(|e| format!("not a Spark master /json/ answer: {e}"))
}

/// The moment a state read at `now_ms` looks back to, and `expected` ALIVE workers.
#[derive(Debug, Clone, Copy)]
struct Window {
    now_ms: i64,
    since_ms: i64,
    expected: u32,
}

/// What the master's state says about `app`, plus the last completed state of an absent app
/// (e.g. `FAILED`) for the summary.
fn summarize(
    master: &MasterJson,
    app: &str,
    window: Window,
) -> (MasterStatusOutput, Option<String>) {
    let expected = window.expected;
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let workers_in =
        |state: &str| count(master.workers.iter().filter(|w| w.state == state).count());
    let workers_alive = workers_in("ALIVE");
    let from = window.now_ms.saturating_sub(window.since_ms);
    let ended = |a: &AppJson| {
        a.starttime
            .saturating_add(i64::try_from(a.duration).unwrap_or(0))
    };
    let mut apps_failed: Vec<String> = (master.completedapps.iter())
        .filter(|a| a.state == "FAILED" && ended(a) >= from)
        .map(|a| a.name.clone())
        .collect();
    apps_failed.dedup();
    let apps_restarted = (master.activeapps.iter())
        .filter(|a| a.state == "RUNNING" && a.starttime >= from)
        .map(|a| a.name.clone())
        .collect();
    let named = |a: &&AppJson| a.name.eq_ignore_ascii_case(app);
    // A restarted app can briefly appear twice (old RUNNING, new WAITING): report RUNNING.
    let found = master
        .activeapps
        .iter()
        .filter(named)
        .max_by_key(|a| (a.state == "RUNNING", a.starttime));
    let completed = master
        .completedapps
        .iter()
        .filter(named)
        .max_by_key(|a| a.starttime)
        .map(|a| a.state.clone());
    let out = MasterStatusOutput {
        workers_alive,
        workers_expected: expected,
        workers_ok: workers_alive >= expected,
        app_present: found.is_some(),
        app_state: found.map(|a| a.state.clone()).unwrap_or_default(),
        app_duration_ms: found.map(|a| a.duration).unwrap_or(0),
        app_started_at: found
            .map(|a| api::rfc3339_millis(a.starttime))
            .unwrap_or_default(),
        apps_running: count(
            master
                .activeapps
                .iter()
                .filter(|a| a.state == "RUNNING")
                .count(),
        ),
        workers_dead: workers_in("DEAD"),
        apps_failed,
        apps_restarted,
    };
    (out, completed)
}

#[async_trait]
impl StepKind for MasterStatus {
    fn name(&self) -> &'static str {
        "spark_master_status"
    }

    fn outputs(&self) -> &'static [&'static str] {
        OUTPUTS
    }

    fn templates_mut(&mut self) -> Vec<(&'static str, &mut Tmpl)> {
        let mut fields = vec![("url", &mut self.url)];
        fields.extend(self.app.as_mut().map(|app| ("app", app)));
        fields
    }

    fn plan(&self, env: &StepEnv<'_>) -> Result<String, ActionError> {
        let url = api::join(&env.render(&self.url)?, "/json/");
        match &self.app {
            Some(app) => Ok(format!(
                "read Spark master {url} for workers and app {}",
                env.render(app)?
            )),
            None => Ok(format!("read Spark master {url} for workers and apps")),
        }
    }

    async fn run(&self, ctx: &ActionCtx, env: &StepEnv<'_>) -> Result<StepOutput, ActionError> {
        let url = api::join(&env.render(&self.url)?, "/json/");
        let app = match &self.app {
            Some(app) => Some(env.render(app)?),
            None => None,
        };
        let (status, body) = api::get(&ctx.http, &url, &[]).await?;
        if !status.is_success() {
            return Err(api::status_error(&url, status, &body));
        }
        let master = parse(&body).map_err(|e| ActionError::Failed(format!("GET {url}: {e}")))?;
        let window = Window {
            now_ms: time::OffsetDateTime::now_utc().unix_timestamp() * 1000,
            since_ms: i64::try_from(self.since.0.as_millis()).unwrap_or(i64::MAX),
            expected: self.expected_workers,
        };
        let (typed, completed) = summarize(&master, app.as_deref().unwrap_or(""), window);
        let app = app.unwrap_or_default();
        let app_part = if app.is_empty() {
            String::new()
        } else if typed.app_present {
            format!(
                ", app {app} {} for {}",
                typed.app_state,
                humantime::format_duration(std::time::Duration::from_secs(
                    typed.app_duration_ms / 1000
                ))
            )
        } else if let Some(state) = completed {
            format!(", app {app} not active (last run {state})")
        } else {
            format!(", app {app} not found")
        };
        let mut summary = format!(
            "workers {}/{} ALIVE{app_part}, {} apps running",
            typed.workers_alive, typed.workers_expected, typed.apps_running
        );
        if typed.workers_dead > 0 {
            summary.push_str(&format!(", {} workers DEAD", typed.workers_dead));
        }
        if !typed.apps_failed.is_empty() {
            summary.push_str(&format!(", FAILED: {}", typed.apps_failed.join(", ")));
        }
        Ok(StepOutput::from_typed(&typed, summary))
    }
}

#[cfg(test)]
mod tests;
