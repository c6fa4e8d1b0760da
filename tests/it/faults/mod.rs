//! Faults: the service under a crash, a Slack outage, a missing or hung Docker engine, a full
//! store, an alert storm and a shutdown. Each test injects the fault for real (SIGKILL to the
//! real binary, a socket that never answers, a filesystem that is full) and checks what
//! the record, Slack and the HTTP answers say afterwards. RELIABILITY.md reports them.

mod crash;
mod docker_down;
mod load;
mod shutdown;
mod store_full;

use std::path::{Path, PathBuf};

use crate::support::app::catalog_dir;

/// A catalog with one route, `alertname="<alertname>"` to responder `name`, written in `dir`.
pub(crate) fn one_route(
    dir: &Path,
    alertname: &str,
    name: &str,
    responder: &str,
) -> (PathBuf, PathBuf) {
    catalog_dir(
        dir,
        &format!("routes:\n  - matchers: ['alertname=\"{alertname}\"']\n    responder: {name}\n"),
        &[(name, responder)],
    )
}

/// One value from the database at `database_url` (a second connection, as an operator's
/// `sqlite3` would be).
pub(crate) async fn query_i64(database_url: &str, sql: &str) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(database_url)
        .await
        .expect("the database opens");
    sqlx::query_scalar(sql)
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}
