//! The indexer: one thread that follows the store's change sequence into the
//! search index.
//!
//! Each change names an envelope. If it is the current version of its record,
//! the record's document is replaced (or removed, for a withdrawal);
//! otherwise a newer version has its own, later change, and this one is
//! skipped. Replaying a change is harmless, so a crash costs only the work
//! since the last commit: the sequence number reached is committed with the
//! documents, and indexing resumes from it.
//!
//! What was just stored comes in memory too (`Feed`): the indexer then need
//! not read it back from the store and decode it again, and knows which
//! records had no earlier version, whose documents need no deletion first.
//!
//! Commits make new records searchable. One follows a quiet store at once; a
//! busy store (a sync) is committed at most every two seconds, so segments stay
//! few. A rebuild (`maillage reindex`) commits once, at the end: searches keep
//! answering from the old index until then.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use maillage_record::{Body, Kind, PublicKey, Record, RecordId, VerifiedRecord, wire};
use prost::Message;
use tantivy::{IndexWriter, TantivyDocument, Term};

use super::document::{self, Context, Org};
use super::{SCHEMA_VERSION, Search, SearchError};
use crate::store::{Change, Inserted, ListFilter, Store, StoreError};
use crate::viewer::Sirens;

/// Changes read from the store at a time.
const BATCH: usize = 2048;
/// At most one commit this often while the store keeps changing.
const COMMIT_EVERY: Duration = Duration::from_secs(2);
/// ... and while the indexer is behind by more than a batch.
const COMMIT_EVERY_BEHIND: Duration = Duration::from_secs(10);
/// How often a quiet indexer looks for new changes.
const POLL: Duration = Duration::from_millis(25);
/// The indexing memory budget, split among tantivy's threads.
const WRITER_MEMORY: usize = 96 << 20;
/// Envelope bytes held in the feed at most (the decoded records take about
/// twice that): some seconds of a full sync.
const FEED_BYTES: usize = 32 << 20;

/// Records as they were stored, by sequence number, for the indexer to take
/// instead of reading them back. Bounded: what does not fit is read back
/// from the store when its turn comes, as after a restart. While the indexer
/// lags, room frees as it takes records, so it still finds in memory about
/// as many as it indexes.
#[derive(Default)]
pub struct Feed(Mutex<FeedState>);

#[derive(Default)]
struct FeedState {
    records: BTreeMap<u64, Fed>,
    bytes: usize,
}

struct Fed {
    id: RecordId,
    author: PublicKey,
    record: Record,
    received_at_ms: i64,
    /// No version of this record was current before: the index holds no
    /// document of it to delete.
    first: bool,
    bytes: usize,
}

impl Feed {
    /// A record just stored. Only current versions: the indexer skips others.
    pub fn push(&self, rec: &VerifiedRecord, inserted: &Inserted) {
        if !inserted.current {
            return;
        }
        let bytes = rec.canonical().len();
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if state.bytes + bytes > FEED_BYTES {
            return;
        }
        state.bytes += bytes;
        state.records.insert(
            inserted.seq,
            Fed {
                id: rec.id(),
                author: rec.author(),
                record: rec.record().clone(),
                received_at_ms: inserted.received_at_ms,
                first: inserted.previous_version == 0,
                bytes,
            },
        );
    }

    /// Takes every record stored up to `seq` (those the indexer passed
    /// without finding them here, pushed late, go too).
    fn take(&self, seq: u64) -> BTreeMap<u64, Fed> {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let later = state.records.split_off(&seq.saturating_add(1));
        let taken = std::mem::replace(&mut state.records, later);
        state.bytes -= taken.values().map(|f| f.bytes).sum::<usize>();
        taken
    }
}

#[derive(Debug, thiserror::Error)]
enum IndexError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
}

