//! Templates and `when`/`expect` expressions: one engine (minijinja), compiled once at load.
//!
//! Playbook fields like `container: "{{ target }}"` are [`Tmpl`]s and conditions like
//! `when: "steps.mem.memory_percent >= 90"` are [`Expr`]s. The catalog registers every one
//! of them in a shared [`Templates`] environment when it loads, checking syntax and the
//! variables each uses; at run time they are only looked up and rendered, never parsed.

use std::collections::BTreeSet;
use std::sync::Arc;

use minijinja::{Environment, UndefinedBehavior, Value};
use serde::{Deserialize, Deserializer};

/// A templated string field of a playbook step, e.g. `"{{ alert.labels.container }}"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tmpl {
    /// The text as written in the playbook.
    pub source: String,
    /// The name it is registered under once compiled (empty before the catalog compiles it).
    pub key: String,
}

impl Tmpl {
    /// A template not yet registered; the catalog assigns its key when it compiles it.
    pub fn new(source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            key: String::new(),
        }
    }
}

impl<'de> Deserialize<'de> for Tmpl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Tmpl::new)
    }
}

/// A boolean expression (`when:` / `expect:`), e.g. `steps.mem.memory_percent >= 90`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    /// The expression as written in the playbook.
    pub source: String,
    /// The name of the template that evaluates it once compiled.
    pub key: String,
}

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|source| Expr {
            source,
            key: String::new(),
        })
    }
}

/// Why a template or expression could not be compiled or rendered.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

impl From<minijinja::Error> for TemplateError {
    fn from(err: minijinja::Error) -> Self {
        // minijinja's Display includes the kind and detail; the chain adds nothing for users.
        TemplateError(err.to_string())
    }
}

/// The shared, compiled set of every template and expression in the catalog.
#[derive(Debug, Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
}

/// Builds a [`Templates`] while the catalog loads.
#[derive(Debug)]
pub struct TemplatesBuilder {
    env: Environment<'static>,
}

impl Default for TemplatesBuilder {
    fn default() -> Self {
        let mut env = Environment::new();
        // A missing label must be an error the run reports, not an empty container name.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Output is plain text for Docker and Slack, never HTML.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.add_filter("promql_string", promql_string);
        Self { env }
    }
}

impl TemplatesBuilder {
    /// Compiles `tmpl` under `key`; returns the variables it reads (dotted, e.g. `steps.mem.x`).
    pub fn add_template(
        &mut self,
        key: &str,
        tmpl: &mut Tmpl,
    ) -> Result<BTreeSet<String>, TemplateError> {
        let env = &mut self.env;
        unpanicked(|| env.add_template_owned(key.to_owned(), tmpl.source.clone()))?;
        tmpl.key = key.to_owned();
        self.variables_of(key)
    }

    /// Compiles the boolean expression `expr` under `key`; returns the variables it reads.
    pub fn add_expression(
        &mut self,
        key: &str,
        expr: &mut Expr,
    ) -> Result<BTreeSet<String>, TemplateError> {
        // Check it as an expression first so a syntax error reads like one.
        let env = &self.env;
        unpanicked(|| env.compile_expression(&expr.source).map(drop))?;
        let wrapped = format!(
            "{{% if {} %}}true{{% else %}}false{{% endif %}}",
            expr.source
        );
        let env = &mut self.env;
        unpanicked(|| env.add_template_owned(key.to_owned(), wrapped))?;
        expr.key = key.to_owned();
        self.variables_of(key)
    }

    fn variables_of(&self, key: &str) -> Result<BTreeSet<String>, TemplateError> {
        let template = self.env.get_template(key)?;
        Ok(template.undeclared_variables(true).into_iter().collect())
    }

    /// Freezes the environment for sharing across runs.
    pub fn build(self) -> Templates {
        Templates {
            env: Arc::new(self.env),
        }
    }
}

/// The `promql_string` filter: `value` escaped for the inside of a double-quoted PromQL string,
/// so an alert's label stays one label value in a query (`{group="{{ x | promql_string }}"}`).
/// PromQL reads Go's escapes and refuses unknown ones (a `\'` inside double quotes among them):
/// a backslash, a double quote and control characters are escaped; everything else, UTF-8
/// included, is taken as it is.
pub fn promql_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// Runs a minijinja compile step, turning a panic into an error. minijinja 2.24 panics
/// ("empty lexer stack") on some malformed text, e.g. the expression `}}}+` (found by
/// `fuzz/template`); a typo in a playbook must be a load error, not a crash.
fn unpanicked(compile: impl FnOnce() -> Result<(), minijinja::Error>) -> Result<(), TemplateError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(compile))
        .map_err(|_| TemplateError("the template engine could not parse this text".to_owned()))?
        .map_err(TemplateError::from)
}

impl Templates {
    /// Renders a compiled template against `ctx`.
    pub fn render(&self, tmpl: &Tmpl, ctx: &Value) -> Result<String, TemplateError> {
        let template = self
            .env
            .get_template(&tmpl.key)
            .map_err(|_| TemplateError(format!("template {:?} was not compiled", tmpl.source)))?;
        Ok(template.render(ctx)?)
    }

