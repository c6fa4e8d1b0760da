//! The catalog: `routes/` and `responders/` YAML compiled into validated types, with every
//! cross-reference and template variable checked at load and ALL problems reported at once.
//!
//! YAML is parsed with serde_yaml_ng, the maintained fork of serde_yaml: same data model and
//! `Value`/`from_value` split, which lets a step's common keys (`id`, `when`, ...) be taken out
//! before the rest is read strictly as its action, so a typo is an error, not a silent default.

mod extract;
mod playbook_config;
mod schedule;
mod steps;
pub(crate) mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::actions::AllowList;
use crate::limits::Budget;
use crate::responders::escalation::Priority;
use crate::responders::{Mode, Responder};
use crate::routing::extract::Extraction;
use crate::routing::{Matcher, Route, Routes};
use crate::template::{Templates, TemplatesBuilder, Tmpl};

/// One problem in a catalog file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// File, relative to where it was loaded from.
    pub file: String,
    /// Path inside the document, e.g. `steps[3].when`.
    pub path: String,
    /// What is wrong, and how to fix it when that is not obvious.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.file, self.reason)
        } else {
            write!(f, "{}: {}: {}", self.file, self.path, self.reason)
        }
    }
}

/// Every problem found while loading, so operators fix them in one pass.
#[derive(Debug, thiserror::Error)]
#[error("{} problem(s) in the catalog:\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
pub struct CatalogError(pub Vec<Problem>);

/// Compiled routes, responders and their templates.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Routes in evaluation order.
    pub routes: Routes,
    /// Responders by name.
    pub responders: BTreeMap<String, Arc<Responder>>,
    /// Every template and expression, compiled.
    pub templates: Templates,
    /// `extract:` rules of every routes file, in evaluation order.
    pub extract: Vec<Extraction>,
    /// The playbook settings' defaults, from the responders files holding `playbook_config:`.
    pub config: BTreeMap<String, String>,
    /// Each playbook setting a template reads, and where the first reader is (`file: path`).
    pub config_reads: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteFile {
    #[serde(default)]
    extract: Vec<extract::RawExtract>,
    #[serde(default)]
    routes: Vec<RawRoute>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    matchers: Vec<String>,
    responder: String,
    #[serde(default, rename = "continue")]
    continue_matching: bool,
    #[serde(default)]
    silence: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResponder {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    target: Option<String>,
    #[serde(default = "default_allow")]
    allow_targets: Vec<String>,
    #[serde(default)]
    require_labels: BTreeMap<String, String>,
    #[serde(default)]
    budget: Option<RawBudget>,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    schedule: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    catch_up: Option<String>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    priority: Priority,
    #[serde(default)]
    watch: Option<String>,
    #[serde(default)]
    ineffective_limit: Option<u32>,
    steps: Vec<serde_yaml_ng::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    cooldown: String,
    max: u32,
    per: String,
}

fn default_allow() -> Vec<String> {
    vec!["k2-.*".to_owned()]
}

/// Collects problems for one file.
pub(crate) struct Problems<'a> {
    file: &'a str,
    found: &'a mut Vec<Problem>,
    deferred: Vec<(String, String)>,
    /// Playbook settings read, (name, path).
    reads: Vec<(String, String)>,
}

impl Problems<'_> {
    /// Notes that the template at `path` reads the playbook setting `config.<name>`.
    pub(crate) fn read_config(&mut self, path: &str, name: &str) {
        self.reads.push((name.to_owned(), path.to_owned()));
    }

    /// Notes a variable to check once the whole playbook is known.
    pub(crate) fn defer(&mut self, path: &str, var: &str) {
        self.deferred.push((path.to_owned(), var.to_owned()));
    }

    /// The deferred variables, (path, variable).
    pub(crate) fn take_deferred(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.deferred)
    }

    pub(crate) fn add(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.found.push(Problem {
            file: self.file.to_owned(),
            path: path.into(),
            reason: reason.into(),
        });
    }
}

/// Regex errors come with a multi-line caret diagram; a problem list wants one line each.
pub(crate) fn one_line_regex_error(err: &regex::Error) -> String {
    let text = err.to_string();
    let reason = text
        .lines()
        .last()
        .unwrap_or("")
        .trim_start_matches("error: ");
    format!("invalid regex: {reason}")
}

