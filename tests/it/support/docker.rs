//! Real containers for the Docker action tests, driven through the `docker` CLI.
//!
//! The image is a two-megabyte busybox imported from the host's static `/bin/busybox`, so the
//! tests need no registry. Docker missing is a test failure, never a skip: these tests are the
//! only proof the actions work against a real engine.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The repository of the image every test container runs; its tag is a digest of the tools
/// it carries (see [`test_image`]).
const TEST_IMAGE_REPO: &str = "alert-responder-test/busybox";

/// Executables the image carries besides busybox, as (path in the image, content): stand-ins
/// for the K2 tools playbooks call. Add more here; the tag follows their content, so a changed
/// tool means a new image, never a stale one left by an earlier run.
const TOOLS: &[(&str, &str)] = &[
    // `uv run python /opt/k2/scripts/iceberg_maintenance.py [--execute]`.
    ("bin/uv", include_str!("image/uv")),
];

/// The line every test container prints on each start, for the logs tests to grep.
pub const OOM_LINE: &str = "java.lang.OutOfMemoryError: test";

/// How long fixtures wait for a container to be ready before failing the test.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `docker args...`, panicking with a clear message if the CLI itself cannot start.
fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run the docker CLI ({e}); these tests need Docker installed and running")
        })
}

/// Runs `docker args...` and returns its stdout, panicking with stderr on failure.
pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `repo:<FNV-1a of TOOLS>`: stable across runs and Rust versions, unlike std's hasher.
fn image_name() -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (path, content) in TOOLS {
        for byte in path.bytes().chain([0]).chain(content.bytes()).chain([0]) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{TEST_IMAGE_REPO}:{hash:016x}")
}

/// Builds the test image once per process (and not at all if another process already did);
/// returns its name.
pub fn test_image() -> String {
    static BUILT: OnceLock<String> = OnceLock::new();
    let name = BUILT.get_or_init(|| {
        let name = image_name();
        if docker(&["image", "inspect", &name]).status.success() {
            return name;
        }
        let busybox = Path::new("/bin/busybox");
        assert!(
            busybox.exists(),
            "/bin/busybox is missing; install Debian's busybox-static to build the test image"
        );
        let dir = tempfile::tempdir().expect("a temp dir can be created for the image rootfs");
        let root = dir.path().join("root");
        for sub in ["bin", "tmp", "fill"] {
            std::fs::create_dir_all(root.join(sub)).expect("rootfs dirs can be created");
        }
        std::fs::copy(busybox, root.join("bin/busybox")).expect("/bin/busybox can be copied");
        // Every applet the static busybox offers (sh, sleep, dd, du, ...) as a symlink.
        let list = Command::new(busybox)
            .arg("--list")
            .output()
            .expect("/bin/busybox --list runs");
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" && !applet.is_empty() {
                std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))
                    .expect("applet symlinks can be created in a fresh dir");
            }
        }
        for (path, content) in TOOLS {
            use std::os::unix::fs::PermissionsExt;
            let file = root.join(path);
            std::fs::write(&file, content).expect("a test tool can be written to the rootfs");
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))
                .expect("a test tool can be made executable");
        }
        let tarball = dir.path().join("rootfs.tar");
        let tar = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tarball)
            .arg(".")
            .status()
            .expect("tar runs");
        assert!(tar.success(), "tar of the test rootfs failed");
        let tarball = tarball.to_str().expect("temp paths are UTF-8 here");
        // Concurrent imports from two processes are harmless: same content, same tag.
        docker_ok(&["import", tarball, &name]);
        name
    });
    name.clone()
}

/// A unique container name: `k2-test-<prefix>-<pid>-<counter>-<nanos>`.
fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("k2-test-{prefix}-{}-{n}-{nanos}", std::process::id())
}

/// A script for PID 1 that stops at once on SIGTERM (PID 1 ignores it without a trap), so
/// `docker restart` takes well under a second instead of the stop timeout.
fn script(body: &str) -> String {
    format!(
        "trap 'exit 0' TERM; echo 'k2 test container starting'; {body} echo '{OOM_LINE}'; \
         sleep 3600 & wait"
    )
}

