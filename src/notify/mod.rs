//! Delivery of reports to people: Slack (and later PagerDuty), through the persisted outbox.

pub mod slack;
