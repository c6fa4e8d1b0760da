//! The service's settings: each from a flag, the environment, or a `--config` YAML file, in
//! that order of precedence, with defaults that run on a fresh machine. The layers are merged
//! into one struct ([`SettingsArgs`]), then every setting is checked and all bad ones are
//! reported together.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;
use secrecy::SecretString;

use crate::http::WebConfig;
use crate::notify::grafana::GrafanaConfig;
use crate::notify::pagerduty::PagerDutyConfig;
use crate::responders::Mode;

mod args;
mod chat;
mod check;
mod grafana;
mod layers;
mod pagerduty;
mod values;

pub use args::SettingsArgs;
pub use chat::SlackChatSettings;
pub use check::Problem;
pub use layers::PLAYBOOK_ENV_PREFIX;
pub use values::{Secret, Text};

use check::{
    at_least, boolean, duration, duration_or_zero, http_url, http_urls, text, text_or, whole_names,
    Check,
};

/// Why the settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Settings whose values cannot be used, every one of them.
    #[error("{}", render(.0))]
    Invalid(Vec<Problem>),
    /// The config file could not be read or parsed.
    #[error("config file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Listening beyond loopback without a webhook token would expose remediation.
    #[error("refusing to listen on {0} without RESPONDER_WEBHOOK_TOKEN: anyone who can reach this address could trigger remediation. Set RESPONDER_WEBHOOK_TOKEN (and the same bearer token in Alertmanager's http_config), or basic_auth_users in RESPONDER_WEB_CONFIG, or listen on 127.0.0.1")]
    UnauthenticatedListen(SocketAddr),
}

/// `2 bad settings:` and one indented line each.
fn render(problems: &[Problem]) -> String {
    let count = match problems.len() {
        1 => "1 bad setting".to_owned(),
        n => format!("{n} bad settings"),
    };
    let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
    format!("{count}:\n{}", lines.join("\n"))
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address.
    pub listen: SocketAddr,
    /// Database URL (may carry a password: log it through [`crate::store::redact_url`]).
    pub database_url: String,
    /// PostgreSQL pool size.
    pub database_pool_size: u32,
    /// PostgreSQL statement timeout.
    pub database_statement_timeout: std::time::Duration,
    /// How long a replica holds a run without renewing it.
    pub lease: std::time::Duration,
    /// Webhook bearer token.
    pub webhook_token: Option<SecretString>,
    /// The web configuration file (Basic auth users, TLS), loaded and checked.
    pub web_config: Option<WebConfig>,
    /// PagerDuty webhook signing secret; `None` leaves `/webhook/pagerduty` off.
    pub pagerduty_webhook_secret: Option<SecretString>,
    /// Global mode.
    pub mode: Mode,
    /// Slack bot token; `None` turns Slack delivery off.
    pub slack_bot_token: Option<SecretString>,
    /// Slack channel.
    pub slack_channel: String,
    /// Slack API base URL.
    pub slack_api_url: String,
    /// The mention text for escalations, e.g. `<!subteam^S0123>`.
    pub oncall_mention: Option<String>,
    /// Whether alerts no route matches get a Slack thread (they are recorded either way).
    pub slack_post_unrouted: bool,
    /// Routes directory.
    pub routes_dir: PathBuf,
    /// Responders directory.
    pub responders_dir: PathBuf,
    /// Max concurrent runs.
    pub max_runs: usize,
    /// Global destructive actions per minute.
    pub actions_per_minute: NonZeroU32,
    /// Webhook body limit in bytes.
    pub body_limit: usize,
    /// Bytes all request bodies may hold at once.
    pub body_budget: usize,
    /// Unprocessed journal entries beyond which webhooks are refused.
    pub max_backlog: u64,
    /// Bound on receiving and answering one request.
    pub request_timeout: std::time::Duration,
    /// Token for approval decisions over the API.
    pub admin_token: Option<SecretString>,
    /// How long an approval waits.
    pub approval_ttl: std::time::Duration,
    /// Values playbooks read as `config.<name>`, over the catalog's defaults
    /// (see [`crate::config::Catalog::playbook_config`]).
    pub playbook_config: BTreeMap<String, String>,
    /// Containers whose OOM kills become alerts, anchored to match whole names.
    pub oom_containers: Regex,
    /// PagerDuty outputs; each is off without its settings.
    pub pagerduty: PagerDutyConfig,
    /// Slash commands and buttons: signing secret, command name, who may do what.
    pub slack_chat: SlackChatSettings,
    /// Grafana annotations; `None` while off (URL or token not set).
    pub grafana: Option<GrafanaConfig>,
    /// Where people reach this service (`RESPONDER_PUBLIC_URL`, no trailing `/`), for links
    /// to incident pages; read whether Grafana annotations are on or not.
    pub public_url: Option<String>,
    /// Alertmanager peers silences are made on (`ALERTMANAGER_URL`, no trailing `/`); empty
    /// while off.
    pub alertmanager_urls: Vec<String>,
    /// On shutdown, how long webhooks are refused with 503 before the listener closes.
    pub shutdown_drain: std::time::Duration,
    /// The Docker engine's address; `None` uses the local socket. A setting, not only the
    /// process environment, so each instance (and each test) can have its own.
    pub docker_host: Option<String>,
}

