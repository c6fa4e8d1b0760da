//! The Grafana annotation settings: where Grafana is, the service account token, the
//! dashboard, and where people open this service (for links). Off until URL and token are given.

use super::check::{http_url, text, Check};
use super::SettingsArgs;
use crate::notify::grafana::GrafanaConfig;

/// `None` (annotations off) unless both URL and token are given; a bad URL is noted.
pub(super) fn load(
    args: &SettingsArgs,
    public_url: Option<&String>,
    check: &mut Check<'_>,
) -> Option<GrafanaConfig> {
    let url = check.parse_given("grafana_url", &args.grafana_url, http_url)?;
    let token = args.grafana_api_token.as_ref().and_then(|s| s.given())?;
    Some(GrafanaConfig {
        url,
        token,
        dashboard_uid: text(&args.grafana_dashboard_uid),
        public_url: public_url.cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::Settings;
    use super::*;

    #[test]
    fn annotations_need_url_and_token_and_a_bad_url_is_an_error() {
        let none = Settings::load(&SettingsArgs::default()).unwrap();
        assert!(none.grafana.is_none());
        let url_only = SettingsArgs {
            grafana_url: Some("http://grafana:3000/".into()),
            ..SettingsArgs::default()
        };
        assert!(Settings::load(&url_only).unwrap().grafana.is_none());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        let file = "grafana_api_token: glsa_file\ngrafana_dashboard_uid: dash1\npublic_url: https://responder.example/\n";
        std::fs::write(&path, file).unwrap();
        let with_file = SettingsArgs {
            config: Some(path),
            ..url_only
        };
        let config = Settings::load(&with_file)
            .unwrap()
            .grafana
            .expect("on with URL and token");
        assert_eq!(config.url, "http://grafana:3000");
        assert_eq!(config.dashboard_uid.as_deref(), Some("dash1"));
        assert_eq!(
            config.public_url.as_deref(),
            Some("https://responder.example")
        );
        let bad = SettingsArgs {
            grafana_url: Some("grafana:3000".into()),
            grafana_api_token: Some("glsa_secret".into()),
            ..SettingsArgs::default()
        };
        let err = Settings::load(&bad).unwrap_err().to_string();
        assert!(err.contains("GRAFANA_URL=grafana:3000"), "{err}");
        let shown = format!("{bad:?} {err}");
        assert!(!shown.contains("glsa_secret"), "{shown}");
    }
}
