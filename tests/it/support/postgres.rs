//! Real PostgreSQL servers (Debian's packages, the newest `/usr/lib/postgresql/*/bin`) on free
//! loopback ports, each in its own temp dir with its unix socket inside it.
//!
//! Most tests share one server per test process, started on first use, and get a fresh
//! database each ([`fresh_database`]): `CREATE DATABASE` takes milliseconds, a server a
//! second. Fault tests that stop and restart the server get their own ([`PgServer::start`]).
//!
//! As root (CI runs as root) `initdb` and `postgres` refuse to run, so they run as the
//! `postgres` user through `runuser`, and the temp dir is handed to that user.
//!
//! Rust never drops statics, so the shared server would outlive the test process: every
//! server gets a watchdog, a detached shell that waits for the test process to end, then
//! stops the server and removes its directory.
//!
//! PostgreSQL missing is a test failure, never a skip: the replica stories only mean
//! something against the real server.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Where Debian installs each major version's server binaries.
const DEBIAN_PG_ROOT: &str = "/usr/lib/postgresql";

/// The superuser `initdb` creates; the URL's user, with trust authentication on loopback.
const SUPERUSER: &str = "postgres";

/// Server settings for tests: no fsync (only a power loss would lose data, and a lost test
/// database costs nothing), and enough connections for parallel tests each opening two
/// stores with pools of ~5. Commits stay synchronous: a stopped server (a crash, in fault
/// tests) must keep what it acknowledged.
const SETTINGS: &[(&str, &str)] = &[
    ("fsync", "off"),
    ("full_page_writes", "off"),
    ("max_connections", "300"),
    ("listen_addresses", "127.0.0.1"),
];

/// A PostgreSQL server of the tests' own, stopped (and its directory removed) when dropped.
#[derive(Debug)]
pub struct PgServer {
    bin: PathBuf,
    port: u16,
    running: bool,
    // Last, so the directory outlives the server it is dropped after.
    dir: tempfile::TempDir,
}

impl PgServer {
    /// Initializes a data directory and starts a server on a free loopback port.
    pub fn start() -> Self {
        let bin = newest_bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("pg-test-")
            .tempdir()
            .expect("a temp dir for PostgreSQL");
        std::fs::create_dir(dir.path().join("socket")).expect("the socket dir can be created");
        hand_to_postgres_user(dir.path());
        let data = dir.path().join("data");
        let initdb = run(as_server_user(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", SUPERUSER, "--auth=trust", "--no-sync", "-E", "UTF8"])
            .arg("--locale=C"));
        assert!(
            initdb.status.success(),
            "initdb failed:\n{}",
            describe(&initdb)
        );
        let mut server = Self {
            bin,
            port: 0,
            running: false,
            dir,
        };
        server.start_on_free_port();
        spawn_watchdog(&server.bin, server.dir.path());
        server
    }

    /// `postgres://postgres@127.0.0.1:PORT/db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{db}", self.port)
    }

    /// The loopback port it listens on (the same across [`PgServer::stop`] and a restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates an empty database named `db`.
    pub fn create_database(&self, db: &str) {
        self.sql("postgres", &format!("CREATE DATABASE {db}"));
    }

