//! `iceberg_maintenance`: the runbook's weekly "Run Iceberg Maintenance", i.e. K2's
//! `uv run python /opt/k2/scripts/iceberg_maintenance.py [--execute]` in the Spark master,
//! with its per-table output parsed into numbers and graded by the runbook's red flags.
//!
//! Without `execute` the script only reports (its own dry-run mode), so the step reads and
//! runs without budget; with `execute: true` it expires snapshots and deletes orphan files,
//! so it is destructive: budgeted, planned only in dry-run, and in the shipped playbook
//! approved by a person first.

mod summary;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::disk_usage::{absolute_path, Grade};
use super::docker::{run_argv, Keep};
use super::{ActionCtx, ActionError, StepEnv, StepKind, StepOutput};
use crate::template::Tmpl;

pub use summary::TableResult;

/// A few hundred lines per table; Spark's own logging goes to stderr, of which the tail is kept.
const MAX_OUTPUT_BYTES: usize = 256 * 1024;

/// Runs the maintenance script, as a dry run or for real.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IcebergMaintenance {
    /// The container holding the script and Spark (the Spark master).
    pub container: Tmpl,
    /// The script's absolute path inside it.
    #[serde(default = "default_script")]
    pub script: Tmpl,
    /// Pass `--execute`: expire and delete for real (destructive).
    #[serde(default)]
    pub execute: bool,
    /// Orphan files removed from this many on are red: the runbook's "hundreds of orphan
    /// files" that mean job failures or crashes.
    #[serde(default = "default_orphans_red")]
    pub orphans_red: u64,
}

/// Where K2 installs the script.
fn default_script() -> Tmpl {
    Tmpl::new("/opt/k2/scripts/iceberg_maintenance.py")
}

/// "Hundreds" starts at 100; the runbook expects 0–50 from healthy jobs.
fn default_orphans_red() -> u64 {
    100
}

/// Above the runbook's expected 0–50 orphan files, but not yet hundreds.
const ORPHANS_EXPECTED: u64 = 50;

/// The typed outputs of [`IcebergMaintenance`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IcebergMaintenanceOutput {
    /// The rendered container name.
    pub container: String,
    /// Whether this was the `--execute` run.
    pub executed: bool,
    /// The script's exit code (1 when any table operation failed).
    pub exit_code: i64,
    /// Per-table results, in the script's order.
    pub tables: Vec<TableResult>,
    /// Snapshots before the run, over all tables.
    pub snapshots_total: u64,
    /// Dry run: snapshots it would expire, over all tables.
    pub would_expire_total: u64,
    /// `--execute`: snapshots expired, over all tables.
    pub expired_total: u64,
    /// `--execute`: orphan files removed, over all tables.
    pub orphans_removed_total: u64,
    /// Every error the script printed, each with its table.
    pub errors: Vec<String>,
    /// `red` on errors, a non-zero exit or hundreds of orphan files; `yellow` on more orphans
    /// than expected or a missing table; `green` otherwise.
    pub grade: Grade,
    /// Why the grade is not green, one reason per entry.
    pub flags: Vec<String>,
    /// One line per table, for people.
    pub table: String,
}

const OUTPUTS: &[&str] = &[
    "container",
    "executed",
    "exit_code",
    "tables",
    "snapshots_total",
    "would_expire_total",
    "expired_total",
    "orphans_removed_total",
    "errors",
    "grade",
    "flags",
    "table",
];

impl IcebergMaintenance {
    fn argv(&self, script: String) -> Vec<String> {
        let mut argv: Vec<String> = ["uv", "run", "python"].map(str::to_owned).into();
        argv.push(script);
        if self.execute {
            argv.push("--execute".to_owned());
        }
        argv
    }

    fn render(&self, env: &StepEnv<'_>) -> Result<(String, Vec<String>), ActionError> {
        let container = env.container(&self.container)?;
        let script = absolute_path(&env.render(&self.script)?)?;
        Ok((container, self.argv(script)))
    }
}

/// Grades a parsed run by the runbook's red flags.
fn grade(s: &summary::Summary, exit_code: i64, orphans_red: u64) -> (Grade, Vec<String>) {
    let mut reds = Vec::new();
    let mut yellows = Vec::new();
    let errors = s.errors();
    if !errors.is_empty() {
        reds.push(format!(
            "{} error(s): table corruption? {}",
            errors.len(),
            errors.join("; ")
        ));
    }
    if exit_code != 0 && errors.is_empty() {
        reds.push(format!("the script exited {exit_code}"));
    }
    if !s.finished {
        reds.push("the script stopped before its summary".to_owned());
    }
    let orphans = s.total(|t| t.orphans_removed);
    if orphans >= orphans_red {
        reds.push(format!(
            "{orphans} orphan files removed: hundreds mean job failures or crashes"
        ));
    } else if orphans > ORPHANS_EXPECTED {
        yellows.push(format!(
            "{orphans} orphan files removed (expected 0-{ORPHANS_EXPECTED})"
        ));
    }
    for t in s.tables.iter().filter(|t| t.missing) {
        yellows.push(format!("table {} does not exist", t.table));
    }
    let grade = if !reds.is_empty() {
        Grade::Red
    } else if !yellows.is_empty() {
        Grade::Yellow
    } else {
        Grade::Green
    };
    reds.extend(yellows);
    (grade, reds)
}

