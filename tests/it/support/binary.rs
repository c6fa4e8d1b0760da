//! The real `alert-responder` binary as a subprocess, for the CLI and fault tests: run in a
//! temp dir with its output in files there (no pipe can fill up), on a free port, with bounded
//! waits; stopped with SIGTERM or SIGKILL, and killed when a test fails.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Bound on waiting for the server to answer /healthz.
pub const STARTUP: Duration = Duration::from_secs(15);
/// Bound on a short-lived command (`check`, `--help`, a refused `serve`).
pub const QUICK: Duration = Duration::from_secs(15);
/// Bound on a graceful shutdown (the app drains background work for up to 15 s).
pub const SHUTDOWN: Duration = Duration::from_secs(30);

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// The binary, run in `dir`, with none of the caller's settings leaking in from the environment.
pub fn binary(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_alert-responder"));
    cmd.current_dir(dir).stdin(Stdio::null());
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if key_text.starts_with("RESPONDER_")
            || key_text.starts_with("SLACK_")
            || key_text == "RUST_LOG"
        {
            cmd.env_remove(&key);
        }
    }
    cmd
}

/// A running (or exited) child whose stdout and stderr go to files in its directory.
pub struct Child {
    child: std::process::Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Child {
    pub fn spawn(mut cmd: Command, dir: &Path) -> Self {
        let stdout = dir.join("stdout.log");
        let stderr = dir.join("stderr.log");
        cmd.stdout(std::fs::File::create(&stdout).expect("create stdout.log"))
            .stderr(std::fs::File::create(&stderr).expect("create stderr.log"));
        let child = cmd.spawn().expect("spawn alert-responder");
        Self {
            child,
            stdout,
            stderr,
        }
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Everything the child wrote, stdout then stderr.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout(), self.stderr())
    }

    /// Waits (bounded) for the child to exit; `None` if it is still running.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for a command expected to finish on its own.
    pub async fn finished(&mut self) -> ExitStatus {
        match self.wait_exit(QUICK).await {
            Some(status) => status,
            None => panic!(
                "still running after {QUICK:?}; output so far:\n{}",
                self.output()
            ),
        }
    }

    /// Polls `GET /healthz` every 50 ms until it answers 200; fails if the child exits first.
    pub async fn wait_healthy(&mut self, port: u16) {
        let client = http();
        let url = format!("http://127.0.0.1:{port}/healthz");
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!(
                    "exited with {status} before answering; output:\n{}",
                    self.output()
                );
            }
            if let Ok(response) = client.get(&url).send().await {
                if response.status() == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no 200 from {url} within {STARTUP:?}; output:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The peak resident memory of the process so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.memory_kib("VmHWM:")
    }

    /// The resident memory of the process now (VmRSS), in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.memory_kib("VmRSS:")
    }

    fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the process is running");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/PID/status"))
    }

    /// Sends SIGTERM and returns at once.
    pub fn send_sigterm(&self) {
        self.signal("TERM");
    }

    /// Sends the signal `name` (`TERM`, `STOP`, `CONT`) and returns at once.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let kill = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .expect("run kill");
        assert!(kill.success(), "kill -{name} {pid} failed");
    }

    /// SIGKILL (no chance to clean up), then reaps the process.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the killed server");
    }

    /// Sends SIGTERM and waits (bounded) for the exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        self.send_sigterm();
        match self.wait_exit(SHUTDOWN).await {
            Some(status) => status,
            None => panic!(
                "did not stop within {SHUTDOWN:?} of SIGTERM; output:\n{}",
                self.output()
            ),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // A failed test must not leave a server behind.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("HTTP client")
}

/// Every environment variable `serve --help` names (`[env: NAME=…]`): the authoritative list
/// of settings.
pub fn serve_help_variables() -> Vec<String> {
    let help = Command::new(env!("CARGO_BIN_EXE_alert-responder"))
        .args(["serve", "--help"])
        .output()
        .expect("run serve --help");
    assert!(help.status.success(), "serve --help failed");
    String::from_utf8_lossy(&help.stdout)
        .split("[env: ")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect()
        })
        .collect()
}
