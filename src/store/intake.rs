//! Group commit for the intake journal: many webhooks, one transaction, one fsync.
//!
//! Each webhook handler submits its alerts and waits; a writer takes every submission waiting
//! at that moment, appends them all in one transaction, and answers each. Under load, batches
//! grow on their own, so the fsync cost is shared by many requests while an idle service still
//! commits a lone alert immediately. One writer on SQLite; a few at once on PostgreSQL, whose
//! commits overlap (see `Store::journal_writers`).
//!
//! The intake also knows whether the service can take alerts at all: once shutdown begins it
//! refuses new ones (the caller answers 503, so Alertmanager retries elsewhere or later), and
//! it remembers the latest failed write so `/readyz` can say why the store is not taking any.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use super::{Rank, Store, StoreError};
use crate::alert::Alert;

mod backlog;
use backlog::Backlog;

/// How many submissions one transaction takes at most.
const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<Vec<bool>, StoreError>>;

/// One submission: its alerts, their ranks, and where the answer goes.
type Submission = (Vec<Alert>, Vec<Rank>, Reply);

/// Decides each alert's place in the dispatcher's queue (see `dispatch::priority`).
#[derive(Clone)]
pub struct Prioritize(pub Arc<dyn Fn(&Alert) -> Rank + Send + Sync>);

impl std::fmt::Debug for Prioritize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prioritize")
    }
}

/// What an accepted submission did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// Alerts newly written.
    pub accepted: usize,
    /// Alerts already in the journal (HA peers, retries).
    pub duplicates: usize,
}

/// How long a failed journal write keeps `/readyz` unready. Bounded so that an instance taken
/// out of a load balancer gets traffic again and can find out that the store recovered.
const FAILURE_MEMORY: Duration = Duration::from_secs(30);

/// Whether the intake can take alerts, and if not, why.
#[derive(Debug, Clone, Default)]
pub struct IntakeHealth {
    draining: CancellationToken,
    failure: Arc<Mutex<Option<(Instant, String)>>>,
}

impl IntakeHealth {
    /// Why alerts cannot be taken now, if they cannot: shutting down, or the latest journal
    /// write failed (less than 30 s ago) with this reason.
    pub fn unavailable(&self) -> Option<String> {
        if self.draining.is_cancelled() {
            return Some("shutting down".to_owned());
        }
        let failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        failure
            .as_ref()
            .filter(|(at, _)| at.elapsed() < FAILURE_MEMORY)
            .map(|(_, reason)| format!("the store cannot take alerts: {reason}"))
    }

    fn record(&self, outcome: Result<(), &StoreError>) {
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        *failure = outcome
            .err()
            .map(|e| (Instant::now(), e.reason().to_owned()));
    }
}

/// The handle sources use to make alerts durable.
#[derive(Debug, Clone)]
pub struct Intake {
    tx: mpsc::Sender<Submission>,
    health: IntakeHealth,
    prioritize: Option<Prioritize>,
    backlog: Backlog,
}

