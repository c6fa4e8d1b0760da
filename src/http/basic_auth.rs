//! Who may read the page and `/api/*` and send Alertmanager webhooks: the webhook bearer token
//! and, with a web configuration file, its `basic_auth_users` (see [`super::web_config`]).
//!
//! bcrypt is slow on purpose (tens of milliseconds at cost 10), and a browser sends the same
//! `Authorization: Basic` header with every request, so a verified (user, hash, password) is
//! remembered, as the Prometheus exporter-toolkit does: the cache holds SHA-256 digests of
//! that triple, never a password, and only successes, so wrong guesses always pay a full
//! bcrypt. An unknown user is checked against a dummy hash of the same cost, so a response's
//! time does not tell whether a user exists. bcrypt runs one at a time on the blocking pool,
//! so a flood of guesses costs one core at most and never stalls the async workers.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use axum::http::{header, HeaderMap};
use base64::Engine;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::check_bearer;
use super::ApiError;

/// Verified credentials remembered per set of users; the oldest is forgotten first.
const CACHE_ENTRIES: usize = 256;

/// The users of a web configuration file: name → bcrypt hash, and the verifications cached.
pub struct Users {
    hashes: HashMap<String, String>,
    /// Checked for unknown users, so that they cost what known ones do.
    dummy: String,
    verified: Mutex<Verified>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.hashes.keys().collect();
        names.sort();
        f.debug_struct("Users").field("names", &names).finish()
    }
}

