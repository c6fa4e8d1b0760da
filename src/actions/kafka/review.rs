//! `kafka_consumer_groups`: the runbook's weekly "Check Kafka Consumer Group Lag" for every
//! consumer group at once. One `--list --state`, then `--describe --all-groups` twice,
//! `interval` apart, so "offsets not moving" is seen, not guessed; all read-only.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::groups::{self, GroupReview, Thresholds};
use super::{default_bootstrap_server, default_interval, exited, MAX_OUTPUT_BYTES};
use crate::actions::disk_usage::Grade;
use crate::actions::docker::{run_argv, HumanDuration, Keep, Ran};
use crate::actions::{api, ActionCtx, ActionError, StepEnv, StepKind, StepOutput};
use crate::template::Tmpl;

/// Reviews the lag of every consumer group the broker knows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerGroups {
    /// The Kafka container to run `kafka-consumer-groups` in.
    pub container: Tmpl,
    /// The broker address as seen from inside that container.
    #[serde(default = "default_bootstrap_server")]
    pub bootstrap_server: Tmpl,
    /// Time between the two samples.
    #[serde(default = "default_interval")]
    pub interval: HumanDuration,
    /// Lag from this many messages on is yellow (runbook: < 1,000 is near real-time).
    #[serde(default = "default_yellow_lag")]
    pub yellow_lag: i64,
    /// Lag above this many messages is red (runbook: > 10,000 is falling behind).
    #[serde(default = "default_red_lag")]
    pub red_lag: i64,
}

fn default_yellow_lag() -> i64 {
    1000
}

fn default_red_lag() -> i64 {
    10_000
}

/// The typed outputs of [`ConsumerGroups`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsumerGroupsOutput {
    /// The rendered Kafka container.
    pub container: String,
    /// Every group, worst first, then by id.
    pub groups: Vec<GroupReview>,
    /// How many groups were reviewed.
    pub group_count: usize,
    /// How many are red.
    pub reds: usize,
    /// How many are yellow.
    pub yellows: usize,
    /// The worst grade (`green` when there are no groups).
    pub grade: Grade,
    /// When the second sample was taken (RFC 3339).
    pub sampled_at: String,
}

const OUTPUTS: &[&str] = &[
    "container",
    "groups",
    "group_count",
    "reds",
    "yellows",
    "grade",
    "sampled_at",
];

impl ConsumerGroups {
    fn argv(&self, env: &StepEnv<'_>, args: &[&str]) -> Result<Vec<String>, ActionError> {
        let mut argv = vec![
            "kafka-consumer-groups".to_owned(),
            "--bootstrap-server".to_owned(),
            env.render(&self.bootstrap_server)?,
        ];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        Ok(argv)
    }

    async fn exec(ctx: &ActionCtx, container: &str, argv: Vec<String>) -> Result<Ran, ActionError> {
        run_argv(ctx, container, argv, MAX_OUTPUT_BYTES, Keep::Tail).await
    }
}

#[async_trait]
impl StepKind for ConsumerGroups {
    fn name(&self) -> &'static str {
        "kafka_consumer_groups"
    }

    fn outputs(&self) -> &'static [&'static str] {
        OUTPUTS
    }

    fn templates_mut(&mut self) -> Vec<(&'static str, &mut Tmpl)> {
        vec![
            ("container", &mut self.container),
            ("bootstrap_server", &mut self.bootstrap_server),
        ]
    }

    fn plan(&self, env: &StepEnv<'_>) -> Result<String, ActionError> {
        let container = env.container(&self.container)?;
        Ok(format!(
            "review the lag of every consumer group in {container}, sampled twice {} apart",
            self.interval
        ))
    }

    async fn run(&self, ctx: &ActionCtx, env: &StepEnv<'_>) -> Result<StepOutput, ActionError> {
        let container = env.container(&self.container)?;
        let listing = Self::exec(ctx, &container, self.argv(env, &["--list", "--state"])?).await?;
        let listed = match groups::parse_list(&listing.stdout, &listing.stderr) {
            Ok(l) if !l.is_empty() || listing.exit_code == 0 => l,
            Ok(_) => return Err(exited(&container, &listing)),
            Err(e) => return Err(ActionError::Failed(e)),
        };
        let known: Vec<String> = listed.iter().map(|l| l.group.clone()).collect();
        let describe = self.argv(env, &["--describe", "--all-groups"])?;
        let first = Self::exec(ctx, &container, describe.clone()).await?;
        tokio::time::sleep(self.interval.0).await;
        let last = Self::exec(ctx, &container, describe).await?;
        let sampled_at = api::now_rfc3339();
        for out in [&first, &last] {
            if out.exit_code != 0 && !out.stdout.contains("LOG-END-OFFSET") && !known.is_empty() {
                return Err(exited(&container, out));
            }
        }
        let (before, after) = (
            groups::split_all(&first.stdout, &first.stderr, &known),
            groups::split_all(&last.stdout, &last.stderr, &known),
        );
        let thresholds = Thresholds {
            yellow: self.yellow_lag,
            red: self.red_lag,
        };
        let mut reviews: Vec<GroupReview> = listed
            .iter()
            .map(|l| {
                let samples = after
                    .get(&l.group)
                    .map(|a| (before.get(&l.group).unwrap_or(a), a));
                let dead = groups::reported_dead(&l.group, &last.stdout, &last.stderr);
                groups::review(l, samples, dead, thresholds)
            })
            .collect();
        reviews.sort_by(|a, b| b.grade.cmp(&a.grade).then_with(|| a.group.cmp(&b.group)));
        let count = |g: Grade| reviews.iter().filter(|r| r.grade == g).count();
        let (reds, yellows) = (count(Grade::Red), count(Grade::Yellow));
        let typed = ConsumerGroupsOutput {
            container,
            group_count: reviews.len(),
            reds,
            yellows,
            grade: reviews.first().map_or(Grade::Green, |r| r.grade),
            groups: reviews,
            sampled_at,
        };
        let summary = format!(
            "{} consumer groups over {}: {} red, {} yellow, {} green",
            typed.group_count,
            self.interval,
            reds,
            yellows,
            typed.group_count - reds - yellows
        );
        Ok(StepOutput::from_typed(&typed, summary))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn yaml_shape_and_defaults() {
        let s: ConsumerGroups =
            serde_yaml_ng::from_str("container: '{{ config.kafka_container }}'").expect("valid");
        assert_eq!((s.yellow_lag, s.red_lag), (1000, 10_000));
        assert_eq!(s.interval.0, Duration::from_secs(30));
        assert!(!s.destructive());
        assert!(serde_yaml_ng::from_str::<ConsumerGroups>("container: k\ngroup: g").is_err());
    }

    #[test]
    fn output_keys_equal_outputs() {
        let typed = ConsumerGroupsOutput {
            container: "k".into(),
            groups: Vec::new(),
            group_count: 0,
            reds: 0,
            yellows: 0,
            grade: Grade::Green,
            sampled_at: String::new(),
        };
        let out = StepOutput::from_typed(&typed, String::new());
        let mut got: Vec<&str> = out.fields.keys().map(String::as_str).collect();
        let mut want = OUTPUTS.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
    }
}
