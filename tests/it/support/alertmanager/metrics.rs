//! What the peers' `/metrics` tell: notifications sent, and how far a peer's flush has got.

use std::time::Duration;

use super::{Alertmanager, AlertmanagerCluster};
use crate::support::wait;

/// Bound on every peer's first flush of a group being over (group_wait, the second peer's
/// turn, the sends): seconds normally; generous for a loaded machine.
const FLUSH_OVER_WITHIN: Duration = Duration::from_secs(60);

impl Alertmanager {
    /// `(notifications, failed)` for the webhook integration, from `/metrics`:
    /// `alertmanager_notifications_total` counts notifications this peer sent (once each,
    /// retries not included), `alertmanager_notifications_failed_total` those that gave up.
    pub async fn webhook_notifications(&self) -> (u64, u64) {
        let text = self.metrics().await;
        (
            metric(
                &text,
                "alertmanager_notifications_total{integration=\"webhook\"}",
            ),
            metric(
                &text,
                "alertmanager_notifications_failed_total{integration=\"webhook\"}",
            ),
        )
    }

    /// How often this peer's dedup stage read its notification log: once per webhook per
    /// flush, after the peer's wait for its turn (position × peer timeout) and before any send.
    pub async fn dedup_checks(&self) -> u64 {
        metric(&self.metrics().await, "alertmanager_nflog_queries_total")
    }

    async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .unwrap_or_else(|e| panic!("{}/metrics: {e}", self.url))
            .text()
            .await
            .expect("metrics are text")
    }
}

impl AlertmanagerCluster {
    /// `(notifications, failed)` for the webhook, summed over all peers.
    pub async fn webhook_notifications(&self) -> (u64, u64) {
        let mut sum = (0, 0);
        for peer in &self.peers {
            let (sent, failed) = peer.webhook_notifications().await;
            sum.0 += sent;
            sum.1 += failed;
        }
        sum
    }

    /// Waits until every peer's first flush of a new alert group is over, the second peer's
    /// turn included: each peer's dedup stage ran for a second flush (`webhooks` checks per
    /// flush, one per webhook URL of the receiver). Flushes of a group run one after the other
    /// and a send returns only once the webhook answered, so by then any HA duplicate was
    /// delivered (or never sent); later flushes send nothing new (`repeat_interval` is 1h).
    pub async fn wait_first_flush_over(&self, webhooks: usize) {
        let want = u64::try_from(webhooks).expect("a small count") + 1;
        let over = wait::until(FLUSH_OVER_WITHIN, || async {
            for peer in &self.peers {
                if peer.dedup_checks().await < want {
                    return false;
                }
            }
            true
        })
        .await;
        if !over {
            let mut checks = Vec::new();
            for peer in &self.peers {
                checks.push(peer.dedup_checks().await);
            }
            panic!(
                "not every peer flushed twice within {FLUSH_OVER_WITHIN:?} (dedup checks per peer \
                 {checks:?}, want {want} each)\n{}",
                self.logs()
            );
        }
    }
}

/// The value of the sample `series` (name and labels as exposed) in a `/metrics` text; 0 when
/// absent (a counter Alertmanager has not created yet).
fn metric(text: &str, series: &str) -> u64 {
    let prefix = format!("{series} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}
