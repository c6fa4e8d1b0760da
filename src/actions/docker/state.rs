//! `docker_inspect`, `docker_restart` and `docker_start`: a container's lifecycle state.

use async_trait::async_trait;
use bollard::models::{ContainerInspectResponse, HealthStatusEnum};
use bollard::query_parameters::{
    InspectContainerOptions, RestartContainerOptionsBuilder, StartContainerOptions,
};
use serde::{Deserialize, Serialize};

use super::{docker_error, HumanDuration};
use crate::actions::{ActionCtx, ActionError, StepEnv, StepKind, StepOutput};
use crate::template::Tmpl;

/// Reads a container's state: status, restart count, OOMKilled, exit code, health.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inspect {
    /// The container to inspect.
    pub container: Tmpl,
}

/// The typed outputs of [`Inspect`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InspectOutput {
    /// The rendered container name.
    pub container: String,
    /// `running`, `exited`, `restarting`, ...
    pub status: String,
    /// Whether the container is running.
    pub running: bool,
    /// Whether the engine is restarting it under its restart policy.
    pub restarting: bool,
    /// Whether the kernel OOM killer ended its last run.
    pub oom_killed: bool,
    /// The exit code of its last run (0 while it has never exited).
    pub exit_code: i64,
    /// How often the engine restarted it under its restart policy.
    pub restart_count: i64,
    /// When it last started (RFC 3339).
    pub started_at: String,
    /// When it last stopped (RFC 3339; the zero time if never).
    pub finished_at: String,
    /// The host PID of its main process (0 when stopped).
    pub pid: i64,
    /// `healthy`, `unhealthy`, `starting`, or `none` without a health check.
    pub health: String,
    /// The image it was created from, as named at creation.
    pub image: String,
}

const INSPECT_OUTPUTS: &[&str] = &[
    "container",
    "status",
    "running",
    "restarting",
    "oom_killed",
    "exit_code",
    "restart_count",
    "started_at",
    "finished_at",
    "pid",
    "health",
    "image",
];

impl InspectOutput {
    /// Flattens the engine's optional-everywhere response into plain values.
    fn from_response(container: String, resp: &ContainerInspectResponse) -> Self {
        let state = resp.state.clone().unwrap_or_default();
        let health = match state.health.as_ref().and_then(|h| h.status) {
            Some(HealthStatusEnum::HEALTHY) => "healthy",
            Some(HealthStatusEnum::UNHEALTHY) => "unhealthy",
            Some(HealthStatusEnum::STARTING) => "starting",
            // No health check configured: the engine omits Health or reports "none"/"".
            _ => "none",
        };
        // Config.Image is the name the container was created with; `Image` is only the ID.
        let image = resp
            .config
            .as_ref()
            .and_then(|c| c.image.clone())
            .or_else(|| resp.image.clone())
            .unwrap_or_default();
        Self {
            container,
            status: state.status.map(|s| s.to_string()).unwrap_or_default(),
            running: state.running.unwrap_or(false),
            restarting: state.restarting.unwrap_or(false),
            oom_killed: state.oom_killed.unwrap_or(false),
            exit_code: state.exit_code.unwrap_or(0),
            restart_count: resp.restart_count.unwrap_or(0),
            started_at: state.started_at.unwrap_or_default(),
            finished_at: state.finished_at.unwrap_or_default(),
            pid: state.pid.unwrap_or(0),
            health: health.to_owned(),
            image,
        }
    }
}

/// Inspects `name`, mapping a missing container to [`ActionError::NotFound`].
pub(crate) async fn inspect(ctx: &ActionCtx, name: &str) -> Result<InspectOutput, ActionError> {
    let resp = ctx
        .docker
        .inspect_container(name, None::<InspectContainerOptions>)
        .await
        .map_err(|e| docker_error(name, e))?;
    Ok(InspectOutput::from_response(name.to_owned(), &resp))
}

