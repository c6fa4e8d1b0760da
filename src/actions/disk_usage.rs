//! `disk_usage`: the size of each directory directly under a path in a container, graded
//! against the runbook's checkpoint thresholds (green < 1 GiB, yellow 1–2 GiB, red > 2 GiB).
//!
//! Runs `du -k -d 1 <path>` as argv; GNU coreutils and busybox both print `<KiB>\t<dir>` lines
//! and end with the line for `path` itself, which is reported as the total.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::docker::{format_bytes, run_argv, Keep};
use super::{ActionCtx, ActionError, StepEnv, StepKind, StepOutput};
use crate::template::Tmpl;

/// `du` prints one short line per directory; a checkpoint volume has a handful.
const MAX_OUTPUT_BYTES: usize = 256 * 1024;
/// At most this many directories are listed in `dirs` (the largest); grades count all.
const MAX_DIRS: usize = 50;
const GIB: u64 = 1 << 30;

/// Measures the directories directly under `path` and grades each by size.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskUsage {
    /// The container to measure in.
    pub container: Tmpl,
    /// The absolute directory whose children are measured.
    #[serde(default = "default_path")]
    pub path: Tmpl,
    /// A directory of at least this many bytes is yellow.
    #[serde(default = "default_yellow")]
    pub yellow_bytes: u64,
    /// A directory of more than this many bytes is red.
    #[serde(default = "default_red")]
    pub red_bytes: u64,
}

/// Where the K2 Spark containers keep their streaming checkpoints.
pub(super) fn default_path() -> Tmpl {
    Tmpl::new("/checkpoints")
}

/// Runbook: yellow from 1 GB per checkpoint.
fn default_yellow() -> u64 {
    GIB
}

/// Runbook: red above 2 GB per checkpoint (the cleaner is not working).
fn default_red() -> u64 {
    2 * GIB
}

/// A size grade; ordered so the worst is the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Grade {
    /// Below the yellow threshold.
    Green,
    /// From the yellow threshold up to the red one.
    Yellow,
    /// Above the red threshold.
    Red,
}

impl Grade {
    /// Grades `bytes`: red above `red`, yellow from `yellow`, green below.
    pub fn of(bytes: u64, yellow: u64, red: u64) -> Self {
        if bytes > red {
            Grade::Red
        } else if bytes >= yellow {
            Grade::Yellow
        } else {
            Grade::Green
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Grade::Green => "green",
            Grade::Yellow => "yellow",
            Grade::Red => "red",
        }
    }
}

/// One measured directory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DirUsage {
    /// Its path as `du` printed it.
    pub path: String,
    /// Its disk usage in bytes (`du -k` × 1024: allocated blocks, not apparent size).
    pub bytes: u64,
    /// Its grade.
    pub grade: Grade,
}

/// The typed outputs of [`DiskUsage`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskUsageOutput {
    /// The rendered container name.
    pub container: String,
    /// The measured path.
    pub path: String,
    /// The directories under it, largest first (at most 50).
    pub dirs: Vec<DirUsage>,
    /// The usage of `path` itself, children and loose files included.
    pub total_bytes: u64,
    /// The largest directory's path (empty when there is none).
    pub largest: String,
    /// The largest directory's bytes (0 when there is none).
    pub largest_bytes: u64,
    /// The worst grade among the directories (`green` when there are none).
    pub grade: Grade,
    /// How many directories are red.
    pub reds: usize,
    /// How many directories are yellow.
    pub yellows: usize,
}

const OUTPUTS: &[&str] = &[
    "container",
    "path",
    "dirs",
    "total_bytes",
    "largest",
    "largest_bytes",
    "grade",
    "reds",
    "yellows",
];

/// Checks a rendered path is absolute: a relative one would depend on the exec's working
/// directory, and one starting with `-` would be read as an option by `du` or `find`.
pub(super) fn absolute_path(path: &str) -> Result<String, ActionError> {
    if path.starts_with('/') && !path.contains('\0') {
        Ok(path.to_owned())
    } else {
        Err(ActionError::Failed(format!(
            "path {path:?} must be absolute (start with '/')"
        )))
    }
}

/// `path` without trailing slashes (but `/` stays `/`), to match du's spelling of it.
fn normalize(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/"
    } else {
        trimmed
    }
}

