//! SIGHUP reads the web configuration file again: new users and a new certificate take effect
//! for the requests and connections that come next, without a restart. A file that does not
//! load, or that would change what only a restart can (TLS on or off, the only protection of
//! a listener beyond loopback), is refused with an error in the log and the old one stays.

use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::basic_auth::Access;
use super::web_config::WebConfig;

/// The TLS configuration new connections are accepted with; replaced on reload.
#[derive(Debug, Clone)]
pub struct TlsHandle(Arc<RwLock<Arc<ServerConfig>>>);

impl TlsHandle {
    /// Serves `config` until replaced.
    pub fn new(config: Arc<ServerConfig>) -> Self {
        Self(Arc::new(RwLock::new(config)))
    }

    /// An acceptor with the configuration current now.
    pub(super) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.0.read().unwrap_or_else(|e| e.into_inner()).clone())
    }

    fn replace(&self, config: Arc<ServerConfig>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = config;
    }
}

/// What a reload replaces, and what it must keep true.
#[derive(Debug)]
pub struct Reloader {
    /// The file as loaded at start (or at the last good reload).
    pub config: WebConfig,
    /// Whose users are replaced.
    pub access: Access,
    /// Whose certificate is replaced; `None` when serving plain HTTP.
    pub tls: Option<TlsHandle>,
    /// Whether the users are the listener's only protection (beyond loopback, no webhook
    /// token): then a file without users is refused.
    pub users_required: bool,
}

impl Reloader {
    /// Reloads on every SIGHUP until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(e) => {
                tracing::error!(error.message = %e, "Cannot listen for SIGHUP: the web config file will not be reloaded.");
                return;
            }
        };
        loop {
            tokio::select! {
                received = hangups.recv() => if received.is_none() { return },
                () = shutdown.cancelled() => return,
            }
            match self.reload() {
                Ok(()) => tracing::info!(
                    path = %self.config.path.display(),
                    basic_auth_users = self.access.user_count(),
                    tls = self.tls.is_some(),
                    "Web config file reloaded (SIGHUP)."
                ),
                Err(reason) => tracing::error!(
                    path = %self.config.path.display(),
                    error.message = %reason,
                    "Web config file NOT reloaded: keeping the previous one."
                ),
            }
        }
    }

    /// Loads the file again and puts it in place, or says why not.
    fn reload(&mut self) -> Result<(), String> {
        let fresh = WebConfig::load(&self.config.path).map_err(|e| e.to_string())?;
        match (&self.tls, &fresh.tls) {
            (Some(_), None) => {
                return Err("tls_server_config was removed: turning TLS off needs a restart".into())
            }
            (None, Some(_)) => {
                return Err("tls_server_config was added: turning TLS on needs a restart".into())
            }
            _ => {}
        }
        if self.users_required && fresh.users.is_none() {
            return Err("basic_auth_users is empty, and it is all that protects a listener beyond loopback without RESPONDER_WEBHOOK_TOKEN".into());
        }
        self.access.replace_users(fresh.users.clone());
        if let (Some(handle), Some(config)) = (&self.tls, &fresh.tls) {
            handle.replace(config.clone());
        }
        self.config = fresh;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_replaces_the_users_unless_it_would_leave_the_listener_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        let users = |names: &[&str]| {
            let hash = bcrypt::hash("pw", 4).unwrap();
            let lines: String = names.iter().map(|n| format!("  {n}: '{hash}'\n")).collect();
            std::fs::write(&path, format!("basic_auth_users:\n{lines}")).unwrap();
        };
        users(&["alice"]);
        let config = WebConfig::load(&path).unwrap();
        let access = Access::new(None, config.users.clone());
        let mut reloader = Reloader {
            config,
            access: access.clone(),
            tls: None,
            users_required: true,
        };
        users(&["alice", "bob"]);
        reloader.reload().unwrap();
        assert_eq!(access.user_count(), 2);
        std::fs::write(&path, "basic_auth_users: {}\n").unwrap();
        let refused = reloader.reload().unwrap_err();
        assert!(refused.contains("basic_auth_users is empty"), "{refused}");
        std::fs::write(&path, "basic_auth_users:\n  carol: nope\n").unwrap();
        let refused = reloader.reload().unwrap_err();
        assert!(refused.contains("basic_auth_users.carol"), "{refused}");
        assert_eq!(access.user_count(), 2, "the last good users stay");
        reloader.users_required = false;
        std::fs::write(&path, "").unwrap();
        reloader.reload().unwrap();
        assert_eq!(access.user_count(), 0, "on loopback, users may all go");
    }
}
