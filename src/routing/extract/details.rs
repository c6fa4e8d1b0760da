//! The labels in a PagerDuty alert's `body.details`, as Alertmanager's PagerDuty integration
//! writes them: its default details carry `firing` (and `resolved`) texts in the
//! `__text_alert_list` shape, one block per alert:
//!
//! ```text
//! Labels:
//!  - alertname = HighMemoryUsage
//!  - container = k2-memhog
//! Annotations:
//!  - summary = ...
//! Source: http://prometheus/graph?...
//! ```
//!
//! The first block's labels are taken: the first firing alert of the group.

use serde_json::Value;

use crate::alert::Labels;

/// The labels of the first alert listed in `details` (an object whose `firing` text, or
/// failing that any text value, holds a `Labels:` block; or such a text itself). `None` when
/// there is no such block.
pub fn details_labels(details: &Value) -> Option<Labels> {
    match details {
        Value::String(text) => labels_block(text),
        Value::Object(fields) => fields
            .get("firing")
            .and_then(Value::as_str)
            .and_then(labels_block)
            .or_else(|| {
                fields
                    .values()
                    .filter_map(Value::as_str)
                    .find_map(labels_block)
            }),
        _ => None,
    }
}

/// The ` - name = value` lines after the first `Labels:` line of `text`.
fn labels_block(text: &str) -> Option<Labels> {
    let mut lines = text.lines().map(str::trim);
    lines.find(|line| *line == "Labels:")?;
    let mut labels = Labels::new();
    for line in lines {
        let Some(pair) = line.strip_prefix("- ") else {
            break;
        };
        let Some((name, value)) = pair.split_once(" = ") else {
            continue;
        };
        labels.insert(name.trim().to_owned(), value.trim().to_owned());
    }
    (!labels.is_empty()).then_some(labels)
}
