//! The engine without Docker: a recording observer, `report` steps, Docker and Prometheus at
//! addresses that refuse or never answer, and tokio's paused clock for `after:` and timeouts.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use super::*;
use crate::config::catalog::Catalog;

/// What the engine told the observer, in order: `started x`, `finished x succeeded: …`,
/// `not_run x skipped: …`, `admit x`, `approval x`, `chart x`.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<String>>,
    admission: Option<String>,
    approval: Option<ApprovalOutcome>,
    choice: Option<ChoiceOutcome>,
}

impl Recorder {
    fn push(&self, event: String) {
        self.events.lock().unwrap().push(event);
    }

    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
}

#[async_trait]
impl RunObserver for Recorder {
    async fn started(&self, step: &Step) -> i64 {
        self.push(format!("started {}", step.id));
        0
    }
    async fn finished(&self, step: &Step, _handle: i64, end: &StepEnd) {
        let state = end.state.as_str();
        self.push(format!("finished {} {state}: {}", step.id, end.summary));
    }
    async fn not_run(&self, step: &Step, end: &StepEnd) {
        let state = end.state.as_str();
        self.push(format!("not_run {} {state}: {}", step.id, end.summary));
    }
    async fn admit(&self, step: &Step) -> Admission {
        self.push(format!("admit {}", step.id));
        match &self.admission {
            Some(reason) => Admission::Refused {
                reason: reason.clone(),
            },
            None => Admission::Allowed,
        }
    }
    async fn approval(
        &self,
        step: &Step,
        _plan: &str,
        cancel: &CancellationToken,
    ) -> ApprovalOutcome {
        self.push(format!("approval {}", step.id));
        match &self.approval {
            Some(outcome) => outcome.clone(),
            None => {
                cancel.cancelled().await;
                ApprovalOutcome::Cancelled
            }
        }
    }
    async fn choose(
        &self,
        group: &str,
        options: &[(&Step, String)],
        cancel: &CancellationToken,
    ) -> ChoiceOutcome {
        let ids: Vec<&str> = options.iter().map(|(s, _)| s.id.as_str()).collect();
        self.push(format!("choose {group}: {}", ids.join(" or ")));
        match &self.choice {
            Some(outcome) => outcome.clone(),
            None => {
                cancel.cancelled().await;
                ChoiceOutcome::Cancelled
            }
        }
    }
}

/// A catalog of one responder `r` from `yaml` (its steps and keys after the name).
fn catalog(yaml: &str) -> Catalog {
    let dir = tempfile::tempdir().unwrap();
    let (routes, responders) = (dir.path().join("routes"), dir.path().join("responders"));
    std::fs::create_dir_all(&routes).unwrap();
    std::fs::create_dir_all(&responders).unwrap();
    let route = "routes:\n  - matchers: ['alertname=\"A\"']\n    responder: r\n";
    std::fs::write(routes.join("r.yaml"), route).unwrap();
    let responder = format!(
        "name: r\ntarget: \"{{{{ alert.labels.container }}}}\"\nallow_targets: ['k2-.*']\n{yaml}"
    );
    std::fs::write(responders.join("r.yaml"), responder).unwrap();
    Catalog::load(Path::new(&routes), Path::new(&responders)).expect("the test catalog loads")
}

fn alert() -> Alert {
    crate::alert::firing_for_tests(&[("alertname", "A"), ("container", "k2-x")])
}

/// Runs `r` of `catalog` in `mode`, Docker at `docker` (refusing by default).
async fn run_with(
    catalog: &Catalog,
    mode: Mode,
    observer: &Recorder,
    cancel: &CancellationToken,
    config: &BTreeMap<String, String>,
) -> RunResult {
    // Nothing listens on port 1: a Docker call fails at once instead of touching an engine.
    let actions = ActionCtx::connect(Some("tcp://127.0.0.1:1")).unwrap();
    let alert = alert();
    let input = RunInput {
        responder: &catalog.responders["r"],
        alert: &alert,
        target: "k2-x",
        mode,
        templates: &catalog.templates,
        actions: &actions,
        cancel,
        preemption: &Preemption::default(),
        config,
        previous: &Map::new(),
        approval_forced: false,
    };
    run(input, observer).await
}

