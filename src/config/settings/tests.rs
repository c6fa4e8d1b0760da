use super::*;

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
}

#[test]
fn the_body_budget_follows_the_limit_and_must_hold_one_body() {
    let raised = Settings::load(&SettingsArgs {
        body_limit: Some(8 * 1024 * 1024),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        raised.body_budget,
        64 * 1024 * 1024,
        "eight bodies at the limit"
    );
    let err = Settings::load(&SettingsArgs {
        body_limit: Some(1024),
        body_budget: Some(1023),
        ..Default::default()
    })
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("RESPONDER_BODY_BUDGET"), "{err}");
}

#[test]
fn flags_win_over_the_file_and_the_file_over_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, "listen: 127.0.0.1:7000\nmode: dry-run\nslack_channel: '#ops'\nslack_oncall_group: S0ONCALL\noom_containers: spark-.*\nslack_post_unrouted: true\n").unwrap();
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
    let off = SettingsArgs {
        slack_post_unrouted: Some("false".into()),
        ..args
    };
    assert!(!Settings::load(&off).unwrap().slack_post_unrouted);
}

#[test]
fn bad_values_are_named() {
    let cases = [
        (
            SettingsArgs {
                listen: Some("nowhere".into()),
                ..Default::default()
            },
            "RESPONDER_LISTEN",
        ),
        (
            SettingsArgs {
                mode: Some("yolo".into()),
                ..Default::default()
            },
            "RESPONDER_MODE",
        ),
        (
            SettingsArgs {
                max_runs: Some(0),
                ..Default::default()
            },
            "RESPONDER_MAX_RUNS",
        ),
        (
            SettingsArgs {
                oom_containers: Some("k2-(".into()),
                ..Default::default()
            },
            "RESPONDER_OOM_CONTAINERS",
        ),
        (
            SettingsArgs {
                slack_post_unrouted: Some("maybe".into()),
                ..Default::default()
            },
            "SLACK_POST_UNROUTED",
        ),
    ];
    for (args, key) in cases {
        let err = Settings::load(&args).unwrap_err().to_string();
        assert!(err.starts_with(key), "{err}");
    }
}

#[test]
fn debug_output_never_shows_a_token() {
    let args = SettingsArgs {
        webhook_token: Some("w-secret-1".into()),
        slack_bot_token: Some("xoxb-secret-2".into()),
        pagerduty_webhook_secret: Some("pd-secret-3".into()),
        ..Default::default()
    };
    let settings = Settings::load(&args).unwrap();
    let shown = format!("{args:?} {settings:?}");
    assert!(
        !shown.contains("w-secret-1")
            && !shown.contains("xoxb-secret-2")
            && !shown.contains("pd-secret-3"),
        "{shown}"
    );
    assert!(
        shown.contains("[redacted]") || shown.contains("REDACTED"),
        "{shown}"
    );
}

#[test]
fn unknown_file_keys_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, "listn: 127.0.0.1:7000\n").unwrap();
    let err = Settings::load(&SettingsArgs {
        config: Some(path),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("unknown field `listn`"), "{err}");
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
        Settings::load(&SettingsArgs {
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
    let err = err.to_string();
    assert!(
        err.starts_with("RESPONDER_WEB_CONFIG: web config file ") && err.contains("alice"),
        "{err}"
    );
}

#[test]
fn the_pagerduty_secret_comes_from_the_file_or_the_flag_and_is_off_by_default() {
    use secrecy::ExposeSecret;
    assert!(Settings::load(&SettingsArgs::default())
        .unwrap()
        .pagerduty_webhook_secret
        .is_none());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, "pagerduty_webhook_secret: from-file\n").unwrap();
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
