//! `find_files`: old files under a path in a container, listed and optionally deleted (the
//! runbook's manual cleanup `find /checkpoints -type f -name metadata -mtime +7 -delete`).
//!
//! It always lists first with `find ... -exec stat -c '%s %n' {} +`, then (with `delete: true`)
//! deletes exactly the listed files: `find` is started on those paths alone with `-maxdepth 0`
//! and the same tests, and runs `rm` on each one that still matches, printing it only when
//! `rm` succeeded. A file touched since the listing is therefore kept, and what is reported as
//! deleted is what was. Names holding a newline are never listed: they would break the
//! one-line-per-file listing, and a crafted name could then pass for another file.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::disk_usage::{absolute_path, default_path};
use super::docker::{format_bytes, run_argv, Keep};
use super::{ActionCtx, ActionError, StepEnv, StepKind, StepOutput};
use crate::template::Tmpl;

/// A listing larger than this is refused rather than half-reported or half-deleted.
const MAX_OUTPUT_BYTES: usize = 4 << 20;
/// How many paths one delete exec gets, far below any argv length limit.
const DELETE_BATCH: usize = 100;
/// How many paths the `files` output lists.
const MAX_FILES: usize = 50;

/// Lists (and with `delete: true` deletes) files named `name` under `path` older than
/// `older_than_days`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindFiles {
    /// The container to search in.
    pub container: Tmpl,
    /// The absolute directory to search.
    #[serde(default = "default_path")]
    pub path: Tmpl,
    /// A `find -name` glob for the file name.
    #[serde(default = "default_name", deserialize_with = "file_name_glob")]
    pub name: String,
    /// Passed as `find -mtime +N`: modified more than N whole days ago.
    #[serde(default = "default_days")]
    pub older_than_days: u32,
    /// Delete the listed files (destructive); without it the step only lists.
    #[serde(default)]
    pub delete: bool,
}

/// Spark's per-batch checkpoint metadata files, what the cleaner removes.
fn default_name() -> String {
    "metadata".to_owned()
}

/// The runbook's retention.
fn default_days() -> u32 {
    7
}

/// A glob with a `/` never matches a file name, and an empty one matches nothing: reject both
/// when the playbook loads.
fn file_name_glob<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let name = String::deserialize(deserializer)?;
    if name.is_empty() || name.contains(['/', '\0']) {
        return Err(serde::de::Error::custom(format!(
            "name {name:?} must be a non-empty file name glob without '/'"
        )));
    }
    Ok(name)
}

/// The typed outputs of [`FindFiles`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindFilesOutput {
    /// The rendered container name.
    pub container: String,
    /// How many files matched (with `delete`, how many were deleted).
    pub count: usize,
    /// Their total size in bytes.
    pub bytes: u64,
    /// The first 50 of their paths.
    pub files: Vec<String>,
    /// Whether this run deleted them (false for a listing).
    pub deleted: bool,
}

const OUTPUTS: &[&str] = &["container", "count", "bytes", "files", "deleted"];

/// One listed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its size in bytes.
    pub size: u64,
    /// Its path as `find` printed it.
    pub path: String,
}

/// Parses `stat -c '%s %n'` lines and checks each path lies under `root`.
///
/// # Errors
/// On any line that is not `<size> <path under root>`: a listing we cannot read exactly must
/// not be used to delete anything.
pub fn parse_listing(stdout: &str, root: &str) -> Result<Vec<Found>, String> {
    let prefix = format!("{}/", root.trim_end_matches('/'));
    stdout
        .lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (size, path) = line
                .split_once(' ')
                .ok_or_else(|| format!("unreadable listing line {line:?}"))?;
            let size = size
                .parse()
                .map_err(|_| format!("unreadable size in listing line {line:?}"))?;
            if !path.starts_with(&prefix) {
                return Err(format!("listed path {path:?} is not under {root}"));
            }
            Ok(Found {
                size,
                path: path.to_owned(),
            })
        })
        .collect()
}

impl FindFiles {
    /// The tests both passes share: `-type f -name N -mtime +D`.
    fn tests(&self) -> Vec<String> {
        let mtime = format!("+{}", self.older_than_days);
        ["-type", "f", "-name", &self.name, "-mtime", &mtime]
            .map(str::to_owned)
            .to_vec()
    }

