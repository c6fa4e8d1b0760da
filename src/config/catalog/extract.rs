//! `extract:` in a routes file: rules that take labels from a PagerDuty incident's fields
//! before routing (see `routing::extract`), compiled and checked with the routes.

use serde::Deserialize;

use super::{one_line_regex_error, Problems};
use crate::routing::extract::{settable, Extraction, PdField};

/// One rule as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExtract {
    field: String,
    regex: String,
}

/// Compiles a file's rules into `rules`; each problem is reported with its path.
pub(super) fn compile(
    file: &str,
    raw: Vec<RawExtract>,
    rules: &mut Vec<Extraction>,
    problems: &mut Problems<'_>,
) {
    for (i, raw) in raw.into_iter().enumerate() {
        let path = format!("extract[{i}]");
        let field = PdField::parse(&raw.field);
        if field.is_none() {
            let known: Vec<&str> = PdField::ALL.iter().map(|f| f.as_str()).collect();
            problems.add(
                format!("{path}.field"),
                format!("unknown field {:?}; one of {}", raw.field, known.join(", ")),
            );
        }
        // Anchored like Alertmanager's matchers: the whole field must match.
        let regex = match crate::pattern::anchored(&raw.regex) {
            Ok(regex) => Some(regex),
            Err(e) => {
                problems.add(
                    format!("{path}.regex"),
                    format!("{:?}: {}", raw.regex, one_line_regex_error(&e)),
                );
                None
            }
        };
        let Some(regex) = regex else { continue };
        let names: Vec<&str> = regex.capture_names().flatten().collect();
        if names.is_empty() {
            problems.add(
                format!("{path}.regex"),
                "no named group: name what each group extracts, e.g. (?P<container>k2-[a-z0-9-]+)",
            );
        }
        for name in names.iter().filter(|n| !settable(n)) {
            problems.add(
                format!("{path}.regex"),
                format!("group {name:?} cannot be extracted: pd_* and manual_* labels are the sources' own"),
            );
        }
        if let Some(field) = field {
            rules.push(Extraction {
                field,
                regex,
                origin: format!("{file}: {path}"),
            });
        }
    }
}
