//! The deployment files under `deploy/`, checked with the real tools where they exist here:
//! `promtool` (rules and their unit tests), `amtool` (Alertmanager 0.25 config and routing),
//! `docker-compose config`, `systemd-analyze verify`; and parsed and checked field by field
//! where no tool can run here (the Dockerfile: no registry to pull base images from; the
//! Kubernetes manifests: no cluster).
//!
//! A missing tool fails its test with the package to install; none is skipped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;
use serde_yaml_ng::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn deploy(path: &str) -> PathBuf {
    repo().join("deploy").join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn yaml(path: &Path) -> Value {
    serde_yaml_ng::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every document of a (possibly multi-document) YAML file.
fn yaml_docs(path: &Path) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(&read(path))
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}

/// Fails (never skips) when `tool` is not on PATH, naming the package that provides it.
fn require_tool(tool: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{tool}` is not installed: `apt-get install -y {package}` (./scripts/test does this)"
    );
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn str_at<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what}: expected a string, got {v:?}"))
}

fn seq<'a>(v: &'a Value, what: &str) -> &'a [Value] {
    v.as_sequence()
        .unwrap_or_else(|| panic!("{what}: expected a list, got {v:?}"))
}

// ---------------------------------------------------------------------------------------------
// Prometheus rules

const K2_ALERTS: [&str; 4] = [
    "HighMemoryUsage",
    "StreamingQueryBehind",
    "DlqRateHigh",
    "CheckpointDiskFull",
];

#[test]
fn prometheus_rules_pass_promtool_check_and_their_unit_tests() {
    require_tool("promtool", "prometheus");
    let dir = deploy("prometheus");
    let check = run(Command::new("promtool")
        .args(["check", "rules", "k2-alerts.yml"])
        .current_dir(&dir));
    assert_success("promtool check rules", &check);
    assert!(
        text(&check.stdout).contains("SUCCESS: 4 rules found"),
        "{check:?}"
    );

    // Fires and does-not-fire cases for each alert, with the exact labels and annotations.
    let unit = run(Command::new("promtool")
        .args(["test", "rules", "k2-alerts.test.yml"])
        .current_dir(&dir));
    assert_success("promtool test rules", &unit);

    let tests = yaml(&dir.join("k2-alerts.test.yml"));
    for alert in K2_ALERTS {
        let cases: Vec<&Value> = seq(&tests["tests"], "tests")
            .iter()
            .flat_map(|t| seq(&t["alert_rule_test"], "alert_rule_test"))
            .filter(|c| c["alertname"].as_str() == Some(alert))
            .collect();
        assert!(
            cases
                .iter()
                .any(|c| !seq(&c["exp_alerts"], "exp_alerts").is_empty()),
            "no unit case where {alert} fires"
        );
        assert!(
            cases
                .iter()
                .any(|c| seq(&c["exp_alerts"], "exp_alerts").is_empty()),
            "no unit case where {alert} does not fire"
        );
    }
}

#[test]
fn prometheus_rules_carry_what_the_routes_and_responders_read() {
    let rules = yaml(&deploy("prometheus/k2-alerts.yml"));
    let rules: Vec<&Value> = seq(&rules["groups"], "groups")
        .iter()
        .flat_map(|g| seq(&g["rules"], "rules"))
        .collect();
    let names: BTreeSet<&str> = rules.iter().map(|r| str_at(&r["alert"], "alert")).collect();
    assert_eq!(names, K2_ALERTS.into_iter().collect());

    let routes: String = std::fs::read_dir(repo().join("routes"))
        .unwrap()
        .map(|e| read(&e.unwrap().path()))
        .collect();
    for rule in &rules {
        let name = str_at(&rule["alert"], "alert");
        // A route of ours matches it, so the responder gets it.
        assert!(
            routes.contains(&format!("alertname=\"{name}\"")),
            "no route in routes/ for {name}"
        );
        // Severity mapping: P1 -> critical, P2 -> warning (the runbook's level in `priority`).
        let (severity, priority) = if name == "HighMemoryUsage" {
            ("critical", "P1")
        } else {
            ("warning", "P2")
        };
        assert_eq!(
            rule["labels"]["severity"].as_str(),
            Some(severity),
            "{name}"
        );
        assert_eq!(
            rule["labels"]["priority"].as_str(),
            Some(priority),
            "{name}"
        );
        assert!(rule["for"].as_str().is_some(), "{name}: no `for:`");
        for key in ["summary", "description", "runbook_url"] {
            assert!(
                rule["annotations"][key].as_str().is_some(),
                "{name}: no {key}"
            );
        }
        let expr = str_at(&rule["expr"], "expr");
        match name {
            "HighMemoryUsage" => {
                assert!(expr.contains("container_memory_working_set_bytes"));
                assert!(expr.contains("container_spec_memory_limit_bytes"));
                assert!(
                    expr.contains(r#""container", "$1", "name""#),
                    "container from name"
                );
                assert!(expr.trim_end().ends_with("> 0.9"));
            }
            "StreamingQueryBehind" => {
                assert!(expr.contains("kafka_consumergroup_lag"));
                assert!(expr.contains("rate(kafka_topic_partition_current_offset"));
                assert!(expr.contains(r#""consumer_group""#) && expr.contains(r#""container""#));
                assert!(expr.trim_end().ends_with("> 300"));
            }
            "DlqRateHigh" => {
                assert!(expr.contains("by (source)"));
                assert!(expr.trim_end().ends_with("> 0.01"));
            }
            "CheckpointDiskFull" => {
                assert_eq!(
                    rule["labels"]["container"].as_str(),
                    Some("k2-spark-master")
                );
                assert!(expr.trim_end().ends_with("> 0.9"));
            }
            other => panic!("unexpected alert {other}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Alertmanager

#[test]
fn alertmanager_config_passes_amtool_and_routes_the_k2_alerts_to_the_responder() {
    require_tool("amtool", "prometheus-alertmanager");
    let config = deploy("alertmanager/alertmanager.yml");
    let check = run(Command::new("amtool").arg("check-config").arg(&config));
    assert_success("amtool check-config", &check);

    let receiver_for = |labels: &[&str]| {
        let out = run(Command::new("amtool")
            .args(["config", "routes", "test"])
            .arg(format!("--config.file={}", config.display()))
            .args(labels));
        assert_success("amtool config routes test", &out);
        text(&out.stdout).trim().to_owned()
    };
    assert_eq!(
        receiver_for(&[
            "alertname=HighMemoryUsage",
            "container=k2-bronze-binance-stream"
        ]),
        "responder"
    );
    assert_eq!(
        receiver_for(&[
            "alertname=StreamingQueryBehind",
            "container=k2-bronze-binance-stream",
            "consumer_group=k2-bronze-binance-ingestion"
        ]),
        "responder"
    );
    assert_eq!(
        receiver_for(&["alertname=DlqRateHigh", "source=binance"]),
        "responder"
    );
    assert_eq!(
        receiver_for(&["alertname=CheckpointDiskFull", "container=k2-spark-master"]),
        "responder"
    );
    assert_eq!(
        receiver_for(&["alertname=NodeDown", "instance=k2-host"]),
        "humans"
    );

    // The webhook itself: the responder's path, resolves sent, bearer auth, nothing 0.25 lacks.
    let am = yaml(&config);
    assert_eq!(
        am["route"]["group_by"],
        serde_yaml_ng::from_str::<Value>("[alertname, container]").unwrap()
    );
    let responder = seq(&am["receivers"], "receivers")
        .iter()
        .find(|r| r["name"].as_str() == Some("responder"))
        .expect("a `responder` receiver");
    let hooks = seq(&responder["webhook_configs"], "webhook_configs");
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0];
    assert!(str_at(&hook["url"], "url").ends_with("/webhook/alertmanager"));
    assert_eq!(hook["send_resolved"].as_bool(), Some(true));
    let auth = &hook["http_config"]["authorization"];
    assert!(auth["credentials_file"].is_string() || auth["credentials"].is_string());
    assert!(hook.get("timeout").is_none() && hook.get("url_file").is_none());

    // Replicas without a load balancer: the same webhook once per replica, each its own URL.
    let replicas = seq(&am["receivers"], "receivers")
        .iter()
        .find(|r| r["name"].as_str() == Some("responder-replicas"))
        .expect("a `responder-replicas` receiver");
    let hooks = seq(&replicas["webhook_configs"], "webhook_configs");
    assert!(hooks.len() >= 2, "one webhook_config per replica");
    let urls: BTreeSet<&str> = hooks.iter().map(|h| str_at(&h["url"], "url")).collect();
    assert_eq!(urls.len(), hooks.len(), "each replica once: {urls:?}");
    for h in hooks {
        assert!(str_at(&h["url"], "url").ends_with("/webhook/alertmanager"));
        assert_eq!(h["send_resolved"].as_bool(), Some(true));
        assert_eq!(h["http_config"], hook["http_config"], "the same token");
        assert!(h.get("timeout").is_none() && h.get("url_file").is_none());
    }
}

// ---------------------------------------------------------------------------------------------
// Compose

#[test]
fn compose_service_passes_docker_compose_config() {
    require_tool("docker-compose", "docker-compose");
    // Validate a copy laid out like the repo, with responder.env made from the example (the
    // real one holds secrets and is never committed; compose refuses a missing env_file).
    let tmp = tempfile::tempdir().unwrap();
    let compose_dir = tmp.path().join("deploy/compose");
    std::fs::create_dir_all(&compose_dir).unwrap();
    std::fs::copy(
        deploy("compose/docker-compose.responder.yml"),
        compose_dir.join("docker-compose.responder.yml"),
    )
    .unwrap();
    std::fs::copy(
        deploy("compose/responder.env.example"),
        compose_dir.join("responder.env"),
    )
    .unwrap();
    std::fs::copy(deploy("Dockerfile"), tmp.path().join("deploy/Dockerfile")).unwrap();

    let out = run(Command::new("docker-compose")
        .args(["-f", "docker-compose.responder.yml", "config"])
        .current_dir(&compose_dir)
        .env_remove("DOCKER_GID"));
    assert_success("docker-compose config", &out);

    let resolved: Value = serde_yaml_ng::from_str(&text(&out.stdout)).unwrap();
    let svc = &resolved["services"]["alert-responder"];
    assert_eq!(
        svc["build"]["dockerfile"].as_str(),
        Some("deploy/Dockerfile")
    );
    let env = &svc["environment"];
    assert_eq!(env["RESPONDER_LISTEN"].as_str(), Some("0.0.0.0:9095"));
    let token = env["RESPONDER_WEBHOOK_TOKEN"].as_str().unwrap_or_default();
    assert!(
        !token.is_empty(),
        "RESPONDER_WEBHOOK_TOKEN must be set when listening on 0.0.0.0"
    );
    let volumes: Vec<&str> = seq(&svc["volumes"], "volumes")
        .iter()
        .map(|v| str_at(v, "volume"))
        .collect();
    assert!(
        volumes.contains(&"/var/run/docker.sock:/var/run/docker.sock:rw"),
        "{volumes:?}"
    );
    assert!(
        volumes.iter().any(|v| v.ends_with(":/app/data:rw")),
        "{volumes:?}"
    );
    let health: Vec<&str> = seq(&svc["healthcheck"]["test"], "healthcheck")
        .iter()
        .map(|v| str_at(v, "test"))
        .collect();
    assert!(
        health.iter().any(|a| a.ends_with(":9095/healthz")),
        "{health:?}"
    );

    let raw = read(&deploy("compose/docker-compose.responder.yml"));
    assert!(
        raw.contains("ROOT-EQUIVALENT"),
        "the socket mount must say what it grants"
    );
    assert!(raw.contains("docker-socket-proxy") && raw.contains("CONTAINERS: 1"));
}

/// `docker-compose config` on the replicas file laid out like the repo: responder.env from its
/// example and, when `with_password`, the project's `.env` from postgres.env.example.
fn compose_replicas_config(with_password: bool) -> Output {
    require_tool("docker-compose", "docker-compose");
    let tmp = tempfile::tempdir().unwrap();
    let compose_dir = tmp.path().join("deploy/compose");
    std::fs::create_dir_all(&compose_dir).unwrap();
    for (from, to) in [
        ("docker-compose.replicas.yml", "docker-compose.replicas.yml"),
        ("responder.env.example", "responder.env"),
    ] {
        std::fs::copy(deploy(&format!("compose/{from}")), compose_dir.join(to)).unwrap();
    }
    if with_password {
        std::fs::copy(
            deploy("compose/postgres.env.example"),
            compose_dir.join(".env"),
        )
        .unwrap();
    }
    std::fs::copy(deploy("Dockerfile"), tmp.path().join("deploy/Dockerfile")).unwrap();
    run(Command::new("docker-compose")
        .args(["-f", "docker-compose.replicas.yml", "config"])
        .current_dir(&compose_dir)
        .env_remove("DOCKER_GID")
        .env_remove("POSTGRES_PASSWORD"))
}

#[test]
fn compose_replicas_pass_docker_compose_config_on_one_postgres() {
    let out = compose_replicas_config(true);
    assert_success("docker-compose config (replicas)", &out);
    let resolved: Value = serde_yaml_ng::from_str(&text(&out.stdout)).unwrap();
    let services = resolved["services"].as_mapping().expect("services");
    let password = env_file(&deploy("compose/postgres.env.example"))
        .into_iter()
        .find(|(k, _)| k == "POSTGRES_PASSWORD")
        .map(|(_, v)| v)
        .expect("postgres.env.example sets POSTGRES_PASSWORD");

    // PostgreSQL: the official image, its data on a named volume, healthy only when it answers.
    let pg = &resolved["services"]["postgres"];
    assert!(
        str_at(&pg["image"], "postgres image").starts_with("postgres:"),
        "{pg:?}"
    );
    let pg_env = &pg["environment"];
    assert_eq!(
        pg_env["POSTGRES_PASSWORD"].as_str(),
        Some(password.as_str())
    );
    let (user, db) = (
        str_at(&pg_env["POSTGRES_USER"], "POSTGRES_USER"),
        str_at(&pg_env["POSTGRES_DB"], "POSTGRES_DB"),
    );
    let pg_volumes: Vec<&str> = seq(&pg["volumes"], "postgres volumes")
        .iter()
        .map(|v| str_at(v, "volume"))
        .collect();
    let data_volume = pg_volumes
        .iter()
        .find_map(|v| v.strip_suffix(":/var/lib/postgresql/data:rw"))
        .unwrap_or_else(|| panic!("postgres data on a volume: {pg_volumes:?}"));
    assert!(
        resolved["volumes"].get(data_volume).is_some(),
        "{data_volume} is a named volume"
    );
    assert!(
        pg.get("ports").is_none(),
        "the database stays on the compose network"
    );
    let pg_health: Vec<&str> = seq(&pg["healthcheck"]["test"], "postgres healthcheck")
        .iter()
        .map(|v| str_at(v, "test"))
        .collect();
    assert!(pg_health.contains(&"pg_isready"), "{pg_health:?}");
    assert_eq!(pg["restart"].as_str(), Some("unless-stopped"));

    // The responders: every service built from the Dockerfile, two of them.
    let responders: Vec<(&str, &Value)> = services
        .iter()
        .filter(|(_, s)| s["build"]["dockerfile"].as_str() == Some("deploy/Dockerfile"))
        .map(|(name, s)| (str_at(name, "service name"), s))
        .collect();
    assert_eq!(responders.len(), 2, "two replicas: {responders:?}");
    let mut host_ports = BTreeSet::new();
    for (name, svc) in &responders {
        let env = &svc["environment"];
        assert_eq!(
            env["RESPONDER_LISTEN"].as_str(),
            Some("0.0.0.0:9095"),
            "{name}"
        );
        assert!(
            !env["RESPONDER_WEBHOOK_TOKEN"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{name}: token required on 0.0.0.0"
        );
        let url = str_at(&env["RESPONDER_DATABASE_URL"], "RESPONDER_DATABASE_URL");
        assert_eq!(
            url.split('?').next(),
            Some(format!("postgres://{user}:{password}@postgres:5432/{db}").as_str()),
            "{name}: the postgres service's user, password and database"
        );
        assert_eq!(
            svc["depends_on"]["postgres"]["condition"].as_str(),
            Some("service_healthy"),
            "{name}"
        );
        assert_eq!(svc["restart"].as_str(), Some("unless-stopped"), "{name}");
        let health: Vec<&str> = seq(&svc["healthcheck"]["test"], "healthcheck")
            .iter()
            .map(|v| str_at(v, "test"))
            .collect();
        assert!(
            health.iter().any(|a| a.ends_with(":9095/readyz")),
            "{name}: {health:?}"
        );
        let volumes: Vec<&str> = seq(&svc["volumes"], "volumes")
            .iter()
            .map(|v| str_at(v, "volume"))
            .collect();
        assert!(
            volumes.contains(&"/var/run/docker.sock:/var/run/docker.sock:rw"),
            "{name}: {volumes:?}"
        );
        assert_eq!(svc["read_only"].as_bool(), Some(true), "{name}");
        // SIGTERM gives runs 10 s after the drain: Docker's default 10 s would cut it.
        assert_eq!(svc["stop_grace_period"].as_str(), Some("30s"), "{name}");
        for port in seq(&svc["ports"], "ports") {
            let port = str_at(port, "port");
            assert!(
                port.starts_with("127.0.0.1:"),
                "{name}: loopback only: {port}"
            );
            assert!(
                host_ports.insert(port.to_owned()),
                "{name}: {port} taken twice"
            );
        }
    }

    let raw = read(&deploy("compose/docker-compose.replicas.yml"));
    assert!(
        raw.contains("ROOT-EQUIVALENT"),
        "the socket mount must say what it grants"
    );
    assert!(
        raw.contains("load balancer"),
        "say what fronts Slack and PagerDuty"
    );
}

#[test]
fn compose_replicas_refuse_to_start_without_the_database_password() {
    // Never an empty password in the URL, nor a postgres without one.
    let out = compose_replicas_config(false);
    assert!(!out.status.success(), "config passed without .env: {out:?}");
    assert!(
        text(&out.stderr).contains("set POSTGRES_PASSWORD in .env"),
        "{}",
        text(&out.stderr)
    );
}

/// Every variable `serve --help` lists (the authoritative list), plus the settings table's.
fn every_setting() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = crate::support::binary::serve_help_variables()
        .into_iter()
        .collect();
    let table = read(&repo().join("docs/settings.md"));
    names.extend(
        table
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .map(str::to_owned),
    );
    names.insert("RUST_LOG".to_owned());
    assert!(names.len() >= 25, "{names:?}");
    names
}

#[test]
fn env_examples_list_every_setting() {
    let settings = every_setting();
    for example in [
        "compose/responder.env.example",
        "systemd/alert-responder.env.example",
    ] {
        let body = read(&deploy(example));
        let listed: BTreeSet<&str> = body
            .lines()
            .map(|l| l.trim_start_matches('#'))
            .filter_map(|l| l.split_once('=').map(|(k, _)| k))
            .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .collect();
        let missing: Vec<&String> = settings
            .iter()
            .filter(|s| !listed.contains(s.as_str()))
            .collect();
        assert!(missing.is_empty(), "{example} lacks {missing:?}");
        // The required token is set (to a placeholder), not left commented out.
        assert!(body.contains("\nRESPONDER_WEBHOOK_TOKEN=change-me\n"));
        assert!(
            !body.contains("xoxb-1"),
            "no real-looking Slack token in an example"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Dockerfile: cannot be built here (no registry for the base images), so checked structurally.

#[test]
fn dockerfile_is_multi_stage_non_root_and_ships_the_catalog() {
    let body = read(&deploy("Dockerfile"));
    // Instructions, with continuation lines joined and comments dropped.
    let joined = body
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    let instructions: Vec<(String, String)> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (op, rest) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            (op.to_ascii_uppercase(), rest.trim().to_owned())
        })
        .collect();
    let args = |op: &str| -> Vec<&str> {
        instructions
            .iter()
            .filter(|(o, _)| o == op)
            .map(|(_, a)| a.as_str())
            .collect()
    };

    let from = args("FROM");
    assert_eq!(from.len(), 2, "two stages: {from:?}");
    assert!(
        from[0].starts_with("rust:") && from[0].ends_with(" AS builder"),
        "{from:?}"
    );
    assert!(
        from[1].starts_with("debian:") && from[1].contains("-slim"),
        "{from:?}"
    );
    // Same Debian release in both stages, so the binary's glibc is there at run time.
    assert!(
        from[0].contains("bookworm") && from[1].contains("bookworm"),
        "{from:?}"
    );

    // Every instruction after the second FROM is the runtime stage.
    let runtime_start = instructions.iter().rposition(|(o, _)| o == "FROM").unwrap();
    let runtime = &instructions[runtime_start..];
    let user: Vec<&str> = runtime
        .iter()
        .filter(|(o, _)| o == "USER")
        .map(|(_, a)| a.as_str())
        .collect();
    let last_user = user.last().expect("the runtime stage sets USER");
    assert!(
        !["root", "0", "0:0"].contains(last_user),
        "runtime must not run as root: {last_user}"
    );
    let copies: Vec<&str> = runtime
        .iter()
        .filter(|(o, _)| o == "COPY")
        .map(|(_, a)| a.as_str())
        .collect();
    assert!(
        copies.iter().any(|c| c.starts_with("--from=builder ")),
        "{copies:?}"
    );
    assert!(
        copies.iter().any(|c| c.starts_with("routes ")),
        "{copies:?}"
    );
    assert!(
        copies.iter().any(|c| c.starts_with("responders ")),
        "{copies:?}"
    );
    // Every COPY source from the context exists in the repo.
    for (_, a) in instructions.iter().filter(|(o, _)| o == "COPY") {
        if a.starts_with("--from=") {
            continue;
        }
        let parts: Vec<&str> = a.split_whitespace().collect();
        for src in &parts[..parts.len() - 1] {
            assert!(
                repo().join(src).exists(),
                "COPY source {src} missing from the repo"
            );
        }
    }
    assert_eq!(args("EXPOSE"), ["9095"]);
    let health = args("HEALTHCHECK");
    assert!(
        health.len() == 1 && health[0].contains("/healthz"),
        "{health:?}"
    );
    assert_eq!(args("ENTRYPOINT"), [r#"["alert-responder", "serve"]"#]);
    assert!(
        args("ENV")
            .iter()
            .any(|e| e.contains("RESPONDER_LISTEN=0.0.0.0:9095")),
        "the image listens beyond loopback (and so requires the token)"
    );
    assert!(
        body.contains("NOT BUILT IN THIS PROJECT'S CI"),
        "say it is unbuilt here"
    );

    let ignore = read(&deploy("Dockerfile.dockerignore"));
    assert!(ignore.lines().any(|l| l.trim() == "target"));
}

// ---------------------------------------------------------------------------------------------
// systemd

#[test]
fn systemd_unit_passes_systemd_analyze_verify_and_is_hardened() {
    require_tool("systemd-analyze", "systemd");
    let unit = read(&deploy("systemd/alert-responder.service"));
    for line in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=alert-responder",
        "SupplementaryGroups=docker",
        "EnvironmentFile=/etc/alert-responder/alert-responder.env",
        "NoNewPrivileges=yes",
        "ExecStart=/usr/local/bin/alert-responder serve",
    ] {
        assert!(unit.lines().any(|l| l == line), "missing `{line}`");
    }
    assert!(
        unit.contains("ROOT-EQUIVALENT"),
        "the docker group must say what it grants"
    );

    // `verify` checks that ExecStart exists: point it at the binary this test built. Unknown
    // keys are only warnings (exit 0), so any output on stderr fails too.
    let tmp = tempfile::tempdir().unwrap();
    let local = unit.replace(
        "ExecStart=/usr/local/bin/alert-responder",
        &format!("ExecStart={}", env!("CARGO_BIN_EXE_alert-responder")),
    );
    let path = tmp.path().join("alert-responder.service");
    std::fs::write(&path, local).unwrap();
    let out = run(Command::new("systemd-analyze").arg("verify").arg(&path));
    assert_success("systemd-analyze verify", &out);
    assert!(
        text(&out.stderr).trim().is_empty(),
        "systemd-analyze verify warned:\n{}",
        text(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// Kubernetes: no cluster here, so parsed and checked field by field.

/// Applied with either layout.
const KUBE_SHARED: [&str; 3] = ["service.yaml", "secret.example.yaml", "servicemonitor.yaml"];
/// One replica on SQLite.
const KUBE_SINGLE: [&str; 2] = ["deployment.yaml", "pvc.yaml"];
/// Replicas on PostgreSQL.
const KUBE_REPLICAS: [&str; 2] = ["deployment-replicas.yaml", "pdb.yaml"];

/// The documents of these files of deploy/kubernetes/.
fn kube_docs(files: &[&str]) -> Vec<Value> {
    files
        .iter()
        .flat_map(|f| yaml_docs(&deploy(&format!("kubernetes/{f}"))))
        .collect()
}

/// The one document of kind `k`.
fn one_kind<'a>(docs: &'a [Value], k: &str) -> &'a Value {
    let found: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some(k))
        .collect();
    assert_eq!(found.len(), 1, "one {k}");
    found[0]
}

#[test]
fn kubernetes_files_each_belong_to_a_layout() {
    let known: BTreeSet<&str> = KUBE_SHARED
        .iter()
        .chain(&KUBE_SINGLE)
        .chain(&KUBE_REPLICAS)
        .copied()
        .collect();
    let mut on_disk = BTreeSet::new();
    for entry in std::fs::read_dir(deploy("kubernetes")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            on_disk.insert(name);
        }
    }
    assert_eq!(
        on_disk.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        known,
        "a new manifest: add it to a layout here and in deploy/kubernetes/README.md"
    );
    // The README says which files each layout applies, and not the whole directory.
    let readme = read(&deploy("kubernetes/README.md"));
    for (layout, files) in [("one replica", &KUBE_SINGLE), ("replicas", &KUBE_REPLICAS)] {
        let line = readme
            .lines()
            .find(|l| {
                l.trim_start().starts_with("kubectl apply") && files.iter().all(|f| l.contains(f))
            })
            .unwrap_or_else(|| panic!("README: no `kubectl apply` line for {layout}"));
        for f in KUBE_SHARED.iter().filter(|f| **f != "secret.example.yaml") {
            assert!(line.contains(f), "{layout}: {line} lacks {f}");
        }
    }
}

#[test]
fn kubernetes_manifests_parse_and_fit_together() {
    let docs = kube_docs(&[&KUBE_SHARED[..], &KUBE_SINGLE[..]].concat());
    let kind = |k: &str| one_kind(&docs, k);
    let deployment = kind("Deployment");
    let service = kind("Service");
    let secret = kind("Secret");
    let monitor = kind("ServiceMonitor");
    let pvc = kind("PersistentVolumeClaim");

    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"].as_u64(), Some(1), "SQLite: one writer");
    assert_eq!(spec["strategy"]["type"].as_str(), Some("Recreate"));
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    assert_ne!(pod["securityContext"]["runAsUser"].as_u64(), Some(0));
    let containers = seq(&pod["containers"], "containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(
        c["securityContext"]["allowPrivilegeEscalation"].as_bool(),
        Some(false)
    );
    assert_eq!(
        c["securityContext"]["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    assert_eq!(
        c["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    let port = &seq(&c["ports"], "ports")[0];
    assert_eq!(port["containerPort"].as_u64(), Some(9095));
    let port_name = str_at(&port["name"], "port name");
    // Settings come from the Secret, by reference.
    let secret_name = str_at(&secret["metadata"]["name"], "secret name");
    assert!(seq(&c["envFrom"], "envFrom")
        .iter()
        .any(|e| e["secretRef"]["name"].as_str() == Some(secret_name)));
    // The store is on the claim.
    assert!(seq(&pod["volumes"], "volumes").iter().any(|v| {
        v["persistentVolumeClaim"]["claimName"].as_str() == pvc["metadata"]["name"].as_str()
    }));

    // The example Secret carries the keys, with placeholders only.
    let data = secret["stringData"].as_mapping().expect("stringData");
    for key in [
        "RESPONDER_WEBHOOK_TOKEN",
        "SLACK_BOT_TOKEN",
        "RESPONDER_ADMIN_TOKEN",
    ] {
        let value = data
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("Secret lacks {key}"));
        assert!(
            value.starts_with('<') && value.ends_with('>'),
            "{key} must be a placeholder"
        );
    }

    // Service -> pods, ServiceMonitor -> Service, by labels and port name.
    let pod_labels = &spec["template"]["metadata"]["labels"];
    let selector = service["spec"]["selector"].as_mapping().unwrap();
    for (k, v) in selector {
        assert_eq!(
            &pod_labels[str_at(k, "label")],
            v,
            "Service selector vs pod labels"
        );
    }
    let svc_port = &seq(&service["spec"]["ports"], "service ports")[0];
    assert_eq!(svc_port["port"].as_u64(), Some(9095));
    assert_eq!(svc_port["targetPort"].as_str(), Some(port_name));
    let svc_labels = &service["metadata"]["labels"];
    for (k, v) in monitor["spec"]["selector"]["matchLabels"]
        .as_mapping()
        .unwrap()
    {
        assert_eq!(
            &svc_labels[str_at(k, "label")],
            v,
            "ServiceMonitor selector vs Service"
        );
    }
    assert_eq!(
        monitor["apiVersion"].as_str(),
        Some("monitoring.coreos.com/v1")
    );
    let endpoint = &seq(&monitor["spec"]["endpoints"], "endpoints")[0];
    assert_eq!(endpoint["path"].as_str(), Some("/metrics"));
    assert_eq!(endpoint["port"].as_str(), svc_port["name"].as_str());
}

#[test]
fn kubernetes_replicas_roll_without_downtime_on_the_database_from_the_secret() {
    let docs = kube_docs(&[&KUBE_SHARED[..], &KUBE_REPLICAS[..]].concat());
    let deployment = one_kind(&docs, "Deployment");
    let pdb = one_kind(&docs, "PodDisruptionBudget");
    let service = one_kind(&docs, "Service");
    let secret = one_kind(&docs, "Secret");
    assert!(
        docs.iter()
            .all(|d| d["kind"].as_str() != Some("PersistentVolumeClaim")),
        "no SQLite volume for replicas"
    );

    // Same name as the single-replica Deployment: applying one replaces the other.
    let single = kube_docs(&KUBE_SINGLE);
    assert_eq!(
        deployment["metadata"]["name"],
        one_kind(&single, "Deployment")["metadata"]["name"]
    );

    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"].as_u64(), Some(2));
    assert_eq!(spec["strategy"]["type"].as_str(), Some("RollingUpdate"));
    let rolling = &spec["strategy"]["rollingUpdate"];
    assert_eq!(
        rolling["maxUnavailable"].as_u64(),
        Some(0),
        "never below 2 ready"
    );
    assert_eq!(rolling["maxSurge"].as_u64(), Some(1));

    let pod_labels = spec["template"]["metadata"]["labels"]
        .as_mapping()
        .expect("pod labels");
    let selects_pods = |selector: &Value, what: &str| {
        let selector = selector
            .as_mapping()
            .unwrap_or_else(|| panic!("{what}: no selector"));
        assert!(!selector.is_empty(), "{what}: empty selector");
        for (k, v) in selector {
            assert_eq!(pod_labels.get(k), Some(v), "{what} vs pod labels");
        }
    };
    selects_pods(&spec["selector"]["matchLabels"], "Deployment selector");
    selects_pods(&service["spec"]["selector"], "Service selector");

    // The PDB keeps one up and selects exactly the Deployment's pods.
    assert_eq!(pdb["apiVersion"].as_str(), Some("policy/v1"));
    assert_eq!(pdb["spec"]["minAvailable"].as_u64(), Some(1));
    selects_pods(&pdb["spec"]["selector"]["matchLabels"], "PDB selector");
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        spec["selector"]["matchLabels"]
    );

    let pod = &spec["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    // SIGTERM: the drain, then 10 s for runs, then the outbox's last flush.
    assert!(
        pod["terminationGracePeriodSeconds"].as_u64() >= Some(20),
        "{:?}",
        pod["terminationGracePeriodSeconds"]
    );
    // Preferred anti-affinity across nodes, on the pods' own labels.
    let anti = seq(
        &pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"],
        "preferred pod anti-affinity",
    );
    assert!(anti.iter().any(|t| {
        let term = &t["podAffinityTerm"];
        term["topologyKey"].as_str() == Some("kubernetes.io/hostname")
            && term["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]
    }));
    for v in seq(&pod["volumes"], "volumes") {
        assert!(
            v.get("persistentVolumeClaim").is_none(),
            "no SQLite claim: {v:?}"
        );
        assert!(
            v.get("hostPath").is_none(),
            "replicas act on one engine through DOCKER_HOST, not a node's socket: {v:?}"
        );
    }

    let containers = seq(&pod["containers"], "containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(
        c["securityContext"]["allowPrivilegeEscalation"].as_bool(),
        Some(false)
    );
    assert_eq!(
        c["securityContext"]["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );
    let port = &seq(&c["ports"], "ports")[0];
    assert_eq!(port["containerPort"].as_u64(), Some(9095));
    let svc_port = &seq(&service["spec"]["ports"], "service ports")[0];
    assert_eq!(svc_port["targetPort"], port["name"]);
    assert_eq!(
        c["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], port["name"]);
    assert_eq!(
        c["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );

    // The database URL from the Secret, by a required key (no silent fallback to SQLite).
    let secret_name = str_at(&secret["metadata"]["name"], "secret name");
    let env = seq(&c["env"], "env");
    let url = env
        .iter()
        .find(|e| e["name"].as_str() == Some("RESPONDER_DATABASE_URL"))
        .expect("RESPONDER_DATABASE_URL in env");
    assert!(url.get("value").is_none(), "not inline: {url:?}");
    let key_ref = &url["valueFrom"]["secretKeyRef"];
    assert_eq!(key_ref["name"].as_str(), Some(secret_name));
    assert_ne!(key_ref["optional"].as_bool(), Some(true));
    let key = str_at(&key_ref["key"], "secretKeyRef key");
    let example = str_at(&secret["stringData"][key], "the Secret's database URL");
    assert!(example.starts_with("postgres://"), "{example}");
    assert!(
        example.contains(":<password>@"),
        "a placeholder password only: {example}"
    );
    assert!(seq(&c["envFrom"], "envFrom")
        .iter()
        .any(|e| e["secretRef"]["name"].as_str() == Some(secret_name)));
}

#[test]
fn replica_settings_are_documented() {
    let doc = read(&repo().join("docs/replicas.md"));
    let settings = read(&repo().join("docs/settings.md"));
    let readme = read(&repo().join("README.md"));
    for setting in [
        "RESPONDER_DATABASE_URL",
        "RESPONDER_DATABASE_POOL_SIZE",
        "RESPONDER_DATABASE_STATEMENT_TIMEOUT",
        "RESPONDER_LEASE",
    ] {
        assert!(
            doc.contains(&format!("| `{setting}` |")),
            "docs/replicas.md: {setting}"
        );
        assert!(
            settings.contains(&format!("| `{setting}` |")),
            "docs/settings.md: {setting}"
        );
    }
    assert!(
        readme.contains("(docs/replicas.md)"),
        "README links docs/replicas.md"
    );
}

#[test]
fn scripts_test_installs_the_deploy_tools() {
    let script = read(&repo().join("scripts/test"));
    for (tool, package) in [
        ("promtool", "prometheus"),
        ("docker-compose", "docker-compose"),
        ("systemd-analyze", "systemd"),
    ] {
        assert!(
            script.contains(&format!(
                "command -v {tool} >/dev/null 2>&1 || missing+=({package})"
            )),
            "scripts/test must install {package} for {tool}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The env examples are a working configuration, not just a list.

/// `KEY=value` lines that are not commented out.
fn env_file(path: &Path) -> Vec<(String, String)> {
    read(path)
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .collect()
}

/// Status code of a plain HTTP/1.1 GET, or None while nothing answers.
fn http_status(port: u16, path: &str, token: Option<&str>) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn env_examples_boot_the_service() {
    for (example, listen_host) in [
        ("compose/responder.env.example", "0.0.0.0"),
        ("systemd/alert-responder.env.example", "127.0.0.1"),
    ] {
        let vars = env_file(&deploy(example));
        let token = vars
            .iter()
            .find(|(k, _)| k == "RESPONDER_WEBHOOK_TOKEN")
            .map(|(_, v)| v.clone())
            .expect("a webhook token");
        let tmp = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_alert-responder"));
        cmd.arg("serve").current_dir(tmp.path());
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if key.starts_with("RESPONDER_") || key.starts_with("SLACK_") || key == "RUST_LOG" {
                cmd.env_remove(key);
            }
        }
        cmd.envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            // What the compose file / unit set around the example, at test-local places.
            .env("RESPONDER_LISTEN", format!("{listen_host}:{port}"))
            .env(
                "RESPONDER_DATABASE_URL",
                format!("sqlite://{}/alert-responder.db", tmp.path().display()),
            )
            .env("RESPONDER_ROUTES_DIR", repo().join("routes"))
            .env("RESPONDER_RESPONDERS_DIR", repo().join("responders"))
            .stdout(std::fs::File::create(tmp.path().join("out.log")).unwrap())
            .stderr(std::fs::File::create(tmp.path().join("err.log")).unwrap());
        let mut child = cmd.spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut ready = None;
        while std::time::Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "{example}: serve exited {status}:\n{}",
                    read(&tmp.path().join("err.log"))
                );
            }
            ready = http_status(port, "/readyz", None);
            if ready == Some(200) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let healthz = http_status(port, "/healthz", None);
        let api_with = http_status(port, "/api/incidents", Some(&token));
        let api_without = http_status(port, "/api/incidents", None);
        child.kill().unwrap();
        child.wait().unwrap();
        let logs = read(&tmp.path().join("err.log")) + &read(&tmp.path().join("out.log"));
        assert_eq!(ready, Some(200), "{example}: /readyz\n{logs}");
        assert_eq!(healthz, Some(200), "{example}: /healthz\n{logs}");
        assert_eq!(
            api_with,
            Some(200),
            "{example}: /api with the token\n{logs}"
        );
        assert_eq!(
            api_without,
            Some(401),
            "{example}: /api without the token\n{logs}"
        );
        assert!(
            logs.contains("mode=dry-run"),
            "{example} starts in dry-run: {logs}"
        );
    }
}
