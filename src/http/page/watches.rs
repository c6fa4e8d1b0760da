//! What the incident page says of its watches: whether the fix it made held, and whether it
//! is itself the recurrence of an earlier incident's fix.

use serde::Serialize;

use crate::notify::render::compact_duration;
use crate::store::{Watch, WatchState};

/// One line about a watch, with the other incident it links to.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(super) struct WatchLine {
    pub(super) text: String,
    /// The other incident: the recurrence, or the incident whose fix did not hold.
    pub(super) link: Option<i64>,
    /// The run counted as ineffective (shown as an alert).
    pub(super) ineffective: bool,
}

/// The lines of `incident`'s watches, oldest first.
pub(super) fn lines(incident: i64, watches: &[Watch]) -> Vec<WatchLine> {
    watches.iter().map(|w| line(incident, w)).collect()
}

fn line(incident: i64, w: &Watch) -> WatchLine {
    let fix = format!("the fix ({} by {})", w.watch.step, w.watch.responder);
    let window = compact_duration(w.watch.ends_unix - w.watch.acted_unix);
    let after = w
        .recurred_unix
        .map(|at| compact_duration(at - w.watch.acted_unix))
        .unwrap_or_default();
    match (w.state, w.watch.incident_id == incident) {
        (WatchState::Recurred, true) => WatchLine {
            text: format!("Ineffective run: {fix} did not hold; the alert fired again {after} after it, as incident"),
            link: w.recurred_incident,
            ineffective: true,
        },
        (WatchState::Recurred, false) => WatchLine {
            text: format!("A recurrence: {fix} did not hold ({after} after it) in incident"),
            link: Some(w.watch.incident_id),
            ineffective: true,
        },
        (WatchState::Held, _) => WatchLine {
            text: format!("{fix} held: the alert did not fire again within {window}"),
            link: None,
            ineffective: false,
        },
        (WatchState::Watching, _) => WatchLine {
            text: format!("Watching for {window} whether {fix} holds"),
            link: None,
            ineffective: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewWatch;

    fn watch(state: &str, recurred: Option<(i64, i64)>) -> Watch {
        Watch {
            id: 1,
            watch: NewWatch {
                incident_id: 7,
                run_id: 70,
                responder: "high-memory".into(),
                alertname: "HighMemoryUsage".into(),
                target: "k2-api".into(),
                step: "restart".into(),
                acted_unix: 1000,
                ends_unix: 2800,
            },
            state: WatchState::parse(state).expect("a watch state"),
            recurred_incident: recurred.map(|(i, _)| i),
            recurred_unix: recurred.map(|(_, at)| at),
        }
    }

    #[test]
    fn each_side_of_a_recurrence_links_the_other_and_a_quiet_watch_says_it_held() {
        let recurred = watch("recurred", Some((9, 1252)));
        let earlier = lines(7, std::slice::from_ref(&recurred));
        assert_eq!(earlier[0].link, Some(9));
        assert!(earlier[0].ineffective);
        assert!(
            earlier[0]
                .text
                .contains("did not hold; the alert fired again 4m12s after it"),
            "{earlier:?}"
        );
        let later = lines(9, &[recurred]);
        assert_eq!(later[0].link, Some(7));
        assert!(later[0].text.starts_with("A recurrence"), "{later:?}");
        let held = lines(7, &[watch("held", None)]);
        assert_eq!(held[0].link, None);
        assert!(!held[0].ineffective);
        assert!(held[0].text.contains("within 30m"), "{held:?}");
        assert!(lines(7, &[watch("watching", None)])[0]
            .text
            .starts_with("Watching for 30m"));
    }
}
