//! The real application on port 0 with a fresh SQLite file, wired to a fake Slack.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use alert_responder::app::Application;
use alert_responder::config::{Secret, Settings, SettingsArgs, Text};
use alert_responder::sources::schedule::Clock;
use alert_responder::store::Store;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::fake_slack::FakeSlack;

/// The Slack bot token the fake Slack expects.
pub const SLACK_TOKEN: &str = "xoxb-test-token-0123456789";

/// How a test app is configured beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Webhook bearer token.
    pub webhook_token: Option<String>,
    /// `live` (default) or `dry-run`.
    pub mode: Option<String>,
    /// On-call mention group.
    pub oncall_group: Option<String>,
    /// Use this catalog instead of the shipped routes/ and responders/.
    pub catalog: Option<(PathBuf, PathBuf)>,
    /// Body limit in bytes.
    pub body_limit: Option<usize>,
    /// Bytes all bodies may hold at once.
    pub body_budget: Option<usize>,
    /// Unprocessed alerts the journal may hold before webhooks get 503.
    pub max_backlog: Option<u64>,
    /// Bound on receiving and answering a request, e.g. `1s`.
    pub request_timeout: Option<String>,
    /// Run without Slack.
    pub no_slack: bool,
    /// Token for approval decisions.
    pub admin_token: Option<String>,
    /// How long approvals wait, e.g. `2s`.
    pub approval_ttl: Option<String>,
    /// PagerDuty webhook signing secret.
    pub pagerduty_webhook_secret: Option<String>,
    /// Playbook settings (`config.*`) by name, e.g. ("cleaner_container", "k2-test-...").
    pub config: Vec<(&'static str, String)>,
    /// Base URL of a fake PagerDuty: turns notes and events on with its token, From and key.
    pub pagerduty_out: Option<String>,
    /// A REST token other than the one the fake PagerDuty accepts.
    pub pagerduty_token: Option<String>,
    /// Containers whose OOM kills become alerts; none by default, so that containers other
    /// tests kill (`docker rm -f` gives exit 137) never add incidents to this app.
    pub oom_containers: Option<String>,
    /// Slack signing secret (turns `/slack/*` on).
    pub slack_signing_secret: Option<String>,
    /// Who may `run`, approve and set the mode from Slack (comma-separated IDs).
    pub slack_allowed: [Option<String>; 3],
    /// Containers `/responder status` reports.
    pub slack_status_containers: Option<String>,
    /// Docker engine address (`DOCKER_HOST`); the local socket when `None`.
    pub docker_host: Option<String>,
    /// How long shutdown refuses webhooks before closing; `0s` unless set, to keep tests quick.
    pub shutdown_drain: Option<String>,
    /// The clock schedules read (kept across restarts); the system's when `None`.
    pub clock: Option<Clock>,
    /// Base URL of a (fake) Grafana: turns annotations on, on the fake's dashboard.
    pub grafana: Option<String>,
    /// A Grafana token other than the one the fake accepts.
    pub grafana_token: Option<String>,
    /// Where people open the service (`RESPONDER_PUBLIC_URL`).
    pub public_url: Option<String>,
    /// Alertmanager peers silences are made on (`ALERTMANAGER_URL`, comma-separated).
    pub alertmanager_url: Option<String>,
}

impl Options {
    /// The defaults with this catalog instead of the shipped one.
    pub fn with_catalog(catalog: (PathBuf, PathBuf)) -> Self {
        Self {
            catalog: Some(catalog),
            ..Self::default()
        }
    }
}

/// A running app and what the test needs to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// Direct access to the record.
    pub store: Arc<dyn Store>,
    /// HTTP client.
    pub client: reqwest::Client,
    /// The database file (keep it to restart on the same data).
    pub database_url: String,
    stop: CancellationToken,
    handle: JoinHandle<()>,
    options: Options,
}

/// Writes a catalog for one test: `routes/r.yaml` and one `responders/<name>.yaml` each,
/// beside a copy of the shipped playbook settings' defaults.
pub fn catalog_dir(dir: &Path, routes: &str, responders: &[(&str, &str)]) -> (PathBuf, PathBuf) {
    let (routes_dir, responders_dir) = (dir.join("routes"), dir.join("responders"));
    std::fs::create_dir_all(&routes_dir).expect("a temp routes dir");
    std::fs::create_dir_all(&responders_dir).expect("a temp responders dir");
    copy_playbook_defaults(&responders_dir);
    std::fs::write(routes_dir.join("r.yaml"), routes).expect("routes written");
    for (name, text) in responders {
        std::fs::write(responders_dir.join(format!("{name}.yaml")), text)
            .expect("responder written");
    }
    (routes_dir, responders_dir)
}

