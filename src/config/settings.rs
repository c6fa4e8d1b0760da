//! The service's settings: each from a flag, the environment, or a `--config` YAML file, in
//! that order of precedence, with defaults that run on a fresh machine.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use clap::Args;
use regex::Regex;
use secrecy::SecretString;
use serde::Deserialize;

use crate::http::WebConfig;
use crate::notify::grafana::GrafanaConfig;
use crate::notify::pagerduty::PagerDutyConfig;
use crate::pattern::anchored as allow_list;
use crate::responders::Mode;

mod grafana;
mod pagerduty;
pub use grafana::GrafanaArgs;
pub use pagerduty::PagerDutyArgs;
mod chat;
pub use chat::{SlackChatArgs, SlackChatSettings};

/// Why the settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting has a value that cannot be used.
    #[error("{key}: {reason}")]
    Invalid {
        /// The environment variable name.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
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

/// Settings as given on the command line or in the environment (all optional).
#[derive(Clone, Default, Args)]
pub struct SettingsArgs {
    /// YAML file with any of the settings below (keys in lowercase, e.g. `listen:`).
    #[arg(long, global = true, env = "RESPONDER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:9095].
    #[arg(long, env = "RESPONDER_LISTEN")]
    pub listen: Option<String>,
    /// Database: sqlite://PATH (embedded, one process) or postgres://USER:PASSWORD@HOST/DB
    /// (several replicas on one database) [default: sqlite://data/alert-responder.db].
    #[arg(
        long,
        env = "RESPONDER_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Connections to PostgreSQL per replica [default: 10].
    #[arg(long, env = "RESPONDER_DATABASE_POOL_SIZE")]
    pub database_pool_size: Option<u32>,
    /// PostgreSQL cancels a statement running longer than this [default: 30s].
    #[arg(long, env = "RESPONDER_DATABASE_STATEMENT_TIMEOUT")]
    pub database_statement_timeout: Option<String>,
    /// How long a replica holds a run without renewing it; a replica that dies has its runs
    /// reported interrupted by another within about this long [default: 15s].
    #[arg(long, env = "RESPONDER_LEASE")]
    pub lease: Option<String>,
    /// Bearer token webhooks must present; required when listening beyond loopback, unless
    /// the web config file has `basic_auth_users`.
    #[arg(long, env = "RESPONDER_WEBHOOK_TOKEN", hide_env_values = true)]
    pub webhook_token: Option<String>,
    /// Prometheus web configuration file: `basic_auth_users` (bcrypt hashes) log people in to
    /// the page and /api/* and may send webhooks; `tls_server_config` serves HTTPS. Read again
    /// on SIGHUP [default: none: plain HTTP, bearer token only].
    #[arg(
        long = "web.config.file",
        env = "RESPONDER_WEB_CONFIG",
        value_name = "FILE"
    )]
    pub web_config: Option<PathBuf>,
    /// PagerDuty Webhooks V3 subscription secret; without it `POST /webhook/pagerduty`
    /// answers 503 (PagerDuty retries) and never accepts unsigned requests.
    #[arg(long, env = "PAGERDUTY_WEBHOOK_SECRET", hide_env_values = true)]
    pub pagerduty_webhook_secret: Option<String>,
    /// `live` acts; `dry-run` plans destructive steps and runs only read-only ones [default: live].
    #[arg(long, env = "RESPONDER_MODE")]
    pub mode: Option<String>,
    /// Slack bot token (xoxb-...); without it Slack delivery is off and messages are only stored.
    #[arg(long, env = "SLACK_BOT_TOKEN", hide_env_values = true)]
    pub slack_bot_token: Option<String>,
    /// Channel for incident threads [default: #incidents].
    #[arg(long, env = "SLACK_CHANNEL")]
    pub slack_channel: Option<String>,
    /// Slack Web API base URL [default: https://slack.com/api].
    #[arg(long, env = "SLACK_API_URL")]
    pub slack_api_url: Option<String>,
    /// Who to mention on escalation: a user group ID (S0123ABC) or a raw mention (<!here>)
    /// [default: the text "Data Platform Team (#data-platform-oncall)", no mention].
    #[arg(long, env = "SLACK_ONCALL_GROUP")]
    pub slack_oncall_group: Option<String>,
    /// Post a thread for alerts no route matches: true or false. They are recorded either
    /// way; Alertmanager's other receivers already tell people of them [default: false].
    #[arg(long, env = "SLACK_POST_UNROUTED")]
    pub slack_post_unrouted: Option<String>,
    /// Directory of routing rules [default: routes].
    #[arg(long, env = "RESPONDER_ROUTES_DIR", global = true)]
    pub routes_dir: Option<PathBuf>,
    /// Directory of responder playbooks [default: responders].
    #[arg(long, env = "RESPONDER_RESPONDERS_DIR", global = true)]
    pub responders_dir: Option<PathBuf>,
    /// Runs at once across all targets [default: 8].
    #[arg(long, env = "RESPONDER_MAX_RUNS")]
    pub max_runs: Option<usize>,
    /// Destructive actions per minute across all targets, a brake for alert storms [default: 10].
    #[arg(long, env = "RESPONDER_ACTIONS_PER_MINUTE")]
    pub actions_per_minute: Option<u32>,
    /// Largest accepted webhook body in bytes [default: 4194304].
    #[arg(long, env = "RESPONDER_BODY_LIMIT")]
    pub body_limit: Option<usize>,
    /// Bytes of request bodies held at once across all connections; a body beyond it is
    /// answered 503 with Retry-After before it is read [default: eight bodies at the limit,
    /// 33554432].
    #[arg(long, env = "RESPONDER_BODY_BUDGET")]
    pub body_budget: Option<usize>,
    /// Unprocessed alerts the journal may hold; beyond it, webhooks are answered 503 and
    /// Alertmanager and PagerDuty retry (Docker deaths and `/responder run` are still taken)
    /// [default: 200000].
    #[arg(long, env = "RESPONDER_MAX_BACKLOG")]
    pub max_backlog: Option<u64>,
    /// Bound on receiving a request (headers and body) and answering it; slower clients are
    /// cut off (408) [default: 30s].
    #[arg(long, env = "RESPONDER_REQUEST_TIMEOUT")]
    pub request_timeout: Option<String>,
    /// Bearer token for approving or denying steps over the API; without it approvals can
    /// only expire.
    #[arg(long, env = "RESPONDER_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// How long a step waits for approval before it expires and escalates [default: 30m].
    #[arg(long, env = "RESPONDER_APPROVAL_TTL")]
    pub approval_ttl: Option<String>,
    /// Kafka container playbooks run kafka-consumer-groups in (`config.kafka_container`)
    /// [default: k2-kafka].
    #[arg(long, env = "KAFKA_CONTAINER")]
    pub kafka_container: Option<String>,
    /// Spark master container for spark-sql and checkpoints (`config.spark_master_container`)
    /// [default: k2-spark-master].
    #[arg(long, env = "SPARK_MASTER_CONTAINER")]
    pub spark_master_container: Option<String>,
    /// Spark master UI URL (`config.spark_master_url`) [default: http://localhost:8090].
    #[arg(long, env = "SPARK_MASTER_URL")]
    pub spark_master_url: Option<String>,
    /// Schema Registry URL (`config.schema_registry_url`) [default: http://localhost:8081].
    #[arg(long, env = "SCHEMA_REGISTRY_URL")]
    pub schema_registry_url: Option<String>,
    /// Prometheus URL for trends (`config.prometheus_url`); unset skips trend steps.
    #[arg(long, env = "PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,
    /// Checkpoint cleaner container (`config.cleaner_container`) [default: k2-checkpoint-cleaner].
    #[arg(long, env = "CHECKPOINT_CLEANER_CONTAINER")]
    pub cleaner_container: Option<String>,
    /// Regex of whole container names whose OOM kills, and exits with checkpoint-corruption
    /// symptoms in their last log lines, become alerts [default: k2-.*].
    #[arg(long, env = "RESPONDER_OOM_CONTAINERS")]
    pub oom_containers: Option<String>,
    /// PagerDuty outputs (notes, Events API v2).
    #[command(flatten)]
    pub pagerduty: PagerDutyArgs,
    /// The Slack command and buttons.
    #[command(flatten)]
    pub slack_chat: SlackChatArgs,
    /// Grafana annotations.
    #[command(flatten)]
    pub grafana: GrafanaArgs,
    /// Alertmanager's base URL, or an HA pair's comma-separated: routes with `silence: true`
    /// silence their alert there while its responder acts and watches the fix
    /// [default: none: no silences].
    #[arg(long, env = "ALERTMANAGER_URL")]
    pub alertmanager_url: Option<String>,
    /// On SIGTERM, how long webhooks keep being answered 503 before the listener closes, so
    /// load balancers and Alertmanager see a refusal, not a reset [default: 2s].
    #[arg(long, env = "RESPONDER_SHUTDOWN_DRAIN")]
    pub shutdown_drain: Option<String>,
    /// Docker engine, e.g. `unix:///var/run/docker.sock` or `tcp://127.0.0.1:2375`
    /// [default: the local socket].
    #[arg(long, env = "DOCKER_HOST")]
    pub docker_host: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<String>,
    database_url: Option<String>,
    database_pool_size: Option<u32>,
    database_statement_timeout: Option<String>,
    lease: Option<String>,
    webhook_token: Option<String>,
    web_config: Option<PathBuf>,
    pagerduty_webhook_secret: Option<String>,
    mode: Option<String>,
    slack_bot_token: Option<String>,
    slack_channel: Option<String>,
    slack_api_url: Option<String>,
    slack_oncall_group: Option<String>,
    slack_post_unrouted: Option<bool>,
    routes_dir: Option<PathBuf>,
    responders_dir: Option<PathBuf>,
    max_runs: Option<usize>,
    actions_per_minute: Option<u32>,
    body_limit: Option<usize>,
    body_budget: Option<usize>,
    max_backlog: Option<u64>,
    request_timeout: Option<String>,
    admin_token: Option<String>,
    approval_ttl: Option<String>,
    kafka_container: Option<String>,
    spark_master_container: Option<String>,
    spark_master_url: Option<String>,
    schema_registry_url: Option<String>,
    prometheus_url: Option<String>,
    cleaner_container: Option<String>,
    oom_containers: Option<String>,
    pagerduty_api_token: Option<String>,
    pagerduty_from: Option<String>,
    pagerduty_api_url: Option<String>,
    pagerduty_routing_key: Option<String>,
    pagerduty_events_url: Option<String>,
    grafana_url: Option<String>,
    grafana_api_token: Option<String>,
    grafana_dashboard_uid: Option<String>,
    public_url: Option<String>,
    alertmanager_url: Option<String>,
    slack_signing_secret: Option<String>,
    slack_command: Option<String>,
    slack_run_allowed: Option<String>,
    slack_approve_allowed: Option<String>,
    slack_mode_allowed: Option<String>,
    slack_status_containers: Option<String>,
    shutdown_drain: Option<String>,
    docker_host: Option<String>,
}

