//! The record store: the only module that touches RocksDB.
//!
//! Column families (their keys and values are laid out in `codec.rs`):
//! - `envelopes`: id → the envelope as received
//! - `current`:   (author, record_id) → its current version
//! - `history`:   every version kept, by (author, record_id, version)
//! - `changes`:   seq → id and origin (the change sequence that search follows)
//! - `meta`:      counters, kept exact in the same batches, and the schema version
//! - `syncset`:   id → what reconciliation needs to know of every envelope
//!   without decoding it (`syncset.rs`)
//! - `peers`, `trust`, `quarantine`: replication state (`tables.rs`)
//! - `conflicts`: (author, version, record_id) an author signed twice over:
//!   two envelopes of one version, or a version of another kind
//! - `first_seen`: id → when the federation first saw the envelope (ms, 8
//!   bytes), as the peer that relayed it said, where that is earlier than
//!   this node's own `received_at_ms`
//!
//! Reads are methods of `Store`; writes are methods of its write half,
//! `Writer` (`writer.rs`), which `open` makes once and only the ledger holds.
//! A record and all its index entries go in one WriteBatch written with a synced
//! WAL: once `Writer::write` returns, the record survives a crash or `kill -9`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use maillage_record::{Kind, PublicKey, RecordId, VerifiedRecord};
use rocksdb::{
    ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, ReadOptions, WriteBatch,
    WriteOptions,
};

const CF_ENVELOPES: &str = "envelopes";
const CF_CURRENT: &str = "current";
const CF_HISTORY: &str = "history";
const CF_CHANGES: &str = "changes";
const CF_META: &str = "meta";
const CF_SYNCSET: &str = "syncset";
const CF_PEERS: &str = "peers";
const CF_TRUST: &str = "trust";
const CF_QUARANTINE: &str = "quarantine";
const CF_CONFLICTS: &str = "conflicts";
const CF_FIRST_SEEN: &str = "first_seen";
/// Read tokens for scripts, by the SHA-256 of the token.
const CF_TOKENS: &str = "tokens";
/// Who read what beyond the public, by time (`access`).
const CF_ACCESS: &str = "access";
/// Records agents proposed through the portal, by id (`proposals`).
const CF_PROPOSALS: &str = "proposals";
const CFS: [&str; 14] = [
    CF_ENVELOPES,
    CF_CURRENT,
    CF_HISTORY,
    CF_CHANGES,
    CF_META,
    CF_SYNCSET,
    CF_PEERS,
    CF_TRUST,
    CF_QUARANTINE,
    CF_CONFLICTS,
    CF_FIRST_SEEN,
    CF_TOKENS,
    CF_ACCESS,
    CF_PROPOSALS,
];

mod check;
mod codec;
mod records;
mod syncset;
mod tables;
mod writer;

pub use check::Report;
pub use codec::ConflictValue;
use codec::{
    ChangeKey, ChangeValue, ConflictKey, CurrentKey, CurrentValue, EnvelopeValue, HistoryKey,
    MetaKey, MetaValue, SyncsetValue,
};
pub use syncset::SyncItem;
pub use tables::Quarantined;
pub use writer::Writer;

/// What runs once a write is durable, before its counts show (see
/// `Writer::write`), with each record's outcome.
pub type Committed<'a> = &'a mut dyn FnMut(&[Result<Inserted, StoreError>]);

/// A read token as stored: the SHA-256 of the token, and what is kept.
pub type StoredToken = ([u8; 32], Vec<u8>);

/// A step of the store's on-disk format, from one schema version to the
/// next (`STEPS[i]` takes version i + 1 to i + 2). A step must be safe to
/// run again: if the node dies during one, it runs again at the next start
/// (the version is written after the step's own writes).
type FormatStep = fn(&DB) -> Result<(), rocksdb::Error>;

/// The steps from schema 1 to this node's: none yet. A change of the
/// on-disk format adds one here (and a fixture of the former format under
/// tests/fixtures, which the upgrade test opens).
const STEPS: &[FormatStep] = &[];

/// The store's format that this node writes.
pub const SCHEMA_VERSION: u64 = 1 + STEPS.len() as u64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("record store: {0}")]
    Db(#[from] rocksdb::Error),
    #[error("record store at {path} is corrupt: {what}; restore it from a backup")]
    Corrupt { path: String, what: String },
    #[error(
        "record store at {path} has schema version {found}, written by a newer maillage-node (this \
         one knows {SCHEMA_VERSION} at most): run that version again, or restore the snapshot \
         taken before the upgrade ({path}.before-schema-*, or your last backup)"
    )]
    Schema { path: String, found: u64 },
    #[error(
        "record store at {path}: could not snapshot it before upgrading its format from schema \
         {found} ({source}); nothing was changed: free space beside it, then start again"
    )]
    Snapshot {
        path: String,
        found: u64,
        source: rocksdb::Error,
    },
    #[error(
        "record store at {path} cannot be written: {why}. Nothing was stored; free space or make \
         it writable (a running node then goes on by itself)"
    )]
    Unwritable { path: String, why: &'static str },
    #[error("record {0} is already stored")]
    Duplicate(RecordId),
    #[error(
        "version {version} of record_id '{record_id}' is not newer than the current version {current}: \
         publish version {next} or later"
    )]
    NotNewer {
        record_id: String,
        version: u64,
        current: u64,
        next: u64,
    },
    #[error(
        "record_id '{record_id}' is a {current}; version {version} would make it a {kind}: \
         a record keeps its kind (withdraw it, then publish the {kind} under another record_id), \
         and a succession or a revocation is final (publish another under a new record_id)"
    )]
    OtherKind {
        record_id: String,
        version: u64,
        current: Kind,
        kind: Kind,
    },
}

/// How an insert treats a version that is not newer than the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A publish: the version must be newer than the current one.
    RequireNewer,
    /// Replication and re-imports: keep older versions in the history.
    KeepHistory,
}

/// What `insert` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inserted {
    pub id: RecordId,
    pub seq: u64,
    /// Whether it became the current version of its record.
    pub current: bool,
    /// The current version before this insert (0 if none).
    pub previous_version: u64,
    pub received_at_ms: i64,
}

/// Where a batch of envelopes comes from: kept with each change, so that a
/// search can say which peer relayed a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin<'a> {
    /// Published or imported on this node.
    Local,
    /// Received from this peer (or released from quarantine).
    Peer(&'a str),
}

/// One entry of the change sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub seq: u64,
    pub id: RecordId,
    /// The peer that relayed it; `None` if it was published here.
    pub relayed_by: Option<String>,
}

