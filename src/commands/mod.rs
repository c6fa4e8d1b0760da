//! Operator commands beside `serve`: what `simulate` and `incidents` compute and print.
//! They read the catalog and the store and change nothing; `main.rs` only calls them.

pub mod incidents;
pub mod simulate;
mod simulate_text;

use std::path::Path;

use time::OffsetDateTime;

use crate::config::{Catalog, Settings};
use crate::store::{SqliteStore, Store, StoreError};

/// Where a payload for `simulate` comes from. Only Alertmanager exists today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PayloadSource {
    /// Alertmanager webhook, version 4.
    Alertmanager,
}

/// Opens the settings' database read-only; `None` (and no file created) when it does not exist.
///
/// # Errors
/// When the database exists but cannot be opened.
pub async fn open_store(settings: &Settings) -> Result<Option<SqliteStore>, StoreError> {
    SqliteStore::open_read_only(&settings.database_url).await
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
    let alerts = match source {
        Some(PayloadSource::Alertmanager) => crate::sources::alertmanager::parse(payload)
            .map_err(|e| format!("not a valid Alertmanager payload: {e}"))?,
        None => crate::sources::alertmanager::parse(payload).map_err(|e| {
            format!("cannot tell the payload's source: it does not parse as an Alertmanager v4 webhook ({e}); Alertmanager is the only source today")
        })?,
    };
    let catalog =
        Catalog::load(&settings.routes_dir, &settings.responders_dir).map_err(|e| e.to_string())?;
    let store = open_store(settings)
        .await
        .map_err(|e| format!("database {}: {e}", settings.database_url))?;
    let store_note = match &store {
        Some(_) => format!("read from {} (opened read-only)", settings.database_url),
        None => format!(
            "no history: database {} does not exist (not created)",
            settings.database_url
        ),
    };
    let input = simulate::SimInput {
        catalog: &catalog,
        mode: settings.mode,
        config: &settings.playbook_config,
        store: store.as_ref().map(|s| s as &dyn Store),
        approval_ttl: settings.approval_ttl,
        approvals_possible: settings.admin_token.is_some(),
        now: OffsetDateTime::now_utc(),
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
    let store = open_store(settings)
        .await
        .map_err(|e| format!("database {}: {e}", settings.database_url))?;
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
