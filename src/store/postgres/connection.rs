//! Opening the database: the pool, its per-session settings, and the schema.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use super::PostgresStore;
use crate::store::{StoreError, StoreOptions};

/// How long a caller waits for a connection: a database that is down answers with an error
/// this quickly (`/readyz` says 503) instead of holding webhooks and probes.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host/db?sslmode=…`; every option of libpq's URL
    /// form that sqlx knows is honoured) and applies the schema. Replicas starting together
    /// are safe: the migrator holds an advisory lock while it applies.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let pool = pool(url, options, false).await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self {
            pool,
            owner: crate::store::new_owner().into(),
            lease: options.lease,
        })
    }

    /// Connects without applying the schema, for commands that must change nothing
    /// (`simulate`, `incidents`): every session is read-only, so any write fails. `Ok(None)`
    /// when the schema is not there yet (nothing was ever recorded).
    pub async fn open_read_only(url: &str) -> Result<Option<Self>, StoreError> {
        let options = StoreOptions {
            pool_size: 2,
            ..StoreOptions::default()
        };
        let pool = pool(url, &options, true).await?;
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('journal') IS NOT NULL")
            .fetch_one(&pool)
            .await?;
        if !exists {
            pool.close().await;
            return Ok(None);
        }
        Ok(Some(Self {
            pool,
            owner: crate::store::new_owner().into(),
            lease: options.lease,
        }))
    }
}

/// The pool. Connections that died with a restart of PostgreSQL are found out when given back
/// (sqlx pings every connection on release and drops a broken one) and replaced, so the pool
/// heals by itself. No ping when taken: that would be a second round trip on every
/// acknowledgement, and a connection that broke while idle fails its first query, which is
/// retried like any other store error.
async fn pool(url: &str, options: &StoreOptions, read_only: bool) -> Result<PgPool, StoreError> {
    let timeout = options.statement_timeout.as_millis().max(1).to_string();
    let mut settings = vec![("statement_timeout", timeout)];
    if read_only {
        settings.push(("default_transaction_read_only", "on".to_owned()));
    }
    let mut connect = PgConnectOptions::from_str(url)?.options(settings);
    // Named in pg_stat_activity, unless the URL names it otherwise.
    if connect.get_application_name().is_none() {
        connect = connect.application_name("alert-responder");
    }
    Ok(PgPoolOptions::new()
        .max_connections(options.pool_size.max(1))
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .connect_with(connect)
        .await?)
}
