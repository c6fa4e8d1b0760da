//! Grafana annotations in the outbox: what a run's annotation deliveries are, and the SQL both
//! backends run for them (written once with `$n` placeholders, which SQLite reads as `?n`).
//!
//! A run queues two rows: `create` when it starts and `complete` when it ends. The completion
//! learns the annotation's id from the create row, at delivery time, so it can be queued
//! before Grafana ever answered the creation (Grafana down for the whole run).

use serde_json::Value;

use super::StoreError;

/// What an annotation delivery does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnotationKind {
    /// `POST /api/annotations` when the run starts (`time`).
    Create,
    /// `PATCH /api/annotations/{id}` when the run ends (`timeEnd`, outcome tag).
    Complete,
}

impl AnnotationKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AnnotationKind::Create => "create",
            AnnotationKind::Complete => "complete",
        }
    }

    /// The kind of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "create" => Some(AnnotationKind::Create),
            "complete" => Some(AnnotationKind::Complete),
            _ => None,
        }
    }
}

/// An annotation delivery to queue; `body` holds Grafana's fields (no credential).
#[derive(Debug, Clone, PartialEq)]
pub struct NewAnnotation {
    /// Incident the run belongs to (deliveries keep order per incident).
    pub incident_id: i64,
    /// The run the annotation shows.
    pub run_id: i64,
    /// Create or complete.
    pub kind: AnnotationKind,
    /// `time`, `timeEnd`, `tags`, `text`, as Grafana takes them.
    pub body: Value,
}

/// An annotation delivery that is due.
#[derive(Debug, Clone, PartialEq)]
pub struct DueAnnotation {
    /// Outbox row id.
    pub id: i64,
    /// Incident.
    pub incident_id: i64,
    /// Run.
    pub run_id: i64,
    /// Create or complete.
    pub kind: AnnotationKind,
    /// The fields queued.
    pub body: Value,
    /// Attempts so far.
    pub attempts: i64,
    /// For a completion: the id Grafana gave the run's annotation, once it was created.
    pub annotation_id: Option<i64>,
    /// For a completion: the create row's fields, if one was queued (its `time`).
    pub start: Option<Value>,
    /// The incident's Slack thread (channel id, ts), once posted, for a link to it.
    pub thread: Option<(String, String)>,
}

/// Inserts a delivery unless the run already has one of that kind (`RETURNING id`).
pub(super) const ENQUEUE: &str =
    "INSERT INTO outbox (incident_id, run_id, destination, kind, text, state, created_at)
     VALUES ($1, $2, 'grafana', $3, $4, 'pending', $5)
     ON CONFLICT DO NOTHING RETURNING id";

/// The oldest pending delivery of each incident, when due, with what its sending needs.
pub(super) const DUE: &str = "SELECT o.id, o.incident_id, o.run_id, o.kind, o.text, o.attempts,
            c.annotation_id, c.text AS start, i.slack_channel, i.slack_ts
     FROM outbox o JOIN incidents i ON i.id = o.incident_id
     LEFT JOIN outbox c ON c.destination = 'grafana' AND c.kind = 'create'
                       AND c.run_id = o.run_id AND c.id <> o.id
     WHERE o.id IN (SELECT MIN(id) FROM outbox WHERE state = 'pending' AND destination = 'grafana'
                    GROUP BY incident_id)
       AND o.next_attempt_unix <= $1
     ORDER BY o.id LIMIT $2";

/// Marks a delivery accepted, keeping the id Grafana gave a created annotation.
pub(super) const SENT: &str =
    "UPDATE outbox SET state = 'sent', sent_at = $1, attempts = attempts + 1,
            annotation_id = COALESCE($2, annotation_id)
     WHERE id = $3";

/// One row of [`DUE`], as both backends decode it.
pub(super) type DueRow = (
    i64,
    i64,
    Option<i64>,
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// A row of [`DUE`] as a [`DueAnnotation`].
pub(super) fn due_annotation(row: DueRow) -> Result<DueAnnotation, StoreError> {
    let (id, incident_id, run_id, kind, text, attempts, annotation_id, start, channel, ts) = row;
    let json = |text: &str| {
        serde_json::from_str(text)
            .map_err(|e| StoreError::Corrupt(format!("Grafana outbox body: {e}")))
    };
    Ok(DueAnnotation {
        id,
        incident_id,
        run_id: run_id
            .ok_or_else(|| StoreError::Corrupt("Grafana outbox row without a run".into()))?,
        kind: AnnotationKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("Grafana outbox kind {kind}")))?,
        body: json(&text)?,
        attempts,
        annotation_id,
        start: start.as_deref().map(json).transpose()?,
        thread: channel.zip(ts),
    })
}

/// `sql` for SQLite, whose numbered parameters are `?n`.
pub(super) fn for_sqlite(sql: &str) -> String {
    sql.replace('$', "?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_sqlite_placeholders_are_numbered() {
        for kind in [AnnotationKind::Create, AnnotationKind::Complete] {
            assert_eq!(AnnotationKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(AnnotationKind::parse("note"), None);
        assert!(for_sqlite(SENT).contains("sent_at = ?1"));
        assert!(!for_sqlite(DUE).contains('$'));
    }
}