/// Parses a duration such as `15m`, `10s`, `6h`.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration like 10s, 15m or 6h: {e}"))
}

impl Catalog {
    /// Loads and compiles `routes_dir/*.yaml` and `responders_dir/*.yaml`.
    ///
    /// # Errors
    /// [`CatalogError`] listing every problem found, each with file, path and reason.
    pub fn load(routes_dir: &Path, responders_dir: &Path) -> Result<Self, CatalogError> {
        let mut found = Vec::new();
        let mut templates = TemplatesBuilder::default();
        let mut responders = BTreeMap::new();
        let mut config_reads = BTreeMap::new();
        let mut defaults = playbook_config::Defaults::default();
        for (file, text) in read_dir(responders_dir, &mut found) {
            if playbook_config::Defaults::holds(&text) {
                defaults.add(&file, &text, &mut found);
                continue;
            }
            let mut problems = Problems {
                file: &file,
                found: &mut found,
                deferred: Vec::new(),
                reads: Vec::new(),
            };
            let compiled = compile_responder(&file, &text, &mut templates, &mut problems);
            for (name, path) in std::mem::take(&mut problems.reads) {
                config_reads
                    .entry(name)
                    .or_insert(format!("{file}: {path}"));
            }
            if let Some(r) = compiled {
                if responders.contains_key(&r.name) {
                    problems.add("name", format!("responder {:?} is defined twice", r.name));
                } else {
                    responders.insert(r.name.clone(), Arc::new(r));
                }
            }
        }
        let (mut routes, mut rules) = (Vec::new(), Vec::new());
        for (file, text) in read_dir(routes_dir, &mut found) {
            let mut problems = Problems {
                file: &file,
                found: &mut found,
                deferred: Vec::new(),
                reads: Vec::new(),
            };
            let parsed = compile_routes(&file, &text, &responders, &mut routes, &mut problems);
            extract::compile(&file, parsed, &mut rules, &mut problems);
        }
        if routes.is_empty() && found.is_empty() {
            found.push(Problem {
                file: routes_dir.display().to_string(),
                path: String::new(),
                reason: "no routes: nothing would ever be answered".to_owned(),
            });
        }
        if found.is_empty() {
            Ok(Self {
                routes: Routes { routes },
                responders,
                templates: templates.build(),
                extract: rules,
                config: defaults.values(),
                config_reads,
            })
        } else {
            Err(CatalogError(found))
        }
    }
}

fn read_dir(dir: &Path, found: &mut Vec<Problem>) -> Vec<(String, String)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            found.push(Problem {
                file: dir.display().to_string(),
                path: String::new(),
                reason: format!("cannot read directory: {e}"),
            });
            return Vec::new();
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|path| {
            let file = path.display().to_string();
            match std::fs::read_to_string(&path) {
                Ok(text) => Some((file, text)),
                Err(e) => {
                    found.push(Problem {
                        file,
                        path: String::new(),
                        reason: format!("cannot read: {e}"),
                    });
                    None
                }
            }
        })
        .collect()
}

