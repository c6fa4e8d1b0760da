//! Approval messages: the request with Approve / Deny buttons, and the text that replaces the
//! buttons once the approval is settled ("Approved by @alice (U0123) at 14:02 UTC").

use serde_json::json;

use super::render::escape;
use crate::store::ApprovalRow;

/// The `action_id` of the Approve button; its `value` is the approval id.
pub const APPROVE_ACTION: &str = "approval_approve";
/// The `action_id` of the Deny button; its `value` is the approval id.
pub const DENY_ACTION: &str = "approval_deny";

/// Block Kit blocks for a request: its text, then Approve / Deny carrying the approval id.
pub fn request_blocks(text: &str, approval_id: i64) -> String {
    let button = |label: &str, action: &str, style: &str| {
        json!({
            "type": "button",
            "action_id": action,
            "text": {"type": "plain_text", "text": label},
            "style": style,
            "value": approval_id.to_string(),
        })
    };
    json!([
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {
            "type": "actions",
            "block_id": format!("approval-{approval_id}"),
            "elements": [
                button("Approve", APPROVE_ACTION, "primary"),
                button("Deny", DENY_ACTION, "danger"),
            ],
        },
    ])
    .to_string()
}

/// The text of a settled approval, and the one section block that replaces the buttons.
pub fn settled(row: &ApprovalRow) -> (String, String) {
    let at = row.decided_at.as_deref().map(hh_mm).unwrap_or_default();
    // Names and plans are data (a Slack display name, a rendered target): escaped.
    let by = escape(row.decided_by.as_deref().unwrap_or("someone"));
    let what = format!("*{}*: {}", escape(&row.step_id), escape(&row.plan));
    let text = match row.state.as_str() {
        "approved" => format!(":white_check_mark: Approved by {by} at {at}: {what}"),
        "denied" => format!(":no_entry_sign: Denied by {by} at {at}: {what}. Not run."),
        "expired" => format!(":hourglass: Expired at {at} without a decision: {what}. Not run."),
        "cancelled" => format!(
            ":heavy_multiplication_x: Cancelled at {at} (the alert resolved): {what}. Not run."
        ),
        "preempted" => format!(
            ":heavy_multiplication_x: Preempted at {at} (the container died): {what}. Not run."
        ),
        other => format!("{other}: {what}"),
    };
    let blocks = json!([{"type": "section", "text": {"type": "mrkdwn", "text": text}}]);
    (text, blocks.to_string())
}

/// `14:02 UTC` from an RFC 3339 time; the text itself if it does not parse.
fn hh_mm(rfc3339: &str) -> String {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map(|t| {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!("{:02}:{:02} UTC", t.hour(), t.minute())
        })
        .unwrap_or_else(|_| rfc3339.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: &str) -> ApprovalRow {
        ApprovalRow {
            id: 7,
            run_id: 1,
            step_id: "restart".into(),
            plan: "restart container k2-x".into(),
            state: state.into(),
            requested_at: "2026-11-27T13:50:00Z".into(),
            expires_at_unix: 0,
            decided_by: Some("@alice (U0A)".into()),
            decided_at: Some("2026-11-27T14:02:31.5Z".into()),
        }
    }

    #[test]
    fn settled_text_names_who_and_when_and_drops_the_buttons() {
        let (text, blocks) = settled(&row("approved"));
        assert_eq!(
            text,
            ":white_check_mark: Approved by @alice (U0A) at 14:02 UTC: *restart*: restart container k2-x"
        );
        assert!(!blocks.contains("button"), "{blocks}");
        assert!(settled(&row("denied"))
            .0
            .starts_with(":no_entry_sign: Denied by @alice"));
        assert!(settled(&row("expired")).0.contains("Expired at 14:02 UTC"));
        assert!(settled(&row("preempted"))
            .0
            .contains("Preempted at 14:02 UTC (the container died)"));
    }

    #[test]
    fn request_buttons_carry_the_approval_id() {
        let blocks: serde_json::Value =
            serde_json::from_str(&request_blocks("Approve?", 42)).unwrap();
        let buttons = &blocks[1]["elements"];
        assert_eq!(buttons[0]["action_id"], APPROVE_ACTION);
        assert_eq!(buttons[1]["action_id"], DENY_ACTION);
        assert_eq!(buttons[0]["value"], "42");
        assert_eq!(buttons[1]["value"], "42");
    }
}
