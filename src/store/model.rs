//! Plain records going into and coming out of the store.

use serde::Serialize;

use crate::alert::Alert;
pub use crate::responders::outcome::{ApprovalState, RunOutcome, RunState, StepEnd, StepState};
use crate::responders::Mode;

/// How soon the dispatcher takes a journal entry: higher first, arrival order within one.
/// Decided at intake from the alert's labels (see `dispatch::priority`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(pub u8);

/// A journal entry's place in the dispatcher's queue: its [`Priority`], and the target it
/// would act on as far as its labels tell. Within one priority, targets take turns: an entry
/// waits behind the entries of its own target that came before it, and behind about one
/// entry of each other target, so a flooded target cannot starve the others. An empty
/// target (no route) is one target of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Rank {
    /// How urgent.
    pub priority: Priority,
    /// Whose turn it takes (the responder and the labels its target is rendered from).
    pub target: String,
}

impl Rank {
    /// `priority`, for `target`.
    pub fn new(priority: Priority, target: impl Into<String>) -> Self {
        Self {
            priority,
            target: target.into(),
        }
    }
}

/// An accepted alert waiting in the journal.
#[derive(Debug, Clone)]
pub struct JournalEntry {
    /// Journal row id (arrival order).
    pub id: i64,
    /// The alert as accepted.
    pub alert: Alert,
}

/// What dispatch decided to do with a journal entry, recorded atomically with it.
#[derive(Debug, Clone)]
pub enum AlertPlan {
    /// Firing: open or join the incident, create the planned runs, record the declines.
    Firing {
        /// Runs to create, one per matching route whose target passed.
        runs: Vec<RunPlan>,
        /// Why a route was not acted on (or that none matched).
        declines: Vec<(DecisionKind, String)>,
        /// The incident's target: the first rendered one.
        target: Option<String>,
    },
    /// Resolved: close the open incident, if any.
    Resolve,
    /// News about an incident (a PagerDuty acknowledgement or note): attach it to the
    /// incident of its fingerprint (the open one, else the latest), nothing else.
    Update,
}

/// A run to create.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// Responder name.
    pub responder: String,
    /// Rendered, allow-listed target.
    pub target: String,
    /// Live or dry-run.
    pub mode: Mode,
    /// The alert says the target died: a run of another incident that holds the target while
    /// only observing is asked to stop for this one (see [`Recorded::preempting`]).
    pub preempts: bool,
}

/// What recording an alert did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// The incident the alert belongs to (`None`: a resolve for no open incident).
    pub incident_id: Option<i64>,
    /// Whether this alert opened the incident.
    pub opened: bool,
    /// The runs created for it, in plan order.
    pub run_ids: Vec<i64>,
    /// Whether this alert resolved an open incident.
    pub resolved: bool,
    /// Runs of the incident not yet finished (to cancel on resolve).
    pub active_runs: Vec<i64>,
    /// Planned runs not created because a run of the same responder for the incident was
    /// still waiting to start: (index in the plan, the waiting run's id). Not in `run_ids`.
    pub coalesced: Vec<(usize, i64)>,
    /// Another replica recorded this journal entry first: nothing was done here, and nothing
    /// is left to do (that replica acts on it).
    pub already_recorded: bool,
    /// The alert (a new fingerprint) folded into the open incident of its alert name and
    /// target: recorded there, nothing created, nothing to say but the parent's new counts.
    pub folded: bool,
    /// Runs of other incidents holding a target this alert's run needs, with no destructive
    /// step started, now asked (in the store, for whichever replica holds them) to stop for
    /// this alert's incident: its target died ([`RunPlan::preempts`]).
    pub preempting: Vec<i64>,
}

/// What a lease renewal ([`super::Store::renew_leases`]) brought: what other replicas asked
/// of this one's runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseNews {
    /// Runs whose cancellation was asked for (their alert resolved).
    pub cancel: Vec<i64>,
    /// Runs asked to stop for another incident whose target died.
    pub preempt: Vec<PreemptRequest>,
}

/// A target's death, asking the run that holds the target to stop
/// ([`super::Store::ask_preemption`]).
#[derive(Debug, Clone, Copy)]
pub struct TargetDeath<'a> {
    /// The dead target.
    pub target: &'a str,
    /// The incident of the death.
    pub incident: i64,
    /// When it died (unix seconds).
    pub died_unix: i64,
}

