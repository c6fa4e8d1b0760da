//! Compiling a playbook's steps: common keys, the action, templates and the variables they use.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_yaml_ng::{Mapping, Value};

use super::{duration, Problems};
use crate::actions::Action;
use crate::responders::{OnFailure, Step};
use crate::template::{Expr, TemplatesBuilder};

/// Keys every step may have besides its action's own fields.
const COMMON_KEYS: &[&str] = &[
    "id",
    "when",
    "expect",
    "after",
    "timeout",
    "on_failure",
    "approval",
    "choice",
    "warning",
];

/// Fields of `alert` that templates may read.
const ALERT_FIELDS: &[&str] = &[
    "labels",
    "annotations",
    "name",
    "status",
    "fingerprint",
    "starts_at",
    "ends_at",
    "source",
    "generator_url",
];

/// Top-level variables every template may read.
const ROOTS: &[&str] = &[
    "alert",
    "target",
    "responder",
    "mode",
    "config",
    "previous",
    "steps",
    "failed",
];

/// minijinja's global functions, which show up as undeclared variables when called.
const GLOBALS: &[&str] = &[
    "range",
    "dict",
    "namespace",
    "debug",
    "lipsum",
    "cycler",
    "joiner",
];

/// Steps defined before the one being compiled: id to (kind, outputs), `None` if it failed.
pub(super) type Earlier = BTreeMap<String, Option<(&'static str, &'static [&'static str])>>;

/// Default bound on one step.
const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(60);

pub(super) fn compile_steps(
    responder: &str,
    raw_steps: Vec<Value>,
    templates: &mut TemplatesBuilder,
    problems: &mut Problems<'_>,
) -> Vec<Step> {
    // Output fields of the steps defined so far: what later steps may read. A step that
    // failed to compile is known by id only, so its readers are not reported a second time.
    let mut outputs: Earlier = BTreeMap::new();
    let mut steps = Vec::new();
    for (i, raw) in raw_steps.into_iter().enumerate() {
        let path = format!("steps[{i}]");
        let declared_id = raw.get("id").and_then(Value::as_str).map(str::to_owned);
        let Some(step) = compile_step(responder, &path, raw, templates, &outputs, problems) else {
            if let Some(id) = declared_id {
                outputs.entry(id).or_insert(None);
            }
            continue;
        };
        if outputs.contains_key(&step.id) {
            problems.add(
                format!("{path}.id"),
                format!("step id {:?} is used twice", step.id),
            );
            continue;
        }
        let kind = step.action.kind();
        outputs.insert(step.id.clone(), Some((kind.name(), kind.outputs())));
        steps.push(step);
    }
    check_choices(&steps, problems);
    // `previous` may name any step of the playbook, so it is checked once all are known.
    for (path, var) in problems.take_deferred() {
        let parts: Vec<&str> = var.split('.').collect();
        if let Err(reason) =
            check_step_reference(&var, &parts[1..], &outputs, "steps in this playbook")
        {
            problems.add(path, reason);
        }
    }
    steps
}

fn compile_step(
    responder: &str,
    path: &str,
    raw: Value,
    templates: &mut TemplatesBuilder,
    earlier: &Earlier,
    problems: &mut Problems<'_>,
) -> Option<Step> {
    let Value::Mapping(mut map) = raw else {
        problems.add(path, "a step is a mapping with at least `id` and `action`");
        return None;
    };
    let mut take = |key: &str| map.remove(key);
    let id = match take("id") {
        Some(Value::String(id)) if is_identifier(&id) => id,
        Some(other) => {
            problems.add(
                format!("{path}.id"),
                format!("{other:?}: use letters, digits and '_', starting with a letter"),
            );
            return None;
        }
        None => {
            problems.add(
                format!("{path}.id"),
                "missing: every step needs an id later steps can refer to",
            );
            return None;
        }
    };
    let when = string_field(take("when"), &format!("{path}.when"), problems);
    let expect = string_field(take("expect"), &format!("{path}.expect"), problems);
    let after = string_field(take("after"), &format!("{path}.after"), problems).and_then(|t| {
        duration(&t)
            .map_err(|e| problems.add(format!("{path}.after"), e))
            .ok()
    });
    let timeout = string_field(take("timeout"), &format!("{path}.timeout"), problems)
        .and_then(|t| {
            duration(&t)
                .map_err(|e| problems.add(format!("{path}.timeout"), e))
                .ok()
        })
        .unwrap_or(DEFAULT_STEP_TIMEOUT);
    let on_failure = match take("on_failure") {
        None => OnFailure::Stop,
        Some(v) => serde_yaml_ng::from_value(v)
            .map_err(|_| problems.add(format!("{path}.on_failure"), "must be `stop` or `continue`"))
            .unwrap_or_default(),
    };
    let approval =
        match string_field(take("approval"), &format!("{path}.approval"), problems).as_deref() {
            None | Some("none") => false,
            Some("required") => true,
            Some(other) => {
                problems.add(
                    format!("{path}.approval"),
                    format!("{other:?}: use `required` or `none`"),
                );
                false
            }
        };
    let choice = string_field(take("choice"), &format!("{path}.choice"), problems);
    if let Some(group) = choice.as_deref().filter(|g| !is_identifier(g)) {
        problems.add(
            format!("{path}.choice"),
            format!("{group:?}: use letters, digits and '_', starting with a letter"),
        );
    }
    if choice.is_some() && !approval {
        problems.add(
            format!("{path}.choice"),
            "an option of a choice is offered for approval: add `approval: required`",
        );
    }
    let warning = string_field(take("warning"), &format!("{path}.warning"), problems);
    if warning.is_some() && !approval {
        problems.add(
            format!("{path}.warning"),
            "a warning is shown to whoever approves: add `approval: required`",
        );
    }
    let mut action = parse_action(path, map, problems)?;
    let kind_name = action.kind().name();
    if approval && !action.kind().destructive() {
        problems.add(
            format!("{path}.approval"),
            format!("{kind_name} changes nothing; approval applies to destructive steps"),
        );
    }
    let key = |field: &str| format!("{responder}:{id}.{field}");
    for (field, tmpl) in action.kind_mut().templates_mut() {
        match templates.add_template(&key(field), tmpl) {
            Ok(vars) => check_variables(&vars, earlier, None, &format!("{path}.{field}"), problems),
            Err(e) => problems.add(format!("{path}.{field}"), e.to_string()),
        }
    }
    let outputs = action.kind().outputs();
    let mut compile_expr = |field: &str, source: Option<String>, own: Option<&[&str]>| {
        let source = source?;
        let mut expr = Expr {
            source,
            key: String::new(),
        };
        match templates.add_expression(&key(field), &mut expr) {
            Ok(vars) => check_variables(&vars, earlier, own, &format!("{path}.{field}"), problems),
            Err(e) => problems.add(format!("{path}.{field}"), e.to_string()),
        }
        Some(expr)
    };
    let when = compile_expr("when", when, None);
    let expect = compile_expr("expect", expect, Some(outputs));
    tracing::trace!(step = %id, kind = kind_name, "Compiled step.");
    Some(Step {
        id,
        action,
        when,
        expect,
        after,
        timeout,
        on_failure,
        approval,
        choice,
        warning,
    })
}

/// The options of one `choice:` group are consecutive steps (they are offered together, in
/// one message, when the first is reached), and a choice of one option is no choice.
fn check_choices(steps: &[Step], problems: &mut Problems<'_>) {
    let mut closed: BTreeSet<&str> = BTreeSet::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut previous: Option<&str> = None;
    for step in steps {
        let group = step.choice.as_deref();
        if let Some(g) = group {
            if previous != Some(g) && closed.contains(g) {
                problems.add(
                    format!("steps.{}.choice", step.id),
                    format!("the options of choice {g:?} must be consecutive steps"),
                );
            }
            *counts.entry(g).or_default() += 1;
        }
        if let Some(p) = previous.filter(|p| group != Some(*p)) {
            closed.insert(p);
        }
        previous = group;
    }
    for (group, count) in counts.into_iter().filter(|(_, n)| *n < 2) {
        problems.add(
            "steps",
            format!("choice {group:?} has {count} option: a choice needs at least two (else use `approval: required` alone)"),
        );
    }
}

fn parse_action(path: &str, map: Mapping, problems: &mut Problems<'_>) -> Option<Action> {
    if !map.contains_key("action") {
        problems.add(
            format!("{path}.action"),
            "missing: which action this step runs, e.g. docker_inspect",
        );
        return None;
    }
    match serde_yaml_ng::from_value::<Action>(Value::Mapping(map)) {
        Ok(action) => Some(action),
        Err(e) => {
            let mut reason = e.to_string();
            if reason.contains("unknown field") {
                reason.push_str(&format!(
                    " (every step may also have: {})",
                    COMMON_KEYS.join(", ")
                ));
            }
            problems.add(path, reason);
            None
        }
    }
}

fn string_field(value: Option<Value>, path: &str, problems: &mut Problems<'_>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => {
            problems.add(path, format!("expected a string, got {other:?}"));
            None
        }
    }
}

