//! The runbook's escalation priorities (its "Escalation" section): each responder names the
//! priority its escalations carry, so a message says how bad it is and only P0/P1 page.

use serde::Deserialize;

/// How urgent an escalation is, in the runbook's words ("When to Escalate").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Deserialize)]
pub enum Priority {
    /// Complete platform outage (all jobs down).
    P0,
    /// Multiple job failures, data loss risk.
    P1,
    /// Single job failure, degraded performance. The default: a responder that does not say
    /// otherwise is about one job, and should not wake anyone at night.
    #[default]
    P2,
    /// Monitoring alerts, no immediate impact.
    P3,
}

impl Priority {
    /// `P0` ... `P3`.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P0 => "P0",
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
        }
    }

    /// What the runbook says the priority means.
    pub fn meaning(self) -> &'static str {
        match self {
            Priority::P0 => "complete platform outage",
            Priority::P1 => "multiple job failures, data loss risk",
            Priority::P2 => "single job failure, degraded performance",
            Priority::P3 => "monitoring only, no immediate impact",
        }
    }

    /// Whether an escalation at this priority also pages (a PagerDuty trigger): the runbook
    /// says P0/P1 are incidents; P2/P3 wait for the on-call group's channel.
    pub fn pages(self) -> bool {
        matches!(self, Priority::P0 | Priority::P1)
    }
}

impl std::fmt::Display for Priority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Priority;

    #[test]
    fn only_p0_and_p1_page_and_p2_is_the_default() {
        let paging: Vec<_> = [Priority::P0, Priority::P1, Priority::P2, Priority::P3]
            .into_iter()
            .filter(|p| p.pages())
            .collect();
        assert_eq!(paging, [Priority::P0, Priority::P1]);
        assert_eq!(Priority::default(), Priority::P2);
    }

    #[test]
    fn a_priority_reads_from_yaml_and_an_unknown_one_is_an_error() {
        let p: Priority = serde_yaml_ng::from_str("P1").unwrap();
        assert_eq!(p, Priority::P1);
        assert!(serde_yaml_ng::from_str::<Priority>("P5").is_err());
    }
}
