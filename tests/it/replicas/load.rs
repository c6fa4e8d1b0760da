//! A steady stream of distinct alerts spread over the replicas, as Alertmanager would send
//! them, recording what each webhook answered: the fault tests then check that every alert
//! acknowledged (2xx) is in the journal exactly once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::firing;
use crate::support::replicas::{poll, WEBHOOK_TOKEN};

/// The pause between two alerts (about 40 a second in all).
const PACE: Duration = Duration::from_millis(25);

/// Bound on the load reaching a count of answers (a few per second even on a noisy machine).
const LOAD_WITHIN: Duration = Duration::from_secs(30);

/// What one webhook POST got: the alert's fingerprint, the HTTP status (`None`: no answer
/// within the client's 5 s) and how long the answer took.
pub(super) type Answer = (String, Option<u16>, Duration);

/// The running stream; [`Load::finish`] stops it and returns every answer.
pub(super) struct Load {
    answers: Arc<Mutex<Vec<Answer>>>,
    stop: Arc<AtomicBool>,
    sender: JoinHandle<()>,
}

impl Load {
    /// Starts sending alert `n` to `webhook_urls[n % len]`, one after the other.
    pub(super) fn start(webhook_urls: Vec<String>) -> Self {
        let answers = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client");
        let sender = tokio::spawn({
            let (answers, stop) = (answers.clone(), stop.clone());
            async move {
                let mut n = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    let fingerprint = format!("{n:016x}");
                    let body = firing("LoadAlert", &format!("k2-test-load-{n}"), &fingerprint);
                    let sent = std::time::Instant::now();
                    let status = client
                        .post(&webhook_urls[n % webhook_urls.len()])
                        .bearer_auth(WEBHOOK_TOKEN)
                        .json(&body)
                        .send()
                        .await
                        .ok()
                        .map(|r| r.status().as_u16());
                    answers.lock().unwrap_or_else(|e| e.into_inner()).push((
                        fingerprint,
                        status,
                        sent.elapsed(),
                    ));
                    n += 1;
                    tokio::time::sleep(PACE).await;
                }
            }
        });
        Self {
            answers,
            stop,
            sender,
        }
    }

    /// How many alerts were acknowledged (2xx) so far.
    pub(super) fn acknowledged(&self) -> usize {
        self.count(is_ack)
    }

    /// How many answers so far had a status `which` accepts (`None`: no answer).
    pub(super) fn count(&self, which: impl Fn(Option<u16>) -> bool) -> usize {
        self.answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, s, _)| which(*s))
            .count()
    }

    /// Waits until `more` answers whose status `which` accepts came after the call; fails
    /// with `context()` after [`LOAD_WITHIN`].
    pub(super) async fn wait_for_more(
        &self,
        what: &str,
        more: usize,
        which: impl Fn(Option<u16>) -> bool,
        context: impl Fn() -> String,
    ) {
        let want = self.count(&which) + more;
        poll(
            what,
            LOAD_WITHIN,
            || (self.count(&which) >= want).then_some(()),
            context,
        )
        .await;
    }

    /// Stops the stream and returns every answer, in sending order.
    pub(super) async fn finish(self) -> Vec<Answer> {
        self.stop.store(true, Ordering::SeqCst);
        self.sender.await.expect("the sender ends");
        let answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        answers.clone()
    }
}

/// Whether an answer acknowledges the alert (2xx), as Alertmanager reads it.
pub(super) fn is_ack(status: Option<u16>) -> bool {
    status.is_some_and(|s| (200..300).contains(&s))
}