/// What the indexer reads: the store it follows, which SIREN an author
/// speaks for (`Sirens`), this node's own organisation, and when to stop.
/// Not the node: the index is derived from the store alone.
pub struct Indexer {
    pub search: Arc<Search>,
    pub store: Arc<Store>,
    pub sirens: Arc<Sirens>,
    pub own: Own,
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

/// This node's own organisation: its records' organisation, whatever
/// trust says.
pub struct Own {
    pub key: PublicKey,
    pub siren: maillage_record::Siren,
    pub name: String,
}

impl Indexer {
    /// Starts the indexer thread; it ends when the node stops, after a last
    /// commit.
    pub fn spawn(self) -> std::thread::JoinHandle<()> {
        std::thread::Builder::new()
            .name("maillage-indexer".into())
            .spawn(move || {
                // Indexing (and tantivy's threads, which inherit this) yields
                // to searches.
                crate::background::lower_this_thread();
                // A failure is logged and retried: searches answer from what
                // was committed meanwhile.
                loop {
                    match run(&self) {
                        Ok(()) => return,
                        Err(e) => {
                            tracing::error!(error = %e, index = %self.search.path().display(), "search indexing failed; retrying in 5 s");
                            if self.wait_stopping(Duration::from_secs(5)) {
                                return;
                            }
                        }
                    }
                }
            })
            .expect("spawning a thread")
    }

    /// Sleeps up to `d`; says whether the node is stopping.
    fn wait_stopping(&self, d: Duration) -> bool {
        let mut stopping = self.stopping.clone();
        let deadline = Instant::now() + d;
        while Instant::now() < deadline {
            if *stopping.borrow_and_update() {
                return true;
            }
            std::thread::sleep(POLL.min(deadline - Instant::now()));
        }
        *stopping.borrow()
    }
}

fn run(node: &Indexer) -> Result<(), IndexError> {
    let search = &node.search;
    // A rebuild that failed half-way starts over (its deletions were never
    // committed: the old index still answers).
    if search.rebuilding.swap(false, Ordering::AcqRel) {
        search.reindex.store(true, Ordering::Release);
    }
    // One indexing thread: the other core serves and syncs.
    let mut writer: IndexWriter<TantivyDocument> =
        search.index.writer_with_num_threads(1, WRITER_MEMORY)?;
    let mut seq = search.indexed_seq();
    let mut pending = false;
    let mut rebuilding = false;
    let mut last_commit = Instant::now() - COMMIT_EVERY;
    let mut orgs = Orgs::default();
    let stopping = node.stopping.clone();
    loop {
        if *stopping.borrow() {
            if pending {
                commit(search, &mut writer, seq)?;
            }
            return Ok(());
        }
        if search.reindex.load(Ordering::Acquire) {
            tracing::info!("rebuilding the search index from the store");
            search.rebuilding.store(true, Ordering::Release);
            search.reindex.store(false, Ordering::Release);
            // Uncommitted work first, or it would survive the deletion.
            writer.rollback()?;
            writer.delete_all_documents()?;
            seq = 0;
            search.rebuilt_seq.store(0, Ordering::Release);
            pending = true;
            rebuilding = true;
            orgs = Orgs::default();
        }
        let changes = node.store.changes_since(seq, BATCH)?;
        if changes.is_empty() {
            if pending && (rebuilding || last_commit.elapsed() >= COMMIT_EVERY) {
                commit(search, &mut writer, seq)?;
                if rebuilding {
                    tracing::info!(seq, "search index rebuilt");
                    search.rebuilding.store(false, Ordering::Release);
                }
                pending = false;
                rebuilding = false;
                last_commit = Instant::now();
            } else {
                std::thread::sleep(POLL);
            }
            continue;
        }
        seq = changes.last().expect("not empty").seq;
        if rebuilding {
            search.rebuilt_seq.store(seq, Ordering::Release);
        }
        // A full batch: more are waiting (a sync or an import in progress).
        // Committing less often then makes fewer, larger segments, so less
        // merging: the index catches up sooner. Once it has, it commits
        // every COMMIT_EVERY again.
        let every = if changes.len() == BATCH {
            COMMIT_EVERY_BEHIND
        } else {
            COMMIT_EVERY
        };
        let mut fed = search.feed.take(seq);
        index_changes(
            node,
            &mut writer,
            &mut orgs,
            &changes,
            &mut fed,
            Follow::Authors,
        )?;
        pending = true;
        if !rebuilding && last_commit.elapsed() >= every {
            commit(search, &mut writer, seq)?;
            pending = false;
            last_commit = Instant::now();
        }
    }
}

fn commit(search: &Search, writer: &mut IndexWriter, seq: u64) -> Result<(), IndexError> {
    let mut prepared = writer.prepare_commit()?;
    prepared.set_payload(&format!("{{\"schema\":{SCHEMA_VERSION},\"seq\":{seq}}}"));
    prepared.commit()?;
    search.reader.reload()?;
    search.indexed_seq.store(seq, Ordering::Release);
    Ok(())
}

/// Whether indexing a change to whom an author speaks for re-indexes the
/// author's other records.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Follow {
    Authors,
    No,
}

