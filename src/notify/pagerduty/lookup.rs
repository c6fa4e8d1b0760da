//! Reading an incident's alerts: `GET {api}/incidents/{id}/alerts` with the REST token, for
//! the first alert's `body.details`, where Alertmanager's PagerDuty integration lists the
//! firing alerts' labels. Only the token is needed (no `From`: nothing is written).

use reqwest::header::{ACCEPT, AUTHORIZATION};
use secrecy::ExposeSecret;
use serde_json::Value;

use super::{endpoint, PagerDutyClient, PagerDutyError, REST_ACCEPT};

impl PagerDutyClient {
    /// The request for the incident's alerts, ready to send.
    pub fn alerts_request(&self, incident: &str) -> Result<reqwest::Request, PagerDutyError> {
        let Some(token) = &self.config.api_token else {
            return Err(PagerDutyError::Rejected(
                "alert lookups are off: PAGERDUTY_API_TOKEN is not set".into(),
            ));
        };
        let mut url = endpoint(&self.config.api_url, &["incidents", incident, "alerts"])?;
        url.query_pairs_mut().append_pair("limit", "1");
        self.http
            .get(url)
            .header(
                AUTHORIZATION,
                format!("Token token={}", token.expose_secret()),
            )
            .header(ACCEPT, REST_ACCEPT)
            .build()
            .map_err(|e| PagerDutyError::Rejected(format!("alerts request: {e}")))
    }

    /// `body.details` of the incident's first alert, `None` when there is no alert or no
    /// details; an error classified like every other call.
    pub(super) async fn fetch_first_alert_details(
        &self,
        incident: &str,
    ) -> Result<Option<Value>, PagerDutyError> {
        let body = self.call(self.alerts_request(incident)?).await?;
        let doc: Value = serde_json::from_str(&body)
            .map_err(|e| PagerDutyError::Rejected(format!("alerts answer is not JSON: {e}")))?;
        Ok(first_details(&doc))
    }
}

/// `alerts[0].body.details` of a `GET /incidents/{id}/alerts` answer.
fn first_details(doc: &Value) -> Option<Value> {
    doc.get("alerts")?
        .as_array()?
        .first()?
        .get("body")?
        .get("details")
        .filter(|d| !d.is_null())
        .cloned()
}
