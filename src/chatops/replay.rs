//! Signed Slack requests already accepted, so that a captured request replayed inside the
//! five-minute signature window acts at most once.
//!
//! A v0 signature covers the timestamp and the body, so two requests with one signature are
//! one request sent twice. Slack itself never resends a slash command or a button click, so
//! refusing a signature seen before costs no genuine request. Entries leave once their
//! timestamp is outside the window, where the signature check refuses the request anyway;
//! only validly signed requests are remembered, so the set is as large as five minutes of
//! genuine traffic, whatever an attacker sends.
//!
//! The memory is this process's: with several replicas, a replay that reaches another one
//! still passes here. What it could do there is bounded by the store: a `run` is journaled
//! under its `trigger_id` (once), an approval is decided only while pending (once).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Mutex;

use super::MAX_CLOCK_SKEW_SECS;
use crate::http::IngestError;

/// Signatures accepted within the window, with the time each may be forgotten.
#[derive(Debug, Default)]
pub struct Replays {
    seen: Mutex<HashMap<String, i64>>,
}

impl Replays {
    /// Records `signature` (already verified) at `now`, unix seconds.
    ///
    /// # Errors
    /// [`IngestError::Unsigned`] when the same signature was accepted before.
    pub fn first_time(&self, signature: &str, now: i64) -> Result<(), IngestError> {
        let key = signature.trim().to_ascii_lowercase();
        // A poisoned lock only means another request panicked mid-insert; the map is intact.
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.retain(|_, forget_at| *forget_at >= now);
        // The timestamp may lie up to the window ahead of now, so the signature stays valid
        // for at most twice the window from now.
        // A refused replay leaves the first arrival's time alone, so it cannot extend it.
        match seen.entry(key) {
            Entry::Occupied(_) => Err(IngestError::Unsigned(
                "this signed request was already received (a replay); it acts once",
            )),
            Entry::Vacant(entry) => {
                entry.insert(now + 2 * MAX_CLOCK_SKEW_SECS);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_accepted_once_within_the_window_and_forgotten_after() {
        let replays = Replays::default();
        let now = 1_800_000_000;
        assert!(replays.first_time("v0=ab", now).is_ok());
        assert!(replays.first_time("v0=AB", now + 1).is_err(), "hex case");
        assert!(replays.first_time("v0=cd", now + 1).is_ok());
        assert!(replays
            .first_time("v0=ab", now + 2 * MAX_CLOCK_SKEW_SECS)
            .is_err());
        assert!(
            replays
                .first_time("v0=ab", now + 2 * MAX_CLOCK_SKEW_SECS + 2)
                .is_ok(),
            "outside the window the signature check refuses it; the memory may go"
        );
        assert_eq!(replays.seen.lock().unwrap().len(), 1, "old entries leave");
    }
}