    /// Evaluates a compiled boolean expression against `ctx`.
    pub fn eval(&self, expr: &Expr, ctx: &Value) -> Result<bool, TemplateError> {
        let template = self
            .env
            .get_template(&expr.key)
            .map_err(|_| TemplateError(format!("expression {:?} was not compiled", expr.source)))?;
        Ok(template.render(ctx)? == "true")
    }

    /// The ids of the steps whose outputs a compiled expression reads (`steps.<id>…`), as the
    /// engine itself sees them: `replay` cannot know a condition on a step not run then.
    pub fn step_reads(&self, expr: &Expr) -> BTreeSet<String> {
        let Ok(template) = self.env.get_template(&expr.key) else {
            return BTreeSet::new();
        };
        template
            .undeclared_variables(true)
            .into_iter()
            .filter_map(|var| {
                let rest = var.strip_prefix("steps.")?;
                Some(rest.split('.').next().unwrap_or(rest).to_owned())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn templates_and_expressions_render_and_report_their_variables() {
        let mut b = TemplatesBuilder::default();
        let mut t = Tmpl::new("{{ alert.labels.container }}");
        let vars = b.add_template("t", &mut t).unwrap();
        assert_eq!(vars, BTreeSet::from(["alert.labels.container".to_owned()]));
        let mut e = Expr {
            source: "steps.mem.memory_percent >= 90".into(),
            key: String::new(),
        };
        let vars = b.add_expression("e", &mut e).unwrap();
        assert_eq!(
            vars,
            BTreeSet::from(["steps.mem.memory_percent".to_owned()])
        );
        let templates = b.build();
        let ctx = context! { alert => context!{ labels => context!{ container => "k2-x" } },
        steps => context!{ mem => context!{ memory_percent => 93.5 } } };
        assert_eq!(templates.render(&t, &ctx).unwrap(), "k2-x");
        assert!(templates.eval(&e, &ctx).unwrap());
        let low = context! { steps => context!{ mem => context!{ memory_percent => 12.0 } } };
        assert!(!templates.eval(&e, &low).unwrap());
        assert_eq!(templates.step_reads(&e), BTreeSet::from(["mem".to_owned()]));
    }

    #[test]
    fn a_missing_label_is_an_error_not_an_empty_string() {
        let mut b = TemplatesBuilder::default();
        let mut t = Tmpl::new("{{ alert.labels.container }}");
        b.add_template("t", &mut t).unwrap();
        let templates = b.build();
        let ctx = context! { alert => context!{ labels => context!{} } };
        assert!(templates.render(&t, &ctx).is_err());
    }

    #[test]
    fn default_and_is_defined_work_on_missing_labels_in_strict_mode() {
        let mut b = TemplatesBuilder::default();
        let mut t = Tmpl::new("{{ alert.labels.spark_app | default(alert.labels.container) }}");
        b.add_template("t", &mut t).unwrap();
        let mut e = Expr {
            source: "alert.labels.topic is defined".into(),
            key: String::new(),
        };
        b.add_expression("e", &mut e).unwrap();
        let templates = b.build();
        let ctx = context! { alert => context!{ labels => context!{ container => "k2-job" } } };
        assert_eq!(templates.render(&t, &ctx).unwrap(), "k2-job");
        assert!(!templates.eval(&e, &ctx).unwrap());
    }

    #[test]
    fn promql_string_keeps_a_label_one_string() {
        let mut b = TemplatesBuilder::default();
        let mut t = Tmpl::new(r#"{g="{{ v | promql_string }}"}"#);
        b.add_template("q", &mut t).unwrap();
        let templates = b.build();
        for (value, escaped) in [
            ("k2-group", "k2-group"),
            (r#"a"} or vector(1) #"#, r#"a\"} or vector(1) #"#),
            (r"back\slash", r"back\\slash"),
            ("two\nlines\ttab", r"two\nlines\ttab"),
            ("it's ünïcode", "it's ünïcode"),
            ("bell\u{7}", r"bell\u0007"),
        ] {
            let out = templates.render(&t, &context! { v => value }).unwrap();
            assert_eq!(out, format!("{{g=\"{escaped}\"}}"), "{value:?}");
        }
    }

    #[test]
    fn syntax_errors_are_reported() {
        let mut b = TemplatesBuilder::default();
        let mut e = Expr {
            source: "steps.mem >=".into(),
            key: String::new(),
        };
        assert!(b.add_expression("e", &mut e).is_err());
        let mut t = Tmpl::new("{{ target ");
        assert!(b.add_template("t", &mut t).is_err());
        // minijinja itself panics on this one; the catalog gets an error instead.
        let mut e = Expr {
            source: "}}}+".into(),
            key: String::new(),
        };
        assert!(b.add_expression("e2", &mut e).is_err());
    }
}
