//! Routes: which responder answers which alert, evaluated top to bottom.
//!
//! The first matching route wins unless it says `continue: true`, as in Alertmanager.

mod explain;
pub mod extract;
mod matcher;

pub use explain::{first_failure, Explanation, Verdict};
pub use matcher::Matcher;

use crate::alert::Labels;

/// A compiled route.
#[derive(Debug, Clone)]
pub struct Route {
    /// All must match.
    pub matchers: Vec<Matcher>,
    /// The responder to run.
    pub responder: String,
    /// Keep evaluating later routes after this one matched.
    pub continue_matching: bool,
    /// Silence the alert in Alertmanager while its responder acts and watches (`silence:`).
    pub silence: bool,
    /// Where it was written, e.g. `routes/k2.yaml: routes[0]`, for explanations.
    pub origin: String,
}

impl Route {
    /// Whether every matcher accepts the labels.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }
}

/// The ordered route list.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    /// Routes in evaluation order (files sorted by name, then as written).
    pub routes: Vec<Route>,
}

impl Routes {
    /// The routes that apply to `labels`, in order.
    pub fn matching(&self, labels: &Labels) -> Vec<&Route> {
        let mut found = Vec::new();
        for route in &self.routes {
            if route.matches(labels) {
                found.push(route);
                if !route.continue_matching {
                    break;
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(matchers: &[&str], responder: &str, cont: bool) -> Route {
        Route {
            matchers: matchers
                .iter()
                .map(|m| Matcher::parse(m).unwrap())
                .collect(),
            responder: responder.to_owned(),
            continue_matching: cont,
            silence: false,
            origin: String::new(),
        }
    }

    #[test]
    fn first_match_wins_unless_continue() {
        let routes = Routes {
            routes: vec![
                route(&[r#"alertname="HighMemoryUsage""#], "audit", true),
                route(
                    &[r#"alertname="HighMemoryUsage""#, r#"container=~"k2-.*""#],
                    "high-memory",
                    false,
                ),
                route(&[r#"alertname=~".+""#], "catch-all", false),
            ],
        };
        let labels: Labels = [("alertname", "HighMemoryUsage"), ("container", "k2-x")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let names: Vec<_> = routes
            .matching(&labels)
            .iter()
            .map(|r| r.responder.as_str())
            .collect();
        assert_eq!(names, ["audit", "high-memory"]);
        let other: Labels = [("alertname".to_owned(), "DiskFull".to_owned())].into();
        let names: Vec<_> = routes
            .matching(&other)
            .iter()
            .map(|r| r.responder.as_str())
            .collect();
        assert_eq!(names, ["catch-all"]);
        assert!(routes.matching(&Labels::new()).is_empty());
    }
}
