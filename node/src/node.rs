//! What a running node is: its organisation, and the parts it is made of
//! (store, ledger, author, trust, peers, search), each with its own rules.
//! Its fields are private: other modules ask it through methods. Reads go to
//! the store (`store()`, which has no write method); every write goes through
//! the ledger (`ledger()`); signing as this node goes through the author
//! (`author()`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use maillage_record::{Kind, PublicKey, RecordId, SigningKey, Siren, wire};
use tokio::sync::watch;

use crate::author::Author;
use crate::background::Background;
use crate::config::{Config, Replication};
use crate::ledger::Ledger;
use crate::peers::PeerTable;
use crate::search::{Hit, Indexer, Own, Search};
use crate::store::{Store, StoreError, Writer};
use crate::tls::{Identity, PinnedKeys};
use crate::trust::Trust;
use crate::viewer::{self, SirenSource, Sirens, Viewer};

pub struct Node {
    siren: Siren,
    name: String,
    public_key: PublicKey,
    identity: Identity,
    /// The store's read half; its write half is the ledger's.
    store: Arc<Store>,
    ledger: Arc<Ledger>,
    author: Author,
    /// The search index, which follows the store (see `search`).
    search: Arc<Search>,
    trust: Arc<Trust>,
    peers: Arc<PeerTable>,
    sirens: Arc<Sirens>,
    /// Read tokens for scripts.
    tokens: crate::tokens::Tokens,
    /// Who read what beyond the public.
    access: crate::access::AccessLog,
    /// Records agents proposed through the portal.
    proposals: crate::proposals::Proposals,
    publish_authors: Vec<PublicKey>,
    grpc_listen: String,
    started: Instant,
    data_dir: std::path::PathBuf,
    /// The node directory and its key file (`rotate_key` writes them).
    dir: std::path::PathBuf,
    key_file: std::path::PathBuf,
    replication: Replication,
    /// Becomes true when the node shuts down: long-lived streams end on it.
    stopping: watch::Sender<bool>,
    /// Bumped when `follow_keys` moved a peer to another key or unpinned
    /// it: the replicator restarts the links.
    repinned: watch::Sender<u64>,
    /// Turns to run a public search or statistics (two per core at once),
    /// so that a flood of searches queues for its turn instead of taking
    /// the cores that sync, indexing and the operator need (see
    /// `search_turn`).
    search_slots: Arc<tokio::sync::Semaphore>,
    /// Low-priority threads for what peers send and fetch (see
    /// `background`): searches and admin calls go first.
    background: Background,
    /// What was refused to callers, by reason (`status`).
    refusals: Arc<crate::refusals::Refusals>,
    /// Each peer's turns to read and send a Fetch's envelopes
    /// (`fetch_turn`), by peer name.
    fetch_slots: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Semaphore>>>,
    /// Sources harvested on a schedule (`[[harvest]]`).
    harvests: crate::harvest::Harvests,
    /// The config file, copied into backups.
    config_path: std::path::PathBuf,
    /// The automatic snapshots' last run (`[backup]`).
    snapshot: std::sync::Mutex<crate::backup::SnapshotState>,
    /// One backup at a time: each flushes the store and links its files.
    backing_up: std::sync::Mutex<()>,
    /// Request durations (`metrics`).
    metrics: Arc<crate::metrics::Metrics>,
    /// `[backup]`, if the node takes snapshots by itself.
    backup: Option<crate::config::Backup>,
}

/// Fetch reads in flight at once for one peer, each up to
/// `FETCH_BATCH_RECORDS` envelopes held until sent: what a peer's fetches
/// hold in memory is at most this many reads, however many calls it makes,
/// and a peer that stops reading holds up only its own.
pub const FETCH_TURNS: usize = 2;

/// Why `Node::rotate_key` failed.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error(transparent)]
    Key(#[from] maillage_record::keyfile::KeyFileError),
    #[error(transparent)]
    Author(#[from] crate::author::AuthorError),
    #[error(
        "the catalogue was signed again and the succession stored, but {path} failed \
         ({problem}): make sure the key file holds the new key (organisation.key.next, if it is \
         still there) and organisation.envelope its Organisation record, then restart the node \
         (it refuses to start with the former key)"
    )]
    Io {
        path: std::path::PathBuf,
        problem: String,
    },
}

