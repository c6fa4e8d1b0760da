//! The Prometheus web configuration file (`RESPONDER_WEB_CONFIG`) against the real binary:
//! Basic auth users on the page, `/api/*` and the Alertmanager webhook next to the bearer
//! token; HTTPS with a certificate made here by the `openssl` CLI; SIGHUP replacing users and
//! certificate; a bad file refused at start and on reload; and a login in headless Chromium.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;

use crate::cli::shipped_catalog_args;
use crate::page::dump_dom;
use crate::support::app::am_alert;
use crate::support::binary::{binary, free_port, http, Child, QUICK, STARTUP};
use crate::support::tls::{certificate, trusting};

const CHALLENGE: &str = "Basic realm=\"alert-responder\"";

/// A web config file with these users (cost 4 keeps the test quick) and TLS files, if any,
/// written relative to the file's directory.
fn write_config(path: &Path, users: &[(&str, &str)], tls: Option<(&str, &str)>) {
    let mut text = String::new();
    if let Some((cert, key)) = tls {
        text.push_str(&format!(
            "tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
        ));
    }
    if !users.is_empty() {
        text.push_str("basic_auth_users:\n");
        for (user, password) in users {
            let hash = bcrypt::hash(password, 4).unwrap();
            text.push_str(&format!("  {user}: '{hash}'\n"));
        }
    }
    std::fs::write(path, text).unwrap();
}

/// Starts `serve` in `dir` with the web config at `config` (and the webhook token, if any),
/// and waits until `client` gets a 200 from `base`/healthz.
async fn start(
    dir: &Path,
    config: &Path,
    token: Option<&str>,
    port: u16,
    client: &reqwest::Client,
    base: &str,
) -> Child {
    let mut cmd = binary(dir);
    cmd.arg("serve")
        .args(shipped_catalog_args())
        .env("RESPONDER_LISTEN", format!("127.0.0.1:{port}"))
        .env("RESPONDER_WEB_CONFIG", config)
        .env("RESPONDER_OOM_CONTAINERS", "none-such");
    if let Some(token) = token {
        cmd.env("RESPONDER_WEBHOOK_TOKEN", token);
    }
    let mut server = Child::spawn(cmd, dir);
    let deadline = Instant::now() + STARTUP;
    loop {
        if let Some(status) = server.wait_exit(Duration::ZERO).await {
            panic!("exited with {status}; output:\n{}", server.output());
        }
        if let Ok(response) = client.get(format!("{base}/healthz")).send().await {
            if response.status() == 200 {
                return server;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no 200 from {base}/healthz; output:\n{}",
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The status of `GET url` as `user`:`password` (or anonymous), and its challenge if any.
async fn get(
    client: &reqwest::Client,
    url: &str,
    login: Option<(&str, &str)>,
) -> (u16, Option<String>) {
    let mut request = client.get(url);
    if let Some((user, password)) = login {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await.expect("the server answers");
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), challenge)
}

async fn post_alert(client: &reqwest::Client, base: &str, auth: Option<&str>) -> u16 {
    let body = am_alert(
        "firing",
        "WebLoginProbe",
        "k2-weblogin",
        "a0000000000web01",
        "2026-11-27T05:00:00Z",
    );
    let mut request = client
        .post(format!("{base}/webhook/alertmanager"))
        .json(&body);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    request.send().await.unwrap().status().as_u16()
}

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

#[tokio::test]
async fn users_log_in_to_the_page_and_api_and_webhooks_take_the_token_or_a_user() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("web.yml");
    let (token, password) = ("whk-token-7f3a", "correct horse 42");
    write_config(&config, &[("alice", password), ("bob", "other")], None);
    let (port, client) = (free_port(), http());
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start(dir.path(), &config, Some(token), port, &client, &base).await;

    for path in ["/", "/api/incidents", "/api/audit", "/incidents/1"] {
        let url = format!("{base}{path}");
        let anonymous = get(&client, &url, None).await;
        assert_eq!(anonymous, (401, Some(CHALLENGE.to_owned())), "{path}");
        let wrong = get(&client, &url, Some(("alice", "wrong"))).await;
        assert_eq!(wrong, (401, Some(CHALLENGE.to_owned())), "{path}");
        let stranger = get(&client, &url, Some(("mallory", password))).await;
        assert_eq!(stranger.0, 401, "{path}");
    }
    for path in ["/", "/api/incidents", "/api/audit"] {
        let url = format!("{base}{path}");
        assert_eq!(get(&client, &url, Some(("alice", password))).await.0, 200);
        // Twice: the second answer comes from the cache of verified logins.
        assert_eq!(get(&client, &url, Some(("alice", password))).await.0, 200);
        let bearer = client.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(bearer.status(), 200, "the token still opens {path}");
    }
    assert_eq!(get(&client, &format!("{base}/healthz"), None).await.0, 200);

    assert_eq!(post_alert(&client, &base, None).await, 401);
    assert_eq!(post_alert(&client, &base, Some("Bearer nope")).await, 401);
    let wrong = basic("alice", "wrong");
    assert_eq!(post_alert(&client, &base, Some(&wrong)).await, 401);
    let bearer = format!("Bearer {token}");
    assert_eq!(post_alert(&client, &base, Some(&bearer)).await, 200);
    let login = basic("bob", "other");
    assert_eq!(post_alert(&client, &base, Some(&login)).await, 200);

    let status = server.terminate().await;
    let output = server.output();
    assert!(status.success(), "{output}");
    assert!(output.contains("Basic auth is on"), "{output}");
    assert!(output.contains("TLS is off"), "{output}");
    for secret in [password, token, "other"] {
        assert!(!output.contains(secret), "{secret} logged:\n{output}");
    }
}

#[tokio::test]
async fn a_bad_web_config_file_stops_the_start_with_one_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("web.yml");
    std::fs::write(
        &config,
        "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  client_ca_file: ca.pem\n",
    )
    .unwrap();
    let mut cmd = binary(dir.path());
    cmd.arg("serve")
        .args(shipped_catalog_args())
        .env("RESPONDER_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("RESPONDER_WEB_CONFIG", &config);
    let mut server = Child::spawn(cmd, dir.path());
    let status = server.wait_exit(QUICK).await.expect("refuses to start");
    let stderr = server.stderr();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("RESPONDER_WEB_CONFIG")
            && stderr.contains("web.yml")
            && stderr.contains("client_ca_file")
            && stderr.contains("not supported"),
        "{stderr}"
    );
}

#[tokio::test]
async fn https_is_served_and_sighup_replaces_the_certificate_and_the_users() {
    let dir = tempfile::tempdir().unwrap();
    // The file and its certificates in their own directory, named relative to it.
    let web = dir.path().join("web");
    std::fs::create_dir(&web).unwrap();
    let (first_ca, second_ca) = (certificate(&web, "first"), certificate(&web, "second"));
    let config = web.join("web.yml");
    write_config(
        &config,
        &[("alice", "old-password")],
        Some(("first.crt", "first.key")),
    );
    let port = free_port();
    let base = format!("https://127.0.0.1:{port}");
    let (first, second) = (trusting(&first_ca), trusting(&second_ca));
    let mut server = start(dir.path(), &config, None, port, &first, &base).await;
    let page = format!("{base}/");
    assert_eq!(
        get(&first, &page, Some(("alice", "old-password"))).await.0,
        200
    );
    assert_eq!(get(&first, &page, None).await.0, 401);
    assert!(
        second.get(&page).send().await.is_err(),
        "the first certificate is served"
    );
    let plain = http()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(
        plain.map_or(true, |r| r.status() != 200),
        "plain HTTP gets no page"
    );

    write_config(
        &config,
        &[("alice", "new-password")],
        Some(("second.crt", "second.key")),
    );
    server.send_signal("HUP");
    let deadline = Instant::now() + QUICK;
    while get_ok(&second, &page, ("alice", "new-password"))
        .await
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "the new certificate and password were not taken; output:\n{}",
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        get(&second, &page, Some(("alice", "old-password"))).await.0,
        401
    );
    assert!(
        first.get(&page).send().await.is_err(),
        "the old certificate is no longer served"
    );

    // A broken file on SIGHUP: said in the log, and the last good one stays.
    std::fs::write(&config, "basic_auth_users:\n  alice: not-a-hash\n").unwrap();
    server.send_signal("HUP");
    let deadline = Instant::now() + QUICK;
    while !server.output().contains("NOT reloaded") {
        assert!(Instant::now() < deadline, "{}", server.output());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        get(&second, &page, Some(("alice", "new-password"))).await.0,
        200
    );

    let status = server.terminate().await;
    let output = server.output();
    assert!(status.success(), "{output}");
    assert!(output.contains("TLS is on"), "{output}");
    assert!(
        output.contains("basic_auth_users.alice: not a bcrypt hash"),
        "{output}"
    );
    for secret in ["old-password", "new-password"] {
        assert!(!output.contains(secret), "{secret} logged:\n{output}");
    }
}

