//! A load generator that behaves like Alertmanager: distinct alerts posted concurrently, and
//! whatever got no 2xx (an error, a 5xx, a reset connection) retried until it does, against
//! whichever address the server currently listens on.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// Where the generator sends, and what it has seen.
#[derive(Clone)]
pub(crate) struct Load {
    address: Arc<Mutex<String>>,
    /// Alerts that got a 2xx.
    pub acked: Arc<AtomicUsize>,
    /// Attempts that got anything else (refused connections, 503s), each retried.
    pub retried: Arc<AtomicUsize>,
    /// Attempts answered 503.
    pub unavailable: Arc<AtomicUsize>,
}

impl Load {
    pub(crate) fn new(address: &str) -> Self {
        Self {
            address: Arc::new(Mutex::new(address.to_owned())),
            acked: Arc::default(),
            retried: Arc::default(),
            unavailable: Arc::default(),
        }
    }

    /// Points retries and later sends at a restarted server.
    pub(crate) fn retarget(&self, address: &str) {
        *self.address.lock().unwrap() = address.to_owned();
    }

    /// Posts `bodies` with `concurrency` senders, each retrying until a 2xx (bounded: a
    /// sender gives up after 120 s without one, which fails the test's count).
    pub(crate) fn start(&self, bodies: Vec<Value>, concurrency: usize) -> tokio::task::JoinSet<()> {
        let queue = Arc::new(Mutex::new(bodies));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let mut senders = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let (queue, client, load) = (queue.clone(), client.clone(), self.clone());
            senders.spawn(async move {
                loop {
                    let Some(body) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    load.send(&client, &body).await;
                }
            });
        }
        senders
    }

    async fn send(&self, client: &reqwest::Client, body: &Value) {
        for _ in 0..2_400 {
            let address = self.address.lock().unwrap().clone();
            match client
                .post(format!("{address}/webhook/alertmanager"))
                .json(body)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {
                    self.acked.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                Ok(r) if r.status() == 503 => {
                    self.unavailable.fetch_add(1, Ordering::SeqCst);
                }
                _ => {}
            }
            self.retried.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (bounded, 120 s) until at least `n` alerts got a 2xx.
    pub(crate) async fn wait_acked(&self, n: usize) {
        for _ in 0..2_400 {
            if self.acked.load(Ordering::SeqCst) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("fewer than {n} alerts acknowledged within 120 s");
    }
}
