//! The incident page in a real browser: headless Chromium (Debian packages `chromium` and
//! `chromium-driver`) loads `/` and `/incidents/{id}` from the running app, dumps the rendered
//! DOM and takes screenshots at laptop and phone sizes, kept in `target/test-artifacts/page/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::app::{am_alert, catalog_dir, Options, TestApp, SLACK_TOKEN};
use crate::support::fake_slack::FakeSlack;

const EVIL: &str = "<script>document.title='pwned'</script>";

fn catalog(dir: &Path) -> (PathBuf, PathBuf) {
    catalog_dir(
        dir,
        "routes:\n  - matchers: ['alertname=\"PagePlaybook\"']\n    responder: page-demo\n",
        &[(
            "page-demo",
            r#"
name: page-demo
target: "{{ alert.labels.container }}"
steps:
  - id: diagnose
    action: report
    text: "Diagnosis for {{ target }}: consumer lag 1234 msgs, growing"
  - id: advise
    action: report
    text: "Advice: scale {{ target }} to 4 executors"
"#,
        )],
    )
}

/// The alert with attacker-controlled text in a label and in its summary.
fn alert(container: &str, fingerprint: &str) -> Value {
    let mut body = am_alert(
        "firing",
        "PagePlaybook",
        container,
        fingerprint,
        "2026-11-27T05:00:00Z",
    );
    body["alerts"][0]["labels"]["note"] = EVIL.into();
    body["alerts"][0]["annotations"]["summary"] = format!("lag on {container} {EVIL}").into();
    body
}

fn chromium() -> &'static str {
    let found = std::process::Command::new("sh")
        .args(["-c", "command -v chromium"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "chromium is not installed: the incident-page tests need a real browser. \
         Install the Debian packages: apt-get install -y chromium chromium-driver \
         (scripts/test does this)"
    );
    "chromium"
}

/// Runs headless Chromium with `args` then `url`, with its own profile, bounded in time.
async fn run_chromium(profile: &Path, args: &[String], url: &str) -> std::process::Output {
    let mut command = tokio::process::Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(90), command.output())
        .await
        .expect("chromium finishes within 90 s")
        .expect("chromium starts");
    assert!(
        output.status.success(),
        "chromium {args:?} {url}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub(crate) async fn dump_dom(profile: &Path, url: &str) -> String {
    let out = run_chromium(profile, &["--dump-dom".to_owned()], url).await;
    String::from_utf8(out.stdout).unwrap()
}

async fn screenshot(profile: &Path, url: &str, name: &str, size: (u32, u32)) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts/page");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    run_chromium(
        profile,
        &[
            format!("--screenshot={}", path.display()),
            format!("--window-size={},{}", size.0, size.1),
        ],
        url,
    )
    .await;
    let len = std::fs::metadata(&path)
        .unwrap_or_else(|e| panic!("no screenshot at {}: {e}", path.display()))
        .len();
    // A blank page of that size compresses to a few KB; a rendered one is far larger.
    assert!(len > 20_000, "{}: only {len} bytes", path.display());
    let png = std::fs::read(&path).unwrap();
    assert_eq!(
        &png[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is a PNG",
        path.display()
    );
    path
}