/// What `du -k -d 1 root` printed: the total line for `root` and one entry per child.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DuListing {
    /// Bytes of `root` itself, if its line was printed.
    pub total: Option<u64>,
    /// `(path, bytes)` of every other line, in du's order.
    pub dirs: Vec<(String, u64)>,
}

/// Parses `du -k` output: `<KiB><TAB><path>` per line (path may hold spaces). Lines that do
/// not start with a number (a warning on stdout) are skipped.
pub fn parse_du(stdout: &str, root: &str) -> DuListing {
    let root = normalize(root);
    let mut listing = DuListing::default();
    for line in stdout.lines() {
        let Some((kib, path)) = line
            .split_once('\t')
            .or_else(|| line.trim_start().split_once(' '))
        else {
            continue;
        };
        let Ok(kib) = kib.trim().parse::<u64>() else {
            continue;
        };
        let path = path.trim_start_matches([' ', '\t']);
        let bytes = kib.saturating_mul(1024);
        if normalize(path) == root {
            listing.total = Some(bytes);
        } else {
            listing.dirs.push((path.to_owned(), bytes));
        }
    }
    listing
}

/// Grades a listing into the step's outputs (all but `container` and `path`).
fn grade(
    listing: DuListing,
    yellow: u64,
    red: u64,
    container: String,
    path: String,
) -> DiskUsageOutput {
    let mut dirs: Vec<DirUsage> = listing
        .dirs
        .into_iter()
        .map(|(path, bytes)| DirUsage {
            grade: Grade::of(bytes, yellow, red),
            path,
            bytes,
        })
        .collect();
    dirs.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
    let count = |g: Grade| dirs.iter().filter(|d| d.grade == g).count();
    let (reds, yellows) = (count(Grade::Red), count(Grade::Yellow));
    let worst = dirs.iter().map(|d| d.grade).max().unwrap_or(Grade::Green);
    let (largest, largest_bytes) = dirs
        .first()
        .map_or((String::new(), 0), |d| (d.path.clone(), d.bytes));
    dirs.truncate(MAX_DIRS);
    DiskUsageOutput {
        container,
        path,
        total_bytes: listing.total.unwrap_or(0),
        dirs,
        largest,
        largest_bytes,
        grade: worst,
        reds,
        yellows,
    }
}

/// `3 checkpoint dirs; largest /checkpoints/bronze-binance 2.3 GiB (red)`.
fn summary(out: &DiskUsageOutput, dir_count: usize) -> String {
    match out.dirs.first() {
        None => format!(
            "no dirs under {}; total {}",
            out.path,
            format_bytes(out.total_bytes)
        ),
        Some(d) => format!(
            "{dir_count} checkpoint dirs; largest {} {} ({})",
            d.path,
            format_bytes(d.bytes),
            d.grade.as_str()
        ),
    }
}