/// Public searches answered at once: two per core, so that a search waiting
/// on memory does not leave a core idle.
pub fn search_turns() -> usize {
    2 * std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl Node {
    /// Puts a node together from an opened store (both its halves) and
    /// search index.
    pub fn new(
        config: &Config,
        signing_key: SigningKey,
        identity: Identity,
        (store, writer): (Arc<Store>, Writer),
        search: Search,
        grpc_listen: String,
    ) -> Result<Node, StoreError> {
        let public_key = PublicKey(signing_key.verifying_key().to_bytes());
        let search = Arc::new(search);
        let trust = Arc::new(Trust::load(&store, public_key)?);
        let ledger = Arc::new(Ledger::new(
            store.clone(),
            writer,
            trust.clone(),
            search.feed.clone(),
            config.replication.quarantine,
            config.replication.late_grace,
        )?);
        let peers = Arc::new(PeerTable::load(&store, ledger.clone())?);
        let sirens = Arc::new(Sirens::new(
            public_key,
            config.siren.clone(),
            trust.clone(),
            peers.clone(),
            store.clone(),
        ));
        let tokens = crate::tokens::Tokens::load(&store)?;
        let proposals = crate::proposals::Proposals::load(&store)?;
        ledger.prune_access(
            maillage_record::now_ms() - crate::access::RETENTION.as_millis() as i64,
        )?;
        let author = Author::new(
            signing_key,
            config.siren.clone(),
            config.name.clone(),
            store.clone(),
            ledger.clone(),
        );
        let access = crate::access::AccessLog::new(&ledger);
        Ok(Node {
            siren: config.siren.clone(),
            name: config.name.clone(),
            public_key,
            identity,
            store,
            ledger,
            author,
            search,
            trust,
            peers,
            sirens,
            tokens,
            access,
            proposals,
            publish_authors: config.publish_authors.clone(),
            grpc_listen,
            started: Instant::now(),
            data_dir: config.data_dir.clone(),
            dir: config.dir.clone(),
            key_file: config.key_file.clone(),
            replication: config.replication.clone(),
            stopping: watch::channel(false).0,
            repinned: watch::channel(0).0,
            search_slots: Arc::new(tokio::sync::Semaphore::new(search_turns())),
            background: Background::new("maillage-sync", crate::background::BACKGROUND),
            refusals: Arc::default(),
            fetch_slots: Default::default(),
            harvests: crate::harvest::Harvests::new(&config.harvests),
            config_path: config.path.clone(),
            snapshot: Default::default(),
            backing_up: Default::default(),
            metrics: Arc::default(),
            backup: config.backup.clone(),
        })
    }

    /// Where this node's files are, for its backups.
    fn backup_sources(&self) -> crate::backup::Sources {
        crate::backup::Sources {
            node_dir: self.dir.clone(),
            config: self.config_path.clone(),
            organisation: self.dir.join(maillage_record::ORGANISATION_ENVELOPE),
            key: self.key_file.clone(),
        }
    }

    /// Writes a backup into `dest` (blocking; see `backup::write`).
    pub fn backup(
        &self,
        dest: &std::path::Path,
        with_key: bool,
    ) -> Result<crate::backup::Written, crate::backup::BackupError> {
        let _one = self.backing_up.lock().unwrap_or_else(|p| p.into_inner());
        crate::backup::write(self, &self.backup_sources(), dest, with_key)
    }

    /// Request durations, which the servers' layers record.
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    /// The snapshots the node takes by itself (`[backup]`), if it does.
    pub fn snapshots(&self) -> Option<&crate::config::Backup> {
        self.backup.as_ref()
    }

    pub fn snapshot_state(&self) -> crate::backup::SnapshotState {
        self.snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_snapshot_state(&self, state: crate::backup::SnapshotState) {
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }

    /// A sync with `peer` succeeded, or the peer was removed: a restored
    /// node may sign again once every peer has.
    pub fn synced_with(&self, peer: &str) {
        crate::backup::synced(self, &self.dir, peer);
    }

    /// Called once at start: a node restored from a backup holds its
    /// signing until it has synced with its peers.
    pub fn hold_if_restored(&self) {
        crate::backup::hold_if_restored(self, &self.dir);
    }

    pub fn siren(&self) -> &Siren {
        &self.siren
    }

    /// The organisation's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    /// The TLS identity made from the organisation key.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The store, to read: it has no write method (see `ledger`).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The one writer, and what follows each write.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Signing as this node.
    pub fn author(&self) -> &Author {
        &self.author
    }

    /// Checks the store, then the search index against it (blocking: it
    /// reads everything; see `Store::check` and `Search::check`).
    pub fn check(&self) -> Result<crate::store::Report, StoreError> {
        let mut report = self.store.check()?;
        self.search.check(&self.store, &mut report)?;
        Ok(report)
    }

    pub fn search(&self) -> &Search {
        &self.search
    }

    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    pub fn peers(&self) -> &PeerTable {
        &self.peers
    }

    pub fn replication(&self) -> &Replication {
        &self.replication
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// Where the gRPC port listens, as bound.
    pub fn grpc_listen(&self) -> &str {
        &self.grpc_listen
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Low-priority threads for what peers send and fetch.
    pub fn background(&self) -> &Background {
        &self.background
    }

    /// The indexer that follows this node's store into its search index.
    pub fn indexer(&self) -> Indexer {
        Indexer {
            search: self.search.clone(),
            store: self.store.clone(),
            sirens: self.sirens.clone(),
            own: Own {
                key: self.public_key,
                siren: self.siren.clone(),
                name: self.name.clone(),
            },
            stopping: self.stopping(),
        }
    }

    /// Waits for a turn to search (held until the permit is dropped), at
    /// most `patience` if given: `None` when the wait ran out. Searches by
    /// the operator take none.
    pub async fn search_turn(
        &self,
        patience: Option<Duration>,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let turn = self.search_slots.clone().acquire_owned();
        let got = match patience {
            None => turn.await.ok(),
            Some(d) => tokio::time::timeout(d, turn)
                .await
                .ok()
                .and_then(Result::ok),
        };
        if got.is_none() {
            self.refusals.note(crate::refusals::Refusal::SearchBusy);
        }
        got
    }

    /// Waits for `peer`'s turn to read envelopes for its Fetch (held until
    /// they are sent).
    pub async fn fetch_turn(&self, peer: &str) -> tokio::sync::OwnedSemaphorePermit {
        let slots = self
            .fetch_slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(peer.to_string())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(FETCH_TURNS)))
            .clone();
        slots
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    /// The sources this node harvests by itself.
    pub fn harvests(&self) -> &crate::harvest::Harvests {
        &self.harvests
    }

    /// What was refused to callers, by reason.
    pub fn refusals(&self) -> &Arc<crate::refusals::Refusals> {
        &self.refusals
    }

    pub fn pinned_keys(&self) -> PinnedKeys {
        self.peers.pinned()
    }

    /// Whether `author` may publish its own records here.
    pub fn may_publish(&self, author: &PublicKey) -> bool {
        *author == self.public_key || self.publish_authors.contains(author)
    }

    /// Hands this node's key over to a new one (blocking; `maillage key
    /// rotate`): the catalogue is signed again by the new key and the
    /// former key signs the succession (`Author::hand_over`); then the new
    /// key replaces the key file (the former one is kept beside it, owner
    /// only, as `organisation.key.retired-<ms>`) and its Organisation record
    /// `organisation.envelope`. The node signs nothing more until it
    /// restarts, and then speaks with the new key.
    pub fn rotate_key(&self) -> Result<crate::author::HandedOver, RotateError> {
        let next = maillage_record::keyfile::generate()?;
        // The new key is on disk before anything is signed with it: a
        // crash in between leaves a spare file, never a catalogue signed by
        // a key nobody has.
        let staged = self.key_file.with_extension("key.next");
        let _ = std::fs::remove_file(&staged);
        maillage_record::keyfile::write_new(&staged, &next)?;
        let handed = self.author.hand_over(&next)?;
        let retired = self
            .key_file
            .with_extension(format!("key.retired-{}", maillage_record::now_ms()));
        let io = |e: std::io::Error, what: &std::path::Path| RotateError::Io {
            path: what.to_path_buf(),
            problem: e.to_string(),
        };
        std::fs::rename(&self.key_file, &retired).map_err(|e| io(e, &self.key_file))?;
        std::fs::rename(&staged, &self.key_file).map_err(|e| io(e, &staged))?;
        // The renames survive a crash only once the directory is synced.
        if let Some(dir) = self.key_file.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io(e, dir))?;
        }
        if let Some(org) = &handed.organisation {
            let path = self.dir.join(maillage_record::ORGANISATION_ENVELOPE);
            let tmp = path.with_extension("envelope.next");
            std::fs::write(&tmp, org.envelope_bytes()).map_err(|e| io(e, &tmp))?;
            std::fs::rename(&tmp, &path).map_err(|e| io(e, &path))?;
        }
        tracing::warn!(
            successor = %handed.successor,
            records = handed.records,
            retired = %retired.display(),
            "this node's key was handed over: restart the node to speak with the new key"
        );
        Ok(handed)
    }

    /// Moves pins and roots along successions and revocations (blocking:
    /// it writes): a peer whose key handed over is pinned with its
    /// successor, a revoked one is unpinned; a root's successor is added as
    /// a root (its records after the succession are its successor's).
    pub fn follow_keys(&self) -> Result<(), StoreError> {
        if !self.trust.has_key_events() {
            return Ok(());
        }
        let changes = self.peers.follow(&self.trust)?;
        for change in &changes {
            tracing::warn!("{change}");
        }
        if !changes.is_empty() {
            self.repinned.send_modify(|n| *n += 1);
        }
        let roots = self.trust.roots();
        for (root, info) in &roots {
            let latest = self.trust.latest(root);
            if latest != *root && !roots.iter().any(|(k, _)| *k == latest) {
                let note = format!("successor of {root} ({})", info.note);
                self.ledger.add_root(latest, &note)?;
                tracing::warn!(%root, successor = %latest, "a trust root handed its key over: its successor is trusted as a root");
            }
        }
        Ok(())
    }

    /// The viewer a pinned peer is: its SIREN (`speaks_for`), and whether
    /// it is a member now.
    pub fn peer_viewer(&self, key: &PublicKey) -> Viewer {
        self.sirens.viewer(key)
    }

    /// The SIREN `key` speaks for, and who vouches for it (`Sirens::of`).
    pub fn speaks_for(&self, key: &PublicKey) -> Option<(Siren, SirenSource)> {
        self.sirens.of(key)
    }

    /// What the index could not know when it was written, for a page of
    /// hits `viewer` asked for (blocking): collections listing a record the
    /// viewer may not see now are left out (`viewer::may_read`; the page's
    /// counts may still include them), and each hit says what trust says
    /// of its author now (`vouch`).
    /// `reader`, a signed-in agent or a read token (who, and for which
    /// organisation), gets the hits beyond the public written to the
    /// access log: a title is a read.
    pub fn finish_hits(
        &self,
        viewer: &Viewer,
        hits: &mut Vec<Hit>,
        reader: Option<(&str, &maillage_record::Siren)>,
    ) -> Result<(), StoreError> {
        let mut kept = Vec::with_capacity(hits.len());
        for mut hit in hits.drain(..) {
            if hit.kind == Kind::Collection && *viewer != Viewer::Operator {
                let Some(record) = self.store.record(&hit.id)? else {
                    continue;
                };
                if !viewer::may_read(&self.store, viewer, &hit.author, &record)? {
                    continue;
                }
            }
            self.vouch(&mut hit);
            kept.push(hit);
        }
        *hits = kept;
        if let Some((who, siren)) = reader {
            // Whether each is public, from the index: no store read.
            let reads: Vec<crate::access::Read> = hits
                .iter()
                .filter(|h| !h.public)
                .map(|h| crate::access::Read {
                    id: h.id.to_hex(),
                    author: h.author.to_hex(),
                    record_id: h.record_id.clone(),
                    kind: h.kind,
                })
                .collect();
            if !reads.is_empty() {
                self.note_reads(who, siren, crate::access::Via::Search, reads);
            }
        }
        Ok(())
    }

    /// What trust says of an author now: "own" (this node), "revoked",
    /// "succeeded" (its key was replaced), "root", "member" or "former".
    /// Whether `author`'s records may say whom they are published on
    /// behalf of: this node's own (its operator imports for its members), a
    /// trust root's, or a chef de file's or committee's by a current
    /// membership. A plain member speaks for itself only: what it claims to
    /// publish for another organisation stays its own.
    pub fn publishes_for_others(&self, author: &PublicKey) -> bool {
        use maillage_record::model::MembershipRole;
        *author == self.public_key
            || self.trust.is_root(author)
            || self
                .trust
                .endorsement(author, maillage_record::now_ms())
                .is_some_and(|e| {
                    matches!(
                        e.role,
                        MembershipRole::ChefDeFile | MembershipRole::Committee
                    )
                })
    }

    /// The access log, to be flushed before it is read.
    pub fn access_log(&self) -> &crate::access::AccessLog {
        &self.access
    }

    /// Read tokens for scripts.
    pub fn tokens(&self) -> &crate::tokens::Tokens {
        &self.tokens
    }

    /// Records agents proposed through the portal.
    pub fn proposals(&self) -> &crate::proposals::Proposals {
        &self.proposals
    }

    /// Notes that `who` (of `siren`) was shown records not public, `via`
    /// where (one batch, not synced: see docs/security.md).
    pub fn note_reads(
        &self,
        who: &str,
        siren: &maillage_record::Siren,
        via: crate::access::Via,
        reads: impl IntoIterator<Item = crate::access::Read>,
    ) {
        let reads: Vec<crate::access::Read> = reads.into_iter().collect();
        if reads.is_empty() {
            return;
        }
        self.access
            .note(crate::access::Request::new(who, siren.as_str(), via, reads));
    }

    /// What an agent of `siren`, signed in on the portal, may see.
    pub fn agent_viewer(&self, siren: maillage_record::Siren) -> crate::viewer::Viewer {
        self.sirens.agent(siren)
    }

    pub fn trust_of(&self, author: &PublicKey) -> &'static str {
        if *author == self.public_key {
            "own"
        } else if self.trust.compromised_since(author).is_some() {
            "revoked"
        } else if self.trust.retired_at(author).is_some() {
            "succeeded"
        } else if self.trust.is_root(author) {
            "root"
        } else if self.trust.is_member(author) {
            "member"
        } else {
            "former"
        }
    }

    /// Says on a search hit what trust says of its author now, and who
    /// vouches that it speaks for the SIREN the hit shows (the index knew
    /// neither when it was written).
    fn vouch(&self, hit: &mut Hit) {
        let author = &hit.author;
        hit.author_trust = self.trust_of(author);
        hit.siren_source = hit
            .organisation_siren
            .as_deref()
            .and_then(|shown| self.sirens.source_of(author, shown))
            .map_or("", SirenSource::as_str);
    }

    /// The envelopes among `ids` that are stored and that `viewer` may see,
    /// in the order asked, each with when the federation first saw it as
    /// far as this node knows (`FetchBatch.first_seen_ms`).
    pub fn visible_envelopes(
        &self,
        ids: &[RecordId],
        viewer: &Viewer,
    ) -> Result<Vec<(maillage_proto::v1::Envelope, i64)>, StoreError> {
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
        let attested = self.store.first_seen_attested(&visible)?;
        for (stored, attested) in self.store.get_many(&visible)?.into_iter().zip(attested) {
            let Some(stored) = stored else { continue };
            let first_seen =
                attested.map_or(stored.received_at_ms, |a| a.min(stored.received_at_ms));
            let corrupt = || StoreError::Corrupt {
                path: self.data_dir.display().to_string(),
                what: format!("stored envelope {} does not decode", stored.id),
            };
            let env = maillage_proto::v1::Envelope::decode(stored.bytes.as_slice())
                .map_err(|_| corrupt())?;
            // A collection is read only by who may see what it lists: its
            // kind is read without decoding the payload, which only a
            // collection needs.
            if wire::payload_kind(&env.payload) == Some(Kind::Collection) {
                let record = wire::decode_payload(&env.payload).map_err(|_| corrupt())?;
                let author = PublicKey::from_slice(&env.author).ok_or_else(corrupt)?;
                if !viewer::may_read(&self.store, viewer, &author, &record)? {
                    continue;
                }
            }
            out.push((env, first_seen));
        }
        Ok(out)
    }

    /// Changes when `follow_keys` moved a peer to another key, or
    /// unpinned it.
    pub fn repinned(&self) -> watch::Receiver<u64> {
        self.repinned.subscribe()
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
}
