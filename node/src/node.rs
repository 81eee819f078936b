//! What a running node is: its organisation, its key, its store, and the rules
//! for who may publish, whose records it accepts, and who may read what.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use maillage_record::{
    Body, Kind, PublicKey, Record, RecordId, SigningKey, Siren, VerifiedRecord, Visibility,
};
use tokio::sync::{broadcast, watch};

use crate::config::Config;
use crate::peers::PeerTable;
use crate::store::{
    Admission, CurrentEntry, Inserted, ListFilter, Origin, Store, StoreError, SyncItem,
};
use crate::tls::{Identity, PinnedKeys};
use crate::trust::Trust;

/// How many announcement batches a slow subscriber may fall behind before it
/// is told to reconcile instead.
const ANNOUNCE_BUFFER: usize = 1024;

pub struct Node {
    pub siren: Siren,
    pub name: String,
    pub public_key: PublicKey,
    signing_key: SigningKey,
    pub identity: Identity,
    pub store: Arc<Store>,
    /// The search index, which follows the store (see `search`).
    pub search: crate::search::Search,
    pub publish_authors: Vec<PublicKey>,
    pub grpc_listen: String,
    pub started: Instant,
    pub data_dir: std::path::PathBuf,
    pub trust: Trust,
    pub peers: PeerTable,
    pub replication: crate::config::Replication,
    /// Every stored envelope as reconciliation sees it, by (issued_at, id).
    syncset: RwLock<BTreeMap<(u64, RecordId), (PublicKey, Visibility)>>,
    /// Records as they are stored, for live subscribers.
    announce: broadcast::Sender<Arc<Vec<SyncItem>>>,
    /// Ids of quarantined records, and of records refused as forged or
    /// invalid lately: reconciliation does not fetch them again.
    quarantined: std::sync::Mutex<std::collections::HashSet<RecordId>>,
    refused: std::sync::Mutex<std::collections::HashSet<RecordId>>,
    /// Becomes true when the node shuts down: long-lived streams end on it.
    stopping: watch::Sender<bool>,
    /// Turns to run a public search or statistics (two per core at once),
    /// so that a flood of searches queues for its turn instead of taking
    /// the cores that sync, indexing and the operator need (see
    /// `search_turn`).
    search_slots: Arc<tokio::sync::Semaphore>,
    /// Low-priority threads for what peers send and fetch (see
    /// `background`): searches and admin calls go first.
    pub background: crate::background::Background,
}

/// Who vouches for a peer's SIREN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SirenSource {
    /// An accepted Membership record names the peer's key.
    Membership,
    /// This node's operator, when pinning the peer.
    Operator,
    /// The peer's own Organisation record, because the peer is a trust
    /// root: it could sign a membership for itself as well.
    Root,
}

impl SirenSource {
    pub fn as_str(self) -> &'static str {
        match self {
            SirenSource::Membership => "membership",
            SirenSource::Operator => "operator",
            SirenSource::Root => "root",
        }
    }
}

/// Who is asking: decides which records a read or a sync may reveal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Viewer {
    /// The node's operator, on the admin socket: sees everything.
    Operator,
    /// An unauthenticated caller on the public port: public records only.
    Anonymous,
    /// A pinned peer: a federation member; restricted records whose audience
    /// holds its SIREN (from its own Organisation record) or that it wrote.
    Peer {
        key: PublicKey,
        siren: Option<Siren>,
    },
}

impl Viewer {
    /// Whether this viewer may learn that a record by `author` with this
    /// visibility exists.
    pub fn may_see(&self, author: &PublicKey, visibility: &Visibility) -> bool {
        match (self, visibility) {
            (Viewer::Operator, _) | (_, Visibility::Public) => true,
            (Viewer::Anonymous, _) => false,
            (Viewer::Peer { .. }, Visibility::Federation) => true,
            (Viewer::Peer { key, siren }, Visibility::Restricted { audience }) => {
                key == author || siren.as_ref().is_some_and(|s| audience.contains(s))
            }
        }
    }
}

