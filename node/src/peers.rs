//! The peer table: the peers the operator pinned (`maillage peer add`), with
//! their replication state. It is kept in the store so it survives restarts,
//! and its keys are the only ones the TLS layer lets in.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};

use maillage_record::{PublicKey, Siren};
use serde::{Deserialize, Serialize};

use crate::ledger::Ledger;
use crate::store::{Store, StoreError};
use crate::tls::PinnedKeys;
use crate::trust::Trust;

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("peer name '{0}' is not valid: use 1 to 64 letters, digits, '-', '_' or '.'")]
    Name(String),
    #[error(
        "peer address '{0}' is not valid: write https://host:port, e.g. https://node.example.fr:7441"
    )]
    Url(String),
    #[error("key {0} is this node's own key: a node does not peer with itself")]
    Own(PublicKey),
    #[error("key {key} is already pinned as peer '{name}': remove that peer first")]
    KeyTaken { key: PublicKey, name: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerState {
    pub name: String,
    pub url: String,
    /// Hex, as operators write it.
    pub key: String,
    pub added_at_ms: i64,
    /// The SIREN this node's operator vouched for when pinning the peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub siren: Option<String>,
    #[serde(default)]
    pub last_sync_ms: i64,
    #[serde(default)]
    pub records_received: u64,
    #[serde(default)]
    pub records_sent: u64,
    #[serde(default)]
    pub last_error: String,
    #[serde(default)]
    pub consecutive_failures: u32,
    /// The version of maillage the peer said it runs, at its last answer.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Live state, not persisted.
    #[serde(skip)]
    pub subscribed: bool,
    #[serde(skip)]
    pub syncing: bool,
    /// Bytes this node's syncs with the peer exchanged since it started.
    #[serde(skip)]
    pub wire_bytes: u64,
    /// The key was revoked (a Revocation record): no longer pinned.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub revoked: bool,
}

impl PeerState {
    pub fn public_key(&self) -> Option<PublicKey> {
        PublicKey::parse_hex(&self.key).ok()
    }

    /// Pinned (not revoked), and its last sync succeeded: what `status`,
    /// the metrics and the health service count as a peer that answers.
    pub fn answers(&self) -> bool {
        !self.revoked && self.last_sync_ms > 0 && self.consecutive_failures == 0
    }

    pub fn state(&self) -> &'static str {
        if self.revoked {
            "revoked"
        } else if self.syncing {
            "syncing"
        } else if self.consecutive_failures > 0 {
            "failing"
        } else if self.last_sync_ms == 0 {
            "new"
        } else {
            "ok"
        }
    }
}

pub struct PeerTable {
    /// Where entries are written (the one writer).
    ledger: Arc<Ledger>,
    peers: RwLock<BTreeMap<String, PeerState>>,
    pinned: PinnedKeys,
}

pub fn validate_name(name: &str) -> Result<(), PeerError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(PeerError::Name(name.to_string()))
    }
}

pub fn validate_url(url: &str) -> Result<(), PeerError> {
    crate::tls::authority(url)
        .map(|_| ())
        .ok_or_else(|| PeerError::Url(url.to_string()))
}

impl PeerTable {
    pub fn load(store: &Store, ledger: Arc<Ledger>) -> Result<PeerTable, StoreError> {
        let mut peers = BTreeMap::new();
        for (name, value) in store.peers()? {
            match serde_json::from_slice::<PeerState>(&value) {
                Ok(p) => {
                    peers.insert(name, p);
                }
                Err(e) => {
                    tracing::error!(peer = name, error = %e, "unreadable peer entry: re-add it with `maillage peer add`")
                }
            }
        }
        let pinned: HashSet<PublicKey> = peers.values().filter_map(PeerState::public_key).collect();
        Ok(PeerTable {
            ledger,
            peers: RwLock::new(peers),
            pinned: Arc::new(RwLock::new(pinned)),
        })
    }

    pub fn pinned(&self) -> PinnedKeys {
        self.pinned.clone()
    }