/// A request that a run stop for another incident, whose target died.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PreemptRequest {
    /// The run asked to stop.
    pub run_id: i64,
    /// The incident of the death.
    pub by: i64,
    /// When the target died (unix seconds).
    pub died_unix: i64,
}

impl LeaseNews {
    /// Sorts the renewed runs' `(id, cancel_requested, preempt_by, preempt_died_unix)` into
    /// news.
    pub fn from_rows(rows: Vec<(i64, i64, Option<i64>, Option<i64>)>) -> Self {
        let mut news = Self::default();
        for (run_id, cancel, preempt_by, died) in rows {
            if cancel != 0 {
                news.cancel.push(run_id);
            }
            if let Some(by) = preempt_by {
                let died_unix = died.unwrap_or_default();
                news.preempt.push(PreemptRequest {
                    run_id,
                    by,
                    died_unix,
                });
            }
        }
        news.cancel.sort_unstable();
        news.preempt.sort_unstable();
        news
    }
}

/// Kinds of decisions, stored as snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// No route matched the alert.
    NoRoute,
    /// The target is outside the responder's allow-list.
    TargetRefused,
    /// The target template could not be rendered from the alert.
    TargetUnresolved,
    /// A label the responder requires is missing or does not match its pattern.
    LabelRefused,
    /// A destructive step was refused by the budget.
    BudgetExhausted,
    /// A destructive step was refused by the global action rate limit.
    RateLimited,
    /// The run was escalated to a human.
    Escalated,
    /// A resolve cancelled work not yet started.
    Cancelled,
    /// A crash interrupted the run.
    Interrupted,
    /// A resolved notification arrived for no open incident.
    ResolvedWithoutIncident,
    /// A firing alert joined the open incident of the same alert and target (a storm of
    /// distinct alerts for one container): recorded there, no new run, no new message.
    Folded,
    /// A firing alert joined a run of its incident that had not started yet: that run answers
    /// it too (it has not looked at anything yet), so no second run is queued.
    Joined,
    /// A destructive step was not started because this replica's lease on its run had
    /// expired (another replica may already be reporting the run interrupted).
    Fenced,
    /// The run was stopped while only observing: its target died, another incident took it.
    Preempted,
    /// A request to preempt the run was declined: a destructive step was in flight.
    PreemptionDeclined,
    /// A scheduled slot was found too late to run (beyond its `catch_up:`): only reported.
    SlotMissed,
}

crate::responders::outcome::stored_names!(DecisionKind {
    NoRoute => "no_route",
    TargetRefused => "target_refused",
    TargetUnresolved => "target_unresolved",
    LabelRefused => "label_refused",
    BudgetExhausted => "budget_exhausted",
    RateLimited => "rate_limited",
    Escalated => "escalated",
    Cancelled => "cancelled",
    Interrupted => "interrupted",
    ResolvedWithoutIncident => "resolved_without_incident",
    Folded => "folded",
    Joined => "joined",
    Fenced => "fenced",
    Preempted => "preempted",
    PreemptionDeclined => "preemption_declined",
    SlotMissed => "slot_missed",
});

/// A decision to record.
#[derive(Debug, Clone)]
pub struct NewDecision {
    /// Incident it belongs to.
    pub incident_id: Option<i64>,
    /// Run it belongs to.
    pub run_id: Option<i64>,
    /// What was decided.
    pub kind: DecisionKind,
    /// Why, for people.
    pub detail: String,
}

/// A step row to create.
#[derive(Debug, Clone)]
pub struct NewStep {
    /// The run.
    pub run_id: i64,
    /// The playbook's step id.
    pub step_id: String,
    /// The action kind (`docker_restart`, ...).
    pub action: String,
    /// Whether the action changes the system.
    pub destructive: bool,
}

/// Runs found by [`super::Store::recover_runs`].
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    /// Runs a crash left running, now marked interrupted.
    pub interrupted: Vec<InterruptedRun>,
    /// Runs created but never started: safe to start now (now held by this replica).
    pub pending: Vec<PendingRun>,
}

/// Whose runs [`super::Store::recover_runs`] looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoverScope {
    /// Runs whose holder is gone: their lease expired (PostgreSQL), or they belong to an
    /// earlier process (SQLite, where one process owns the file). Their running runs become
    /// interrupted; their pending runs are taken over by this replica and returned.
    Abandoned,
    /// This replica's own runs, at shutdown: running ones become interrupted; pending ones
    /// are released (their lease ends now) so another replica, or the next start, runs them.
    /// Returns no pending runs.
    Mine,
}

