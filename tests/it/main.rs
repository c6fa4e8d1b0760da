//! The one integration-test binary: every module below runs against real parts
//! (Docker engine, Alertmanager) or protocol-faithful fakes (Slack).

mod support;

mod cli;
mod docker_actions;
mod high_memory;
mod slack_client;