/// Copies the shipped `responders/playbook-config.yaml` (the K2 playbooks' settings) into `to`.
pub fn copy_playbook_defaults(to: &Path) {
    let (_, shipped) = shipped_catalog();
    let name = "playbook-config.yaml";
    std::fs::copy(shipped.join(name), to.join(name)).expect("the shipped defaults copied");
}

/// The shipped catalog directories.
pub fn shipped_catalog() -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    (root.join("routes"), root.join("responders"))
}

impl TestApp {
    /// Starts the app on a fresh database in `dir`.
    pub async fn spawn(dir: &Path, slack: Option<&FakeSlack>, options: Options) -> Self {
        let database_url = format!("sqlite://{}/responder.db", dir.display());
        Self::spawn_on(database_url, slack, options).await
    }

    /// Starts the app on an existing database (a restart of the service).
    pub async fn spawn_on(
        database_url: String,
        slack: Option<&FakeSlack>,
        options: Options,
    ) -> Self {
        let (routes, responders) = options.catalog.clone().unwrap_or_else(shipped_catalog);
        let text = |v: &Option<String>| v.clone().map(Text::from);
        let secret = |v: &Option<String>| v.clone().map(Secret::from);
        let number = |v: Option<u64>| v.map(|n| Text::from(n.to_string()));
        let usize_number = |v: Option<usize>| number(v.map(|n| n as u64));
        let mut args = SettingsArgs {
            listen: Some("127.0.0.1:0".into()),
            database_url: Some(database_url.clone().into()),
            webhook_token: secret(&options.webhook_token),
            mode: text(&options.mode),
            slack_bot_token: slack
                .filter(|_| !options.no_slack)
                .map(|_| SLACK_TOKEN.into()),
            slack_api_url: slack.map(|s| s.api_url().into()),
            slack_oncall_group: text(&options.oncall_group),
            routes_dir: Some(routes),
            responders_dir: Some(responders),
            body_limit: usize_number(options.body_limit),
            body_budget: usize_number(options.body_budget),
            max_backlog: number(options.max_backlog),
            request_timeout: text(&options.request_timeout),
            admin_token: secret(&options.admin_token),
            pagerduty_webhook_secret: secret(&options.pagerduty_webhook_secret),
            approval_ttl: text(&options.approval_ttl),
            // `^$` only matches an empty name, and Docker names are never empty.
            oom_containers: Some(options.oom_containers.as_deref().unwrap_or("^$").into()),
            slack_signing_secret: secret(&options.slack_signing_secret),
            slack_run_allowed: text(&options.slack_allowed[0]),
            slack_approve_allowed: text(&options.slack_allowed[1]),
            slack_mode_allowed: text(&options.slack_allowed[2]),
            slack_status_containers: text(&options.slack_status_containers),
            docker_host: text(&options.docker_host),
            alertmanager_url: text(&options.alertmanager_url),
            shutdown_drain: Some(options.shutdown_drain.as_deref().unwrap_or("0s").into()),
            playbook_config: options
                .config
                .iter()
                .map(|(name, value)| ((*name).to_owned(), Text::from(value.clone())))
                .collect(),
            ..Default::default()
        };
        if let Some(url) = &options.pagerduty_out {
            use super::fake_pagerduty::{PD_FROM, PD_ROUTING_KEY, PD_TOKEN};
            let token = options.pagerduty_token.as_deref().unwrap_or(PD_TOKEN);
            args.pagerduty_api_token = Some(token.into());
            args.pagerduty_from = Some(PD_FROM.into());
            args.pagerduty_api_url = Some(url.as_str().into());
            args.pagerduty_routing_key = Some(PD_ROUTING_KEY.into());
            args.pagerduty_events_url = Some(url.as_str().into());
        }
        if let Some(url) = &options.grafana {
            use super::fake_grafana::{GF_DASHBOARD, GF_TOKEN};
            let token = options.grafana_token.as_deref().unwrap_or(GF_TOKEN);
            args.grafana_url = Some(url.as_str().into());
            args.grafana_api_token = Some(token.into());
            args.grafana_dashboard_uid = Some(GF_DASHBOARD.into());
            args.public_url = text(&options.public_url);
        }
        let settings = Settings::load(&args).expect("test settings are valid");
        let clock = options.clock.clone().unwrap_or_default();
        let app = Application::build_with_clock(settings, clock)
            .await
            .expect("the app builds");
        let address = format!("http://{}", app.local_addr().expect("bound"));
        let store = app.store();
        let stop = app.shutdown_token();
        let handle = tokio::spawn(async move {
            app.run_until_stopped().await.expect("the app runs");
        });
        Self {
            address,
            store,
            client: reqwest::Client::new(),
            database_url,
            stop,
            handle,
            options,
        }
    }

