//! The playbooks' own settings, `config.<name>` in templates: an open map, so a new playbook
//! needs no change to the service. Their defaults ship with the playbooks: a YAML file in the
//! responders directory that holds `playbook_config:` (as in a `--config` file) instead of a
//! playbook, like the K2 ones in `responders/playbook-config.yaml`. One directory of files, so
//! it copies (or mounts from a Kubernetes ConfigMap) as it is. The operator's values
//! (`RESPONDER_CONFIG_<NAME>`, the `--config` file) go over the defaults; every setting a
//! playbook reads must end up with a value, checked before anything runs.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Catalog, CatalogError, Problem};
use crate::config::settings::{Text, PLAYBOOK_ENV_PREFIX};

/// The key that makes a responders file one of defaults rather than a playbook.
const KEY: &str = "playbook_config";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultsFile {
    playbook_config: BTreeMap<String, Text>,
}

/// The playbook settings' defaults, each with the file that gave it.
#[derive(Default)]
pub(super) struct Defaults(BTreeMap<String, (String, String)>);

impl Defaults {
    /// Whether `text` is a defaults file (it has `playbook_config:`) rather than a playbook.
    pub(super) fn holds(text: &str) -> bool {
        serde_yaml_ng::from_str::<serde_yaml_ng::Mapping>(text)
            .is_ok_and(|map| map.contains_key(KEY))
    }

    /// Adds the defaults of `file`; a bad name or one another file also sets is a problem.
    pub(super) fn add(&mut self, file: &str, text: &str, found: &mut Vec<Problem>) {
        let problem = |path: String, reason: String| Problem {
            file: file.to_owned(),
            path,
            reason,
        };
        let parsed: DefaultsFile = match serde_yaml_ng::from_str(text) {
            Ok(parsed) => parsed,
            Err(e) => return found.push(problem(String::new(), e.to_string())),
        };
        for (name, value) in parsed.playbook_config {
            let path = format!("{KEY}.{name}");
            if !is_name(&name) {
                found.push(problem(
                    path,
                    "use lowercase letters, digits and _".to_owned(),
                ));
            } else if let Some((_, first)) = self.0.get(&name) {
                found.push(problem(path, format!("also set in {first}")));
            } else {
                self.0.insert(name, (value.0, file.to_owned()));
            }
        }
    }

    /// The defaults by name.
    pub(super) fn values(self) -> BTreeMap<String, String> {
        self.0.into_iter().map(|(k, (v, _))| (k, v)).collect()
    }
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
                        "`config.{name}` has no value: set {PLAYBOOK_ENV_PREFIX}{}, `playbook_config: {{{name}: ...}}` in the --config file, or a default under `{KEY}:` in a YAML file of the responders directory",
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
    fn defaults_files_are_told_from_playbooks_read_and_checked() {
        assert!(Defaults::holds("playbook_config:\n  a: b\n"));
        assert!(!Defaults::holds("name: r\nsteps: []\n"));
        assert!(!Defaults::holds("- not a map\n"));
        let mut defaults = Defaults::default();
        let mut found = Vec::new();
        defaults.add(
            "a.yaml",
            "playbook_config:\n  kafka: k2-kafka\n  port: 8081\n  Bad: x\n",
            &mut found,
        );
        defaults.add("b.yaml", "playbook_config:\n  kafka: other\n", &mut found);
        defaults.add("c.yaml", "playbook_config: {}\nname: x\n", &mut found);
        let reasons: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(found.len(), 3, "{reasons:?}");
        assert!(
            reasons[0].starts_with("a.yaml: playbook_config.Bad: "),
            "{reasons:?}"
        );
        assert_eq!(
            reasons[1],
            "b.yaml: playbook_config.kafka: also set in a.yaml"
        );
        assert!(reasons[2].contains("unknown field `name`"), "{reasons:?}");
        let values = defaults.values();
        assert_eq!(values["kafka"], "k2-kafka");
        assert_eq!(values["port"], "8081");
    }
}