    /// Runs `statement` in database `db` with `psql` and returns what it printed (unaligned,
    /// tuples only); a failure is a test failure with psql's message.
    pub fn sql(&self, db: &str, statement: &str) -> String {
        let out = self.try_sql(db, statement);
        assert!(
            out.status.success(),
            "psql -c {statement:?} on {db} failed:\n{}",
            describe(&out)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// [`PgServer::sql`] that returns psql's output even when it failed.
    pub fn try_sql(&self, db: &str, statement: &str) -> Output {
        run(Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-U", SUPERUSER, "-d", db])
            .args(["-p", &self.port.to_string()])
            .args([
                "-v",
                "ON_ERROR_STOP=1",
                "-X",
                "-q",
                "-A",
                "-t",
                "-c",
                statement,
            ]))
    }

    /// Stops the server at once, as a crash would (`-m immediate`); the data stays.
    pub fn stop(&mut self) {
        self.pg_ctl_stop();
        self.running = false;
    }

    /// Starts the stopped server again on the same port and data directory.
    pub fn start_again(&mut self) {
        assert!(!self.running, "the server is already running");
        let out = self.pg_ctl_start(self.port);
        assert!(
            out.status.success(),
            "PostgreSQL did not start again on port {}:\n{}\n{}",
            self.port,
            describe(&out),
            self.log()
        );
        self.running = true;
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    /// Picks a free port and starts on it; another process may take a probed port before the
    /// server binds it, so a few ports are tried.
    fn start_on_free_port(&mut self) {
        let mut last = None;
        for _ in 0..5 {
            let port = free_tcp_port();
            let out = self.pg_ctl_start(port);
            if out.status.success() {
                self.port = port;
                self.running = true;
                return;
            }
            last = Some(out);
        }
        panic!(
            "PostgreSQL did not start on any of 5 free ports:\n{}\n{}",
            last.map(|o| describe(&o)).unwrap_or_default(),
            self.log()
        );
    }

    fn pg_ctl_start(&self, port: u16) -> Output {
        let mut options = format!("-p {port} -k {}", self.dir.path().join("socket").display());
        for (name, value) in SETTINGS {
            options.push_str(&format!(" -c {name}={value}"));
        }
        run(as_server_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.log_file())
            .args(["-w", "-t", "60", "-o", &options, "start"]))
    }

    fn pg_ctl_stop(&self) {
        if self.running {
            // Best effort: a failure here leaves the watchdog to stop it.
            let _ = run(as_server_user(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.path().join("data"))
                .args(["-m", "immediate", "-w", "stop"]));
        }
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.pg_ctl_stop();
    }
}

/// The test process's shared server, started on first use.
pub fn shared_server() -> &'static PgServer {
    static SHARED: OnceLock<PgServer> = OnceLock::new();
    SHARED.get_or_init(PgServer::start)
}

/// A new, empty database on the shared server, as a URL
/// `postgres://postgres@127.0.0.1:PORT/t_N`.
pub fn fresh_database() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let server = shared_server();
    let db = format!("t_{}", NEXT.fetch_add(1, Ordering::Relaxed));
    server.create_database(&db);
    server.url(&db)
}

/// The `bin` directory of the newest PostgreSQL installed, or a failure saying what to install.
fn newest_bin_dir() -> PathBuf {
    let versions = std::fs::read_dir(DEBIAN_PG_ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        });
    versions
        .max_by_key(|(v, _)| *v)
        .map(|(_, bin)| bin)
        .unwrap_or_else(|| {
            panic!(
                "PostgreSQL is not installed (no {DEBIAN_PG_ROOT}/*/bin/initdb): install Debian's \
             `postgresql` package (apt-get install postgresql), or run scripts/test, which does"
            )
        })
}

/// Whether this process runs as root, where the server must run as another user.
fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A command for a server binary: as the `postgres` user when root, else as is.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", SUPERUSER, "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// When root, gives the server's directory to the `postgres` user (initdb wants to own it).
fn hand_to_postgres_user(dir: &Path) {
    if !is_root() {
        return;
    }
    let out = run(Command::new("chown")
        .arg("-R")
        .arg(format!("{SUPERUSER}:"))
        .arg(dir));
    assert!(
        out.status.success(),
        "cannot give {} to the `{SUPERUSER}` user (Debian's `postgresql` package creates it):\n{}",
        dir.display(),
        describe(&out)
    );
}

/// Starts a shell, outside this process's group (a Ctrl-C of the tests must not kill it
/// first), that stops the server and removes `dir` once this process has ended.
fn spawn_watchdog(bin: &Path, dir: &Path) {
    let pg_ctl = bin.join("pg_ctl");
    let stop = if is_root() {
        format!("runuser -u {SUPERUSER} -- '{}'", pg_ctl.display())
    } else {
        format!("'{}'", pg_ctl.display())
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         {stop} -D '{dir}/data' -m immediate -w stop; rm -rf '{dir}'",
        pid = std::process::id(),
        dir = dir.display(),
    );
    // The outer shell returns at once (and is waited for); the loop, in the background,
    // belongs to init from then on, so it leaves no zombie behind.
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("({script}) &"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .status()
        .expect("the PostgreSQL watchdog shell can be started");
    assert!(
        status.success(),
        "the PostgreSQL watchdog did not start: {status}"
    );
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a loopback port can be bound")
        .port()
}

/// Runs a command to completion, its output captured; a command that cannot start at all
/// is a failure naming it.
fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn describe(out: &Output) -> String {
    format!(
        "{}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
