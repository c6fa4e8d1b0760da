//! `docker_logs`: a container's recent log lines, optionally filtered by a regex.

use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use futures::TryStreamExt;
use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize};

use super::{docker_error, HumanDuration};
use crate::actions::{ActionCtx, ActionError, StepEnv, StepKind, StepOutput};
use crate::template::Tmpl;

/// At most this many matching lines are reported, so one step cannot flood a Slack thread.
const MAX_MATCHES: usize = 20;
/// Each reported line is cut to this many characters.
const MAX_LINE_CHARS: usize = 300;
/// The excerpt holds this many lines.
const EXCERPT_LINES: usize = 5;

/// A regex compiled when the playbook loads, so a bad pattern fails the load, not a run.
#[derive(Debug, Clone)]
pub struct GrepPattern(pub Regex);

impl<'de> Deserialize<'de> for GrepPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Regex::new(&text)
            .map(GrepPattern)
            .map_err(|e| serde::de::Error::custom(format!("invalid grep regex {text:?}: {e}")))
    }
}

/// Reads the last `tail` lines of stdout and stderr, optionally since a time, optionally grepped.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logs {
    /// The container whose logs to read.
    pub container: Tmpl,
    /// How many of the most recent lines to read.
    #[serde(default = "default_tail")]
    pub tail: u32,
    /// Only lines newer than this long ago, e.g. `10m`.
    #[serde(default)]
    pub since: Option<HumanDuration>,
    /// Only count and report lines matching this regex.
    #[serde(default)]
    pub grep: Option<GrepPattern>,
}

/// Enough context for a first look without pulling a whole log.
fn default_tail() -> u32 {
    100
}

/// The typed outputs of [`Logs`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogsOutput {
    /// The rendered container name.
    pub container: String,
    /// How many lines were read.
    pub lines: u64,
    /// How many of them match `grep` (all of them without `grep`).
    pub match_count: u64,
    /// The most recent matching (or, without `grep`, read) lines: at most 20, each cut to 300 chars.
    pub matches: Vec<String>,
    /// The last up to 5 matching lines (or read lines without `grep`), newline-joined.
    pub excerpt: String,
}

const OUTPUTS: &[&str] = &["container", "lines", "match_count", "matches", "excerpt"];

/// Cuts `line` to [`MAX_LINE_CHARS`] characters.
fn truncate_line(line: &str) -> String {
    crate::text::cut(line, MAX_LINE_CHARS)
}

/// Filters the read lines; pure so it is testable without an engine.
fn summarize(container: String, lines: &[&str], grep: Option<&Regex>) -> LogsOutput {
    let matching: Vec<&str> = match grep {
        Some(re) => lines.iter().copied().filter(|l| re.is_match(l)).collect(),
        None => lines.to_vec(),
    };
    // The newest lines matter most to a responder, so keep the tail of each list.
    let tail = |n: usize| matching[matching.len().saturating_sub(n)..].iter();
    let matches = tail(MAX_MATCHES).map(|l| truncate_line(l)).collect();
    let excerpt = tail(EXCERPT_LINES)
        .map(|l| truncate_line(l))
        .collect::<Vec<_>>()
        .join("\n");
    LogsOutput {
        container,
        lines: lines.len() as u64,
        match_count: matching.len() as u64,
        matches,
        excerpt,
    }
}

#[async_trait]
impl StepKind for Logs {
    fn name(&self) -> &'static str {
        "docker_logs"
    }

    fn outputs(&self) -> &'static [&'static str] {
        OUTPUTS
    }

    fn templates_mut(&mut self) -> Vec<(&'static str, &mut Tmpl)> {
        vec![("container", &mut self.container)]
    }

    fn plan(&self, env: &StepEnv<'_>) -> Result<String, ActionError> {
        let mut plan = format!(
            "read the last {} log lines of {}",
            self.tail,
            env.container(&self.container)?
        );
        if let Some(since) = &self.since {
            plan.push_str(&format!(" from the last {since}"));
        }
        if let Some(grep) = &self.grep {
            plan.push_str(&format!(" matching /{}/", grep.0.as_str()));
        }
        Ok(plan)
    }

    async fn run(&self, ctx: &ActionCtx, env: &StepEnv<'_>) -> Result<StepOutput, ActionError> {
        let name = env.container(&self.container)?;
        let mut options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&self.tail.to_string());
        if let Some(since) = &self.since {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_err(|e| ActionError::Failed(format!("system clock before 1970: {e}")))?;
            let from = now.saturating_sub(since.0).as_secs();
            // The API takes i32 seconds; past 2038 clamp rather than wrap.
            options = options.since(i32::try_from(from).unwrap_or(i32::MAX));
        }
        let frames: Vec<LogOutput> = ctx
            .docker
            .logs(&name, Some(options.build()))
            .try_collect()
            .await
            .map_err(|e| docker_error(&name, e))?;
        // Frames are usually one line each, but a frame may hold several or a partial one, so
        // join them and split once.
        let mut text = String::new();
        for frame in &frames {
            text.push_str(&String::from_utf8_lossy(frame.as_ref()));
        }
        let lines: Vec<&str> = text.lines().collect();
        let typed = summarize(name, &lines, self.grep.as_ref().map(|g| &g.0));
        let summary = match &self.grep {
            Some(g) => format!(
                "{} of {} lines match {}",
                typed.match_count,
                typed.lines,
                g.0.as_str()
            ),
            None => format!("{} log lines read", typed.lines),
        };
        Ok(StepOutput::from_typed(&typed, summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grep_filters_and_keeps_the_newest() {
        let lines: Vec<String> = (0..30).map(|i| format!("line {i} Killed")).collect();
        let mut refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        refs.push("quiet");
        let re = Regex::new("Killed").expect("static regex is valid");
        let out = summarize("k2-x".into(), &refs, Some(&re));
        assert_eq!((out.lines, out.match_count), (31, 30));
        assert_eq!(out.matches.len(), MAX_MATCHES);
        assert_eq!(out.matches[0], "line 10 Killed");
        assert_eq!(out.excerpt.lines().count(), 5);
        assert!(out.excerpt.ends_with("line 29 Killed"));
    }

    #[test]
    fn without_grep_the_excerpt_is_the_last_lines() {
        let out = summarize("k2-x".into(), &["a", "b", "c", "d", "e", "f"], None);
        assert_eq!(out.excerpt, "b\nc\nd\ne\nf");
        assert_eq!(out.match_count, 6);
        assert_eq!(out.matches.len(), 6);
    }

    #[test]
    fn long_lines_are_cut_on_char_boundaries() {
        let long = "é".repeat(400);
        let cut = truncate_line(&long);
        assert_eq!(cut.chars().count(), MAX_LINE_CHARS + 1);
    }

    #[test]
    fn yaml_defaults_and_a_bad_regex_fails_the_load() {
        let l: Logs = serde_yaml_ng::from_str("container: k2-x\ngrep: 'OOM|Killed'\nsince: 10m")
            .expect("valid YAML");
        assert_eq!(l.tail, 100);
        assert_eq!(l.since.map(|s| s.0.as_secs()), Some(600));
        assert!(serde_yaml_ng::from_str::<Logs>("container: k2-x\ngrep: '(unclosed'").is_err());
        assert!(serde_yaml_ng::from_str::<Logs>("container: k2-x\nsince: soon").is_err());
    }

    #[test]
    fn output_keys_equal_outputs() {
        let out = StepOutput::from_typed(&summarize("k2-x".into(), &["a"], None), String::new());
        let mut got: Vec<&str> = out.fields.keys().map(String::as_str).collect();
        let mut want = OUTPUTS.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
    }
}