    /// `find PATH TESTS ! -path *\n* -exec stat -c '%s %n' {} +`.
    fn list_argv(&self, path: &str) -> Vec<String> {
        let mut argv = vec!["find".to_owned(), path.to_owned()];
        argv.extend(self.tests());
        argv.extend(
            [
                "!", "-path", "*\n*", "-exec", "stat", "-c", "%s %n", "{}", "+",
            ]
            .map(str::to_owned),
        );
        argv
    }

    /// `find FILES -maxdepth 0 TESTS -exec rm -f -- {} ; -print`: prints each file rm removed.
    fn delete_argv(&self, files: &[Found]) -> Vec<String> {
        let mut argv = vec!["find".to_owned()];
        argv.extend(files.iter().map(|f| f.path.clone()));
        argv.extend(["-maxdepth", "0"].map(str::to_owned));
        argv.extend(self.tests());
        argv.extend(["-exec", "rm", "-f", "--", "{}", ";", "-print"].map(str::to_owned));
        argv
    }

    /// `delete`/`list`, the glob, the age and the place, for plans and errors.
    fn describe(&self, path: &str, container: &str) -> String {
        format!(
            "{} files named {} older than {} days under {path} in {container}",
            if self.delete { "delete" } else { "list" },
            self.name,
            self.older_than_days
        )
    }
}

/// Deletes the listed files in batches; returns those actually removed.
async fn delete(
    step: &FindFiles,
    ctx: &ActionCtx,
    container: &str,
    listed: &[Found],
) -> Result<Vec<Found>, ActionError> {
    let mut removed = Vec::new();
    for batch in listed.chunks(DELETE_BATCH) {
        let ran = run_argv(
            ctx,
            container,
            step.delete_argv(batch),
            MAX_OUTPUT_BYTES,
            Keep::Tail,
        )
        .await?;
        let printed: std::collections::HashSet<&str> = ran.stdout.lines().collect();
        removed.extend(
            batch
                .iter()
                .filter(|f| printed.contains(f.path.as_str()))
                .cloned(),
        );
        if ran.exit_code != 0 {
            let why = ran.stderr.lines().rfind(|l| !l.trim().is_empty());
            return Err(ActionError::Failed(format!(
                "deleted {} of {} listed files ({}) in {container}, then find exited {}: {}",
                removed.len(),
                listed.len(),
                format_bytes(removed.iter().map(|f| f.size).sum()),
                ran.exit_code,
                why.unwrap_or("no message")
            )));
        }
    }
    Ok(removed)
}

