//! Validation that goes on past a bad setting: each is parsed, a bad one is noted (as it was
//! given, why, what is allowed) and its default stands in, so every problem of one start is
//! reported together, the way `check` reports the catalog.

use std::fmt;
use std::time::Duration;

use super::layers::Layered;
use super::values::Text;

/// One bad setting: how it was given (never a secret's value) and why it cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The setting as given: `RESPONDER_MAX_RUNS=abc`, or `max_runs: abc (in FILE)`.
    pub setting: String,
    /// What is wrong and what is allowed.
    pub reason: String,
}

impl Problem {
    pub(super) fn new(setting: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.setting, self.reason)
    }
}

/// The problems found so far, and where each setting came from.
pub(super) struct Check<'a> {
    layers: &'a Layered,
    pub(super) problems: Vec<Problem>,
}

impl<'a> Check<'a> {
    pub(super) fn new(layers: &'a Layered, problems: Vec<Problem>) -> Self {
        Self { layers, problems }
    }

    /// Notes that setting `key` (its field name) given as `value` cannot be used.
    pub(super) fn bad(&mut self, key: &str, value: &str, reason: impl Into<String>) {
        let setting = self.layers.label(key, value);
        self.problems.push(Problem::new(setting, reason));
    }

    /// The setting parsed, or (noting why) its default when it is bad; the default when unset.
    pub(super) fn parse<T>(
        &mut self,
        key: &str,
        given: &Option<Text>,
        default: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> T {
        if let Some(value) = self.parse_given(key, given, &parse) {
            return value;
        }
        parse(default).expect("every default setting is valid (tested)")
    }

    /// The setting parsed, or `None` when unset or (noting why) bad.
    pub(super) fn parse_given<T>(
        &mut self,
        key: &str,
        given: &Option<Text>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let text = given.as_ref().and_then(Text::given)?;
        match parse(text) {
            Ok(value) => Some(value),
            Err(reason) => {
                self.bad(key, text, reason);
                None
            }
        }
    }
}

/// The text as given, or `default`.
pub(super) fn text_or(given: &Option<Text>, default: &str) -> String {
    text(given).unwrap_or_else(|| default.to_owned())
}

/// The text as given, `None` when unset or empty.
pub(super) fn text(given: &Option<Text>) -> Option<String> {
    given.as_ref().and_then(Text::given).map(str::to_owned)
}

/// A whole number of at least `min`.
pub(super) fn at_least<T>(min: T) -> impl Fn(&str) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    move |text| match text.trim().parse::<T>() {
        Ok(n) if n >= min => Ok(n),
        Ok(_) => Err(format!("must be at least {min}")),
        Err(_) => Err(format!(
            "not a number; use a whole number of at least {min}"
        )),
    }
}

/// A duration like `30s` or `2m`, longer than zero.
pub(super) fn duration(example: &'static str) -> impl Fn(&str) -> Result<Duration, String> {
    move |text| match humantime::parse_duration(text.trim()) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("must be longer than zero".to_owned()),
        Err(e) => Err(format!("not a duration ({e}); use one like {example}")),
    }
}

/// A duration like `2s`, zero allowed.
pub(super) fn duration_or_zero(example: &'static str) -> impl Fn(&str) -> Result<Duration, String> {
    move |text| {
        humantime::parse_duration(text.trim())
            .map_err(|e| format!("not a duration ({e}); use one like {example}"))
    }
}

/// `true` or `false` (also yes/no, on/off, 1/0).
pub(super) fn boolean(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err("use true or false".to_owned()),
    }
}

/// An http or https URL, without its trailing `/`.
pub(super) fn http_url(text: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(text)
        .map_err(|e| format!("not a URL ({e}); use one like http://host:port"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("use an http or https URL".to_owned());
    }
    Ok(text.trim_end_matches('/').to_owned())
}

/// Comma-separated http or https URLs (an HA pair lists both); none when empty.
pub(super) fn http_urls(text: &str) -> Result<Vec<String>, String> {
    (text.split(','))
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| http_url(url).map_err(|e| format!("{url:?}: {e}")))
        .collect()
}

/// A regex that must match whole names.
pub(super) fn whole_names(text: &str) -> Result<regex::Regex, String> {
    crate::pattern::anchored(text).map_err(|e| {
        let reason = crate::config::catalog::one_line_regex_error(&e);
        format!("{reason}; use one like k2-.*")
    })
}
