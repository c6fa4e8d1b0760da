//! What the log says while a destination is not taking messages: one line when the outage
//! begins, with counts, then at most one summary a minute, then one when it ends.
//!
//! Every pending message is retried on its own schedule; a line per attempt would write
//! megabytes a minute during a long outage with thousands waiting, and bury everything else.

use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::store::Store;

/// How often a continuing outage is summarized.
pub(super) const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// What one delivery round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Round {
    /// Messages the destination accepted.
    pub(super) delivered: u64,
    /// Attempts that failed and will be retried.
    pub(super) failed: u64,
    /// The last of those failures, for the log.
    pub(super) error: Option<String>,
}

/// A line to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Line {
    /// The first failed round after deliveries worked.
    Began {
        /// Attempts that failed in that round.
        failed: u64,
        /// Why.
        error: String,
    },
    /// The outage goes on.
    Continues {
        /// For how long.
        since: Duration,
        /// Attempts that failed since the last line.
        failed: u64,
        /// The latest reason.
        error: String,
    },
    /// A round delivered and nothing failed.
    Ended {
        /// How long it lasted.
        lasted: Duration,
        /// Attempts that failed in all.
        failed: u64,
    },
}

/// The outage state of one destination's delivery loop.
#[derive(Debug, Default)]
pub(super) struct Outage {
    since: Option<Instant>,
    last_line: Option<Instant>,
    failed_since_line: u64,
    failed_total: u64,
}

impl Outage {
    /// Takes one round's result at `now`; returns the line to log, if one is due.
    pub(super) fn record(&mut self, now: Instant, round: &Round) -> Option<Line> {
        let error = round.error.clone().unwrap_or_default();
        match self.since {
            None if round.failed > 0 => {
                self.since = Some(now);
                self.last_line = Some(now);
                self.failed_since_line = 0;
                self.failed_total = round.failed;
                Some(Line::Began {
                    failed: round.failed,
                    error,
                })
            }
            None => None,
            Some(since) if round.failed == 0 && round.delivered > 0 => {
                self.since = None;
                Some(Line::Ended {
                    lasted: now.duration_since(since),
                    failed: self.failed_total,
                })
            }
            Some(since) => {
                self.failed_since_line += round.failed;
                self.failed_total += round.failed;
                let last = self.last_line.unwrap_or(since);
                if round.failed == 0 || now.duration_since(last) < SUMMARY_EVERY {
                    return None;
                }
                self.last_line = Some(now);
                let failed = std::mem::take(&mut self.failed_since_line);
                Some(Line::Continues {
                    since: now.duration_since(since),
                    failed,
                    error,
                })
            }
        }
    }

    /// Whether an outage is going on.
    #[cfg(test)]
    fn ongoing(&self) -> bool {
        self.since.is_some()
    }
}

/// Logs a line of an outage, with how many messages wait (a cheap indexed count).
pub(super) async fn log(store: &dyn Store, line: Line) {
    let waiting = match store.gauges(OffsetDateTime::now_utc()).await {
        Ok(g) => g.outbox_pending.to_string(),
        Err(_) => "unknown".to_owned(),
    };
    match line {
        Line::Began { failed, error } => tracing::warn!(
            failed,
            waiting,
            error.message = %error,
            "Slack is not taking messages; they wait in the outbox and are retried. A summary follows each minute while it lasts."
        ),
        Line::Continues {
            since,
            failed,
            error,
        } => tracing::warn!(
            since_secs = since.as_secs(),
            failed,
            waiting,
            error.message = %error,
            "Slack is still not taking messages."
        ),
        Line::Ended { lasted, failed } => tracing::info!(
            lasted_secs = lasted.as_secs(),
            failed,
            waiting,
            "Slack takes messages again; the outbox drains."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(n: u64) -> Round {
        Round {
            delivered: 0,
            failed: n,
            error: Some("slack down".into()),
        }
    }

    fn delivered(n: u64) -> Round {
        Round {
            delivered: n,
            ..Round::default()
        }
    }

    #[test]
    fn an_outage_is_one_line_then_a_summary_a_minute_then_its_end() {
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let mut outage = Outage::default();
        assert_eq!(outage.record(at(0), &delivered(3)), None);
        assert_eq!(
            outage.record(at(1), &failed(32)),
            Some(Line::Began {
                failed: 32,
                error: "slack down".into()
            })
        );
        // Many rounds, many attempts each, within the minute: nothing more.
        for secs in 2..61 {
            assert_eq!(outage.record(at(secs), &failed(32)), None, "at {secs}s");
        }
        assert_eq!(
            outage.record(at(61), &failed(32)),
            Some(Line::Continues {
                since: Duration::from_secs(60),
                failed: 60 * 32,
                error: "slack down".into()
            })
        );
        assert_eq!(outage.record(at(90), &failed(1)), None);
        // A round with nothing due says nothing either way.
        assert_eq!(outage.record(at(95), &Round::default()), None);
        assert!(outage.ongoing());
        assert_eq!(
            outage.record(at(100), &delivered(5)),
            Some(Line::Ended {
                lasted: Duration::from_secs(99),
                failed: 32 + 60 * 32 + 1
            })
        );
        assert!(!outage.ongoing());
        assert_eq!(outage.record(at(101), &delivered(1)), None);
    }

    #[test]
    fn a_round_that_delivers_some_and_fails_others_keeps_the_outage() {
        let start = Instant::now();
        let mut outage = Outage::default();
        assert!(outage.record(start, &failed(2)).is_some());
        let mixed = Round {
            delivered: 1,
            failed: 1,
            error: Some("rate limited".into()),
        };
        assert_eq!(outage.record(start + Duration::from_secs(5), &mixed), None);
        assert!(outage.ongoing());
    }
}
