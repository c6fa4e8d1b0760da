//! The one settings struct: every setting as a flag with its environment variable (clap) and
//! as a `--config` file key (serde), all kept as text until validation. A field's name is its
//! file key and its flag (`max_runs`, `--max-runs`); adding a setting is one field here and
//! one line in [`super::Settings::load`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use serde::{Deserialize, Serialize};

use super::values::{Secret, Text};

/// Every setting as given on the command line, in the environment or in the `--config` file.
/// `Debug` is derived: secrets are [`Secret`]s and print `[redacted]`.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct SettingsArgs {
    /// YAML file with any of the settings below, keys in lowercase (`listen:`, `max_runs:`),
    /// and `playbook_config:` (a map of playbook settings). The environment and flags win
    /// over it.
    #[arg(long, global = true, env = "RESPONDER_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:9095].
    #[arg(long, env = "RESPONDER_LISTEN")]
    pub listen: Option<Text>,
    /// Database: sqlite://PATH (embedded, one process) or postgres://USER:PASSWORD@HOST/DB
    /// (several replicas on one database) [default: sqlite://data/alert-responder.db].
    #[arg(
        long,
        env = "RESPONDER_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<Secret>,
    /// Connections to PostgreSQL per replica [default: 10].
    #[arg(long, env = "RESPONDER_DATABASE_POOL_SIZE")]
    pub database_pool_size: Option<Text>,
    /// PostgreSQL cancels a statement running longer than this [default: 30s].
    #[arg(long, env = "RESPONDER_DATABASE_STATEMENT_TIMEOUT")]
    pub database_statement_timeout: Option<Text>,
    /// How long a replica holds a run without renewing it; a replica that dies has its runs
    /// reported interrupted by another within about this long [default: 15s].
    #[arg(long, env = "RESPONDER_LEASE")]
    pub lease: Option<Text>,
    /// Bearer token webhooks must present; required when listening beyond loopback, unless
    /// the web config file has `basic_auth_users`.
    #[arg(long, env = "RESPONDER_WEBHOOK_TOKEN", hide_env_values = true)]
    pub webhook_token: Option<Secret>,
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
    pub pagerduty_webhook_secret: Option<Secret>,
    /// `live` acts; `dry-run` plans destructive steps and runs only read-only ones [default: live].
    #[arg(long, env = "RESPONDER_MODE")]
    pub mode: Option<Text>,
    /// Slack bot token (xoxb-...); without it Slack delivery is off and messages are only stored.
    #[arg(long, env = "SLACK_BOT_TOKEN", hide_env_values = true)]
    pub slack_bot_token: Option<Secret>,
    /// Channel for incident threads [default: #incidents].
    #[arg(long, env = "SLACK_CHANNEL")]
    pub slack_channel: Option<Text>,
    /// Slack Web API base URL [default: https://slack.com/api].
    #[arg(long, env = "SLACK_API_URL")]
    pub slack_api_url: Option<Text>,
    /// Who to mention on escalation: a user group ID (S0123ABC) or a raw mention (<!here>)
    /// [default: the text "Data Platform Team (#data-platform-oncall)", no mention].
    #[arg(long, env = "SLACK_ONCALL_GROUP")]
    pub slack_oncall_group: Option<Text>,
    /// Post a thread for alerts no route matches: true or false. They are recorded either
    /// way; Alertmanager's other receivers already tell people of them [default: false].
    #[arg(long, env = "SLACK_POST_UNROUTED")]
    pub slack_post_unrouted: Option<Text>,
    /// Slack app signing secret; without it `/slack/commands` and `/slack/interactions` answer 503.
    #[arg(long, env = "SLACK_SIGNING_SECRET", hide_env_values = true)]
    pub slack_signing_secret: Option<Secret>,
    /// The slash command this service answers [default: /responder].
    #[arg(long, env = "SLACK_COMMAND")]
    pub slack_command: Option<Text>,
    /// Slack user (U…) and user group (S…) IDs allowed to `run`, comma-separated [default: nobody].
    #[arg(long, env = "SLACK_RUN_ALLOWED")]
    pub slack_run_allowed: Option<Text>,
    /// Slack user and user group IDs allowed to approve or deny steps [default: nobody].
    #[arg(long, env = "SLACK_APPROVE_ALLOWED")]
    pub slack_approve_allowed: Option<Text>,
    /// Slack user and user group IDs allowed to change the mode [default: nobody].
    #[arg(long, env = "SLACK_MODE_ALLOWED")]
    pub slack_mode_allowed: Option<Text>,
    /// Regex of whole container names `/responder status` reports [default: k2-.*].
    #[arg(long, env = "SLACK_STATUS_CONTAINERS")]
    pub slack_status_containers: Option<Text>,
    /// Directory of routing rules [default: routes].
    #[arg(long, env = "RESPONDER_ROUTES_DIR", global = true)]
    pub routes_dir: Option<PathBuf>,
    /// Directory of responder playbooks, and of the defaults of their settings (a file
    /// holding `playbook_config:`) [default: responders].
    #[arg(long, env = "RESPONDER_RESPONDERS_DIR", global = true)]
    pub responders_dir: Option<PathBuf>,
    /// Runs at once across all targets [default: 8].
    #[arg(long, env = "RESPONDER_MAX_RUNS")]
    pub max_runs: Option<Text>,
    /// Destructive actions per minute across all targets, a brake for alert storms [default: 10].
    #[arg(long, env = "RESPONDER_ACTIONS_PER_MINUTE")]
    pub actions_per_minute: Option<Text>,
    /// Largest accepted webhook body in bytes [default: 4194304].
    #[arg(long, env = "RESPONDER_BODY_LIMIT")]
    pub body_limit: Option<Text>,
    /// Bytes of request bodies held at once across all connections; a body beyond it is
    /// answered 503 with Retry-After before it is read [default: eight bodies at the limit,
    /// 33554432].
    #[arg(long, env = "RESPONDER_BODY_BUDGET")]
    pub body_budget: Option<Text>,
    /// Unprocessed alerts the journal may hold; beyond it, webhooks are answered 503 and
    /// Alertmanager and PagerDuty retry (Docker deaths and `/responder run` are still taken)
    /// [default: 200000].
    #[arg(long, env = "RESPONDER_MAX_BACKLOG")]
    pub max_backlog: Option<Text>,
    /// Bound on receiving a request (headers and body) and answering it; slower clients are
    /// cut off (408) [default: 30s].
    #[arg(long, env = "RESPONDER_REQUEST_TIMEOUT")]
    pub request_timeout: Option<Text>,
    /// Bearer token for approving or denying steps over the API; without it approvals can
    /// only expire.
    #[arg(long, env = "RESPONDER_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,
    /// How long a step waits for approval before it expires and escalates [default: 30m].
    #[arg(long, env = "RESPONDER_APPROVAL_TTL")]
    pub approval_ttl: Option<Text>,
    /// Playbook setting `config.kafka_container`, like RESPONDER_CONFIG_KAFKA_CONTAINER
    /// [default: responders/playbook-config.yaml].
    #[arg(long, env = "KAFKA_CONTAINER")]
    pub kafka_container: Option<Text>,
    /// Playbook setting `config.spark_master_container`, like
    /// RESPONDER_CONFIG_SPARK_MASTER_CONTAINER [default: responders/playbook-config.yaml].
    #[arg(long, env = "SPARK_MASTER_CONTAINER")]
    pub spark_master_container: Option<Text>,
    /// Playbook setting `config.spark_master_url`, like RESPONDER_CONFIG_SPARK_MASTER_URL
    /// [default: responders/playbook-config.yaml].
    #[arg(long, env = "SPARK_MASTER_URL")]
    pub spark_master_url: Option<Text>,
    /// Playbook setting `config.schema_registry_url`, like RESPONDER_CONFIG_SCHEMA_REGISTRY_URL
    /// [default: responders/playbook-config.yaml].
    #[arg(long, env = "SCHEMA_REGISTRY_URL")]
    pub schema_registry_url: Option<Text>,
    /// Prometheus URL for trends and charts (`config.prometheus_url`, like
    /// RESPONDER_CONFIG_PROMETHEUS_URL); unset skips trend steps and charts.
    #[arg(long, env = "PROMETHEUS_URL")]
    pub prometheus_url: Option<Text>,
    /// Playbook setting `config.cleaner_container`, like RESPONDER_CONFIG_CLEANER_CONTAINER
    /// [default: responders/playbook-config.yaml].
    #[arg(long, env = "CHECKPOINT_CLEANER_CONTAINER")]
    pub cleaner_container: Option<Text>,
    /// Regex of whole container names whose OOM kills, and exits with checkpoint-corruption
    /// symptoms in their last log lines, become alerts [default: k2-.*].
    #[arg(long, env = "RESPONDER_OOM_CONTAINERS")]
    pub oom_containers: Option<Text>,
    /// PagerDuty REST API token: incidents' labels are read from their first alert's details;
    /// with PAGERDUTY_FROM, runs on PagerDuty incidents end with a note on them.
    #[arg(long, env = "PAGERDUTY_API_TOKEN", hide_env_values = true)]
    pub pagerduty_api_token: Option<Secret>,
    /// Email of the PagerDuty user notes are written as (the `From` header).
    #[arg(long, env = "PAGERDUTY_FROM")]
    pub pagerduty_from: Option<Text>,
    /// PagerDuty REST API base URL [default: https://api.pagerduty.com].
    #[arg(long, env = "PAGERDUTY_API_URL")]
    pub pagerduty_api_url: Option<Text>,
    /// Events API v2 integration key; escalations of other incidents trigger PagerDuty events.
    #[arg(long, env = "PAGERDUTY_ROUTING_KEY", hide_env_values = true)]
    pub pagerduty_routing_key: Option<Secret>,
    /// PagerDuty Events API base URL [default: https://events.pagerduty.com].
    #[arg(long, env = "PAGERDUTY_EVENTS_URL")]
    pub pagerduty_events_url: Option<Text>,
    /// Grafana's base URL; with GRAFANA_API_TOKEN every run leaves an annotation there.
    #[arg(long, env = "GRAFANA_URL")]
    pub grafana_url: Option<Text>,
    /// Grafana service account token (Editor, or annotations:write), sent as a Bearer token.
    #[arg(long, env = "GRAFANA_API_TOKEN", hide_env_values = true)]
    pub grafana_api_token: Option<Secret>,
    /// The dashboard annotations belong to [default: none: organization annotations, shown on
    /// every dashboard whose annotation query asks for the `alert-responder` tag].
    #[arg(long, env = "GRAFANA_DASHBOARD_UID")]
    pub grafana_dashboard_uid: Option<Text>,
    /// Where people open this service, e.g. `https://responder.example`: annotations and
    /// Slack threads link to incident pages under it [default: no link].
    #[arg(long, env = "RESPONDER_PUBLIC_URL")]
    pub public_url: Option<Text>,
    /// Alertmanager's base URL, or an HA pair's comma-separated: routes with `silence: true`
    /// silence their alert there while its responder acts and watches the fix
    /// [default: none: no silences].
    #[arg(long, env = "ALERTMANAGER_URL")]
    pub alertmanager_url: Option<Text>,
    /// On SIGTERM, how long webhooks keep being answered 503 before the listener closes, so
    /// load balancers and Alertmanager see a refusal, not a reset [default: 2s].
    #[arg(long, env = "RESPONDER_SHUTDOWN_DRAIN")]
    pub shutdown_drain: Option<Text>,
    /// Docker engine, e.g. `unix:///var/run/docker.sock` or `tcp://127.0.0.1:2375`
    /// [default: the local socket].
    #[arg(long, env = "DOCKER_HOST")]
    pub docker_host: Option<Text>,
    /// Values playbooks read as `config.<name>`: the file's `playbook_config:` map and the
    /// `RESPONDER_CONFIG_<NAME>` variables, over the defaults shipped with the playbooks.
    #[arg(skip)]
    pub playbook_config: BTreeMap<String, Text>,
}

/// Six playbook settings that also have a flag and a variable of their own (`KAFKA_CONTAINER`,
/// ...), from before `RESPONDER_CONFIG_<NAME>`: in each layer, the field of that name is moved
/// into `playbook_config`, so a flag still wins over the environment and both over the file.
pub(super) const PLAYBOOK_ALIASES: [&str; 6] = [
    "kafka_container",
    "spark_master_container",
    "spark_master_url",
    "schema_registry_url",
    "prometheus_url",
    "cleaner_container",
];
