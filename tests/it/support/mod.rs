//! Shared test fixtures: real containers, a fake Slack, the app on port 0.
#![allow(dead_code)] // each test module uses a different subset of the fixtures
#![allow(unreachable_pub)] // a test binary exports nothing; `pub` marks what the fixtures offer

pub mod alertmanager;
pub mod app;
pub mod barrier;
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
pub mod wait;
