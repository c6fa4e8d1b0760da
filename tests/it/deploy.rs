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

/// Every variable `serve --help` lists (the authoritative list), plus the README table's.
fn every_setting() -> BTreeSet<String> {
    let help = run(Command::new(env!("CARGO_BIN_EXE_alert-responder")).args(["serve", "--help"]));
    assert_success("serve --help", &help);
    let help = text(&help.stdout);
    let mut names: BTreeSet<String> = help
        .split("[env: ")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect()
        })
        .collect();
    let readme = read(&repo().join("README.md"));
    names.extend(
        readme
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

#[test]
fn kubernetes_manifests_parse_and_fit_together() {
    let dir = deploy("kubernetes");
    let mut docs = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            docs.extend(yaml_docs(&path));
        }
    }
    let kind = |k: &str| -> &Value {
        let found: Vec<&Value> = docs
            .iter()
            .filter(|d| d["kind"].as_str() == Some(k))
            .collect();
        assert_eq!(found.len(), 1, "one {k}");
        found[0]
    };
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
