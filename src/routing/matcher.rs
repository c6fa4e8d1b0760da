//! Alertmanager's label matcher syntax: `name="value"`, `name!="value"`, `name=~"re"`,
//! `name!~"re"`, so operators write routes the way they write Alertmanager routes.
//!
//! Regexes are anchored at both ends, as in Alertmanager; a label that is absent matches
//! like an empty value (`severity!="critical"` matches an alert without `severity`).

use regex::Regex;

use crate::alert::Labels;

/// A compiled matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    op: Op,
    /// Value or regex as written.
    pub value: String,
}

#[derive(Debug, Clone)]
enum Op {
    Equal,
    NotEqual,
    Regex(Regex),
    NotRegex(Regex),
}

impl Matcher {
    /// Parses one matcher, e.g. `alertname="HighMemoryUsage"` or `container=~"k2-.*"`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let name_end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or_else(|| {
                format!("{text:?}: expected name, operator and value, like alertname=\"X\"")
            })?;
        let name = &text[..name_end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!("{text:?}: a matcher starts with a label name"));
        }
        let rest = text[name_end..].trim_start();
        let (op, value) = ["=~", "!~", "!=", "="]
            .iter()
            .find_map(|op| rest.strip_prefix(op).map(|v| (*op, v)))
            .ok_or_else(|| format!("{text:?}: operator must be one of =, !=, =~, !~"))?;
        let value = unquote(value.trim()).map_err(|e| format!("{text:?}: {e}"))?;
        let anchored = || {
            crate::pattern::anchored(&value).map_err(|e| {
                let reason = e.to_string();
                let reason = reason
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim_start_matches("error: ")
                    .to_owned();
                format!("{text:?}: invalid regex: {reason}")
            })
        };
        let op = match op {
            "=" => Op::Equal,
            "!=" => Op::NotEqual,
            "=~" => Op::Regex(anchored()?),
            _ => Op::NotRegex(anchored()?),
        };
        Ok(Self {
            name: name.to_owned(),
            op,
            value,
        })
    }

    /// The operator as written: `=`, `!=`, `=~` or `!~`.
    pub fn op(&self) -> &'static str {
        match self.op {
            Op::Equal => "=",
            Op::NotEqual => "!=",
            Op::Regex(_) => "=~",
            Op::NotRegex(_) => "!~",
        }
    }

    /// Whether the labels satisfy this matcher.
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.name).map(String::as_str).unwrap_or("");
        match &self.op {
            Op::Equal => value == self.value,
            Op::NotEqual => value != self.value,
            Op::Regex(re) => re.is_match(value),
            Op::NotRegex(re) => !re.is_match(value),
        }
    }
}

/// The canonical text, `name<op>"value"`: how explanations quote a matcher, and what
/// identical matchers (whatever their spacing or quoting) have in common.
impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = self
            .value
            .replace('\\', r"\\")
            .replace('"', r#"\""#)
            .replace('\n', r"\n");
        write!(f, "{}{}\"{value}\"", self.name, self.op())
    }
}

