//! Replication state: pinned peers, trust roots, and the quarantine of records
//! whose author is not trusted yet. Peers and roots are small tables whose
//! values the node encodes (JSON); the store only keeps them durable.
//!
//! - `peers`:      name → value
//! - `trust`:      author key → value
//! - `quarantine`: (author, id) → when (this node's clock) and from which
//!   peer the envelope came, and the envelope (`codec::QuarantineKey`,
//!   `codec::QuarantineValue`); when the federation first saw it, if
//!   earlier, is in `first_seen` as for a stored record

use maillage_record::{PublicKey, RecordId, VerifiedRecord};
use rocksdb::{Direction, IteratorMode, WriteOptions};

use super::codec::{QuarantineKey, QuarantineValue};
use super::{
    CF_ACCESS, CF_FIRST_SEEN, CF_PEERS, CF_PROPOSALS, CF_QUARANTINE, CF_TOKENS, CF_TRUST, Store,
    StoreError,
};

/// A quarantine entry as a scan sees it, borrowed from the table: nothing
/// is kept once the scan's callback returns.
#[derive(Debug, Clone, Copy)]
pub struct QuarantineEntry<'a> {
    pub author: PublicKey,
    pub id: RecordId,
    /// When it was first seen (by this node, or earlier by the peers that
    /// relayed it).
    pub received_at_ms: i64,
    pub peer: Option<&'a [u8]>,
    pub envelope: &'a [u8],
}

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
        self.db
            .put_cf_opt(self.cf(cf), key, value, &wo)
            .map_err(|e| self.write_error(e))?;
        Ok(())
    }

    fn delete_synced(&self, cf: &str, key: &[u8]) -> Result<bool, StoreError> {
        let existed = self.db.get_pinned_cf(self.cf(cf), key)?.is_some();
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db
            .delete_cf_opt(self.cf(cf), key, &wo)
            .map_err(|e| self.write_error(e))?;
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

    /// An access log line, under (time, a number that tells lines of the
    /// same millisecond apart). To the WAL without waiting for the disk: a
    /// crash may lose the last lines, and a read is not held up by a sync.
    /// Access log lines, (time, number, line), in one unsynced batch.
    pub(super) fn put_access(&self, lines: &[(i64, u64, Vec<u8>)]) -> Result<(), StoreError> {
        let mut batch = rocksdb::WriteBatch::default();
        for (at_ms, n, value) in lines {
            let mut key = Vec::with_capacity(16);
            key.extend_from_slice(&((*at_ms).max(0) as u64).to_be_bytes());
            key.extend_from_slice(&n.to_be_bytes());
            batch.put_cf(self.cf(CF_ACCESS), key, value);
        }
        self.db.write(batch).map_err(|e| self.write_error(e))
    }

    /// Forgets the access log's lines written before `before_ms`.
    pub(super) fn prune_access(&self, before_ms: i64) -> Result<(), StoreError> {
        let end = (before_ms.max(0) as u64).to_be_bytes();
        self.db
            .delete_range_cf(self.cf(CF_ACCESS), [0u8; 8].as_slice(), end.as_slice())
            .map_err(|e| self.write_error(e))
    }

    /// The access log's lines from `since_ms`, oldest first, at most
    /// `limit`: (time, line).
    pub fn access_log(
        &self,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        let start = (since_ms.max(0) as u64).to_be_bytes();
        let mut out = Vec::new();
        let iter = self.db.iterator_cf(
            self.cf(CF_ACCESS),
            IteratorMode::From(&start, rocksdb::Direction::Forward),
        );
        for item in iter.take(limit) {
            let (k, v) = item?;
            let at = k
                .get(..8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| self.corrupt("access log key"))?;
            out.push((at as i64, v.to_vec()));
        }
        Ok(out)
    }

    pub(super) fn put_proposal(&self, id: &str, value: &[u8]) -> Result<(), StoreError> {
        self.put_synced(CF_PROPOSALS, id.as_bytes(), value)
    }

    pub(super) fn delete_proposal(&self, id: &str) -> Result<bool, StoreError> {
        self.delete_synced(CF_PROPOSALS, id.as_bytes())
    }

    /// Every proposal: (id, value).
    pub fn proposals(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.all(CF_PROPOSALS)?
            .into_iter()
            .map(|(k, v)| {
                String::from_utf8(k)
                    .map(|id| (id, v))
                    .map_err(|_| self.corrupt("proposal id"))
            })
            .collect()
    }

    pub(super) fn put_token(&self, hash: &[u8; 32], value: &[u8]) -> Result<(), StoreError> {
        self.put_synced(CF_TOKENS, hash, value)
    }

    /// Returns whether the token existed.
    pub(super) fn delete_token(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        self.delete_synced(CF_TOKENS, hash)
    }

    /// (SHA-256 of the token, value) of every read token.
    pub fn tokens(&self) -> Result<Vec<super::StoredToken>, StoreError> {
        self.all(CF_TOKENS)?
            .into_iter()
            .map(|(k, v)| {
                <[u8; 32]>::try_from(k.as_slice())
                    .map(|hash| (hash, v))
                    .map_err(|_| self.corrupt("token key"))
            })
            .collect()
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

    /// Puts verified records from `peer` aside until their author is
    /// trusted, each with when the federation first saw it where that is
    /// earlier than now (kept in `first_seen`, as for a stored record: what
    /// a late record is judged by when it is released).
    pub(super) fn quarantine(
        &self,
        recs: &[VerifiedRecord],
        first_seen: &[i64],
        peer: &str,
    ) -> Result<(), StoreError> {
        let mut batch = rocksdb::WriteBatch::default();
        let now = maillage_record::now_ms();
        for (rec, seen) in recs.iter().zip(first_seen) {
            let key = QuarantineKey {
                author: rec.author(),
                id: rec.id(),
            };
            if *seen < now {
                batch.put_cf(self.cf(CF_FIRST_SEEN), rec.id().0, seen.to_be_bytes());
            }
            let value = QuarantineValue {
                received_at_ms: now,
                peer: Some(peer.as_bytes()),
                envelope: rec.canonical(),
            };
            batch.put_cf(self.cf(CF_QUARANTINE), key.encode(), value.encode());
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db
            .write_opt(batch, &wo)
            .map_err(|e| self.write_error(e))?;
        Ok(())
    }

    /// Quarantined records, by author then id; only `author`'s if given.
    pub fn quarantined(
        &self,
        author: Option<&PublicKey>,
        limit: usize,
    ) -> Result<Vec<Quarantined>, StoreError> {
        // An author's keys begin with the author (`QuarantineKey`).
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
            let key = QuarantineKey::decode(&k).ok_or_else(bad)?;
            let value = QuarantineValue::decode(&v).ok_or_else(bad)?;
            out.push(Quarantined {
                author: key.author,
                id: key.id,
                received_at_ms: value.received_at_ms,
                peer: value
                    .peer
                    .map(|name| String::from_utf8_lossy(name).into_owned()),
                bytes: value.envelope.to_vec(),
            });
        }
        Ok(out)
    }

    /// Calls `each` with every quarantine entry (only `author`'s if given),
    /// by author then id, one at a time, until it returns false: a scan
    /// that holds no more than one envelope, however large the table.
    pub fn quarantine_scan(
        &self,
        author: Option<&PublicKey>,
        mut each: impl FnMut(QuarantineEntry<'_>) -> bool,
    ) -> Result<(), StoreError> {
        let prefix: &[u8] = author.map_or(&[], |a| &a.0);
        let mut it = self.db.raw_iterator_cf(self.cf(CF_QUARANTINE));
        it.seek(prefix);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if !k.starts_with(prefix) {
                break;
            }
            let bad = || self.corrupt("quarantine entry");
            let key = QuarantineKey::decode(k).ok_or_else(bad)?;
            let value = QuarantineValue::decode(v).ok_or_else(bad)?;
            let go_on = each(QuarantineEntry {
                author: key.author,
                id: key.id,
                received_at_ms: value.received_at_ms,
                peer: value.peer,
                envelope: value.envelope,
            });
            if !go_on {
                break;
            }
            it.next();
        }
        it.status()?;
        Ok(())
    }

    /// The authors of quarantined records, each once, in key order: one
    /// seek per author, not a read of every record.
    pub fn quarantine_authors(&self) -> Result<Vec<PublicKey>, StoreError> {
        let mut out = Vec::new();
        let mut it = self.db.raw_iterator_cf(self.cf(CF_QUARANTINE));
        it.seek_to_first();
        while let Some(k) = it.key() {
            let author =
                QuarantineKey::decode_author(k).ok_or_else(|| self.corrupt("quarantine entry"))?;
            out.push(author);
            it.seek(QuarantineKey::past_author(&author));
        }
        it.status()?;
        Ok(out)
    }

    /// Removes records from the quarantine: released (`dropped` false:
    /// what the federation said of when it first saw them stays, they are
    /// stored now) or dropped (forgotten altogether).
    pub(super) fn unquarantine(
        &self,
        entries: &[(PublicKey, RecordId)],
        dropped: bool,
    ) -> Result<(), StoreError> {
        let mut batch = rocksdb::WriteBatch::default();
        for &(author, id) in entries {
            batch.delete_cf(
                self.cf(CF_QUARANTINE),
                QuarantineKey { author, id }.encode(),
            );
            if dropped {
                batch.delete_cf(self.cf(CF_FIRST_SEEN), id.0);
            }
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db
            .write_opt(batch, &wo)
            .map_err(|e| self.write_error(e))?;
        Ok(())
    }
}