impl Settings {
    /// Merges flags and environment over the `--config` file over defaults, and checks every
    /// setting.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] with every bad setting, or the file's error.
    pub fn load(args: &SettingsArgs) -> Result<Self, ConfigError> {
        Self::load_with_env(args, std::env::vars())
    }

    /// [`Settings::load`] with `env` for the `RESPONDER_CONFIG_<NAME>` variables.
    fn load_with_env(
        args: &SettingsArgs,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let layers = layers::merge(args, env, &mut problems)?;
        let mut check = Check::new(&layers, problems);
        let settings = Self::check(&layers.args, &mut check);
        match check.problems {
            problems if problems.is_empty() => Ok(settings),
            problems => Err(ConfigError::Invalid(problems)),
        }
    }

    /// Every setting parsed; a bad one is noted in `c` and its default stands in.
    fn check(a: &SettingsArgs, c: &mut Check<'_>) -> Self {
        let listen = c.parse("listen", &a.listen, "127.0.0.1:9095", |t| {
            t.parse::<SocketAddr>()
                .map_err(|e| format!("not an address ({e}); use one like 127.0.0.1:9095"))
        });
        let mode = c.parse("mode", &a.mode, "live", |t| {
            Mode::parse(t).ok_or_else(|| "use live or dry-run".to_owned())
        });
        let actions_per_minute = c.parse("actions_per_minute", &a.actions_per_minute, "10", |t| {
            at_least(1u32)(t)
                .map(|n| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
                .map_err(|e| format!("{e} (RESPONDER_MODE=dry-run never acts)"))
        });
        let body_limit = c.parse("body_limit", &a.body_limit, "4194304", at_least(1usize));
        let default_budget = body_limit.saturating_mul(8).to_string();
        let body_budget = c.parse(
            "body_budget",
            &a.body_budget,
            &default_budget,
            at_least(1usize),
        );
        if body_budget < body_limit {
            c.bad(
                "body_budget",
                &body_budget.to_string(),
                format!("less than the body limit ({body_limit}): a body at the limit could never be read"),
            );
        }
        let lease = c.parse("lease", &a.lease, "15s", |t| {
            duration("15s")(t).and_then(|d| {
                if d < Duration::from_secs(3) {
                    Err("must be at least 3s (leases are renewed every second)".to_owned())
                } else {
                    Ok(d)
                }
            })
        });
        let web_config = c.parse_given("web_config", &path_text(&a.web_config), |t| {
            WebConfig::load(t.as_ref()).map_err(|e| e.to_string())
        });
        let public_url = c.parse_given("public_url", &a.public_url, http_url);
        Self {
            listen,
            database_url: a
                .database_url
                .as_ref()
                .and_then(Secret::given)
                .map(|s| secrecy::ExposeSecret::expose_secret(&s).to_owned())
                .unwrap_or_else(|| "sqlite://data/alert-responder.db".to_owned()),
            database_pool_size: c.parse(
                "database_pool_size",
                &a.database_pool_size,
                "10",
                at_least(1),
            ),
            database_statement_timeout: c.parse(
                "database_statement_timeout",
                &a.database_statement_timeout,
                "30s",
                duration("30s"),
            ),
            lease,
            webhook_token: a.webhook_token.as_ref().and_then(Secret::given),
            web_config,
            pagerduty_webhook_secret: a.pagerduty_webhook_secret.as_ref().and_then(Secret::given),
            mode,
            slack_bot_token: a.slack_bot_token.as_ref().and_then(Secret::given),
            slack_channel: text_or(&a.slack_channel, "#incidents"),
            slack_api_url: c.parse(
                "slack_api_url",
                &a.slack_api_url,
                "https://slack.com/api",
                http_url,
            ),
            oncall_mention: text(&a.slack_oncall_group).map(|g| {
                if g.starts_with('<') {
                    g
                } else {
                    format!("<!subteam^{g}>")
                }
            }),
            slack_post_unrouted: c.parse(
                "slack_post_unrouted",
                &a.slack_post_unrouted,
                "false",
                boolean,
            ),
            routes_dir: a.routes_dir.clone().unwrap_or_else(|| "routes".into()),
            responders_dir: a
                .responders_dir
                .clone()
                .unwrap_or_else(|| "responders".into()),
            max_runs: c.parse("max_runs", &a.max_runs, "8", at_least(1)),
            actions_per_minute,
            body_limit,
            body_budget,
            max_backlog: c.parse("max_backlog", &a.max_backlog, "200000", |t| {
                at_least(1)(t).map_err(|e| format!("{e}: 0 would refuse every webhook"))
            }),
            request_timeout: c.parse(
                "request_timeout",
                &a.request_timeout,
                "30s",
                duration("30s"),
            ),
            admin_token: a.admin_token.as_ref().and_then(Secret::given),
            approval_ttl: c.parse("approval_ttl", &a.approval_ttl, "30m", duration("30m")),
            playbook_config: playbook_config(a, c),
            oom_containers: c.parse("oom_containers", &a.oom_containers, "k2-.*", whole_names),
            pagerduty: pagerduty::load(a, c),
            slack_chat: SlackChatSettings::load(a, c),
            grafana: grafana::load(a, public_url.as_ref(), c),
            public_url,
            alertmanager_urls: c.parse("alertmanager_url", &a.alertmanager_url, "", http_urls),
            shutdown_drain: c.parse(
                "shutdown_drain",
                &a.shutdown_drain,
                "2s",
                duration_or_zero("2s"),
            ),
            docker_host: text(&a.docker_host),
        }
    }

    /// Whether users in the web config file would be all that protects the listener.
    pub fn users_required(&self) -> bool {
        !self.listen.ip().is_loopback() && self.webhook_token.is_none()
    }

    /// Refuses settings that would expose remediation without authentication.
    ///
    /// # Errors
    /// [`ConfigError::UnauthenticatedListen`].
    pub fn check_exposure(&self) -> Result<(), ConfigError> {
        if self.users_required() && self.web_config.as_ref().is_none_or(|w| w.users.is_none()) {
            return Err(ConfigError::UnauthenticatedListen(self.listen));
        }
        Ok(())
    }

    /// How to open the store.
    pub fn store_options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            pool_size: self.database_pool_size,
            statement_timeout: self.database_statement_timeout,
            lease: self.lease,
        }
    }
}

/// A path setting as text, so a bad file is named like any other setting.
fn path_text(path: &Option<PathBuf>) -> Option<Text> {
    path.as_ref().map(|p| Text(p.display().to_string()))
}

/// `config.*` for playbooks as given (the catalog's defaults are under them); URLs without
/// a trailing slash.
fn playbook_config(a: &SettingsArgs, c: &mut Check<'_>) -> BTreeMap<String, String> {
    let mut config = BTreeMap::new();
    for (name, value) in &a.playbook_config {
        if name.is_empty()
            || !name
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
        {
            c.bad(
                &format!("playbook_config.{name}"),
                &value.0,
                "not a playbook setting name: use lowercase letters, digits and _",
            );
            continue;
        }
        let value = if value.0.contains("://") {
            value.0.trim_end_matches('/')
        } else {
            value.0.as_str()
        };
        config.insert(name.clone(), value.to_owned());
    }
    config
}

#[cfg(test)]
mod tests;