/// Public searches answered at once: two per core, so that a search waiting
/// on memory does not leave a core idle.
pub fn search_turns() -> usize {
    2 * std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl Node {
    pub fn new(
        config: &Config,
        signing_key: SigningKey,
        identity: Identity,
        store: Arc<Store>,
        search: crate::search::Search,
        grpc_listen: String,
    ) -> Result<Node, StoreError> {
        let public_key = PublicKey(signing_key.verifying_key().to_bytes());
        let syncset = store
            .sync_items()?
            .into_iter()
            .map(|i| ((i.issued_at_ms, i.id), (i.author, i.visibility)))
            .collect();
        let trust = Trust::load(store.clone(), public_key)?;
        let peers = PeerTable::load(store.clone())?;
        let quarantined = store
            .quarantined(None, usize::MAX)?
            .into_iter()
            .map(|q| q.id)
            .collect();
        Ok(Node {
            siren: config.siren.clone(),
            name: config.name.clone(),
            public_key,
            signing_key,
            identity,
            store,
            search,
            publish_authors: config.publish_authors.clone(),
            grpc_listen,
            started: Instant::now(),
            data_dir: config.data_dir.clone(),
            trust,
            peers,
            replication: config.replication.clone(),
            syncset: RwLock::new(syncset),
            announce: broadcast::channel(ANNOUNCE_BUFFER).0,
            quarantined: std::sync::Mutex::new(quarantined),
            refused: Default::default(),
            stopping: watch::channel(false).0,
            search_slots: Arc::new(tokio::sync::Semaphore::new(search_turns())),
            background: crate::background::Background::new(
                "maillage-sync",
                crate::background::BACKGROUND,
            ),
        })
    }

    /// Waits for a turn to search (held until the permit is dropped), at
    /// most `patience` if given: `None` when the wait ran out. Searches by
    /// the operator take none.
    pub async fn search_turn(
        &self,
        patience: Option<std::time::Duration>,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let turn = self.search_slots.clone().acquire_owned();
        match patience {
            None => turn.await.ok(),
            Some(d) => tokio::time::timeout(d, turn).await.ok()?.ok(),
        }
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.signing_key
    }

    pub fn pinned_keys(&self) -> PinnedKeys {
        self.peers.pinned()
    }

    /// Whether `author` may publish its own records here.
    pub fn may_publish(&self, author: &PublicKey) -> bool {
        *author == self.public_key || self.publish_authors.contains(author)
    }

    /// The viewer a pinned peer is, with the SIREN `peer_siren` gives it.
    pub fn peer_viewer(&self, key: &PublicKey) -> Viewer {
        Viewer::Peer {
            key: *key,
            siren: self.peer_siren(key).map(|(siren, _)| siren),
        }
    }

    /// The SIREN a peer is served restricted records for, and who vouches
    /// for it: an accepted Membership, else this node's operator (`peer add
    /// --siren`), else, for a trust root only, its own Organisation record (a
    /// root could sign a membership for itself). Otherwise what a peer's
    /// Organisation record claims is not enough: a member whose membership
    /// was withdrawn or expired keeps its Organisation record, and must not
    /// keep receiving its organisation's restricted records.
    pub fn peer_siren(&self, key: &PublicKey) -> Option<(Siren, SirenSource)> {
        if let Some(siren) = self.trust.siren_of(key) {
            return Some((siren, SirenSource::Membership));
        }
        if let Some(siren) = self.peers.siren_of(key) {
            return Some((siren, SirenSource::Operator));
        }
        if !self.trust.is_root(key) {
            return None;
        }
        let claimed = self.organisation_record(key).ok().flatten()?;
        match &claimed.body {
            Body::Organisation(o) => Some((o.siren.clone(), SirenSource::Root)),
            _ => None,
        }
    }

    /// The current Organisation record `author` published about itself, if
    /// this node holds one (what it says of itself: a membership outranks it).
    pub fn organisation_record(&self, author: &PublicKey) -> Result<Option<Record>, StoreError> {
        let filter = ListFilter {
            kind: Some(Kind::Organisation),
            author: Some(*author),
        };
        let (entries, _) = self.store.list_current(&filter, None, 16, |_| true)?;
        for e in entries {
            let Some(stored) = self.store.get(&e.id)? else {
                continue;
            };
            match maillage_record::envelope::decode_stored(&stored.bytes) {
                Ok(rec) => return Ok(Some(rec)),
                Err(err) => {
                    tracing::error!(id = %e.id, error = %err, "stored record does not decode")
                }
            }
        }
        Ok(None)
    }

    /// The (issued_at, id) of every stored envelope `viewer` may learn of, sorted.
    pub fn sync_view(&self, viewer: &Viewer) -> Vec<(u64, RecordId)> {
        let set = self.syncset.read().unwrap_or_else(|p| p.into_inner());
        set.iter()
            .filter(|(_, (author, vis))| viewer.may_see(author, vis))
            .map(|(k, _)| *k)
            .collect()
    }

    /// Stores a verified record off the async runtime (the write fsyncs), then
    /// announces it.
    pub async fn insert(
        self: &Arc<Self>,
        rec: VerifiedRecord,
        admission: Admission,
    ) -> Result<Inserted, StoreError> {
        let node = self.clone();
        tokio::task::spawn_blocking(move || node.insert_blocking(&rec, admission))
            .await
            .expect("store insert does not panic")
    }

    /// Stores a verified record and announces it (blocking).
    pub fn insert_blocking(
        &self,
        rec: &VerifiedRecord,
        admission: Admission,
    ) -> Result<Inserted, StoreError> {
        let inserted = self.store.insert(rec, admission)?;
        self.stored(std::iter::once((rec, &inserted)));
        Ok(inserted)
    }

    /// Stores a batch of verified records (blocking: call off the runtime).
    /// Says, for each, whether it was new.
    pub fn insert_many_blocking(
        &self,
        recs: &[VerifiedRecord],
        origin: Origin<'_>,
    ) -> Result<Vec<bool>, StoreError> {
        let results = self.store.insert_many(recs, origin)?;
        self.stored(
            recs.iter()
                .zip(&results)
                .filter_map(|(rec, r)| Some((rec, r.as_ref()?))),
        );
        Ok(results.iter().map(Option::is_some).collect())
    }

    /// Stores a batch this node signed, each record only if it is newer than
    /// the current version (blocking). Says, for each, what happened.
    pub fn insert_many_newer_blocking(
        &self,
        recs: &[VerifiedRecord],
    ) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
        let results = self.store.insert_many_newer(recs)?;
        self.stored(
            recs.iter()
                .zip(&results)
                .filter_map(|(rec, r)| Some((rec, r.as_ref().ok()?))),
        );
        Ok(results)
    }

    /// Records just written: into the trust policy (memberships), the sync
    /// set, the indexer's feed, and out to subscribers.
    fn stored<'a>(&self, recs: impl IntoIterator<Item = (&'a VerifiedRecord, &'a Inserted)>) {
        let items: Vec<SyncItem> = recs
            .into_iter()
            .map(|(r, inserted)| {
                // Trust follows current versions only, as `Trust::load`
                // reads them after a restart: an older membership arriving
                // after its withdrawal changes nothing.
                if inserted.current {
                    self.trust.observe(&r.author(), r.record());
                }
                self.search.feed.push(r, inserted);
                SyncItem {
                    id: r.id(),
                    issued_at_ms: r.record().issued_at_ms.max(0) as u64,
                    author: r.author(),
                    visibility: r.record().visibility.clone(),
                }
            })
            .collect();
        if items.is_empty() {
            return;
        }
        {
            let mut set = self.syncset.write().unwrap_or_else(|p| p.into_inner());
            for i in &items {
                set.insert((i.issued_at_ms, i.id), (i.author, i.visibility.clone()));
            }
        }
        // No subscriber is not an error.
        let _ = self.announce.send(Arc::new(items));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Vec<SyncItem>>> {
        self.announce.subscribe()
    }

    /// How many records wait in quarantine.
    pub fn quarantined(&self) -> u64 {
        self.quarantined
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len() as u64
    }

    pub fn is_quarantined(&self, id: &RecordId) -> bool {
        self.quarantined
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
    }

    /// Takes room in the quarantine for `ids`, in order, while fewer than
    /// `limit` records wait: returns how many (the first ones) now count as
    /// waiting. Counting and taking under one lock, concurrent intakes never
    /// exceed the limit together.
    pub fn reserve_quarantine(&self, ids: impl IntoIterator<Item = RecordId>, limit: u64) -> usize {
        let mut q = self.quarantined.lock().unwrap_or_else(|p| p.into_inner());
        let mut admitted = 0;
        for id in ids {
            if q.len() as u64 >= limit && !q.contains(&id) {
                break;
            }
            q.insert(id);
            admitted += 1;
        }
        admitted
    }

    /// Records that no longer wait in quarantine (released, or never
    /// written); `reserve_quarantine` counts those that do.
    pub fn forget_quarantined(&self, ids: impl IntoIterator<Item = RecordId>) {
        let mut q = self.quarantined.lock().unwrap_or_else(|p| p.into_inner());
        for id in ids {
            q.remove(&id);
        }
    }

    /// Remembers ids refused as forged or invalid, so they are not fetched on
    /// every reconciliation; forgotten in bulk past 100,000 (then fetched and
    /// refused once more).
    pub fn note_refused(&self, id: RecordId) {
        let mut r = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        if r.len() >= 100_000 {
            r.clear();
        }
        r.insert(id);
    }

    /// Whether reconciliation should fetch this id: not stored, not waiting
    /// in quarantine, not refused lately.
    pub fn wants(&self, id: &RecordId) -> Result<bool, StoreError> {
        if self.is_quarantined(id)
            || self
                .refused
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(id)
        {
            return Ok(false);
        }
        Ok(!self.store.contains(id)?)
    }

    /// Calls `f` with every current record that `wanted` selects from the
    /// index, decoded (blocking: it scans the store). A record that does not
    /// decode is logged and skipped; a store failure ends the scan.
    pub fn for_each_current(
        &self,
        filter: &ListFilter,
        mut wanted: impl FnMut(&CurrentEntry) -> bool,
        mut f: impl FnMut(&CurrentEntry, Record),
    ) -> Result<(), StoreError> {
        let mut failure = None;
        self.store.list_current(filter, None, usize::MAX, |cur| {
            if failure.is_some() || !wanted(cur) {
                return false;
            }
            match self.store.get(&cur.id) {
                Ok(Some(s)) => match maillage_record::envelope::decode_stored(&s.bytes) {
                    Ok(r) => f(cur, r),
                    Err(e) => {
                        tracing::error!(id = %cur.id, error = %e, "stored record does not decode")
                    }
                },
                Ok(None) => {}
                Err(e) => failure = Some(e),
            }
            false
        })?;
        failure.map_or(Ok(()), Err)
    }

    /// The envelopes among `ids` that are stored and that `viewer` may see,
    /// in the order asked.
    pub fn visible_envelopes(
        &self,
        ids: &[RecordId],
        viewer: &Viewer,
    ) -> Result<Vec<maillage_proto::v1::Envelope>, StoreError> {
        use prost::Message;
        // Visibility from the small syncset entries first: an invisible record
        // costs one point read, and a visible one is not decoded twice.
        let visible: Vec<RecordId> = ids
            .iter()
            .zip(self.store.sync_items_many(ids)?)
            .filter(|(_, item)| {
                item.as_ref()
                    .is_some_and(|i| viewer.may_see(&i.author, &i.visibility))
            })
            .map(|(id, _)| *id)
            .collect();
        let mut out = Vec::with_capacity(visible.len());
        for stored in self.store.get_many(&visible)?.into_iter().flatten() {
            let env =
                maillage_proto::v1::Envelope::decode(stored.bytes.as_slice()).map_err(|_| {
                    StoreError::Corrupt {
                        path: self.data_dir.display().to_string(),
                        what: format!("stored envelope {} does not decode", stored.id),
                    }
                })?;
            out.push(env);
        }
        Ok(out)
    }

    /// A receiver that sees `true` once the node begins to shut down.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    pub fn stop(&self) {
        let _ = self.stopping.send(true);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A node in `dir` (store and index, no ports served).
    pub(crate) async fn start_node(dir: &std::path::Path) -> Arc<Node> {
        let key = maillage_record::keyfile::generate().unwrap();
        maillage_record::keyfile::write_new(&dir.join("organisation.key"), &key).unwrap();
        let text = "[organisation]\nsiren = \"243100518\"\nname = \"Toulouse Métropole\"\n\
                    key_file = \"organisation.key\"\n[node]\ngrpc_listen = \"127.0.0.1:0\"\n";
        std::fs::write(dir.join("maillage.toml"), text).unwrap();
        restart_node(dir).await
    }

    /// The node `start_node` made in `dir`, started again.
    pub(crate) async fn restart_node(dir: &std::path::Path) -> Arc<Node> {
        let path = dir.join("maillage.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let config = crate::config::Config::parse(&path, &text).unwrap();
        crate::server::start(&config).await.unwrap().node
    }

    /// Intakes from several peers at once never fill the quarantine past
    /// its limit together.
    #[tokio::test]
    async fn concurrent_intakes_keep_to_the_quarantine_limit() {
        let dir = tempfile::tempdir().unwrap();
        let node = start_node(dir.path()).await;
        let id = |peer: u8, i: u8| {
            let mut id = [0; 32];
            (id[0], id[1]) = (peer, i);
            RecordId(id)
        };
        let admitted: usize = std::thread::scope(|s| {
            let node = &node;
            let intakes: Vec<_> = (0..8u8)
                .map(|peer| {
                    s.spawn(move || node.reserve_quarantine((0..100).map(|i| id(peer, i)), 250))
                })
                .collect();
            intakes.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(admitted, 250);
        assert_eq!(node.quarantined(), 250);
        // Full: a new record is refused, one already waiting takes no more room.
        assert_eq!(node.reserve_quarantine([id(9, 0)], 250), 0);
        let waiting = (0..8u8)
            .flat_map(|peer| (0..100).map(move |i| id(peer, i)))
            .find(|i| node.is_quarantined(i))
            .unwrap();
        assert_eq!(node.reserve_quarantine([waiting], 250), 1);
        assert_eq!(node.quarantined(), 250);
    }
}
