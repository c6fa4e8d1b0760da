//! `incidents`: the store's incidents as a table for people, or JSON for machines.

use std::fmt::Write as _;

use crate::store::IncidentRow;
use crate::text::fit;

/// Renders incidents as an aligned table: id, status, alert, target, opened, summary.
pub fn render_table(rows: &[IncidentRow]) -> String {
    if rows.is_empty() {
        return "no incidents\n".to_owned();
    }
    let header = ["ID", "STATUS", "ALERT", "TARGET", "OPENED", "SUMMARY"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.id.to_string(),
                r.status.as_str().to_owned(),
                fit(&r.alertname, 30),
                fit(r.target.as_deref().unwrap_or("-"), 32),
                r.opened_at.clone(),
                fit(r.summary.as_deref().unwrap_or("-"), 60),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cols: Vec<&str>| {
        let padded: Vec<String> = cols
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in &cells {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::IncidentStatus;

    #[test]
    fn table_aligns_and_truncates() {
        let row = IncidentRow {
            id: 7,
            fingerprint: "f".into(),
            alertname: "HighMemoryUsage".into(),
            severity: None,
            target: Some("web-frontend".into()),
            status: IncidentStatus::Open,
            summary: Some("x".repeat(80)),
            opened_at: "2026-01-01T00:00:00Z".into(),
            resolved_at: None,
            run_state: None,
            run_outcome: None,
        };
        let table = render_table(&[row]);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("ID  STATUS  ALERT"), "{table}");
        assert!(
            lines[1].starts_with("7   open    HighMemoryUsage"),
            "{table}"
        );
        assert!(
            lines[1].ends_with(&format!("{}…", "x".repeat(59))),
            "{table}"
        );
        assert_eq!(render_table(&[]), "no incidents\n");
    }
}