async fn run_live(catalog: &Catalog, observer: &Recorder) -> RunResult {
    let cancel = CancellationToken::new();
    run_with(catalog, Mode::Live, observer, &cancel, &BTreeMap::new()).await
}

const REPORT_THEN_RESTART: &str = "steps:
  - id: note
    action: report
    text: looked at {{ target }}
  - id: restart
    action: docker_restart
    container: \"{{ target }}\"
  - id: after
    action: report
    text: done
";

#[tokio::test(start_paused = true)]
async fn a_false_when_skips_and_later_steps_read_earlier_outputs() {
    let c = catalog(
        "steps:
  - id: first
    action: report
    text: seen {{ target }}
  - id: never
    when: \"steps.first.text == 'nothing'\"
    action: report
    text: not this
  - id: second
    when: \"steps.never is not defined\"
    action: report
    text: 'after {{ steps.first.text }}'
",
    );
    let observer = Recorder::default();
    let result = run_live(&c, &observer).await;
    assert_eq!(result.outcome, RunOutcome::Succeeded, "{result:?}");
    assert_eq!(result.summary, "no change needed");
    let events = observer.events();
    assert_eq!(events[0], "started first");
    assert!(
        events[1].starts_with("finished first succeeded"),
        "{events:?}"
    );
    assert!(
        events[2].starts_with(
            "not_run never skipped: skipped: `steps.first.text == 'nothing'` is false"
        ),
        "{events:?}"
    );
    assert!(
        events[4].starts_with("finished second succeeded") && events[4].contains("after seen k2-x"),
        "{events:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn after_waits_on_the_clock_and_a_cancel_during_it_touches_nothing() {
    let c = catalog(
        "steps:
  - id: wait
    after: 10m
    action: report
    text: waited
",
    );
    let observer = Recorder::default();
    let begun = Instant::now();
    assert_eq!(run_live(&c, &observer).await.outcome, RunOutcome::Succeeded);
    assert!(
        begun.elapsed() >= Duration::from_secs(600),
        "waited its 10 minutes"
    );

    let observer = Recorder::default();
    let cancel = CancellationToken::new();
    let resolve = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        resolve.cancel();
    });
    let begun = Instant::now();
    let result = run_with(&c, Mode::Live, &observer, &cancel, &BTreeMap::new()).await;
    assert!(
        begun.elapsed() < Duration::from_secs(600),
        "the wait was cut short"
    );
    assert_eq!(result.outcome, RunOutcome::Cancelled, "{result:?}");
    let events = observer.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0].starts_with("not_run wait cancelled"),
        "{events:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_step_that_never_answers_times_out_and_stops_the_run() {
    // Accepts and never answers: only the step's timeout ends the query.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let c = catalog(&format!(
        "steps:
  - id: trend
    action: prometheus_range
    url: {url}
    query: up
    timeout: 5s
  - id: later
    action: report
    text: never
"
    ));
    let observer = Recorder::default();
    let result = run_live(&c, &observer).await;
    assert_eq!(result.outcome, RunOutcome::Failed, "{result:?}");
    assert!(result.summary.contains("timed out after 5s"), "{result:?}");
    let events = observer.events();
    assert!(
        events[1].starts_with("finished trend failed: prometheus_range failed: timed out after 5s"),
        "{events:?}"
    );
    assert!(events[2].starts_with("not_run later"), "{events:?}");
}

