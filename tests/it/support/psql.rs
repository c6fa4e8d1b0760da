//! Reading a PostgreSQL database by URL with `psql`, as an operator would from outside the
//! service: the tests check what the replicas agreed on in the one database they share.

use std::process::Command;

/// One database, named by its URL (`postgres://postgres@127.0.0.1:PORT/DB`).
#[derive(Debug, Clone)]
pub struct Database {
    /// The URL the replicas are given.
    pub url: String,
}

impl Database {
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
        }
    }

    /// The rows of `sql`, each a list of its columns as text (NULL as an empty string).
    pub fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        // Unit separator between columns: no value the tests read contains it.
        let out = Command::new("psql")
            .arg(&self.url)
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-F", "\u{1f}", "-c", sql])
            .output()
            .unwrap_or_else(|e| panic!("cannot run psql ({e}); install postgresql-client"));
        assert!(
            out.status.success(),
            "psql {sql:?} on {} failed: {}",
            self.url,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split('\u{1f}').map(str::to_owned).collect())
            .collect()
    }

    /// The first column of every row of `sql`.
    pub fn strings(&self, sql: &str) -> Vec<String> {
        self.rows(sql)
            .into_iter()
            .map(|mut row| row.swap_remove(0))
            .collect()
    }

    /// The one integer `sql` selects.
    pub fn count(&self, sql: &str) -> i64 {
        let values = self.strings(sql);
        assert_eq!(values.len(), 1, "{sql} gave {values:?}");
        values[0]
            .parse()
            .unwrap_or_else(|e| panic!("{sql} gave {:?}: {e}", values[0]))
    }
}

/// `text` as an SQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
