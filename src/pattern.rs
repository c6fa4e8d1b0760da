//! Anchored regular expressions. Every pattern a person writes for us (a route's `=~`, an
//! allow-list, `require_labels`, an `extract` rule, a `docker_list` name, the Docker events
//! and Slack status allow-lists) must match a whole value, as Alertmanager's matchers do, so
//! `k2-.*` never matches `not-k2-x`. One function, so no caller forgets the anchors.

use regex::Regex;

/// `pattern` compiled to match whole values only.
///
/// # Errors
/// The regex error, when `pattern` is not a regex.
pub fn anchored(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

#[cfg(test)]
mod tests {
    use super::anchored;

    #[test]
    fn the_whole_value_must_match_and_alternatives_stay_inside_the_anchors() {
        let re = anchored("k2-.*|kafka").unwrap();
        assert!(re.is_match("k2-spark") && re.is_match("kafka"));
        assert!(!re.is_match("not-k2-x") && !re.is_match("kafka-ui"));
        assert!(anchored("(").is_err());
    }
}