/// Indexes `changes`, taking their records from `fed` where they are (and
/// right), from the store otherwise.
fn index_changes(
    node: &Indexer,
    writer: &mut IndexWriter,
    orgs: &mut Orgs,
    changes: &[Change],
    fed: &mut BTreeMap<u64, Fed>,
    follow: Follow,
) -> Result<(), IndexError> {
    // Authors whose organisation may have changed: their documents were
    // built with the organisation known then (records may arrive before
    // their author's Organisation record: order of arrival must not matter).
    // (author, the change that affects it)
    let mut affected: Vec<(PublicKey, u64)> = Vec::new();
    let f = node.search.fields();
    let fed: Vec<Option<Fed>> = changes
        .iter()
        .map(|c| fed.remove(&c.seq).filter(|r| r.id == c.id))
        .collect();
    let missing: Vec<RecordId> = changes
        .iter()
        .zip(&fed)
        .filter(|(_, r)| r.is_none())
        .map(|(c, _)| c.id)
        .collect();
    let mut read = node.store.get_many(&missing)?.into_iter();
    let decoded: Vec<_> = changes
        .iter()
        .zip(fed)
        .filter_map(|(change, fed)| {
            if let Some(r) = fed {
                return Some((change, r));
            }
            let stored = read.next().expect("one read per missing record")?;
            let Some((author, record)) = decode(&stored.bytes) else {
                tracing::error!(id = %change.id, "stored envelope does not decode: not indexed");
                return None;
            };
            Some((
                change,
                Fed {
                    id: change.id,
                    author,
                    record,
                    received_at_ms: stored.received_at_ms,
                    // Read back: it may have been indexed before (a replay
                    // after a restart, or an author's records re-indexed).
                    first: false,
                    bytes: 0,
                },
            ))
        })
        .collect();
    let current = node.store.current_many(
        &decoded
            .iter()
            .map(|(_, r)| (r.author, r.record.record_id.as_str()))
            .collect::<Vec<_>>(),
    )?;
    for ((change, fed), current) in decoded.into_iter().zip(current) {
        let Fed {
            author,
            record: rec,
            received_at_ms,
            first,
            ..
        } = fed;
        // Only the current version is searchable (an older one may arrive
        // after a newer one).
        if current.is_none_or(|c| c.id != change.id) {
            continue;
        }
        let kind = rec.kind();
        if matches!(
            kind,
            Kind::Organisation | Kind::Membership | Kind::Tombstone
        ) {
            // Who speaks for whom may have changed (a withdrawal may be of
            // an organisation or a membership).
            orgs.0.clear();
            match &rec.body {
                Body::Membership(m) => affected.push((m.member_key, change.seq)),
                _ => affected.push((author, change.seq)),
            }
        }
        if !first {
            writer.delete_term(Term::from_field_text(
                f.key,
                &document::key(&author, &rec.record_id),
            ));
        }
        if !document::searchable(kind) {
            continue;
        }
        let author_org = orgs.of(node, &author)?;
        let cx = Context {
            id: change.id,
            author,
            author_org: &author_org,
            relayed_by: change.relayed_by.as_deref(),
            received_at_ms,
        };
        writer.add_document(document::build(f, &rec, &cx))?;
    }
    if follow == Follow::Authors {
        // The latest change per author is enough.
        affected.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        affected.dedup_by_key(|(author, _)| *author);
        for (author, seq) in affected {
            if author != node.own.key {
                reindex_author(node, writer, orgs, &author, seq)?;
            }
        }
    }
    Ok(())
}