/// An envelope as stored.
#[derive(Debug, Clone)]
pub struct StoredEnvelope {
    pub id: RecordId,
    pub seq: u64,
    pub received_at_ms: i64,
    /// The canonical envelope bytes (maillage.v1.Envelope).
    pub bytes: Vec<u8>,
}

/// The current version of a record, as indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentEntry {
    pub author: PublicKey,
    pub record_id: String,
    pub version: u64,
    pub id: RecordId,
    pub kind: Kind,
    pub seq: u64,
}

/// Something an author signed twice over (`Store::conflicts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub author: PublicKey,
    pub record_id: String,
    pub version: u64,
    pub what: ConflictValue,
}

/// One stored version in a record's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryEntry {
    pub version: u64,
    pub id: RecordId,
}

/// A write's error (or an open's, which writes too), said as what the
/// operator must do when the disk is full or read-only.
fn write_error(path: &str, e: rocksdb::Error) -> StoreError {
    let text = e.to_string();
    let why = if text.contains("No space left on device") {
        "its disk is full"
    } else if text.contains("Read-only file system") || text.contains("Permission denied") {
        "its directory is read-only"
    } else {
        return StoreError::Db(e);
    };
    StoreError::Unwritable {
        path: path.to_string(),
        why,
    }
}

/// What a `scan_current` visitor says after an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Go on to the next entry.
    Next,
    /// Stop; the next page starts after this entry.
    StopAfter,
    /// Stop; the next page starts with this entry.
    StopBefore,
}

/// Filters for `list_current`.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub kind: Option<Kind>,
    pub author: Option<PublicKey>,
}

struct WriteState {
    next_seq: u64,
    envelopes: u64,
    current_by_kind: BTreeMap<Kind, u64>,
}

pub struct Store {
    db: DB,
    path: String,
    // One writer at a time: the version check, the sequence number and the
    // counters must not interleave between two inserts.
    write: Mutex<WriteState>,
    /// The last sequence number written, readable without waiting for a
    /// write in progress (which holds `write` through its fsync): every
    /// search reports it.
    last_seq: AtomicU64,
    /// (envelopes, current records by kind) as of the last write: `status`
    /// reads them without waiting for a write either.
    counted: Mutex<(u64, BTreeMap<Kind, u64>)>,
}

impl Store {
    /// Opens (or creates) the store at `path`: its read half, which anyone
    /// may share, and its write half, which only the ledger holds.
    pub fn open(path: &Path) -> Result<(std::sync::Arc<Store>, Writer), StoreError> {
        let store = std::sync::Arc::new(Store::open_at(path)?);
        Ok((store.clone(), Writer::new(store)))
    }

