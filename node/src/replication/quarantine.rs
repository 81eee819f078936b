//! The quarantine: valid records whose author is not trusted yet, kept
//! aside (its own table, never the record store) until trust grows, and the
//! ids refused lately as forged or invalid. One type over the table and the
//! in-memory state that must agree with it: the ids waiting (counted against
//! `replication.quarantine_limit`, and not fetched again by reconciliation)
//! and the ids refused (not fetched again either).
//!
//! It is written only through the ledger's store writer (`hold`, `take`
//! take a `&Writer`): releasing a record is a store write like any other.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use maillage_record::{PublicKey, RecordId, VerifiedRecord, envelope};

use crate::store::{Quarantined, Store, StoreError, Writer};

/// How many refused ids are remembered before they are forgotten in bulk
/// (then fetched and refused once more).
const REFUSED_MEMORY: usize = 100_000;

/// What the quarantine may hold (`[replication]`): a pinned peer could
/// otherwise fill it with records of throwaway keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Records in all.
    pub records: u64,
    /// Envelope bytes in all.
    pub bytes: u64,
    /// Records from any one peer.
    pub per_peer: u64,
    /// How long a record may wait; older ones are dropped.
    pub expiry: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            records: 100_000,
            bytes: 256 << 20,
            per_peer: 20_000,
            expiry: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// One waiting record, as kept in memory: never its envelope.
#[derive(Debug, Clone)]
struct Entry {
    author: PublicKey,
    peer: Arc<str>,
    bytes: u64,
    received_at_ms: i64,
}

/// The waiting records, with their totals.
#[derive(Default)]
struct Waiting {
    entries: HashMap<RecordId, Entry>,
    bytes: u64,
    per_peer: HashMap<Arc<str>, u64>,
}

impl Waiting {
    fn insert(&mut self, id: RecordId, entry: Entry) {
        self.bytes += entry.bytes;
        *self.per_peer.entry(entry.peer.clone()).or_default() += 1;
        if let Some(old) = self.entries.insert(id, entry) {
            self.remove_counts(&old);
        }
    }

    fn remove(&mut self, id: &RecordId) -> Option<Entry> {
        let old = self.entries.remove(id)?;
        self.remove_counts(&old);
        Some(old)
    }

    fn remove_counts(&mut self, old: &Entry) {
        self.bytes -= old.bytes;
        if let Some(n) = self.per_peer.get_mut(&old.peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&old.peer);
            }
        }
    }
}

pub struct Quarantine {
    store: Arc<Store>,
    limits: Limits,
    /// Records in the quarantine table, or about to be (see `reserve`).
    waiting: Mutex<Waiting>,
    /// Ids refused as forged or invalid lately.
    refused: Mutex<HashSet<RecordId>>,
    /// Ids turned away because the quarantine was full: not fetched again
    /// until room is made (a record leaves).
    turned_away: Mutex<HashSet<RecordId>>,
}

/// What `hold` did with records of untrusted authors.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Put aside now.
    pub held: u64,
    /// Already waiting, or already stored.
    pub duplicates: u64,
    /// Refused because the quarantine is full (in records, in bytes, or for
    /// their peer).
    pub refused: u64,
}

/// A waiting record as `list` shows it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub author: PublicKey,
    pub id: RecordId,
    pub received_at_ms: i64,
    pub peer: Option<String>,
    pub bytes: u64,
    /// Its record_id and kind, if the envelope decodes.
    pub record_id: Option<String>,
    pub kind: Option<maillage_record::Kind>,
}

/// Which waiting records to drop (`drop_matching`).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub ids: Vec<RecordId>,
    pub authors: Vec<PublicKey>,
    /// Those that came longer ago than this (ms since the Unix epoch).
    pub received_before_ms: Option<i64>,
    pub all: bool,
}

/// The quarantine's size, for `status` and `quarantine list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub records: u64,
    pub bytes: u64,
    /// When the oldest waiting record came (0 if none).
    pub oldest_ms: i64,
}

impl Quarantine {
    /// The quarantine of `store`, within `limits`. Reads every entry once,
    /// one at a time: no envelope is kept in memory.
    pub fn load(store: Arc<Store>, limits: Limits) -> Result<Quarantine, StoreError> {
        let mut waiting = Waiting::default();
        let mut peers: HashMap<Vec<u8>, Arc<str>> = HashMap::new();
        store.quarantine_scan(None, |e| {
            let peer = peers
                .entry(e.peer.unwrap_or_default().to_vec())
                .or_insert_with(|| String::from_utf8_lossy(e.peer.unwrap_or_default()).into())
                .clone();
            waiting.insert(
                e.id,
                Entry {
                    author: e.author,
                    peer,
                    bytes: e.envelope.len() as u64,
                    received_at_ms: e.received_at_ms,
                },
            );
            true
        })?;
        Ok(Quarantine {
            store,
            limits,
            waiting: Mutex::new(waiting),
            refused: Mutex::default(),
            turned_away: Mutex::default(),
        })
    }