/// Reads a double-quoted value with `\"` and `\\` escapes, or a bare word.
fn unquote(value: &str) -> Result<String, String> {
    let Some(inner) = value.strip_prefix('"') else {
        if value.contains(['"', ' ', ',']) {
            return Err("unquoted value may not contain quotes, spaces or commas".to_owned());
        }
        return Ok(value.to_owned());
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => return Err("unterminated escape".to_owned()),
            },
            '"' => {
                return if chars.as_str().is_empty() {
                    Ok(out)
                } else {
                    Err(format!(
                        "unexpected text after the closing quote: {:?}",
                        chars.as_str()
                    ))
                };
            }
            other => out.push(other),
        }
    }
    Err("missing closing quote".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn matchers_follow_alertmanager_semantics() {
        let alert = labels(&[
            ("alertname", "HighMemoryUsage"),
            ("container", "k2-bronze-binance-stream"),
        ]);
        let cases = [
            (r#"alertname="HighMemoryUsage""#, true),
            (r#"alertname = "HighMemoryUsage""#, true),
            (r#"alertname="HighMemory""#, false),
            (r#"alertname!="HighMemoryUsage""#, false),
            (r#"container=~"k2-.*""#, true),
            (r#"container=~"bronze""#, false), // anchored: must match the whole value
            (r#"container=~".*bronze.*""#, true),
            (r#"container!~"k2-silver-.*""#, true),
            (r#"severity!="critical""#, true), // absent label is the empty string
            (r#"severity="""#, true),
            (r#"severity=~".+""#, false),
            ("alertname=HighMemoryUsage", true),
            (r#"summary="say \"hi\"""#, false),
        ];
        for (text, expected) in cases {
            let m = Matcher::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(m.matches(&alert), expected, "{text}");
        }
    }

    #[test]
    fn display_is_canonical_and_parses_back() {
        for (text, shown) in [
            (
                "alertname = HighMemoryUsage",
                r#"alertname="HighMemoryUsage""#,
            ),
            (r#"container=~"k2-.*""#, r#"container=~"k2-.*""#),
            (r#"summary!="say \"hi\"""#, r#"summary!="say \"hi\"""#),
        ] {
            let m = Matcher::parse(text).unwrap();
            assert_eq!(m.to_string(), shown);
            assert_eq!(Matcher::parse(&m.to_string()).unwrap().value, m.value);
        }
    }

    #[test]
    fn escapes_are_unquoted() {
        let m = Matcher::parse(r#"summary="say \"hi\" \\ ok""#).unwrap();
        assert_eq!(m.value, r#"say "hi" \ ok"#);
    }

    #[test]
    fn bad_matchers_explain_themselves() {
        let cases = [
            ("alertname", "expected name, operator and value"),
            (r#"alertname=="x""#, "unquoted value may not contain quotes"),
            (r#"=~"x""#, "starts with a label name"),
            (r#"alertname<"x""#, "operator must be one of"),
            (r#"container=~"k2-(""#, "invalid regex"),
            (r#"alertname="x"#, "missing closing quote"),
            (
                r#"alertname="x"y"#,
                "unexpected text after the closing quote",
            ),
            ("alertname=a b", "unquoted value"),
        ];
        for (text, expected) in cases {
            let err = Matcher::parse(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::Matcher;

    /// A value written the way the canonical form writes it: quoted, `\`, `"` and newline escaped.
    fn quoted(value: &str) -> String {
        let escaped = value
            .replace('\\', r"\\")
            .replace('"', r#"\""#)
            .replace('\n', r"\n");
        format!("\"{escaped}\"")
    }

    proptest! {
        #[test]
        fn parse_then_print_is_a_round_trip(
            name in "[a-zA-Z_][a-zA-Z0-9_]{0,12}",
            op in prop_oneof![Just("="), Just("!="), Just("=~"), Just("!~")],
            raw in ".*",
            space in prop_oneof![Just(""), Just(" ")],
        ) {
            // Regex operators need a valid regex: escape the raw text into a literal one.
            let value = if op.ends_with('~') { regex::escape(&raw) } else { raw.clone() };
            let text = format!("{name}{space}{op}{space}{}", quoted(&value));
            let m = Matcher::parse(&text).map_err(TestCaseError::fail)?;
            prop_assert_eq!(&m.name, &name);
            prop_assert_eq!(m.op(), op);
            prop_assert_eq!(&m.value, &value);
            let again = Matcher::parse(&m.to_string()).map_err(TestCaseError::fail)?;
            prop_assert_eq!(again.to_string(), m.to_string());
            // The regex matches exactly the literal it escaped, as Alertmanager anchors it.
            let labels = [(name.clone(), raw.clone())].into_iter().collect();
            prop_assert_eq!(m.matches(&labels), op == "=" || op == "=~");
        }

        #[test]
        fn any_text_parses_or_is_refused_without_panicking(text in ".*") {
            if let Ok(m) = Matcher::parse(&text) {
                let again = Matcher::parse(&m.to_string()).map_err(TestCaseError::fail)?;
                prop_assert_eq!(again.value, m.value);
            }
        }
    }
}
