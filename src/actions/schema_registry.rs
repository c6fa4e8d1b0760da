//! `schema_registry_versions`: the registered versions of one Confluent Schema Registry subject.
//!
//! `GET <url>/subjects/<subject>/versions` answers `[1,2,3]`, or 404 with
//! `{"error_code":40401,"message":"Subject 'x' not found."}`. The subject usually comes from an
//! alert label, so it is added as ONE percent-encoded path segment: a `/`, `?` or `#` in it
//! cannot change which resource is asked for, and `.`/`..` (which URL parsers collapse even
//! when encoded) are refused outright.

use async_trait::async_trait;
use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::{ActionCtx, ActionError, StepEnv, StepKind, StepOutput};
use crate::template::Tmpl;

/// Registry answers are a short JSON list; anything larger than this is not one.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Lists the versions registered under `subject`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRegistryVersions {
    /// The registry's base URL, e.g. `{{ config.schema_registry_url }}`.
    pub url: Tmpl,
    /// The subject, e.g. `market.crypto.trades.{{ alert.labels.source }}.raw-value`.
    pub subject: Tmpl,
}

/// The typed outputs of [`SchemaRegistryVersions`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemaRegistryVersionsOutput {
    /// The rendered subject.
    pub subject: String,
    /// Its version numbers, ascending.
    pub versions: Vec<i64>,
    /// The highest version (null if the registry listed none).
    pub latest_version: Option<i64>,
    /// How many versions are registered.
    pub count: usize,
}

const OUTPUTS: &[&str] = &["subject", "versions", "latest_version", "count"];

/// Builds `<base>/subjects/<subject>/versions` with `subject` as a single encoded segment.
///
/// # Errors
/// When `base` is not an http(s) URL, or `subject` is empty, `.` or `..`.
pub fn versions_url(base: &str, subject: &str) -> Result<Url, String> {
    if matches!(subject, "" | "." | "..") {
        return Err(format!(
            "subject {subject:?} cannot name a registry subject"
        ));
    }
    let mut url = Url::parse(base.trim()).map_err(|e| format!("url {base:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("url {base:?}: only http and https are supported"));
    }
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| format!("url {base:?} cannot carry a path"))?
        .pop_if_empty()
        .push("subjects")
        .push(subject)
        .push("versions");
    Ok(url)
}

/// Reads a registry answer: a 2xx JSON list of versions, or the registry's error message.
///
/// # Errors
/// A one-line reason: the registry's `message` (with its `error_code`) for an error status,
/// or what was wrong with the body.
pub fn parse_versions(status: u16, body: &str) -> Result<Vec<i64>, String> {
    #[derive(Deserialize)]
    struct RegistryError {
        error_code: Option<i64>,
        message: Option<String>,
    }
    if !(200..300).contains(&status) {
        let detail = match serde_json::from_str::<RegistryError>(body) {
            Ok(RegistryError {
                error_code: Some(code),
                message: Some(message),
            }) => format!("{message} (error {code})"),
            _ => body.split_whitespace().collect::<Vec<_>>().join(" "),
        };
        return Err(format!("schema registry answered {status}: {detail}"));
    }
    let mut versions: Vec<i64> = serde_json::from_str(body).map_err(|e| {
        format!("schema registry answered {status} but not a list of versions: {e}")
    })?;
    versions.sort_unstable();
    Ok(versions)
}

