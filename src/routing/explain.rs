//! Why each route did or did not match an alert: the same first-match-wins walk as
//! [`Routes::matching`], with the first failing matcher of every route that did not match.

use serde::Serialize;

use super::{Route, Routes};
use crate::alert::Labels;

/// One route's verdict on an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Every matcher accepted the labels; the route's responder runs.
    Matched,
    /// A matcher refused the labels (the first one that did).
    NoMatch {
        /// E.g. `alertname="X" does not match "HighMemoryUsage"`.
        reason: String,
    },
    /// Not evaluated: an earlier route without `continue` matched first.
    Shadowed {
        /// The origin of the route that won, e.g. `routes/k2.yaml: routes[0]`.
        by: String,
    },
}

/// A route with its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// Where it was written, e.g. `routes/k2.yaml: routes[1]`.
    pub origin: String,
    /// The responder it names.
    pub responder: String,
    /// What it decided.
    pub verdict: Verdict,
}

impl Explanation {
    /// One line: `routes/k2.yaml: routes[1]: alertname="X" does not match "HighMemoryUsage"`.
    pub fn line(&self) -> String {
        match &self.verdict {
            Verdict::Matched => format!("{}: matched -> {}", self.origin, self.responder),
            Verdict::NoMatch { reason } => format!("{}: {reason}", self.origin),
            Verdict::Shadowed { by } => format!(
                "{}: not evaluated: {by} matched first and has no `continue`",
                self.origin
            ),
        }
    }
}

/// Why `route` refuses `labels`, naming its first failing matcher; `None` when it matches.
pub fn first_failure(route: &Route, labels: &Labels) -> Option<String> {
    let failed = route.matchers.iter().find(|m| !m.matches(labels))?;
    Some(match labels.get(&failed.name) {
        Some(value) => format!("{failed} does not match {value:?}"),
        None => format!(
            "{failed} does not match: the alert has no {} label",
            failed.name
        ),
    })
}

impl Routes {
    /// Every route's verdict on `labels`, in evaluation order.
    pub fn explain(&self, labels: &Labels) -> Vec<Explanation> {
        let mut winner: Option<&str> = None;
        self.routes
            .iter()
            .map(|route| {
                let verdict = if let Some(by) = winner {
                    Verdict::Shadowed { by: by.to_owned() }
                } else if let Some(reason) = first_failure(route, labels) {
                    Verdict::NoMatch { reason }
                } else {
                    if !route.continue_matching {
                        winner = Some(&route.origin);
                    }
                    Verdict::Matched
                };
                Explanation {
                    origin: route.origin.clone(),
                    responder: route.responder.clone(),
                    verdict,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::Matcher;

    fn route(origin: &str, matchers: &[&str], cont: bool) -> Route {
        Route {
            matchers: matchers
                .iter()
                .map(|m| Matcher::parse(m).unwrap())
                .collect(),
            responder: format!("r-{origin}"),
            continue_matching: cont,
            silence: false,
            origin: origin.to_owned(),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn explanations_name_the_first_failing_matcher_and_agree_with_matching() {
        let routes = Routes {
            routes: vec![
                route("a", &[r#"alertname="X""#], false),
                route("b", &[r#"alertname="HighMemoryUsage""#], true),
                route("c", &[r#"alertname=~"High.*""#, r#"team="data""#], false),
                route("d", &[r#"alertname=~".+""#], false),
                route("e", &[r#"alertname="HighMemoryUsage""#], false),
            ],
        };
        let high = labels(&[("alertname", "HighMemoryUsage"), ("team", "web")]);
        let cases: [(&Labels, [&str; 5]); 3] = [
            (
                &high,
                [
                    r#"a: alertname="X" does not match "HighMemoryUsage""#,
                    "b: matched -> r-b",
                    r#"c: team="data" does not match "web""#,
                    "d: matched -> r-d",
                    "e: not evaluated: d matched first and has no `continue`",
                ],
            ),
            (
                &labels(&[("alertname", "X")]),
                [
                    "a: matched -> r-a",
                    "b: not evaluated: a matched first and has no `continue`",
                    "c: not evaluated: a matched first and has no `continue`",
                    "d: not evaluated: a matched first and has no `continue`",
                    "e: not evaluated: a matched first and has no `continue`",
                ],
            ),
            (
                &labels(&[]),
                [
                    r#"a: alertname="X" does not match: the alert has no alertname label"#,
                    r#"b: alertname="HighMemoryUsage" does not match: the alert has no alertname label"#,
                    r#"c: alertname=~"High.*" does not match: the alert has no alertname label"#,
                    r#"d: alertname=~".+" does not match: the alert has no alertname label"#,
                    r#"e: alertname="HighMemoryUsage" does not match: the alert has no alertname label"#,
                ],
            ),
        ];
        for (labels, expected) in cases {
            let explained = routes.explain(labels);
            let lines: Vec<String> = explained.iter().map(Explanation::line).collect();
            assert_eq!(lines, expected);
            let matched: Vec<&str> = explained
                .iter()
                .filter(|e| e.verdict == Verdict::Matched)
                .map(|e| e.responder.as_str())
                .collect();
            let by_matching: Vec<&str> = routes
                .matching(labels)
                .iter()
                .map(|r| r.responder.as_str())
                .collect();
            assert_eq!(matched, by_matching);
        }
    }
}