/// `Some(())` when `url` answers 200 to this login over a connection `client` accepts.
async fn get_ok(client: &reqwest::Client, url: &str, login: (&str, &str)) -> Option<()> {
    let response = client
        .get(url)
        .basic_auth(login.0, Some(login.1))
        .send()
        .await
        .ok()?;
    (response.status() == 200).then_some(())
}

#[tokio::test]
async fn a_browser_logs_in_with_basic_auth_and_sees_the_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("web.yml");
    write_config(&config, &[("oncall", "page-pass-9")], None);
    let (port, client) = (free_port(), http());
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start(dir.path(), &config, None, port, &client, &base).await;
    let login = basic("oncall", "page-pass-9");
    assert_eq!(post_alert(&client, &base, Some(&login)).await, 200);
    let deadline = Instant::now() + QUICK;
    loop {
        let list = client
            .get(format!("{base}/api/incidents"))
            .header("authorization", &login)
            .send()
            .await
            .unwrap();
        let list: serde_json::Value = list.json().await.unwrap();
        if !list.as_array().unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "no incident recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let profile = dir.path().join("chromium-profile");
    let anonymous = dump_dom(&profile, &format!("{base}/")).await;
    // Headless Chromium answers a Basic challenge it has no login for with an empty page.
    assert!(!anonymous.contains("WebLoginProbe"), "{anonymous}");
    let wrong = dump_dom(&profile, &format!("http://oncall:wrong@127.0.0.1:{port}/")).await;
    assert!(!wrong.contains("WebLoginProbe"), "{wrong}");
    let page = dump_dom(
        &profile,
        &format!("http://oncall:page-pass-9@127.0.0.1:{port}/"),
    )
    .await;
    assert!(page.contains("Incidents"), "{page}");
    assert!(page.contains("WebLoginProbe"), "{page}");
    server.terminate().await;
}

#[tokio::test]
async fn the_example_file_in_deploy_loads_and_its_hash_is_of_the_documented_password() {
    use alert_responder::http::{Access, WebConfig};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/web-config.yml");
    let config = WebConfig::load(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let password = text
        .split("The hash below is of \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the example names its password");
    let access = Access::new(None, config.users.clone());
    let headers = |value: String| {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("authorization", value.parse().unwrap());
        headers
    };
    access
        .check(&headers(basic("oncall", password)))
        .await
        .unwrap();
    assert!(access
        .check(&headers(basic("oncall", "not-it")))
        .await
        .is_err());
}
