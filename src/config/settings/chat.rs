//! Settings of the Slack slash command and buttons: the signing secret, the command's name,
//! who may run, approve and change the mode, and which containers `status` reports.

use clap::Args;
use regex::Regex;
use secrecy::SecretString;

use super::ConfigError;
use crate::pattern::anchored as allow_list;

/// The Slack chat-ops settings as given on the command line or in the environment.
#[derive(Clone, Default, Args)]
pub struct SlackChatArgs {
    /// Slack app signing secret; without it `/slack/commands` and `/slack/interactions` answer 503.
    #[arg(long, env = "SLACK_SIGNING_SECRET", hide_env_values = true)]
    pub slack_signing_secret: Option<String>,
    /// The slash command this service answers [default: /responder].
    #[arg(long, env = "SLACK_COMMAND")]
    pub slack_command: Option<String>,
    /// Slack user (U…) and user group (S…) IDs allowed to `run`, comma-separated [default: nobody].
    #[arg(long, env = "SLACK_RUN_ALLOWED")]
    pub slack_run_allowed: Option<String>,
    /// Slack user and user group IDs allowed to approve or deny steps [default: nobody].
    #[arg(long, env = "SLACK_APPROVE_ALLOWED")]
    pub slack_approve_allowed: Option<String>,
    /// Slack user and user group IDs allowed to change the mode [default: nobody].
    #[arg(long, env = "SLACK_MODE_ALLOWED")]
    pub slack_mode_allowed: Option<String>,
    /// Regex of whole container names `/responder status` reports [default: k2-.*].
    #[arg(long, env = "SLACK_STATUS_CONTAINERS")]
    pub slack_status_containers: Option<String>,
}

// Written by hand so the signing secret can never reach a log.
impl std::fmt::Debug for SlackChatArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackChatArgs")
            .field(
                "slack_signing_secret",
                &self.slack_signing_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("slack_command", &self.slack_command)
            .field("slack_run_allowed", &self.slack_run_allowed)
            .field("slack_approve_allowed", &self.slack_approve_allowed)
            .field("slack_mode_allowed", &self.slack_mode_allowed)
            .field("slack_status_containers", &self.slack_status_containers)
            .finish()
    }
}

/// Validated Slack chat-ops settings.
#[derive(Debug, Clone)]
pub struct SlackChatSettings {
    /// Slack's signing secret; `None` turns `/slack/*` off (503).
    pub signing_secret: Option<SecretString>,
    /// The slash command answered, with its `/`.
    pub command: String,
    /// User and group IDs that may `run`.
    pub run_allowed: Vec<String>,
    /// User and group IDs that may approve or deny.
    pub approve_allowed: Vec<String>,
    /// User and group IDs that may change the mode.
    pub mode_allowed: Vec<String>,
    /// Containers `status` reports, anchored to whole names.
    pub status_containers: Regex,
}

impl SlackChatSettings {
    /// Flags and environment over the config file's values, in [`SlackChatArgs`] order.
    pub(super) fn load(
        args: &SlackChatArgs,
        file: [Option<String>; 6],
    ) -> Result<Self, ConfigError> {
        let given = [
            &args.slack_signing_secret,
            &args.slack_command,
            &args.slack_run_allowed,
            &args.slack_approve_allowed,
            &args.slack_mode_allowed,
            &args.slack_status_containers,
        ];
        let mut picked = given
            .into_iter()
            .zip(file)
            .map(|(arg, file)| arg.clone().or(file).filter(|s| !s.is_empty()));
        let mut next = || picked.next().flatten();
        let (secret, command, run, approve, mode, status_containers) =
            (next(), next(), next(), next(), next(), next());
        let command = command.unwrap_or_else(|| "/responder".to_owned());
        if !command.starts_with('/') || command.len() < 2 || command.contains(char::is_whitespace) {
            return Err(ConfigError::Invalid {
                key: "SLACK_COMMAND",
                reason: format!("{command:?}: a slash command like /responder"),
            });
        }
        let status_text = status_containers.unwrap_or_else(|| "k2-.*".to_owned());
        let status_containers = allow_list(&status_text).map_err(|e| ConfigError::Invalid {
            key: "SLACK_STATUS_CONTAINERS",
            reason: format!("{status_text:?} is not a regex: {e}"),
        })?;
        Ok(Self {
            signing_secret: secret.map(SecretString::from),
            command,
            run_allowed: ids("SLACK_RUN_ALLOWED", run)?,
            approve_allowed: ids("SLACK_APPROVE_ALLOWED", approve)?,
            mode_allowed: ids("SLACK_MODE_ALLOWED", mode)?,
            status_containers,
        })
    }
}

/// A comma-separated list of Slack user (`U…`, `W…`) and user group (`S…`) IDs.
fn ids(key: &'static str, text: Option<String>) -> Result<Vec<String>, ConfigError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(|id| {
            let well_formed = id.len() >= 2
                && id.starts_with(['U', 'W', 'S'])
                && id
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
            if well_formed {
                Ok(id.to_owned())
            } else {
                Err(ConfigError::Invalid {
                    key,
                    reason: format!("{id:?} is not a Slack user ID (U…/W…) or user group ID (S…)"),
                })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_lists_accept_users_and_groups_and_refuse_names() {
        let ok = ids("K", Some(" U012AB, S0GROUP ,,W9".into())).unwrap();
        assert_eq!(ok, ["U012AB", "S0GROUP", "W9"]);
        assert!(ids("K", None).unwrap().is_empty());
        for bad in ["alice", "@alice", "u012", "U01-2", "C0CHAN"] {
            assert!(ids("K", Some(bad.into())).is_err(), "{bad}");
        }
    }

    #[test]
    fn command_must_be_a_slash_command() {
        let none = SlackChatArgs::default();
        let loaded = SlackChatSettings::load(&none, Default::default()).unwrap();
        assert_eq!(loaded.command, "/responder");
        assert_eq!(loaded.status_containers.as_str(), "^(?:k2-.*)$");
        for bad in ["responder", "/", "/a b"] {
            let args = SlackChatArgs {
                slack_command: Some(bad.into()),
                ..Default::default()
            };
            assert!(
                SlackChatSettings::load(&args, Default::default()).is_err(),
                "{bad}"
            );
        }
        // The flag or environment wins over the file.
        let mut file: [Option<String>; 6] = Default::default();
        file[1] = Some("/from-file".into());
        let args = SlackChatArgs {
            slack_command: Some("/from-env".into()),
            ..Default::default()
        };
        assert_eq!(
            SlackChatSettings::load(&args, file.clone())
                .unwrap()
                .command,
            "/from-env"
        );
        assert_eq!(
            SlackChatSettings::load(&none, file).unwrap().command,
            "/from-file"
        );
    }
}
