//! The PagerDuty output settings: notes on PagerDuty incidents (REST API) and Events API v2.
//! Each output is off until its settings are given.

use super::check::{http_url, text, Check};
use super::SettingsArgs;
use crate::notify::pagerduty::PagerDutyConfig;

/// The PagerDuty outputs, noting a bad URL.
pub(super) fn load(args: &SettingsArgs, check: &mut Check<'_>) -> PagerDutyConfig {
    PagerDutyConfig {
        api_url: check.parse(
            "pagerduty_api_url",
            &args.pagerduty_api_url,
            "https://api.pagerduty.com",
            http_url,
        ),
        api_token: args.pagerduty_api_token.as_ref().and_then(|s| s.given()),
        from: text(&args.pagerduty_from),
        events_url: check.parse(
            "pagerduty_events_url",
            &args.pagerduty_events_url,
            "https://events.pagerduty.com",
            http_url,
        ),
        routing_key: args.pagerduty_routing_key.as_ref().and_then(|s| s.given()),
    }
}
