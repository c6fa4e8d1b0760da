//! Real Prometheus Alertmanager processes (Debian's `prometheus-alertmanager`, 0.25) on free
//! loopback ports, alone or as an HA cluster gossiping over loopback, each with its own temp
//! storage and a generated config that sends every group to the app's webhook.
//!
//! Alertmanager missing is a test failure, never a skip: these tests are the only proof the
//! webhook works against the real sender, its grouping, its HA dedupe and its resolve path.
//!
//! On loopback 0.25 needs nothing special: `--cluster.listen-address` on `127.0.0.1:C` (the
//! default `0.0.0.0` would make it hunt for a private IP to advertise), the same address as
//! `--cluster.advertise-address` (explicit, so peers never learn another interface), and each
//! peer's `--cluster.peer` pointing at the others. The timing flags below are lowered so a
//! two-peer cluster settles in a second or two instead of up to a minute.

use std::fs::File;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

mod metrics;

/// The Alertmanager binary as Debian installs it.
pub const ALERTMANAGER_BIN: &str = "prometheus-alertmanager";

/// Its CLI, used to validate every generated config.
pub const AMTOOL_BIN: &str = "amtool";

/// How long a peer may take to answer `/-/ready` and report its cluster settled.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a peer waits per position before sending what a lower-position peer should have
/// sent (0.25 default 15 s). Kept short so the test can wait past it and prove the app made
/// any duplicate a no-op, and long enough for the notification log to gossip on loopback.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(2);

/// Timing flags lowered for a fast loopback cluster (defaults in comments).
const CLUSTER_TIMING: &[&str] = &[
    "--cluster.peer-timeout=2s",       // 15s; must match PEER_TIMEOUT
    "--cluster.gossip-interval=50ms",  // 200ms; settle polls every 10 x this
    "--cluster.pushpull-interval=1s",  // 1m
    "--cluster.settle-timeout=5s",     // 1m; notifications wait for settle
    "--cluster.probe-interval=200ms",  // 1s
    "--cluster.reconnect-interval=1s", // 10s
];

/// The generated Alertmanager config: group per alert name and container, flush fast, never
/// repeat within a test, and send firing and resolved notifications to `webhook_url` with a
/// bearer token. Only options Alertmanager 0.25 accepts (no `timeout:`, no `url_file:`).
pub fn config_yaml(webhook_url: &str, token: &str) -> String {
    config_yaml_for(&[webhook_url.to_owned()], token)
}

/// [`config_yaml`] with one receiver listing every URL in `webhook_urls` (one
/// `webhook_configs` entry each), as an operator lists every replica of the service so that
/// each notification reaches all of them.
pub fn config_yaml_for(webhook_urls: &[String], token: &str) -> String {
    assert!(!webhook_urls.is_empty(), "a receiver needs a webhook URL");
    let webhooks: String = webhook_urls
        .iter()
        .map(|url| {
            format!(
                "      - url: '{url}'
        send_resolved: true
        http_config:
          authorization:
            credentials: '{token}'
"
            )
        })
        .collect();
    format!(
        "route:
  receiver: responder
  group_by: ['alertname', 'container']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: responder
    webhook_configs:
{webhooks}"
    )
}