// Written by hand so the tokens, plain strings until validated, can never reach a log.
impl std::fmt::Debug for SettingsArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |s: &Option<String>| s.as_ref().map(|_| "[redacted]");
        f.debug_struct("SettingsArgs")
            .field("config", &self.config)
            .field("listen", &self.listen)
            .field(
                "database_url",
                &self.database_url.as_deref().map(crate::store::redact_url),
            )
            .field("database_pool_size", &self.database_pool_size)
            .field(
                "database_statement_timeout",
                &self.database_statement_timeout,
            )
            .field("lease", &self.lease)
            .field("webhook_token", &redacted(&self.webhook_token))
            .field("web_config", &self.web_config)
            .field(
                "pagerduty_webhook_secret",
                &redacted(&self.pagerduty_webhook_secret),
            )
            .field("mode", &self.mode)
            .field("slack_bot_token", &redacted(&self.slack_bot_token))
            .field("slack_channel", &self.slack_channel)
            .field("slack_api_url", &self.slack_api_url)
            .field("slack_oncall_group", &self.slack_oncall_group)
            .field("slack_post_unrouted", &self.slack_post_unrouted)
            .field("routes_dir", &self.routes_dir)
            .field("responders_dir", &self.responders_dir)
            .field("admin_token", &redacted(&self.admin_token))
            .field("oom_containers", &self.oom_containers)
            .field("pagerduty", &self.pagerduty)
            .field("slack_chat", &self.slack_chat)
            .field("grafana", &self.grafana)
            .field("alertmanager_url", &self.alertmanager_url)
            .field("docker_host", &self.docker_host)
            .finish_non_exhaustive()
    }
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
    /// Values playbooks read as `config.<name>`.
    pub playbook_config: std::collections::BTreeMap<String, String>,
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

