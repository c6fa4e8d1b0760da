//! One step kind run on its own: parsed from YAML, its templates compiled as the catalog does
//! (keyed by field name, so colliding names would show), rendered against the given variables.

use alert_responder::actions::{Action, ActionCtx, ActionError, AllowList, StepEnv, StepOutput};
use alert_responder::template::{Templates, TemplatesBuilder};
use minijinja::Value;
use serde::Serialize;

/// One compiled step plus everything a [`StepEnv`] borrows.
pub struct Step {
    pub action: Action,
    templates: Templates,
    vars: Value,
    allow: AllowList,
    ctx: ActionCtx,
}

impl Step {
    /// `yaml` rendered against `vars`, allowed on every test container (`k2-test-.*`).
    pub fn new(yaml: &str, vars: impl Serialize) -> Self {
        Self::with_allow(yaml, vars, &["k2-test-.*"])
    }

    /// `yaml` with `{{ target }}` = `target`.
    pub fn for_target(yaml: &str, target: &str) -> Self {
        Self::new(yaml, serde_json::json!({ "target": target }))
    }

    /// `yaml` rendered against `vars`, allowed only where `allow` matches.
    pub fn with_allow(yaml: &str, vars: impl Serialize, allow: &[&str]) -> Self {
        let mut action: Action = serde_yaml_ng::from_str(yaml).expect("step YAML parses");
        let mut builder = TemplatesBuilder::default();
        for (field, tmpl) in action.kind_mut().templates_mut() {
            builder
                .add_template(&format!("responder:step.{field}"), tmpl)
                .expect("step templates compile");
        }
        let allow: Vec<String> = allow.iter().map(|p| (*p).to_owned()).collect();
        Self {
            action,
            templates: builder.build(),
            vars: Value::from_serialize(&vars),
            allow: AllowList::new(&allow).expect("allow-list patterns compile"),
            ctx: ActionCtx::connect(None)
                .expect("Docker is reachable (these tests need a running engine)"),
        }
    }

    fn env(&self) -> StepEnv<'_> {
        StepEnv {
            templates: &self.templates,
            vars: &self.vars,
            allow: &self.allow,
        }
    }

    /// The step's one-line plan.
    pub fn plan(&self) -> Result<String, ActionError> {
        self.action.kind().plan(&self.env())
    }

    /// Runs the step.
    pub async fn run(&self) -> Result<StepOutput, ActionError> {
        self.action.kind().run(&self.ctx, &self.env()).await
    }

    /// Runs a step that must succeed; its fields must be exactly the declared outputs.
    pub async fn run_ok(&self) -> StepOutput {
        let kind = self.action.kind();
        let out = self
            .run()
            .await
            .unwrap_or_else(|e| panic!("{} failed: {e}", kind.name()));
        let mut keys: Vec<&str> = out.fields.keys().map(String::as_str).collect();
        let mut declared = kind.outputs().to_vec();
        keys.sort_unstable();
        declared.sort_unstable();
        assert_eq!(keys, declared, "fields of {}", kind.name());
        out
    }

    /// Runs a step that must fail with [`ActionError::Failed`]; returns its message.
    pub async fn run_err(&self) -> String {
        match self.run().await {
            Err(ActionError::Failed(msg)) => msg,
            other => panic!("expected a step failure, got {other:?}"),
        }
    }
}