#[async_trait]
impl StepKind for SchemaRegistryVersions {
    fn name(&self) -> &'static str {
        "schema_registry_versions"
    }

    fn outputs(&self) -> &'static [&'static str] {
        OUTPUTS
    }

    fn templates_mut(&mut self) -> Vec<(&'static str, &mut Tmpl)> {
        vec![("url", &mut self.url), ("subject", &mut self.subject)]
    }

    fn plan(&self, env: &StepEnv<'_>) -> Result<String, ActionError> {
        let url = versions_url(&env.render(&self.url)?, &env.render(&self.subject)?)
            .map_err(ActionError::Failed)?;
        Ok(format!("GET {url}"))
    }

    async fn run(&self, ctx: &ActionCtx, env: &StepEnv<'_>) -> Result<StepOutput, ActionError> {
        let subject = env.render(&self.subject)?;
        let url = versions_url(&env.render(&self.url)?, &subject).map_err(ActionError::Failed)?;
        // The shared GET: transport failures become one-line errors; the registry's own error
        // bodies are read by `parse_versions`.
        let (status, body) = super::api::get(&ctx.http, url.as_str(), &[]).await?;
        if body.len() > MAX_BODY_BYTES {
            return Err(ActionError::Failed(format!(
                "GET {url}: {} byte answer is not a version list",
                body.len()
            )));
        }
        let versions = parse_versions(status.as_u16(), &body).map_err(ActionError::Failed)?;
        let latest_version = versions.last().copied();
        let summary = match latest_version {
            Some(v) => format!("{subject}: {} versions, latest {v}", versions.len()),
            None => format!("{subject}: no versions registered"),
        };
        let typed = SchemaRegistryVersionsOutput {
            subject,
            count: versions.len(),
            versions,
            latest_version,
        };
        Ok(StepOutput::from_typed(&typed, summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/schema_registry/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn answers_parse_from_fixtures() {
        // (fixture, HTTP status, versions or the error)
        type Case<'a> = (&'a str, u16, Result<&'a [i64], &'a str>);
        let cases: &[Case<'_>] = &[
            ("versions.json", 200, Ok(&[1, 2, 3])),
            ("unsorted.json", 200, Ok(&[1, 4, 7])),
            ("empty.json", 200, Ok(&[])),
            (
                "subject_not_found.json",
                404,
                Err(
                    "schema registry answered 404: Subject 'market.crypto.trades.x.raw-value' \
                     not found. (error 40401)",
                ),
            ),
            (
                "html_error.html",
                502,
                Err("schema registry answered 502: <html><body>Bad Gateway</body></html>"),
            ),
        ];
        for (name, status, want) in cases {
            let got = parse_versions(*status, &fixture(name));
            match (want, &got) {
                (Ok(v), Ok(g)) => assert_eq!(g.as_slice(), *v, "{name}"),
                (Err(w), Err(g)) => assert_eq!(g, w, "{name}"),
                _ => panic!("{name}: got {got:?}"),
            }
        }
        assert!(parse_versions(200, "{\"versions\":[1]}").is_err());
    }

    #[test]
    fn the_subject_is_one_path_segment() {
        let cases = [
            (
                "http://registry:8081",
                "market.crypto.trades.binance.raw-value",
                "http://registry:8081/subjects/market.crypto.trades.binance.raw-value/versions",
            ),
            (
                "http://registry:8081/",
                "a/../../config",
                "http://registry:8081/subjects/a%2F..%2F..%2Fconfig/versions",
            ),
            (
                "https://r.example/sr/?x=1",
                "x?y#z",
                "https://r.example/sr/subjects/x%3Fy%23z/versions",
            ),
            (
                "http://registry:8081",
                "../..",
                "http://registry:8081/subjects/..%2F../versions",
            ),
        ];
        for (base, subject, want) in cases {
            let url = versions_url(base, subject).expect("valid");
            assert_eq!(url.as_str(), want, "{subject}");
            let segments: Vec<&str> = url.path_segments().expect("has a path").collect();
            assert_eq!(segments[segments.len() - 3], "subjects", "{subject}");
            assert_eq!(segments.last(), Some(&"versions"), "{subject}");
        }
        for subject in ["", ".", ".."] {
            assert!(
                versions_url("http://r:8081", subject).is_err(),
                "{subject:?}"
            );
        }
        assert!(versions_url("file:///etc", "x").is_err());
        assert!(versions_url("not a url", "x").is_err());
    }

    #[test]
    fn output_keys_equal_outputs() {
        let typed = SchemaRegistryVersionsOutput {
            subject: "s".into(),
            versions: vec![1],
            latest_version: Some(1),
            count: 1,
        };
        let out = StepOutput::from_typed(&typed, String::new());
        let mut got: Vec<&str> = out.fields.keys().map(String::as_str).collect();
        let mut want = OUTPUTS.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
        let step: SchemaRegistryVersions =
            serde_yaml_ng::from_str("url: http://r\nsubject: s").expect("YAML");
        assert!(!step.destructive());
        assert!(
            serde_yaml_ng::from_str::<SchemaRegistryVersions>("url: u\nsubject: s\nx: 1").is_err()
        );
    }
}
