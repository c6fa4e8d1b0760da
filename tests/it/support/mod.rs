//! Shared test fixtures: real containers, a fake Slack, the app on port 0.
#![allow(dead_code)] // each test module uses a different subset of the fixtures
#![allow(unreachable_pub)] // a test binary exports nothing; `pub` marks what the fixtures offer

pub mod alertmanager;
pub mod app;
pub mod binary;
pub mod docker;
pub mod fake_grafana;
pub mod fake_pagerduty;
pub mod fake_slack;
pub mod postgres;
pub mod psql;
pub mod replicas;
pub mod slack;
pub mod step;
pub mod tls;

/// The URL of the intake journal's own file for the SQLite database at `database_url`: the
/// journal's rows live there, beside the main file (whose `journal` table only says which
/// entries are recorded).
pub fn journal_url(database_url: &str) -> String {
    let rest = database_url
        .strip_prefix("sqlite://")
        .unwrap_or_else(|| panic!("{database_url} is not a SQLite URL"));
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let file = alert_responder::store::sqlite_journal_file(std::path::Path::new(path));
    match query {
        "" => format!("sqlite://{}", file.display()),
        query => format!("sqlite://{}?{query}", file.display()),
    }
}
