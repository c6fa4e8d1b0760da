//! The PagerDuty output settings: notes on PagerDuty incidents (REST API) and Events API v2.
//! Each output is off until its settings are given.

use clap::Args;
use secrecy::SecretString;

use crate::notify::pagerduty::PagerDutyConfig;

/// PagerDuty output settings as given on the command line or in the environment.
#[derive(Clone, Default, Args)]
pub struct PagerDutyArgs {
    /// PagerDuty REST API token: incidents' labels are read from their first alert's details;
    /// with PAGERDUTY_FROM, runs on PagerDuty incidents end with a note on them.
    #[arg(
        long = "pagerduty-api-token",
        env = "PAGERDUTY_API_TOKEN",
        hide_env_values = true
    )]
    pub api_token: Option<String>,
    /// Email of the PagerDuty user notes are written as (the `From` header).
    #[arg(long = "pagerduty-from", env = "PAGERDUTY_FROM")]
    pub from: Option<String>,
    /// PagerDuty REST API base URL [default: https://api.pagerduty.com].
    #[arg(long = "pagerduty-api-url", env = "PAGERDUTY_API_URL")]
    pub api_url: Option<String>,
    /// Events API v2 integration key; escalations of other incidents trigger PagerDuty events.
    #[arg(
        long = "pagerduty-routing-key",
        env = "PAGERDUTY_ROUTING_KEY",
        hide_env_values = true
    )]
    pub routing_key: Option<String>,
    /// PagerDuty Events API base URL [default: https://events.pagerduty.com].
    #[arg(long = "pagerduty-events-url", env = "PAGERDUTY_EVENTS_URL")]
    pub events_url: Option<String>,
}

// Written by hand so the token and key, plain strings until validated, never reach a log.
impl std::fmt::Debug for PagerDutyArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |s: &Option<String>| s.as_ref().map(|_| "[redacted]");
        f.debug_struct("PagerDutyArgs")
            .field("api_token", &redacted(&self.api_token))
            .field("from", &self.from)
            .field("api_url", &self.api_url)
            .field("routing_key", &redacted(&self.routing_key))
            .field("events_url", &self.events_url)
            .finish()
    }
}

/// The same settings from the `--config` file, in [`PagerDutyArgs`] order.
pub(super) type FileValues = [Option<String>; 5];

/// Flag/env over file over default; URLs without a trailing slash.
pub(super) fn load(args: &PagerDutyArgs, file: FileValues) -> PagerDutyConfig {
    let [api_token, from, api_url, routing_key, events_url] = file;
    let pick = |a: &Option<String>, f: Option<String>| a.clone().or(f).filter(|s| !s.is_empty());
    let url = |a: &Option<String>, f: Option<String>, default: &str| {
        pick(a, f)
            .unwrap_or_else(|| default.to_owned())
            .trim_end_matches('/')
            .to_owned()
    };
    PagerDutyConfig {
        api_url: url(&args.api_url, api_url, "https://api.pagerduty.com"),
        api_token: pick(&args.api_token, api_token).map(SecretString::from),
        from: pick(&args.from, from),
        events_url: url(&args.events_url, events_url, "https://events.pagerduty.com"),
        routing_key: pick(&args.routing_key, routing_key).map(SecretString::from),
    }
}
