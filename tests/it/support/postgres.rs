//! PLACEHOLDER until branch `harness` lands: the signatures of its PostgreSQL harness, so the
//! replica tests compile. Every function fails the test; the merge replaces this file whole.

/// A PostgreSQL server of the tests' own (placeholder).
#[derive(Debug)]
pub struct PgServer {}

impl PgServer {
    /// Placeholder: fails.
    pub fn start() -> Self {
        panic!("the PostgreSQL harness (branch `harness`) is not merged into this branch yet")
    }

    /// Placeholder.
    pub fn url(&self, _db: &str) -> String {
        unreachable!()
    }

    /// Placeholder.
    pub fn create_database(&self, _db: &str) {
        unreachable!()
    }

    /// Placeholder.
    pub fn stop(&mut self) {
        unreachable!()
    }

    /// Placeholder.
    pub fn start_again(&mut self) {
        unreachable!()
    }

    /// Placeholder.
    pub fn log(&self) -> String {
        unreachable!()
    }
}

/// Placeholder: fails.
pub fn fresh_database() -> String {
    panic!("the PostgreSQL harness (branch `harness`) is not merged into this branch yet")
}
