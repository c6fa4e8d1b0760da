//! Alertmanager's API v2, for silences: make one for an alert a run is handling, expire it,
//! and follow the alert while it is muted (Alertmanager then sends us nothing for it either).
//!
//! `ALERTMANAGER_URL` may list an HA pair: a silence is made on the first peer that answers
//! and the pair gossips it; expiring and reading try the peer that made it first, then the
//! others. Calls are short (a few seconds): a run waits for the silence before it acts.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::alert::{Alert, Labels, Source, Status};

/// Bound on one call to one peer, connecting included.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// How long after its start an Alertmanager may not yet list an alert that still fires: it
/// keeps alerts in memory only, and Prometheus sends each again within a minute.
const RESEND_GRACE: Duration = Duration::from_secs(120);

/// What this service writes as a silence's `createdBy`.
pub const CREATED_BY: &str = "alert-responder";

/// Why no peer did what was asked: each peer's answer, for the thread and the log.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct Unreachable(Vec<String>);

/// A silence as made: its id and the peer that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    /// Alertmanager's silence id.
    pub id: String,
    /// The base URL of the peer that made it.
    pub on: String,
}

/// An alert as `GET /api/v2/alerts` lists it (the fields followed).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    fingerprint: String,
    labels: Labels,
    #[serde(default)]
    annotations: Labels,
    #[serde(with = "time::serde::rfc3339")]
    starts_at: OffsetDateTime,
    #[serde(default, rename = "generatorURL")]
    generator_url: Option<String>,
}

/// Where a followed alert instance stands in Alertmanager.
#[derive(Debug, Clone, PartialEq)]
pub enum Followed {
    /// Still firing since the same start.
    Firing,
    /// No longer listed by a peer up for longer than Prometheus takes to send it again: it
    /// resolved (Alertmanager lists only alerts not yet ended).
    Resolved,
    /// Firing again since a later start: it resolved and came back. The new instance.
    Refired(Box<Alert>),
}

/// A client for the Alertmanager peers of `ALERTMANAGER_URL`.
#[derive(Debug, Clone)]
pub struct AlertmanagerClient {
    http: reqwest::Client,
    peers: Vec<String>,
}

impl AlertmanagerClient {
    /// A client for `peers` (base URLs, no trailing `/`, at least one).
    pub fn new(peers: Vec<String>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .user_agent(concat!("alert-responder/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        if peers.is_empty() {
            return Err("no Alertmanager URL".to_owned());
        }
        Ok(Self { http, peers })
    }

    /// The peers, `first` (when one of them) before the others.
    fn peers_from<'a>(&'a self, first: Option<&'a str>) -> Vec<&'a str> {
        let mut peers: Vec<&str> = first.into_iter().collect();
        peers.extend(
            self.peers
                .iter()
                .map(String::as_str)
                .filter(|p| Some(*p) != first),
        );
        peers
    }

    /// Makes a silence with an equality matcher for each of `labels`, from `now` to `ends`.
    pub async fn silence(
        &self,
        labels: &Labels,
        now: OffsetDateTime,
        ends: OffsetDateTime,
        comment: &str,
    ) -> Result<Made, Unreachable> {
        let matchers: Vec<_> = (labels.iter())
            .map(|(name, value)| json!({"name": name, "value": value, "isRegex": false, "isEqual": true}))
            .collect();
        let body = json!({
            "matchers": matchers,
            "startsAt": rfc3339(now),
            "endsAt": rfc3339(ends),
            "createdBy": CREATED_BY,
            "comment": comment,
        });
        let mut failures = Vec::new();
        for peer in self.peers_from(None) {
            let sent = self
                .http
                .post(format!("{peer}/api/v2/silences"))
                .json(&body)
                .send()
                .await;
            match answer(peer, sent).await {
                Ok(text) => match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(v) => match v["silenceID"].as_str() {
                        Some(id) => {
                            return Ok(Made {
                                id: id.to_owned(),
                                on: peer.to_owned(),
                            })
                        }
                        None => failures.push(format!("{peer}: no silenceID in its answer")),
                    },
                    Err(e) => failures.push(format!("{peer}: unreadable answer ({e})")),
                },
                Err(failure) => failures.push(failure),
            }
        }
        Err(Unreachable(failures))
    }

