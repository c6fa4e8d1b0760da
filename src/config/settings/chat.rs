//! Settings of the Slack slash command and buttons: the signing secret, the command's name,
//! who may run, approve and change the mode, and which containers `status` reports.

use regex::Regex;
use secrecy::SecretString;

use super::ConfigError;
use crate::sources::docker_events::allow_list;

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
    /// From the picked values: secret, command, run, approve and mode lists; then the regex.
    pub(super) fn load(
        values: [Option<String>; 5],
        status_containers: Option<String>,
    ) -> Result<Self, ConfigError> {
        let [secret, command, run, approve, mode] = values;
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
        let none: [Option<String>; 5] = Default::default();
        assert_eq!(
            SlackChatSettings::load(none, None).unwrap().command,
            "/responder"
        );
        for bad in ["responder", "/", "/a b"] {
            let mut v: [Option<String>; 5] = Default::default();
            v[1] = Some(bad.into());
            assert!(SlackChatSettings::load(v, None).is_err(), "{bad}");
        }
    }
}
