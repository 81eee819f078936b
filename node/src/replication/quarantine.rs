//! The quarantine: valid records whose author is not trusted yet, kept
//! aside (its own table, never the record store) until trust grows, and the
//! ids refused lately as forged or invalid. One type over the table and the
//! in-memory state that must agree with it: the ids waiting (counted against
//! `replication.quarantine_limit`, and not fetched again by reconciliation)
//! and the ids refused (not fetched again either).
//!
//! It is written only through the ledger's store writer (`hold`, `take`
//! take a `&Writer`): releasing a record is a store write like any other.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use maillage_record::{PublicKey, RecordId, VerifiedRecord};

use crate::store::{Quarantined, Store, StoreError, Writer};

/// How many refused ids are remembered before they are forgotten in bulk
/// (then fetched and refused once more).
const REFUSED_MEMORY: usize = 100_000;

pub struct Quarantine {
    store: Arc<Store>,
    limit: u64,
    /// Ids in the quarantine table, or about to be (see `reserve`).
    waiting: Mutex<HashSet<RecordId>>,
    /// Ids refused as forged or invalid lately.
    refused: Mutex<HashSet<RecordId>>,
}

/// What `hold` did with records of untrusted authors.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Put aside now.
    pub held: u64,
    /// Already waiting, or already stored.
    pub duplicates: u64,
    /// Refused because the quarantine is full.
    pub refused: u64,
}

impl Quarantine {
    /// The quarantine of `store`, holding at most `limit` records.
    pub fn load(store: Arc<Store>, limit: u64) -> Result<Quarantine, StoreError> {
        let waiting = store
            .quarantined(None, usize::MAX)?
            .into_iter()
            .map(|q| q.id)
            .collect();
        Ok(Quarantine {
            store,
            limit,
            waiting: Mutex::new(waiting),
            refused: Mutex::default(),
        })
    }

    /// How many records wait.
    pub fn len(&self) -> u64 {
        lock(&self.waiting).len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn holds(&self, id: &RecordId) -> bool {
        lock(&self.waiting).contains(id)
    }

    /// Remembers an id refused as forged or invalid, so that it is not
    /// fetched on every reconciliation.
    pub fn note_refused(&self, id: RecordId) {
        let mut r = lock(&self.refused);
        if r.len() >= REFUSED_MEMORY {
            r.clear();
        }
        r.insert(id);
    }

    /// Whether reconciliation should fetch this id: not stored, not waiting
    /// here, not refused lately.
    pub fn wants(&self, id: &RecordId) -> Result<bool, StoreError> {
        if self.holds(id) || lock(&self.refused).contains(id) {
            return Ok(false);
        }
        Ok(!self.store.contains(id)?)
    }

    /// Waiting records, by author then id, at most `limit`.
    pub fn list(&self, limit: usize) -> Result<Vec<Quarantined>, StoreError> {
        self.store.quarantined(None, limit)
    }

    /// The records of `author` that wait.
    pub fn of(&self, author: &PublicKey) -> Result<Vec<Quarantined>, StoreError> {
        self.store.quarantined(Some(author), usize::MAX)
    }

    /// The authors of waiting records, each once.
    pub fn authors(&self) -> Result<Vec<PublicKey>, StoreError> {
        self.store.quarantine_authors()
    }

    /// Puts records from `peer` aside, as many as the limit leaves room for,
    /// in order, each as first seen at `first_seen(id)`; those already
    /// waiting or already stored are duplicates.
    pub fn hold(
        &self,
        writer: &Writer,
        recs: Vec<VerifiedRecord>,
        peer: &str,
        first_seen: impl Fn(&RecordId) -> i64,
    ) -> Result<Held, StoreError> {
        let mut out = Held::default();
        let mut fresh = Vec::with_capacity(recs.len());
        for rec in recs {
            if self.holds(&rec.id()) || self.store.contains(&rec.id())? {
                out.duplicates += 1;
            } else {
                fresh.push(rec);
            }
        }
        if fresh.is_empty() {
            return Ok(out);
        }
        let room = self.reserve(fresh.iter().map(|r| r.id()));
        out.refused = (fresh.len() - room) as u64;
        fresh.truncate(room);
        let seen: Vec<i64> = fresh.iter().map(|r| first_seen(&r.id())).collect();
        if let Err(e) = writer.quarantine(&fresh, &seen, peer) {
            self.forget(fresh.iter().map(|r| r.id()));
            return Err(e);
        }
        out.held = fresh.len() as u64;
        for rec in &fresh {
            tracing::info!(peer, author = %rec.author(), id = %rec.id(), "quarantined a record of an untrusted author");
        }
        Ok(out)
    }

    /// Takes records out of the quarantine (released, or dropped because
    /// they no longer verify).
    pub fn take(
        &self,
        writer: &Writer,
        entries: &[(PublicKey, RecordId)],
    ) -> Result<(), StoreError> {
        writer.unquarantine(entries)?;
        self.forget(entries.iter().map(|(_, id)| *id));
        Ok(())
    }

    /// Takes room for `ids`, in order, while fewer than `limit` records
    /// wait: returns how many (the first ones) now count as waiting.
    /// Counting and taking under one lock, concurrent intakes never exceed
    /// the limit together.
    fn reserve(&self, ids: impl IntoIterator<Item = RecordId>) -> usize {
        let mut q = lock(&self.waiting);
        let mut admitted = 0;
        for id in ids {
            if q.len() as u64 >= self.limit && !q.contains(&id) {
                break;
            }
            q.insert(id);
            admitted += 1;
        }
        admitted
    }

    fn forget(&self, ids: impl IntoIterator<Item = RecordId>) {
        let mut q = lock(&self.waiting);
        for id in ids {
            q.remove(&id);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Intakes from several peers at once never fill the quarantine past
    /// its limit together.
    #[test]
    fn concurrent_intakes_keep_to_the_quarantine_limit() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _writer) = Store::open(dir.path()).unwrap();
        let quarantine = Quarantine::load(store, 250).unwrap();
        let id = |peer: u8, i: u8| {
            let mut id = [0; 32];
            (id[0], id[1]) = (peer, i);
            RecordId(id)
        };
        let admitted: usize = std::thread::scope(|s| {
            let quarantine = &quarantine;
            let intakes: Vec<_> = (0..8u8)
                .map(|peer| s.spawn(move || quarantine.reserve((0..100).map(|i| id(peer, i)))))
                .collect();
            intakes.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(admitted, 250);
        assert_eq!(quarantine.len(), 250);
        // Full: a new record is refused, one already waiting takes no more room.
        assert_eq!(quarantine.reserve([id(9, 0)]), 0);
        let waiting = (0..8u8)
            .flat_map(|peer| (0..100).map(move |i| id(peer, i)))
            .find(|i| quarantine.holds(i))
            .unwrap();
        assert_eq!(quarantine.reserve([waiting]), 1);
        assert_eq!(quarantine.len(), 250);
    }
}