    /// Stops the app and starts it again on the same database.
    pub async fn restart(self, slack: Option<&FakeSlack>) -> Self {
        let (url, options) = (self.database_url.clone(), self.options.clone());
        self.stop().await;
        Self::spawn_on(url, slack, options).await
    }

    /// Stops the app and waits for it.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.handle.await;
    }

    /// Posts an Alertmanager webhook body, with the configured token if any.
    pub async fn post_alertmanager(&self, body: &Value) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/webhook/alertmanager", self.address))
            .json(body);
        if let Some(token) = &self.options.webhook_token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the app answers")
    }

    /// `GET path` with the token, as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        self.get_ok(path).await.json().await.expect("JSON")
    }

    /// `GET path` with the token, as text (an HTML page).
    pub async fn get_text(&self, path: &str) -> String {
        self.get_ok(path).await.text().await.expect("text")
    }

    async fn get_ok(&self, path: &str) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.address));
        if let Some(token) = &self.options.webhook_token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the app answers");
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response
    }

    /// Rows in the intake journal, counted over an independent connection.
    pub async fn journal_rows(&self) -> i64 {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&self.database_url)
            .await
            .expect("the test database opens");
        sqlx::query_scalar("SELECT COUNT(*) FROM journal")
            .fetch_one(&mut conn)
            .await
            .expect("the journal is readable")
    }

    /// All incidents, newest first.
    pub async fn incidents(&self) -> Vec<Value> {
        self.get_json("/api/incidents")
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits (bounded) until `count` incidents exist for `target` and the newest has a
    /// finished run; returns the newest one's detail.
    pub async fn wait_for_newest_finished(&self, target: &str, count: usize) -> Value {
        for _ in 0..600 {
            let incidents: Vec<Value> = self
                .incidents()
                .await
                .into_iter()
                .filter(|i| i["target"] == target)
                .collect();
            if incidents.len() >= count {
                let detail = self
                    .get_json(&format!("/api/incidents/{}", incidents[0]["id"]))
                    .await;
                if detail["runs"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|run| run["state"] == "finished"))
                {
                    return detail;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("incident {count} for {target} never finished a run within 60 s");
    }

    /// Waits (bounded) until the incident whose target is `target` has a finished run, and
    /// returns its detail.
    pub async fn wait_for_finished_run(&self, target: &str, runs: usize) -> Value {
        let mut last = Value::Null;
        for _ in 0..600 {
            for incident in self.incidents().await {
                if incident["target"] == target {
                    let id = incident["id"].as_i64().expect("id");
                    last = self.get_json(&format!("/api/incidents/{id}")).await;
                    let finished = last["runs"]
                        .as_array()
                        .map(|r| {
                            r.iter()
                                .filter(|run| {
                                    run["state"] == "finished" || run["state"] == "interrupted"
                                })
                                .count()
                        })
                        .unwrap_or(0);
                    if finished >= runs {
                        return last;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no finished run for {target} within 60 s; last seen: {last:#}");
    }
}

/// An Alertmanager v4 webhook body for one alert instance.
pub fn am_alert(
    status: &str,
    alertname: &str,
    container: &str,
    fingerprint: &str,
    starts_at: &str,
) -> Value {
    let ends_at = if status == "resolved" {
        "2026-11-27T06:00:00Z"
    } else {
        "0001-01-01T00:00:00Z"
    };
    json!({
        "receiver": "responder",
        "status": status,
        "alerts": [{
            "status": status,
            "labels": {"alertname": alertname, "container": container, "severity": "critical"},
            "annotations": {"summary": format!("{alertname} on {container}")},
            "startsAt": starts_at,
            "endsAt": ends_at,
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": fingerprint,
        }],
        "groupLabels": {"alertname": alertname},
        "commonLabels": {"alertname": alertname, "container": container, "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{alertname}\"}}"),
        "truncatedAlerts": 0,
    })
}

/// The steps of the first run of an incident detail, as (step_id, state) pairs.
pub fn step_states(detail: &Value, run: usize) -> Vec<(String, String)> {
    detail["runs"][run]["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|s| {
                    (
                        s["step_id"].as_str().unwrap_or("").to_owned(),
                        s["state"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The kinds of the decisions recorded on an incident detail, in order.
pub fn decision_kinds(detail: &Value) -> Vec<String> {
    detail["decisions"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(|d| d["kind"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
