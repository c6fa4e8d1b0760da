//! The Prometheus web configuration file (`--web.config.file`, `RESPONDER_WEB_CONFIG`), in the
//! format of the Prometheus exporter-toolkit, so one file serves Prometheus, Alertmanager and
//! this service alike:
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt      # relative paths resolve against this file's directory
//!   key_file: server.key
//! basic_auth_users:
//!   alice: $2y$10$...          # bcrypt hash
//! ```
//!
//! Keys the toolkit knows but this service does not implement (client certificates, cipher
//! suites, `http_server_config`, ...) are refused by name rather than ignored: a TLS option
//! that silently did nothing would be a false sense of security. Unknown keys are refused too.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use serde::Deserialize;
use serde_yaml_ng::Value;

use super::basic_auth::Users;

/// Why a web configuration file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("web config file {path}: {reason}")]
pub struct WebConfigError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

/// A loaded, validated web configuration file.
#[derive(Clone)]
pub struct WebConfig {
    /// Where it was read from (read again on SIGHUP).
    pub path: PathBuf,
    /// `basic_auth_users`, when there are any.
    pub users: Option<Arc<Users>>,
    /// `tls_server_config`, ready to serve, when present.
    pub tls: Option<Arc<ServerConfig>>,
}

// Written by hand: the user names and whether TLS is on, never a hash or key material.
impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("path", &self.path)
            .field("users", &self.users)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    tls_server_config: Option<TlsFormat>,
    http_server_config: Option<Value>,
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFormat {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    min_version: Option<String>,
    // Known to the exporter-toolkit, not implemented here: named in the error when present.
    cert: Option<Value>,
    key: Option<Value>,
    client_ca_file: Option<Value>,
    client_ca: Option<Value>,
    client_allowed_sans: Option<Value>,
    cipher_suites: Option<Value>,
    curve_preferences: Option<Value>,
    max_version: Option<Value>,
    prefer_server_cipher_suites: Option<Value>,
}

impl WebConfig {
    /// Reads and validates the file at `path`: every bcrypt hash parses, the certificate and
    /// key load and match.
    ///
    /// # Errors
    /// One message naming the file and what is wrong with it.
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let fail = |reason: String| WebConfigError {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        // An empty file is valid for Prometheus too: no TLS, no users.
        let file: FileFormat = if text.trim().is_empty() {
            FileFormat::default()
        } else {
            serde_yaml_ng::from_str(&text).map_err(|e| fail(e.to_string()))?
        };
        if file.http_server_config.is_some() {
            return Err(fail(
                "http_server_config is not supported: this service speaks HTTP/1.1 and sets \
                 its own security headers; remove the section"
                    .to_owned(),
            ));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let tls = match file.tls_server_config {
            Some(tls) => Some(Arc::new(tls_config(tls, dir).map_err(fail)?)),
            None => None,
        };
        let users = match file.basic_auth_users {
            Some(users) if !users.is_empty() => Some(Arc::new(load_users(users).map_err(fail)?)),
            _ => None,
        };
        Ok(Self {
            path: path.to_owned(),
            users,
            tls,
        })
    }
}

/// Validates every user's name and hash, and makes the dummy hash unknown users are checked
/// against, at the highest cost of the file's hashes.
fn load_users(users: BTreeMap<String, String>) -> Result<Users, String> {
    // The lowest cost bcrypt takes; raised to the file's highest.
    let mut cost = 4;
    for (name, hash) in &users {
        if name.is_empty() || name.contains(':') {
            return Err(format!(
                "basic_auth_users: {name:?} cannot log in (a user name is not empty and has no ':')"
            ));
        }
        // Only the name: a hash is no password, but it does not belong in logs either.
        let parts = bcrypt::HashParts::from_str(hash).map_err(|e| {
            format!("basic_auth_users.{name}: not a bcrypt hash ({e}); make one with htpasswd -nBC 10 \"\" | tr -d ':\\n'")
        })?;
        cost = cost.max(parts.get_cost());
    }
    let dummy = bcrypt::hash("no such user", cost)
        .map_err(|e| format!("basic_auth_users: cannot make a bcrypt hash of cost {cost}: {e}"))?;
    Ok(Users::new(
        users.into_iter().collect::<HashMap<_, _>>(),
        dummy,
    ))
}

/// The TLS server configuration the section asks for, certificate and key loaded.
fn tls_config(tls: TlsFormat, dir: &Path) -> Result<ServerConfig, String> {
    let unsupported = [
        ("cert", tls.cert.is_some()),
        ("key", tls.key.is_some()),
        ("client_ca_file", tls.client_ca_file.is_some()),
        ("client_ca", tls.client_ca.is_some()),
        ("client_allowed_sans", tls.client_allowed_sans.is_some()),
        ("cipher_suites", tls.cipher_suites.is_some()),
        ("curve_preferences", tls.curve_preferences.is_some()),
        ("max_version", tls.max_version.is_some()),
        (
            "prefer_server_cipher_suites",
            tls.prefer_server_cipher_suites.is_some(),
        ),
    ];
    let named: Vec<&str> = unsupported
        .iter()
        .filter(|(_, set)| *set)
        .map(|(key, _)| *key)
        .collect();
    if !named.is_empty() {
        return Err(format!(
            "tls_server_config: {} not supported by this service (supported: cert_file, \
             key_file, client_auth_type: NoClientCert, min_version: TLS12 or TLS13)",
            named.join(", ")
        ));
    }
    match tls.client_auth_type.as_deref() {
        None | Some("" | "NoClientCert") => {}
        Some(other) => {
            return Err(format!(
                "tls_server_config.client_auth_type: {other:?} is not supported (client certificates are not checked); use NoClientCert or leave it out"
            ))
        }
    }
    let versions: &[&rustls::SupportedProtocolVersion] = match tls.min_version.as_deref() {
        None | Some("TLS12") => rustls::DEFAULT_VERSIONS,
        Some("TLS13") => &[&rustls::version::TLS13],
        Some(other) => {
            return Err(format!(
                "tls_server_config.min_version: {other:?} is not offered; use TLS12 or TLS13"
            ))
        }
    };
    let (Some(cert_file), Some(key_file)) = (tls.cert_file, tls.key_file) else {
        return Err("tls_server_config needs both cert_file and key_file".to_owned());
    };
    let (cert_file, key_file) = (dir.join(cert_file), dir.join(key_file));
    let certs = CertificateDer::pem_file_iter(&cert_file)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| format!("cert_file {}: {e}", cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "cert_file {}: no PEM certificate in it",
            cert_file.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&key_file)
        .map_err(|e| format!("key_file {}: {e}", key_file.display()))?;
    // The provider is named here rather than taken from the process default, so building
    // this never depends on which crate installed one first.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| format!("tls_server_config: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "cert_file {} and key_file {}: {e}",
                cert_file.display(),
                key_file.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests;
