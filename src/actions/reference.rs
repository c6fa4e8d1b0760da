//! The step-kind reference in `docs/responders.md`, checked against the code: one row per
//! kind, its templated fields named, its outputs exactly.

use std::collections::BTreeSet;

use super::Action;

/// A position per kind: adding a variant to [`Action`] breaks this match, and the test below
/// then asks for a sample of it, so the reference cannot silently fall behind.
fn position(action: &Action) -> usize {
    match action {
        Action::DockerInspect(_) => 0,
        Action::DockerStats(_) => 1,
        Action::DockerLogs(_) => 2,
        Action::DockerExec(_) => 3,
        Action::DockerRestart(_) => 4,
        Action::DockerStart(_) => 5,
        Action::Report(_) => 6,
        Action::SparkSql(_) => 7,
        Action::SchemaRegistryVersions(_) => 8,
        Action::DiskUsage(_) => 9,
        Action::FindFiles(_) => 10,
        Action::KafkaConsumerLag(_) => 11,
        Action::SparkMasterStatus(_) => 12,
        Action::PrometheusRange(_) => 13,
        Action::DockerList(_) => 14,
        Action::IcebergMaintenance(_) => 15,
        Action::KafkaConsumerGroups(_) => 16,
    }
}

/// One step of each kind, in [`position`] order.
const SAMPLES: &[&str] = &[
    "action: docker_inspect\ncontainer: c",
    "action: docker_stats\ncontainer: c",
    "action: docker_logs\ncontainer: c",
    "action: docker_exec\ncontainer: c\nargv: [ls]",
    "action: docker_restart\ncontainer: c",
    "action: docker_start\ncontainer: c",
    "action: report\ntext: t",
    "action: spark_sql\ncontainer: c\nquery: q",
    "action: schema_registry_versions\nurl: u\nsubject: s",
    "action: disk_usage\ncontainer: c\npath: /p",
    "action: find_files\ncontainer: c\npath: /p\nname: '*.x'\nolder_than_days: 7",
    "action: kafka_consumer_lag\ncontainer: c\ngroup: g",
    "action: spark_master_status\nurl: u\napp: a",
    "action: prometheus_range\nurl: u\nquery: q",
    "action: docker_list\nname: n",
    "action: iceberg_maintenance\ncontainer: c",
    "action: kafka_consumer_groups\ncontainer: c",
];

/// The backticked words of a Markdown table cell.
fn ticked(cell: &str) -> BTreeSet<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_docs_list_every_step_kind_with_its_fields_and_outputs() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/responders.md"))
        .expect("docs/responders.md");
    let rows: Vec<Vec<&str>> = doc
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| l.trim_matches('|').split(" | ").collect())
        .collect();
    let mut seen = BTreeSet::new();
    for (index, yaml) in SAMPLES.iter().enumerate() {
        let mut action: Action = serde_yaml_ng::from_str(yaml).expect(yaml);
        assert_eq!(position(&action), index, "{yaml}");
        let kind = action.kind_mut();
        let name = kind.name();
        seen.insert(name);
        let row = rows
            .iter()
            .find(|r| r[0].trim() == format!("`{name}`"))
            .unwrap_or_else(|| panic!("docs/responders.md has no row for `{name}`"));
        let fields = ticked(row[1]);
        for (field, _) in kind.templates_mut() {
            // A list's elements are named `argv[0]`, ...: the list is the field.
            let field = field.split('[').next().unwrap_or(field);
            assert!(
                fields.contains(field),
                "`{name}`: field `{field}` not listed"
            );
        }
        let outputs: BTreeSet<String> = kind.outputs().iter().map(|o| (*o).to_owned()).collect();
        let listed = ticked(row[2]);
        assert_eq!(listed, outputs, "`{name}`: outputs in docs/responders.md");
    }
    assert_eq!(seen.len(), SAMPLES.len());
    let documented: BTreeSet<String> = rows.iter().flat_map(|r| ticked(r[0])).collect();
    let kinds: BTreeSet<String> = seen.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(
        documented, kinds,
        "rows in docs/responders.md that are no step kind"
    );
}
