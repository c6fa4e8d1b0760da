//! Approval messages: the request with Approve / Deny buttons, and the text that replaces the
//! buttons once the approval is settled ("Approved by @alice (U0123) at 14:02 UTC").

use serde_json::json;

use super::render::escape;
use crate::store::{ApprovalRow, ApprovalState};

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

/// Block Kit blocks for a choice: its text, then one Approve button per option (each
/// carrying that option's approval id, labelled with its step) and one Deny, which denies the
/// whole choice (it carries the first option's id; denying any option denies the choice).
pub fn choice_blocks(text: &str, options: &[(i64, &str)]) -> String {
    let first = options.first().map(|(id, _)| *id).unwrap_or_default();
    let mut buttons: Vec<serde_json::Value> = options
        .iter()
        .map(|(id, step)| {
            // Slack caps a button's text at 75 characters.
            let label: String = format!("Approve {step}").chars().take(75).collect();
            json!({
                "type": "button",
                "action_id": format!("{APPROVE_ACTION}_{id}"),
                "text": {"type": "plain_text", "text": label},
                "value": id.to_string(),
            })
        })
        .collect();
    buttons.push(json!({
        "type": "button",
        "action_id": DENY_ACTION,
        "text": {"type": "plain_text", "text": "Deny all"},
        "style": "danger",
        "value": first.to_string(),
    }));
    json!([
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "actions", "block_id": format!("choice-{first}"), "elements": buttons},
    ])
    .to_string()
}

/// The text of a settled approval, and the one section block that replaces the buttons.
pub fn settled(row: &ApprovalRow) -> (String, String) {
    let at = row.decided_at.as_deref().map(hh_mm).unwrap_or_default();
    // Names and plans are data (a Slack display name, a rendered target): escaped.
    let by = escape(row.decided_by.as_deref().unwrap_or("someone"));
    let what = format!("*{}*: {}", escape(&row.step_id), escape(&row.plan));
    let text = match row.state {
        ApprovalState::Approved => format!(":white_check_mark: Approved by {by} at {at}: {what}"),
        ApprovalState::Denied => format!(":no_entry_sign: Denied by {by} at {at}: {what}. Not run."),
        ApprovalState::Expired => format!(":hourglass: Expired at {at} without a decision: {what}. Not run."),
        ApprovalState::Cancelled => format!(
            ":heavy_multiplication_x: Cancelled at {at} (the alert resolved): {what}. Not run."
        ),
        ApprovalState::Preempted => format!(
            ":heavy_multiplication_x: Preempted at {at} (the container died): {what}. Not run."
        ),
        ApprovalState::Refused => format!(
            ":heavy_multiplication_x: Not chosen (another option was chosen, or the choice denied): {what}. Not run."
        ),
        ApprovalState::Pending => format!("pending: {what}"),
    };
    let blocks = json!([{"type": "section", "text": {"type": "mrkdwn", "text": text}}]);
    (text, blocks.to_string())
}

/// [`settled`] for every option of a choice, one line each, in one section block.
pub fn settled_all(rows: &[ApprovalRow]) -> (String, String) {
    let lines: Vec<String> = rows.iter().map(|r| settled(r).0).collect();
    let text = lines.join("\n");
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

    fn row(state: ApprovalState) -> ApprovalRow {
        ApprovalRow {
            id: 7,
            run_id: 1,
            step_id: "restart".into(),
            plan: "restart container k2-x".into(),
            state,
            requested_at: "2026-11-27T13:50:00Z".into(),
            expires_at_unix: 0,
            decided_by: Some("@alice (U0A)".into()),
            decided_at: Some("2026-11-27T14:02:31.5Z".into()),
            choice: None,
        }
    }

    #[test]
    fn settled_text_names_who_and_when_and_drops_the_buttons() {
        let (text, blocks) = settled(&row(ApprovalState::Approved));
        assert_eq!(
            text,
            ":white_check_mark: Approved by @alice (U0A) at 14:02 UTC: *restart*: restart container k2-x"
        );
        assert!(!blocks.contains("button"), "{blocks}");
        assert!(settled(&row(ApprovalState::Denied))
            .0
            .starts_with(":no_entry_sign: Denied by @alice"));
        assert!(settled(&row(ApprovalState::Expired))
            .0
            .contains("Expired at 14:02 UTC"));
        assert!(settled(&row(ApprovalState::Preempted))
            .0
            .contains("Preempted at 14:02 UTC (the container died)"));
    }

    #[test]
    fn a_choice_has_one_approve_button_per_option_with_distinct_ids_and_one_deny() {
        let blocks: serde_json::Value =
            serde_json::from_str(&choice_blocks("Choose", &[(7, "restore"), (8, "delete")]))
                .unwrap();
        let buttons = blocks[1]["elements"].as_array().unwrap();
        let ids: Vec<_> = buttons
            .iter()
            .map(|b| b["action_id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            ["approval_approve_7", "approval_approve_8", DENY_ACTION]
        );
        let values: Vec<_> = buttons
            .iter()
            .map(|b| b["value"].as_str().unwrap())
            .collect();
        assert_eq!(values, ["7", "8", "7"]);
        assert_eq!(buttons[1]["text"]["text"], "Approve delete");
        assert!(settled(&row(ApprovalState::Refused))
            .0
            .starts_with(":heavy_multiplication_x: Not chosen"));
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
