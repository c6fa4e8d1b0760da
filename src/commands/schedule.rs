//! `simulate --schedule`: every scheduled responder and its next slots, read from the catalog
//! alone (nothing is opened, written or posted).

use std::fmt::Write as _;

use time::OffsetDateTime;

use crate::config::{Catalog, Settings};
use crate::responders::schedule::{overview, ScheduleView};

/// How many slots ahead are shown.
const AHEAD: usize = 3;

/// What `simulate --schedule` prints: text, or JSON with `json`.
///
/// # Errors
/// The catalog's problems, in one message.
pub fn simulate(settings: &Settings, json: bool) -> Result<String, String> {
    let catalog =
        Catalog::load(&settings.routes_dir, &settings.responders_dir).map_err(|e| e.to_string())?;
    let views = overview(
        catalog.responders.values().map(|r| &**r),
        OffsetDateTime::now_utc(),
        AHEAD,
    );
    if json {
        return serde_json::to_string_pretty(&views)
            .map(|text| text + "\n")
            .map_err(|e| e.to_string());
    }
    Ok(render(&views))
}

/// The views as text, one block per responder. Pure.
pub fn render(views: &[ScheduleView]) -> String {
    if views.is_empty() {
        return "No responder has a schedule.\n".to_owned();
    }
    let mut out = String::new();
    for v in views {
        let target = v.target.as_deref().unwrap_or("none (its own name)");
        let channel = v.channel.as_deref().unwrap_or("SLACK_CHANNEL");
        let _ = writeln!(
            out,
            "{} `{}` in {}: target {target}, channel {channel}, catch_up {}",
            v.responder, v.schedule, v.timezone, v.catch_up
        );
        for slot in &v.next {
            let _ = writeln!(out, "  next: {} ({})", slot.local, slot.at);
        }
    }
    out
}
