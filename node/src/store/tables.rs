//! Replication state: pinned peers, trust roots, and the quarantine of records
//! whose author is not trusted yet. Peers and roots are small tables whose
//! values the node encodes (JSON); the store only keeps them durable.
//!
//! - `peers`:      name → value
//! - `trust`:      author key → value
//! - `quarantine`: author ‖ id → received_at_ms ‖ 0 ‖ peer name length (1
//!   byte) ‖ peer name ‖ canonical envelope bytes. Entries written before
//!   the peer was kept hold received_at_ms ‖ envelope: an envelope's first
//!   byte (a protobuf tag) is never 0.

use maillage_record::{PublicKey, RecordId, VerifiedRecord};
use rocksdb::{Direction, IteratorMode, WriteOptions};

use super::{CF_PEERS, CF_QUARANTINE, CF_TRUST, Store, StoreError, read_u64};

/// A record waiting for its author to be trusted.
#[derive(Debug, Clone)]
pub struct Quarantined {
    pub author: PublicKey,
    pub id: RecordId,
    pub received_at_ms: i64,
    /// The peer it came from (unknown for entries of older versions).
    pub peer: Option<String>,
    pub bytes: Vec<u8>,
}

impl Store {
    fn put_synced(&self, cf: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.put_cf_opt(self.cf(cf), key, value, &wo)?;
        Ok(())
    }

    fn delete_synced(&self, cf: &str, key: &[u8]) -> Result<bool, StoreError> {
        let existed = self.db.get_pinned_cf(self.cf(cf), key)?.is_some();
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.delete_cf_opt(self.cf(cf), key, &wo)?;
        Ok(existed)
    }

    fn all(&self, cf: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(cf), IteratorMode::Start) {
            let (k, v) = item?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    pub(super) fn put_peer(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.put_synced(CF_PEERS, name.as_bytes(), value)
    }

    /// Peer statistics: written to the WAL without waiting for the disk; a
    /// crash may lose the last few counts, never a pinned peer.
    pub(super) fn put_peer_stats(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.db.put_cf(self.cf(CF_PEERS), name.as_bytes(), value)?;
        Ok(())
    }

    /// Returns whether the peer existed.
    pub(super) fn delete_peer(&self, name: &str) -> Result<bool, StoreError> {
        self.delete_synced(CF_PEERS, name.as_bytes())
    }

    /// (name, value) of every peer, by name.
    pub fn peers(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.all(CF_PEERS)?
            .into_iter()
            .map(|(k, v)| {
                String::from_utf8(k)
                    .map(|name| (name, v))
                    .map_err(|_| self.corrupt("peer name"))
            })
            .collect()
    }

    pub(super) fn put_root(&self, key: &PublicKey, value: &[u8]) -> Result<(), StoreError> {
        self.put_synced(CF_TRUST, &key.0, value)
    }

    pub(super) fn delete_root(&self, key: &PublicKey) -> Result<bool, StoreError> {
        self.delete_synced(CF_TRUST, &key.0)
    }

    pub fn roots(&self) -> Result<Vec<(PublicKey, Vec<u8>)>, StoreError> {
        self.all(CF_TRUST)?
            .into_iter()
            .map(|(k, v)| {
                PublicKey::from_slice(&k)
                    .map(|key| (key, v))
                    .ok_or_else(|| self.corrupt("trust root key"))
            })
            .collect()
    }

    /// Puts verified records from `peer` aside until their author is trusted.
    pub(super) fn quarantine(&self, recs: &[VerifiedRecord], peer: &str) -> Result<(), StoreError> {
        let mut batch = rocksdb::WriteBatch::default();
        let now = maillage_record::now_ms();
        // Peer names are at most 64 bytes (`peers::validate_name`).
        let peer = &peer.as_bytes()[..peer.len().min(255)];
        for rec in recs {
            let mut key = rec.author().0.to_vec();
            key.extend_from_slice(&rec.id().0);
            let envelope = rec.canonical();
            let mut value = Vec::with_capacity(10 + peer.len() + envelope.len());
            value.extend_from_slice(&now.to_be_bytes());
            value.push(0);
            value.push(peer.len() as u8);
            value.extend_from_slice(peer);
            value.extend_from_slice(envelope);
            batch.put_cf(self.cf(CF_QUARANTINE), key, value);
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch, &wo)?;
        Ok(())
    }

    /// Quarantined records, by author then id; only `author`'s if given.
    pub fn quarantined(
        &self,
        author: Option<&PublicKey>,
        limit: usize,
    ) -> Result<Vec<Quarantined>, StoreError> {
        let prefix: &[u8] = author.map_or(&[], |a| &a.0);
        let mut out = Vec::new();
        let iter = self.db.iterator_cf(
            self.cf(CF_QUARANTINE),
            IteratorMode::From(prefix, Direction::Forward),
        );
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(prefix) || out.len() == limit {
                break;
            }
            let bad = || self.corrupt("quarantine entry");
            if k.len() != 64 || v.len() < 8 {
                return Err(bad());
            }
            let (peer, bytes) = match v[8..] {
                [0, len, ref rest @ ..] if rest.len() >= len as usize => {
                    let (name, bytes) = rest.split_at(len as usize);
                    (Some(String::from_utf8_lossy(name).into_owned()), bytes)
                }
                [0, ..] => return Err(bad()),
                ref bytes => (None, bytes),
            };
            out.push(Quarantined {
                author: PublicKey::from_slice(&k[..32]).ok_or_else(bad)?,
                id: RecordId::from_slice(&k[32..]).ok_or_else(bad)?,
                received_at_ms: read_u64(&v, 0).ok_or_else(bad)? as i64,
                peer,
                bytes: bytes.to_vec(),
            });
        }
        Ok(out)
    }

    /// The authors of quarantined records, each once, in key order: one
    /// seek per author, not a read of every record.
    pub fn quarantine_authors(&self) -> Result<Vec<PublicKey>, StoreError> {
        let mut out = Vec::new();
        let mut it = self.db.raw_iterator_cf(self.cf(CF_QUARANTINE));
        it.seek_to_first();
        while let Some(k) = it.key() {
            let author = k
                .get(..32)
                .and_then(PublicKey::from_slice)
                .ok_or_else(|| self.corrupt("quarantine entry"))?;
            out.push(author);
            // Past every key (author ‖ 32-byte id) of this author.
            let mut next = author.0.to_vec();
            next.extend_from_slice(&[0xff; 33]);
            it.seek(&next);
        }
        it.status()?;
        Ok(out)
    }

    /// Removes records from the quarantine (released or dropped).
    pub(super) fn unquarantine(&self, entries: &[(PublicKey, RecordId)]) -> Result<(), StoreError> {
        let mut batch = rocksdb::WriteBatch::default();
        for (author, id) in entries {
            let mut key = author.0.to_vec();
            key.extend_from_slice(&id.0);
            batch.delete_cf(self.cf(CF_QUARANTINE), key);
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch, &wo)?;
        Ok(())
    }
}
