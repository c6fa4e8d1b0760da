//! `spark_sql`: one query through the `spark-sql` CLI inside a container, rows parsed from its
//! tab-separated output.
//!
//! The query travels as a single argv element after `-e`, never through a shell, so quotes,
//! `;` or `$(...)` in a rendered alert label stay part of the SQL text. spark-sql writes its
//! logs to stderr and, depending on its log4j config, a `Time taken: ...` line; only stdout
//! data rows are parsed.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::docker::{run_argv, Keep};
use super::{ActionCtx, ActionError, StepEnv, StepKind, StepOutput};
use crate::template::Tmpl;

/// At most this many bytes of stdout and of stderr are kept; queries here end in `LIMIT`.
const MAX_OUTPUT_BYTES: usize = 1 << 20;
/// The rendered `table` output is cut to about this many characters, to fit a Slack message.
const MAX_TABLE_CHARS: usize = 3000;

/// Runs `query` with `spark-sql -e` in a container and returns the rows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SparkSql {
    /// The container with the Spark CLI, e.g. `{{ config.spark_master_container }}`.
    pub container: Tmpl,
    /// The SQL text, passed as one argument to `-e`.
    pub query: Tmpl,
    /// Path of the spark-sql launcher inside the container.
    #[serde(default = "default_spark_sql")]
    pub spark_sql: String,
    /// `key=value` Spark settings, each passed as `--conf key=value`.
    #[serde(default = "default_conf")]
    pub conf: Vec<String>,
    /// How many rows the `rows` and `table` outputs keep.
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
}

/// Where the K2 images install Spark.
fn default_spark_sql() -> String {
    "/opt/spark/bin/spark-sql".to_owned()
}

/// The runbook's Iceberg REST catalog settings, needed by every `iceberg.` query.
fn default_conf() -> Vec<String> {
    [
        "spark.sql.catalog.iceberg=org.apache.iceberg.spark.SparkCatalog",
        "spark.sql.catalog.iceberg.type=rest",
        "spark.sql.catalog.iceberg.uri=http://iceberg-rest:8181",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// A top-10 query plus a little room.
fn default_max_rows() -> usize {
    10
}

/// The typed outputs of [`SparkSql`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SparkSqlOutput {
    /// The rendered container name.
    pub container: String,
    /// The first `max_rows` rows, each a list of its tab-separated fields.
    pub rows: Vec<Vec<String>>,
    /// How many data rows the query returned (all of them, not only those kept).
    pub row_count: usize,
    /// The kept rows as aligned text (`count  message`), cut near 3000 characters.
    pub table: String,
    /// spark-sql's exit code (always 0 here: non-zero fails the step).
    pub exit_code: i64,
}

const OUTPUTS: &[&str] = &["container", "rows", "row_count", "table", "exit_code"];

impl SparkSql {
    /// The full argv: launcher, `--conf` pairs, then `-e` and the query as one element.
    fn argv(&self, query: String) -> Vec<String> {
        let mut argv = vec![self.spark_sql.clone()];
        for kv in &self.conf {
            argv.push("--conf".to_owned());
            argv.push(kv.clone());
        }
        argv.push("-e".to_owned());
        argv.push(query);
        argv
    }
}

/// Whether a stdout line is spark-sql chatter rather than a data row: the `Time taken` footer,
/// or a log4j line (`26/01/20 10:00:00 WARN Foo: ...`) when logs were routed to stdout. Data
/// rows from a multi-column query carry a tab, so a tabbed line is always kept.
fn is_noise(line: &str) -> bool {
    if line.starts_with("Time taken:") {
        return true;
    }
    if line.contains('\t') {
        return false;
    }
    let mut words = line.split(' ');
    let (date, time, level) = (words.next(), words.next(), words.next());
    let digits_with = |s: Option<&str>, sep: char| {
        s.is_some_and(|s| s.len() == 8 && s.chars().all(|c| c.is_ascii_digit() || c == sep))
    };
    digits_with(date, '/')
        && digits_with(time, ':')
        && matches!(
            level,
            Some("TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR" | "FATAL")
        )
}

/// Parses spark-sql's stdout into rows of tab-separated fields, skipping blank and noise lines.
pub fn parse_rows(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty() && !is_noise(l))
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// Renders rows as aligned columns two spaces apart: numbers right-aligned, text left, the last
/// column unpadded, so `[["412", "bad price"]]` reads `412  bad price`. Cut near `max_chars` at
/// a line boundary, saying how many rows were left off.
pub fn render_table(rows: &[Vec<String>], max_chars: usize) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width = |c: usize| {
        rows.iter()
            .filter_map(|r| r.get(c))
            .map(|f| f.chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..columns).map(width).collect();
    let numeric = |c: usize| {
        rows.iter()
            .filter_map(|r| r.get(c))
            .all(|f| f.parse::<f64>().is_ok())
    };
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, f)| match (c + 1 == row.len(), numeric(c)) {
                (_, true) => format!("{f:>w$}", w = widths[c]),
                (true, false) => f.clone(),
                (false, false) => format!("{f:<w$}", w = widths[c]),
            })
            .collect();
        let line = cells.join("  ");
        if out.chars().count() + line.chars().count() + 1 > max_chars {
            out.push_str(&format!("… ({} more rows)", rows.len() - i));
            return out;
        }
        out.push_str(&line);
        out.push('\n');
    }
    out.truncate(out.trim_end().len());
    out
}

/// The last non-blank line of `text`, for a one-line failure message.
fn last_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).rfind(|l| !l.is_empty())
}

