//! A step's `when` and `expect`, read the same way by the engine (during a run) and by
//! `replay` (against the outputs recorded then): one reading, so the two never disagree.

use serde_json::{Map, Value as Json};

use super::context::Scope;
use super::Step;
use crate::template::Templates;

/// What a step's `when` says about running it, given the outputs of the steps so far. One
/// function for the engine and `replay`, so both read a condition the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// No `when`, or it holds: the step runs.
    Open,
    /// The `when` is false: the step is skipped, for this reason.
    Closed(String),
    /// The `when` could not be evaluated: the step fails and the run stops.
    Broken {
        /// One line for people.
        failure: String,
        /// The template engine's error.
        error: String,
    },
}

/// Evaluates `step`'s `when` against `vars` (a [`Scope`]'s variables).
pub fn gate(step: &Step, templates: &Templates, vars: &minijinja::Value) -> Gate {
    let Some(when) = &step.when else {
        return Gate::Open;
    };
    match templates.eval(when, vars) {
        Ok(true) => Gate::Open,
        Ok(false) => Gate::Closed(format!("skipped: `{}` is false", when.source)),
        Err(e) => Gate::Broken {
            failure: format!("step {}: condition `{}` failed: {e}", step.id, when.source),
            error: e.to_string(),
        },
    }
}

/// Checks `step`'s `expect` against its own outputs `own` (bound as `output`) and the outputs
/// of the steps so far; `Err` says why the step counts as failed. Shared with `replay`.
///
/// # Errors
/// The expectation is not met, or cannot be evaluated.
pub fn expectation(
    step: &Step,
    templates: &Templates,
    scope: &Scope<'_>,
    outputs: &Map<String, Json>,
    own: &Map<String, Json>,
) -> Result<(), String> {
    let Some(expect) = &step.expect else {
        return Ok(());
    };
    // `output` is this step's own result, so `expect` reads naturally: `output.running`.
    let ctx = scope.vars_with_output(outputs, Some(own));
    match templates.eval(expect, &ctx) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!("expectation `{}` not met", expect.source)),
        Err(e) => Err(format!(
            "expectation `{}` could not be checked: {e}",
            expect.source
        )),
    }
}