#[async_trait]
impl StepKind for Inspect {
    fn name(&self) -> &'static str {
        "docker_inspect"
    }

    fn outputs(&self) -> &'static [&'static str] {
        INSPECT_OUTPUTS
    }

    fn templates_mut(&mut self) -> Vec<(&'static str, &mut Tmpl)> {
        vec![("container", &mut self.container)]
    }

    fn plan(&self, env: &StepEnv<'_>) -> Result<String, ActionError> {
        Ok(format!(
            "inspect container {}",
            env.container(&self.container)?
        ))
    }

    async fn run(&self, ctx: &ActionCtx, env: &StepEnv<'_>) -> Result<StepOutput, ActionError> {
        let name = env.container(&self.container)?;
        let typed = inspect(ctx, &name).await?;
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let summary = format!(
            "{}, restart count {}, OOMKilled {}, exit code {}{}",
            typed.status,
            typed.restart_count,
            yes_no(typed.oom_killed),
            typed.exit_code,
            if typed.health == "none" {
                String::new()
            } else {
                format!(", {}", typed.health)
            }
        );
        Ok(StepOutput::from_typed(&typed, summary))
    }
}

/// Restarts a container (stop with a timeout, then start) and reports its new state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restart {
    /// The container to restart.
    pub container: Tmpl,
    /// How long the engine waits after SIGTERM before it sends SIGKILL.
    #[serde(default = "default_stop_timeout")]
    pub stop_timeout: HumanDuration,
}

/// `docker restart`'s own default.
fn default_stop_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}

/// The typed outputs of [`Restart`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestartOutput {
    /// The rendered container name.
    pub container: String,
    /// Always true: a failed restart is an error, not an output.
    pub restarted: bool,
    /// The engine's restart count afterwards (counts policy restarts only).
    pub restart_count: i64,
    /// When it started again (RFC 3339).
    pub started_at: String,
    /// Whether it is running after the restart.
    pub running: bool,
}

const RESTART_OUTPUTS: &[&str] = &[
    "container",
    "restarted",
    "restart_count",
    "started_at",
    "running",
];

#[async_trait]
impl StepKind for Restart {
    fn name(&self) -> &'static str {
        "docker_restart"
    }

    fn outputs(&self) -> &'static [&'static str] {
        RESTART_OUTPUTS
    }

    fn destructive(&self) -> bool {
        true
    }

    fn templates_mut(&mut self) -> Vec<(&'static str, &mut Tmpl)> {
        vec![("container", &mut self.container)]
    }

    fn plan(&self, env: &StepEnv<'_>) -> Result<String, ActionError> {
        Ok(format!(
            "restart container {} (stop timeout {})",
            env.container(&self.container)?,
            self.stop_timeout
        ))
    }

    async fn run(&self, ctx: &ActionCtx, env: &StepEnv<'_>) -> Result<StepOutput, ActionError> {
        let name = env.container(&self.container)?;
        // The API takes whole seconds; round up so "500ms" does not become "kill at once".
        let secs =
            self.stop_timeout.0.as_secs() + u64::from(self.stop_timeout.0.subsec_nanos() > 0);
        let secs = i32::try_from(secs).unwrap_or(i32::MAX);
        let options = RestartContainerOptionsBuilder::default().t(secs).build();
        ctx.docker
            .restart_container(&name, Some(options))
            .await
            .map_err(|e| docker_error(&name, e))?;
        let after = inspect(ctx, &name).await?;
        let summary = if after.running {
            format!(
                "restarted {name}; running again (started {})",
                after.started_at
            )
        } else {
            format!(
                "restarted {name}; but it is {} (exit code {})",
                after.status, after.exit_code
            )
        };
        let typed = RestartOutput {
            container: name,
            restarted: true,
            restart_count: after.restart_count,
            started_at: after.started_at,
            running: after.running,
        };
        Ok(StepOutput::from_typed(&typed, summary))
    }
}

/// Starts a stopped container; does nothing if it already runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Start {
    /// The container to start.
    pub container: Tmpl,
}

/// The typed outputs of [`Start`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StartOutput {
    /// The rendered container name.
    pub container: String,
    /// Whether this step started it (false if it was already running).
    pub started: bool,
    /// Whether it is running afterwards.
    pub running: bool,
    /// When it last started (RFC 3339).
    pub started_at: String,
}

const START_OUTPUTS: &[&str] = &["container", "started", "running", "started_at"];

