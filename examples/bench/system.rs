//! The systems under test as child processes: alert-responder with the bench catalog on SQLite
//! or on PostgreSQL (one or two replicas sharing a database), and the peer adnanh/webhook with
//! hooks that run a trivial command per alert. Start, readiness, memory (from /proc) and stop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::postgres::Postgres;

/// Which system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// alert-responder, one process on an SQLite file.
    Sqlite,
    /// alert-responder, `replicas` processes on one PostgreSQL database.
    Postgres { replicas: usize },
    /// The peer.
    Webhook,
}

impl Kind {
    /// Every system, in the order runs alternate and tables list them.
    pub(crate) const ALL: [Kind; 4] = [
        Kind::Sqlite,
        Kind::Postgres { replicas: 1 },
        Kind::Postgres { replicas: 2 },
        Kind::Webhook,
    ];

    /// The `--systems` name.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Kind::Sqlite => "sqlite",
            Kind::Postgres { replicas: 1 } => "pg1",
            Kind::Postgres { .. } => "pg2",
            Kind::Webhook => "webhook",
        }
    }

    /// The name in results and tables.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Sqlite => "alert-responder (SQLite)",
            Kind::Postgres { replicas: 1 } => "alert-responder (PostgreSQL, 1 replica)",
            Kind::Postgres { .. } => "alert-responder (PostgreSQL, 2 replicas)",
            Kind::Webhook => "webhook",
        }
    }

    pub(crate) fn is_responder(self) -> bool {
        self != Kind::Webhook
    }
}

/// A started system: one process, or one per replica.
pub(crate) struct Running {
    pub(crate) kind: Kind,
    children: Vec<Child>,
    ports: Vec<u16>,
    pub(crate) dir: PathBuf,
    /// The responder's database (read by the bench to see the backlog drain).
    pub(crate) database_url: Option<String>,
    /// Spawn to ready, of the first process (on the fresh database: migrations included).
    pub(crate) ready: Duration,
}

/// Paths and ports every start needs.
pub(crate) struct Setup {
    pub(crate) responder_bin: PathBuf,
    pub(crate) webhook_bin: PathBuf,
    pub(crate) fakes_port: u16,
    pub(crate) scratch: PathBuf,
    /// The private PostgreSQL server, when a PostgreSQL system is benched.
    pub(crate) postgres: Option<Postgres>,
}

impl Setup {
    /// Starts `kind` in a fresh directory with a fresh database and waits until every process
    /// answers. Replicas start one after the other, as in a rolling deploy: the first one
    /// migrates the empty database.
    pub(crate) async fn start(&self, kind: Kind, name: &str) -> Running {
        let dir = self.scratch.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the scratch directory is writable");
        let (database_url, replicas) = match kind {
            Kind::Sqlite => (
                Some(format!("sqlite://{}", dir.join("responder.db").display())),
                1,
            ),
            Kind::Postgres { replicas } => (
                Some(
                    self.postgres
                        .as_ref()
                        .expect("the PostgreSQL server runs for PostgreSQL systems")
                        .create_database(&format!("{}_{name}", kind.key())),
                ),
                replicas,
            ),
            Kind::Webhook => (None, 1),
        };
        if kind.is_responder() {
            write_catalog(&dir, self.fakes_port);
        }
        let mut running = Running {
            kind,
            children: Vec::new(),
            ports: Vec::new(),
            dir,
            database_url,
            ready: Duration::ZERO,
        };
        for replica in 0..replicas {
            let ready = self.start_process(&mut running, replica).await;
            if replica == 0 {
                running.ready = ready;
            }
        }
        running
    }

