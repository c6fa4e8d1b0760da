//! N replicas of the real `alert-responder` binary on one PostgreSQL database: each in its
//! own temp dir, on its own port, with the same catalog, the same fake Slack, the same webhook
//! token and a short lease, so that the loss of one is noticed within seconds. Their logs are
//! JSON, so that each replica's name as a run holder (`owner`) can be read from its log.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::app::SLACK_TOKEN;
use super::binary::{binary, free_port, Child};
use super::psql::Database;
use super::slack::{command_body, now, signature, User, SIGNING_SECRET};

/// The bearer token every replica and every Alertmanager peer share.
pub const WEBHOOK_TOKEN: &str = "replicas-webhook-token-0123456789";

/// The lease: the minimum the service accepts, so a dead replica's runs are reaped within
/// about 4 s (lease + lease/3).
pub const LEASE: &str = "3s";

/// The Slack user allowed to change the mode on every replica.
pub const OPERATOR: User = ("U0OPERATOR", "operator");

/// What every replica of a set is given.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// `(routes dir, responders dir)`.
    pub catalog: (PathBuf, PathBuf),
    /// The fake Slack's Web API base URL.
    pub slack_api_url: String,
    /// Regex of the containers whose deaths become alerts; `^$` (none) unless set, so that
    /// containers other tests remove never add incidents.
    pub oom_containers: String,
    /// Settings added to every replica's environment.
    pub env: Vec<(&'static str, String)>,
}

impl ReplicaConfig {
    pub fn new(catalog: (PathBuf, PathBuf), slack_api_url: String) -> Self {
        Self {
            catalog,
            slack_api_url,
            oom_containers: "^$".into(),
            env: Vec::new(),
        }
    }
}

/// One replica: a running (or killed) process of the real binary.
pub struct Replica {
    /// `A`, `B`, `C`, … in start order, for failure messages.
    pub label: String,
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// Its name as the holder of runs and roles in the database.
    pub owner: String,
    /// Whether it still runs (false after [`Replica::kill`]).
    pub alive: bool,
    child: Child,
    client: reqwest::Client,
    // Last, so the directory (with the logs) outlives the process.
    _dir: tempfile::TempDir,
}

impl Replica {
    /// Starts one replica on `database_url` and waits until it answers `/healthz`.
    pub async fn start(label: &str, database_url: &str, config: &ReplicaConfig) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir for a replica");
        let port = free_port();
        let mut cmd = binary(dir.path());
        cmd.arg("serve")
            .arg("--routes-dir")
            .arg(&config.catalog.0)
            .arg("--responders-dir")
            .arg(&config.catalog.1)
            .env("RESPONDER_LISTEN", format!("127.0.0.1:{port}"))
            .env("RESPONDER_DATABASE_URL", database_url)
            .env("RESPONDER_LEASE", LEASE)
            .env("RESPONDER_WEBHOOK_TOKEN", WEBHOOK_TOKEN)
            .env("RESPONDER_OOM_CONTAINERS", &config.oom_containers)
            .env("RESPONDER_SHUTDOWN_DRAIN", "0s")
            .env("RESPONDER_LOG_FORMAT", "json")
            .env("SLACK_BOT_TOKEN", SLACK_TOKEN)
            .env("SLACK_API_URL", &config.slack_api_url)
            .env("SLACK_SIGNING_SECRET", SIGNING_SECRET)
            .env("SLACK_MODE_ALLOWED", OPERATOR.0);
        for (key, value) in &config.env {
            cmd.env(key, value);
        }
        let mut child = Child::spawn(cmd, dir.path());
        child.wait_healthy(port).await;
        let owner = owner_in_log(&child.output()).unwrap_or_else(|| {
            panic!(
                "replica {label} answered /healthz but never logged its owner; output:\n{}",
                child.output()
            )
        });
        Self {
            label: label.to_owned(),
            address: format!("http://127.0.0.1:{port}"),
            owner,
            alive: true,
            child,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client"),
            _dir: dir,
        }
    }

    /// Its Alertmanager webhook URL.
    pub fn webhook_url(&self) -> String {
        format!("{}/webhook/alertmanager", self.address)
    }

    /// SIGKILL: no chance to release its runs or roles.
    pub fn kill(&mut self) {
        self.child.kill();
        self.alive = false;
    }

    /// SIGSTOP: it does nothing (no renewal, no recording) until [`Replica::resume`].
    pub fn pause(&self) {
        self.child.send_signal("STOP");
    }

    /// SIGCONT after [`Replica::pause`].
    pub fn resume(&self) {
        self.child.send_signal("CONT");
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.child.output()
    }

    /// POSTs an Alertmanager webhook body with the token.
    pub async fn post_alertmanager(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(self.webhook_url())
            .bearer_auth(WEBHOOK_TOKEN)
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("replica {} does not answer: {e}", self.label))
    }

    /// POSTs an Alertmanager webhook body and fails unless it is acknowledged (2xx).
    pub async fn post_alert_ok(&self, body: &Value) {
        let response = self.post_alertmanager(body).await;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "replica {} answered {status}: {text}",
            self.label
        );
    }

    /// `GET path` with the token, as JSON; fails unless 2xx.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .bearer_auth(WEBHOOK_TOKEN)
            .send()
            .await
            .unwrap_or_else(|e| panic!("replica {} does not answer: {e}", self.label));
        assert!(
            response.status().is_success(),
            "GET {path} on replica {}: {}",
            self.label,
            response.status()
        );
        response.json().await.expect("JSON")
    }

    /// The detail (`incident`, `alerts`, `runs`, `decisions`) of every incident whose target
    /// is `target`, as this replica's API reports it.
    pub async fn incidents_of(&self, target: &str) -> Vec<Value> {
        let mut details = Vec::new();
        let list = self.get_json("/api/incidents").await;
        for incident in list.as_array().into_iter().flatten() {
            if incident["target"] == target {
                let path = format!("/api/incidents/{}", incident["id"]);
                details.push(self.get_json(&path).await);
            }
        }
        details
    }

    /// Sends `/responder <text>` as `user`, signed as Slack signs it; returns the status and
    /// the JSON reply.
    pub async fn slack_command(&self, user: User, text: &str) -> (u16, Value) {
        let body = command_body("/responder", text, user, "");
        let timestamp = now();
        let response = self
            .client
            .post(format!("{}/slack/commands", self.address))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", timestamp.to_string())
            .header(
                "x-slack-signature",
                signature(SIGNING_SECRET, timestamp, &body),
            )
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("replica {} does not answer: {e}", self.label));
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// The `owner` field of the "Store open" line of a JSON log.
fn owner_in_log(log: &str) -> Option<String> {
    log.lines()
        .filter(|l| l.contains("Store open"))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|line| line["fields"]["owner"].as_str().map(str::to_owned))
}

