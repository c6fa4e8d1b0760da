//! The Grafana annotation settings: where Grafana is, the service account token, the
//! dashboard, and where people open this service (for links). Off until URL and token are given.

use clap::Args;
use secrecy::SecretString;

use super::ConfigError;
use crate::notify::grafana::GrafanaConfig;

/// Grafana settings as given on the command line or in the environment.
#[derive(Clone, Default, Args)]
pub struct GrafanaArgs {
    /// Grafana's base URL; with GRAFANA_API_TOKEN every run leaves an annotation there.
    #[arg(long = "grafana-url", env = "GRAFANA_URL")]
    pub grafana_url: Option<String>,
    /// Grafana service account token (Editor, or annotations:write), sent as a Bearer token.
    #[arg(
        long = "grafana-api-token",
        env = "GRAFANA_API_TOKEN",
        hide_env_values = true
    )]
    pub grafana_api_token: Option<String>,
    /// The dashboard annotations belong to [default: none: organization annotations, shown on
    /// every dashboard whose annotation query asks for the `alert-responder` tag].
    #[arg(long = "grafana-dashboard-uid", env = "GRAFANA_DASHBOARD_UID")]
    pub grafana_dashboard_uid: Option<String>,
    /// Where people open this service, e.g. `https://responder.example`: annotations link to
    /// incident pages under it [default: no link].
    #[arg(long = "public-url", env = "RESPONDER_PUBLIC_URL")]
    pub public_url: Option<String>,
}

// Written by hand so the token, a plain string until validated, never reaches a log.
impl std::fmt::Debug for GrafanaArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrafanaArgs")
            .field("grafana_url", &self.grafana_url)
            .field(
                "grafana_api_token",
                &self.grafana_api_token.as_ref().map(|_| "[redacted]"),
            )
            .field("grafana_dashboard_uid", &self.grafana_dashboard_uid)
            .field("public_url", &self.public_url)
            .finish()
    }
}

/// The same settings from the `--config` file, in [`GrafanaArgs`] order.
pub(super) type FileValues = [Option<String>; 4];

/// Flag/env over file; `None` (annotations off) unless both URL and token are given.
pub(super) fn load(
    args: &GrafanaArgs,
    file: FileValues,
) -> Result<Option<GrafanaConfig>, ConfigError> {
    let [url, api_token, dashboard_uid, public_url] = file;
    let pick = |a: &Option<String>, f: Option<String>| a.clone().or(f).filter(|s| !s.is_empty());
    let trimmed = |s: String| s.trim_end_matches('/').to_owned();
    let (Some(url), Some(token)) = (
        pick(&args.grafana_url, url),
        pick(&args.grafana_api_token, api_token),
    ) else {
        return Ok(None);
    };
    let parsed = reqwest::Url::parse(&url).map_err(|e| ConfigError::Invalid {
        key: "GRAFANA_URL",
        reason: format!("{url:?} is not a URL like http://grafana:3000: {e}"),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ConfigError::Invalid {
            key: "GRAFANA_URL",
            reason: format!("{url:?}: use an http or https URL"),
        });
    }
    Ok(Some(GrafanaConfig {
        url: trimmed(url),
        token: SecretString::from(token),
        dashboard_uid: pick(&args.grafana_dashboard_uid, dashboard_uid),
        public_url: pick(&args.public_url, public_url).map(trimmed),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_need_url_and_token_and_a_bad_url_is_an_error() {
        let none = [None, None, None, None];
        assert!(load(&GrafanaArgs::default(), none.clone())
            .expect("valid")
            .is_none());
        let url_only = GrafanaArgs {
            grafana_url: Some("http://grafana:3000".into()),
            ..GrafanaArgs::default()
        };
        assert!(load(&url_only, none.clone()).expect("valid").is_none());
        let file = [
            None,
            Some("glsa_file".into()),
            Some("dash1".into()),
            Some("https://responder.example/".into()),
        ];
        let config = load(&url_only, file)
            .expect("valid")
            .expect("on with URL and token");
        assert_eq!(config.url, "http://grafana:3000");
        assert_eq!(config.dashboard_uid.as_deref(), Some("dash1"));
        assert_eq!(
            config.public_url.as_deref(),
            Some("https://responder.example")
        );
        let bad = GrafanaArgs {
            grafana_url: Some("grafana:3000".into()),
            grafana_api_token: Some("t".into()),
            ..GrafanaArgs::default()
        };
        assert!(load(&bad, none).is_err());
        let shown = format!(
            "{:?}",
            GrafanaArgs {
                grafana_api_token: Some("glsa_secret".into()),
                ..bad
            }
        );
        assert!(!shown.contains("glsa_secret"), "{shown}");
    }
}