/// What claiming a pending run came to ([`super::Store::claim_run`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The run is now `running`, held by this replica under a lease.
    Started,
    /// Another run (on any replica) holds the target: try again later.
    TargetBusy,
    /// The cluster-wide cap of running runs is reached: try again later.
    Full,
    /// The run is no longer pending (cancelled, or claimed elsewhere): leave it alone.
    Gone,
}

/// A destructive step about to start: everything [`super::Store::spend_action`] checks.
#[derive(Debug, Clone, Copy)]
pub struct ActionSpend<'a> {
    /// Responder name.
    pub responder: &'a str,
    /// Target.
    pub target: &'a str,
    /// Step id (budgets are per step).
    pub step: &'a str,
    /// The step's budget.
    pub budget: &'a crate::limits::Budget,
    /// The run the step belongs to; its lease must be held by this replica.
    pub run_id: i64,
    /// Destructive actions allowed per minute across every replica.
    pub actions_per_minute: u32,
}

/// Why a destructive step was refused by the cluster-wide action rate, in every backend's words.
pub const RATE_LIMITED: &str =
    "global limit of destructive actions per minute reached (RESPONDER_ACTIONS_PER_MINUTE)";

/// What [`super::Store::spend_action`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spend {
    /// Go ahead: the use is recorded (it counts for the budget and the action rate).
    Allowed,
    /// The step's budget is spent.
    Budget(String),
    /// The cluster-wide action rate is spent.
    RateLimited(String),
    /// This replica no longer holds the run's lease: another replica may report it
    /// interrupted at any moment, so it starts nothing destructive.
    Fenced(String),
}

impl Spend {
    /// The decision to record for a refusal; `None` when allowed.
    pub fn refusal(&self) -> Option<(DecisionKind, &str)> {
        match self {
            Spend::Allowed => None,
            Spend::Budget(reason) => Some((DecisionKind::BudgetExhausted, reason)),
            Spend::RateLimited(reason) => Some((DecisionKind::RateLimited, reason)),
            Spend::Fenced(reason) => Some((DecisionKind::Fenced, reason)),
        }
    }
}

/// A run a crash interrupted.
#[derive(Debug, Clone)]
pub struct InterruptedRun {
    /// The run.
    pub run_id: i64,
    /// Its incident.
    pub incident_id: i64,
    /// Responder name.
    pub responder: String,
    /// Target.
    pub target: String,
    /// The last step that started and may or may not have completed.
    pub last_step: Option<String>,
    /// Who held it when it was cut short (a replica's [`super::Store::owner`]).
    pub holder: Option<String>,
    /// What cut it short, for people: "a restart of the responder", "a shutdown of the
    /// responder", "the loss of the replica holding it (owner …)".
    pub cause: String,
}

/// A run that was created but never started.
#[derive(Debug, Clone)]
pub struct PendingRun {
    /// The run.
    pub run_id: i64,
    /// Its incident.
    pub incident_id: i64,
    /// Responder name.
    pub responder: String,
    /// Target.
    pub target: String,
    /// Live or dry-run.
    pub mode: Mode,
    /// The alert that created it.
    pub alert: Alert,
}

/// Where in the incident's thread a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// The incident's parent message.
    Parent,
    /// A reply in the thread.
    Reply,
    /// An edit of the parent message.
    Update,
}

crate::responders::outcome::stored_names!(MessageKind {
    Parent => "parent",
    Reply => "reply",
    Update => "update",
});

/// Where a message stands in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its turn or its next attempt.
    Pending,
    /// Delivered.
    Sent,
    /// Given up on (a refusal that retrying cannot fix).
    Failed,
    /// A newer edit of the same message replaced it before it was sent.
    Superseded,
    /// Kept, never sent: Slack is off (no `SLACK_BOT_TOKEN`).
    Disabled,
}

crate::responders::outcome::stored_names!(DeliveryState {
    Pending => "pending",
    Sent => "sent",
    Failed => "failed",
    Superseded => "superseded",
    Disabled => "disabled",
});

/// A message to queue.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Incident (thread) it belongs to.
    pub incident_id: i64,
    /// Parent, reply or update.
    pub kind: MessageKind,
    /// mrkdwn text.
    pub text: String,
    /// False when Slack delivery is off: stored for the record, never sent.
    pub deliver: bool,
    /// For a parent: the channel to post it in (the responder's `channel:`); `None` for
    /// `SLACK_CHANNEL`. Replies follow their parent.
    pub channel: Option<String>,
}

