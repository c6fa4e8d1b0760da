//! Group commit for the intake journal: many webhooks, one transaction, one fsync.
//!
//! Each webhook handler submits its alerts and waits; a single writer task takes every
//! submission waiting at that moment, appends them all in one transaction, and answers each.
//! Under load, batches grow on their own, so the fsync cost is shared by many requests while
//! an idle service still commits a lone alert immediately.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Notify};

use super::{Store, StoreError};
use crate::alert::Alert;

/// How many submissions one transaction takes at most.
const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<Vec<bool>, String>>;

/// What an accepted submission did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// Alerts newly written.
    pub accepted: usize,
    /// Alerts already in the journal (HA peers, retries).
    pub duplicates: usize,
}

/// The handle sources use to make alerts durable.
#[derive(Debug, Clone)]
pub struct Intake {
    tx: mpsc::Sender<(Vec<Alert>, Reply)>,
}

impl Intake {
    /// Starts the writer task; `wake` is notified after every commit that added an alert.
    pub fn start(store: Arc<dyn Store>, wake: Arc<Notify>) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(write_batches(store, rx, wake));
        Self { tx }
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
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((alerts, reply))
            .await
            .map_err(|_| StoreError::IntakeClosed)?;
        let fresh = answer
            .await
            .map_err(|_| StoreError::IntakeClosed)?
            .map_err(StoreError::Unavailable)?;
        let accepted = fresh.iter().filter(|f| **f).count();
        Ok(Receipt {
            accepted,
            duplicates: fresh.len() - accepted,
        })
    }
}

async fn write_batches(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<(Vec<Alert>, Reply)>,
    wake: Arc<Notify>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Moved, not cloned: the handlers only need to hear back how many were new.
        let mut alerts: Vec<Alert> = Vec::with_capacity(batch.iter().map(|(a, _)| a.len()).sum());
        let mut sizes = Vec::with_capacity(batch.len());
        for (submitted, _) in &mut batch {
            sizes.push(submitted.len());
            alerts.append(submitted);
        }
        match store.append_journal(&alerts).await {
            Ok(fresh) => {
                let mut rest = fresh.as_slice();
                let mut any_new = false;
                for ((_, reply), size) in batch.drain(..).zip(sizes) {
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
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(err.to_string()));
                }
            }
        }
    }
}