/// Several replicas on one database.
pub struct Replicas {
    /// In start order (`A`, `B`, …).
    pub replicas: Vec<Replica>,
    /// The database they share.
    pub database: Database,
}

impl Replicas {
    /// Starts `n` replicas on `database_url`, one after the other (each must be healthy).
    pub async fn start(n: usize, database_url: &str, config: &ReplicaConfig) -> Self {
        let mut replicas = Vec::with_capacity(n);
        for i in 0..n {
            let label = char::from(b'A' + u8::try_from(i).expect("a few replicas")).to_string();
            replicas.push(Replica::start(&label, database_url, config).await);
        }
        let mut owners: Vec<&str> = replicas.iter().map(|r| r.owner.as_str()).collect();
        owners.sort_unstable();
        owners.dedup();
        assert_eq!(owners.len(), n, "every replica has its own owner name");
        Self {
            replicas,
            database: Database::new(database_url),
        }
    }

    /// Every replica's webhook URL, for an Alertmanager receiver.
    pub fn webhook_urls(&self) -> Vec<String> {
        self.replicas.iter().map(Replica::webhook_url).collect()
    }

    /// The replica holding runs under `owner`.
    pub fn by_owner(&mut self, owner: &str) -> &mut Replica {
        let known: Vec<String> = self.replicas.iter().map(|r| r.owner.clone()).collect();
        self.replicas
            .iter_mut()
            .find(|r| r.owner == owner)
            .unwrap_or_else(|| panic!("no replica is {owner:?}; the replicas are {known:?}"))
    }

    /// The first replica still running.
    pub fn any_alive(&self) -> &Replica {
        self.replicas
            .iter()
            .find(|r| r.alive)
            .expect("a replica still runs")
    }

    /// Every replica's log, labelled, for failure messages.
    pub fn logs(&self) -> String {
        self.replicas
            .iter()
            .map(|r| {
                format!(
                    "=== replica {} ({}, {}) ===\n{}",
                    r.label,
                    r.owner,
                    if r.alive { "running" } else { "killed" },
                    r.log()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The log lines of every replica that contain `needle`, labelled.
    pub fn log_lines(&self, needle: &str) -> String {
        self.replicas
            .iter()
            .flat_map(|r| {
                r.log()
                    .lines()
                    .filter(|l| l.contains(needle))
                    .map(|l| format!("[{}] {l}", r.label))
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Polls `check` every 100 ms until it gives a value; fails after `timeout` with `context()`.
pub async fn poll<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
    context: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {timeout:?}\n{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
