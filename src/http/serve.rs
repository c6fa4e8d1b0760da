//! Accepting connections with the bounds `axum::serve` leaves out.
//!
//! hyper reads a request head for as long as the client cares to send it unless it is given
//! a timer, and `axum::serve` gives it none: a client that opens a connection and never
//! finishes its headers would hold a task and a socket forever (slowloris). Here every
//! connection's head must arrive within the request timeout; the body and the handler are
//! bounded by the router's `TimeoutLayer` with the same duration (408).
//!
//! HTTP/1.1 only: every sender (Alertmanager, PagerDuty, Slack, browsers, Prometheus) speaks
//! it, and the HTTP/2 auto-detection waits for a client's first bytes with no timer at all,
//! so a connection that sends nothing would never be closed.
//!
//! With `tls_server_config` in the web configuration file, every connection is TLS (rustls),
//! its handshake bounded by the same timeout, with the configuration current when it was
//! accepted: a certificate reloaded on SIGHUP serves the connections that come next.

use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::reload::TlsHandle;

/// Serves `router` on `listener` until `shutdown`, then lets open requests finish for at most
/// `request_timeout` before closing their connections. With `tls`, HTTPS only.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    request_timeout: Duration,
    tls: Option<TlsHandle>,
    shutdown: CancellationToken,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(request_timeout);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to close rather
                    // than spin.
                    tracing::warn!(error.message = %e, "Accepting a connection failed.");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let (builder, router, watcher) = (builder.clone(), router.clone(), graceful.watcher());
        let Some(tls) = &tls else {
            tokio::spawn(serve_connection(builder, stream, router, watcher, peer));
            continue;
        };
        let acceptor = tls.acceptor();
        tokio::spawn(async move {
            match tokio::time::timeout(request_timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => serve_connection(builder, stream, router, watcher, peer).await,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error.message = %e, "TLS handshake failed.");
                }
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out."),
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(request_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("Closed connections whose requests did not finish in time.");
    }
}

/// Serves one connection's requests until it closes or the server shuts down.
async fn serve_connection<I>(
    builder: http1::Builder,
    io: I,
    router: Router,
    watcher: Watcher,
    peer: std::net::SocketAddr,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(router);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!(%peer, error.message = %e, "Connection closed with an error.");
    }
}