#[derive(Default)]
struct Verified {
    keys: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

impl Users {
    /// Users from already validated bcrypt hashes; `dummy` is a hash of the highest cost.
    pub(super) fn new(hashes: HashMap<String, String>, dummy: String) -> Self {
        Self {
            hashes,
            dummy,
            verified: Mutex::default(),
        }
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The hash unknown users are checked against.
    #[cfg(test)]
    pub(super) fn dummy(&self) -> &str {
        &self.dummy
    }

    /// Whether `user` with `password` is one of these users; bcrypt runs under `one_at_a_time`.
    async fn verify(&self, user: &str, password: &[u8], one_at_a_time: &Semaphore) -> bool {
        let (hash, known) = match self.hashes.get(user) {
            Some(hash) => (hash.clone(), true),
            None => (self.dummy.clone(), false),
        };
        let key = cache_key(user, &hash, password);
        if known && self.cached(&key) {
            return true;
        }
        let Ok(_permit) = one_at_a_time.acquire().await else {
            return false;
        };
        // A browser's parallel first requests wait here; the first one's success serves all.
        if known && self.cached(&key) {
            return true;
        }
        let password = password.to_vec();
        let matched =
            tokio::task::spawn_blocking(move || bcrypt::verify(&password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        if matched && known {
            self.remember(key);
        }
        matched && known
    }

    fn cached(&self, key: &[u8; 32]) -> bool {
        // A poisoned lock only means another request panicked mid-insert: the set is intact.
        let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        verified.keys.contains(key)
    }

    fn remember(&self, key: [u8; 32]) {
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.keys.insert(key) {
            verified.order.push_back(key);
        }
        while verified.order.len() > CACHE_ENTRIES {
            if let Some(old) = verified.order.pop_front() {
                verified.keys.remove(&old);
            }
        }
    }
}

/// A digest naming (user, hash, password) without keeping the password; the lengths make the
/// concatenation unambiguous. Looking a digest up in a set leaks nothing usable about the
/// password: finding a preimage of SHA-256 is the hard part.
fn cache_key(user: &str, hash: &str, password: &[u8]) -> [u8; 32] {
    let mut digest = Sha256::new();
    for part in [user.as_bytes(), hash.as_bytes(), password] {
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part);
    }
    digest.finalize().into()
}

/// The user and password of an `Authorization: Basic` value, when it is one.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, Vec<u8>)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

/// The webhook bearer token and the web configuration's users (replaced on SIGHUP).
#[derive(Debug, Clone)]
pub struct Access {
    token: Option<Arc<SecretString>>,
    users: Arc<RwLock<Option<Arc<Users>>>>,
    one_at_a_time: Arc<Semaphore>,
}

impl Access {
    /// Access by `token` (open without one) or, when there are any, by `users`.
    pub fn new(token: Option<Arc<SecretString>>, users: Option<Arc<Users>>) -> Self {
        let access = Self {
            token,
            users: Arc::default(),
            one_at_a_time: Arc::new(Semaphore::new(1)),
        };
        access.replace_users(users);
        access
    }

    /// Puts `users` in place for the requests that come next (a reload).
    pub fn replace_users(&self, users: Option<Arc<Users>>) {
        let users = users.filter(|u| !u.is_empty());
        *self.users.write().unwrap_or_else(|e| e.into_inner()) = users;
    }

    /// How many users may log in with Basic auth (0: the bearer token rules alone).
    pub fn user_count(&self) -> usize {
        self.current().map_or(0, |u| u.len())
    }

    fn current(&self) -> Option<Arc<Users>> {
        self.users.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Admits a request by its `Authorization` header.
    ///
    /// Without users, exactly the bearer token rule (open when no token is set). With users,
    /// one of them by Basic auth, or the bearer token when one is set; anything else is 401
    /// with a Basic challenge, so a browser asks for a login.
    ///
    /// # Errors
    /// [`ApiError::Unauthorized`] (no users) or [`ApiError::LoginRequired`].
    pub async fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(users) = self.current() else {
            return Ok(check_bearer(headers, self.token.as_deref())?);
        };
        if let Some((user, password)) = basic_credentials(headers) {
            return if users.verify(&user, &password, &self.one_at_a_time).await {
                Ok(())
            } else {
                tracing::warn!("Refused a Basic login: unknown user or wrong password.");
                Err(ApiError::LoginRequired)
            };
        }
        match &self.token {
            Some(token) if check_bearer(headers, Some(token)).is_ok() => Ok(()),
            _ => Err(ApiError::LoginRequired),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(header::AUTHORIZATION, authorization.parse().unwrap());
        map
    }

    fn basic(user: &str, password: &str) -> HeaderMap {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        headers(&format!("Basic {encoded}"))
    }

    fn users() -> Option<Arc<Users>> {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let dummy = bcrypt::hash("dummy", 4).unwrap();
        Some(Arc::new(Users::new(
            HashMap::from([("alice".to_owned(), hash)]),
            dummy,
        )))
    }

    #[tokio::test]
    async fn users_log_in_with_basic_and_the_token_still_works() {
        let token = Some(Arc::new(SecretString::from("t0ken")));
        let access = Access::new(token, users());
        let status = |r: Result<(), ApiError>| r.err().map(|e| e.status().as_u16());
        let cases = [
            (basic("alice", "s3cret"), None),
            (basic("alice", "s3cret"), None),
            (basic("alice", "wrong"), Some(401)),
            (basic("bob", "s3cret"), Some(401)),
            (basic("alice:s3cret", ""), Some(401)),
            (headers("Bearer t0ken"), None),
            (headers("Bearer nope"), Some(401)),
            (headers("Basic !!!"), Some(401)),
            (HeaderMap::new(), Some(401)),
        ];
        for (headers, expected) in cases {
            assert_eq!(
                status(access.check(&headers).await),
                expected,
                "{headers:?}"
            );
        }
        let refused = access.check(&HeaderMap::new()).await.unwrap_err();
        assert!(matches!(refused, ApiError::LoginRequired));
    }

    #[tokio::test]
    async fn a_verified_login_is_remembered_and_forgotten_with_its_users() {
        let access = Access::new(None, users());
        access.check(&basic("alice", "s3cret")).await.unwrap();
        let current = access.current().unwrap();
        assert_eq!(current.verified.lock().unwrap().keys.len(), 1);
        access.check(&basic("alice", "wrong")).await.unwrap_err();
        assert_eq!(
            current.verified.lock().unwrap().keys.len(),
            1,
            "no failures"
        );
        for i in 0..CACHE_ENTRIES + 10 {
            current.remember(cache_key("u", "h", i.to_string().as_bytes()));
        }
        assert_eq!(current.verified.lock().unwrap().keys.len(), CACHE_ENTRIES);
        access.replace_users(None);
        assert_eq!(access.user_count(), 0);
        access.check(&HeaderMap::new()).await.unwrap();
    }

    #[tokio::test]
    async fn without_users_the_bearer_rule_is_unchanged() {
        let access = Access::new(Some(Arc::new(SecretString::from("t0ken"))), None);
        assert!(access.check(&headers("Bearer t0ken")).await.is_ok());
        let refused = access.check(&basic("alice", "s3cret")).await.unwrap_err();
        assert!(matches!(refused, ApiError::Unauthorized));
    }
}
