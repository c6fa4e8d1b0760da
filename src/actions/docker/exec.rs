//! `docker_exec`: one command inside a container, as an argv list and never through a shell.

use std::time::Duration;

use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures::StreamExt;
use serde::{Deserialize, Deserializer, Serialize};

use super::docker_error;
use crate::actions::{ActionCtx, ActionError, StepEnv, StepKind, StepOutput};
use crate::template::Tmpl;

/// Runs `argv` in the container and captures its exit code, stdout and stderr.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exec {
    /// The container to run in.
    pub container: Tmpl,
    /// The program and its arguments; each element is rendered and passed as one argument.
    #[serde(deserialize_with = "non_empty_argv")]
    pub argv: Vec<Tmpl>,
    /// Declares the command harmless, so it runs in dry-run and without budget.
    #[serde(default)]
    pub read_only: bool,
    /// The most bytes kept of stdout and of stderr (each); the rest is read and dropped.
    #[serde(default = "default_max_output_bytes")]
    pub max_output_bytes: usize,
}

/// 64 KiB keeps a `du` or `ps` listing whole but bounds what a run stores.
fn default_max_output_bytes() -> usize {
    65536
}

/// Field names for argv elements. The catalog keys each compiled template by its field name,
/// so every element needs its own name or later elements would overwrite earlier ones; the
/// trait wants `&'static str`, hence a fixed table, which also bounds argv's length.
const ARGV_FIELDS: [&str; 32] = [
    "argv[0]", "argv[1]", "argv[2]", "argv[3]", "argv[4]", "argv[5]", "argv[6]", "argv[7]",
    "argv[8]", "argv[9]", "argv[10]", "argv[11]", "argv[12]", "argv[13]", "argv[14]", "argv[15]",
    "argv[16]", "argv[17]", "argv[18]", "argv[19]", "argv[20]", "argv[21]", "argv[22]", "argv[23]",
    "argv[24]", "argv[25]", "argv[26]", "argv[27]", "argv[28]", "argv[29]", "argv[30]", "argv[31]",
];

/// An empty argv has no program to run, and one longer than [`ARGV_FIELDS`] cannot be named;
/// reject both when the playbook loads.
fn non_empty_argv<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Tmpl>, D::Error> {
    let argv = Vec::<Tmpl>::deserialize(deserializer)?;
    if argv.is_empty() {
        return Err(serde::de::Error::custom(
            "argv must name a program: it cannot be empty",
        ));
    }
    if argv.len() > ARGV_FIELDS.len() {
        return Err(serde::de::Error::custom(format!(
            "argv has {} elements; at most {} are supported",
            argv.len(),
            ARGV_FIELDS.len()
        )));
    }
    Ok(argv)
}

/// The typed outputs of [`Exec`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecOutput {
    /// The rendered container name.
    pub container: String,
    /// The command's exit code (non-zero is an output, not an error).
    pub exit_code: i64,
    /// Its standard output (lossy UTF-8, capped).
    pub stdout: String,
    /// Its standard error (lossy UTF-8, capped).
    pub stderr: String,
    /// Whether stdout or stderr was cut at `max_output_bytes`.
    pub truncated: bool,
}

const OUTPUTS: &[&str] = &["container", "exit_code", "stdout", "stderr", "truncated"];

/// Appends `chunk` to `buf` up to `cap` bytes; returns whether anything was dropped.
fn push_capped(buf: &mut Vec<u8>, chunk: &[u8], cap: usize) -> bool {
    let room = cap.saturating_sub(buf.len());
    buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
    chunk.len() > room
}

impl Exec {
    /// Renders every argv element on its own; none is ever split or joined.
    fn render_argv(&self, env: &StepEnv<'_>) -> Result<Vec<String>, ActionError> {
        self.argv.iter().map(|a| env.render(a)).collect()
    }
}

#[async_trait]
impl StepKind for Exec {
    fn name(&self) -> &'static str {
        "docker_exec"
    }

    fn outputs(&self) -> &'static [&'static str] {
        OUTPUTS
    }

    fn destructive(&self) -> bool {
        !self.read_only
    }

    fn templates_mut(&mut self) -> Vec<(&'static str, &mut Tmpl)> {
        let mut fields = vec![("container", &mut self.container)];
        // Deserialization caps argv at ARGV_FIELDS.len(), so zip drops nothing.
        fields.extend(ARGV_FIELDS.iter().copied().zip(self.argv.iter_mut()));
        fields
    }

    fn plan(&self, env: &StepEnv<'_>) -> Result<String, ActionError> {
        let name = env.container(&self.container)?;
        let argv = self.render_argv(env)?;
        Ok(format!("run [{}] in {name}", argv.join(", ")))
    }

    async fn run(&self, ctx: &ActionCtx, env: &StepEnv<'_>) -> Result<StepOutput, ActionError> {
        let name = env.container(&self.container)?;
        let argv = self.render_argv(env)?;
        let Captured {
            exit_code,
            stdout,
            stderr,
            truncated,
        } = run_argv(ctx, &name, &argv, self.max_output_bytes).await?;
        let typed = ExecOutput {
            container: name,
            exit_code,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            truncated,
        };
        let summary = format!(
            "{} exited {} in {} ({} bytes out, {} bytes err{})",
            argv.first().map(String::as_str).unwrap_or_default(),
            exit_code,
            typed.container,
            stdout.len(),
            stderr.len(),
            if truncated { ", truncated" } else { "" }
        );
        Ok(StepOutput::from_typed(&typed, summary))
    }
}

