//! Choosing and opening a backend by the URL scheme of `RESPONDER_DATABASE_URL`.

use std::sync::Arc;
use std::time::Duration;

use super::{PostgresStore, SqliteStore, Store, StoreError};

/// The backends this build has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite://path` (or `sqlite::memory:`): embedded, one process.
    Sqlite,
    /// `postgres://…` or `postgresql://…`: one database for several replicas.
    Postgres,
}

impl Backend {
    /// The backend a URL names, or a one-line error naming the supported schemes.
    pub fn of(url: &str) -> Result<Self, StoreError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(StoreError::Url(format!(
                "unsupported database URL scheme {scheme:?}: use sqlite://PATH (embedded, the default) or postgres://USER@HOST/DB (replicas)"
            ))),
        }
    }
}

/// How to open the store; the defaults suit one replica.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Connections in the pool (PostgreSQL; SQLite keeps one writer and a few readers).
    pub pool_size: u32,
    /// A statement running longer is cancelled by the server (PostgreSQL).
    pub statement_timeout: Duration,
    /// How long a replica holds a run (or a role) without renewing it; a replica that dies
    /// has its runs reported interrupted by another within about this long.
    pub lease: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            pool_size: 10,
            statement_timeout: Duration::from_secs(30),
            lease: Duration::from_secs(15),
        }
    }
}

/// Opens (creating the schema if needed) the store the URL names.
pub async fn connect(url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match Backend::of(url)? {
        Backend::Sqlite => Arc::new(SqliteStore::connect_with(url, options).await?),
        Backend::Postgres => Arc::new(PostgresStore::connect(url, options).await?),
    })
}

/// Opens an existing store for commands that must change nothing (`simulate`, `incidents`):
/// no schema applied, nothing created; `Ok(None)` when there is no database yet.
pub async fn open_read_only(url: &str) -> Result<Option<Arc<dyn Store>>, StoreError> {
    Ok(match Backend::of(url)? {
        Backend::Sqlite => SqliteStore::open_read_only(url)
            .await?
            .map(|s| Arc::new(s) as Arc<dyn Store>),
        Backend::Postgres => PostgresStore::open_read_only(url)
            .await?
            .map(|s| Arc::new(s) as Arc<dyn Store>),
    })
}

/// The URL with any password replaced by `***`, fit for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// A name for this process as the holder of runs and roles: host, pid and a random part, so
/// a restarted process (same host, maybe the same pid in a container) is a new holder.
pub(crate) fn new_owner() -> String {
    use std::hash::{BuildHasher, Hasher};
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".to_owned());
    // RandomState is seeded from the OS's randomness once per process.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        hasher.finish() as u32
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_picks_the_backend_and_anything_else_names_the_supported_ones() {
        assert_eq!(Backend::of("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::of("sqlite::memory:").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::of("postgres://u@h/db?sslmode=require").unwrap(),
            Backend::Postgres
        );
        assert_eq!(Backend::of("postgresql://h/db").unwrap(), Backend::Postgres);
        let e = Backend::of("mysql://h/db").unwrap_err().to_string();
        assert!(
            e.contains("\"mysql\"") && e.contains("sqlite://") && e.contains("postgres://"),
            "{e}"
        );
        assert!(!e.contains('\n'));
    }

    #[test]
    fn passwords_never_reach_a_log() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/responder?sslmode=require"),
            "postgres://app:***@db:5432/responder?sslmode=require"
        );
        assert_eq!(redact_url("postgres://app@db/r"), "postgres://app@db/r");
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