/// The names playbooks may read as `config.<name>`, checked when the catalog loads.
pub const PLAYBOOK_CONFIG: &[&str] = &[
    "kafka_container",
    "spark_master_container",
    "spark_master_url",
    "schema_registry_url",
    "prometheus_url",
    "cleaner_container",
];

impl Settings {
    /// Merges flags/env over the `--config` file over defaults, and validates the result.
    pub fn load(args: &SettingsArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let pick =
            |a: &Option<String>, f: Option<String>| a.clone().or(f).filter(|s| !s.is_empty());
        let listen_text =
            pick(&args.listen, file.listen).unwrap_or_else(|| "127.0.0.1:9095".to_owned());
        let listen = listen_text.parse().map_err(|e| ConfigError::Invalid {
            key: "RESPONDER_LISTEN",
            reason: format!("{listen_text:?} is not an address like 127.0.0.1:9095: {e}"),
        })?;
        let mode_text = pick(&args.mode, file.mode).unwrap_or_else(|| "live".to_owned());
        let mode = Mode::parse(&mode_text).ok_or_else(|| ConfigError::Invalid {
            key: "RESPONDER_MODE",
            reason: format!("{mode_text:?}: use live or dry-run"),
        })?;
        let actions = args
            .actions_per_minute
            .or(file.actions_per_minute)
            .unwrap_or(10);
        let actions_per_minute = NonZeroU32::new(actions).ok_or_else(|| ConfigError::Invalid {
            key: "RESPONDER_ACTIONS_PER_MINUTE",
            reason: "must be at least 1 (use RESPONDER_MODE=dry-run to never act)".to_owned(),
        })?;
        let max_runs = args.max_runs.or(file.max_runs).unwrap_or(8);
        if max_runs == 0 {
            return Err(ConfigError::Invalid {
                key: "RESPONDER_MAX_RUNS",
                reason: "must be at least 1".to_owned(),
            });
        }
        let file_config = [
            file.kafka_container,
            file.spark_master_container,
            file.spark_master_url,
            file.schema_registry_url,
            file.prometheus_url,
            file.cleaner_container,
        ];
        let pagerduty_file = [
            file.pagerduty_api_token,
            file.pagerduty_from,
            file.pagerduty_api_url,
            file.pagerduty_routing_key,
            file.pagerduty_events_url,
        ];
        let public_url = (args.grafana.public_url.clone())
            .or_else(|| file.public_url.clone())
            .filter(|u| !u.is_empty())
            .map(|u| u.trim_end_matches('/').to_owned());
        let grafana_file = [
            file.grafana_url,
            file.grafana_api_token,
            file.grafana_dashboard_uid,
            file.public_url,
        ];
        let ttl_text =
            pick(&args.approval_ttl, file.approval_ttl).unwrap_or_else(|| "30m".to_owned());
        let approval_ttl =
            humantime::parse_duration(&ttl_text).map_err(|e| ConfigError::Invalid {
                key: "RESPONDER_APPROVAL_TTL",
                reason: format!("{ttl_text:?} is not a duration like 30m: {e}"),
            })?;
        let drain_text =
            pick(&args.shutdown_drain, file.shutdown_drain).unwrap_or_else(|| "2s".to_owned());
        let shutdown_drain =
            humantime::parse_duration(&drain_text).map_err(|e| ConfigError::Invalid {
                key: "RESPONDER_SHUTDOWN_DRAIN",
                reason: format!("{drain_text:?} is not a duration like 2s: {e}"),
            })?;
        let database_pool_size = args
            .database_pool_size
            .or(file.database_pool_size)
            .unwrap_or(10);
        if database_pool_size == 0 {
            return Err(ConfigError::Invalid {
                key: "RESPONDER_DATABASE_POOL_SIZE",
                reason: "must be at least 1".to_owned(),
            });
        }
        let database_statement_timeout = duration_setting(
            "RESPONDER_DATABASE_STATEMENT_TIMEOUT",
            pick(
                &args.database_statement_timeout,
                file.database_statement_timeout,
            ),
            "30s",
        )?;
        let lease = duration_setting("RESPONDER_LEASE", pick(&args.lease, file.lease), "15s")?;
        if lease < std::time::Duration::from_secs(3) {
            return Err(ConfigError::Invalid {
                key: "RESPONDER_LEASE",
                reason: "must be at least 3s (leases are renewed every second)".to_owned(),
            });
        }
        let timeout_text =
            pick(&args.request_timeout, file.request_timeout).unwrap_or_else(|| "30s".to_owned());
        let request_timeout = humantime::parse_duration(&timeout_text)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| ConfigError::Invalid {
                key: "RESPONDER_REQUEST_TIMEOUT",
                reason: format!("{timeout_text:?} is not a positive duration like 30s"),
            })?;
        let body_limit = args
            .body_limit
            .or(file.body_limit)
            .unwrap_or(4 * 1024 * 1024);
        let body_budget = args
            .body_budget
            .or(file.body_budget)
            .unwrap_or(body_limit.saturating_mul(8));
        if body_budget < body_limit {
            return Err(ConfigError::Invalid {
                key: "RESPONDER_BODY_BUDGET",
                reason: format!(
                    "{body_budget} is less than RESPONDER_BODY_LIMIT ({body_limit}): a body at the limit could never be read"
                ),
            });
        }
        let max_backlog = args.max_backlog.or(file.max_backlog).unwrap_or(200_000);
        if max_backlog == 0 {
            return Err(ConfigError::Invalid {
                key: "RESPONDER_MAX_BACKLOG",
                reason: "0 would refuse every webhook; give at least 1".to_owned(),
            });
        }
        let oom_text =
            pick(&args.oom_containers, file.oom_containers).unwrap_or_else(|| "k2-.*".to_owned());
        let oom_containers = allow_list(&oom_text).map_err(|e| ConfigError::Invalid {
            key: "RESPONDER_OOM_CONTAINERS",
            reason: format!("{oom_text:?} is not a regex: {e}"),
        })?;
        let oncall_mention = pick(&args.slack_oncall_group, file.slack_oncall_group).map(|g| {
            if g.starts_with('<') {
                g
            } else {
                format!("<!subteam^{g}>")
            }
        });
        let slack_post_unrouted = match args.slack_post_unrouted.as_deref() {
            Some(text) => parse_bool("SLACK_POST_UNROUTED", text)?,
            None => file.slack_post_unrouted.unwrap_or(false),
        };
        let web_config = match args.web_config.clone().or(file.web_config) {
            Some(path) => Some(WebConfig::load(&path).map_err(|e| ConfigError::Invalid {
                key: "RESPONDER_WEB_CONFIG",
                reason: e.to_string(),
            })?),
            None => None,
        };
        let slack_chat = SlackChatSettings::load(
            &args.slack_chat,
            [
                file.slack_signing_secret,
                file.slack_command,
                file.slack_run_allowed,
                file.slack_approve_allowed,
                file.slack_mode_allowed,
                file.slack_status_containers,
            ],
        )?;
        Ok(Self {
            listen,
            database_url: pick(&args.database_url, file.database_url)
                .unwrap_or_else(|| "sqlite://data/alert-responder.db".to_owned()),
            database_pool_size,
            database_statement_timeout,
            lease,
            webhook_token: pick(&args.webhook_token, file.webhook_token).map(SecretString::from),
            web_config,
            pagerduty_webhook_secret: pick(
                &args.pagerduty_webhook_secret,
                file.pagerduty_webhook_secret,
            )
            .map(SecretString::from),
            mode,
            slack_bot_token: pick(&args.slack_bot_token, file.slack_bot_token)
                .map(SecretString::from),
            slack_channel: pick(&args.slack_channel, file.slack_channel)
                .unwrap_or_else(|| "#incidents".to_owned()),
            slack_api_url: pick(&args.slack_api_url, file.slack_api_url)
                .unwrap_or_else(|| "https://slack.com/api".to_owned())
                .trim_end_matches('/')
                .to_owned(),
            oncall_mention,
            slack_post_unrouted,
            routes_dir: args
                .routes_dir
                .clone()
                .or(file.routes_dir)
                .unwrap_or_else(|| "routes".into()),
            responders_dir: args
                .responders_dir
                .clone()
                .or(file.responders_dir)
                .unwrap_or_else(|| "responders".into()),
            max_runs,
            actions_per_minute,
            body_limit,
            body_budget,
            max_backlog,
            request_timeout,
            admin_token: pick(&args.admin_token, file.admin_token).map(SecretString::from),
            approval_ttl,
            playbook_config: playbook_config(args, file_config),
            oom_containers,
            pagerduty: pagerduty::load(&args.pagerduty, pagerduty_file),
            slack_chat,
            grafana: grafana::load(&args.grafana, grafana_file)?,
            public_url,
            alertmanager_urls: alertmanager_urls(pick(
                &args.alertmanager_url,
                file.alertmanager_url,
            ))?,
            shutdown_drain,
            docker_host: pick(&args.docker_host, file.docker_host),
        })
    }

    /// Whether users in the web config file would be all that protects the listener.
    pub fn users_required(&self) -> bool {
        !self.listen.ip().is_loopback() && self.webhook_token.is_none()
    }

    /// Refuses settings that would expose remediation without authentication.
    pub fn check_exposure(&self) -> Result<(), ConfigError> {
        if self.users_required() && self.web_config.as_ref().is_none_or(|w| w.users.is_none()) {
            return Err(ConfigError::UnauthenticatedListen(self.listen));
        }
        Ok(())
    }
}

