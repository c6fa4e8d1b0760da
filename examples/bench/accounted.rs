//! Waiting until a system has done everything its acks promised: read from the responder's own
//! database (SQLite or PostgreSQL, same schema and query), or from the peer's count file.

use std::time::{Duration, Instant};

use crate::system::Running;

/// How long the accounted count may stand still before the bench stops waiting.
const STALLED: Duration = Duration::from_secs(30);

/// What is left to do, polled often: each count is served by an index on both backends
/// (on PostgreSQL a count of *processed* entries is a scan of the whole journal, which would
/// take CPU from the system under test every poll).
const BACKLOG: &str = "SELECT (SELECT count(*) FROM journal WHERE processed = 0),
                              (SELECT count(*) FROM runs WHERE state IN ('pending', 'running')),
                              (SELECT count(*) FROM outbox WHERE state = 'pending')";

/// What was done, read once the backlog is empty: processed entries, runs, budget uses
/// (restart attempts).
const DONE: &str = "SELECT (SELECT count(*) FROM journal WHERE processed = 1),
                           (SELECT count(*) FROM runs),
                           (SELECT count(*) FROM budget_uses)";

/// When the first `restart` step (the bench playbook's destructive step) began, as the
/// responder recorded it (RFC 3339, written before the step acts).
const RESTART_STARTED: &str = "SELECT min(started_at) FROM steps WHERE step_id = 'restart'";

/// Alerts recorded against incidents (one per distinct alert here).
const ALERTS: &str = "SELECT count(*) FROM alerts";

#[derive(Debug, Default)]
pub(crate) struct Accounted {
    pub(crate) processed: u64,
    pub(crate) runs: u64,
    pub(crate) restarts: u64,
}

/// Where the count comes from.
pub(crate) enum Source {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
    /// The peer's count file, one line per command run.
    Lines,
}

impl Source {
    pub(crate) async fn open(sys: &Running) -> Self {
        match &sys.database_url {
            Some(url) if url.starts_with("sqlite:") => Self::Sqlite(
                sqlx::SqlitePool::connect(&format!("{url}?mode=ro"))
                    .await
                    .expect("the responder's database opens read-only"),
            ),
            Some(url) => Self::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect(url)
                    .await
                    .expect("the responder's database accepts the bench"),
            ),
            None => Self::Lines,
        }
    }

    /// What is left: the backlog for the responder, alerts acted on for the peer. Progress
    /// is any change of it.
    async fn backlog(&self, sys: &Running) -> (i64, i64, i64) {
        match self {
            Self::Sqlite(pool) => sqlx::query_as(BACKLOG).fetch_one(pool).await,
            Self::Postgres(pool) => sqlx::query_as(BACKLOG).fetch_one(pool).await,
            Self::Lines => Ok((lines(sys) as i64, 0, 0)),
        }
        .unwrap_or((-1, -1, -1))
    }

    /// When the destructive step of the first run began, once it has (responder only).
    pub(crate) async fn restart_started(&self) -> Option<String> {
        let row: Result<(Option<String>,), _> = match self {
            Self::Sqlite(pool) => sqlx::query_as(RESTART_STARTED).fetch_one(pool).await,
            Self::Postgres(pool) => sqlx::query_as(RESTART_STARTED).fetch_one(pool).await,
            Self::Lines => return None,
        };
        row.ok()?.0
    }

    /// Alerts recorded in the responder's database (the peer's: lines of its count file).
    pub(crate) async fn alerts(&self, sys: &Running) -> u64 {
        let row: Result<(i64,), _> = match self {
            Self::Sqlite(pool) => sqlx::query_as(ALERTS).fetch_one(pool).await,
            Self::Postgres(pool) => sqlx::query_as(ALERTS).fetch_one(pool).await,
            Self::Lines => Ok((lines(sys) as i64,)),
        };
        row.map_or(0, |r| r.0 as u64)
    }

    async fn done(&self, sys: &Running) -> Accounted {
        let row: (i64, i64, i64) = match self {
            Self::Sqlite(pool) => sqlx::query_as(DONE).fetch_one(pool).await,
            Self::Postgres(pool) => sqlx::query_as(DONE).fetch_one(pool).await,
            Self::Lines => Ok((lines(sys) as i64, 0, 0)),
        }
        .unwrap_or_default();
        Accounted {
            processed: row.0 as u64,
            runs: row.1 as u64,
            restarts: row.2 as u64,
        }
    }
}

fn lines(sys: &Running) -> u64 {
    std::fs::read_to_string(sys.dir.join("count.txt")).map_or(0, |s| s.lines().count() as u64)
}

/// Waits until `want` alerts are accounted for (`u64::MAX`: until the backlog is empty): for
/// the responder, every journal entry recorded against its incident, every run finished and
/// every Slack message sent; for the peer, its command ran once per alert.
pub(crate) async fn wait_accounted(sys: &Running, want: u64, limit: Duration) -> Accounted {
    let deadline = Instant::now() + limit;
    let source = Source::open(sys).await;
    let mut last = ((-1, -1, -1), Instant::now());
    loop {
        let backlog = source.backlog(sys).await;
        let idle = match source {
            Source::Lines => want == u64::MAX || backlog.0 as u64 >= want,
            _ => backlog == (0, 0, 0),
        };
        if idle {
            let now = source.done(sys).await;
            if want == u64::MAX || now.processed >= want {
                return now;
            }
        }
        if backlog != last.0 {
            last = (backlog, Instant::now());
        }
        // A system that dropped work (webhook loses commands it could not spawn) never gets
        // there: stop once nothing has moved for a while.
        if Instant::now() > deadline || last.1.elapsed() > STALLED {
            let now = source.done(sys).await;
            eprintln!("  gave up waiting: {now:?}, backlog {backlog:?}");
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