fn compile_routes(
    file: &str,
    text: &str,
    responders: &BTreeMap<String, Arc<Responder>>,
    routes: &mut Vec<Route>,
    problems: &mut Problems<'_>,
) -> Vec<extract::RawExtract> {
    let parsed: RouteFile = match serde_yaml_ng::from_str(text) {
        Ok(parsed) => parsed,
        Err(e) => {
            problems.add("", e.to_string());
            return Vec::new();
        }
    };
    for (i, raw) in parsed.routes.into_iter().enumerate() {
        let path = format!("routes[{i}]");
        let mut matchers = Vec::new();
        for (j, text) in raw.matchers.iter().enumerate() {
            match Matcher::parse(text) {
                Ok(m) => matchers.push(m),
                Err(e) => problems.add(format!("{path}.matchers[{j}]"), e),
            }
        }
        if raw.matchers.is_empty() {
            problems.add(
                format!("{path}.matchers"),
                "a route needs at least one matcher; use alertname=~\".+\" to match everything",
            );
        }
        if !responders.contains_key(&raw.responder) {
            let known: Vec<_> = responders.keys().map(String::as_str).collect();
            problems.add(
                format!("{path}.responder"),
                format!(
                    "unknown responder {:?}; defined: {}",
                    raw.responder,
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            );
        }
        routes.push(Route {
            matchers,
            responder: raw.responder,
            continue_matching: raw.continue_matching,
            silence: raw.silence,
            origin: format!("{file}: {path}"),
        });
    }
    parsed.extract
}

fn compile_responder(
    file: &str,
    text: &str,
    templates: &mut TemplatesBuilder,
    problems: &mut Problems<'_>,
) -> Option<Responder> {
    let raw: RawResponder = match serde_yaml_ng::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            problems.add("", e.to_string());
            return None;
        }
    };
    let name = raw.name.clone();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        problems.add(
            "name",
            format!("{name:?}: use letters, digits, '-' and '_'"),
        );
    }
    // A bad pattern is reported here; the responder is still kept (allowing nothing) so that
    // routes naming it are not also told it is unknown, and the catalog fails to load anyway.
    let allow = AllowList::new(&raw.allow_targets).unwrap_or_else(|(i, e)| {
        let reason = one_line_regex_error(&e);
        problems.add(
            format!("allow_targets[{i}]"),
            format!("{:?}: {reason}", raw.allow_targets[i]),
        );
        AllowList::default()
    });
    let mut require_labels = Vec::new();
    for (label, pattern) in &raw.require_labels {
        match crate::pattern::anchored(pattern) {
            Ok(re) => require_labels.push((label.clone(), re)),
            Err(e) => problems.add(
                format!("require_labels.{label}"),
                format!("{pattern:?}: {}", one_line_regex_error(&e)),
            ),
        }
    }
    let budget = raw.budget.as_ref().and_then(|b| {
        let cooldown = duration(&b.cooldown)
            .map_err(|e| problems.add("budget.cooldown", e))
            .ok();
        let per = duration(&b.per)
            .map_err(|e| problems.add("budget.per", e))
            .ok();
        if b.max == 0 {
            problems.add(
                "budget.max",
                "must be at least 1 (use mode: dry-run to never act)",
            );
        }
        Some(Budget {
            cooldown: cooldown?,
            max: b.max,
            per: per?,
        })
    });
    let timeout = match raw.timeout.as_deref().map(duration).transpose() {
        Ok(t) => t.unwrap_or(Duration::from_secs(300)),
        Err(e) => {
            problems.add("timeout", e);
            Duration::from_secs(300)
        }
    };
    let (schedule, channel) = schedule::compile(&raw, problems);
    let targetless = raw.target.is_none();
    // Without a target, runs take the responder's own name (locks and budgets key on it).
    let mut target = Tmpl::new(raw.target.unwrap_or_else(|| name.clone()));
    match templates.add_template(&format!("{name}:target"), &mut target) {
        Ok(vars) => steps::check_variables(&vars, &steps::Earlier::new(), None, "target", problems),
        Err(e) => problems.add("target", e.to_string()),
    }
    let steps = steps::compile_steps(&name, raw.steps, templates, problems);
    if steps.is_empty() {
        problems.add("steps", "a responder needs at least one step");
    }
    let destructive: BTreeSet<_> = steps
        .iter()
        .filter(|s| s.action.kind().destructive())
        .map(|s| s.id.clone())
        .collect();
    let scheduled = schedule.is_some();
    let watch = watch::compile(
        raw.watch.as_deref(),
        !destructive.is_empty(),
        scheduled,
        problems,
    );
    let ineffective_limit = watch::limit(raw.ineffective_limit, watch, problems);
    if !destructive.is_empty() && raw.budget.is_none() {
        tracing::debug!(responder = %name, "No budget given; the default (1 per 15m, 3 per 6h) applies.");
    }
    Some(Responder {
        name,
        description: raw.description,
        file: file.to_owned(),
        target,
        allow,
        allow_patterns: raw.allow_targets,
        require_labels,
        budget: budget.unwrap_or_default(),
        default_budget: raw.budget.is_none(),
        mode: raw.mode,
        timeout,
        steps,
        schedule,
        targetless,
        channel,
        priority: raw.priority,
        watch,
        ineffective_limit,
    })
}

#[cfg(test)]
mod tests;
