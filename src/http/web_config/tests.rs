use super::*;

/// Writes `text` as `web.yml` in a fresh directory and loads it.
fn load(text: &str) -> (tempfile::TempDir, Result<WebConfig, WebConfigError>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.yml");
    std::fs::write(&path, text).unwrap();
    let loaded = WebConfig::load(&path);
    (dir, loaded)
}

fn error(text: &str) -> String {
    let (_dir, loaded) = load(text);
    loaded.unwrap_err().to_string()
}

#[test]
fn an_empty_file_turns_nothing_on_and_users_load() {
    let (_dir, empty) = load("\n");
    let empty = empty.unwrap();
    assert!(empty.users.is_none() && empty.tls.is_none());
    let (cheap, dearer) = (
        bcrypt::hash("pw", 4).unwrap(),
        bcrypt::hash("pw", 5).unwrap(),
    );
    let (_dir, loaded) = load(&format!(
        "basic_auth_users:\n  alice: '{cheap}'\n  bob: '{dearer}'\n"
    ));
    let users = loaded.unwrap().users.unwrap();
    assert_eq!(users.len(), 2);
    // Unknown users cost what the dearest known one does.
    assert!(users.dummy().starts_with("$2b$05$"), "{}", users.dummy());
    let (_dir, none) = load("basic_auth_users: {}\n");
    assert!(none.unwrap().users.is_none());
}

#[test]
fn every_problem_is_named_and_no_hash_is_repeated() {
    let hash = "$2y$10$notreallyahashatallxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    let cases = [
        ("basic_auth_user:\n  alice: x\n", "unknown field `basic_auth_user`"),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [x]\n  client_ca_file: ca\n",
            "client_ca_file, cipher_suites not supported",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n",
            "client_auth_type: \"RequireAndVerifyClientCert\" is not supported",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS11\n",
            "min_version: \"TLS11\"",
        ),
        ("tls_server_config:\n  cert_file: a\n", "needs both cert_file and key_file"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  typo: 1\n", "unknown field `typo`"),
        ("http_server_config:\n  http2: false\n", "http_server_config is not supported"),
        (
            &format!("basic_auth_users:\n  alice: '{hash}'\n"),
            "basic_auth_users.alice: not a bcrypt hash",
        ),
        ("basic_auth_users:\n  'a:b': x\n", "cannot log in"),
    ];
    for (text, expected) in cases {
        let message = error(text);
        assert!(message.contains(expected), "{text}: {message}");
        assert!(message.contains("web.yml"), "names the file: {message}");
        assert!(!message.contains("notreallyahash"), "{message}");
    }
}

#[test]
fn relative_paths_resolve_against_the_files_directory() {
    let (dir, loaded) =
        load("tls_server_config:\n  cert_file: certs/server.crt\n  key_file: server.key\n");
    let message = loaded.unwrap_err().to_string();
    let expected = dir.path().join("certs/server.crt");
    assert!(
        message.contains(&expected.display().to_string()),
        "{message}"
    );
}
