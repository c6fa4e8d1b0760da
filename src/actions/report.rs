//! `report`: posts a templated message to the incident's thread; touches nothing.
//!
//! Playbooks use it to hand people the diagnosis in the runbook's words, e.g. the tuning
//! options for a streaming job that falls behind, with the numbers the run just read.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{ActionCtx, ActionError, StepEnv, StepKind, StepOutput};
use crate::template::Tmpl;

/// Fields of a `report` step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// The message (mrkdwn), rendered with the run's variables.
    pub text: Tmpl,
}

/// What a `report` step produced.
#[derive(Debug, Clone, Serialize)]
pub struct ReportOutput {
    /// The rendered message.
    pub text: String,
}

#[async_trait]
impl StepKind for Report {
    fn name(&self) -> &'static str {
        "report"
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["text"]
    }

    fn templates_mut(&mut self) -> Vec<(&'static str, &mut Tmpl)> {
        vec![("text", &mut self.text)]
    }

    fn plan(&self, _env: &StepEnv<'_>) -> Result<String, ActionError> {
        Ok("post a report".to_owned())
    }

    async fn run(&self, _ctx: &ActionCtx, env: &StepEnv<'_>) -> Result<StepOutput, ActionError> {
        let text = env.render(&self.text)?.trim().to_owned();
        Ok(StepOutput::from_typed(
            &ReportOutput { text: text.clone() },
            text,
        ))
    }
}