    fn open_at(path: &Path) -> Result<Store, StoreError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        opts.set_keep_log_file_num(5);
        // Flushes and compactions in the background on every core, so a full
        // sync's writes are not throttled by a single compaction thread.
        opts.increase_parallelism(
            std::thread::available_parallelism().map_or(2, |n| n.get() as i32),
        );
        opts.set_max_background_jobs(4);
        // Flushes and compactions are background work: at a lower CPU
        // priority, searches go first when the cores are busy (see
        // `background`). The default environment is the process's, shared
        // by every store in it.
        if let Ok(mut env) = rocksdb::Env::new() {
            env.lower_thread_pool_cpu_priority();
            env.lower_high_priority_thread_pool_cpu_priority();
            opts.set_env(&env);
        }
        // Every insert first asks "is this id stored?" and "what is the current
        // version?", and during a sync the answer is mostly "no": bloom filters
        // answer that without reading blocks. One block cache for all tables.
        let cache = rocksdb::Cache::new_lru_cache(64 << 20);
        let cfs = CFS.iter().map(|name| {
            let mut table = rocksdb::BlockBasedOptions::default();
            table.set_bloom_filter(10.0, false);
            table.set_block_cache(&cache);
            table.set_cache_index_and_filter_blocks(true);
            table.set_pin_l0_filter_and_index_blocks_in_cache(true);
            let mut cf = Options::default();
            cf.set_compression_type(rocksdb::DBCompressionType::Lz4);
            cf.set_block_based_table_factory(&table);
            // The same question asked of the memtables, where a sync's recent
            // writes are: a bloom filter there too, for the two tables every
            // insert queries (it costs a little on each write).
            if *name == CF_ENVELOPES || *name == CF_CURRENT {
                cf.set_memtable_whole_key_filtering(true);
                cf.set_memtable_prefix_bloom_ratio(0.05);
            }
            if *name == CF_ENVELOPES {
                // The bulk of the bytes: bigger memtables, fewer flushes.
                cf.set_write_buffer_size(64 << 20);
                cf.set_max_write_buffer_number(4);
            }
            ColumnFamilyDescriptor::new(*name, cf)
        });
        let shown = path.display().to_string();
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|e| write_error(&shown, e))?;
        let path = shown;
        let mut store = Store {
            db,
            path,
            write: Mutex::new(WriteState {
                next_seq: 1,
                envelopes: 0,
                current_by_kind: BTreeMap::new(),
            }),
            last_seq: AtomicU64::new(0),
            counted: Mutex::default(),
        };
        store.load_state()?;
        store.backfill_syncset()?;
        Ok(store)
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("column family created at open")
    }

    /// A failed write, said as what the operator must do when the disk is
    /// full or read-only. The failed batch left nothing behind, and RocksDB
    /// writes again by itself once it can (its error handler retries).
    fn write_error(&self, e: rocksdb::Error) -> StoreError {
        write_error(&self.path, e)
    }

    fn corrupt(&self, what: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            what: what.into(),
        }
    }

    fn load_state(&mut self) -> Result<(), StoreError> {
        let meta = self.cf(CF_META);
        match self.db.get_cf(meta, MetaKey::Schema.encode())? {
            None => self.db.put_cf(
                meta,
                MetaKey::Schema.encode(),
                MetaValue(SCHEMA_VERSION).encode(),
            )?,
            Some(v) => {
                let MetaValue(found) =
                    MetaValue::decode(&v).ok_or_else(|| self.corrupt("schema version"))?;
                self.migrate(found, STEPS)?;
            }
        }
        let last_seq = match self
            .db
            .iterator_cf(self.cf(CF_CHANGES), IteratorMode::End)
            .next()
        {
            None => 0,
            Some(item) => {
                let (k, _) = item?;
                ChangeKey::decode(&k)
                    .ok_or_else(|| self.corrupt("change sequence key"))?
                    .seq
            }
        };
        let envelopes = self.meta_counter(MetaKey::Envelopes)?;
        let mut by_kind = BTreeMap::new();
        for kind in Kind::ALL {
            by_kind.insert(kind, self.meta_counter(MetaKey::CurrentCount(kind))?);
        }
        *self.last_seq.get_mut() = last_seq;
        *self.counted.get_mut().expect("no other user yet") = (envelopes, by_kind.clone());
        let state = self.write.get_mut().expect("no other user yet");
        state.next_seq = last_seq + 1;
        state.envelopes = envelopes;
        state.current_by_kind = by_kind;
        Ok(())
    }

    /// Brings a store of schema `found` to `1 + steps.len()`, one step at
    /// a time, after a snapshot of it as it was (a checkpoint beside it,
    /// `<store>.before-schema-<found>`, which the operator removes once
    /// satisfied). A store newer than the steps know is refused: its
    /// format is not this node's to guess.
    fn migrate(&self, found: u64, steps: &[FormatStep]) -> Result<(), StoreError> {
        let target = 1 + steps.len() as u64;
        if found == target {
            return Ok(());
        }
        if found == 0 {
            return Err(self.corrupt("schema version 0"));
        }
        if found > target {
            return Err(StoreError::Schema {
                path: self.path.clone(),
                found,
            });
        }
        let snapshot = format!("{}.before-schema-{found}", self.path.trim_end_matches('/'));
        if !Path::new(&snapshot).exists() {
            rocksdb::checkpoint::Checkpoint::new(&self.db)
                .and_then(|c| c.create_checkpoint(&snapshot))
                .map_err(|source| StoreError::Snapshot {
                    path: self.path.clone(),
                    found,
                    source,
                })?;
        }
        tracing::warn!(
            store = self.path,
            from = found,
            to = target,
            snapshot,
            "upgrading the store's format"
        );
        for (i, step) in steps.iter().enumerate().skip(found as usize - 1) {
            let next = i as u64 + 2;
            step(&self.db).map_err(|e| self.write_error(e))?;
            let mut sync = WriteOptions::default();
            sync.set_sync(true);
            self.db
                .put_cf_opt(
                    self.cf(CF_META),
                    MetaKey::Schema.encode(),
                    MetaValue(next).encode(),
                    &sync,
                )
                .map_err(|e| self.write_error(e))?;
            tracing::info!(
                store = self.path,
                schema = next,
                "store format upgraded one step"
            );
        }
        Ok(())
    }

    fn meta_counter(&self, key: MetaKey) -> Result<u64, StoreError> {
        match self.db.get_cf(self.cf(CF_META), key.encode())? {
            None => Ok(0),
            Some(v) => MetaValue::decode(&v)
                .map(|MetaValue(count)| count)
                .ok_or_else(|| self.corrupt("counter")),
        }
    }

    /// Stores a verified record with its indexes, atomically and durably.
    #[cfg(test)]
    fn insert(&self, rec: &VerifiedRecord, admission: Admission) -> Result<Inserted, StoreError> {
        self.write_records(
            std::slice::from_ref(rec),
            admission,
            Origin::Local,
            &mut |_| {},
        )?
        .pop()
        .expect("one result per record")
    }

    /// Stores many verified records (a replication batch) in one synced
    /// WriteBatch. Records already stored come back as `None`; versions older
    /// than the current one join the history.
    #[cfg(test)]
    fn insert_many(
        &self,
        recs: &[VerifiedRecord],
        origin: Origin<'_>,
    ) -> Result<Vec<Option<Inserted>>, StoreError> {
        Ok(self
            .write_records(recs, Admission::KeepHistory, origin, &mut |_| {})?
            .into_iter()
            .map(Result::ok)
            .collect())
    }

    /// Stores many records this node signed, in one synced WriteBatch,
    /// each only if it is newer than the current version (as a publish):
    /// the others come back as their error, and nothing of theirs is written.
    #[cfg(test)]
    fn insert_many_newer(
        &self,
        recs: &[VerifiedRecord],
    ) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
        self.write_records(recs, Admission::RequireNewer, Origin::Local, &mut |_| {})
    }

    /// The one write path: every record with all its index entries and the
    /// counters in one batch, written with a synced WAL. The outer error is a
    /// failed write (nothing stored); inner errors refuse single records.
    ///
    /// `committed` runs once the batch is durable and before anyone can read
    /// the new counts or sequence number (the write lock is still held):
    /// what must never lag behind them (the ledger's sync set) is updated
    /// there.
    fn write_records(
        &self,
        recs: &[VerifiedRecord],
        admission: Admission,
        origin: Origin<'_>,
        committed: Committed<'_>,
    ) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
        let mut state = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut next_seq = state.next_seq;
        let mut envelopes = state.envelopes;
        let mut by_kind = state.current_by_kind.clone();
        // Current versions staged in this batch, which the database cannot see yet.
        let mut staged_current: HashMap<Vec<u8>, CurrentValue> = HashMap::new();
        let mut staged_ids: HashSet<RecordId> = HashSet::new();
        // When each record staged in this batch was issued: two versions
        // with the same number are told apart by it.
        let mut staged_issued: HashMap<RecordId, u64> = HashMap::new();
        let mut conflicts: Vec<(Vec<u8>, ConflictValue)> = Vec::new();
        // Puts are gathered per table and written in key order: RocksDB's
        // memtable skiplist resumes each insert from where the previous one
        // ended, so sorted keys (ids are random) cost far fewer cache misses.
        let mut puts: [Vec<(Vec<u8>, Vec<u8>)>; 4] = Default::default();
        let [envelope_puts, history_puts, syncset_puts, current_puts] = &mut puts;
        let mut changes = Vec::with_capacity(recs.len());
        let mut results = Vec::with_capacity(recs.len());
        let now = maillage_record::now_ms();

        for rec in recs {
            let id = rec.id();
            let author = rec.author();
            let record = rec.record();
            if staged_ids.contains(&id)
                || self
                    .db
                    .get_pinned_cf(self.cf(CF_ENVELOPES), id.0)?
                    .is_some()
            {
                results.push(Err(StoreError::Duplicate(id)));
                continue;
            }
            let current_key = CurrentKey {
                author,
                record_id: &record.record_id,
            }
            .encode();
            let previous = match staged_current.get(&current_key) {
                Some(p) => Some(*p),
                None => match self.db.get_pinned_cf(self.cf(CF_CURRENT), &current_key)? {
                    None => None,
                    Some(v) => Some(self.current_value(&v)?),
                },
            };
            let previous_version = previous.map_or(0, |p| p.version);
            let kind = record.kind();
            let conflict = |what| {
                let key = ConflictKey {
                    author,
                    version: record.version,
                    record_id: &record.record_id,
                };
                (key.encode(), what)
            };
            // A record keeps its kind (a withdrawal aside): a membership
            // overwritten by a dataset would go on endorsing its member.
            // A succession or a revocation is final: no new version, no
            // withdrawal (a thief could otherwise undo a revocation).
            let is_final = |k: Kind| matches!(k, Kind::Succession | Kind::Revocation);
            if let Some(p) = previous
                && (is_final(p.kind)
                    || (p.kind != kind
                        && p.kind != Kind::Tombstone
                        && kind != Kind::Tombstone
                        && record.version >= p.version))
            {
                if admission == Admission::KeepHistory {
                    conflicts.push(conflict(ConflictValue::OtherKind));
                }
                results.push(Err(StoreError::OtherKind {
                    record_id: record.record_id.clone(),
                    version: record.version,
                    current: p.kind,
                    kind,
                }));
                continue;
            }
            let becomes_current = match previous {
                None => true,
                Some(p) if record.version != p.version => record.version > p.version,
                // Two envelopes of one version: its author signed twice
                // (a restore from backup, then a publish; or through two
                // nodes). Both are kept, and every node makes the same one
                // current, whatever the order they came in: the later
                // issued, then the greater id.
                Some(p) if admission == Admission::KeepHistory => {
                    conflicts.push(conflict(ConflictValue::SameVersion));
                    let issued = match staged_issued.get(&p.id) {
                        Some(at) => *at,
                        None => self.issued_at(&p.id)?,
                    };
                    (record.issued_at_ms.max(0) as u64, id) > (issued, p.id)
                }
                Some(_) => false,
            };
            if !becomes_current && admission == Admission::RequireNewer {
                results.push(Err(StoreError::NotNewer {
                    record_id: record.record_id.clone(),
                    version: record.version,
                    current: previous_version,
                    next: previous_version + 1,
                }));
                continue;
            }

            let seq = next_seq;
            next_seq += 1;
            let envelope = EnvelopeValue {
                seq,
                received_at_ms: now,
                envelope: rec.canonical(),
            };
            envelope_puts.push((id.0.to_vec(), envelope.encode()));
            let history = HistoryKey {
                author,
                record_id: &record.record_id,
                version: record.version,
                id,
            };
            history_puts.push((history.encode(), Vec::new()));
            changes.push((seq, id));
            let sync = SyncsetValue::new(record.issued_at_ms, author, &record.visibility);
            syncset_puts.push((id.0.to_vec(), sync.encode()));
            if becomes_current {
                let current = CurrentValue {
                    version: record.version,
                    id,
                    kind,
                    seq,
                };
                current_puts.push((current_key.clone(), current.encode()));
                if let Some(old) = previous {
                    *by_kind.entry(old.kind).or_default() -= 1;
                }
                *by_kind.entry(kind).or_default() += 1;
                staged_current.insert(current_key, current);
            }
            envelopes += 1;
            staged_ids.insert(id);
            staged_issued.insert(id, record.issued_at_ms.max(0) as u64);
            results.push(Ok(Inserted {
                id,
                seq,
                current: becomes_current,
                previous_version,
                received_at_ms: now,
            }));
        }
        let mut batch = WriteBatch::default();
        for (key, what) in &conflicts {
            batch.put_cf(self.cf(CF_CONFLICTS), key, what.encode());
        }
        if staged_ids.is_empty() {
            if !conflicts.is_empty() {
                self.db.write(batch)?;
            }
            return Ok(results);
        }
        for (cf, mut table) in [CF_ENVELOPES, CF_HISTORY, CF_SYNCSET, CF_CURRENT]
            .into_iter()
            .zip(puts)
        {
            // A key put twice in one batch (a record's current version staged
            // twice) keeps its last value: a stable sort preserves that order.
            table.sort_by(|a, b| a.0.cmp(&b.0));
            let cf = self.cf(cf);
            for (k, v) in table {
                batch.put_cf(cf, k, v);
            }
        }
        // Sequence numbers are already in order. A change published here has
        // an empty origin (`ChangeValue`).
        let origin: &[u8] = match origin {
            Origin::Local => &[],
            Origin::Peer(name) => name.as_bytes(),
        };
        for (seq, id) in changes {
            batch.put_cf(
                self.cf(CF_CHANGES),
                ChangeKey { seq }.encode(),
                ChangeValue { id, origin }.encode(),
            );
        }
        for (kind, count) in &by_kind {
            batch.put_cf(
                self.cf(CF_META),
                MetaKey::CurrentCount(*kind).encode(),
                MetaValue(*count).encode(),
            );
        }
        batch.put_cf(
            self.cf(CF_META),
            MetaKey::Envelopes.encode(),
            MetaValue(envelopes).encode(),
        );

        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db
            .write_opt(batch, &wo)
            .map_err(|e| self.write_error(e))?;

        committed(&results);
        self.last_seq.store(next_seq - 1, Ordering::Release);
        *self.counted.lock().unwrap_or_else(|p| p.into_inner()) = (envelopes, by_kind.clone());
        state.next_seq = next_seq;
        state.envelopes = envelopes;
        state.current_by_kind = by_kind;
        Ok(results)
    }

    /// When the stored envelope `id` was issued, as its sync entry says.
    fn issued_at(&self, id: &RecordId) -> Result<u64, StoreError> {
        let v = self
            .db
            .get_pinned_cf(self.cf(CF_SYNCSET), id.0)?
            .ok_or_else(|| self.corrupt(format!("no sync entry for the current version {id}")))?;
        SyncsetValue::decode(&v)
            .map(|s| s.issued_at_ms)
            .ok_or_else(|| self.corrupt("sync entry"))
    }

    /// When the federation first saw each of `ids`, as the peers that
    /// relayed them said, where that is earlier than when this node stored
    /// them (`StoredEnvelope::received_at_ms`); `None` otherwise.
    pub fn first_seen_attested(&self, ids: &[RecordId]) -> Result<Vec<Option<i64>>, StoreError> {
        self.read_many(
            CF_FIRST_SEEN,
            ids,
            |id| &id.0,
            &Default::default(),
            |_, v| {
                v.try_into()
                    .map(i64::from_be_bytes)
                    .map_err(|_| self.corrupt("first seen time"))
            },
        )
    }

    /// Keeps when the federation first saw these envelopes (a peer's word),
    /// without waiting for the disk: lost in a crash, a record is only
    /// taken as first seen when this node stored it.
    pub(super) fn put_first_seen(&self, seen: &[(RecordId, i64)]) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        for (id, at) in seen {
            batch.put_cf(self.cf(CF_FIRST_SEEN), id.0, at.to_be_bytes());
        }
        self.db.write(batch)?;
        Ok(())
    }

    /// What authors signed twice over, by author.
    pub fn conflicts(&self) -> Result<Vec<Conflict>, StoreError> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(CF_CONFLICTS), IteratorMode::Start)
        {
            let (k, v) = item?;
            let bad = || self.corrupt("conflict entry");
            let key = ConflictKey::decode(&k).ok_or_else(bad)?;
            out.push(Conflict {
                author: key.author,
                record_id: key.record_id.to_string(),
                version: key.version,
                what: ConflictValue::decode(&v).ok_or_else(bad)?,
            });
        }
        Ok(out)
    }

    /// Whether an envelope with this id is stored.
    pub fn contains(&self, id: &RecordId) -> Result<bool, StoreError> {
        Ok(self
            .db
            .get_pinned_cf(self.cf(CF_ENVELOPES), id.0)?
            .is_some())
    }

    fn current_value(&self, v: &[u8]) -> Result<CurrentValue, StoreError> {
        CurrentValue::decode(v).ok_or_else(|| self.corrupt("current-version entry"))
    }

    pub fn get(&self, id: &RecordId) -> Result<Option<StoredEnvelope>, StoreError> {
        match self.db.get_pinned_cf(self.cf(CF_ENVELOPES), id.0)? {
            None => Ok(None),
            Some(v) => self.stored_envelope(id, &v).map(Some),
        }
    }

    fn stored_envelope(&self, id: &RecordId, v: &[u8]) -> Result<StoredEnvelope, StoreError> {
        let value =
            EnvelopeValue::decode(v).ok_or_else(|| self.corrupt(format!("envelope {id}")))?;
        Ok(StoredEnvelope {
            id: *id,
            seq: value.seq,
            received_at_ms: value.received_at_ms,
            bytes: value.envelope.to_vec(),
        })
    }

    /// Many envelopes at once, in the order asked (`None`: not stored).
    /// Meant for bulk reads (serving a fetch): the blocks read do not push
    /// hotter ones out of the block cache.
    pub fn get_many(&self, ids: &[RecordId]) -> Result<Vec<Option<StoredEnvelope>>, StoreError> {
        let mut read = ReadOptions::default();
        read.fill_cache(false);
        self.read_many(
            CF_ENVELOPES,
            ids,
            |id| &id.0,
            &read,
            |id, v| self.stored_envelope(id, v),
        )
    }

    /// Reads the values of many keys in one table, in the order asked. One
    /// batched read: RocksDB looks sorted keys up together, block by block.
    fn read_many<K, T>(
        &self,
        cf: &str,
        keys: &[K],
        bytes: impl Fn(&K) -> &[u8],
        read: &ReadOptions,
        decode: impl Fn(&K, &[u8]) -> Result<T, StoreError>,
    ) -> Result<Vec<Option<T>>, StoreError> {
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_by(|&a, &b| bytes(&keys[a]).cmp(bytes(&keys[b])));
        let values = self.db.batched_multi_get_cf_opt(
            self.cf(cf),
            order.iter().map(|&i| bytes(&keys[i])),
            true,
            read,
        );
        let mut out: Vec<Option<T>> = std::iter::repeat_with(|| None).take(keys.len()).collect();
        for (&i, v) in order.iter().zip(values) {
            if let Some(v) = v? {
                out[i] = Some(decode(&keys[i], &v)?);
            }
        }
        Ok(out)
    }

    /// The current version of (author, record_id), if any.
    pub fn current(
        &self,
        author: &PublicKey,
        record_id: &str,
    ) -> Result<Option<CurrentEntry>, StoreError> {
        let key = CurrentKey {
            author: *author,
            record_id,
        }
        .encode();
        match self.db.get_pinned_cf(self.cf(CF_CURRENT), &key)? {
            None => Ok(None),
            Some(v) => Ok(Some(self.decode_current(&key, &v)?)),
        }
    }

    /// The current versions of many records at once, in the order asked:
    /// one batched read instead of a lookup each.
    pub fn current_many(
        &self,
        records: &[(PublicKey, &str)],
    ) -> Result<Vec<Option<CurrentEntry>>, StoreError> {
        let keys: Vec<Vec<u8>> = records
            .iter()
            .map(|&(author, record_id)| CurrentKey { author, record_id }.encode())
            .collect();
        self.read_many(
            CF_CURRENT,
            &keys,
            Vec::as_slice,
            &ReadOptions::default(),
            |k, v| self.decode_current(k, v),
        )
    }

    fn decode_current(&self, key: &[u8], v: &[u8]) -> Result<CurrentEntry, StoreError> {
        let value = self.current_value(v)?;
        let key = CurrentKey::decode(key).ok_or_else(|| self.corrupt("current-version key"))?;
        Ok(CurrentEntry {
            author: key.author,
            record_id: key.record_id.to_owned(),
            version: value.version,
            id: value.id,
            kind: value.kind,
            seq: value.seq,
        })
    }

    /// Current versions in (author, record_id) order, starting after `after`
    /// (an opaque cursor from a previous page), at most `limit` of them.
    /// Returns the entries and the cursor for the next page, if any.
    pub fn list_current(
        &self,
        filter: &ListFilter,
        after: Option<&[u8]>,
        limit: usize,
        mut keep: impl FnMut(&CurrentEntry) -> bool,
    ) -> Result<(Vec<CurrentEntry>, Option<Vec<u8>>), StoreError> {
        let mut out: Vec<CurrentEntry> = Vec::new();
        let cursor = self.scan_current(filter, after, |entry| {
            if !keep(entry) {
                return Ok(Step::Next);
            }
            // One more beyond the page: the page ends before it.
            if out.len() == limit {
                return Ok(Step::StopBefore);
            }
            out.push(entry.clone());
            Ok(Step::Next)
        })?;
        Ok((out, cursor))
    }

    /// Visits current versions in (author, record_id) order, starting after
    /// `after` (a cursor), until `visit` says to stop or none is left.
    /// Returns the cursor to resume from (`None`: none is left). `visit`
    /// decides what a page holds and how much it may cost: it can stop
    /// after any entry, examined or kept, so a caller bounds its scan.
    pub fn scan_current(
        &self,
        filter: &ListFilter,
        after: Option<&[u8]>,
        mut visit: impl FnMut(&CurrentEntry) -> Result<Step, StoreError>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        // An author's keys begin with the author (`CurrentKey`).
        let prefix: Vec<u8> = filter.author.map(|a| a.0.to_vec()).unwrap_or_default();
        let start: Vec<u8> = match after {
            // Start just after the cursor key.
            Some(c) => {
                let mut k = c.to_vec();
                k.push(0);
                k
            }
            None => prefix.clone(),
        };
        let iter = self.db.iterator_cf(
            self.cf(CF_CURRENT),
            IteratorMode::From(&start, Direction::Forward),
        );
        // The last key visited: where a page that stops before the next
        // one resumes.
        let mut previous: Option<Vec<u8>> = after.map(<[u8]>::to_vec);
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            let entry = self.decode_current(&k, &v)?;
            if filter.kind.is_some_and(|kind| kind != entry.kind) {
                previous = Some(k.to_vec());
                continue;
            }
            match visit(&entry)? {
                Step::Next => previous = Some(k.to_vec()),
                Step::StopAfter => return Ok(Some(k.to_vec())),
                // Before the first key of a scan with no cursor there is
                // nothing to resume from: the caller stopped on an empty page.
                Step::StopBefore => return Ok(Some(previous.unwrap_or_default())),
            }
        }
        Ok(None)
    }

    /// Every stored version of (author, record_id), oldest first.
    pub fn history(
        &self,
        author: &PublicKey,
        record_id: &str,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        Ok(self.history_page(author, record_id, None, usize::MAX)?.0)
    }

    /// Stored versions of (author, record_id) after version `after` (all
    /// if `None`), oldest first, at most `limit`; and whether more follow.
    pub fn history_page(
        &self,
        author: &PublicKey,
        record_id: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<HistoryEntry>, bool), StoreError> {
        // No record_id holds 0x00, the key's separator: one that does would
        // read another record's keys.
        if record_id.as_bytes().contains(&0) {
            return Ok((Vec::new(), false));
        }
        let prefix = HistoryKey::prefix(author, record_id);
        let mut start = prefix.clone();
        if let Some(v) = after {
            // Keys sort by version after the prefix; the next version's
            // first key is past every key of `v`.
            match v.checked_add(1) {
                Some(next) => start.extend_from_slice(&next.to_be_bytes()),
                None => return Ok((Vec::new(), false)),
            }
        }
        let mut out = Vec::new();
        let iter = self.db.iterator_cf(
            self.cf(CF_HISTORY),
            IteratorMode::From(&start, Direction::Forward),
        );
        for item in iter {
            let (k, _) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            if out.len() == limit {
                return Ok((out, true));
            }
            let key = HistoryKey::decode(&k).ok_or_else(|| self.corrupt("history key"))?;
            out.push(HistoryEntry {
                version: key.version,
                id: key.id,
            });
        }
        Ok((out, false))
    }

    /// Envelopes stored after sequence number `after`, in order, at most `limit`.
    pub fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        let start = ChangeKey { seq: after + 1 }.encode();
        let mut out = Vec::new();
        let iter = self.db.iterator_cf(
            self.cf(CF_CHANGES),
            IteratorMode::From(&start, Direction::Forward),
        );
        for item in iter.take(limit) {
            let (k, v) = item?;
            let bad = || self.corrupt("change entry");
            let value = ChangeValue::decode(&v).ok_or_else(bad)?;
            out.push(Change {
                seq: ChangeKey::decode(&k).ok_or_else(bad)?.seq,
                id: value.id,
                relayed_by: (!value.origin.is_empty())
                    .then(|| String::from_utf8_lossy(value.origin).into_owned()),
            });
        }
        Ok(out)
    }

    /// The change at sequence number `seq`, if any.
    pub fn change_at(&self, seq: u64) -> Result<Option<Change>, StoreError> {
        let Some(after) = seq.checked_sub(1) else {
            return Ok(None);
        };
        Ok(self
            .changes_since(after, 1)?
            .into_iter()
            .find(|c| c.seq == seq))
    }

    /// The last sequence number written (0 for an empty store).
    pub fn last_seq(&self) -> u64 {
        self.last_seq.load(Ordering::Acquire)
    }

    /// Counters: (envelopes stored, last sequence number, current records by kind).
    pub fn counts(&self) -> (u64, u64, BTreeMap<Kind, u64>) {
        let (envelopes, by_kind) = self
            .counted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        (envelopes, self.last_seq(), by_kind)
    }

    /// Writes a consistent copy of the store at `dest` (a RocksDB
    /// checkpoint: files hard-linked where `dest` is on the same file
    /// system, copied otherwise) while writes go on. `dest` must not exist.
    /// Returns the last sequence number the copy holds at least.
    pub fn checkpoint(&self, dest: &Path) -> Result<u64, StoreError> {
        let seq = self.last_seq();
        rocksdb::checkpoint::Checkpoint::new(&self.db)
            .and_then(|c| c.create_checkpoint(dest))
            .map_err(|e| write_error(&dest.display().to_string(), e))?;
        Ok(seq)
    }

    /// RocksDB's own gauges, for the metrics: (name, value) of the
    /// integer properties an operator watches (sizes, memtables, pending
    /// compaction), summed over the tables.
    pub fn engine_gauges(&self) -> Vec<(&'static str, u64)> {
        const PROPERTIES: [(&str, &str); 7] = [
            ("live_sst_bytes", "rocksdb.live-sst-files-size"),
            ("memtable_bytes", "rocksdb.cur-size-all-mem-tables"),
            ("estimated_keys", "rocksdb.estimate-num-keys"),
            (
                "pending_compaction_bytes",
                "rocksdb.estimate-pending-compaction-bytes",
            ),
            ("running_compactions", "rocksdb.num-running-compactions"),
            ("running_flushes", "rocksdb.num-running-flushes"),
            ("block_cache_bytes", "rocksdb.block-cache-usage"),
        ];
        PROPERTIES
            .iter()
            .map(|(name, property)| {
                let sum = CFS
                    .iter()
                    .filter_map(|cf| {
                        self.db
                            .property_int_value_cf(self.cf(cf), *property)
                            .ok()
                            .flatten()
                    })
                    .sum::<u64>();
                // DB-wide properties answer the same for every table.
                let sum = match *name {
                    "running_compactions" | "running_flushes" | "block_cache_bytes" => {
                        sum / CFS.len() as u64
                    }
                    _ => sum,
                };
                (*name, sum)
            })
            .collect()
    }

    /// Whether the store answers a read (the health probes).
    pub fn readable(&self) -> Result<(), StoreError> {
        self.db.get_cf(self.cf(CF_META), MetaKey::Schema.encode())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use maillage_record::model::Dataset;
    use maillage_record::{Body, Record, SigningKey, Visibility, envelope};

    pub(super) fn signed(key: u8, record_id: &str, version: u64) -> VerifiedRecord {
        let record = Record {
            record_id: record_id.into(),
            version,
            issued_at_ms: 1_764_000_000_000 + version as i64,
            visibility: Visibility::Public,
            provenance: None,
            body: Body::Dataset(Dataset::new(
                format!("Jeu {record_id} v{version}"),
                "Données",
            )),
        };
        envelope::sign(&SigningKey::from_bytes(&[key; 32]), &record).unwrap()
    }

    fn with_body(
        key: u8,
        record_id: &str,
        version: u64,
        issued: i64,
        body: Body,
    ) -> VerifiedRecord {
        let record = Record {
            record_id: record_id.into(),
            version,
            issued_at_ms: issued,
            visibility: Visibility::Public,
            provenance: None,
            body,
        };
        envelope::sign(&SigningKey::from_bytes(&[key; 32]), &record).unwrap()
    }

    /// Two envelopes of one version: whichever order they come in, both
    /// are kept, the same one is current, and the author is flagged.
    #[test]
    fn equal_versions_converge_whatever_the_order() {
        let dataset = |t: &str| Body::Dataset(Dataset::new(t, "Données"));
        let early = with_body(1, "a", 2, 1_000, dataset("première"));
        let late = with_body(1, "a", 2, 2_000, dataset("seconde"));
        // Same date: the greater id wins.
        let twin = with_body(1, "b", 2, 1_000, dataset("x"));
        let other_twin = with_body(1, "b", 2, 1_000, dataset("y"));
        let greater = twin.id().max(other_twin.id());
        for order in [
            [&early, &late, &twin, &other_twin],
            [&late, &early, &other_twin, &twin],
        ] {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open_at(dir.path()).unwrap();
            for rec in order {
                store.insert(rec, Admission::KeepHistory).unwrap();
            }
            let author = early.author();
            assert_eq!(store.current(&author, "a").unwrap().unwrap().id, late.id());
            assert_eq!(store.current(&author, "b").unwrap().unwrap().id, greater);
            assert_eq!(store.history(&author, "a").unwrap().len(), 2);
            let flagged = store.conflicts().unwrap();
            assert_eq!(flagged.len(), 2, "{flagged:?}");
            assert!(
                flagged
                    .iter()
                    .all(|c| c.author == author && c.what == ConflictValue::SameVersion)
            );
            // A publish of an equal version is still refused, not flagged.
            let third = with_body(1, "a", 2, 3_000, dataset("troisième"));
            assert!(matches!(
                store.insert(&third, Admission::RequireNewer),
                Err(StoreError::NotNewer { .. })
            ));
            assert_eq!(store.counts().0, 4);
        }
    }

    fn step_two(db: &DB) -> Result<(), rocksdb::Error> {
        db.put_cf(db.cf_handle(CF_META).unwrap(), b"test-step-2", b"done")
    }
    fn step_three(db: &DB) -> Result<(), rocksdb::Error> {
        // Needs the second step's work: steps run in order.
        let meta = db.cf_handle(CF_META).unwrap();
        assert!(db.get_cf(meta, b"test-step-2")?.is_some());
        db.put_cf(meta, b"test-step-3", b"done")
    }

    /// A store of an older format is snapshotted as it was, then brought
    /// up step by step, its records kept; a store of a newer format is
    /// refused, naming what to do.
    #[test]
    fn formats_upgrade_step_by_step_after_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let store = Store::open_at(&path).unwrap();
        store
            .insert(&signed(1, "a", 1), Admission::RequireNewer)
            .unwrap();
        let schema = |s: &Store| {
            MetaValue::decode(
                &s.db
                    .get_cf(s.cf(CF_META), MetaKey::Schema.encode())
                    .unwrap()
                    .unwrap(),
            )
            .unwrap()
            .0
        };
        assert_eq!(schema(&store), SCHEMA_VERSION);
        store
            .migrate(1, &[step_two as FormatStep, step_three as FormatStep])
            .unwrap();
        assert_eq!(schema(&store), 3);
        let meta = store.cf(CF_META);
        assert!(store.db.get_cf(meta, b"test-step-3").unwrap().is_some());
        assert_eq!(store.counts().0, 1, "the record is still there");
        drop(store);
        // The snapshot is the store as it was: schema 1, the record, no step.
        let before = Store::open_at(&dir.path().join("data.before-schema-1")).unwrap();
        assert_eq!(schema(&before), 1);
        assert!(
            before
                .db
                .get_cf(before.cf(CF_META), b"test-step-2")
                .unwrap()
                .is_none()
        );
        assert_eq!(before.counts().0, 1);
        // A format newer than this node's is not opened.
        let newer = before.migrate(SCHEMA_VERSION + 1, STEPS).unwrap_err();
        assert!(
            matches!(newer, StoreError::Schema { found, .. } if found == SCHEMA_VERSION + 1),
            "{newer}"
        );
        assert!(newer.to_string().contains("newer maillage-node"), "{newer}");
    }

    /// A record keeps its kind: a version of another kind is refused (and
    /// its author flagged, when it comes from a peer); a withdrawal, and a
    /// record after a withdrawal, are not another kind.
    #[test]
    fn a_version_of_another_kind_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_at(dir.path()).unwrap();
        let project = Body::Project(maillage_record::model::Project::new(
            "Projet",
            "Description",
            maillage_record::vocab::ProjectStatus::Experimentation,
        ));
        let dataset = Body::Dataset(Dataset::new("Jeu", "Données"));
        store
            .insert(
                &with_body(1, "a", 1, 1, dataset.clone()),
                Admission::RequireNewer,
            )
            .unwrap();
        let other = with_body(1, "a", 2, 2, project.clone());
        assert!(matches!(
            store.insert(&other, Admission::RequireNewer),
            Err(StoreError::OtherKind {
                current: Kind::Dataset,
                kind: Kind::Project,
                ..
            })
        ));
        assert!(store.conflicts().unwrap().is_empty());
        assert!(matches!(
            store.insert(&other, Admission::KeepHistory),
            Err(StoreError::OtherKind { .. })
        ));
        assert!(!store.contains(&other.id()).unwrap());
        assert_eq!(store.conflicts().unwrap()[0].what, ConflictValue::OtherKind);
        let withdrawal = Body::Tombstone(maillage_record::model::Tombstone {
            reason: "fin".into(),
        });
        store
            .insert(
                &with_body(1, "a", 3, 3, withdrawal),
                Admission::RequireNewer,
            )
            .unwrap();
        store
            .insert(&with_body(1, "a", 4, 4, project), Admission::RequireNewer)
            .unwrap();
        assert_eq!(store.counts().0, 3);
    }

    #[test]
    fn versions_history_and_counters_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (v1, v2, v3) = (signed(1, "a", 1), signed(1, "a", 2), signed(1, "a", 3));
        {
            let store = Store::open_at(dir.path()).unwrap();
            store.insert(&v2, Admission::RequireNewer).unwrap();
            // Older and equal versions are refused on publish, and change nothing.
            assert!(matches!(
                store.insert(&v1, Admission::RequireNewer),
                Err(StoreError::NotNewer {
                    current: 2,
                    next: 3,
                    ..
                })
            ));
            assert!(matches!(
                store.insert(&v2, Admission::RequireNewer),
                Err(StoreError::Duplicate(_))
            ));
            assert_eq!(store.counts().0, 1);
            // Replication keeps an older version in the history without making it current.
            let got = store
                .insert_many(&[v1.clone(), v3.clone(), v1.clone()], Origin::Peer("lyon"))
                .unwrap();
            assert!(got[0].is_some_and(|i| !i.current));
            assert!(got[1].is_some_and(|i| i.current && i.previous_version == 2));
            assert!(got[2].is_none(), "the same id twice in one batch");
            assert_eq!(store.last_seq(), 3, "known as soon as a write returns");
        }
        let store = Store::open_at(dir.path()).unwrap();
        let author = v1.author();
        assert_eq!(store.current(&author, "a").unwrap().unwrap().version, 3);
        // Many at once, in the order asked; unknown ones are None.
        let other = signed(2, "a", 1).author();
        let many = store
            .current_many(&[(other, "a"), (author, "a"), (author, "b")])
            .unwrap();
        assert_eq!(
            many.iter()
                .map(|c| c.as_ref().map(|c| (c.version, c.id)))
                .collect::<Vec<_>>(),
            [None, Some((3, v3.id())), None]
        );
        let versions: Vec<u64> = store
            .history(&author, "a")
            .unwrap()
            .iter()
            .map(|h| h.version)
            .collect();
        assert_eq!(versions, vec![1, 2, 3]);
        let (envelopes, last_seq, by_kind) = store.counts();
        assert_eq!((envelopes, last_seq), (3, 3));
        assert_eq!(by_kind[&Kind::Dataset], 1);
        let stored = store.get(&v3.id()).unwrap().unwrap();
        assert_eq!(stored.bytes, v3.envelope_bytes());
        // The change sequence says where each envelope came from.
        let changes = store.changes_since(1, 10).unwrap();
        let seen: Vec<(u64, Option<&str>)> = changes
            .iter()
            .map(|c| (c.seq, c.relayed_by.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [(2, Some("lyon")), (3, Some("lyon"))],
            "changes after seq 1"
        );
        assert_eq!(store.changes_since(0, 1).unwrap()[0].relayed_by, None);
        assert_eq!(store.last_seq(), 3);
        let mut ids: Vec<RecordId> = store.sync_items().unwrap().iter().map(|i| i.id).collect();
        ids.sort();
        let mut want = vec![v1.id(), v2.id(), v3.id()];
        want.sort();
        assert_eq!(ids, want);
    }

    #[test]
    fn insert_many_newer_refuses_stale_versions_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_at(dir.path()).unwrap();
        store
            .insert(&signed(1, "a", 2), Admission::RequireNewer)
            .unwrap();
        // "a" v2 is current: a concurrent writer's v2 (other content) and v1
        // lose; "b" is written in the same batch.
        let mut other = signed(1, "a", 2).record().clone();
        other.body = Body::Dataset(Dataset::new("Autre contenu", "Données"));
        let other = envelope::sign(&SigningKey::from_bytes(&[1; 32]), &other).unwrap();
        let results = store
            .insert_many_newer(&[other, signed(1, "b", 1), signed(1, "a", 1)])
            .unwrap();
        assert!(matches!(
            results[0],
            Err(StoreError::NotNewer { current: 2, .. })
        ));
        assert!(results[1].is_ok());
        assert!(matches!(results[2], Err(StoreError::NotNewer { .. })));
        let author = signed(1, "a", 1).author();
        assert_eq!(store.current(&author, "a").unwrap().unwrap().version, 2);
        assert_eq!(store.history(&author, "a").unwrap().len(), 1);
        assert!(store.current(&author, "b").unwrap().is_some());
    }

    #[test]
    fn quarantine_holds_and_releases() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_at(dir.path()).unwrap();
        let (a, b) = (signed(1, "x", 1), signed(2, "y", 1));
        store
            .quarantine(&[a.clone(), b.clone()], &[1, 1], "blagnac")
            .unwrap();
        assert_eq!(store.quarantined(None, usize::MAX).unwrap().len(), 2);
        let only_a = store.quarantined(Some(&a.author()), 10).unwrap();
        assert_eq!(only_a.len(), 1);
        assert_eq!(only_a[0].bytes, a.envelope_bytes());
        assert_eq!(only_a[0].peer.as_deref(), Some("blagnac"));
        // An entry written before the peer was kept still reads.
        let c = signed(3, "z", 1);
        let mut key = c.author().0.to_vec();
        key.extend_from_slice(&c.id().0);
        let mut old = 5_i64.to_be_bytes().to_vec();
        old.extend_from_slice(&c.envelope_bytes());
        store.db.put_cf(store.cf(CF_QUARANTINE), key, old).unwrap();
        let older = store.quarantined(Some(&c.author()), 10).unwrap();
        assert_eq!(
            (older[0].peer.as_deref(), older[0].received_at_ms),
            (None, 5)
        );
        assert_eq!(older[0].bytes, c.envelope_bytes());
        store.unquarantine(&[(c.author(), c.id())], true).unwrap();
        store.unquarantine(&[(a.author(), a.id())], false).unwrap();
        assert_eq!(store.quarantined(None, usize::MAX).unwrap().len(), 1);
        assert!(
            !store.contains(&a.id()).unwrap(),
            "quarantine is not the store"
        );
    }

    #[test]
    fn an_older_store_gets_its_sync_index_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let rec = signed(1, "ancien", 1);
        {
            let store = Store::open_at(dir.path()).unwrap();
            store.insert(&rec, Admission::RequireNewer).unwrap();
            // As a store written before the syncset table existed.
            store
                .db
                .delete_cf(store.cf(CF_SYNCSET), rec.id().0)
                .unwrap();
            assert!(store.sync_items().unwrap().is_empty());
        }
        let store = Store::open_at(dir.path()).unwrap();
        let items = store.sync_items().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].id, rec.id());
        assert_eq!(items[0].author, rec.author());
    }
}
