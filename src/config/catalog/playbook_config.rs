//! The playbooks' own settings, `config.<name>` in templates: an open map, so a new playbook
//! needs no change to the service. Their defaults ship with the playbooks, in
//! `responders/config/*.yaml` (`playbook_config:` as in a `--config` file); the operator's
//! values (`RESPONDER_CONFIG_<NAME>`, the `--config` file) go over them. Every setting a
//! playbook reads must end up with a value, checked before anything runs.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::{read_dir, Catalog, CatalogError, Problem};
use crate::config::settings::{Text, PLAYBOOK_ENV_PREFIX};

/// The directory, inside the responders directory, of the playbook settings' defaults.
pub(super) const DEFAULTS_DIR: &str = "config";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultsFile {
    #[serde(default)]
    playbook_config: BTreeMap<String, Text>,
}

/// The defaults in `responders_dir/config/*.yaml`; none when that directory does not exist.
pub(super) fn defaults(
    responders_dir: &Path,
    found: &mut Vec<Problem>,
) -> BTreeMap<String, String> {
    let dir = responders_dir.join(DEFAULTS_DIR);
    let mut defaults = BTreeMap::new();
    if !dir.is_dir() {
        return defaults;
    }
    let mut origin: BTreeMap<String, String> = BTreeMap::new();
    for (file, text) in read_dir(&dir, found) {
        let problem = |path: String, reason: String| Problem {
            file: file.clone(),
            path,
            reason,
        };
        let parsed: DefaultsFile = match serde_yaml_ng::from_str(&text) {
            Ok(parsed) => parsed,
            Err(e) => {
                found.push(problem(String::new(), e.to_string()));
                continue;
            }
        };
        for (name, value) in parsed.playbook_config {
            let path = format!("playbook_config.{name}");
            if !is_name(&name) {
                found.push(problem(
                    path,
                    "use lowercase letters, digits and _".to_owned(),
                ));
            } else if let Some(first) = origin.get(&name) {
                found.push(problem(path, format!("also set in {first}")));
            } else {
                origin.insert(name.clone(), file.clone());
                defaults.insert(name, value.0);
            }
        }
    }
    defaults
}

/// A playbook setting's name: lowercase letters, digits and `_`.
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl Catalog {
    /// The values runs see as `config.<name>`: `given` (the settings' values) over the
    /// shipped defaults.
    ///
    /// # Errors
    /// Every setting a playbook reads that has no value, with the template that reads it.
    pub fn playbook_config(
        &self,
        given: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, CatalogError> {
        let mut config = self.config.clone();
        config.extend(given.iter().map(|(k, v)| (k.clone(), v.clone())));
        let missing: Vec<Problem> = self
            .config_reads
            .iter()
            .filter(|(name, _)| !config.contains_key(*name))
            .map(|(name, reader)| {
                let (file, path) = reader.split_once(": ").unwrap_or((reader, ""));
                Problem {
                    file: file.to_owned(),
                    path: path.to_owned(),
                    reason: format!(
                        "`config.{name}` has no value: set {PLAYBOOK_ENV_PREFIX}{}, `playbook_config: {{{name}: ...}}` in the --config file, or a default in the responders' {DEFAULTS_DIR}/ directory",
                        name.to_ascii_uppercase()
                    ),
                }
            })
            .collect();
        if missing.is_empty() {
            Ok(config)
        } else {
            Err(CatalogError(missing))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_read_checked_and_overridden() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join(DEFAULTS_DIR);
        std::fs::create_dir(&config).unwrap();
        std::fs::write(
            config.join("a.yaml"),
            "playbook_config:\n  kafka: k2-kafka\n  port: 8081\n  Bad: x\n",
        )
        .unwrap();
        std::fs::write(config.join("b.yaml"), "playbook_config:\n  kafka: other\n").unwrap();
        let mut found = Vec::new();
        let defaults = defaults(dir.path(), &mut found);
        assert_eq!(defaults["kafka"], "k2-kafka");
        assert_eq!(defaults["port"], "8081");
        let reasons: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(found.len(), 2, "{reasons:?}");
        assert!(reasons[0].contains("playbook_config.Bad"), "{reasons:?}");
        assert!(reasons[1].contains("also set in"), "{reasons:?}");
        let mut none = Vec::new();
        assert!(defaults_of_nothing(&mut none).is_empty() && none.is_empty());
    }

    fn defaults_of_nothing(found: &mut Vec<Problem>) -> BTreeMap<String, String> {
        defaults(Path::new("/nonexistent-responders"), found)
    }
}
