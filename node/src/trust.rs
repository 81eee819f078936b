//! Whose records this node accepts from peers. An author is accepted when it
//! is this node's own organisation or a root the operator trusts
//! (`maillage trust add-root`); records of other authors wait in quarantine
//! (see `replication::intake`) until one of those becomes true.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use maillage_record::PublicKey;
use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RootInfo {
    #[serde(default)]
    pub note: String,
    pub added_at_ms: i64,
}

pub struct Trust {
    store: Arc<Store>,
    own: PublicKey,
    roots: RwLock<BTreeMap<PublicKey, RootInfo>>,
}

impl Trust {
    pub fn load(store: Arc<Store>, own: PublicKey) -> Result<Trust, StoreError> {
        let mut roots = BTreeMap::new();
        for (key, value) in store.roots()? {
            // A value this version cannot read still names a trusted key.
            let info = serde_json::from_slice(&value).unwrap_or(RootInfo {
                note: String::new(),
                added_at_ms: 0,
            });
            roots.insert(key, info);
        }
        Ok(Trust {
            store,
            own,
            roots: RwLock::new(roots),
        })
    }

    /// Whether records by `author` are accepted from peers.
    pub fn accepts(&self, author: &PublicKey) -> bool {
        *author == self.own
            || self
                .roots
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(author)
    }

    /// Trusts `key` as a root; returns false if it already was one.
    pub fn add_root(&self, key: PublicKey, note: &str) -> Result<bool, StoreError> {
        let mut roots = self.roots.write().unwrap_or_else(|p| p.into_inner());
        if roots.contains_key(&key) {
            return Ok(false);
        }
        let info = RootInfo {
            note: note.to_string(),
            added_at_ms: maillage_record::now_ms(),
        };
        let value = serde_json::to_vec(&info).expect("plain struct serializes");
        self.store.put_root(&key, &value)?;
        roots.insert(key, info);
        Ok(true)
    }

    /// Stops trusting `key`; returns false if it was not a root. Records
    /// already accepted stay: they were valid when they came.
    pub fn remove_root(&self, key: &PublicKey) -> Result<bool, StoreError> {
        let mut roots = self.roots.write().unwrap_or_else(|p| p.into_inner());
        let existed = self.store.delete_root(key)?;
        roots.remove(key);
        Ok(existed)
    }

    pub fn roots(&self) -> Vec<(PublicKey, RootInfo)> {
        self.roots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }
}
