//! The ledger: the one writer. It holds the store's write half
//! (`store::Writer`, made once at open), so every store write goes through
//! it, and after each write of records one hook (`updated`) does everything
//! that must follow, in one place:
//! - trust takes note of memberships that became current;
//! - the indexer is fed the records (`search::Feed`);
//! - the in-memory sync set learns their ids, and subscribers hear of them;
//! - if trust grew, the quarantine is looked through again (`release`).
//!
//! Where a peer's record goes (stored if its author is trusted, put in
//! quarantine if not) is decided here too (`admit`), so that the order in
//! which records and the memberships that trust them arrive does not matter.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};

use maillage_record::{Kind, PublicKey, RecordId, VerifiedRecord, Visibility, envelope};
use tokio::sync::broadcast;

use crate::replication::quarantine::{Held, Quarantine, Selection};
use crate::search::Feed;
use crate::store::{Admission, Inserted, Origin, Quarantined, Store, StoreError, SyncItem, Writer};
use crate::trust::Trust;
use crate::viewer::Viewer;

/// How many announcement batches a slow subscriber may fall behind before it
/// is told to reconcile instead.
const ANNOUNCE_BUFFER: usize = 1024;

/// What a record released from quarantine says it came from when the
/// quarantine did not keep its peer (entries of older versions); no peer
/// name has parentheses.
pub const QUARANTINE_ORIGIN: &str = "(quarantine)";

pub struct Ledger {
    store: Arc<Store>,
    writer: Writer,
    trust: Arc<Trust>,
    /// `replication.late_grace`, in ms (`admissible`).
    late_grace_ms: i64,
    feed: Arc<Feed>,
    quarantine: Quarantine,
    /// Every stored envelope as reconciliation sees it, by (issued_at, id).
    syncset: RwLock<BTreeMap<(u64, RecordId), (PublicKey, Visibility)>>,
    /// Records as they are stored, for live subscribers.
    announce: broadcast::Sender<Arc<Vec<SyncItem>>>,
    /// Counts successions and revocations that became current: the node
    /// then moves pins and roots along (`Node::follow_keys`).
    key_events: tokio::sync::watch::Sender<u64>,
}

/// What a release took out of the quarantine.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    /// Records stored now.
    pub stored: u64,
    /// Records a concurrent intake stored meanwhile (a peer sent them again
    /// just as trust grew): they no longer wait either.
    pub already: u64,
}

impl Released {
    /// How many records left the quarantine for the store.
    pub fn total(&self) -> u64 {
        self.stored + self.already
    }
}

/// What `store_accepted` did.
#[derive(Debug, Default)]
struct Accepted {
    stored: u64,
    /// The ids of the records stored.
    ids: Vec<RecordId>,
    duplicates: u64,
    /// Refused by the store: a version of another kind.
    refused: u64,
    /// Whether a membership became current.
    grew: bool,
}

/// What became of records a peer sent (`admit`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    /// New records stored, including quarantined ones they released.
    pub stored: u64,
    /// Records already stored or already waiting.
    pub duplicates: u64,
    /// Records of untrusted authors, put aside.
    pub quarantined: u64,
    /// Records refused: by a full quarantine, or by the store (a version
    /// of another kind).
    pub refused: u64,
}

impl Ledger {
    pub fn new(
        store: Arc<Store>,
        writer: Writer,
        trust: Arc<Trust>,
        feed: Arc<Feed>,
        quarantine: crate::replication::quarantine::Limits,
        late_grace: std::time::Duration,
    ) -> Result<Ledger, StoreError> {
        let syncset = store
            .sync_items()?
            .into_iter()
            .map(|i| ((i.issued_at_ms, i.id), (i.author, i.visibility)))
            .collect();
        Ok(Ledger {
            quarantine: Quarantine::load(store.clone(), quarantine)?,
            store,
            writer,
            trust,
            late_grace_ms: i64::try_from(late_grace.as_millis()).unwrap_or(i64::MAX),
            feed,
            syncset: RwLock::new(syncset),
            announce: broadcast::channel(ANNOUNCE_BUFFER).0,
            key_events: tokio::sync::watch::channel(0).0,
        })
    }

    /// Stores one verified record (blocking: the write fsyncs). A record
    /// already stored is `StoreError::Duplicate`; one not newer than the
    /// current version is `NotNewer` when `admission` requires it.
    pub fn insert(
        &self,
        rec: &VerifiedRecord,
        admission: Admission,
    ) -> Result<Inserted, StoreError> {
        self.write(std::slice::from_ref(rec), admission, Origin::Local)?
            .pop()
            .expect("one result per record")
    }