/// A queued message ready for delivery.
#[derive(Debug, Clone)]
pub struct OutboxMessage {
    /// Outbox row id.
    pub id: i64,
    /// Incident (thread).
    pub incident_id: i64,
    /// Parent, reply or update.
    pub kind: MessageKind,
    /// mrkdwn text.
    pub text: String,
    /// Attempts so far.
    pub attempts: i64,
    /// The incident's thread (channel id, parent ts) once the parent was posted.
    pub thread: Option<(String, String)>,
    /// Block Kit blocks (JSON), when the message has more than text (approval buttons).
    pub blocks: Option<String>,
    /// For an edit of one earlier message rather than the parent: that message.
    pub edit: Option<EditTarget>,
    /// For a parent not yet posted: the channel to post it in; `None` for `SLACK_CHANNEL`.
    pub post_to: Option<String>,
    /// A file to share in the thread (a chart, PNG), `text` being its title.
    pub file: Option<Vec<u8>>,
}

/// The earlier message an update replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditTarget {
    /// Its outbox id.
    pub message_id: i64,
    /// Its (channel id, ts), once it was posted; `None` if it never was.
    pub posted: Option<(String, String)>,
}

/// What a PagerDuty delivery does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PagerDutyKind {
    /// A note on a PagerDuty incident (REST API).
    Note,
    /// An Events API v2 trigger.
    Trigger,
    /// An Events API v2 resolve of an earlier trigger.
    Resolve,
}

impl PagerDutyKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PagerDutyKind::Note => "note",
            PagerDutyKind::Trigger => "trigger",
            PagerDutyKind::Resolve => "resolve",
        }
    }

    /// The kind of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "note" => Some(PagerDutyKind::Note),
            "trigger" => Some(PagerDutyKind::Trigger),
            "resolve" => Some(PagerDutyKind::Resolve),
            _ => None,
        }
    }
}

/// A PagerDuty delivery, queued or due: `body` is the request document as JSON, without
/// any credential (those are added when it is sent).
#[derive(Debug, Clone, PartialEq)]
pub struct PagerDutyMessage {
    /// Outbox row id (0 before it is queued).
    pub id: i64,
    /// Incident it reports on.
    pub incident_id: i64,
    /// Note, trigger or resolve.
    pub kind: PagerDutyKind,
    /// The request document.
    pub body: serde_json::Value,
    /// Attempts so far.
    pub attempts: i64,
}

/// An approval to request.
#[derive(Debug, Clone)]
pub struct NewApproval {
    /// Incident.
    pub incident_id: i64,
    /// Run.
    pub run_id: i64,
    /// Step waiting.
    pub step_id: String,
    /// What it will do.
    pub plan: String,
    /// When it expires.
    pub expires_at: time::OffsetDateTime,
    /// The choice it is an option of: at most one approval of a run's choice is approved.
    pub choice: Option<String>,
}

/// A change another replica committed, announced so this one acts at once rather than at its
/// next poll ([`super::Store::wakeups`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wakeup {
    /// New journal entries.
    Journal,
    /// New outbox messages.
    Outbox,
    /// An approval was decided or closed.
    Approvals,
    /// A mode override was set.
    Modes,
    /// A run's cancellation was asked for.
    Runs,
}

impl Wakeup {
    /// The topic a notification's payload names, if known.
    pub fn parse(payload: &str) -> Option<Self> {
        Some(match payload {
            "journal" => Wakeup::Journal,
            "outbox" => Wakeup::Outbox,
            "approvals" => Wakeup::Approvals,
            "modes" => Wakeup::Modes,
            "runs" => Wakeup::Runs,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod names {
    use super::*;
    use crate::alert::Status;
    use crate::responders::outcome::tests::agree;

    #[test]
    fn decision_message_and_delivery_names_agree_with_their_json() {
        agree(DecisionKind::ALL, DecisionKind::as_str, DecisionKind::parse);
        agree(MessageKind::ALL, MessageKind::as_str, MessageKind::parse);
        agree(
            DeliveryState::ALL,
            DeliveryState::as_str,
            DeliveryState::parse,
        );
        let statuses = [Status::Firing, Status::Resolved, Status::Update];
        agree(&statuses, Status::as_str, Status::parse);
    }
}
