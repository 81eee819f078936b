//! Read tokens for scripts (issue 22): `maillage token create --siren S`
//! makes a bearer token that sees, on the HTTP JSON endpoints, what an agent
//! of S signed in on the portal sees. The node keeps each token's SHA-256
//! only (a copy of the store gives no token), in memory for lookups and in
//! the store (`ledger::save_token`) across restarts.
//!
//! Also the rate limit of whoever is known by a session or a token: a flood
//! from one of them is refused (429), the others are not slowed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use maillage_record::Siren;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::ledger::Ledger;
use crate::store::{Store, StoreError};

/// What a token is `mt_` followed by.
const PREFIX: &str = "mt_";
/// The longest a token may last.
pub const MAX_LIFETIME: Duration = Duration::from_secs(2 * 366 * 24 * 3600);
/// Tokens kept at most.
const MAX_TOKENS: usize = 10_000;

/// A read token, as kept (not its secret).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Token {
    /// The first 16 hex characters of the token's SHA-256.
    pub id: String,
    pub siren: Siren,
    pub name: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("'{0}': {1}")]
    Invalid(String, String),
    #[error("no token '{0}': see `maillage token list`")]
    NotFound(String),
    #[error("{MAX_TOKENS} tokens are kept already: revoke some first")]
    Full,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Every read token of the node.
pub struct Tokens {
    by_hash: RwLock<HashMap<[u8; 32], Token>>,
}

fn hash(token: &str) -> [u8; 32] {
    sha2::Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    /// The tokens the store keeps.
    pub fn load(store: &Store) -> Result<Tokens, StoreError> {
        let mut by_hash = HashMap::new();
        for (h, value) in store.tokens()? {
            match serde_json::from_slice::<Token>(&value) {
                Ok(t) => {
                    by_hash.insert(h, t);
                }
                Err(e) => {
                    tracing::error!(error = %e, "a stored read token does not decode; left out")
                }
            }
        }
        Ok(Tokens {
            by_hash: RwLock::new(by_hash),
        })
    }

    /// Makes a token: its secret (shown once) and what is kept of it.
    pub fn create(
        &self,
        ledger: &Ledger,
        siren: &str,
        name: &str,
        expires_at_ms: i64,
    ) -> Result<(String, Token), TokenError> {
        let siren = Siren::parse(siren)
            .map_err(|e| TokenError::Invalid(siren.to_string(), format!("not a SIREN: {e}")))?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(TokenError::Invalid(
                name.to_string(),
                "a token's name is 1 to 200 characters: who uses it".into(),
            ));
        }
        let now = maillage_record::now_ms();
        if expires_at_ms <= now || expires_at_ms - now > MAX_LIFETIME.as_millis() as i64 {
            return Err(TokenError::Invalid(
                expires_at_ms.to_string(),
                "a token expires in the future, within two years".into(),
            ));
        }
        if self.by_hash.read().unwrap_or_else(|p| p.into_inner()).len() >= MAX_TOKENS {
            return Err(TokenError::Full);
        }
        let mut secret = [0u8; 32];
        SystemRandom::new().fill(&mut secret).map_err(|_| {
            TokenError::Invalid("(random)".into(), "no randomness to make a token".into())
        })?;
        let token = format!("{PREFIX}{}", B64.encode(secret));
        let h = hash(&token);
        let info = Token {
            id: hex::encode(&h[..8]),
            siren,
            name: name.to_string(),
            created_at_ms: now,
            expires_at_ms,
        };
        let value = serde_json::to_vec(&info).expect("a token encodes");
        ledger.save_token(&h, &value)?;
        self.by_hash
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(h, info.clone());
        Ok((token, info))
    }

    /// Every token, by creation.
    pub fn list(&self) -> Vec<Token> {
        let mut all: Vec<Token> = self
            .by_hash
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        all
    }

    pub fn revoke(&self, ledger: &Ledger, id: &str) -> Result<Token, TokenError> {
        let found = self
            .by_hash
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(_, t)| t.id == id)
            .map(|(h, t)| (*h, t.clone()));
        let Some((h, token)) = found else {
            return Err(TokenError::NotFound(id.to_string()));
        };
        ledger.delete_token(&h)?;
        self.by_hash
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&h);
        Ok(token)
    }

    /// The token a bearer presents, if it is kept and not expired.
    pub fn check(&self, bearer: &str) -> Option<Token> {
        if !bearer.starts_with(PREFIX) || bearer.len() > 100 {
            return None;
        }
        let token = self
            .by_hash
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash(bearer))
            .cloned()?;
        (token.expires_at_ms > maillage_record::now_ms()).then_some(token)
    }
}