    /// Stores records this node signed, in one synced write, each only if
    /// it is newer than the current version (blocking). Says, for each,
    /// what happened; nothing of a refused one is written.
    pub fn insert_newer(
        &self,
        recs: &[VerifiedRecord],
    ) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
        self.write(recs, Admission::RequireNewer, Origin::Local)
    }

    /// Stores records as they are, trust aside (blocking): a test's or a
    /// benchmark's corpus, whose authors no membership names. No request
    /// reaches it: it exists for tests and the `testkit` feature only.
    #[cfg(any(test, feature = "testkit"))]
    pub fn load(
        &self,
        recs: &[VerifiedRecord],
        origin: Origin<'_>,
    ) -> Result<Vec<bool>, StoreError> {
        let results = self.write(recs, Admission::KeepHistory, origin)?;
        Ok(results.iter().map(Result::is_ok).collect())
    }

    /// Records from `peer`, verified: stored if trust accepts their author
    /// (a membership among them may accept others: passes go on until one
    /// stores nothing), put in quarantine if not; then, if trust grew, what
    /// waited for it is released (blocking).
    pub fn admit(&self, recs: Vec<VerifiedRecord>, peer: &str) -> Result<Admitted, StoreError> {
        self.admit_seen(recs, &HashMap::new(), peer)
    }

    /// `admit`, with when the federation first saw each record, as `peer`
    /// says (`FetchBatch.first_seen_ms`; a time in the future, or none,
    /// counts as now). A record is judged by it (`admissible`), and it is
    /// kept to be passed on.
    pub fn admit_seen(
        &self,
        recs: Vec<VerifiedRecord>,
        first_seen: &HashMap<RecordId, i64>,
        peer: &str,
    ) -> Result<Admitted, StoreError> {
        let now = maillage_record::now_ms();
        let seen = |id: &RecordId| {
            first_seen
                .get(id)
                .copied()
                .filter(|t| *t > 0)
                .map_or(now, |t| t.min(now))
        };
        let (admitted, stored) = self.admit_then(recs, peer, &seen, || {})?;
        // Kept for what was stored (a quarantined record keeps it in its
        // quarantine entry, a refused one nowhere), where earlier than now.
        let earlier: Vec<(RecordId, i64)> = stored
            .into_iter()
            .map(|id| (id, seen(&id)))
            .filter(|(_, t)| *t < now)
            .collect();
        if !earlier.is_empty() {
            self.writer.put_first_seen(&earlier)?;
        }
        Ok(admitted)
    }

    /// Whether a record by `author` issued at `issued_at_ms`, which the
    /// federation first saw at `first_seen_ms`, is accepted from a peer:
    /// trust accepts its author at the date it claims (a key still speaking
    /// then: not handed over, not compromised), and, if the
    /// membership that covers that date has ended, it was first seen before
    /// the end plus `replication.late_grace`. An expired member cannot
    /// date new records inside its old membership (docs/security.md).
    fn admissible(&self, author: &PublicKey, issued_at_ms: i64, first_seen_ms: i64) -> bool {
        // A key handed over or compromised signs nothing from then on; and
        // a compromised key's record first seen after the compromise is
        // refused whatever date it claims (a thief back-dates).
        if !self.trust.speaks_at(author, issued_at_ms)
            || self
                .trust
                .compromised_since(author)
                .is_some_and(|since| first_seen_ms >= since)
        {
            return false;
        }
        if self.trust.is_root(author) {
            return true;
        }
        // Any membership that covers the date will do, if it had not ended
        // (plus the grace) when the record was first seen.
        self.trust
            .endorsements(author, issued_at_ms)
            .iter()
            .any(|e| {
                e.valid_until_ms == 0
                    || first_seen_ms < e.valid_until_ms.saturating_add(self.late_grace_ms)
            })
    }

    /// `admit`, with `meanwhile` run between the trust check and the hold:
    /// where another intake may store the membership that trusts these
    /// records, and release the quarantine before they are in it. Tests
    /// play that interleaving through it.
    fn admit_then(
        &self,
        mut recs: Vec<VerifiedRecord>,
        peer: &str,
        seen: &dyn Fn(&RecordId) -> i64,
        meanwhile: impl FnOnce(),
    ) -> Result<(Admitted, Vec<RecordId>), StoreError> {
        let accepted = self.store_accepted(&mut recs, Origin::Peer(peer), seen)?;
        meanwhile();
        let authors: Vec<(PublicKey, i64, i64)> = recs
            .iter()
            .map(|r| (r.author(), r.record().issued_at_ms, seen(&r.id())))
            .collect();
        // Put aside before the release below, which may trust them too.
        let Held {
            held,
            duplicates: waiting,
            refused,
        } = self.quarantine.hold(&self.writer, recs, peer, seen)?;
        // Trust may have grown since it was asked, and a release may have
        // run before these were held: asked again now that they are held,
        // no record of a trusted author stays behind.
        let trusted_meanwhile = held > 0
            && authors
                .iter()
                .any(|(author, at, seen)| self.admissible(author, *at, *seen));
        let released = if accepted.grew || trusted_meanwhile {
            self.release_after_write()
        } else {
            0
        };
        Ok((
            Admitted {
                stored: accepted.stored + released,
                duplicates: accepted.duplicates + waiting,
                quarantined: held,
                refused: refused + accepted.refused,
            },
            accepted.ids,
        ))
    }

    /// Trusts `key` as a root, then releases what it trusts. Returns whether
    /// it is new and how many records left the quarantine.
    pub fn add_root(&self, key: PublicKey, note: &str) -> Result<(bool, u64), StoreError> {
        let added = self
            .trust
            .add_root(key, note, |value| self.writer.put_root(&key, value))?;
        Ok((added, self.release()?.total()))
    }

    /// Stops trusting `key`; returns false if it was not a root.
    pub fn remove_root(&self, key: &PublicKey) -> Result<bool, StoreError> {
        self.trust.remove_root(key, || self.writer.delete_root(key))
    }

    /// A proposal (`proposals`), kept durably.
    pub fn save_proposal(&self, id: &str, value: &[u8]) -> Result<(), StoreError> {
        self.writer.put_proposal(id, value)
    }

    /// Forgets a proposal (a cancelled one, or an old decided one).
    pub fn delete_proposal(&self, id: &str) -> Result<bool, StoreError> {
        self.writer.delete_proposal(id)
    }

    /// Access log lines (`access`): (time, number, line).
    pub fn log_access(&self, lines: &[(i64, u64, Vec<u8>)]) -> Result<(), StoreError> {
        self.writer.put_access(lines)
    }

    /// Forgets access log lines older than `before_ms`.
    pub fn prune_access(&self, before_ms: i64) -> Result<(), StoreError> {
        self.writer.prune_access(before_ms)
    }

    /// A read token (`tokens`), kept durably under its hash.
    pub fn save_token(&self, hash: &[u8; 32], value: &[u8]) -> Result<(), StoreError> {
        self.writer.put_token(hash, value)
    }

    /// Returns whether the token was kept.
    pub fn delete_token(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        self.writer.delete_token(hash)
    }

    /// The peer table's entries (`peers`), kept durably.
    pub fn save_peer(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.writer.put_peer(name, value)
    }

    /// A peer's statistics: a crash may lose the last few, never a peer.
    pub fn save_peer_stats(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.writer.put_peer_stats(name, value)
    }

    /// Returns whether the peer was kept.
    pub fn delete_peer(&self, name: &str) -> Result<bool, StoreError> {
        self.writer.delete_peer(name)
    }

    pub fn quarantine(&self) -> &Quarantine {
        &self.quarantine
    }

    /// Drops the quarantined records `which` selects (blocking); returns
    /// how many.
    pub fn drop_quarantined(&self, which: &Selection) -> Result<u64, StoreError> {
        self.quarantine.drop_matching(&self.writer, which)
    }

    /// Drops what waited in quarantine past its expiry (blocking); returns
    /// how many.
    pub fn expire_quarantine(&self) -> Result<u64, StoreError> {
        self.quarantine.expire(&self.writer)
    }

    /// The (issued_at, id) of every stored envelope `viewer` may learn of, sorted.
    pub fn sync_view(&self, viewer: &Viewer) -> Vec<(u64, RecordId)> {
        let set = self.syncset.read().unwrap_or_else(|p| p.into_inner());
        set.iter()
            .filter(|(_, (author, vis))| viewer.may_see(author, vis))
            .map(|(k, _)| *k)
            .collect()
    }

    /// Changes when a succession or a revocation becomes current.
    pub fn key_events(&self) -> tokio::sync::watch::Receiver<u64> {
        self.key_events.subscribe()
    }

    /// Every batch of records stored from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Vec<SyncItem>>> {
        self.announce.subscribe()
    }

    /// Releases what trust now accepts among the quarantined records
    /// (blocking). Every author in quarantine that some membership names is
    /// looked at, not only the keys a new membership names: a member
    /// promoted to committee makes its own members trusted, and a root added
    /// makes the members of its committees trusted. A pass that stores
    /// memberships may trust more: passes go on until one stores nothing, so
    /// the order in which authors are looked at does not matter.
    pub fn release(&self) -> Result<Released, StoreError> {
        let mut total = Released::default();
        loop {
            if self.quarantine.is_empty() {
                return Ok(total);
            }
            let mut pass = Released::default();
            for author in self.quarantine.authors()? {
                // Records of a key no membership names would stay anyway.
                if self.trust.may_accept(&author) {
                    let r = self.release_author(&author)?;
                    pass.stored += r.stored;
                    pass.already += r.already;
                }
            }
            total.stored += pass.stored;
            total.already += pass.already;
            if pass.total() == 0 {
                return Ok(total);
            }
        }
    }

    /// A release after records were written: they are stored, so a failed
    /// release is logged, not returned (a retry of the write would be
    /// refused as a duplicate). The next membership, root or start tries
    /// again. Returns how many records it stored.
    fn release_after_write(&self) -> u64 {
        match self.release() {
            Ok(Released { stored: 0, .. }) => 0,
            Ok(Released { stored, .. }) => {
                tracing::info!(
                    released = stored,
                    "released quarantined records trusted by a membership just stored"
                );
                stored
            }
            Err(e) => {
                tracing::error!(error = %e, "could not release the quarantined records a membership trusts; the next membership, root or start tries again");
                0
            }
        }
    }

    /// Stores the quarantined records of `author` that trust accepts now, each
    /// verified again (the quarantine is not trusted storage). The others
    /// stay, not even verified: a record is decoded first, and only one that
    /// trust accepts is worth a signature check.
    fn release_author(&self, author: &PublicKey) -> Result<Released, StoreError> {
        let waiting = self.quarantine.of(author)?;
        // When the federation first saw each: when it came here, or earlier
        // if the peer that relayed it said so.
        let ids: Vec<RecordId> = waiting.iter().map(|q| q.id).collect();
        let first_seen: HashMap<RecordId, i64> = waiting
            .iter()
            .zip(self.store.first_seen_attested(&ids)?)
            .map(|(q, attested)| {
                (
                    q.id,
                    attested.map_or(q.received_at_ms, |a| a.min(q.received_at_ms)),
                )
            })
            .collect();
        let seen = |id: &RecordId| first_seen.get(id).copied().unwrap_or(i64::MAX);
        // By the peer each came from, which they are stored as coming from.
        let mut by_peer: BTreeMap<Option<&str>, Vec<VerifiedRecord>> = BTreeMap::new();
        let mut broken = Vec::new();
        for q in &waiting {
            // One that does not decode does not verify either: dropped below.
            if envelope::decode_stored(&q.bytes)
                .is_ok_and(|r| !self.admissible(&q.author, r.issued_at_ms, seen(&q.id)))
            {
                continue;
            }
            match envelope::verify_bytes(&q.bytes) {
                Ok(rec) => by_peer.entry(q.peer.as_deref()).or_default().push(rec),
                Err(e) => {
                    tracing::error!(id = %q.id, error = %e, "dropped a quarantined record that no longer verifies");
                    broken.push((q.author, q.id));
                }
            }
        }
        let tried: HashSet<_> = by_peer.values().flatten().map(|r| r.id()).collect();
        let (mut released, mut still) = (Released::default(), HashSet::new());
        for (peer, mut recs) in by_peer {
            let origin = Origin::Peer(peer.unwrap_or(QUARANTINE_ORIGIN));
            // One a concurrent intake stored meanwhile is taken out all the
            // same: it is in the store.
            let accepted = self.store_accepted(&mut recs, origin, &seen)?;
            released.stored += accepted.stored;
            released.already += accepted.duplicates;
            still.extend(recs.iter().map(|r| r.id()));
        }
        let released_ids: Vec<&Quarantined> = waiting
            .iter()
            .filter(|q| tried.contains(&q.id) && !still.contains(&q.id))
            .collect();
        // Stored now, they were first seen when they came here, or earlier.
        let first: Vec<(RecordId, i64)> =
            released_ids.iter().map(|q| (q.id, seen(&q.id))).collect();
        self.writer.put_first_seen(&first)?;
        let taken: Vec<_> = released_ids.iter().map(|q| (q.author, q.id)).collect();
        self.quarantine.take(&self.writer, &taken)?;
        self.quarantine.drop_entries(&self.writer, &broken)?;
        if released.stored > 0 {
            tracing::info!(%author, stored = released.stored, "released quarantined records of a newly trusted author");
        }
        Ok(released)
    }

    /// Stores what trust accepts among `waiting`, again and again: a
    /// membership stored in one round may accept records of the next.
    /// `waiting` keeps the rest.
    fn store_accepted(
        &self,
        waiting: &mut Vec<VerifiedRecord>,
        origin: Origin<'_>,
        seen: &dyn Fn(&RecordId) -> i64,
    ) -> Result<Accepted, StoreError> {
        let mut accepted = Accepted::default();
        loop {
            let (ok, rest): (Vec<_>, Vec<_>) = waiting.drain(..).partition(|r| {
                self.admissible(&r.author(), r.record().issued_at_ms, seen(&r.id()))
            });
            *waiting = rest;
            if ok.is_empty() {
                return Ok(accepted);
            }
            let results = self
                .writer
                .write(&ok, Admission::KeepHistory, origin, &mut |r| {
                    self.syncable(&ok, r)
                })?;
            accepted.grew |= self.updated(&ok, &results);
            for (rec, result) in ok.iter().zip(&results) {
                match result {
                    Ok(_) => {
                        accepted.stored += 1;
                        accepted.ids.push(rec.id());
                    }
                    Err(StoreError::Duplicate(_)) => accepted.duplicates += 1,
                    Err(e) => {
                        // Signed twice over by its author (the store keeps
                        // note): not fetched again at every sync.
                        tracing::warn!(id = %rec.id(), author = %rec.author(), error = %e, "refused a record");
                        self.quarantine.note_refused(rec.id());
                        accepted.refused += 1;
                    }
                }
            }
        }
    }

    /// Writes records, runs the hook, and releases what trust grew into.
    fn write(
        &self,
        recs: &[VerifiedRecord],
        admission: Admission,
        origin: Origin<'_>,
    ) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
        let results = self
            .writer
            .write(recs, admission, origin, &mut |r| self.syncable(recs, r))?;
        if self.updated(recs, &results) {
            self.release_after_write();
        }
        Ok(results)
    }

    /// Puts the records written (`Ok`) in the sync set. Runs inside the
    /// store's write, before the new counts show: whoever reads that the
    /// node holds N records and then reconciles sees those N ids, never a
    /// set that lags behind the store (a sync would "need" records this node
    /// already holds).
    fn syncable(&self, recs: &[VerifiedRecord], results: &[Result<Inserted, StoreError>]) {
        let mut set = self.syncset.write().unwrap_or_else(|p| p.into_inner());
        for (r, _) in recs.iter().zip(results).filter(|(_, res)| res.is_ok()) {
            set.insert(
                (r.record().issued_at_ms.max(0) as u64, r.id()),
                (r.author(), r.record().visibility.clone()),
            );
        }
    }

    /// What follows every write of records, for those written (`Ok`):
    /// trust, the index feed, announcements (the sync set is updated within
    /// the write: `syncable`). Says whether trust may have grown (a
    /// membership became current).
    fn updated(&self, recs: &[VerifiedRecord], results: &[Result<Inserted, StoreError>]) -> bool {
        let mut grew = false;
        let items: Vec<SyncItem> = recs
            .iter()
            .zip(results)
            .filter_map(|(r, result)| Some((r, result.as_ref().ok()?)))
            .map(|(r, inserted)| {
                // Trust follows current versions only, as `Trust::load`
                // reads them after a restart: an older membership arriving
                // after its withdrawal changes nothing.
                if inserted.current {
                    self.trust.observe(&r.author(), r.record());
                    let kind = r.record().kind();
                    // A successor inherits what its predecessor was trusted
                    // for: trust may grow with a succession too.
                    grew |= matches!(kind, Kind::Membership | Kind::Succession);
                    if matches!(kind, Kind::Succession | Kind::Revocation) {
                        self.key_events.send_modify(|n| *n += 1);
                    }
                }
                self.feed.push(r, inserted);
                SyncItem {
                    id: r.id(),
                    issued_at_ms: r.record().issued_at_ms.max(0) as u64,
                    author: r.author(),
                    visibility: r.record().visibility.clone(),
                }
            })
            .collect();
        if items.is_empty() {
            return false;
        }
        // No subscriber is not an error.
        let _ = self.announce.send(Arc::new(items));
        grew
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A store in `dir` and its ledger, with no node around them.
    pub(crate) fn open(dir: &std::path::Path) -> (Arc<Store>, Arc<Ledger>) {
        let (store, writer) = Store::open(dir).unwrap();
        let trust = Arc::new(Trust::load(&store, PublicKey([1; 32])).unwrap());
        let ledger = Ledger::new(
            store.clone(),
            writer,
            trust,
            Arc::default(),
            Default::default(),
            std::time::Duration::from_secs(7 * 24 * 3600),
        )
        .unwrap();
        (store, Arc::new(ledger))
    }

    fn signed(
        by: &maillage_record::SigningKey,
        record_id: &str,
        body: maillage_record::Body,
    ) -> VerifiedRecord {
        let record = maillage_record::Record {
            record_id: record_id.into(),
            version: 1,
            issued_at_ms: 1_764_000_000_000,
            visibility: Visibility::Public,
            provenance: None,
            body,
        };
        envelope::sign(by, &record).unwrap()
    }

    /// Whoever reads that the store holds N envelopes and then reconciles
    /// must find N ids in the sync set: a sync set that lagged behind the
    /// counts made a resumed first sync "need" records the node already
    /// held, and fetch nothing.
    #[test]
    fn the_sync_set_never_lags_behind_the_counts() {
        use maillage_record::model::Dataset;
        use maillage_record::{Body, SigningKey};
        let dir = tempfile::tempdir().unwrap();
        let (store, ledger) = open(dir.path());
        let author = SigningKey::from_bytes(&[4; 32]);
        let recs: Vec<VerifiedRecord> = (0..300)
            .map(|i| {
                signed(
                    &author,
                    &format!("d{i}"),
                    Body::Dataset(Dataset::new("Voirie", "Données")),
                )
            })
            .collect();
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                for chunk in recs.chunks(3) {
                    ledger.load(chunk, Origin::Local).unwrap();
                }
                done.store(true, std::sync::atomic::Ordering::Release);
            });
            let mut seen = 0;
            // A loader that panicked never says it is done.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while !done.load(std::sync::atomic::Ordering::Acquire) || seen < recs.len() as u64 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the loader never finished"
                );
                let (envelopes, _, _) = store.counts();
                let syncable = ledger.sync_view(&Viewer::Operator).len() as u64;
                assert!(
                    syncable >= envelopes,
                    "the store counted {envelopes} envelopes, the sync set held {syncable}"
                );
                seen = envelopes;
            }
        });
    }

    /// Item 6 of docs/security.md's list: one intake finds a record's
    /// author untrusted; meanwhile another stores the membership that
    /// trusts it and releases the quarantine; then the first holds the
    /// record. It must not stay there.
    #[test]
    fn a_record_held_while_its_membership_is_stored_does_not_stay_held() {
        use maillage_record::model::{Dataset, Membership, MembershipRole};
        use maillage_record::{Body, SigningKey, Siren};
        let dir = tempfile::tempdir().unwrap();
        let (store, ledger) = open(dir.path());
        let (root, member) = (
            SigningKey::from_bytes(&[2; 32]),
            SigningKey::from_bytes(&[3; 32]),
        );
        ledger
            .add_root(PublicKey(root.verifying_key().to_bytes()), "comité")
            .unwrap();
        let record = signed(
            &member,
            "voirie",
            Body::Dataset(Dataset::new("Voirie", "Données")),
        );
        let membership = signed(
            &root,
            "membre",
            Body::Membership(Membership {
                member_key: PublicKey(member.verifying_key().to_bytes()),
                siren: Siren::parse("213101496").unwrap(),
                role: MembershipRole::Member,
                valid_from_ms: 0,
                valid_until_ms: 0,
                scope: vec![],
            }),
        );
        let (admitted, _) = ledger
            .admit_then(
                vec![record.clone()],
                "a",
                &|_| maillage_record::now_ms(),
                || {
                    let other = ledger.admit(vec![membership.clone()], "b").unwrap();
                    assert_eq!(other.stored, 1);
                },
            )
            .unwrap();
        assert!(
            store.contains(&record.id()).unwrap(),
            "a trusted author's record stayed in quarantine: {admitted:?}"
        );
        assert_eq!(ledger.quarantine().len(), 0);
    }
}
