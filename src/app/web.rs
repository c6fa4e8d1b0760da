//! Wiring of who may use the HTTP side: the webhook token, the web configuration file's users
//! and TLS, what the startup log says about them, and their reload on SIGHUP.

use std::sync::Arc;

use secrecy::SecretString;

use crate::config::Settings;
use crate::http::{Access, Reloader, TlsHandle};

/// The access rules and TLS the server starts with, and the reloader when there is a file.
pub(super) fn web_access(
    settings: &Settings,
    token: Option<Arc<SecretString>>,
) -> (Access, Option<TlsHandle>, Option<Reloader>) {
    let web = settings.web_config.as_ref();
    let users = web.and_then(|w| w.users.clone());
    let tls = web.and_then(|w| w.tls.clone()).map(TlsHandle::new);
    if token.is_none() && users.is_none() {
        tracing::warn!("RESPONDER_WEBHOOK_TOKEN is not set: webhooks are accepted without authentication (allowed on loopback only).");
    }
    match &users {
        Some(users) => tracing::info!(
            users = users.len(),
            "Basic auth is on: the page, /api/* and Alertmanager webhooks ask for a user of the web config file (webhooks also take the bearer token)."
        ),
        None => tracing::info!("Basic auth is off: no basic_auth_users in RESPONDER_WEB_CONFIG."),
    }
    if tls.is_some() {
        tracing::info!("TLS is on: serving HTTPS only (tls_server_config).");
    } else {
        tracing::info!(
            "TLS is off: serving plain HTTP (no tls_server_config in RESPONDER_WEB_CONFIG)."
        );
    }
    let access = Access::new(token, users);
    let reloader = web.map(|config| Reloader {
        config: config.clone(),
        access: access.clone(),
        tls: tls.clone(),
        users_required: settings.users_required(),
    });
    (access, tls, reloader)
}