/// A running container, removed (`docker rm -f`) when dropped.
#[derive(Debug)]
pub struct TestContainer {
    name: String,
}

impl TestContainer {
    /// A container at > 90% of its 64 MiB limit: on its FIRST start only it writes 60 MiB to
    /// a tmpfs (charged to its memory cgroup). The marker `/started` lives in the writable
    /// layer and survives restarts, while the tmpfs is fresh on every start, so after a
    /// restart its memory is back to ~1 MiB (seen: 96.7% before, 1.3% after).
    pub fn memory_hog(prefix: &str) -> Self {
        let body = "if [ ! -e /started ]; then touch /started; \
                    dd if=/dev/zero of=/fill/x bs=1M count=60 2>/dev/null; touch /fill/done; fi;";
        let c = Self::run(prefix, &["--tmpfs", "/fill:size=100m"], &script(body));
        c.wait_until("the 60 MiB fill", || {
            docker(&["exec", &c.name, "test", "-e", "/fill/done"])
                .status
                .success()
        });
        c
    }

    /// A container with the same 64 MiB limit that only waits.
    pub fn idle(prefix: &str) -> Self {
        Self::idle_with(prefix, &[])
    }

    /// An idle container with `extra` `docker run` options (e.g. a small `--tmpfs` volume).
    pub fn idle_with(prefix: &str, extra: &[&str]) -> Self {
        Self::run(prefix, extra, &script(""))
    }

    /// An idle container with the Docker volume `volume` mounted at `/checkpoints`, like the
    /// Spark master that the checkpoint playbooks exec into.
    pub fn with_checkpoints(prefix: &str, volume: &CheckpointVolume) -> Self {
        let mount = format!("{}:/checkpoints", volume.name);
        Self::run(prefix, &["-v", &mount], &script(""))
    }

    /// A streaming job over `volume`'s `/checkpoints/<name without k2->`. On its first start
    /// its checkpoint gets corrupted (and, with `backup`, a good `<dir>.backup` is kept
    /// beside it); on every start it reads the checkpoint's metadata, and if that says
    /// "corrupt" it prints the runbook's symptoms and exits 1, as Spark does; otherwise it
    /// runs. With `symptom` false it exits 1 at once with an unrelated error instead. Not
    /// waited for: it dies at once.
    pub fn streaming_job(prefix: &str, volume: &str, symptom: bool, backup: bool) -> Self {
        let image = test_image();
        let name = unique_name(prefix);
        let dir = format!("/checkpoints/{}", name.trim_start_matches("k2-"));
        let keep = if backup {
            format!("mkdir -p {dir}.backup; echo 'v1 {{\"id\":\"good-backup\"}}' > {dir}.backup/metadata;")
        } else {
            String::new()
        };
        let body = if symptom {
            format!(
                "if [ ! -e /started ]; then touch /started; mkdir -p {dir}; \
                 echo 'v1 corrupt batch 41' > {dir}/metadata; {keep} fi; \
                 if grep -q corrupt {dir}/metadata 2>/dev/null; then \
                 echo 'INFO MicroBatchExecution: Resuming from {dir}'; \
                 echo 'ERROR MicroBatchExecution: Query bronze failed: checkpoint corrupted'; \
                 echo 'Caused by: java.io.IOException: Unable to read checkpoint metadata at {dir}/metadata'; \
                 exit 1; fi; echo 'k2 test job running'; sleep 3600 & wait"
            )
        } else {
            "echo 'ERROR SparkContext: Could not connect to the Spark master'; exit 1".to_owned()
        };
        let mount = format!("{volume}:/checkpoints");
        let script = format!("trap 'exit 0' TERM; {body}");
        docker_ok(&[
            "run", "-d", "--name", &name, "-v", &mount, &image, "sh", "-c", &script,
        ]);
        Self { name }
    }

