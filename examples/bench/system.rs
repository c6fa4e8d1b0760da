//! The systems under test as child processes: alert-responder with the bench catalog, and the
//! peer adnanh/webhook with hooks that run a trivial command per alert. Start, readiness,
//! memory (from /proc) and stop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) enum Kind {
    Responder,
    Webhook,
}

/// A started system.
pub(crate) struct Running {
    pub(crate) kind: Kind,
    child: Child,
    pub(crate) port: u16,
    pub(crate) dir: PathBuf,
    pub(crate) ready: Duration,
}

/// Paths and ports every start needs.
pub(crate) struct Setup {
    pub(crate) responder_bin: PathBuf,
    pub(crate) webhook_bin: PathBuf,
    pub(crate) fakes_port: u16,
    pub(crate) scratch: PathBuf,
}

impl Setup {
    /// Starts `kind` in a fresh directory (fresh database) and waits until it answers.
    pub(crate) async fn start(&self, kind: Kind, name: &str) -> Running {
        let dir = self.scratch.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the scratch directory is writable");
        let port = free_port();
        let log = std::fs::File::create(dir.join("server.log")).expect("scratch is writable");
        let mut cmd = match kind {
            Kind::Responder => self.responder(&dir, port),
            Kind::Webhook => self.webhook(&dir, port),
        };
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("a file handle clones"))
            .stderr(log);
        let started = Instant::now();
        let child = cmd.spawn().expect("the system under test starts");
        let probe = match kind {
            Kind::Responder => format!("http://127.0.0.1:{port}/readyz"),
            Kind::Webhook => format!("http://127.0.0.1:{port}/"),
        };
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(&probe).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{kind:?} did not become ready in 30 s; see {}",
                dir.join("server.log").display()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Running {
            kind,
            child,
            port,
            dir,
            ready: started.elapsed(),
        }
    }

    fn responder(&self, dir: &Path, port: u16) -> Command {
        write_catalog(dir, self.fakes_port);
        let mut cmd = Command::new(&self.responder_bin);
        cmd.arg("serve")
            .env("RESPONDER_LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "RESPONDER_DATABASE_URL",
                format!("sqlite://{}", dir.join("responder.db").display()),
            )
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
    /// The URL a phase posts to (`hook` picks the peer's hook; the responder has one endpoint).
    pub(crate) fn url(&self, hook: &str) -> String {
        match self.kind {
            Kind::Responder => format!("http://127.0.0.1:{}/webhook/alertmanager", self.port),
            Kind::Webhook => format!("http://127.0.0.1:{}/hooks/{hook}", self.port),
        }
    }

    /// (current RSS, peak RSS) in MiB, from /proc/PID/status.
    pub(crate) fn memory(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .map_or(0.0, |kb| kb / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Stops it with SIGTERM and waits.
    pub(crate) fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("loopback has a free port")
}
