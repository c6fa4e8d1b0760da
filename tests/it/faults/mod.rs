//! Faults: the service under a crash, a Slack outage, a missing or hung Docker engine, a full
//! store, an alert storm and a shutdown. Each test injects the fault for real (SIGKILL to the
//! real binary, a socket that never answers, a filesystem that is full) and checks what
//! the record, Slack and the HTTP answers say afterwards. RELIABILITY.md reports them.

mod crash;
mod docker_down;
mod load;
mod shutdown;
mod store_full;
mod storm;
mod unacted_storm;

use std::path::{Path, PathBuf};

use crate::support::app::catalog_dir;
use crate::support::binary::binary;

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

/// Every row of a one-column text query, in order.
pub(crate) async fn query_strings(database_url: &str, sql: &str) -> Vec<String> {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(database_url)
        .await
        .expect("the database opens");
    sqlx::query_scalar(sql)
        .fetch_all(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
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

/// `alert-responder serve` in `dir` on `port`, with `catalog`, its database in `dir`, and no
/// OOM watching (other tests' containers die too); callers add their own settings.
pub(crate) fn serve_command(
    dir: &Path,
    port: u16,
    catalog: &(PathBuf, PathBuf),
) -> std::process::Command {
    let mut cmd = binary(dir);
    cmd.arg("serve")
        .arg("--routes-dir")
        .arg(&catalog.0)
        .arg("--responders-dir")
        .arg(&catalog.1)
        .env("RESPONDER_LISTEN", format!("127.0.0.1:{port}"))
        .env("RESPONDER_DATABASE_URL", database_url(dir))
        .env("RESPONDER_OOM_CONTAINERS", "^$");
    cmd
}

/// The database [`serve_command`] uses.
pub(crate) fn database_url(dir: &Path) -> String {
    format!("sqlite://{}/responder.db", dir.display())
}

/// Posted messages grouped by thread (the parent's ts), parents included.
pub(crate) fn threads(
    messages: &[crate::support::fake_slack::Recorded],
) -> std::collections::BTreeMap<String, usize> {
    let mut threads = std::collections::BTreeMap::new();
    for m in messages {
        let key = m.thread_ts.clone().unwrap_or_else(|| m.ts.clone());
        *threads.entry(key).or_default() += 1;
    }
    threads
}
