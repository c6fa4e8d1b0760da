//! Template rendering. Two halves:
//! - any template or expression text compiles or is refused, never panics;
//! - alert labels and annotations of any content rendered through every shipped playbook's
//!   target and conditions come out as data: rendering never panics and never evaluates them.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use alert_responder::alert::{Alert, Labels, Source, Status};
use alert_responder::config::Catalog;
use alert_responder::responders::context::Scope;
use alert_responder::responders::Mode;
use alert_responder::template::{Expr, Tmpl, TemplatesBuilder};
use libfuzzer_sys::fuzz_target;

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        // The library turns minijinja's own panics on malformed text into errors with
        // catch_unwind; libFuzzer's hook aborts before unwinding, so restore the default one.
        // A panic that escapes still aborts: libfuzzer-sys catches it around every input.
        drop(std::panic::take_hook());
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        Catalog::load(&root.join("routes"), &root.join("responders"))
            .expect("the shipped catalog loads")
    })
}

fuzz_target!(|input: (&str, Vec<(String, String)>)| {
    let (source, pairs) = input;

    // Compile only: the engine has no loop bound, and templates come from operators.
    let mut builder = TemplatesBuilder::default();
    let _ = builder.add_template("t", &mut Tmpl::new(source));
    let mut expr = Expr {
        source: source.to_owned(),
        key: String::new(),
    };
    let _ = builder.add_expression("e", &mut expr);

    let labels: Labels = pairs.into_iter().take(16).collect();
    let alert = Alert {
        source: Source::Alertmanager,
        fingerprint: "f".to_owned(),
        status: Status::Firing,
        annotations: labels.clone(),
        labels,
        starts_at: time::OffsetDateTime::UNIX_EPOCH,
        ends_at: None,
        generator_url: None,
    };
    let catalog = catalog();
    let config = BTreeMap::new();
    let previous = serde_json::Map::new();
    for responder in catalog.responders.values() {
        let scope = Scope {
            alert: &alert,
            target: "",
            responder: &responder.name,
            mode: Mode::Live,
            config: &config,
            previous: &previous,
        };
        let vars = scope.vars(&serde_json::Map::new());
        if let Ok(target) = catalog.templates.render(&responder.target, &vars) {
            if responder.schedule.is_some() {
                // A scheduled responder declares its target without alert labels (the
                // shipped ones use their own name): no label can reach it.
                assert_eq!(target, responder.name, "scheduled target read alert data");
            } else {
                // Every other shipped target is one label, copied as written: never
                // evaluated again.
                assert!(
                    alert.labels.values().any(|v| *v == target),
                    "{}: target {target:?} is not one of the labels",
                    responder.name
                );
            }
        }
        for step in &responder.steps {
            if let Some(when) = &step.when {
                let _ = catalog.templates.eval(when, &vars);
            }
        }
    }
});
