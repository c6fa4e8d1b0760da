//! alert-responder: an automated first responder for on-call teams.
//!
//! Flow, downstream only: [`sources`] verify, parse and persist alerts, then ack;
//! [`dispatch`] claims them, routes them ([`routing`]), plans runs and runs [`responders`]
//! whose steps are [`actions`] (Docker, ...) within [`limits`]; everything is recorded in the
//! [`store`] and reported through [`notify`] (one Slack thread per incident, with a [`chart`]
//! of the alert's expression; Grafana annotations). [`app`] wires it.

pub mod actions;
pub mod alert;
pub mod app;
pub mod chart;
pub mod chatops;
pub mod commands;
pub mod config;
pub mod dispatch;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod notify;
pub mod pattern;
pub mod responders;
pub mod routing;
pub mod sources;
pub mod store;
pub mod telemetry;
pub mod template;
pub mod text;
