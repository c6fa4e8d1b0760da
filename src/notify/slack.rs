//! Slack Web API client (to be written).
