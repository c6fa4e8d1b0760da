//! Kafka step kinds: `kafka_consumer_groups` (every group's lag, the weekly review; see
//! `review.rs`) and `kafka_consumer_lag`, the runbook's "Check Kafka Consumer Group Lag" done
//! twice, some seconds apart, so a stuck consumer can be told from a slow one.
//!
//! The CLI runs inside the Kafka container through the Docker exec machinery, as an argv
//! list: the group id from an alert label never meets a shell.

mod describe;
mod groups;
mod review;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::docker::{run_argv, HumanDuration, Keep, Ran};
use super::{api, ActionCtx, ActionError, StepEnv, StepKind, StepOutput};
use crate::template::Tmpl;

pub use describe::Classification;
pub use groups::GroupReview;
pub use review::{ConsumerGroups, ConsumerGroupsOutput};

/// Samples a consumer group's lag twice, `interval` apart, and classifies the difference.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerLag {
    /// The Kafka container to run `kafka-consumer-groups` in.
    pub container: Tmpl,
    /// The consumer group id.
    pub group: Tmpl,
    /// The broker address as seen from inside that container.
    #[serde(default = "default_bootstrap_server")]
    pub bootstrap_server: Tmpl,
    /// Time between the two samples.
    #[serde(default = "default_interval")]
    pub interval: HumanDuration,
}

/// The runbook's command runs inside the broker's own container, so the broker is local.
fn default_bootstrap_server() -> Tmpl {
    Tmpl::new("localhost:9092")
}

/// Long enough for a bronze job (10 s trigger) to commit a few batches.
fn default_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

/// Enough for thousands of partitions; more is read and dropped rather than stored.
const MAX_OUTPUT_BYTES: usize = 256 * 1024;

/// A Slack-sized excerpt of the table.
const TABLE_CHARS: usize = 3000;

/// The typed outputs of [`ConsumerLag`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsumerLagOutput {
    /// The rendered Kafka container.
    pub container: String,
    /// The rendered group id.
    pub group: String,
    /// The topics the group has offsets for, sorted.
    pub topics: Vec<String>,
    /// How many partitions the second sample listed.
    pub partitions: usize,
    /// Whether the group had active members at the second sample.
    pub active_members: bool,
    /// Total lag (messages) at the first sample, over partitions whose lag is known.
    pub lag_first: i64,
    /// Total lag at the second sample.
    pub lag_last: i64,
    /// `lag_last - lag_first`.
    pub lag_change: i64,
    /// Whether any committed offset changed between the samples.
    pub offsets_moved: bool,
    /// `idle`, `stuck`, `falling_behind`, `catching_up` or `steady`.
    pub classification: Classification,
    /// The second sample's table as Kafka printed it, capped.
    pub table: String,
    /// When the second sample was taken (RFC 3339).
    pub sampled_at: String,
}

const OUTPUTS: &[&str] = &[
    "container",
    "group",
    "topics",
    "partitions",
    "active_members",
    "lag_first",
    "lag_last",
    "lag_change",
    "offsets_moved",
    "classification",
    "table",
    "sampled_at",
];

/// The rendered fields one run uses.
struct Rendered {
    container: String,
    group: String,
    argv: Vec<String>,
}

impl ConsumerLag {
    fn render(&self, env: &StepEnv<'_>) -> Result<Rendered, ActionError> {
        let container = env.container(&self.container)?;
        let group = env.render(&self.group)?;
        let argv = vec![
            "kafka-consumer-groups".to_owned(),
            "--bootstrap-server".to_owned(),
            env.render(&self.bootstrap_server)?,
            "--describe".to_owned(),
            "--group".to_owned(),
            group.clone(),
        ];
        Ok(Rendered {
            container,
            group,
            argv,
        })
    }

    /// One `--describe` run, parsed; a failed or unparseable run is the step's error.
    async fn sample(ctx: &ActionCtx, r: &Rendered) -> Result<describe::Description, ActionError> {
        let out = run_argv(
            ctx,
            &r.container,
            r.argv.clone(),
            MAX_OUTPUT_BYTES,
            Keep::Tail,
        )
        .await?;
        let (stdout, stderr) = (&out.stdout, &out.stderr);
        match describe::parse(&r.group, stdout, stderr) {
            Ok(d) => Ok(d),
            // A non-zero exit (no such binary, broker unreachable) explains more than the
            // missing table does; Kafka's own "Error: ..." lines come with exit code 0.
            Err(_) if out.exit_code != 0 => Err(exited(&r.container, &out)),
            Err(e) => Err(ActionError::Failed(e)),
        }
    }
}