impl Intake {
    /// Starts the writer task; `wake` is notified after every commit that added an alert.
    /// Once `draining` is cancelled, submissions are refused with [`StoreError::IntakeClosed`].
    pub fn start(store: Arc<dyn Store>, wake: Arc<Notify>, draining: CancellationToken) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        let health = IntakeHealth {
            draining,
            failure: Arc::default(),
        };
        tokio::spawn(write_batches(store, rx, wake, health.clone()));
        Self {
            tx,
            health,
            prioritize: None,
            backlog: Backlog::unbounded(),
        }
    }

    /// Refuses webhooks (503, their senders retry) while `store`'s journal holds `limit`
    /// unprocessed entries or more (`RESPONDER_MAX_BACKLOG`), counting until `stop`.
    #[must_use]
    pub fn bounded(mut self, store: Arc<dyn Store>, limit: u64, stop: CancellationToken) -> Self {
        self.backlog = Backlog::follow(store, limit, stop);
        self
    }

    /// Gives each submitted alert the priority `prioritize` decides (without it, all are
    /// equal and the dispatcher keeps arrival order). Decided here, in the submitter's task,
    /// so the single writer spends nothing on it.
    #[must_use]
    pub fn prioritized(mut self, prioritize: Prioritize) -> Self {
        self.prioritize = Some(prioritize);
        self
    }

    /// Whether alerts can be taken now, for `/readyz`.
    pub fn health(&self) -> IntakeHealth {
        self.health.clone()
    }

    /// Makes `alerts` durable; returns once they are committed.
    ///
    /// # Errors
    /// [`StoreError`] when the database could not commit them (the caller answers 503).
    pub async fn submit(&self, alerts: Vec<Alert>) -> Result<Receipt, StoreError> {
        if alerts.is_empty() {
            return Ok(Receipt {
                accepted: 0,
                duplicates: 0,
            });
        }
        if self.health.draining.is_cancelled() {
            return Err(StoreError::IntakeClosed);
        }
        self.backlog.admit(&alerts)?;
        let ranks = match &self.prioritize {
            Some(Prioritize(prioritize)) => alerts.iter().map(|a| prioritize(a)).collect(),
            None => vec![Rank::default(); alerts.len()],
        };
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((alerts, ranks, reply))
            .await
            .map_err(|_| StoreError::IntakeClosed)?;
        let fresh = answer.await.map_err(|_| StoreError::IntakeClosed)??;
        let accepted = fresh.iter().filter(|f| **f).count();
        self.backlog.accepted(accepted);
        Ok(Receipt {
            accepted,
            duplicates: fresh.len() - accepted,
        })
    }
}

async fn write_batches(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<Submission>,
    wake: Arc<Notify>,
    health: IntakeHealth,
) {
    // A batch is taken only once a writer is free, so submissions gather while the writers
    // are busy: under load each commit carries many webhooks.
    let writers = Arc::new(Semaphore::new(store.journal_writers().max(1)));
    loop {
        let Ok(writer) = writers.clone().acquire_owned().await else {
            return;
        };
        let mut batch = Vec::with_capacity(MAX_BATCH);
        if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let (store, wake, health) = (store.clone(), wake.clone(), health.clone());
        tokio::spawn(async move {
            write_batch(store.as_ref(), batch, &wake, &health).await;
            drop(writer);
        });
    }
}

/// Appends one batch of submissions in one transaction and answers each submitter.
async fn write_batch(
    store: &dyn Store,
    mut batch: Vec<Submission>,
    wake: &Notify,
    health: &IntakeHealth,
) {
    // Moved, not cloned: the handlers only need to hear back how many were new.
    let total = batch.iter().map(|(a, _, _)| a.len()).sum();
    let mut alerts: Vec<Alert> = Vec::with_capacity(total);
    let mut ranks = Vec::with_capacity(total);
    let mut sizes = Vec::with_capacity(batch.len());
    for (submitted, submitted_ranks, _) in &mut batch {
        sizes.push(submitted.len());
        alerts.append(submitted);
        ranks.append(submitted_ranks);
    }
    let written = store.append_ranked(&alerts, &ranks).await;
    health.record(written.as_ref().map(|_| ()));
    match written {
        Ok(fresh) => {
            let mut rest = fresh.as_slice();
            let mut any_new = false;
            for ((_, _, reply), size) in batch.drain(..).zip(sizes) {
                let (mine, tail) = rest.split_at(size);
                any_new |= mine.iter().any(|f| *f);
                rest = tail;
                // A handler that gave up (client disconnected) still had its alerts written.
                let _ = reply.send(Ok(mine.to_vec()));
            }
            if any_new {
                wake.notify_one();
            }
        }
        Err(err) => {
            tracing::error!(error.message = %err, alerts = alerts.len(), "Could not write alerts to the journal.");
            for (_, _, reply) in batch.drain(..) {
                let _ = reply.send(Err(StoreError::Unavailable(err.reason().to_owned())));
            }
        }
    }
}