    /// Expires silence `id`, on `made_on` first. One already gone counts as expired.
    pub async fn expire(&self, id: &str, made_on: &str) -> Result<(), Unreachable> {
        let mut failures = Vec::new();
        for peer in self.peers_from(Some(made_on)) {
            let sent = self
                .http
                .delete(format!("{peer}/api/v2/silence/{id}"))
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() || r.status() == 404 => return Ok(()),
                other => failures.push(answer(peer, other).await.err().unwrap_or_default()),
            }
        }
        Err(Unreachable(failures))
    }

    /// What a peer lists under `alertname` now (`made_on` asked first, the others if it does
    /// not answer): read once for every silenced alert of that name, the `followed` ones.
    /// When the peer started is read only if one of them is missing: only then does it count.
    pub async fn listing(
        &self,
        alertname: &str,
        made_on: &str,
        followed: &[&Alert],
    ) -> Result<Listing, Unreachable> {
        let mut failures = Vec::new();
        // Filtered by name only, then matched by fingerprint: label values need no escaping
        // into Alertmanager's matcher syntax.
        let filter = format!("alertname=\"{}\"", matcher_value(alertname));
        let query = [
            ("filter", filter.as_str()),
            ("active", "true"),
            ("silenced", "true"),
            ("inhibited", "true"),
            ("unprocessed", "true"),
        ];
        for peer in self.peers_from(Some(made_on)) {
            let sent = (self.http.get(format!("{peer}/api/v2/alerts")))
                .query(&query)
                .send()
                .await;
            let text = match answer(peer, sent).await {
                Ok(text) => text,
                Err(failure) => {
                    failures.push(failure);
                    continue;
                }
            };
            let alerts: Vec<Listed> = match serde_json::from_str(&text) {
                Ok(alerts) => alerts,
                Err(e) => {
                    failures.push(format!("{peer}: unreadable alert list ({e})"));
                    continue;
                }
            };
            let missing =
                (followed.iter()).any(|f| !alerts.iter().any(|a| a.fingerprint == f.fingerprint));
            let started = if missing {
                self.started(peer).await
            } else {
                None
            };
            return Ok(Listing {
                alerts,
                started,
                now: OffsetDateTime::now_utc(),
            });
        }
        Err(Unreachable(failures))
    }

    /// When `peer` started, if it says.
    async fn started(&self, peer: &str) -> Option<OffsetDateTime> {
        #[derive(Deserialize)]
        struct Status {
            #[serde(with = "time::serde::rfc3339")]
            uptime: OffsetDateTime,
        }
        let sent = self.http.get(format!("{peer}/api/v2/status")).send().await;
        let text = answer(peer, sent).await.ok()?;
        serde_json::from_str::<Status>(&text).ok().map(|s| s.uptime)
    }
}

/// The alerts a peer listed under one name, with when it started and when it was read.
#[derive(Debug, Clone)]
pub struct Listing {
    alerts: Vec<Listed>,
    /// When the peer started; `None` when it would not say, or was not asked (every
    /// followed alert was listed).
    started: Option<OffsetDateTime>,
    now: OffsetDateTime,
}

impl Listing {
    /// Where `alert` (an instance this service received from Alertmanager, silenced at
    /// `made_unix`) stands.
    pub fn follow(&self, alert: &Alert, made_unix: i64) -> Followed {
        let standing = standing(alert, &self.alerts);
        // A peer that started since the silence was made (or will not say when it started)
        // may have forgotten the alert: it keeps alerts in memory, and Prometheus sends
        // each again within a minute. Absent from it is not resolved until then.
        let forgetful = self.started.is_none_or(|started| {
            started.unix_timestamp() >= made_unix && self.now - started < RESEND_GRACE
        });
        if standing == Followed::Resolved && forgetful {
            return Followed::Firing;
        }
        standing
    }
}