/// A run that exited non-zero without anything to parse, in the CLI's own first words.
fn exited(container: &str, out: &Ran) -> ActionError {
    let why = (out.stderr.lines().chain(out.stdout.lines()))
        .map(str::trim)
        .find(|l| !l.is_empty());
    ActionError::Failed(format!(
        "kafka-consumer-groups exited {} in {container}: {}",
        out.exit_code,
        why.unwrap_or("no output")
    ))
}

/// The head of `text`, cut at a character boundary and marked when cut.
fn cap_chars(text: &str, max: usize) -> String {
    crate::text::cut_marked(text, max, "\n…")
}

#[async_trait]
impl StepKind for ConsumerLag {
    fn name(&self) -> &'static str {
        "kafka_consumer_lag"
    }

    fn outputs(&self) -> &'static [&'static str] {
        OUTPUTS
    }

    fn templates_mut(&mut self) -> Vec<(&'static str, &mut Tmpl)> {
        vec![
            ("container", &mut self.container),
            ("group", &mut self.group),
            ("bootstrap_server", &mut self.bootstrap_server),
        ]
    }

    fn plan(&self, env: &StepEnv<'_>) -> Result<String, ActionError> {
        let r = self.render(env)?;
        Ok(format!(
            "sample lag of consumer group {} in {} twice, {} apart",
            r.group, r.container, self.interval
        ))
    }

    async fn run(&self, ctx: &ActionCtx, env: &StepEnv<'_>) -> Result<StepOutput, ActionError> {
        let r = self.render(env)?;
        let first = Self::sample(ctx, &r).await?;
        tokio::time::sleep(self.interval.0).await;
        let last = Self::sample(ctx, &r).await?;
        let sampled_at = api::now_rfc3339();
        let v = describe::classify(&first, &last);
        let typed = ConsumerLagOutput {
            topics: last.topics(),
            partitions: last.rows.len(),
            active_members: last.active_members,
            lag_first: v.lag_first,
            lag_last: v.lag_last,
            lag_change: v.lag_last - v.lag_first,
            offsets_moved: v.offsets_moved,
            classification: v.classification,
            table: cap_chars(&last.table, TABLE_CHARS),
            sampled_at,
            container: r.container,
            group: r.group,
        };
        let summary = format!(
            "group {}: lag {} → {} over {}, offsets {}: {}",
            typed.group,
            typed.lag_first,
            typed.lag_last,
            self.interval,
            if typed.offsets_moved {
                "moving"
            } else {
                "not moving"
            },
            typed.classification.as_str()
        );
        Ok(StepOutput::from_typed(&typed, summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_shape_and_defaults() {
        let s: ConsumerLag = serde_yaml_ng::from_str(
            "container: '{{ config.kafka_container }}'\ngroup: '{{ alert.labels.consumer_group }}'",
        )
        .expect("valid YAML");
        assert_eq!(s.bootstrap_server.source, "localhost:9092");
        assert_eq!(s.interval.0, Duration::from_secs(30));
        assert!(!s.destructive());
        let s: ConsumerLag = serde_yaml_ng::from_str(
            "container: k\ngroup: g\ninterval: 1s\nbootstrap_server: b:29092",
        )
        .expect("valid YAML");
        assert_eq!(s.interval.0, Duration::from_secs(1));
        for bad in [
            "container: k\ngroup: g\nshell: true",
            "container: k",
            "container: k\ngroup: g\ninterval: soon",
        ] {
            assert!(
                serde_yaml_ng::from_str::<ConsumerLag>(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn every_template_is_listed_by_its_yaml_name() {
        let mut s: ConsumerLag =
            serde_yaml_ng::from_str("container: k\ngroup: g").expect("valid YAML");
        let names: Vec<&str> = s.templates_mut().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["container", "group", "bootstrap_server"]);
    }

    #[test]
    fn the_table_is_capped_at_a_char_boundary() {
        assert_eq!(cap_chars("abc", 5), "abc");
        assert_eq!(cap_chars("→→→", 2), "→→\n…");
    }

    #[test]
    fn output_keys_equal_outputs() {
        let typed = ConsumerLagOutput {
            container: "k2-kafka".into(),
            group: "g".into(),
            topics: vec!["t".into()],
            partitions: 1,
            active_members: false,
            lag_first: 1,
            lag_last: 1,
            lag_change: 0,
            offsets_moved: false,
            classification: Classification::Stuck,
            table: String::new(),
            sampled_at: String::new(),
        };
        let out = StepOutput::from_typed(&typed, String::new());
        assert_eq!(out.fields["classification"], serde_json::json!("stuck"));
        let mut got: Vec<&str> = out.fields.keys().map(String::as_str).collect();
        let mut want = OUTPUTS.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
    }
}