#[async_trait]
impl StepKind for IcebergMaintenance {
    fn name(&self) -> &'static str {
        "iceberg_maintenance"
    }

    fn outputs(&self) -> &'static [&'static str] {
        OUTPUTS
    }

    fn destructive(&self) -> bool {
        self.execute
    }

    fn templates_mut(&mut self) -> Vec<(&'static str, &mut Tmpl)> {
        vec![
            ("container", &mut self.container),
            ("script", &mut self.script),
        ]
    }

    fn plan(&self, env: &StepEnv<'_>) -> Result<String, ActionError> {
        let (container, argv) = self.render(env)?;
        let what = if self.execute {
            "expire snapshots and remove orphan files"
        } else {
            "dry-run Iceberg maintenance"
        };
        Ok(format!("{what}: run [{}] in {container}", argv.join(" ")))
    }

    async fn run(&self, ctx: &ActionCtx, env: &StepEnv<'_>) -> Result<StepOutput, ActionError> {
        let (container, argv) = self.render(env)?;
        let ran = run_argv(ctx, &container, argv, MAX_OUTPUT_BYTES, Keep::Tail).await?;
        let parsed = summary::parse(&ran.stdout);
        if parsed.tables.is_empty() && parsed.fatal.is_empty() {
            // Nothing the script would print: uv or the script is missing, or Python failed
            // before the first table. Its last words say which.
            let why = ran
                .stderr
                .lines()
                .chain(ran.stdout.lines())
                .map(str::trim)
                .rfind(|l| !l.is_empty())
                .unwrap_or("no output");
            return Err(ActionError::Failed(format!(
                "iceberg maintenance exited {} in {container} without a table report: {why}",
                ran.exit_code
            )));
        }
        let (grade, flags) = grade(&parsed, ran.exit_code, self.orphans_red);
        let typed = IcebergMaintenanceOutput {
            executed: self.execute,
            exit_code: ran.exit_code,
            snapshots_total: parsed.total(|t| t.snapshots),
            would_expire_total: parsed.total(|t| t.would_expire),
            expired_total: parsed.total(|t| t.expired),
            orphans_removed_total: parsed.total(|t| t.orphans_removed),
            errors: parsed.errors(),
            table: parsed
                .tables
                .iter()
                .map(TableResult::line)
                .collect::<Vec<_>>()
                .join("\n"),
            tables: parsed.tables,
            grade,
            flags,
            container,
        };
        let summary = if self.execute {
            format!(
                "Iceberg maintenance executed on {} tables: {} snapshots expired, {} orphan \
                 files removed, {} error(s)",
                typed.tables.len(),
                typed.expired_total,
                typed.orphans_removed_total,
                typed.errors.len()
            )
        } else {
            format!(
                "Iceberg maintenance dry run on {} tables: {} snapshots, ~{} would expire, {} \
                 error(s)",
                typed.tables.len(),
                typed.snapshots_total,
                typed.would_expire_total,
                typed.errors.len()
            )
        };
        Ok(StepOutput::from_typed(&typed, summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_execute_is_destructive_and_argv_stays_a_list() {
        let dry: IcebergMaintenance =
            serde_yaml_ng::from_str("container: k2-spark-master").expect("valid YAML");
        assert!(!dry.destructive());
        assert_eq!(dry.orphans_red, 100);
        assert_eq!(
            dry.argv("/s.py".into()),
            ["uv", "run", "python", "/s.py"].map(str::to_owned)
        );
        let exec: IcebergMaintenance =
            serde_yaml_ng::from_str("container: c\nexecute: true").expect("valid YAML");
        assert!(exec.destructive());
        assert_eq!(
            exec.argv("/s.py".into()).last().map(String::as_str),
            Some("--execute")
        );
        assert!(serde_yaml_ng::from_str::<IcebergMaintenance>("container: c\nshell: x").is_err());
    }

    #[test]
    fn grades_follow_the_runbooks_red_flags() {
        let parsed = |text: &str| summary::parse(text);
        let table = "Table: iceberg.market_data.t\n";
        let done = "MAINTENANCE SUMMARY\n";
        // (stdout, exit code, grade, a word the flags carry)
        let cases: &[(String, i64, Grade, &str)] = &[
            (
                format!("{table}✓ Removed 3 orphan files\n{done}"),
                0,
                Grade::Green,
                "",
            ),
            (
                format!("{table}✓ Removed 60 orphan files\n{done}"),
                0,
                Grade::Yellow,
                "expected 0-50",
            ),
            (
                format!("{table}✓ Removed 300 orphan files\n{done}"),
                0,
                Grade::Red,
                "hundreds",
            ),
            (
                format!("{table}✗ ERROR: boom\n{done}"),
                1,
                Grade::Red,
                "boom",
            ),
            (
                format!("{table}Current snapshots: 5\n"),
                0,
                Grade::Red,
                "before its summary",
            ),
            (
                format!("⚠️  Skipping iceberg.market_data.t (table does not exist)\n{done}"),
                0,
                Grade::Yellow,
                "does not exist",
            ),
        ];
        for (stdout, code, want, word) in cases {
            let (got, flags) = grade(&parsed(stdout), *code, 100);
            assert_eq!(got, *want, "{stdout}");
            assert!(flags.join(" ").contains(word), "{flags:?}");
        }
    }

    #[test]
    fn output_keys_equal_outputs() {
        let typed = IcebergMaintenanceOutput {
            container: "c".into(),
            executed: false,
            exit_code: 0,
            tables: Vec::new(),
            snapshots_total: 0,
            would_expire_total: 0,
            expired_total: 0,
            orphans_removed_total: 0,
            errors: Vec::new(),
            grade: Grade::Green,
            flags: Vec::new(),
            table: String::new(),
        };
        let out = StepOutput::from_typed(&typed, String::new());
        let mut got: Vec<&str> = out.fields.keys().map(String::as_str).collect();
        let mut want = OUTPUTS.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
    }
}
