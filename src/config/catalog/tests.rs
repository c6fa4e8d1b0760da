use super::*;

/// A catalog directory pair with one route to responder `r`, written as `responder`.
fn dirs(responder: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
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
    (dir, routes, responders)
}

fn load(responder: &str) -> Result<Catalog, CatalogError> {
    let (_dir, routes, responders) = dirs(responder);
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
        // `failed.<id>` is an earlier step's error text.
        ("{{ failed.a }} {{ failed.a is defined }}", None),
        (
            "{{ failed.b }}",
            Some("no step \"b\" among the steps before this one"),
        ),
        (
            "{{ failed.a.reason }}",
            Some("`failed.a` is the step's error text"),
        ),
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
fn every_playbook_setting_read_needs_a_value_from_the_defaults_or_the_settings() {
    let catalog = load(&responder_with(
        "{{ config.kafka_contaner }} {{ config.port }}",
    ))
    .unwrap();
    let err = catalog
        .playbook_config(&BTreeMap::new())
        .unwrap_err()
        .to_string();
    for want in [
        "`config.kafka_contaner` has no value: set RESPONDER_CONFIG_KAFKA_CONTANER",
        "`config.port` has no value",
    ] {
        assert!(err.contains(want), "{want}\n{err}");
    }
    let given = BTreeMap::from([
        ("kafka_contaner".to_owned(), "k".to_owned()),
        ("port".to_owned(), "1".to_owned()),
    ]);
    assert_eq!(catalog.playbook_config(&given).unwrap(), given);
}

#[test]
fn the_shipped_playbook_settings_are_defaults_the_settings_override() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let catalog = Catalog::load(&root.join("routes"), &root.join("responders")).unwrap();
    let given = BTreeMap::from([("kafka_container".to_owned(), "kafka-1".to_owned())]);
    let config = catalog.playbook_config(&given).unwrap();
    assert_eq!(config["kafka_container"], "kafka-1");
    assert_eq!(config["spark_master_container"], "k2-spark-master");
    assert_eq!(config["prometheus_url"], "");
    for name in catalog.config_reads.keys() {
        assert!(
            catalog.config.contains_key(name),
            "{name} has no shipped default"
        );
    }
}

#[test]
fn required_label_patterns_compile_anchored() {
    let catalog = load(&responder_with("ok")).unwrap();
    let (label, re) = &catalog.responders["r"].require_labels[0];
    assert_eq!(label, "source");
    assert!(re.is_match("binance") && !re.is_match("binance'; DROP") && !re.is_match(""));
}

#[test]
fn extract_rules_are_checked_at_load_each_problem_with_its_path() {
    let (_dir, routes, responders) =
        dirs("name: r\ntarget: x\nsteps:\n  - id: a\n    action: docker_stats\n    container: x\n");
    // A file may hold only rules.
    std::fs::write(
        routes.join("pd.yaml"),
        r#"extract:
  - field: pd_title
    regex: 'On (?P<container>k2-[a-z-]+)'
  - field: pd_tittle
    regex: '(?P<container>.+)'
  - field: pd_title
    regex: '(?P<container>[a-z'
  - field: pd_service
    regex: 'k2-.*'
  - field: pd_title
    regex: '(?P<pd_service>.+)'
"#,
    )
    .unwrap();
    let err = Catalog::load(&routes, &responders).unwrap_err().to_string();
    for want in [
        "extract[1].field: unknown field \"pd_tittle\"; one of pd_title, pd_service",
        "extract[2].regex: \"(?P<container>[a-z\": invalid regex",
        "extract[3].regex: no named group",
        "extract[4].regex: group \"pd_service\" cannot be extracted",
    ] {
        assert!(err.contains(want), "{want}\n{err}");
    }
    assert!(!err.contains("extract[0]"), "{err}");
    assert_eq!(err.matches("pd.yaml").count(), 4, "{err}");

    std::fs::write(
        routes.join("pd.yaml"),
        "extract:\n  - field: pd_title\n    regex: 'On (?P<container>k2-[a-z-]+)'\n",
    )
    .unwrap();
    let catalog = Catalog::load(&routes, &responders).unwrap();
    assert_eq!(catalog.extract.len(), 1);
    assert!(catalog.extract[0].regex.is_match("On k2-a"));
    assert!(!catalog.extract[0].regex.is_match("x On k2-a"), "anchored");
    assert!(catalog.extract[0].origin.ends_with("pd.yaml: extract[0]"));
}

#[test]
fn the_shipped_catalog_loads_with_its_pagerduty_rules() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let catalog = Catalog::load(&root.join("routes"), &root.join("responders")).unwrap();
    assert!(catalog.extract.len() >= 3, "{:?}", catalog.extract);
}

/// A responder with `steps` (YAML lines, indented as steps) after one inspect.
fn with_steps(extra: &str) -> String {
    format!(
        "name: r\ntarget: \"{{{{ alert.labels.container }}}}\"\nsteps:\n  - id: a\n    action: docker_inspect\n    container: \"{{{{ target }}}}\"\n{extra}"
    )
}

const OPTION: &str = "    action: docker_restart\n    container: \"{{ target }}\"\n";

#[test]
fn choices_need_approval_two_options_and_consecutive_steps() {
    let ok = with_steps(&format!(
        "  - id: x\n    approval: required\n    choice: fix\n{OPTION}  - id: y\n    approval: required\n    choice: fix\n{OPTION}"
    ));
    let catalog = load(&ok).unwrap();
    let steps = &catalog.responders["r"].steps;
    assert_eq!(steps[1].choice.as_deref(), Some("fix"));
    assert_eq!(steps[2].choice.as_deref(), Some("fix"));
    let cases = [
        (
            format!("  - id: x\n    choice: fix\n{OPTION}  - id: y\n    approval: required\n    choice: fix\n{OPTION}"),
            "add `approval: required`",
        ),
        (
            format!("  - id: x\n    approval: required\n    choice: fix\n{OPTION}"),
            "a choice needs at least two",
        ),
        (
            format!(
                "  - id: x\n    approval: required\n    choice: fix\n{OPTION}  - id: z\n    action: docker_inspect\n    container: \"{{{{ target }}}}\"\n  - id: y\n    approval: required\n    choice: fix\n{OPTION}"
            ),
            "must be consecutive",
        ),
    ];
    for (extra, expected) in cases {
        let err = load(&with_steps(&extra)).unwrap_err().to_string();
        assert!(err.contains(expected), "{expected:?} not in: {err}");
    }
}

#[test]
fn priority_defaults_to_p2_and_an_unknown_one_is_a_problem() {
    use crate::responders::escalation::Priority;
    let plain = load(&with_steps("")).unwrap();
    assert_eq!(plain.responders["r"].priority, Priority::P2);
    let p1 = load(&format!("priority: P1\n{}", with_steps(""))).unwrap();
    assert_eq!(p1.responders["r"].priority, Priority::P1);
    let err = load(&format!("priority: P9\n{}", with_steps("")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("P9") && err.contains("P0"), "{err}");
}
