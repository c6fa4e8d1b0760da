//! Semantic lints over a catalog that loaded: things that are valid but probably not what the
//! operator meant. Errors fail `check` (a route that can never match); warnings explain a
//! default or a risk and let it pass.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use super::{Catalog, Settings};
use crate::routing::Route;

/// How serious a lint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// `check` fails.
    Error,
    /// `check` explains and passes.
    Warning,
}

/// One finding, located like a load [`super::Problem`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lint {
    /// Error or warning.
    pub severity: Severity,
    /// File.
    pub file: String,
    /// Path inside the document, e.g. `steps[3]`.
    pub path: String,
    /// What is wrong and what applies instead.
    pub reason: String,
}

impl fmt::Display for Lint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {}: {}: {}", self.file, self.path, self.reason)
    }
}

/// Names no sensible allow-list would permit all of; a pattern matching them all matches
/// (practically) everything.
const PROBES: &[&str] = &["x", "web-frontend", "postgres", "k2-kafka", "Z_9.-"];

/// Every lint of the catalog under these settings, routes first, then responders by name.
pub fn lints(catalog: &Catalog, settings: &Settings) -> Vec<Lint> {
    let mut found = shadowed_routes(&catalog.routes.routes);
    for responder in catalog.responders.values() {
        let lint = |severity, path: String, reason: String| Lint {
            severity,
            file: responder.file.clone(),
            path,
            reason,
        };
        for (i, pattern) in responder.allow_patterns.iter().enumerate() {
            let everything = crate::pattern::anchored(pattern)
                .is_ok_and(|re| PROBES.iter().all(|p| re.is_match(p)));
            if everything {
                found.push(lint(
                    Severity::Warning,
                    format!("allow_targets[{i}]"),
                    format!("{pattern:?} allows every target `{}` renders to: any container an alert names can be acted on; list the containers this responder may touch, e.g. 'k2-.*'", responder.target.source),
                ));
            }
        }
        if responder.schedule.is_some() && responder.target.source.contains("alert.labels") {
            found.push(lint(
                Severity::Warning,
                "target".to_owned(),
                format!("`{}` reads alert labels, but a scheduled slot carries none of an alert's (only schedule_responder and schedule_slot): it renders empty for slots, which are then declined; declare the target (a container name, or {{{{ config.<setting> }}}}) or leave it out", responder.target.source),
            ));
        }
        for (i, step) in responder.steps.iter().enumerate() {
            let kind = step.action.kind();
            if kind.destructive() && responder.default_budget {
                let b = responder.budget;
                found.push(lint(
                    Severity::Warning,
                    format!("steps[{i}]"),
                    format!(
                        "destructive step {:?} ({}) has no explicit `budget` in its responder: the default applies (cooldown {}, max {} per {}); write `budget:` to make it deliberate",
                        step.id,
                        kind.name(),
                        humantime::format_duration(b.cooldown),
                        b.max,
                        humantime::format_duration(b.per)
                    ),
                ));
            }
            let slack = &settings.slack_chat;
            let slack_approves =
                slack.signing_secret.is_some() && !slack.approve_allowed.is_empty();
            if step.approval && settings.admin_token.is_none() && !slack_approves {
                found.push(lint(
                    Severity::Warning,
                    format!("steps[{i}].approval"),
                    format!(
                        "step {:?} waits for approval but no admin token is configured (RESPONDER_ADMIN_TOKEN) and nobody may approve in Slack (SLACK_SIGNING_SECRET and SLACK_APPROVE_ALLOWED): nobody can approve it, so it can only expire after {} and escalate",
                        step.id,
                        humantime::format_duration(settings.approval_ttl)
                    ),
                ));
            }
        }
    }
    found.extend(unread_playbook_settings(catalog, settings));
    found
}

