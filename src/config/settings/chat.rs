//! Settings of the Slack slash command and buttons: the signing secret, the command's name,
//! who may run, approve and change the mode, and which containers `status` reports.

use regex::Regex;
use secrecy::SecretString;

use super::check::{whole_names, Check};
use super::SettingsArgs;

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
    /// Checks the Slack chat-ops settings, noting every bad one.
    pub(super) fn load(args: &SettingsArgs, check: &mut Check<'_>) -> Self {
        let command = check.parse(
            "slack_command",
            &args.slack_command,
            "/responder",
            slash_command,
        );
        let status_containers = check.parse(
            "slack_status_containers",
            &args.slack_status_containers,
            "k2-.*",
            whole_names,
        );
        let mut ids = |key: &str, given| check.parse(key, given, "", ids);
        Self {
            signing_secret: args.slack_signing_secret.as_ref().and_then(|s| s.given()),
            command,
            run_allowed: ids("slack_run_allowed", &args.slack_run_allowed),
            approve_allowed: ids("slack_approve_allowed", &args.slack_approve_allowed),
            mode_allowed: ids("slack_mode_allowed", &args.slack_mode_allowed),
            status_containers,
        }
    }
}

fn slash_command(command: &str) -> Result<String, String> {
    if !command.starts_with('/') || command.len() < 2 || command.contains(char::is_whitespace) {
        return Err("use a slash command like /responder".to_owned());
    }
    Ok(command.to_owned())
}

/// A comma-separated list of Slack user (`U…`, `W…`) and user group (`S…`) IDs.
fn ids(text: &str) -> Result<Vec<String>, String> {
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
                Err(format!(
                    "{id:?} is not a Slack user ID (U…/W…) or user group ID (S…)"
                ))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::Settings;
    use super::*;

    #[test]
    fn id_lists_accept_users_and_groups_and_refuse_names() {
        let ok = ids(" U012AB, S0GROUP ,,W9").unwrap();
        assert_eq!(ok, ["U012AB", "S0GROUP", "W9"]);
        for bad in ["alice", "@alice", "u012", "U01-2", "C0CHAN"] {
            assert!(ids(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn command_must_be_a_slash_command() {
        let loaded = Settings::load(&SettingsArgs::default()).unwrap().slack_chat;
        assert_eq!(loaded.command, "/responder");
        assert_eq!(loaded.status_containers.as_str(), "^(?:k2-.*)$");
        assert!(loaded.run_allowed.is_empty());
        for bad in ["responder", "/", "/a b"] {
            let args = SettingsArgs {
                slack_command: Some(bad.into()),
                ..Default::default()
            };
            let err = Settings::load(&args).unwrap_err().to_string();
            assert!(err.contains(&format!("SLACK_COMMAND={bad}")), "{err}");
        }
        // The flag or environment wins over the file.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "slack_command: /from-file\n").unwrap();
        let from_file = SettingsArgs {
            config: Some(path),
            ..Default::default()
        };
        let loaded = Settings::load(&from_file).unwrap().slack_chat;
        assert_eq!(loaded.command, "/from-file");
        let args = SettingsArgs {
            slack_command: Some("/from-env".into()),
            ..from_file
        };
        assert_eq!(
            Settings::load(&args).unwrap().slack_chat.command,
            "/from-env"
        );
    }
}
