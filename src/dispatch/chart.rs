//! Charts in a run's thread. The one that closes the report: the alert's own expression (from
//! its Prometheus link) from 30 minutes before the first action to the run's end, the action
//! marked. Without `PROMETHEUS_URL` or a link there is none; when Prometheus cannot draw it,
//! one line says why. And a `prometheus_range` step's series when it says `chart: true`.
//! Either way the run is already recorded: nothing here can change it.

use time::OffsetDateTime;

use super::Dispatcher;
use crate::chart::{self, render, ChartError, Plot, Series};
use crate::store::PendingRun;

/// Unix seconds as the chart's axis counts them.
fn seconds(t: OffsetDateTime) -> f64 {
    // Whole seconds fit f64 exactly; the sub-second part only moves a line by a pixel.
    t.unix_timestamp() as f64 + f64::from(t.millisecond()) / 1000.0
}

impl Dispatcher {
    /// Charts the run whose first action (or, without one, whose start) was at `action` and
    /// that ended now, when it can be charted.
    pub(super) async fn chart(&self, run: &PendingRun, action: OffsetDateTime) {
        let Some(base) = self.config.get("prometheus_url").filter(|u| !u.is_empty()) else {
            return;
        };
        let Some(expression) = run
            .alert
            .generator_url
            .as_deref()
            .and_then(chart::expr::from_generator_url)
        else {
            return;
        };
        let action = seconds(action);
        // At least a minute after the action, so a quick run still shows what followed it.
        let end = seconds(OffsetDateTime::now_utc()).max(action + 60.0);
        let range = (action - chart::BEFORE.as_secs_f64(), end);
        let title = format!("{}: {expression}", run.alert.name());
        let drawn = match chart::fetch(&self.actions.http, base, &expression, range).await {
            Ok(series) if series.iter().all(|s| s.points.is_empty()) => Err(ChartError::Query(
                "no data in the chart's time range".to_owned(),
            )),
            Ok(series) => draw(title.clone(), series, Some(action), range).await,
            Err(e) => Err(e),
        };
        match drawn {
            Ok(png) => self.reporter.chart(run.incident_id, &title, &png).await,
            Err(e) => {
                tracing::warn!(error.message = %e, "No chart of the alert's expression.");
                let line = format!("No chart of `{expression}`: {e}.");
                self.reporter.note(run.incident_id, &line).await;
            }
        }
    }
}

impl Dispatcher {
    /// Shares a step's chart in the thread, marking the run's first action when one came
    /// before it; a chart that cannot be drawn is one line, as for the alert's chart.
    pub(super) async fn chart_step(
        &self,
        run: &PendingRun,
        step: &str,
        plot: Plot,
        action: Option<OffsetDateTime>,
    ) {
        let title = format!("{} {step}: {}", run.responder, plot.title);
        let action = action.map(seconds).filter(|t| *t >= plot.range.0);
        match draw(title.clone(), plot.series, action, plot.range).await {
            Ok(png) => self.reporter.chart(run.incident_id, &title, &png).await,
            Err(e) => {
                tracing::warn!(step, error.message = %e, "No chart of the step's series.");
                let line = format!("No chart of step {step}: {e}.");
                self.reporter.note(run.incident_id, &line).await;
            }
        }
    }
}

/// Draws off the async workers: rendering is CPU work of a few tens of milliseconds.
async fn draw(
    title: String,
    series: Vec<Series>,
    action: Option<f64>,
    range: (f64, f64),
) -> Result<Vec<u8>, ChartError> {
    tokio::task::spawn_blocking(move || {
        render::png(&render::Picture {
            title: &title,
            series: &series,
            action,
            range,
        })
    })
    .await
    .map_err(|e| ChartError::Render(e.to_string()))?
}