/// Playbook settings given (`RESPONDER_CONFIG_<NAME>`, `playbook_config:`) that no playbook
/// reads and no shipped default declares: most likely a typo, which would leave the playbook
/// on its default. `prometheus_url` is also read by the service itself, for charts.
fn unread_playbook_settings(catalog: &Catalog, settings: &Settings) -> Vec<Lint> {
    let read: Vec<&str> = catalog.config_reads.keys().map(String::as_str).collect();
    settings
        .playbook_config
        .keys()
        .filter(|name| {
            !catalog.config_reads.contains_key(*name)
                && !catalog.config.contains_key(*name)
                && name.as_str() != "prometheus_url"
        })
        .map(|name| Lint {
            severity: Severity::Warning,
            file: "settings".to_owned(),
            path: format!("playbook_config.{name}"),
            reason: format!(
                "no playbook reads `config.{name}` ({}{}): a typo?",
                if read.is_empty() {
                    "none reads any"
                } else {
                    "they read "
                },
                read.iter()
                    .map(|n| format!("config.{n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
        .collect()
}

/// A route after one without `continue` whose matchers are a subset (same canonical text) of
/// its own: every alert it would match, the earlier one catches first.
fn shadowed_routes(routes: &[Route]) -> Vec<Lint> {
    let texts: Vec<BTreeSet<String>> = routes
        .iter()
        .map(|r| r.matchers.iter().map(ToString::to_string).collect())
        .collect();
    let mut found = Vec::new();
    for (j, route) in routes.iter().enumerate() {
        let shadow = (0..j).find(|&i| {
            !routes[i].continue_matching && !texts[i].is_empty() && texts[i].is_subset(&texts[j])
        });
        if let Some(i) = shadow {
            let (file, path) = route
                .origin
                .rsplit_once(": ")
                .unwrap_or((route.origin.as_str(), ""));
            let matchers: Vec<&str> = texts[i].iter().map(String::as_str).collect();
            found.push(Lint {
                severity: Severity::Error,
                file: file.to_owned(),
                path: path.to_owned(),
                reason: format!(
                    "can never match: {} (responder {}, no `continue`) comes first and catches every alert this route would, since its matchers [{}] are all among this route's; move this route above it or give that one `continue: true`",
                    routes[i].origin,
                    routes[i].responder,
                    matchers.join(", ")
                ),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SettingsArgs;

    const RESPONDER: &str = "name: {name}\ntarget: \"{{ alert.labels.container }}\"\n{extra}steps:\n  - id: look\n    action: docker_inspect\n    container: \"{{ target }}\"\n  - id: restart\n    action: docker_restart\n    container: \"{{ target }}\"\n{approval}";

    fn responder(name: &str, extra: &str, approval: bool) -> String {
        RESPONDER
            .replace("{name}", name)
            .replace("{extra}", extra)
            .replace(
                "{approval}",
                if approval {
                    "    approval: required\n"
                } else {
                    ""
                },
            )
    }

    fn lint_texts(routes: &str, responders: &[(&str, String)], admin: bool) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let (rd, pd) = (dir.path().join("routes"), dir.path().join("responders"));
        std::fs::create_dir_all(&rd).unwrap();
        std::fs::create_dir_all(&pd).unwrap();
        std::fs::write(rd.join("r.yaml"), routes).unwrap();
        for (name, text) in responders {
            std::fs::write(pd.join(format!("{name}.yaml")), text).unwrap();
        }
        let catalog = Catalog::load(&rd, &pd).unwrap();
        let mut settings = Settings::load(&SettingsArgs::default()).unwrap();
        if admin {
            settings.admin_token = Some("t".to_owned().into());
        }
        let root = format!("{}/", dir.path().display());
        lints(&catalog, &settings)
            .iter()
            .map(|l| l.to_string().replace(&root, ""))
            .collect()
    }

    const BUDGET: &str = "budget: { cooldown: 1m, max: 1, per: 1h }\n";

    #[test]
    fn lints_are_found_and_located() {
        let one_route = "routes:\n  - matchers: ['alertname=\"A\"']\n    responder: a\n";
        struct Case {
            name: &'static str,
            routes: &'static str,
            responder: String,
            admin: bool,
            expected: Vec<&'static str>,
        }
        let cases = [
            Case {
                name: "clean",
                routes: one_route,
                responder: responder("a", BUDGET, false),
                admin: false,
                expected: vec![],
            },
            Case {
                name: "default budget",
                routes: one_route,
                responder: responder("a", "", false),
                admin: false,
                expected: vec!["warning: responders/a.yaml: steps[1]: destructive step \"restart\" (docker_restart) has no explicit `budget` in its responder: the default applies (cooldown 15m, max 3 per 6h)"],
            },
            Case {
                name: "allow everything",
                routes: one_route,
                responder: responder("a", &format!("{BUDGET}allow_targets: ['k2-.*', '.*']\n"), false),
                admin: false,
                expected: vec!["warning: responders/a.yaml: allow_targets[1]: \".*\" allows every target"],
            },
            Case {
                name: "allow .+",
                routes: one_route,
                responder: responder("a", &format!("{BUDGET}allow_targets: ['.+']\n"), false),
                admin: false,
                expected: vec!["warning: responders/a.yaml: allow_targets[0]: \".+\" allows every target"],
            },
            Case {
                name: "approval without admin token",
                routes: one_route,
                responder: responder("a", BUDGET, true),
                admin: false,
                expected: vec!["warning: responders/a.yaml: steps[1].approval: step \"restart\" waits for approval but no admin token is configured (RESPONDER_ADMIN_TOKEN) and nobody may approve in Slack (SLACK_SIGNING_SECRET and SLACK_APPROVE_ALLOWED): nobody can approve it, so it can only expire after 30m"],
            },
            Case {
                name: "scheduled, target from alert labels",
                routes: one_route,
                responder: responder("a", &format!("{BUDGET}schedule: '0 8 * * *'\n"), false),
                admin: false,
                expected: vec!["warning: responders/a.yaml: target: `{{ alert.labels.container }}` reads alert labels, but a scheduled slot carries none"],
            },
            Case {
                name: "approval with admin token",
                routes: one_route,
                responder: responder("a", BUDGET, true),
                admin: true,
                expected: vec![],
            },
            Case {
                name: "shadowed route, spacing differs",
                routes: "routes:\n  - matchers: ['alertname=\"A\"']\n    responder: a\n  - matchers: ['severity=\"page\"', 'alertname = A']\n    responder: a\n",
                responder: responder("a", BUDGET, false),
                admin: false,
                expected: vec!["error: routes/r.yaml: routes[1]: can never match: routes/r.yaml: routes[0] (responder a, no `continue`) comes first and catches every alert this route would, since its matchers [alertname=\"A\"] are all among this route's"],
            },
            Case {
                name: "continue or narrower first: not shadowed",
                routes: "routes:\n  - matchers: ['alertname=\"A\"']\n    responder: a\n    continue: true\n  - matchers: ['alertname=\"A\"', 'x=\"1\"']\n    responder: a\n  - matchers: ['alertname=\"A\"']\n    responder: a\n",
                responder: responder("a", BUDGET, false),
                admin: false,
                expected: vec![],
            },
        ];
        for case in cases {
            let got = lint_texts(case.routes, &[("a", case.responder)], case.admin);
            assert_eq!(got.len(), case.expected.len(), "{}: {got:#?}", case.name);
            for (got, want) in got.iter().zip(&case.expected) {
                assert!(
                    got.starts_with(want),
                    "{}:\n got {got}\nwant {want}",
                    case.name
                );
            }
        }
    }

    #[test]
    fn a_playbook_setting_no_playbook_reads_is_a_warning() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let catalog = Catalog::load(&root.join("routes"), &root.join("responders")).unwrap();
        let mut settings = Settings::load(&SettingsArgs::default()).unwrap();
        for name in ["kafka_contianer", "kafka_container", "prometheus_url"] {
            settings
                .playbook_config
                .insert(name.to_owned(), "x".to_owned());
        }
        let unread: Vec<String> = lints(&catalog, &settings)
            .iter()
            .filter(|l| l.file == "settings")
            .map(ToString::to_string)
            .collect();
        assert_eq!(unread.len(), 1, "{unread:?}");
        assert!(
            unread[0].starts_with("warning: settings: playbook_config.kafka_contianer: no playbook reads `config.kafka_contianer` (they read config.cleaner_container, config.kafka_container"),
            "{unread:?}"
        );
    }
}
