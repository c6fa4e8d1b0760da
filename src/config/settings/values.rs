//! The two kinds of raw setting value: [`Text`], any scalar as given, and [`Secret`], the
//! same but never shown. Both stay unparsed until validation, so one bad value never hides
//! another: every setting is read as text first, then all are checked together.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A setting as given: a flag or variable's text, or a YAML scalar (`8`, `true`, `8s`) as text.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Text(pub String);

impl Text {
    /// The text, or `None` when empty (an empty variable is as good as unset).
    pub fn given(&self) -> Option<&str> {
        Some(self.0.as_str()).filter(|s| !s.is_empty())
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl From<String> for Text {
    fn from(text: String) -> Self {
        Self(text)
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Self {
        Self(text.to_owned())
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarText).map(Text)
    }
}

/// A token, password or key: a [`Text`] whose `Debug` prints `[redacted]`, so a struct holding
/// one can derive `Debug` and still never log it.
#[derive(Clone)]
pub struct Secret(pub SecretString);

impl Secret {
    /// The secret, or `None` when empty.
    pub fn given(&self) -> Option<SecretString> {
        Some(self.0.clone()).filter(|s| !s.expose_secret().is_empty())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Self(SecretString::from(text))
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Self {
        Self(SecretString::from(text))
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarText).map(Secret::from)
    }
}

/// Serialized only to merge the flags over the file (in memory, never written nor logged).
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.expose_secret())
    }
}

/// Accepts any YAML scalar as its text: `max_runs: 8` and `RESPONDER_MAX_RUNS=8` alike.
struct ScalarText;

impl Visitor<'_> for ScalarText {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a single value (text, number or true/false), not a list or a map")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_char<E: de::Error>(self, v: char) -> Result<String, E> {
        Ok(v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_of_any_kind_are_text_and_secrets_never_show() {
        let parsed: std::collections::BTreeMap<String, Text> =
            serde_yaml_ng::from_str("a: 8\nb: true\nc: 1.5\nd: x\n").unwrap();
        let texts: Vec<&str> = parsed.values().map(|t| t.0.as_str()).collect();
        assert_eq!(texts, ["8", "true", "1.5", "x"]);
        assert!(serde_yaml_ng::from_str::<Text>("[a]").is_err());
        let secret: Secret = serde_yaml_ng::from_str("xoxb-1").unwrap();
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(secret.given().unwrap().expose_secret(), "xoxb-1");
        assert!(Secret::from("").given().is_none());
        assert_eq!(Text::from("").given(), None);
    }
}