/// Requests one caller (a session, a token) may make: `BURST` at once,
/// then `PER_SECOND`.
const BURST: f64 = 60.0;
const PER_SECOND: f64 = 20.0;
/// Callers followed at most; past it, those idle longest are forgotten.
const MAX_CALLERS: usize = 100_000;

/// A token bucket per caller.
#[derive(Default)]
pub struct RateLimit {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimit {
    pub fn new() -> Arc<RateLimit> {
        Arc::new(RateLimit::default())
    }

    /// Whether `caller` may make one more request now.
    pub fn allow(&self, caller: &str) -> bool {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_CALLERS && !buckets.contains_key(caller) {
            // Full buckets are those of callers idle long enough to refill.
            let refill = Duration::from_secs_f64(BURST / PER_SECOND);
            buckets.retain(|_, (_, at)| now.duration_since(*at) < refill);
            if buckets.len() >= MAX_CALLERS {
                return false;
            }
        }
        let (level, at) = buckets.entry(caller.to_string()).or_insert((BURST, now));
        *level = (*level + now.duration_since(*at).as_secs_f64() * PER_SECOND).min(BURST);
        *at = now;
        if *level >= 1.0 {
            *level -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_from_one_caller_is_refused_and_the_others_pass() {
        let limit = RateLimit::default();
        let allowed = (0..200).filter(|_| limit.allow("token:a")).count();
        assert!((60..=65).contains(&allowed), "{allowed}");
        assert!(limit.allow("token:b"));
        std::thread::sleep(Duration::from_millis(200));
        assert!(limit.allow("token:a"), "the bucket refills");
    }

    #[tokio::test]
    async fn tokens_are_kept_hashed_checked_and_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let node = crate::node::tests::start_node(dir.path()).await;
        let day = 24 * 3600 * 1000;
        let (secret, info) = node
            .tokens()
            .create(
                node.ledger(),
                "213101496",
                "SIG de Colomiers",
                maillage_record::now_ms() + day,
            )
            .unwrap();
        assert!(secret.starts_with("mt_") && secret.len() == 46, "{secret}");
        assert_eq!(node.tokens().check(&secret), Some(info.clone()));
        assert_eq!(node.tokens().check("mt_forged"), None);
        // Only the hash is stored.
        let stored = node.store().tokens().unwrap();
        assert_eq!(stored.len(), 1);
        assert!(!String::from_utf8_lossy(&stored[0].1).contains(&secret[3..]));
        // Kept across a restart.
        assert_eq!(
            Tokens::load(node.store()).unwrap().check(&secret),
            Some(info.clone())
        );
        for (siren, name, expires) in [
            ("123456789", "x", maillage_record::now_ms() + day),
            ("213101496", "", maillage_record::now_ms() + day),
            ("213101496", "x", maillage_record::now_ms() - 1),
            ("213101496", "x", maillage_record::now_ms() + 3 * 366 * day),
        ] {
            assert!(
                node.tokens()
                    .create(node.ledger(), siren, name, expires)
                    .is_err()
            );
        }
        node.tokens().revoke(node.ledger(), &info.id).unwrap();
        assert_eq!(node.tokens().check(&secret), None);
        assert!(Tokens::load(node.store()).unwrap().list().is_empty());
        assert!(matches!(
            node.tokens().revoke(node.ledger(), &info.id),
            Err(TokenError::NotFound(_))
        ));
        node.stop();
    }
}