    fn refresh_pinned(&self, peers: &BTreeMap<String, PeerState>) {
        let keys = peers
            .values()
            .filter(|p| !p.revoked)
            .filter_map(PeerState::public_key)
            .collect();
        *self.pinned.write().unwrap_or_else(|p| p.into_inner()) = keys;
    }

    /// Pins a peer, or changes the address or SIREN of an existing name.
    /// The same name and key is the same peer: its history (last sync,
    /// records exchanged, failures) stays. A new key is a new peer.
    pub fn add(
        &self,
        name: &str,
        url: &str,
        key: PublicKey,
        siren: Option<&Siren>,
        own: PublicKey,
    ) -> Result<PeerState, PeerError> {
        validate_name(name)?;
        validate_url(url)?;
        if key == own {
            return Err(PeerError::Own(key));
        }
        let mut peers = self.peers.write().unwrap_or_else(|p| p.into_inner());
        if let Some(other) = peers
            .values()
            .find(|p| p.name != name && p.public_key() == Some(key))
        {
            return Err(PeerError::KeyTaken {
                key,
                name: other.name.clone(),
            });
        }
        let url = url.trim_end_matches('/').to_string();
        let siren = siren.map(|s| s.as_str().to_string());
        let state = match peers.get(name).filter(|p| p.public_key() == Some(key)) {
            // At a new address, the old address's failures say nothing.
            Some(same) if same.url != url => PeerState {
                url,
                siren,
                last_error: String::new(),
                consecutive_failures: 0,
                ..same.clone()
            },
            Some(same) => PeerState {
                url,
                siren,
                ..same.clone()
            },
            None => PeerState {
                name: name.to_string(),
                url,
                key: key.to_hex(),
                added_at_ms: maillage_record::now_ms(),
                siren,
                last_sync_ms: 0,
                records_received: 0,
                records_sent: 0,
                last_error: String::new(),
                consecutive_failures: 0,
                version: String::new(),
                subscribed: false,
                syncing: false,
                wire_bytes: 0,
                revoked: false,
            },
        };
        self.ledger.save_peer(
            name,
            &serde_json::to_vec(&state).expect("plain struct serializes"),
        )?;
        peers.insert(name.to_string(), state.clone());
        self.refresh_pinned(&peers);
        Ok(state)
    }

    /// Unpins a peer; returns false if there was none by that name.
    pub fn remove(&self, name: &str) -> Result<bool, StoreError> {
        let mut peers = self.peers.write().unwrap_or_else(|p| p.into_inner());
        let existed = self.ledger.delete_peer(name)?;
        let existed = peers.remove(name).is_some() || existed;
        self.refresh_pinned(&peers);
        Ok(existed)
    }

