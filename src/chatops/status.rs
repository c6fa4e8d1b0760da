//! `status [container|all]`: what the runbook's `docker ps` and `docker stats` checks show,
//! for the containers SLACK_STATUS_CONTAINERS names, as one table in a code block.

use regex::Regex;
use time::OffsetDateTime;

use crate::actions::docker::{self, inspect, InspectOutput};
use crate::actions::ActionCtx;

/// One container's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Container name.
    pub name: String,
    /// `running`, `exited`, … (or the inspect error).
    pub state: String,
    /// Since the last start, while running.
    pub uptime: Option<String>,
    /// Memory % like `docker stats`, while running.
    pub memory_percent: Option<f64>,
    /// Restarts by the engine.
    pub restarts: i64,
    /// `healthy`, `unhealthy`, `starting` or `none`.
    pub health: String,
}

/// The rows for the containers matching `names` (anchored), or only `one` when given.
///
/// # Errors
/// A one-line reason when the engine cannot list containers, or `one` is not reported.
pub async fn collect(
    ctx: &ActionCtx,
    names: &Regex,
    one: Option<&str>,
) -> Result<Vec<Row>, String> {
    if let Some(one) = one {
        if !names.is_match(one) {
            return Err(format!(
                "`{one}` is not among the containers status reports (SLACK_STATUS_CONTAINERS `{}`)",
                names.as_str()
            ));
        }
    }
    let wanted = docker::names(ctx, |n| names.is_match(n) && one.is_none_or(|o| o == n))
        .await
        .map_err(|e| e.to_string())?;
    let wanted: Vec<String> = wanted.into_iter().map(|(name, _)| name).collect();
    if let (Some(one), true) = (one, wanted.is_empty()) {
        return Err(format!("no container named `{one}`"));
    }
    Ok(futures::future::join_all(wanted.iter().map(|n| row(ctx, n))).await)
}

async fn row(ctx: &ActionCtx, name: &str) -> Row {
    let state = match inspect(ctx, name).await {
        Ok(state) => state,
        Err(e) => {
            return Row {
                name: name.to_owned(),
                state: format!("unknown ({e})"),
                uptime: None,
                memory_percent: None,
                restarts: 0,
                health: "none".to_owned(),
            }
        }
    };
    let memory_percent = if state.running {
        docker::memory_percent(ctx, name).await
    } else {
        None
    };
    Row {
        name: name.to_owned(),
        uptime: state.running.then(|| uptime(&state)).flatten(),
        state: state.status,
        memory_percent,
        restarts: state.restart_count,
        health: state.health,
    }
}

fn uptime(state: &InspectOutput) -> Option<String> {
    let started = OffsetDateTime::parse(
        &state.started_at,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()?;
    let secs = (OffsetDateTime::now_utc() - started).whole_seconds().max(0);
    Some(match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    })
}

/// The rows as an aligned table in a code block, flagging memory >= 90% and unhealthy.
pub fn table(rows: &[Row]) -> String {
    let header = ["CONTAINER", "STATE", "UPTIME", "MEM%", "RESTARTS", "HEALTH"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.state.clone(),
                r.uptime.clone().unwrap_or_else(|| "-".into()),
                r.memory_percent
                    .map_or_else(|| "-".into(), |p| format!("{p:.1}")),
                r.restarts.to_string(),
                r.health.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[String]| {
        row.iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = vec![line(&header.map(str::to_owned))];
    out.extend(cells.iter().map(|r| line(r)));
    let flagged: Vec<String> = rows
        .iter()
        .filter(|r| r.memory_percent.is_some_and(|p| p >= 90.0) || r.health == "unhealthy")
        .map(|r| format!("`{}`", r.name))
        .collect();
    let mut text = format!("```\n{}\n```", out.join("\n"));
    if !flagged.is_empty() {
        text.push_str(&format!(
            "\n:warning: Needs a look (memory >= 90% or unhealthy): {}",
            flagged.join(", ")
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_and_flags_high_memory() {
        let rows = [
            Row {
                name: "k2-api".into(),
                state: "running".into(),
                uptime: Some("3h 2m".into()),
                memory_percent: Some(96.74),
                restarts: 2,
                health: "healthy".into(),
            },
            Row {
                name: "k2-spark-worker-1".into(),
                state: "exited".into(),
                uptime: None,
                memory_percent: None,
                restarts: 0,
                health: "none".into(),
            },
        ];
        let text = table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "```");
        assert!(
            lines[1].starts_with("CONTAINER          STATE    UPTIME"),
            "{text}"
        );
        assert!(
            lines[2].contains("96.7") && lines[2].contains("healthy"),
            "{text}"
        );
        assert!(
            lines[3].contains("exited") && lines[3].contains(" - "),
            "{text}"
        );
        assert!(
            text.ends_with("memory >= 90% or unhealthy): `k2-api`"),
            "{text}"
        );
    }
}
