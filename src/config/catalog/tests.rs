use super::*;

fn load(responder: &str) -> Result<Catalog, CatalogError> {
    let dir = tempfile::tempdir().unwrap();
    let (routes, responders) = (dir.path().join("routes"), dir.path().join("responders"));
    std::fs::create_dir_all(&routes).unwrap();
    std::fs::create_dir_all(&responders).unwrap();
    std::fs::write(
        routes.join("r.yaml"),
        "routes:\n  - matchers: ['alertname=\"X\"']\n    responder: r\n",
    )
    .unwrap();
    std::fs::write(responders.join("r.yaml"), responder).unwrap();
    Catalog::load(&routes, &responders)
}

fn responder_with(text: &str) -> String {
    format!(
        "name: r\ntarget: \"{{{{ alert.labels.container }}}}\"\nrequire_labels: {{ source: '^[a-z0-9_]+$' }}\nsteps:\n  - id: a\n    action: docker_stats\n    container: \"{{{{ target }}}}\"\n  - id: say\n    action: report\n    text: \"{text}\"\n  - id: b\n    action: docker_inspect\n    container: \"{{{{ target }}}}\"\n"
    )
}

#[test]
fn config_previous_and_step_references_are_checked_at_load() {
    let cases = [
        (
            "{{ config.kafka_container }} {{ config.prometheus_url }}",
            None,
        ),
        (
            "{{ config.kafka_contaner }}",
            Some("no setting \"kafka_contaner\""),
        ),
        // `previous` may name any step, even one after this one...
        (
            "{{ previous.b.running }} {{ previous.a.memory_percent }}",
            None,
        ),
        // ...but only real steps and real outputs.
        (
            "{{ previous.c.running }}",
            Some("no step \"c\" among the steps in this playbook"),
        ),
        (
            "{{ previous.a.running }}",
            Some("step \"a\" (docker_stats) has no output \"running\""),
        ),
        (
            "{{ steps.b.running }}",
            Some("no step \"b\" among the steps before this one"),
        ),
        ("{{ steps.a.memory_percent }}", None),
    ];
    for (text, expected) in cases {
        match (load(&responder_with(text)), expected) {
            (Ok(_), None) => {}
            (Err(e), Some(want)) => assert!(e.to_string().contains(want), "{text}: {e}"),
            (Ok(_), Some(want)) => panic!("{text}: loaded, expected {want}"),
            (Err(e), None) => panic!("{text}: {e}"),
        }
    }
}

#[test]
fn required_label_patterns_compile_anchored() {
    let catalog = load(&responder_with("ok")).unwrap();
    let (label, re) = &catalog.responders["r"].require_labels[0];
    assert_eq!(label, "source");
    assert!(re.is_match("binance") && !re.is_match("binance'; DROP") && !re.is_match(""));
}