    pub fn get(&self, name: &str) -> Option<PeerState> {
        self.peers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    pub fn list(&self) -> Vec<PeerState> {
        self.peers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// What `read` finds in the peer pinned with `key`.
    fn of_key<T>(&self, key: &PublicKey, read: impl FnOnce(&PeerState) -> Option<T>) -> Option<T> {
        self.peers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .find(|p| p.public_key().as_ref() == Some(key))
            .and_then(read)
    }

    /// The name of the peer pinned with `key`.
    pub fn name_of(&self, key: &PublicKey) -> Option<String> {
        self.of_key(key, |p| Some(p.name.clone()))
    }

    /// The SIREN this node's operator vouched for when pinning `key`.
    pub fn siren_of(&self, key: &PublicKey) -> Option<Siren> {
        self.of_key(key, |p| Siren::parse(p.siren.as_deref()?).ok())
    }

    /// The keys of the peers pinned with `siren` (`peer add --siren`).
    pub fn keys_for(&self, siren: &Siren) -> Vec<PublicKey> {
        self.peers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|p| p.siren.as_deref() == Some(siren.as_str()))
            .filter_map(|p| p.public_key())
            .collect()
    }

    /// Follows successions and revocations (blocking: it writes): a peer
    /// whose key handed over is pinned with its successor, keeping its name,
    /// address, SIREN and history; a peer whose key is revoked is no longer
    /// pinned. Returns what changed, for the log.
    pub fn follow(&self, trust: &Trust) -> Result<Vec<String>, StoreError> {
        let mut peers = self.peers.write().unwrap_or_else(|p| p.into_inner());
        let mut changed = Vec::new();
        for state in peers.values_mut() {
            let Some(key) = state.public_key() else {
                continue;
            };
            let latest = trust.latest(&key);
            let said = if trust.compromised_since(&latest).is_some() {
                if state.revoked {
                    continue;
                }
                state.revoked = true;
                state.last_error = format!("key {latest} was revoked: no longer pinned");
                format!(
                    "peer '{}': key {latest} revoked, no longer pinned",
                    state.name
                )
            } else if latest != key {
                state.key = latest.to_hex();
                format!(
                    "peer '{}': key {key} handed over to {latest}, now pinned",
                    state.name
                )
            } else {
                continue;
            };
            self.ledger.save_peer(
                &state.name,
                &serde_json::to_vec(&*state).expect("plain struct serializes"),
            )?;
            changed.push(said);
        }
        if !changed.is_empty() {
            self.refresh_pinned(&peers);
        }
        Ok(changed)
    }

    /// Changes a peer's state and keeps it (if the peer is still there).
    /// Statistics are best effort: a failed write is logged, not fatal.
    pub fn update(&self, name: &str, change: impl FnOnce(&mut PeerState)) {
        let mut peers = self.peers.write().unwrap_or_else(|p| p.into_inner());
        let Some(state) = peers.get_mut(name) else {
            return;
        };
        change(state);
        let value = serde_json::to_vec(&*state).expect("plain struct serializes");
        if let Err(e) = self.ledger.save_peer_stats(name, &value) {
            tracing::warn!(peer = name, error = %e, "cannot save peer state");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_urls() {
        assert!(validate_name("toulouse-metropole_1.a").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_url("https://127.0.0.1:7441").is_ok());
        assert!(validate_url("https://node.example.fr:7441/").is_ok());
        assert!(validate_url("http://127.0.0.1:7441").is_err());
        assert!(validate_url("https://127.0.0.1").is_err());
        assert!(validate_url("https://127.0.0.1:0").is_err());
        assert!(validate_url("https://h:1/x").is_err());
    }

    /// Pinning a peer again (to vouch for its SIREN, or at a new address)
    /// keeps what it exchanged so far; a new key starts anew.
    #[test]
    fn pinning_again_keeps_a_peers_history_unless_its_key_changed() {
        let dir = tempfile::tempdir().unwrap();
        let (store, ledger) = crate::ledger::tests::open(dir.path());
        let table = PeerTable::load(&store, ledger.clone()).unwrap();
        let (own, key, other) = (PublicKey([1; 32]), PublicKey([2; 32]), PublicKey([3; 32]));
        table
            .add("blagnac", "https://127.0.0.1:7441", key, None, own)
            .unwrap();
        table.update("blagnac", |p| {
            p.last_sync_ms = 42;
            p.records_received = 7;
            p.consecutive_failures = 3;
            p.last_error = "cannot reach https://127.0.0.1:7441".into();
        });
        let siren = Siren::parse("213100696").unwrap();
        let vouched = table
            .add("blagnac", "https://127.0.0.1:7441", key, Some(&siren), own)
            .unwrap();
        assert_eq!(
            (vouched.records_received, vouched.consecutive_failures),
            (7, 3)
        );
        // At a new address: its history stays, the old address's failures go.
        let again = table
            .add("blagnac", "https://127.0.0.1:7442/", key, Some(&siren), own)
            .unwrap();
        assert_eq!((again.last_sync_ms, again.records_received), (42, 7));
        assert_eq!(
            (again.consecutive_failures, again.last_error.as_str()),
            (0, "")
        );
        assert_eq!(again.url, "https://127.0.0.1:7442");
        assert_eq!(table.siren_of(&key), Some(siren));
        let reloaded = PeerTable::load(&store, ledger).unwrap();
        assert_eq!(reloaded.get("blagnac").unwrap().records_received, 7);

        let new_key = table
            .add("blagnac", "https://127.0.0.1:7442", other, None, own)
            .unwrap();
        assert_eq!((new_key.last_sync_ms, new_key.records_received), (0, 0));
        assert_eq!(table.name_of(&key), None);
    }
}