#[tokio::test(start_paused = true)]
async fn dry_run_plans_a_destructive_step_without_asking_the_budget_or_starting_it() {
    let c = catalog(REPORT_THEN_RESTART);
    let observer = Recorder::default();
    let cancel = CancellationToken::new();
    let result = run_with(&c, Mode::DryRun, &observer, &cancel, &BTreeMap::new()).await;
    assert_eq!(result.outcome, RunOutcome::Succeeded, "{result:?}");
    assert!(result.summary.starts_with("would restart"), "{result:?}");
    let events = observer.events();
    assert!(events
        .iter()
        .any(|e| e.starts_with("not_run restart planned: dry-run: would")));
    assert!(
        !events
            .iter()
            .any(|e| e == "started restart" || e == "admit restart"),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("finished after succeeded")),
        "{events:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_budget_escalates_and_nothing_after_runs() {
    let c = catalog(REPORT_THEN_RESTART);
    let observer = Recorder {
        admission: Some("cooldown: next allowed in 12m".into()),
        ..Recorder::default()
    };
    let result = run_live(&c, &observer).await;
    assert_eq!(result.outcome, RunOutcome::Escalated, "{result:?}");
    assert_eq!(
        result.escalation.as_deref(),
        Some("restart budget exhausted for k2-x (cooldown: next allowed in 12m)")
    );
    let events = observer.events();
    assert!(events.contains(&"admit restart".to_owned()), "{events:?}");
    assert!(
        !events.contains(&"started restart".to_owned()),
        "{events:?}"
    );
    assert!(
        events.last().unwrap().starts_with("not_run after"),
        "{events:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn approvals_denied_expired_or_waiting_through_a_resolve_change_nothing() {
    let approved = REPORT_THEN_RESTART.replace(
        "    container: \"{{ target }}\"\n",
        "    container: \"{{ target }}\"\n    approval: required\n",
    );
    let c = catalog(&approved);

    let denied = Recorder {
        approval: Some(ApprovalOutcome::Denied { by: "ana".into() }),
        ..Recorder::default()
    };
    let result = run_live(&c, &denied).await;
    assert_eq!(result.outcome, RunOutcome::Cancelled, "{result:?}");
    assert!(result.summary.starts_with("denied by ana"), "{result:?}");
    assert!(!denied
        .events()
        .iter()
        .any(|e| e == "admit restart" || e == "started restart"));

    let expired = Recorder {
        approval: Some(ApprovalOutcome::Expired {
            waited: "30m".into(),
        }),
        ..Recorder::default()
    };
    let result = run_live(&c, &expired).await;
    assert_eq!(result.outcome, RunOutcome::Escalated, "{result:?}");
    assert!(
        result
            .escalation
            .as_deref()
            .is_some_and(|e| e.contains("approval for restart expired after 30m")),
        "{result:?}"
    );

    // Nobody answers; the alert resolves a minute in.
    let waiting = Recorder::default();
    let cancel = CancellationToken::new();
    let resolve = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        resolve.cancel();
    });
    let result = run_with(&c, Mode::Live, &waiting, &cancel, &BTreeMap::new()).await;
    assert_eq!(result.outcome, RunOutcome::Cancelled, "{result:?}");
    let events = waiting.events();
    assert!(
        events.contains(&"approval restart".to_owned()),
        "{events:?}"
    );
    assert!(!events.iter().any(|e| e == "started restart"), "{events:?}");

    // Approved: the step runs (and fails here: no Docker answers on port 1).
    let yes = Recorder {
        approval: Some(ApprovalOutcome::Approved { by: "ana".into() }),
        ..Recorder::default()
    };
    let result = run_live(&c, &yes).await;
    assert_eq!(result.outcome, RunOutcome::Failed, "{result:?}");
    let events = yes.events();
    let order: Vec<&str> = events
        .iter()
        .map(String::as_str)
        .filter(|e| ["approval restart", "admit restart", "started restart"].contains(e))
        .collect();
    assert_eq!(
        order,
        ["approval restart", "admit restart", "started restart"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_choice_is_offered_once_and_only_the_chosen_option_runs() {
    let option = |id: &str| {
        format!(
            "  - id: {id}\n    choice: recover\n    approval: required\n    action: docker_restart\n    container: \"{{{{ target }}}}\"\n"
        )
    };
    let c = catalog(&format!(
        "steps:\n{}{}  - id: after\n    action: report\n    text: done\n",
        option("restore"),
        option("wipe")
    ));
    let observer = Recorder {
        choice: Some(ChoiceOutcome::Chosen {
            index: 1,
            by: "ana".into(),
        }),
        ..Recorder::default()
    };
    run_live(&c, &observer).await;
    let events = observer.events();
    let asked: Vec<&String> = events.iter().filter(|e| e.starts_with("choose")).collect();
    assert_eq!(asked, ["choose recover: restore or wipe"], "{events:?}");
    assert!(
        !events.contains(&"started restore".to_owned()),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("not_run restore refused")),
        "{events:?}"
    );
    assert!(events.contains(&"started wipe".to_owned()), "{events:?}");
}