    /// How many records wait.
    pub fn len(&self) -> u64 {
        lock(&self.waiting).entries.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn size(&self) -> Size {
        let w = lock(&self.waiting);
        Size {
            records: w.entries.len() as u64,
            bytes: w.bytes,
            oldest_ms: w
                .entries
                .values()
                .map(|e| e.received_at_ms)
                .min()
                .unwrap_or(0),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn holds(&self, id: &RecordId) -> bool {
        lock(&self.waiting).entries.contains_key(id)
    }

    /// Remembers an id refused as forged or invalid, so that it is not
    /// fetched on every reconciliation.
    pub fn note_refused(&self, id: RecordId) {
        remember(&self.refused, id);
    }

    /// Whether reconciliation should fetch this id: not stored, not waiting
    /// here, not refused lately, not turned away by a full quarantine.
    pub fn wants(&self, id: &RecordId) -> Result<bool, StoreError> {
        if self.holds(id)
            || lock(&self.refused).contains(id)
            || lock(&self.turned_away).contains(id)
        {
            return Ok(false);
        }
        Ok(!self.store.contains(id)?)
    }

    /// Waiting records, by author then id, at most `limit`, each decoded
    /// for its record_id and kind and then let go.
    pub fn list(&self, limit: usize) -> Result<Vec<Listed>, StoreError> {
        let mut out = Vec::new();
        self.store.quarantine_scan(None, |e| {
            let record = envelope::decode_stored(e.envelope).ok();
            out.push(Listed {
                author: e.author,
                id: e.id,
                received_at_ms: e.received_at_ms,
                peer: e.peer.map(|p| String::from_utf8_lossy(p).into_owned()),
                bytes: e.envelope.len() as u64,
                record_id: record.as_ref().map(|r| r.record_id.clone()),
                kind: record.as_ref().map(|r| r.kind()),
            });
            out.len() < limit
        })?;
        Ok(out)
    }

    /// The records of `author` that wait (with their envelopes: bounded by
    /// the limits).
    pub fn of(&self, author: &PublicKey) -> Result<Vec<Quarantined>, StoreError> {
        self.store.quarantined(Some(author), usize::MAX)
    }

    /// The authors of waiting records, each once.
    pub fn authors(&self) -> Result<Vec<PublicKey>, StoreError> {
        self.store.quarantine_authors()
    }

    /// Puts records from `peer` aside, as many as the limits leave room
    /// for, in order, each as first seen at `first_seen(id)`; those already
    /// waiting or already stored are duplicates. Those turned away are not
    /// fetched again until room is made.
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
        let now = maillage_record::now_ms();
        let peer_name: Arc<str> = peer.into();
        let room = self.reserve(fresh.iter().map(|r| {
            (
                r.id(),
                Entry {
                    author: r.author(),
                    peer: peer_name.clone(),
                    bytes: r.canonical().len() as u64,
                    received_at_ms: now,
                },
            )
        }));
        out.refused = (fresh.len() - room) as u64;
        for turned in &fresh[room..] {
            remember(&self.turned_away, turned.id());
        }
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

    /// Takes records out of the quarantine: released to the store.
    pub fn take(
        &self,
        writer: &Writer,
        entries: &[(PublicKey, RecordId)],
    ) -> Result<(), StoreError> {
        self.remove(writer, entries, false)
    }

    /// Drops records from the quarantine (no longer verifying, expired, or
    /// dropped by the operator): forgotten, as if never received.
    pub fn drop_entries(
        &self,
        writer: &Writer,
        entries: &[(PublicKey, RecordId)],
    ) -> Result<(), StoreError> {
        self.remove(writer, entries, true)
    }

    fn remove(
        &self,
        writer: &Writer,
        entries: &[(PublicKey, RecordId)],
        dropped: bool,
    ) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        writer.unquarantine(entries, dropped)?;
        self.forget(entries.iter().map(|(_, id)| *id));
        Ok(())
    }

    /// Drops the waiting records `which` selects; returns how many.
    pub fn drop_matching(&self, writer: &Writer, which: &Selection) -> Result<u64, StoreError> {
        let chosen: Vec<(PublicKey, RecordId)> = {
            let w = lock(&self.waiting);
            w.entries
                .iter()
                .filter(|(id, e)| {
                    which.all
                        || which.ids.contains(id)
                        || which.authors.contains(&e.author)
                        || which
                            .received_before_ms
                            .is_some_and(|before| e.received_at_ms < before)
                })
                .map(|(id, e)| (e.author, *id))
                .collect()
        };
        self.drop_entries(writer, &chosen)?;
        Ok(chosen.len() as u64)
    }

    /// Drops what waited longer than the expiry (`Limits::expiry`); returns
    /// how many.
    pub fn expire(&self, writer: &Writer) -> Result<u64, StoreError> {
        let expiry = i64::try_from(self.limits.expiry.as_millis()).unwrap_or(i64::MAX);
        let before = maillage_record::now_ms().saturating_sub(expiry);
        let dropped = self.drop_matching(
            writer,
            &Selection {
                received_before_ms: Some(before),
                ..Selection::default()
            },
        )?;
        if dropped > 0 {
            tracing::info!(
                dropped,
                "dropped quarantined records that waited past replication.quarantine_expiry"
            );
        }
        Ok(dropped)
    }

    /// Takes room for `entries`, in order, while the limits allow: returns
    /// how many (the first ones) now count as waiting. Counting and taking
    /// under one lock, concurrent intakes never exceed a limit together.
    fn reserve(&self, entries: impl IntoIterator<Item = (RecordId, Entry)>) -> usize {
        let mut w = lock(&self.waiting);
        let mut admitted = 0;
        for (id, entry) in entries {
            if !w.entries.contains_key(&id) {
                let from_peer = w.per_peer.get(&entry.peer).copied().unwrap_or(0);
                if w.entries.len() as u64 >= self.limits.records
                    || w.bytes + entry.bytes > self.limits.bytes
                    || from_peer >= self.limits.per_peer
                {
                    break;
                }
                w.insert(id, entry);
            }
            admitted += 1;
        }
        admitted
    }

    fn forget(&self, ids: impl IntoIterator<Item = RecordId>) {
        let mut w = lock(&self.waiting);
        let mut freed = false;
        for id in ids {
            freed |= w.remove(&id).is_some();
        }
        drop(w);
        // Room was made: what a full quarantine turned away may come again.
        if freed {
            lock(&self.turned_away).clear();
        }
    }
}

fn remember(set: &Mutex<HashSet<RecordId>>, id: RecordId) {
    let mut r = lock(set);
    if r.len() >= REFUSED_MEMORY {
        r.clear();
    }
    r.insert(id);
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(peer: &str, bytes: u64) -> Entry {
        Entry {
            author: PublicKey([1; 32]),
            peer: peer.into(),
            bytes,
            received_at_ms: 0,
        }
    }

    fn id(peer: u8, i: u16) -> RecordId {
        let mut id = [0; 32];
        id[0] = peer;
        id[1..3].copy_from_slice(&i.to_be_bytes());
        RecordId(id)
    }

    /// Intakes from several peers at once never fill the quarantine past
    /// its limit together.
    #[test]
    fn concurrent_intakes_keep_to_the_quarantine_limit() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _writer) = Store::open(dir.path()).unwrap();
        let limits = Limits {
            records: 250,
            ..Limits::default()
        };
        let quarantine = Quarantine::load(store, limits).unwrap();
        let admitted: usize = std::thread::scope(|s| {
            let quarantine = &quarantine;
            let intakes: Vec<_> = (0..8u8)
                .map(|peer| {
                    s.spawn(move || {
                        let name = format!("p{peer}");
                        quarantine.reserve((0..100).map(|i| (id(peer, i), entry(&name, 10))))
                    })
                })
                .collect();
            intakes.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(admitted, 250);
        assert_eq!(quarantine.len(), 250);
        // Full: a new record is refused, one already waiting takes no more room.
        assert_eq!(quarantine.reserve([(id(9, 0), entry("p9", 10))]), 0);
        let waiting = (0..8u8)
            .flat_map(|peer| (0..100).map(move |i| id(peer, i)))
            .find(|i| quarantine.holds(i))
            .unwrap();
        assert_eq!(quarantine.reserve([(waiting, entry("p0", 10))]), 1);
        assert_eq!(quarantine.len(), 250);
        assert_eq!(quarantine.size().bytes, 2_500);
    }

    /// One peer cannot take the whole quarantine, nor can large records:
    /// the per-peer and byte bounds hold as well as the count.
    #[test]
    fn one_peer_and_large_records_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _writer) = Store::open(dir.path()).unwrap();
        let limits = Limits {
            records: 1_000,
            bytes: 1_000_000,
            per_peer: 100,
            ..Limits::default()
        };
        let quarantine = Quarantine::load(store, limits).unwrap();
        let flood = (0..500).map(|i| (id(1, i), entry("evil", 100)));
        assert_eq!(quarantine.reserve(flood), 100, "per peer");
        // Another peer still has room.
        assert_eq!(quarantine.reserve([(id(2, 0), entry("good", 100))]), 1);
        // Records as large as the envelope limit: bounded in bytes.
        let large = (0..20).map(|i| (id(3, i), entry("large", 256 << 10)));
        assert_eq!(quarantine.reserve(large), 3, "{:?}", quarantine.size());
        assert!(quarantine.size().bytes <= 1_000_000);
        // What leaves makes room, and its counts go with it.
        quarantine.forget((0..100).map(|i| id(1, i)));
        assert_eq!(quarantine.reserve([(id(1, 600), entry("evil", 100))]), 1);
        assert_eq!(quarantine.len(), 5);
    }
}
