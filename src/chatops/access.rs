//! Who may do what: Slack user IDs and user group IDs from the settings. Group members come
//! from Slack's `usergroups.users.list` (scope `usergroups:read`), cached for a minute so a
//! burst of clicks asks once and a change in the group applies soon.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::SecretString;

use crate::notify::slack::SlackLink;

/// How long a group's member list is trusted.
const MEMBERS_TTL: Duration = Duration::from_secs(60);

/// How long one lookup may take: part of the 3 s Slack gives a command, so a slow lookup
/// refuses rather than times out.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(1);

/// Group ID -> when its members were read, and who they are.
type Members = HashMap<String, (Instant, Arc<HashSet<String>>)>;

/// Checks users against allow-lists, looking up group members in Slack.
#[derive(Debug)]
pub struct Access {
    slack: SlackLink,
    token: Option<SecretString>,
    members: Mutex<Members>,
}

impl Access {
    /// Group lookups go through `slack` with the bot `token` (none: groups never match).
    pub fn new(slack: SlackLink, token: Option<SecretString>) -> Self {
        Self {
            slack,
            token,
            members: Mutex::default(),
        }
    }

    /// `Ok` when `user` is listed, or is a member of a listed group; `Err` says why not.
    pub async fn check(&self, user: &str, allowed: &[String], setting: &str) -> Result<(), String> {
        if allowed.iter().any(|id| id == user) {
            return Ok(());
        }
        let mut problems = Vec::new();
        for group in allowed.iter().filter(|id| id.starts_with('S')) {
            match self.members(group).await {
                Ok(members) if members.contains(user) => return Ok(()),
                Ok(_) => {}
                Err(e) => problems.push(format!("could not read group {group}: {e}")),
            }
        }
        let mut why = if allowed.is_empty() {
            format!("nobody is allowed to do this from Slack ({setting} is empty)")
        } else {
            format!("you are not in {setting}")
        };
        for p in problems {
            why.push_str("; ");
            why.push_str(&p);
        }
        Err(why)
    }

    async fn members(&self, group: &str) -> Result<Arc<HashSet<String>>, String> {
        if let Some((at, members)) = self.lock().get(group) {
            if at.elapsed() < MEMBERS_TTL {
                return Ok(members.clone());
            }
        }
        let token = self.token.as_ref().ok_or("SLACK_BOT_TOKEN is not set")?;
        let lookup = self.slack.usergroup_members(token, group);
        let users = tokio::time::timeout(LOOKUP_TIMEOUT, lookup)
            .await
            .map_err(|_elapsed| "Slack unreachable (timed out)".to_owned())??;
        let members = Arc::new(users.into_iter().collect::<HashSet<_>>());
        self.lock()
            .insert(group.to_owned(), (Instant::now(), members.clone()));
        Ok(members)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Members> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }
}
