//! A private PostgreSQL server for the bench: a temporary data directory, a free port on
//! loopback, its socket inside that directory, and the default durability settings
//! (`fsync=on`, `synchronous_commit=on`), because the responder's 2xx must mean the alert is on
//! disk whatever the backend. Every phase gets a database of its own; the server stops when
//! this is dropped, also when the bench panics.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// The running server.
pub(crate) struct Postgres {
    bin: PathBuf,
    pub(crate) data: PathBuf,
    pub(crate) port: u16,
    // Held for its Drop: removes the data directory after the server stopped.
    _dir: tempfile::TempDir,
    next_db: AtomicU64,
}

impl Postgres {
    /// initdb and start; `bin` is the directory holding `initdb`, `pg_ctl` and `createdb`.
    pub(crate) fn start(bin: &Path) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("bench-pg")
            .tempdir()
            .expect("a temporary directory can be made");
        let data = dir.path().join("data");
        let port = crate::system::free_port();
        let pg = Self {
            bin: bin.to_owned(),
            data: data.clone(),
            port,
            _dir: dir,
            next_db: AtomicU64::new(0),
        };
        let root = pg.data.parent().expect("data has a parent");
        if as_root() {
            // PostgreSQL refuses to run as root: the server runs as `postgres`, which must
            // own its directory.
            run(Command::new("chown").arg("postgres:").arg(root));
        }
        // --no-sync: only initdb's own files skip fsync (a crash there just fails the bench);
        // the server below runs with fsync and synchronous_commit on.
        run(pg
            .command("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(&pg.data));
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=on -c synchronous_commit=on",
            root.display()
        );
        run(pg
            .command("pg_ctl")
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(&pg.data)
            .arg("-l")
            .arg(root.join("server.log"))
            .args(["-o", &options]));
        pg
    }

    /// Creates a fresh database and returns its URL.
    pub(crate) fn create_database(&self, name: &str) -> String {
        let n = self.next_db.fetch_add(1, Ordering::Relaxed);
        let db = format!(
            "bench_{n}_{}",
            name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
        run(self
            .command("createdb")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .arg(&db));
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// `name` from the server's bin directory, as `postgres` when the bench runs as root.
    fn command(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        if as_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Fast shutdown: disconnects the (already stopped) responders' leftovers, no waiting.
        let _ = self
            .command("pg_ctl")
            .args(["stop", "-m", "fast", "-w", "-D"])
            .arg(&self.data)
            .output();
    }
}

/// The default of `--pg-bin`: the newest `/usr/lib/postgresql/*/bin` (Debian's layout, not on
/// PATH), else none, so that the programs are looked up on PATH.
pub(crate) fn find_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map_or_else(PathBuf::new, |(_, bin)| bin)
}

fn as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} does not start: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
