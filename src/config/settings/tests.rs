use secrecy::ExposeSecret;

use super::*;

fn load(args: SettingsArgs) -> Result<Settings, String> {
    Settings::load(&args).map_err(|e| e.to_string())
}

/// A `--config` file holding `text`, in its own temporary directory.
fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn defaults_run_on_a_fresh_machine() {
    let s = Settings::load(&SettingsArgs::default()).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:9095");
    assert_eq!(s.database_url, "sqlite://data/alert-responder.db");
    assert_eq!(s.mode, Mode::Live);
    assert_eq!(s.slack_channel, "#incidents");
    assert_eq!(s.slack_api_url, "https://slack.com/api");
    assert!(s.slack_bot_token.is_none());
    assert!(s.oom_containers.is_match("k2-spark-master"));
    assert!(!s.oom_containers.is_match("postgres"));
    assert!(
        !s.slack_post_unrouted,
        "unrouted alerts are quiet by default"
    );
    assert!(s.check_exposure().is_ok());
    assert_eq!(
        (s.body_limit, s.body_budget),
        (4 * 1024 * 1024, 32 * 1024 * 1024)
    );
    assert_eq!((s.max_runs, s.actions_per_minute.get()), (8, 10));
    assert_eq!(s.lease, Duration::from_secs(15));
    assert_eq!(s.shutdown_drain, Duration::from_secs(2));
    assert_eq!(s.pagerduty.api_url, "https://api.pagerduty.com");
    assert!(
        s.playbook_config.is_empty(),
        "the playbooks' defaults ship with them, not in the code"
    );
}