/// Rebuilds the documents of the current records of `author` stored before
/// change `upto` (those after it are indexed in their turn, with the
/// organisation as it is then: a rebuild does not index them twice).
fn reindex_author(
    node: &Indexer,
    writer: &mut IndexWriter,
    orgs: &mut Orgs,
    author: &PublicKey,
    upto: u64,
) -> Result<(), IndexError> {
    let filter = ListFilter {
        kind: None,
        author: Some(*author),
    };
    let mut after: Option<Vec<u8>> = None;
    loop {
        let (entries, next) = node
            .store
            .list_current(&filter, after.as_deref(), BATCH, |e| {
                e.seq < upto && document::searchable(e.kind)
            })?;
        let mut changes = Vec::with_capacity(entries.len());
        for e in entries {
            changes.extend(node.store.change_at(e.seq)?);
        }
        index_changes(
            node,
            writer,
            orgs,
            &changes,
            &mut BTreeMap::new(),
            Follow::No,
        )?;
        match next {
            Some(n) => after = Some(n),
            None => return Ok(()),
        }
    }
}

fn decode(bytes: &[u8]) -> Option<(PublicKey, Record)> {
    let env = maillage_proto::v1::Envelope::decode(bytes).ok()?;
    let author = PublicKey::from_slice(&env.author)?;
    let rec = wire::decode_payload(&env.payload).ok()?;
    Some((author, rec))
}

/// Authors' organisations, looked up once.
#[derive(Default)]
struct Orgs(HashMap<PublicKey, Org>);

impl Orgs {
    /// The organisation of `author`: this node's own; else the SIREN it
    /// speaks for (`Sirens::of`), named as its own Organisation record
    /// names it if that record claims the same SIREN (else as the reference
    /// list names it). An author no one vouches for is shown under no
    /// organisation: what it says of itself is not enough.
    fn of(&mut self, node: &Indexer, author: &PublicKey) -> Result<Org, StoreError> {
        if let Some(o) = self.0.get(author) {
            return Ok(o.clone());
        }
        let org = if *author == node.own.key {
            Org {
                siren: Some(node.own.siren.as_str().to_string()),
                name: Some(node.own.name.clone()),
            }
        } else {
            match node.sirens.of(author) {
                Some((s, _)) => Org {
                    name: own_organisation(node, author)?
                        .filter(|o| o.siren.as_deref() == Some(s.as_str()))
                        .and_then(|o| o.name),
                    siren: Some(s.as_str().to_string()),
                },
                None => Org::default(),
            }
        };
        self.0.insert(*author, org.clone());
        Ok(org)
    }
}

fn own_organisation(node: &Indexer, author: &PublicKey) -> Result<Option<Org>, StoreError> {
    Ok(node
        .store
        .organisation_record(author)?
        .filter(|rec| rec.visibility == maillage_record::Visibility::Public)
        .and_then(|rec| match rec.body {
            Body::Organisation(o) => Some(Org {
                siren: Some(o.siren.to_string()),
                name: Some(o.name),
            }),
            _ => None,
        }))
}
