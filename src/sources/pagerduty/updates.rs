//! `incident.acknowledged` and `incident.annotated`: updates of an incident, never alerts
//! that act (see "Acknowledged and annotated" in the parent module).

use serde::Deserialize;

use super::{alertname, Event, IngestError, Reference, WireEvent};
use crate::alert::{Alert, Labels, Source, Status, EVENT_ID, PD_AGENT, PD_EVENT, PD_NOTE};

/// `data` of `incident.annotated`: an `incident_note`.
#[derive(Debug, Deserialize)]
struct Note {
    incident: NoteIncident,
    #[serde(default)]
    content: String,
}

#[derive(Debug, Deserialize)]
struct NoteIncident {
    id: String,
    #[serde(default)]
    summary: Option<String>,
}

/// `incident.annotated`: an update carrying the note, on the noted incident's fingerprint.
pub(super) fn parse_note(event: WireEvent) -> Result<Event, IngestError> {
    let note: Note = serde_json::from_value(event.data).map_err(|e| {
        IngestError::Malformed(format!("incident.annotated without a usable note: {e}"))
    })?;
    if note.incident.id.is_empty() {
        return Err(IngestError::Malformed(
            "incident.annotated without an incident id".to_owned(),
        ));
    }
    let starts_at = event.occurred_at.ok_or_else(|| {
        IngestError::Malformed("incident.annotated without occurred_at".to_owned())
    })?;
    let title = note.incident.summary.unwrap_or_default();
    let mut labels = Labels::new();
    labels.insert("alertname".into(), alertname(&title).into());
    labels.insert("pd_incident_id".into(), note.incident.id.clone());
    let mut annotations = Labels::new();
    annotations.insert(PD_EVENT.into(), "annotated".into());
    annotations.insert(PD_AGENT.into(), agent_name(event.agent));
    annotations.insert(PD_NOTE.into(), note.content);
    annotations.insert(EVENT_ID.into(), event.id);
    Ok(Event::Alert(Box::new(Alert {
        source: Source::PagerDuty,
        fingerprint: note.incident.id,
        status: Status::Update,
        labels,
        annotations,
        starts_at,
        ends_at: None,
        generator_url: None,
    })))
}

/// Who did it, as PagerDuty names the agent; an integration or PagerDuty itself has none.
pub(super) fn agent_name(agent: Option<Reference>) -> String {
    agent
        .and_then(|a| a.summary)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "PagerDuty".to_owned())
}