/// Where `alert` stands among the alerts Alertmanager lists.
fn standing(alert: &Alert, listed: &[Listed]) -> Followed {
    let Some(now) = listed.iter().find(|l| l.fingerprint == alert.fingerprint) else {
        return Followed::Resolved;
    };
    // Alertmanager keeps the first start of an alert that kept firing; a later one is a new
    // instance (whole seconds: the webhook and the API may differ below that).
    if now.starts_at.unix_timestamp() <= alert.starts_at.unix_timestamp() {
        return Followed::Firing;
    }
    Followed::Refired(Box::new(Alert {
        source: Source::Alertmanager,
        fingerprint: now.fingerprint.clone(),
        status: Status::Firing,
        labels: now.labels.clone(),
        annotations: now.annotations.clone(),
        starts_at: now.starts_at,
        ends_at: None,
        generator_url: now.generator_url.clone().filter(|u| !u.is_empty()),
    }))
}

/// The body of a 2xx answer, else a line naming the peer and what went wrong.
async fn answer(
    peer: &str,
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<String, String> {
    let response = sent.map_err(|e| {
        let what = if e.is_timeout() {
            "no answer in time"
        } else if e.is_connect() {
            "connection refused or unreachable"
        } else {
            "request failed"
        };
        format!("{peer}: {what}")
    })?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status.is_success() {
        Ok(body)
    } else {
        let body = crate::text::cut(&body, 200);
        Err(format!("{peer}: {status} {}", body.trim()))
    }
}

/// `value` escaped for a double-quoted matcher value.
fn matcher_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(fingerprint: &str, starts: i64) -> Listed {
        Listed {
            fingerprint: fingerprint.to_owned(),
            labels: Labels::from([("alertname".to_owned(), "HighMemoryUsage".to_owned())]),
            annotations: Labels::new(),
            starts_at: OffsetDateTime::from_unix_timestamp(starts).unwrap(),
            generator_url: Some(String::new()),
        }
    }

    #[test]
    fn an_alert_is_firing_resolved_or_refired_by_its_fingerprint_and_start() {
        let mut alert = crate::alert::firing_for_tests(&[("alertname", "HighMemoryUsage")]);
        alert.fingerprint = "f1".to_owned();
        alert.starts_at = OffsetDateTime::from_unix_timestamp(1_000).unwrap();
        assert_eq!(standing(&alert, &[]), Followed::Resolved);
        assert_eq!(standing(&alert, &[listed("f2", 1_000)]), Followed::Resolved);
        assert_eq!(standing(&alert, &[listed("f1", 1_000)]), Followed::Firing);
        let Followed::Refired(new) = standing(&alert, &[listed("f2", 5), listed("f1", 1_060)])
        else {
            panic!("a later start is a new instance");
        };
        assert_eq!(new.starts_at.unix_timestamp(), 1_060);
        assert_eq!(new.status, Status::Firing);
        assert_eq!(new.generator_url, None, "an empty generator URL is none");
    }

    #[test]
    fn a_peer_that_restarted_since_the_silence_is_not_believed_when_the_alert_is_gone() {
        let alert = crate::alert::firing_for_tests(&[("alertname", "HighMemoryUsage")]);
        let at = |t: i64| OffsetDateTime::from_unix_timestamp(t).unwrap();
        let listing = |started: Option<i64>, now: i64| Listing {
            alerts: Vec::new(),
            started: started.map(at),
            now: at(now),
        };
        let made = 1_000;
        // Up since before the silence: it had the alert, so gone means resolved.
        assert_eq!(
            listing(Some(900), 1_010).follow(&alert, made),
            Followed::Resolved
        );
        // Restarted since: not yet, and not before Prometheus had time to send it again.
        assert_eq!(
            listing(Some(1_005), 1_010).follow(&alert, made),
            Followed::Firing
        );
        assert_eq!(
            listing(Some(1_005), 1_200).follow(&alert, made),
            Followed::Resolved
        );
        // A start it would not say is not believed either.
        assert_eq!(listing(None, 1_010).follow(&alert, made), Followed::Firing);
    }

    #[test]
    fn matcher_values_are_escaped() {
        assert_eq!(matcher_value(r#"a"b\c"#), r#"a\"b\\c"#);
    }

    #[test]
    fn the_peer_that_made_a_silence_is_asked_first() {
        let client =
            AlertmanagerClient::new(vec!["http://a".to_owned(), "http://b".to_owned()]).unwrap();
        assert_eq!(client.peers_from(None), ["http://a", "http://b"]);
        assert_eq!(
            client.peers_from(Some("http://b")),
            ["http://b", "http://a"]
        );
    }
}
