//! Operator commands beside `serve`: what `simulate`, `incidents` and `replay` compute and print.
//! They read the catalog and the store and change nothing; `main.rs` only calls them.

pub mod incidents;
pub mod replay;
pub mod schedule;
pub mod simulate;
mod simulate_text;

use std::path::Path;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::config::{Catalog, Settings};
use crate::store::{self, Store, StoreError};

/// Where a payload for `simulate` comes from; told apart by shape when not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PayloadSource {
    /// Alertmanager webhook, version 4.
    Alertmanager,
    /// PagerDuty Webhooks V3 (one `{"event": …}` per payload).
    #[value(name = "pagerduty")]
    PagerDuty,
}

impl PayloadSource {
    /// The source a payload's shape says: a top-level `event` object is PagerDuty V3.
    pub fn detect(payload: &[u8]) -> Self {
        let pagerduty = serde_json::from_slice::<serde_json::Value>(payload)
            .is_ok_and(|v| v.get("event").is_some_and(serde_json::Value::is_object));
        if pagerduty {
            PayloadSource::PagerDuty
        } else {
            PayloadSource::Alertmanager
        }
    }
}

/// The payload's alerts, or (for a PagerDuty event type that is not recorded) that type.
fn parse_payload(payload: &[u8], source: Option<PayloadSource>) -> Result<Parsed, String> {
    use crate::sources::{alertmanager, pagerduty};
    let detected = source.is_none();
    match source.unwrap_or_else(|| PayloadSource::detect(payload)) {
        PayloadSource::Alertmanager => alertmanager::parse(payload).map(Parsed::Alerts).map_err(|e| {
            if detected {
                format!("cannot tell the payload's source: it parses neither as a PagerDuty V3 webhook (no top-level \"event\") nor as an Alertmanager v4 webhook ({e})")
            } else {
                format!("not a valid Alertmanager payload: {e}")
            }
        }),
        PayloadSource::PagerDuty => match pagerduty::parse(payload) {
            Ok(pagerduty::Event::Alert(alert)) => Ok(Parsed::Alerts(vec![*alert])),
            Ok(pagerduty::Event::Ignored { event_type }) => Ok(Parsed::Ignored(event_type)),
            Err(e) => Err(format!("not a valid PagerDuty V3 webhook: {e}")),
        },
    }
}

enum Parsed {
    Alerts(Vec<crate::alert::Alert>),
    Ignored(String),
}

/// Opens the settings' database read-only; `None` (and no file created) when it does not exist.
///
/// # Errors
/// When the database exists but cannot be opened.
pub async fn open_store(settings: &Settings) -> Result<Option<Arc<dyn Store>>, StoreError> {
    store::open_read_only(&settings.database_url).await
}

/// Runs `simulate` on a payload and returns what to print.
///
/// # Errors
/// A one-line reason when the catalog, the payload or the database is unusable.
pub async fn simulate(
    settings: &Settings,
    payload: &[u8],
    source: Option<PayloadSource>,
    json: bool,
) -> Result<String, String> {
    let alerts = match parse_payload(payload, source)? {
        Parsed::Alerts(alerts) => alerts,
        Parsed::Ignored(event_type) => {
            let what = format!("PagerDuty event {event_type}: would be answered 202 and ignored; nothing is recorded and nothing runs");
            return Ok(if json {
                serde_json::json!({ "alerts": [], "ignored": event_type, "outcome": what })
                    .to_string()
                    + "\n"
            } else {
                what + "\n"
            });
        }
    };
    let catalog =
        Catalog::load(&settings.routes_dir, &settings.responders_dir).map_err(|e| e.to_string())?;
    let store = open_store(settings).await.map_err(|e| {
        format!(
            "database {}: {e}",
            store::redact_url(&settings.database_url)
        )
    })?;
    let store_note = match &store {
        Some(_) => format!(
            "read from {} (opened read-only)",
            store::redact_url(&settings.database_url)
        ),
        None => format!(
            "no history: database {} does not exist (not created)",
            store::redact_url(&settings.database_url)
        ),
    };
    let config = catalog
        .playbook_config(&settings.playbook_config)
        .map_err(|e| e.to_string())?;
    let lookup = crate::app::pagerduty_lookup(settings).map_err(|e| format!("{e:#}"))?;
    let input = simulate::SimInput {
        catalog: &catalog,
        mode: settings.mode,
        config: &config,
        store: store.as_deref(),
        approval_ttl: settings.approval_ttl,
        approvals_possible: settings.admin_token.is_some(),
        now: OffsetDateTime::now_utc(),
        lookup: lookup.as_deref(),
    };
    let sims = simulate::simulate(&input, &alerts).await;
    if json {
        let doc = serde_json::json!({ "store": store_note, "alerts": sims });
        serde_json::to_string_pretty(&doc)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string())
    } else {
        Ok(simulate::render_text(&sims, &store_note))
    }
}

/// Runs `incidents` and returns what to print.
///
/// # Errors
/// A one-line reason when the database is unusable.
pub async fn incidents(
    settings: &Settings,
    open_only: bool,
    limit: u32,
    json: bool,
) -> Result<String, String> {
    let store = open_store(settings).await.map_err(|e| {
        format!(
            "database {}: {e}",
            store::redact_url(&settings.database_url)
        )
    })?;
    let rows = match store {
        Some(store) => store
            .list_incidents(open_only, limit)
            .await
            .map_err(|e| format!("database {}: {e}", settings.database_url))?,
        None if json => Vec::new(),
        None => {
            return Ok(format!(
                "no incidents: database {} does not exist\n",
                settings.database_url
            ))
        }
    };
    if json {
        serde_json::to_string_pretty(&rows)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string())
    } else {
        Ok(incidents::render_table(&rows))
    }
}

/// Reads a payload from a file, or stdin for `-`.
///
/// # Errors
/// The file or stdin could not be read.
pub fn read_payload(path: &Path) -> Result<Vec<u8>, String> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| format!("stdin: {e}"))?;
        Ok(buf)
    } else {
        std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
    }
}