/// A yes/no setting from a flag or the environment.
/// `ALERTMANAGER_URL`: base URLs, comma-separated (an HA pair lists both), each http(s).
fn alertmanager_urls(text: Option<String>) -> Result<Vec<String>, ConfigError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    let mut urls = Vec::new();
    for url in text.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        let parsed = reqwest::Url::parse(url).map_err(|e| ConfigError::Invalid {
            key: "ALERTMANAGER_URL",
            reason: format!("{url:?} is not a URL like http://alertmanager:9093: {e}"),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::Invalid {
                key: "ALERTMANAGER_URL",
                reason: format!("{url:?}: use an http or https URL"),
            });
        }
        urls.push(url.trim_end_matches('/').to_owned());
    }
    Ok(urls)
}

fn parse_bool(key: &'static str, text: &str) -> Result<bool, ConfigError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(ConfigError::Invalid {
            key,
            reason: format!("{text:?}: use true or false"),
        }),
    }
}

/// `config.*` for playbooks: flag/env over file over default, URLs without a trailing slash.
fn playbook_config(
    args: &SettingsArgs,
    file: [Option<String>; 6],
) -> std::collections::BTreeMap<String, String> {
    let from_args = [
        &args.kafka_container,
        &args.spark_master_container,
        &args.spark_master_url,
        &args.schema_registry_url,
        &args.prometheus_url,
        &args.cleaner_container,
    ];
    let defaults = [
        "k2-kafka",
        "k2-spark-master",
        "http://localhost:8090",
        "http://localhost:8081",
        "",
        "k2-checkpoint-cleaner",
    ];
    PLAYBOOK_CONFIG
        .iter()
        .zip(from_args)
        .zip(file)
        .zip(defaults)
        .map(|(((name, arg), file), default)| {
            let value = arg
                .clone()
                .or(file)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned());
            ((*name).to_owned(), value.trim_end_matches('/').to_owned())
        })
        .collect()
}

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    serde_yaml_ng::from_str(&text).map_err(|e| ConfigError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests;

/// A duration setting (`30s`, `2m`), its default when unset, or an error naming the key.
fn duration_setting(
    key: &'static str,
    text: Option<String>,
    default: &str,
) -> Result<std::time::Duration, ConfigError> {
    let text = text.unwrap_or_else(|| default.to_owned());
    match humantime::parse_duration(&text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(ConfigError::Invalid {
            key,
            reason: format!("{text:?} must be longer than zero"),
        }),
        Err(e) => Err(ConfigError::Invalid {
            key,
            reason: format!("{text:?} is not a duration like {default}: {e}"),
        }),
    }
}

impl Settings {
    /// How to open the store.
    pub fn store_options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            pool_size: self.database_pool_size,
            statement_timeout: self.database_statement_timeout,
            lease: self.lease,
        }
    }
}