async fn wait_for_decision(app: &TestApp, target: &str) -> i64 {
    for _ in 0..200 {
        for incident in app.incidents().await {
            if incident["target"] == target {
                let id = incident["id"].as_i64().unwrap();
                let detail = app.get_json(&format!("/api/incidents/{id}")).await;
                if !detail["decisions"].as_array().unwrap().is_empty() {
                    return id;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no decision for {target}");
}

#[tokio::test]
async fn the_browser_renders_the_list_and_the_timeline_with_steps_escaped_at_both_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let app = TestApp::spawn(
        dir.path(),
        Some(&slack),
        Options {
            catalog: Some(catalog(dir.path())),
            ..Default::default()
        },
    )
    .await;
    for (container, fingerprint) in [
        ("k2-stream-job", "a00000000000p001"),
        ("prod-db", "a00000000000p002"),
    ] {
        assert_eq!(
            app.post_alertmanager(&alert(container, fingerprint))
                .await
                .status(),
            200
        );
    }
    let ran = app.wait_for_finished_run("k2-stream-job", 1).await;
    let id = ran["incident"]["id"].as_i64().unwrap();
    let refused = wait_for_decision(&app, "prod-db").await;
    // Let the outbox deliver, so the timeline shows sent messages.
    let delivered = slack
        .wait_for(|calls| calls.len() >= 4, Duration::from_secs(20))
        .await;
    assert!(delivered, "{:#?}", slack.calls());

    let profile = dir.path().join("chromium-profile");
    let list = dump_dom(&profile, &format!("{}/", app.address)).await;
    assert!(list.contains("Incidents"), "{list}");
    assert!(
        list.contains(&format!("href=\"/incidents/{id}\"")),
        "{list}"
    );
    assert!(
        list.contains(&format!("href=\"/incidents/{refused}\"")),
        "{list}"
    );
    assert!(list.contains("prod-db"), "{list}");

    let url = format!("{}/incidents/{id}", app.address);
    let page = dump_dom(&profile, &url).await;
    for needle in [
        "Step diagnose (report)",
        "Step advise (report)",
        "Diagnosis for k2-stream-job: consumer lag 1234 msgs, growing",
        "Advice: scale k2-stream-job to 4 executors",
        "Run #",
        "finished",
        "succeeded",
        "Alert firing received",
        "Slack parent message",
        "sent",
    ] {
        assert!(
            page.contains(needle),
            "{needle} not in the rendered DOM:\n{page}"
        );
    }
    // The label reached the page as text, never as an element the browser ran.
    assert!(page.contains("&lt;script&gt;"), "{page}");
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("pwned</title>"), "{page}");

    let refused_page = dump_dom(&profile, &format!("{}/incidents/{refused}", app.address)).await;
    assert!(
        refused_page.contains("Decision: target_refused"),
        "{refused_page}"
    );

    // A tall laptop window too: the whole timeline, steps included, in one picture.
    for (name, size) in [
        ("laptop", (1280, 900)),
        ("phone", (390, 844)),
        ("laptop-tall", (1280, 2400)),
    ] {
        screenshot(
            &profile,
            &format!("{}/", app.address),
            &format!("list-{name}.png"),
            size,
        )
        .await;
        screenshot(&profile, &url, &format!("incident-{name}.png"), size).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_incident_is_a_404_page() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(dir.path(), None, Options::default()).await;
    let response = app
        .client
        .get(format!("{}/incidents/999", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(response.text().await.unwrap().contains("no incident 999"));
    app.stop().await;
}

#[tokio::test]
async fn with_a_token_the_page_needs_the_bearer_header_and_never_takes_it_in_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let token = "page-token-1b2c";
    let app = TestApp::spawn(
        dir.path(),
        None,
        Options {
            webhook_token: Some(token.into()),
            catalog: Some(catalog(dir.path())),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        app.post_alertmanager(&alert("prod-db", "a00000000000p003"))
            .await
            .status(),
        200
    );
    let id = wait_for_decision(&app, "prod-db").await;
    for path in ["/".to_owned(), format!("/incidents/{id}")] {
        let anonymous = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401, "{path}");
        let body = anonymous.text().await.unwrap();
        assert!(!body.contains("prod-db"), "{path} leaks: {body}");
        let in_url = app
            .client
            .get(format!("{}{path}?token={token}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(in_url.status(), 401, "{path}?token=");
        let wrong = app
            .client
            .get(format!("{}{path}", app.address))
            .bearer_auth("nope")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{path}");
        let ok = app
            .client
            .get(format!("{}{path}", app.address))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200, "{path}");
        assert!(ok.text().await.unwrap().contains("prod-db"), "{path}");
    }
    app.stop().await;
}