#[async_trait]
impl StepKind for SparkSql {
    fn name(&self) -> &'static str {
        "spark_sql"
    }

    fn outputs(&self) -> &'static [&'static str] {
        OUTPUTS
    }

    fn templates_mut(&mut self) -> Vec<(&'static str, &mut Tmpl)> {
        vec![
            ("container", &mut self.container),
            ("query", &mut self.query),
        ]
    }

    fn plan(&self, env: &StepEnv<'_>) -> Result<String, ActionError> {
        let name = env.container(&self.container)?;
        let query = env.render(&self.query)?;
        let query = query.split_whitespace().collect::<Vec<_>>().join(" ");
        Ok(format!("run spark-sql in {name}: {query}"))
    }

    async fn run(&self, ctx: &ActionCtx, env: &StepEnv<'_>) -> Result<StepOutput, ActionError> {
        let name = env.container(&self.container)?;
        let query = env.render(&self.query)?;
        let ran = run_argv(ctx, &name, self.argv(query), MAX_OUTPUT_BYTES, Keep::Tail).await?;
        if ran.exit_code != 0 {
            let why = last_line(&ran.stderr)
                .or_else(|| last_line(&ran.stdout))
                .unwrap_or("no output");
            return Err(ActionError::Failed(format!(
                "spark-sql exited {} in {name}: {why}",
                ran.exit_code
            )));
        }
        let mut stdout = ran.stdout.as_str();
        if ran.truncated {
            // A cut stdout ends mid-row; drop the partial row rather than report half of it.
            stdout = stdout.rsplit_once('\n').map_or("", |(head, _)| head);
        }
        let mut rows = parse_rows(stdout);
        let row_count = rows.len();
        rows.truncate(self.max_rows);
        let table = render_table(&rows, MAX_TABLE_CHARS);
        let summary = match (row_count, rows.first()) {
            (0, _) | (_, None) => format!("no rows from spark-sql in {name}"),
            (n, Some(first)) => format!("{n} rows; first: {}", first.join("  ")),
        };
        let typed = SparkSqlOutput {
            container: name,
            rows,
            row_count,
            table,
            exit_code: ran.exit_code,
        };
        Ok(StepOutput::from_typed(&typed, summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/spark_sql/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn rows_parse_from_fixtures() {
        let cases: &[(&str, usize, &[&str])] = &[
            // (fixture, rows, first row)
            (
                "error_patterns.tsv",
                4,
                &["412", "price must be positive: -1.0"],
            ),
            ("with_noise.tsv", 2, &["binance", "118"]),
            ("empty.tsv", 0, &[]),
            ("single_column.tsv", 1, &["152"]),
            ("header.tsv", 3, &["count", "error_message"]),
        ];
        for (name, n, first) in cases {
            let rows = parse_rows(&fixture(name));
            assert_eq!(rows.len(), *n, "{name}: {rows:?}");
            if let Some(row) = rows.first() {
                assert_eq!(row, first, "{name}");
            }
        }
    }

    #[test]
    fn noise_is_recognised_but_data_is_kept() {
        for (line, noise) in [
            ("Time taken: 2.31 seconds, Fetched 2 row(s)", true),
            (
                "26/01/20 10:00:00 WARN NativeCodeLoader: Unable to load",
                true,
            ),
            ("26/01/20 10:00:00 INFO SparkContext: Running Spark", true),
            (
                "26/01/20 10:00:00 WARN\tstill a row because it has a tab",
                false,
            ),
            ("152", false),
            ("binance\t118", false),
            ("NULL", false),
        ] {
            assert_eq!(is_noise(line), noise, "{line}");
        }
    }

    #[test]
    fn table_aligns_numbers_and_cuts_at_a_line() {
        let rows = vec![
            vec!["412".to_owned(), "price must be positive".to_owned()],
            vec!["7".to_owned(), "missing symbol".to_owned()],
        ];
        assert_eq!(
            render_table(&rows, 3000),
            "412  price must be positive\n  7  missing symbol"
        );
        let cut = render_table(&rows, 30);
        assert_eq!(cut, "412  price must be positive\n… (1 more rows)");
        assert_eq!(render_table(&[], 3000), "");
        let text = vec![vec!["binance".to_owned(), "x".to_owned()]];
        assert_eq!(render_table(&text, 3000), "binance  x");
    }

    #[test]
    fn argv_keeps_the_query_as_one_element() {
        let step: SparkSql =
            serde_yaml_ng::from_str("container: k2-x\nquery: \"SELECT 1; -- x\"").expect("YAML");
        let argv = step.argv("SELECT 'a b'; $(x)".to_owned());
        assert_eq!(
            argv.first().map(String::as_str),
            Some("/opt/spark/bin/spark-sql")
        );
        assert_eq!(argv.len(), 1 + 3 * 2 + 2);
        assert_eq!(
            argv[1..3],
            [
                "--conf",
                "spark.sql.catalog.iceberg=org.apache.iceberg.spark.SparkCatalog"
            ]
        );
        assert_eq!(argv[argv.len() - 2..], ["-e", "SELECT 'a b'; $(x)"]);
        assert_eq!(step.max_rows, 10);
        assert!(!step.destructive());
        assert!(
            serde_yaml_ng::from_str::<SparkSql>("container: k2-x\nquery: q\nshell: true").is_err()
        );
    }

    #[test]
    fn failure_line_is_the_last_non_blank() {
        assert_eq!(last_line("a\nError: boom\n\n"), Some("Error: boom"));
        assert_eq!(last_line("\n \n"), None);
    }

    #[test]
    fn output_keys_equal_outputs() {
        let typed = SparkSqlOutput {
            container: "k2-x".into(),
            rows: vec![],
            row_count: 0,
            table: String::new(),
            exit_code: 0,
        };
        let out = StepOutput::from_typed(&typed, String::new());
        let mut got: Vec<&str> = out.fields.keys().map(String::as_str).collect();
        let mut want = OUTPUTS.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
    }
}