#[async_trait]
impl StepKind for Start {
    fn name(&self) -> &'static str {
        "docker_start"
    }

    fn outputs(&self) -> &'static [&'static str] {
        START_OUTPUTS
    }

    fn destructive(&self) -> bool {
        true
    }

    fn templates_mut(&mut self) -> Vec<(&'static str, &mut Tmpl)> {
        vec![("container", &mut self.container)]
    }

    fn plan(&self, env: &StepEnv<'_>) -> Result<String, ActionError> {
        Ok(format!(
            "start container {}",
            env.container(&self.container)?
        ))
    }

    async fn run(&self, ctx: &ActionCtx, env: &StepEnv<'_>) -> Result<StepOutput, ActionError> {
        let name = env.container(&self.container)?;
        let before = inspect(ctx, &name).await?;
        if before.running {
            let typed = StartOutput {
                container: name.clone(),
                started: false,
                running: true,
                started_at: before.started_at,
            };
            let summary = format!("{name} was already running; not started");
            return Ok(StepOutput::from_typed(&typed, summary));
        }
        ctx.docker
            .start_container(&name, None::<StartContainerOptions>)
            .await
            .map_err(|e| docker_error(&name, e))?;
        let after = inspect(ctx, &name).await?;
        let summary = if after.running {
            format!("started {name} (started {})", after.started_at)
        } else {
            format!(
                "started {name}; but it is {} (exit code {})",
                after.status, after.exit_code
            )
        };
        let typed = StartOutput {
            container: name,
            started: true,
            running: after.running,
            started_at: after.started_at,
        };
        Ok(StepOutput::from_typed(&typed, summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys<T: Serialize>(typed: &T) -> Vec<String> {
        let mut k: Vec<String> = StepOutput::from_typed(typed, String::new())
            .fields
            .keys()
            .cloned()
            .collect();
        k.sort_unstable();
        k
    }

    fn sorted(list: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
        v.sort_unstable();
        v
    }

    const INSPECT_FIXTURE: &str = r#"{
        "Name": "/k2-x", "Image": "sha256:abc", "RestartCount": 2,
        "Config": {"Image": "busybox:1"},
        "State": {"Status": "exited", "Running": false, "Paused": false, "Restarting": false,
                  "OOMKilled": true, "Dead": false, "Pid": 0, "ExitCode": 137, "Error": "",
                  "StartedAt": "2026-01-01T00:00:00Z", "FinishedAt": "2026-01-01T00:05:00Z"}}"#;

    #[test]
    fn inspect_flattens_the_engine_response() {
        let resp: ContainerInspectResponse =
            serde_json::from_str(INSPECT_FIXTURE).expect("fixture is valid JSON");
        let out = InspectOutput::from_response("k2-x".into(), &resp);
        assert_eq!(out.status, "exited");
        assert!(out.oom_killed && !out.running);
        assert_eq!((out.exit_code, out.restart_count), (137, 2));
        assert_eq!(out.health, "none");
        assert_eq!(out.image, "busybox:1");
    }

    #[test]
    fn output_keys_equal_outputs() {
        let resp: ContainerInspectResponse =
            serde_json::from_str(INSPECT_FIXTURE).expect("fixture is valid JSON");
        let inspect_out = InspectOutput::from_response("k2-x".into(), &resp);
        assert_eq!(keys(&inspect_out), sorted(INSPECT_OUTPUTS));
        let restart_out = RestartOutput {
            container: "k2-x".into(),
            restarted: true,
            restart_count: 0,
            started_at: String::new(),
            running: true,
        };
        assert_eq!(keys(&restart_out), sorted(RESTART_OUTPUTS));
        let start_out = StartOutput {
            container: "k2-x".into(),
            started: true,
            running: true,
            started_at: String::new(),
        };
        assert_eq!(keys(&start_out), sorted(START_OUTPUTS));
    }

    #[test]
    fn restart_defaults_its_stop_timeout_and_rejects_unknown_fields() {
        let r: Restart = serde_yaml_ng::from_str("container: k2-x").expect("valid YAML");
        assert_eq!(r.stop_timeout.0.as_secs(), 10);
        assert!(serde_yaml_ng::from_str::<Restart>("container: k2-x\nforce: true").is_err());
    }
}
