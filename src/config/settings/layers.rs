//! The settings' layers, merged with figment: the `--config` file, then the
//! `RESPONDER_CONFIG_<NAME>` variables, then flags and the other variables (clap reads both).
//! Each value keeps where it came from, so a bad one is named the way it was given:
//! `RESPONDER_MAX_RUNS=abc`, or `max_runs: abc (in FILE)`.

use std::collections::BTreeMap;
use std::path::Path;

use clap::{Args, Command};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};

use super::args::{SettingsArgs, PLAYBOOK_ALIASES};
use super::check::Problem;
use super::ConfigError;

/// The prefix of the variables that set playbook settings: `RESPONDER_CONFIG_KAFKA_CONTAINER`
/// is `config.kafka_container`.
pub const PLAYBOOK_ENV_PREFIX: &str = "RESPONDER_CONFIG_";

/// The file key of the playbook settings' map.
const PLAYBOOK_KEY: &str = "playbook_config";

/// The merged settings and where each came from.
pub(super) struct Layered {
    /// Every setting, each from the highest layer that has it.
    pub(super) args: SettingsArgs,
    figment: Figment,
    /// Field name to environment variable, as clap declares them.
    env_names: BTreeMap<String, String>,
}

/// One layer: a map of settings and the metadata naming where it came from.
struct Layer {
    metadata: Metadata,
    dict: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// Merges the file named by `args.config`, the `RESPONDER_CONFIG_*` variables in `env` and
/// `args` (flags and variables, as clap parsed them). Problems of shape (an unknown key, a
/// list where one value belongs, a bad playbook setting name) are added to `problems`.
pub(super) fn merge(
    args: &SettingsArgs,
    env: impl Iterator<Item = (String, String)>,
    problems: &mut Vec<Problem>,
) -> Result<Layered, ConfigError> {
    let env_names = env_names();
    let mut figment = Figment::new();
    if let Some(path) = &args.config {
        let mut dict = read_file(path)?;
        // `config` itself is not a file key: a file does not name another.
        let known =
            |key: &str| key == PLAYBOOK_KEY || (key != "config" && env_names.contains_key(key));
        for key in dict.keys().filter(|k| !known(k)) {
            let known_keys = env_names.keys().map(String::as_str).chain([PLAYBOOK_KEY]);
            let hint = match closest(key, known_keys.filter(|k| known(k))) {
                Some(near) => format!("did you mean `{near}`?"),
                None => "file keys are the settings' names in lowercase, like `max_runs`, and `playbook_config`".to_owned(),
            };
            problems.push(Problem::new(
                format!("{key} (in {})", path.display()),
                format!("unknown setting; {hint}"),
            ));
        }
        dict.retain(|k, _| known(k));
        move_aliases(&mut dict);
        let metadata = Metadata::named("config file").source(Source::File(path.clone()));
        figment = figment.merge(Layer { metadata, dict });
    }
    let playbook_env = playbook_env(env, problems);
    if !playbook_env.is_empty() {
        let mut dict = Dict::new();
        dict.insert(PLAYBOOK_KEY.to_owned(), Value::from(playbook_env));
        figment = figment.merge(Layer {
            metadata: Metadata::named("environment"),
            dict,
        });
    }
    figment = figment.merge(Layer {
        metadata: Metadata::named("flags"),
        dict: given(args),
    });
    let mut merged: SettingsArgs = match figment.extract() {
        Ok(merged) => merged,
        Err(errors) => {
            for e in errors {
                let mut key = e.path.join(".");
                if let Some(Source::File(path)) =
                    e.metadata.as_ref().and_then(|m| m.source.as_ref())
                {
                    key = format!("{key} (in {})", path.display());
                }
                problems.push(Problem::new(key, e.kind.to_string()));
            }
            SettingsArgs::default()
        }
    };
    merged.config.clone_from(&args.config);
    Ok(Layered {
        args: merged,
        figment,
        env_names,
    })
}

impl Layered {
    /// How the setting `key` (a field name, or `playbook_config.<name>`) is named in a
    /// problem: as the variable or `name: value (in FILE)` for the file, with its value.
    pub(super) fn label(&self, key: &str, value: &str) -> String {
        let source = self.figment.find_metadata(key);
        if let Some(Source::File(path)) = source.and_then(|m| m.source.as_ref()) {
            return format!("{key}: {value} (in {})", path.display());
        }
        let variable =
            match key.strip_prefix("playbook_config.") {
                Some(name) if source.is_some_and(|m| m.name == "environment") => {
                    format!("{PLAYBOOK_ENV_PREFIX}{}", name.to_ascii_uppercase())
                }
                Some(name) => self.env_names.get(name).cloned().unwrap_or_else(|| {
                    format!("{PLAYBOOK_ENV_PREFIX}{}", name.to_ascii_uppercase())
                }),
                None => self
                    .env_names
                    .get(key)
                    .cloned()
                    .unwrap_or_else(|| key.to_owned()),
            };
        format!("{variable}={value}")
    }
}

/// Each field's environment variable, from clap's own declarations.
fn env_names() -> BTreeMap<String, String> {
    SettingsArgs::augment_args(Command::new("settings"))
        .get_arguments()
        .filter_map(|arg| {
            let env = arg.get_env()?.to_string_lossy().into_owned();
            Some((arg.get_id().as_str().to_owned(), env))
        })
        .collect()
}

fn read_file(path: &Path) -> Result<Dict, ConfigError> {
    let fail = |reason: String| ConfigError::File {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let dict: Option<Dict> = serde_yaml_ng::from_str(&text).map_err(|e| fail(e.to_string()))?;
    Ok(dict.unwrap_or_default())
}

/// `args` without its unset fields, which would otherwise hide the file's values.
fn given(args: &SettingsArgs) -> Dict {
    let mut dict = match Value::serialize(args) {
        Ok(Value::Dict(_, dict)) => dict,
        // A struct of options and a map always serializes to a map.
        _ => Dict::new(),
    };
    // An empty flag or variable counts as unset, as it always has.
    dict.retain(|_, v| match v {
        Value::Empty(..) => false,
        Value::String(_, s) => !s.is_empty(),
        Value::Dict(_, d) => !d.is_empty(),
        _ => true,
    });
    move_aliases(&mut dict);
    dict
}

/// Moves the six older playbook setting keys into `playbook_config`, where a value already
/// under `playbook_config` in the same layer wins.
fn move_aliases(dict: &mut Dict) {
    for name in PLAYBOOK_ALIASES {
        let Some(value) = dict.remove(name) else {
            continue;
        };
        let map = dict
            .entry(PLAYBOOK_KEY.to_owned())
            .or_insert_with(|| Value::from(Dict::new()));
        if let Value::Dict(_, map) = map {
            map.entry(name.to_owned()).or_insert(value);
        }
    }
}

/// `RESPONDER_CONFIG_<NAME>=value` as `name: value`; names must be letters, digits and `_`.
fn playbook_env(env: impl Iterator<Item = (String, String)>, problems: &mut Vec<Problem>) -> Dict {
    let mut dict = Dict::new();
    for (key, value) in env {
        let Some(name) = key.strip_prefix(PLAYBOOK_ENV_PREFIX) else {
            continue;
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            problems.push(Problem::new(
                format!("{key}={value}"),
                "not a playbook setting name: use letters, digits and _ after RESPONDER_CONFIG_",
            ));
            continue;
        }
        dict.insert(name.to_ascii_lowercase(), Value::from(value));
    }
    dict
}

/// The known key nearest to a mistyped one (at most two edits away), for a hint.
fn closest<'k>(typo: &str, known: impl Iterator<Item = &'k str>) -> Option<&'k str> {
    known
        .map(|k| (edits(typo, k), k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance: insertions, deletions and substitutions of characters.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mistyped_key_gets_the_nearest_known_one() {
        let known = ["max_runs", "max_backlog", "listen"];
        assert_eq!(closest("max_run", known.into_iter()), Some("max_runs"));
        assert_eq!(closest("listn", known.into_iter()), Some("listen"));
        assert_eq!(closest("colour", known.into_iter()), None);
        assert_eq!(edits("kitten", "sitting"), 3);
    }
}