/// Runs `amtool check-config file` and panics with its output unless it succeeds.
pub fn check_config(file: &Path) {
    let out = Command::new(AMTOOL_BIN)
        .arg("check-config")
        .arg(file)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{AMTOOL_BIN}` ({e}); install Debian's `prometheus-alertmanager` \
                 package (apt-get install prometheus-alertmanager)"
            )
        });
    assert!(
        out.status.success(),
        "amtool rejects the generated Alertmanager config {}:\n{}{}\n--- config ---\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(file).unwrap_or_default()
    );
}

/// A free loopback port for HTTP (TCP only).
fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a loopback port can be bound")
        .port()
}

/// A free loopback port for gossip: memberlist uses TCP and UDP on the same number.
fn free_cluster_port() -> u16 {
    for _ in 0..50 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("a loopback port can be bound");
        let port = tcp.local_addr().expect("bound").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no loopback port free for both TCP and UDP after 50 tries");
}

/// One running Alertmanager process, killed when dropped.
#[derive(Debug)]
pub struct Alertmanager {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `127.0.0.1:PORT` of its gossip listener.
    pub cluster_addr: String,
    child: Child,
    log: PathBuf,
    client: reqwest::Client,
    // Last, so the directory outlives the process it is dropped after.
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    /// Starts one process with `config` (already validated), joining `peers` if any.
    fn spawn(config: &str, web_port: u16, cluster_port: u16, peers: &[String]) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir for Alertmanager");
        let config_file = dir.path().join("alertmanager.yml");
        std::fs::write(&config_file, config).expect("the config can be written");
        check_config(&config_file);
        let storage = dir.path().join("data");
        std::fs::create_dir_all(&storage).expect("the storage dir can be created");
        let log = dir.path().join("alertmanager.log");
        let out = File::create(&log).expect("the log file can be created");
        let err = out.try_clone().expect("the log file can be shared");
        let url = format!("http://127.0.0.1:{web_port}");
        let cluster_addr = format!("127.0.0.1:{cluster_port}");
        let mut cmd = Command::new(ALERTMANAGER_BIN);
        cmd.arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--storage.path={}", storage.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
            .arg(format!("--web.external-url={url}"))
            .arg(format!("--cluster.listen-address={cluster_addr}"))
            .arg(format!("--cluster.advertise-address={cluster_addr}"))
            .args(CLUSTER_TIMING)
            .arg("--log.level=debug")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for peer in peers {
            cmd.arg(format!("--cluster.peer={peer}"));
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start `{ALERTMANAGER_BIN}` ({e}); install Debian's \
                 `prometheus-alertmanager` package (apt-get install prometheus-alertmanager)"
            )
        });
        Self {
            url,
            cluster_addr,
            child,
            log,
            client: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// The process's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls until `/-/ready` answers 200 and `/api/v2/status` reports the cluster settled
    /// with `members` peers; panics with the log after [`READY_TIMEOUT`].
    async fn wait_ready(&mut self, members: usize) {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "Alertmanager at {} exited early ({status}):\n{}",
                    self.url,
                    self.log()
                );
            }
            let why = match self.ready_state(members).await {
                Ok(()) => return,
                Err(why) => why,
            };
            assert!(
                tokio::time::Instant::now() < deadline,
                "Alertmanager at {} not ready within {READY_TIMEOUT:?} ({why}):\n{}",
                self.url,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn ready_state(&self, members: usize) -> Result<(), String> {
        let ready = self
            .client
            .get(format!("{}/-/ready", self.url))
            .send()
            .await
            .map_err(|e| format!("/-/ready: {e}"))?;
        if !ready.status().is_success() {
            return Err(format!("/-/ready: {}", ready.status()));
        }
        let status: Value = self
            .client
            .get(format!("{}/api/v2/status", self.url))
            .send()
            .await
            .map_err(|e| format!("/api/v2/status: {e}"))?
            .json()
            .await
            .map_err(|e| format!("/api/v2/status: {e}"))?;
        let cluster = &status["cluster"];
        let peers = cluster["peers"].as_array().map_or(0, Vec::len);
        if cluster["status"] == "ready" && peers == members {
            Ok(())
        } else {
            Err(format!("cluster {cluster}"))
        }
    }

    /// POSTs alerts to `/api/v2/alerts` as Prometheus does: a JSON array of
    /// `{labels, annotations, startsAt, endsAt, generatorURL}`. Panics unless 200.
    pub async fn post_alerts(&self, alerts: &Value) {
        let response = self
            .client
            .post(format!("{}/api/v2/alerts", self.url))
            .json(alerts)
            .send()
            .await
            .unwrap_or_else(|e| panic!("Alertmanager at {} unreachable: {e}", self.url));
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(status, 200, "POST {}/api/v2/alerts: {body}", self.url);
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        // Best effort: a failed kill must not turn a passing test into a panic in drop.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A set of Alertmanager peers that gossip with each other (one peer = no HA), all sending
/// to the same webhooks.
#[derive(Debug)]
pub struct AlertmanagerCluster {
    /// The peers, in start order.
    pub peers: Vec<Alertmanager>,
}

impl AlertmanagerCluster {
    /// Starts `n` peers on fresh loopback ports, each told about all the others, each sending
    /// to `webhook_url` with `Authorization: Bearer <token>`, and waits until every one is
    /// ready and sees all `n` members.
    pub async fn start(n: usize, webhook_url: &str, token: &str) -> Self {
        Self::start_for(n, &[webhook_url.to_owned()], token).await
    }

    /// [`AlertmanagerCluster::start`] with a receiver that lists every URL of `webhook_urls`,
    /// so each notification goes to all of them (the replicas of the service).
    pub async fn start_for(n: usize, webhook_urls: &[String], token: &str) -> Self {
        Self::start_with(n, &config_yaml_for(webhook_urls, token)).await
    }

    /// `n` peers (as [`AlertmanagerCluster::start`]) running `config`, which amtool checks.
    pub async fn start_with(n: usize, config: &str) -> Self {
        Self::start_on(Self::ports(n), config).await
    }

    /// Free (web, gossip) ports for `n` peers, picked before anything starts so no process
    /// grabs another's port, and so the app can be told the peers' URLs before they run.
    pub fn ports(n: usize) -> Vec<(u16, u16)> {
        assert!(n >= 1, "a cluster has at least one peer");
        (0..n)
            .map(|_| (free_tcp_port(), free_cluster_port()))
            .collect()
    }

    /// The base URL a peer on these `ports` answers at.
    pub fn url_of(ports: (u16, u16)) -> String {
        format!("http://127.0.0.1:{}", ports.0)
    }

    /// Peers on `ports` (from [`AlertmanagerCluster::ports`]) running `config`.
    pub async fn start_on(ports: Vec<(u16, u16)>, config: &str) -> Self {
        let n = ports.len();
        let mut peers: Vec<Alertmanager> = ports
            .iter()
            .enumerate()
            .map(|(i, &(web, cluster))| {
                let others: Vec<String> = ports
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .map(|(_, &(_, c))| format!("127.0.0.1:{c}"))
                    .collect();
                Alertmanager::spawn(config, web, cluster, &others)
            })
            .collect();
        for peer in &mut peers {
            peer.wait_ready(n).await;
        }
        Self { peers }
    }

    /// POSTs the same alerts to every peer, as Prometheus does in an HA setup.
    pub async fn post_alerts(&self, alerts: &Value) {
        for peer in &self.peers {
            peer.post_alerts(alerts).await;
        }
    }

    /// Every peer's log, for failure messages.
    pub fn logs(&self) -> String {
        self.peers
            .iter()
            .map(|p| format!("=== Alertmanager {} ===\n{}", p.url, p.log()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// One alert as Prometheus posts it to `/api/v2/alerts`.
pub fn prometheus_alert(
    labels: &Value,
    annotations: &Value,
    starts_at: &str,
    ends_at: &str,
) -> Value {
    serde_json::json!({
        "labels": labels,
        "annotations": annotations,
        "startsAt": starts_at,
        "endsAt": ends_at,
        "generatorURL": "http://prometheus:9090/graph",
    })
}
