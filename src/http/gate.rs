//! The gate in front of every route that reads a body: the credential from the headers first,
//! then the declared size, then a share of the body budget.
//!
//! axum's extractors read a whole body before the handler runs, so a token checked in the
//! handler is checked after the memory is spent: 150 unauthenticated bodies of 4 MiB once
//! took the process from 18 MB to 627 MB. The gate is a route layer, so it runs before any
//! extractor: a request that cannot be authentic is answered from its headers and its body is
//! never read; a declared length over `RESPONDER_BODY_LIMIT` is a 413 at once; and the bytes
//! of all bodies being read or handled at one time are bounded by [`BodyBudget`]
//! (`RESPONDER_BODY_BUDGET`), beyond which the answer is 503 with `Retry-After` (Alertmanager
//! and PagerDuty retry 5xx). Refusing at once rather than queueing keeps a waiting request
//! from holding a connection and a task for nothing.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use super::{ApiError, Credential, IngestError};
use crate::alert::Source;
use crate::metrics::Metrics;

/// The budget counts in KiB: semaphore permits are `u32`, and bodies are far larger than one.
const UNIT: usize = 1024;

/// The body limit per request, and the bytes all bodies may hold at once.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl BodyBudget {
    /// Bodies of at most `limit` bytes each, `total` bytes at once across all connections.
    pub fn new(limit: usize, total: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(
                total.div_ceil(UNIT).min(Semaphore::MAX_PERMITS),
            )),
            limit,
        }
    }

    /// The largest body one request may send.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Reserves what a request's body may hold: its declared length, or the whole limit when
    /// it comes in chunks of unknown total. A request without a body reserves nothing.
    fn reserve(&self, headers: &HeaderMap) -> Result<Option<OwnedSemaphorePermit>, ApiError> {
        let bytes = match declared_length(headers) {
            Some(length) if length > self.limit as u64 => {
                return Err(IngestError::TooLarge(self.limit).into())
            }
            // `as usize` cannot truncate: the length is at most the limit, a usize.
            Some(length) => length as usize,
            None if headers.contains_key(header::TRANSFER_ENCODING) => self.limit,
            None => 0,
        };
        if bytes == 0 {
            return Ok(None);
        }
        let units = u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX);
        match self.permits.clone().try_acquire_many_owned(units) {
            Ok(permit) => Ok(Some(permit)),
            Err(TryAcquireError::NoPermits | TryAcquireError::Closed) => Err(ApiError::Busy(
                "too many request bodies at once (RESPONDER_BODY_BUDGET); retry shortly".to_owned(),
            )),
        }
    }
}

/// `Content-Length`, when the request declares one (hyper has already refused a malformed one).
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// What one route asks of a request before its handler reads anything.
#[derive(Debug, Clone)]
pub struct Gate {
    credential: Credential,
    budget: BodyBudget,
    counted: Option<(Source, Arc<Metrics>)>,
}

impl Gate {
    /// A gate asking for `credential`, admitting bodies within `budget`.
    pub fn new(credential: Credential, budget: &BodyBudget) -> Self {
        Self {
            credential,
            budget: budget.clone(),
            counted: None,
        }
    }

    /// Counts the gate's refusals as webhooks of `source`, as the handler counts the rest.
    pub fn counted(mut self, source: Source, metrics: &Arc<Metrics>) -> Self {
        self.counted = Some((source, metrics.clone()));
        self
    }

    /// `route` behind this gate.
    pub fn guard<S>(self, route: MethodRouter<S>) -> MethodRouter<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let gate = Arc::new(self);
        route.route_layer(axum::middleware::from_fn(
            move |request: Request, next: Next| {
                let gate = gate.clone();
                async move { gate.pass(request, next).await }
            },
        ))
    }

    async fn pass(&self, request: Request, next: Next) -> Response {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let headers = request.headers();
        let admitted = self
            .credential
            .check(headers, now)
            .await
            .and_then(|()| self.budget.reserve(headers));
        match admitted {
            Ok(permit) => {
                let response = next.run(request).await;
                // The body and everything parsed from it are gone once the handler answered.
                drop(permit);
                response
            }
            Err(refusal) => {
                if let Some((source, metrics)) = &self.counted {
                    metrics.webhook(*source, refusal.status().as_u16());
                }
                let unread_body = declared_length(headers).is_some_and(|l| l > 0)
                    || headers.contains_key(header::TRANSFER_ENCODING);
                let mut response = refusal.into_response();
                if unread_body {
                    // The body was never read: the connection cannot carry another request.
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                response
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn with(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, value.parse().expect("a header value"));
        headers
    }

    #[test]
    fn declared_bodies_take_their_length_from_the_budget_until_it_is_spent() {
        let budget = BodyBudget::new(4096, 10 * 1024);
        let status = |r: Result<_, ApiError>| r.err().map(|e| e.status());
        assert!(budget.reserve(&HeaderMap::new()).unwrap().is_none());
        assert_eq!(
            status(budget.reserve(&with(header::CONTENT_LENGTH, "4097"))),
            Some(StatusCode::PAYLOAD_TOO_LARGE)
        );
        let a = budget
            .reserve(&with(header::CONTENT_LENGTH, "4096"))
            .unwrap();
        let b = budget
            .reserve(&with(header::TRANSFER_ENCODING, "chunked"))
            .unwrap();
        assert_eq!(
            status(budget.reserve(&with(header::CONTENT_LENGTH, "3000"))),
            Some(StatusCode::SERVICE_UNAVAILABLE),
            "8 KiB of 10 held: 3000 bytes do not fit"
        );
        let c = budget
            .reserve(&with(header::CONTENT_LENGTH, "2048"))
            .unwrap();
        drop((a, b, c));
        assert!(budget
            .reserve(&with(header::CONTENT_LENGTH, "4096"))
            .unwrap()
            .is_some());
    }
}