/// What one command printed and how it ended, as [`run_argv`] captured it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Captured {
    /// The command's exit code.
    pub(crate) exit_code: i64,
    /// Its standard output, capped.
    pub(crate) stdout: Vec<u8>,
    /// Its standard error, capped.
    pub(crate) stderr: Vec<u8>,
    /// Whether stdout or stderr was cut at the cap.
    pub(crate) truncated: bool,
}

/// Runs `argv` (never through a shell) in container `name` and captures up to `cap` bytes of
/// stdout and of stderr, plus the exit code. Shared by every step kind that runs a CLI inside
/// a container, so they all get the same argv safety, capping and exit-code polling.
pub(crate) async fn run_argv(
    ctx: &ActionCtx,
    name: &str,
    argv: &[String],
    cap: usize,
) -> Result<Captured, ActionError> {
    let created = ctx
        .docker
        .create_exec(
            name,
            CreateExecOptions {
                cmd: Some(argv.to_vec()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| docker_error(name, e))?;
    let started = ctx
        .docker
        .start_exec(&created.id, None)
        .await
        .map_err(|e| docker_error(name, e))?;
    let StartExecResults::Attached { mut output, .. } = started else {
        return Err(ActionError::Docker(
            "exec started detached; no output to read".into(),
        ));
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let mut truncated = false;
    // Read to the end even past the cap so the process can finish and report its exit
    // code; the engine's step timeout bounds a command that never stops writing.
    while let Some(frame) = output.next().await {
        match frame.map_err(|e| docker_error(name, e))? {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                truncated |= push_capped(&mut stdout, &message, cap);
            }
            LogOutput::StdErr { message } => {
                truncated |= push_capped(&mut stderr, &message, cap);
            }
            LogOutput::StdIn { .. } => {}
        }
    }
    let exit_code = exit_code(ctx, name, &created.id).await?;
    Ok(Captured {
        exit_code,
        stdout,
        stderr,
        truncated,
    })
}

/// The exec's exit code. The output stream can close a moment before the engine records the
/// exit, so poll briefly instead of reading `None` as success.
async fn exit_code(ctx: &ActionCtx, name: &str, exec_id: &str) -> Result<i64, ActionError> {
    for _ in 0..50 {
        let inspect = ctx
            .docker
            .inspect_exec(exec_id)
            .await
            .map_err(|e| docker_error(name, e))?;
        if inspect.running != Some(true) {
            if let Some(code) = inspect.exit_code {
                return Ok(code);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(ActionError::Failed(format!(
        "exec in {name:?} ended its output but reported no exit code within 5 s"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capping_keeps_the_head_and_flags_the_rest() {
        let mut buf = Vec::new();
        assert!(!push_capped(&mut buf, b"hello", 8));
        assert!(push_capped(&mut buf, b"world", 8));
        assert_eq!(buf, b"hellowor");
        assert!(push_capped(&mut buf, b"!", 8));
        assert_eq!(buf.len(), 8);
    }

    #[test]
    fn yaml_shape_defaults_and_empty_argv() {
        let e: Exec = serde_yaml_ng::from_str("container: k2-x\nargv: [du, -sk, /checkpoints]")
            .expect("valid YAML");
        assert!(e.destructive());
        assert_eq!(e.max_output_bytes, 65536);
        assert_eq!(e.argv.len(), 3);
        let ro: Exec = serde_yaml_ng::from_str("container: k2-x\nargv: [ls]\nread_only: true")
            .expect("valid YAML");
        assert!(!ro.destructive());
        assert!(serde_yaml_ng::from_str::<Exec>("container: k2-x\nargv: []").is_err());
        assert!(serde_yaml_ng::from_str::<Exec>("container: k2-x").is_err());
        let too_long = format!("container: k2-x\nargv: [{}]", vec!["a"; 33].join(", "));
        assert!(serde_yaml_ng::from_str::<Exec>(&too_long).is_err());
    }

    #[test]
    fn every_templated_field_has_its_own_name() {
        let argv = format!("container: k2-x\nargv: [{}]", vec!["a"; 32].join(", "));
        let mut e: Exec = serde_yaml_ng::from_str(&argv).expect("valid YAML");
        let names: Vec<&str> = e.templates_mut().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), 33);
        assert_eq!(&names[..3], ["container", "argv[0]", "argv[1]"]);
        let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len());
    }

    #[test]
    fn output_keys_equal_outputs() {
        let typed = ExecOutput {
            container: "k2-x".into(),
            exit_code: 0,
            stdout: String::new(),
            stderr: String::new(),
            truncated: false,
        };
        let out = StepOutput::from_typed(&typed, String::new());
        let mut got: Vec<&str> = out.fields.keys().map(String::as_str).collect();
        let mut want = OUTPUTS.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
    }
}
