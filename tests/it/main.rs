//! The one integration-test binary: every module below runs against real parts
//! (Docker engine, Alertmanager) or protocol-faithful fakes (Slack).
// Fixtures and helpers here are test code too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

mod alertmanager_e2e;
mod approvals;
mod attack;
mod bad_input;
mod body_gate;
mod body_memory;
mod charts;
mod checkpoint_corruption;
mod cli;
mod cli_settings;
mod deploy;
mod dlq_checkpoint_actions;
mod docker_actions;
mod docker_events;
mod docs;
mod escalation;
mod faults;
mod grafana;
mod high_memory;
mod hostile_text;
mod lag_actions;
mod metrics;
mod module_graph;
mod oom_responder;
mod page;
mod pagerduty;
mod pagerduty_labels;
mod pagerduty_out;
mod pagerduty_simulate;
mod pagerduty_thread;
mod preemption;
mod replay;
mod replicas;
mod runbook_responders;
mod safety;
mod schedules;
mod simulate;
mod slack_approvals;
mod slack_choices;
mod slack_client;
mod slack_commands;
mod slack_outage;
mod store_conformance;
mod storm_priority;
mod streaming_lag;
mod watches;
mod web_config;
mod webhook;