#[async_trait]
impl StepKind for DiskUsage {
    fn name(&self) -> &'static str {
        "disk_usage"
    }

    fn outputs(&self) -> &'static [&'static str] {
        OUTPUTS
    }

    fn templates_mut(&mut self) -> Vec<(&'static str, &mut Tmpl)> {
        vec![("container", &mut self.container), ("path", &mut self.path)]
    }

    fn plan(&self, env: &StepEnv<'_>) -> Result<String, ActionError> {
        let name = env.container(&self.container)?;
        let path = absolute_path(&env.render(&self.path)?)?;
        Ok(format!("measure dirs under {path} in {name}"))
    }

    async fn run(&self, ctx: &ActionCtx, env: &StepEnv<'_>) -> Result<StepOutput, ActionError> {
        let name = env.container(&self.container)?;
        let path = absolute_path(&env.render(&self.path)?)?;
        if self.yellow_bytes > self.red_bytes {
            return Err(ActionError::Failed(format!(
                "yellow_bytes {} is above red_bytes {}",
                self.yellow_bytes, self.red_bytes
            )));
        }
        let argv = ["du", "-k", "-d", "1", &path].map(str::to_owned).to_vec();
        let ran = run_argv(ctx, &name, argv, MAX_OUTPUT_BYTES, Keep::Tail).await?;
        let listing = parse_du(&ran.stdout, &path);
        // du exits 1 when one subdirectory is unreadable but still measures the rest; only a
        // run without the total line (no such path, no du) is a failure.
        if listing.total.is_none() {
            let why = ran.stderr.lines().rfind(|l| !l.trim().is_empty());
            return Err(ActionError::Failed(format!(
                "du -k -d 1 {path} in {name} exited {}: {}",
                ran.exit_code,
                why.unwrap_or("no total line")
            )));
        }
        let dir_count = listing.dirs.len();
        let out = grade(listing, self.yellow_bytes, self.red_bytes, name, path);
        let mut summary = summary(&out, dir_count);
        if ran.exit_code != 0 {
            summary.push_str(&format!(
                " (du exited {}: some dirs unreadable)",
                ran.exit_code
            ));
        }
        Ok(StepOutput::from_typed(&out, summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/du/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn du_outputs_parse_from_fixtures() {
        // (fixture, root, total KiB, [(dir, KiB)])
        type Case<'a> = (&'a str, &'a str, Option<u64>, &'a [(&'a str, u64)]);
        let cases: &[Case<'_>] = &[
            (
                "gnu.txt",
                "/checkpoints",
                Some(4_404_020),
                &[
                    ("/checkpoints/bronze-kraken", 838_856),
                    ("/checkpoints/bronze-binance", 2_411_724),
                    ("/checkpoints/silver-binance", 1_153_436),
                ],
            ),
            (
                "busybox_trailing_slash.txt",
                "/checkpoints/",
                Some(3076),
                &[("/checkpoints/a", 1028), ("/checkpoints/b", 2044)],
            ),
            (
                "spaces.txt",
                "/data/check points",
                Some(1_000),
                &[("/data/check points/job one", 996)],
            ),
            ("empty_dir.txt", "/checkpoints", Some(4), &[]),
            ("nothing.txt", "/checkpoints", None, &[]),
        ];
        for (name, root, total_kib, dirs) in cases {
            let got = parse_du(&fixture(name), root);
            assert_eq!(got.total, total_kib.map(|k| k * 1024), "{name}");
            let want: Vec<(String, u64)> = dirs
                .iter()
                .map(|(p, k)| ((*p).to_owned(), k * 1024))
                .collect();
            assert_eq!(got.dirs, want, "{name}");
        }
    }

    #[test]
    fn grades_follow_the_runbook_thresholds() {
        for (bytes, want) in [
            (0, Grade::Green),
            (GIB - 1, Grade::Green),
            (GIB, Grade::Yellow),
            (2 * GIB, Grade::Yellow),
            (2 * GIB + 1, Grade::Red),
        ] {
            assert_eq!(Grade::of(bytes, GIB, 2 * GIB), want, "{bytes}");
        }
    }

    #[test]
    fn the_worst_grade_and_largest_dir_are_reported() {
        let out = grade(
            parse_du(&fixture("gnu.txt"), "/checkpoints"),
            GIB,
            2 * GIB,
            "k2-spark-master".into(),
            "/checkpoints".into(),
        );
        assert_eq!(out.grade, Grade::Red);
        assert_eq!((out.reds, out.yellows), (1, 1));
        assert_eq!(out.largest, "/checkpoints/bronze-binance");
        assert_eq!(
            summary(&out, 3),
            "3 checkpoint dirs; largest /checkpoints/bronze-binance 2.3 GiB (red)"
        );
        let fields = StepOutput::from_typed(&out, String::new()).fields;
        assert_eq!(fields["grade"], serde_json::json!("red"));
        assert_eq!(fields["dirs"][2]["grade"], serde_json::json!("green"));
        let mut got: Vec<&str> = fields.keys().map(String::as_str).collect();
        let mut want = OUTPUTS.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
    }

    #[test]
    fn yaml_defaults_and_paths() {
        let d: DiskUsage = serde_yaml_ng::from_str("container: k2-x").expect("YAML");
        assert_eq!(d.path.source, "/checkpoints");
        assert_eq!((d.yellow_bytes, d.red_bytes), (GIB, 2 * GIB));
        assert!(!d.destructive());
        assert!(serde_yaml_ng::from_str::<DiskUsage>("container: k2-x\nhuman: true").is_err());
        assert!(absolute_path("/checkpoints").is_ok());
        for bad in ["checkpoints", "-delete", "", "./x"] {
            assert!(absolute_path(bad).is_err(), "{bad}");
        }
    }
}