#[test]
fn the_body_budget_follows_the_limit_and_must_hold_one_body() {
    let raised = Settings::load(&SettingsArgs {
        body_limit: Some("8388608".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        raised.body_budget,
        64 * 1024 * 1024,
        "eight bodies at the limit"
    );
    let err = load(SettingsArgs {
        body_limit: Some("1024".into()),
        body_budget: Some("1023".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        err.contains("RESPONDER_BODY_BUDGET=1023: less than the body limit (1024)"),
        "{err}"
    );
}

#[test]
fn flags_win_over_the_file_and_the_file_over_defaults() {
    let (_dir, path) = file("listen: 127.0.0.1:7000\nmode: dry-run\nslack_channel: '#ops'\nslack_oncall_group: S0ONCALL\noom_containers: spark-.*\nslack_post_unrouted: true\nmax_runs: 3\n");
    let args = SettingsArgs {
        config: Some(path),
        listen: Some("127.0.0.1:7001".into()),
        ..Default::default()
    };
    let s = Settings::load(&args).unwrap();
    assert_eq!(s.listen.port(), 7001);
    assert_eq!(s.mode, Mode::DryRun);
    assert_eq!(s.slack_channel, "#ops");
    assert_eq!(s.oncall_mention.as_deref(), Some("<!subteam^S0ONCALL>"));
    assert!(s.oom_containers.is_match("spark-worker-1"));
    assert!(s.slack_post_unrouted);
    assert_eq!(
        s.max_runs, 3,
        "a YAML number is read like the variable's text"
    );
    let off = SettingsArgs {
        slack_post_unrouted: Some("false".into()),
        ..args.clone()
    };
    assert!(!Settings::load(&off).unwrap().slack_post_unrouted);
    let empty = SettingsArgs {
        mode: Some("".into()),
        ..args
    };
    assert_eq!(
        Settings::load(&empty).unwrap().mode,
        Mode::DryRun,
        "an empty variable is unset"
    );
}

#[test]
fn every_bad_setting_is_reported_at_once_named_as_given() {
    let err = load(SettingsArgs {
        listen: Some("nowhere".into()),
        mode: Some("yolo".into()),
        max_runs: Some("abc".into()),
        actions_per_minute: Some("0".into()),
        oom_containers: Some("k2-(".into()),
        slack_post_unrouted: Some("maybe".into()),
        lease: Some("1s".into()),
        slack_run_allowed: Some("alice".into()),
        pagerduty_api_url: Some("ftp://pd".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.starts_with("9 bad settings:\n  "), "{err}");
    for want in [
        "RESPONDER_LISTEN=nowhere: not an address",
        "RESPONDER_MODE=yolo: use live or dry-run",
        "RESPONDER_MAX_RUNS=abc: not a number; use a whole number of at least 1",
        "RESPONDER_ACTIONS_PER_MINUTE=0: must be at least 1",
        "RESPONDER_OOM_CONTAINERS=k2-(: invalid regex",
        "SLACK_POST_UNROUTED=maybe: use true or false",
        "RESPONDER_LEASE=1s: must be at least 3s",
        "SLACK_RUN_ALLOWED=alice: \"alice\" is not a Slack user ID",
        "PAGERDUTY_API_URL=ftp://pd: use an http or https URL",
    ] {
        assert!(err.contains(&format!("\n  {want}")), "{want}\n{err}");
    }
}

#[test]
fn a_bad_value_from_the_file_is_named_with_the_file() {
    let (_dir, path) = file("max_runs: many\nrequest_timeout: 0s\nlistn: x\n");
    let err = load(SettingsArgs {
        config: Some(path.clone()),
        mode: Some("yolo".into()),
        ..Default::default()
    })
    .unwrap_err();
    let shown = path.display();
    for want in [
        format!("listn (in {shown}): unknown setting; did you mean `listen`?"),
        format!("max_runs: many (in {shown}): not a number"),
        format!("request_timeout: 0s (in {shown}): must be longer than zero"),
        "RESPONDER_MODE=yolo".to_owned(),
    ] {
        assert!(err.contains(&want), "{want}\n{err}");
    }
    assert!(err.starts_with("4 bad settings"), "{err}");
}

#[test]
fn debug_output_never_shows_a_token() {
    let args = SettingsArgs {
        webhook_token: Some("w-secret-1".into()),
        slack_bot_token: Some("xoxb-secret-2".into()),
        pagerduty_webhook_secret: Some("pd-secret-3".into()),
        database_url: Some("postgres://u:db-secret-4@h/d".into()),
        grafana_api_token: Some("glsa-secret-5".into()),
        ..Default::default()
    };
    let settings = Settings::load(&args).unwrap();
    let shown = format!("{args:?} {:?}", settings.webhook_token);
    for secret in [
        "w-secret-1",
        "xoxb-secret-2",
        "pd-secret-3",
        "db-secret-4",
        "glsa-secret-5",
    ] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(shown.contains("[redacted]"), "{shown}");
}

#[test]
fn a_config_file_that_cannot_be_read_is_named() {
    let err = load(SettingsArgs {
        config: Some("/nonexistent/responder.yaml".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        err.starts_with("config file /nonexistent/responder.yaml: "),
        "{err}"
    );
    let (_dir, path) = file("max_runs: [1, 2]\n");
    let err = load(SettingsArgs {
        config: Some(path.clone()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        err.contains(&format!("max_runs (in {}): ", path.display())),
        "{err}"
    );
}

#[test]
fn listening_beyond_loopback_needs_a_token() {
    let open = Settings::load(&SettingsArgs {
        listen: Some("0.0.0.0:9095".into()),
        ..Default::default()
    })
    .unwrap();
    let err = open.check_exposure().unwrap_err().to_string();
    assert!(err.contains("RESPONDER_WEBHOOK_TOKEN"), "{err}");
    let guarded = Settings::load(&SettingsArgs {
        listen: Some("0.0.0.0:9095".into()),
        webhook_token: Some("t0k3n".into()),
        ..Default::default()
    })
    .unwrap();
    assert!(guarded.check_exposure().is_ok());
}

#[test]
fn users_in_the_web_config_file_also_guard_a_listener_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let with_users = |text: &str| {
        let path = dir.path().join("web.yml");
        std::fs::write(&path, text).unwrap();
        load(SettingsArgs {
            listen: Some("0.0.0.0:9095".into()),
            web_config: Some(path),
            ..Default::default()
        })
    };
    let hash = bcrypt::hash("pw", 4).unwrap();
    let guarded = with_users(&format!("basic_auth_users:\n  alice: '{hash}'\n")).unwrap();
    assert!(guarded.users_required());
    assert!(guarded.check_exposure().is_ok());
    let empty = with_users("basic_auth_users: {}\n").unwrap();
    assert!(empty.check_exposure().is_err());
    let err = with_users("basic_auth_users:\n  alice: plain\n").unwrap_err();
    assert!(
        err.contains("RESPONDER_WEB_CONFIG=") && err.contains("alice"),
        "{err}"
    );
}

#[test]
fn the_pagerduty_secret_comes_from_the_file_or_the_flag_and_is_off_by_default() {
    assert!(Settings::load(&SettingsArgs::default())
        .unwrap()
        .pagerduty_webhook_secret
        .is_none());
    let (_dir, path) = file("pagerduty_webhook_secret: from-file\n");
    let from_file = Settings::load(&SettingsArgs {
        config: Some(path.clone()),
        ..Default::default()
    })
    .unwrap();
    let secret = from_file.pagerduty_webhook_secret.unwrap();
    assert_eq!(secret.expose_secret(), "from-file");
    let flag = Settings::load(&SettingsArgs {
        config: Some(path),
        pagerduty_webhook_secret: Some("from-flag".into()),
        ..Default::default()
    })
    .unwrap();
    let secret = flag.pagerduty_webhook_secret.unwrap();
    assert_eq!(secret.expose_secret(), "from-flag");
}

#[test]
fn playbook_settings_are_an_open_map_from_the_file_the_environment_and_the_older_names() {
    let (_dir, path) = file(
        "playbook_config:\n  my_service_url: http://svc:8080/\n  kafka_container: from-file\n  cleaner_container: file-cleaner\n  retries: 3\nspark_master_container: file-alias\n",
    );
    let env = [
        ("RESPONDER_CONFIG_KAFKA_CONTAINER", "from-env"),
        ("RESPONDER_CONFIG_NEW_THING", "x"),
        ("RESPONDER_CONFIG", "not a playbook setting"),
        ("CLEANER", "unrelated"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let args = SettingsArgs {
        config: Some(path),
        cleaner_container: Some("from-alias-flag".into()),
        ..Default::default()
    };
    let s = Settings::load_with_env(&args, env.into_iter()).unwrap();
    let expected = [
        ("cleaner_container", "from-alias-flag"),
        ("kafka_container", "from-env"),
        ("my_service_url", "http://svc:8080"),
        ("new_thing", "x"),
        ("retries", "3"),
        ("spark_master_container", "file-alias"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    assert_eq!(s.playbook_config, BTreeMap::from(expected));

    let bad_env = [("RESPONDER_CONFIG_BAD-NAME".to_owned(), "v".to_owned())];
    let err = Settings::load_with_env(&SettingsArgs::default(), bad_env.into_iter())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("RESPONDER_CONFIG_BAD-NAME=v: not a playbook setting name"),
        "{err}"
    );
}