#[async_trait]
impl StepKind for FindFiles {
    fn name(&self) -> &'static str {
        "find_files"
    }

    fn outputs(&self) -> &'static [&'static str] {
        OUTPUTS
    }

    fn destructive(&self) -> bool {
        self.delete
    }

    fn templates_mut(&mut self) -> Vec<(&'static str, &mut Tmpl)> {
        vec![("container", &mut self.container), ("path", &mut self.path)]
    }

    fn plan(&self, env: &StepEnv<'_>) -> Result<String, ActionError> {
        let name = env.container(&self.container)?;
        let path = absolute_path(&env.render(&self.path)?)?;
        Ok(self.describe(&path, &name))
    }

    async fn run(&self, ctx: &ActionCtx, env: &StepEnv<'_>) -> Result<StepOutput, ActionError> {
        let name = env.container(&self.container)?;
        let path = absolute_path(&env.render(&self.path)?)?;
        let ran = run_argv(
            ctx,
            &name,
            self.list_argv(&path),
            MAX_OUTPUT_BYTES,
            Keep::Tail,
        )
        .await?;
        let fail =
            |why: String| ActionError::Failed(format!("{}: {why}", self.describe(&path, &name)));
        if ran.exit_code != 0 {
            let why = ran.stderr.lines().rfind(|l| !l.trim().is_empty());
            return Err(fail(format!(
                "find exited {}: {}",
                ran.exit_code,
                why.unwrap_or("no message")
            )));
        }
        if ran.truncated {
            return Err(fail(format!(
                "listing exceeded {}",
                format_bytes(MAX_OUTPUT_BYTES as u64)
            )));
        }
        let listed = parse_listing(&ran.stdout, &path).map_err(fail)?;
        let found = if self.delete {
            delete(self, ctx, &name, &listed).await?
        } else {
            listed.clone()
        };
        let bytes: u64 = found.iter().map(|f| f.size).sum();
        let mut summary = format!(
            "{} files older than {} days, {}",
            found.len(),
            self.older_than_days,
            format_bytes(bytes)
        );
        if !self.delete {
            summary.push_str(" (dry run: nothing deleted)");
        } else {
            summary.push_str(" deleted");
            let kept = listed.len() - found.len();
            if kept > 0 {
                summary.push_str(&format!(
                    "; {kept} listed files changed since and were kept"
                ));
            }
        }
        let typed = FindFilesOutput {
            container: name,
            count: found.len(),
            bytes,
            files: found
                .iter()
                .take(MAX_FILES)
                .map(|f| f.path.clone())
                .collect(),
            deleted: self.delete,
        };
        Ok(StepOutput::from_typed(&typed, summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/find/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn listings_parse_from_fixtures() {
        // (fixture, root, listed files or the error)
        type Case<'a> = (&'a str, &'a str, Result<&'a [(u64, &'a str)], &'a str>);
        let cases: &[Case<'_>] = &[
            (
                "metadata.txt",
                "/checkpoints",
                Ok(&[
                    (45, "/checkpoints/bronze-binance/metadata"),
                    (1024, "/checkpoints/bronze-binance/offsets/metadata"),
                    (0, "/checkpoints/my job/metadata"),
                ]),
            ),
            ("empty.txt", "/checkpoints", Ok(&[])),
            (
                "outside.txt",
                "/checkpoints/",
                Err("listed path \"/etc/passwd\" is not under /checkpoints/"),
            ),
            (
                "garbled.txt",
                "/checkpoints",
                Err("unreadable size in listing line \"stat: can't stat '/x': No such file\""),
            ),
        ];
        for (name, root, want) in cases {
            let got = parse_listing(&fixture(name), root);
            match (want, &got) {
                (Ok(w), Ok(g)) => {
                    let g: Vec<(u64, &str)> = g.iter().map(|f| (f.size, f.path.as_str())).collect();
                    assert_eq!(g.as_slice(), *w, "{name}");
                }
                (Err(w), Err(g)) => assert_eq!(g, w, "{name}"),
                _ => panic!("{name}: got {got:?}"),
            }
        }
        // A sibling whose name merely starts like the root is not under it.
        assert!(parse_listing("1 /checkpoints-old/metadata\n", "/checkpoints").is_err());
    }

    #[test]
    fn argv_shapes() {
        let f: FindFiles = serde_yaml_ng::from_str("container: k2-x\ndelete: true").expect("YAML");
        assert!(f.destructive());
        assert_eq!(
            f.list_argv("/checkpoints").join(" "),
            "find /checkpoints -type f -name metadata -mtime +7 ! -path *\n* \
             -exec stat -c %s %n {} +"
        );
        let files = [Found {
            size: 1,
            path: "/checkpoints/a b/metadata".into(),
        }];
        assert_eq!(
            f.delete_argv(&files),
            [
                "find",
                "/checkpoints/a b/metadata",
                "-maxdepth",
                "0",
                "-type",
                "f",
                "-name",
                "metadata",
                "-mtime",
                "+7",
                "-exec",
                "rm",
                "-f",
                "--",
                "{}",
                ";",
                "-print"
            ]
        );
        let dry: FindFiles = serde_yaml_ng::from_str("container: k2-x").expect("YAML");
        assert!(!dry.destructive());
        for bad in ["name: ''", "name: a/b", "rm: true"] {
            let yaml = format!("container: k2-x\n{bad}");
            assert!(
                serde_yaml_ng::from_str::<FindFiles>(&yaml).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn output_keys_equal_outputs() {
        let typed = FindFilesOutput {
            container: "k2-x".into(),
            count: 0,
            bytes: 0,
            files: vec![],
            deleted: false,
        };
        let out = StepOutput::from_typed(&typed, String::new());
        let mut got: Vec<&str> = out.fields.keys().map(String::as_str).collect();
        let mut want = OUTPUTS.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
    }
}