fn is_identifier(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Marks a variable whose check waits until every step is known.
const DEFER: &str = "\u{0}defer";

/// `steps.<id>.<field>` / `previous.<id>.<field>`: the step exists in `known`, the field in
/// its outputs.
fn check_step_reference(
    var: &str,
    rest: &[&str],
    known: &Earlier,
    which: &str,
) -> Result<(), String> {
    let Some(id) = rest.first() else {
        return Ok(());
    };
    let Some(entry) = known.get(*id) else {
        let names: Vec<_> = known.keys().map(String::as_str).collect();
        return Err(format!(
            "`{var}`: no step {id:?} among the {which} ({})",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        ));
    };
    let Some((kind, outputs)) = entry else {
        return Ok(());
    };
    match rest.get(1) {
        Some(field) if !outputs.contains(field) => Err(format!(
            "`{var}`: step {id:?} ({kind}) has no output {field:?}; its outputs are {}",
            outputs.join(", ")
        )),
        _ => Ok(()),
    }
}

/// Checks that every variable a template reads exists: known roots, `alert` fields, earlier
/// steps and their declared outputs, and (in `expect`) the step's own `output`.
pub(super) fn check_variables(
    vars: &BTreeSet<String>,
    earlier: &Earlier,
    own_outputs: Option<&[&str]>,
    path: &str,
    problems: &mut Problems<'_>,
) {
    for var in vars {
        // Playbook settings are an open map: which names have values is known only with the
        // settings, so the names read are kept for `Catalog::playbook_config` to check.
        if let Some(name) = var.strip_prefix("config.") {
            problems.read_config(path, name.split('.').next().unwrap_or(name));
            continue;
        }
        match check_variable(var, earlier, own_outputs) {
            Err(reason) if reason == DEFER => problems.defer(path, var),
            Err(reason) => problems.add(path, reason),
            Ok(()) => {}
        }
    }
}

fn check_variable(
    var: &str,
    earlier: &Earlier,
    own_outputs: Option<&[&str]>,
) -> Result<(), String> {
    let parts: Vec<&str> = var.split('.').collect();
    match parts.as_slice() {
        ["alert", field, ..] if !ALERT_FIELDS.contains(field) => Err(format!(
            "`{var}`: alert has no field {field:?}; it has {}",
            ALERT_FIELDS.join(", ")
        )),
        ["steps", rest @ ..] => check_step_reference(var, rest, earlier, "steps before this one"),
        // `failed.<id>` is the step's error text: a step id, no output field after it.
        ["failed", id, field, ..] => Err(format!(
            "`{var}`: `failed.{id}` is the step's error text; it has no field {field:?}"
        )),
        ["failed", rest @ ..] => check_step_reference(var, rest, earlier, "steps before this one"),
        ["previous", ..] => Err(DEFER.to_owned()),
        ["output", rest @ ..] => match (own_outputs, rest.first()) {
            (None, _) => Err(format!("`{var}`: `output` is only available in `expect`")),
            (Some(outputs), Some(field)) if !outputs.contains(field) => Err(format!(
                "`{var}`: this step has no output {field:?}; its outputs are {}",
                outputs.join(", ")
            )),
            _ => Ok(()),
        },
        [root, ..] if ROOTS.contains(root) || GLOBALS.contains(root) => Ok(()),
        _ => Err(format!(
            "`{var}`: unknown variable; available: {}",
            ROOTS.join(", ")
        )),
    }
}