    /// The job's checkpoint directory (see [`TestContainer::streaming_job`]).
    pub fn checkpoint_dir(&self) -> String {
        format!("/checkpoints/{}", self.name.trim_start_matches("k2-"))
    }

    /// Creates and starts the container, then waits until it runs and has printed its line.
    fn run(prefix: &str, extra: &[&str], script: &str) -> Self {
        let image = test_image();
        let name = unique_name(prefix);
        let mut args = vec![
            "run",
            "-d",
            "--name",
            &name,
            "--memory",
            "64m",
            "--memory-swap",
            "64m",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&image, "sh", "-c", script]);
        docker_ok(&args);
        // Constructed before waiting so a failed wait still removes the container.
        let c = Self { name };
        c.wait_until("running and started", || {
            c.is_running()
                && String::from_utf8_lossy(&docker(&["logs", &c.name]).stdout).contains(OOM_LINE)
        });
        c
    }

    /// Polls `ready` every 100 ms, panicking after [`READY_TIMEOUT`].
    fn wait_until(&self, what: &str, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while !ready() {
            assert!(
                Instant::now() < deadline,
                "container {} not ready ({what}) within {READY_TIMEOUT:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The container's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `docker inspect -f FORMAT`, trimmed.
    fn inspect(&self, format: &str) -> String {
        docker_ok(&["inspect", "-f", format, &self.name])
            .trim()
            .to_owned()
    }

    /// The engine's RestartCount (policy restarts only; `docker restart` leaves it alone).
    pub fn restart_count(&self) -> i64 {
        self.inspect("{{.RestartCount}}")
            .parse()
            .expect("RestartCount is an integer")
    }

    /// How many times PID 1 started (it prints a line on each start): 1 + the restarts.
    pub fn starts(&self) -> usize {
        String::from_utf8_lossy(&docker(&["logs", &self.name]).stdout)
            .matches("k2 test container starting")
            .count()
    }

    /// State.StartedAt as the engine reports it (RFC 3339 with nanoseconds).
    pub fn started_at(&self) -> String {
        self.inspect("{{.State.StartedAt}}")
    }

    /// Whether State.Running is true.
    pub fn is_running(&self) -> bool {
        self.inspect("{{.State.Running}}") == "true"
    }

    /// Stops the container (its trap makes this immediate), for the start tests.
    pub fn stop(&self) {
        docker_ok(&["stop", "-t", "5", &self.name]);
    }

    /// Waits (bounded) until the container runs, or has exited when `running` is false.
    pub fn wait_running(&self, running: bool) {
        self.wait_until("its running state", || self.is_running() == running);
    }

    /// Runs `argv` in the container and returns its stdout; panics if it fails.
    pub fn exec(&self, argv: &[&str]) -> String {
        let mut args = vec!["exec", self.name.as_str()];
        args.extend_from_slice(argv);
        docker_ok(&args)
    }

    /// Memory % as `docker stats --no-stream` prints it (an independent check on ours).
    pub fn cli_memory_percent(&self) -> f64 {
        let out = docker_ok(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.MemPerc}}",
            &self.name,
        ]);
        out.trim()
            .trim_end_matches('%')
            .parse()
            .expect("docker stats prints MemPerc as a number with %")
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        // Best effort: a failed removal must not turn a passing test into a panic in drop.
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.name])
            .output();
    }
}

/// A Docker volume standing for the K2 `/checkpoints` volume, removed when dropped.
#[derive(Debug)]
pub struct CheckpointVolume {
    name: String,
}

impl CheckpointVolume {
    /// Creates a fresh volume.
    pub fn new(prefix: &str) -> Self {
        let name = unique_name(prefix);
        docker_ok(&["volume", "create", &name]);
        Self { name }
    }

    /// The volume's name, for `-v <name>:/checkpoints`.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for CheckpointVolume {
    fn drop(&mut self) {
        // Best effort, after the containers using it (declared after it) were removed.
        let _ = Command::new("docker")
            .args(["volume", "rm", "-f", &self.name])
            .output();
    }
}
