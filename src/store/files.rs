//! Files shared in an incident's thread (the chart of the alert's expression): a Slack reply
//! in the outbox whose `file` column holds the bytes and whose text is the file's title, so it
//! keeps its place in the thread and waits out an outage like any other reply.

/// Queues a reply carrying a file (`$n` placeholders; SQLite reads them as `?n`).
pub(super) const ENQUEUE: &str =
    "INSERT INTO outbox (incident_id, kind, text, state, created_at, file)
     VALUES ($1, 'reply', $2, $3, $4, $5) RETURNING id";

/// The incident's latest chart: its title and bytes.
pub(super) const LATEST: &str = "SELECT text, file FROM outbox
     WHERE incident_id = $1 AND destination = 'slack' AND file IS NOT NULL
     ORDER BY id DESC LIMIT 1";
