//! The streaming-lag step kinds against real parts: `kafka_consumer_lag` runs a stand-in
//! `kafka-consumer-groups` (a busybox script printing Kafka 3.x's table) in a real container
//! ([`kafka`]), and `spark_master_status` / `prometheus_range` query tiny axum servers that
//! answer on the real paths with the fixture JSON ([`http`]).

mod http;
pub(crate) mod kafka;

use alert_responder::actions::{Action, ActionCtx, ActionError, AllowList, StepEnv, StepOutput};
use alert_responder::template::{Templates, TemplatesBuilder};
use minijinja::Value;

/// One compiled step plus everything a [`StepEnv`] borrows.
struct Step {
    action: Action,
    templates: Templates,
    vars: Value,
    allow: AllowList,
    ctx: ActionCtx,
}

impl Step {
    /// Parses `yaml`, compiles its templates as the catalog does, renders against `vars`.
    fn new(yaml: &str, vars: serde_json::Value) -> Self {
        let mut action: Action = serde_yaml_ng::from_str(yaml).expect("step YAML parses");
        let mut builder = TemplatesBuilder::default();
        for (field, tmpl) in action.kind_mut().templates_mut() {
            builder
                .add_template(&format!("responder:step.{field}"), tmpl)
                .expect("step templates compile");
        }
        Self {
            action,
            templates: builder.build(),
            vars: Value::from_serialize(&vars),
            allow: AllowList::new(&["k2-test-.*".to_owned()]).expect("pattern compiles"),
            ctx: ActionCtx::connect().expect("clients build"),
        }
    }

    fn env(&self) -> StepEnv<'_> {
        StepEnv {
            templates: &self.templates,
            vars: &self.vars,
            allow: &self.allow,
        }
    }

    fn plan(&self) -> Result<String, ActionError> {
        self.action.kind().plan(&self.env())
    }

    async fn run(&self) -> Result<StepOutput, ActionError> {
        self.action.kind().run(&self.ctx, &self.env()).await
    }

    /// Runs a step that must succeed and checks its fields are exactly the declared outputs.
    async fn run_ok(&self) -> StepOutput {
        let out = self
            .run()
            .await
            .unwrap_or_else(|e| panic!("{} failed: {e}", self.action.kind().name()));
        let mut keys: Vec<&str> = out.fields.keys().map(String::as_str).collect();
        let mut declared = self.action.kind().outputs().to_vec();
        keys.sort_unstable();
        declared.sort_unstable();
        assert_eq!(keys, declared, "fields of {}", self.action.kind().name());
        out
    }

    async fn run_err(&self) -> String {
        match self.run().await {
            Err(ActionError::Failed(msg)) => msg,
            other => panic!("expected a step failure, got {other:?}"),
        }
    }
}