    async fn start_process(&self, running: &mut Running, replica: usize) -> Duration {
        let (kind, dir) = (running.kind, &running.dir);
        let port = free_port();
        let log_name = match replica {
            0 => "server.log".to_owned(),
            n => format!("server-{}.log", n + 1),
        };
        let log = std::fs::File::create(dir.join(&log_name)).expect("scratch is writable");
        let mut cmd = match &running.database_url {
            Some(url) => self.responder(dir, url, port),
            None => self.webhook(dir, port),
        };
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("a file handle clones"))
            .stderr(log);
        let started = Instant::now();
        running
            .children
            .push(cmd.spawn().expect("the system under test starts"));
        running.ports.push(port);
        let probe = match kind {
            Kind::Webhook => format!("http://127.0.0.1:{port}/"),
            _ => format!("http://127.0.0.1:{port}/readyz"),
        };
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(&probe).send().await {
                if r.status().is_success() {
                    return started.elapsed();
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{kind:?} did not become ready in 30 s; see {}",
                dir.join(&log_name).display()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn responder(&self, dir: &Path, database_url: &str, port: u16) -> Command {
        let mut cmd = Command::new(&self.responder_bin);
        cmd.arg("serve")
            .env("RESPONDER_LISTEN", format!("127.0.0.1:{port}"))
            .env("RESPONDER_DATABASE_URL", database_url)
            .env("RESPONDER_ROUTES_DIR", dir.join("routes"))
            .env("RESPONDER_RESPONDERS_DIR", dir.join("responders"))
            .env("RESPONDER_MODE", "live")
            .env("RESPONDER_ACTIONS_PER_MINUTE", "100000")
            .env("SLACK_BOT_TOKEN", "xoxb-bench-not-a-real-token")
            .env("SLACK_CHANNEL", "#bench")
            .env(
                "SLACK_API_URL",
                format!("http://127.0.0.1:{}/api", self.fakes_port),
            )
            .env_remove("RESPONDER_WEBHOOK_TOKEN")
            .env_remove("RUST_LOG");
        cmd
    }

    fn webhook(&self, dir: &Path, port: u16) -> Command {
        let probe = dir.join("probe.sh");
        let count = dir.join("count.sh");
        write_script(
            &probe,
            &format!(
                "#!/bin/bash\n# Tells the bench this alert's action started, then ends.\nexec 3<>/dev/tcp/127.0.0.1/{}\nprintf 'GET /action/%s HTTP/1.0\\r\\n\\r\\n' \"$1\" >&3\ncat <&3 >/dev/null\n",
                self.fakes_port
            ),
        );
        write_script(
            &count,
            &format!("#!/bin/sh\necho x >> {}\n", dir.join("count.txt").display()),
        );
        let hooks = serde_json::json!([
            {"id": "alertmanager", "execute-command": "/bin/true", "response-message": "accepted"},
            {"id": "probe", "execute-command": probe, "response-message": "accepted",
             "pass-arguments-to-command": [{"source": "payload", "name": "alerts.0.labels.container"}]},
            {"id": "storm", "execute-command": count, "response-message": "accepted"},
        ]);
        let hooks_file = dir.join("hooks.json");
        std::fs::write(&hooks_file, hooks.to_string()).expect("scratch is writable");
        let mut cmd = Command::new(&self.webhook_bin);
        cmd.arg("-hooks")
            .arg(hooks_file)
            .args(["-ip", "127.0.0.1", "-port", &port.to_string()]);
        cmd
    }
}

impl Running {
    /// The URLs a phase posts to, one per process (`hook` picks the peer's hook; the responder
    /// has one endpoint).
    pub(crate) fn urls(&self, hook: &str) -> Vec<String> {
        self.ports
            .iter()
            .map(|port| match self.kind {
                Kind::Webhook => format!("http://127.0.0.1:{port}/hooks/{hook}"),
                _ => format!("http://127.0.0.1:{port}/webhook/alertmanager"),
            })
            .collect()
    }

    /// The first process's Prometheus endpoint (responder only).
    pub(crate) fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.ports[0])
    }

    /// (current RSS, peak RSS) in MiB of the largest process (replicas are alike; the
    /// PostgreSQL server is not counted).
    pub(crate) fn memory(&self) -> (f64, f64) {
        self.children
            .iter()
            .map(|c| memory(c.id()))
            .fold((0.0, 0.0), |(a, b), (c, d)| {
                (f64::max(a, c), f64::max(b, d))
            })
    }

    /// CPU seconds used so far by the system's processes and, for PostgreSQL, the server
    /// (shared by every database on it: nothing else runs there during a phase).
    pub(crate) fn cpu_seconds(&self, setup: &Setup) -> f64 {
        let pids: Vec<u32> = self.children.iter().map(Child::id).collect();
        let postgres = match self.kind {
            Kind::Postgres { .. } => setup.postgres.as_ref().map(|pg| pg.data.as_path()),
            _ => None,
        };
        crate::cpu::seconds(&pids, postgres)
    }

    /// Stops every process with SIGTERM and waits.
    pub(crate) fn stop(mut self) {
        for child in &self.children {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        for child in &mut self.children {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// (current RSS, peak RSS) in MiB, from /proc/PID/status.
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("scratch is writable");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .expect("scratch is ours");
}

/// The bench catalog: every `Bench*` alert runs one playbook whose first step GETs the fake
/// Schema Registry (non-destructive, timed as "first action") and whose destructive step is a
/// `docker_restart` of the alert's container, under a budget of one per target. The bench's
/// containers (`arbench-*`) do not exist, so Docker answers 404 and nothing is restarted: the
/// budget is spent and the step fails, which the playbook tolerates.
fn write_catalog(dir: &Path, fakes_port: u16) {
    std::fs::create_dir_all(dir.join("routes")).expect("scratch is writable");
    std::fs::create_dir_all(dir.join("responders")).expect("scratch is writable");
    std::fs::write(
        dir.join("routes/bench.yaml"),
        "routes:\n  - matchers: ['alertname=~\"Bench.*\"']\n    responder: bench\n",
    )
    .expect("scratch is writable");
    std::fs::write(
        dir.join("responders/bench.yaml"),
        format!(
            r#"name: bench
description: Benchmark playbook. Looks up the target, then restarts it under a budget.
target: "{{{{ alert.labels.container }}}}"
allow_targets: ['arbench-.*']
budget: {{ cooldown: 15m, max: 1, per: 6h }}
steps:
  - id: look
    action: schema_registry_versions
    url: "http://127.0.0.1:{fakes_port}"
    subject: "{{{{ target }}}}"
    timeout: 10s
  - id: restart
    action: docker_restart
    container: "{{{{ target }}}}"
    timeout: 30s
    on_failure: continue
"#
        ),
    )
    .expect("scratch is writable");
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("loopback has a free port")
}
