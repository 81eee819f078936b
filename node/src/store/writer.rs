//! The write half of the store. `Store::open` makes the only one, and the
//! node hands it to the ledger (`crate::ledger`), so "every write goes
//! through the ledger" is something the compiler checks, not a convention:
//! whoever holds an `Arc<Store>` can only read.

use std::sync::Arc;

use maillage_record::{PublicKey, RecordId, VerifiedRecord};

use super::{Admission, Inserted, Origin, Store, StoreError};

pub struct Writer {
    store: Arc<Store>,
}

impl Writer {
    pub(super) fn new(store: Arc<Store>) -> Writer {
        Writer { store }
    }

    /// Stores verified records with all their index entries in one synced
    /// batch. The outer error is a failed write (nothing stored); an inner
    /// error refuses one record (already stored, or not newer when
    /// `admission` requires it), and nothing of it is written.
    ///
    /// `committed` runs once the batch is durable, before any reader sees
    /// the new counts or sequence number: keep it short (a write waits on
    /// it).
    pub fn write(
        &self,
        recs: &[VerifiedRecord],
        admission: Admission,
        origin: Origin<'_>,
        committed: super::Committed<'_>,
    ) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
        self.store.write_records(recs, admission, origin, committed)
    }

    /// Puts verified records from `peer` aside until their author is
    /// trusted, each with when it was first seen.
    pub fn quarantine(
        &self,
        recs: &[VerifiedRecord],
        first_seen: &[i64],
        peer: &str,
    ) -> Result<(), StoreError> {
        self.store.quarantine(recs, first_seen, peer)
    }

    /// Keeps when the federation first saw stored envelopes, where a peer
    /// said it was earlier than when this node stored them.
    pub fn put_first_seen(&self, seen: &[(RecordId, i64)]) -> Result<(), StoreError> {
        self.store.put_first_seen(seen)
    }

    /// Removes records from the quarantine: released, or `dropped`.
    pub fn unquarantine(
        &self,
        entries: &[(PublicKey, RecordId)],
        dropped: bool,
    ) -> Result<(), StoreError> {
        self.store.unquarantine(entries, dropped)
    }

    pub fn put_root(&self, key: &PublicKey, value: &[u8]) -> Result<(), StoreError> {
        self.store.put_root(key, value)
    }

    /// Returns whether the root existed.
    pub fn delete_root(&self, key: &PublicKey) -> Result<bool, StoreError> {
        self.store.delete_root(key)
    }

    pub fn put_access(&self, lines: &[(i64, u64, Vec<u8>)]) -> Result<(), StoreError> {
        self.store.put_access(lines)
    }

    pub fn prune_access(&self, before_ms: i64) -> Result<(), StoreError> {
        self.store.prune_access(before_ms)
    }

    pub fn put_proposal(&self, id: &str, value: &[u8]) -> Result<(), StoreError> {
        self.store.put_proposal(id, value)
    }

    pub fn delete_proposal(&self, id: &str) -> Result<bool, StoreError> {
        self.store.delete_proposal(id)
    }

    pub fn put_token(&self, hash: &[u8; 32], value: &[u8]) -> Result<(), StoreError> {
        self.store.put_token(hash, value)
    }

    pub fn delete_token(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        self.store.delete_token(hash)
    }

    pub fn put_peer(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.store.put_peer(name, value)
    }

    /// Peer statistics: to the WAL without waiting for the disk.
    pub fn put_peer_stats(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.store.put_peer_stats(name, value)
    }

    /// Returns whether the peer existed.
    pub fn delete_peer(&self, name: &str) -> Result<bool, StoreError> {
        self.store.delete_peer(name)
    }
}
