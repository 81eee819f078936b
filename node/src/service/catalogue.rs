//! The Catalogue service: reading records, filtered by what the caller may see.

use std::sync::Arc;

use maillage_proto::v1::catalogue_server::Catalogue;
use maillage_proto::v1::{
    Envelope, GetRequest, HistoryRequest, HistoryResponse, ListRequest, ListResponse, RecordEntry,
    SearchRequest, SearchResponse, StatsRequest, StatsResponse,
};
use maillage_record::{PublicKey, Record, RecordId, wire};
use prost::Message;
use tonic::{Request, Response, Status};

use super::{blocking, parse_key, store_status};
use crate::accept::PeerInfo;
use crate::node::Node;
use crate::store::{ListFilter, Step, Store, StoreError, StoredEnvelope};
use crate::viewer::{Viewer, may_read};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;
/// Records (List) or versions (History) one call examines at most, whether
/// the caller may see them or not: what bounds the cost of a call by a
/// caller who may see few of the records a node holds.
pub const SCAN_BUDGET: usize = 10_000;
/// Envelope bytes a page holds at most (past the first entry), well under
/// gRPC's usual 4 MiB message limit: an envelope is at most about 260 KiB.
pub const PAGE_BYTES: usize = 2 << 20;
/// History versions read from the store at a time.
const HISTORY_BATCH: usize = 256;

/// A page being filled: what a List or History call has kept, and what it
/// has spent.
struct Page {
    limit: usize,
    budget: usize,
    entries: Vec<RecordEntry>,
    bytes: usize,
    examined: usize,
    /// A failure to answer with (a stored record that does not decode).
    failure: Option<Status>,
}

impl Page {
    fn new(limit: usize, budget: usize) -> Self {
        Page {
            limit,
            budget,
            entries: Vec::new(),
            bytes: 0,
            examined: 0,
            failure: None,
        }
    }

    /// Ends the scan on a failure the call answers with.
    fn fail(&mut self, status: Status) -> Step {
        self.failure = Some(status);
        Step::StopAfter
    }

    /// The page, or the failure that ended it.
    fn finish(&mut self) -> Result<Vec<RecordEntry>, Status> {
        match self.failure.take() {
            Some(status) => Err(status),
            None => Ok(std::mem::take(&mut self.entries)),
        }
    }

    /// One more entry examined (kept or not): the page ends once the budget
    /// is spent.
    fn examined(&mut self) -> Step {
        self.examined += 1;
        if self.examined >= self.budget {
            Step::StopAfter
        } else {
            Step::Next
        }
    }

    /// Offers the envelope `id` for the page: kept if `viewer` may read it
    /// and the page has room. Visibility is decided from the sync set
    /// first, so a record the viewer may not see is never read or decoded.
    fn offer(&mut self, store: &Store, viewer: &Viewer, id: RecordId) -> Result<Step, StoreError> {
        if *viewer != Viewer::Operator {
            let visible = store
                .sync_items_many(&[id])?
                .pop()
                .flatten()
                .is_some_and(|i| viewer.may_see(&i.author, &i.visibility));
            if !visible {
                return Ok(self.examined());
            }
        }
        let Some(stored) = store.get(&id)? else {
            return Ok(self.fail(Status::internal(format!("indexed record {id} is missing"))));
        };
        let size = stored.bytes.len();
        let loaded = match load(store, stored) {
            Ok(l) => l,
            Err(status) => return Ok(self.fail(status)),
        };
        if !may_read(store, viewer, &loaded.author, &loaded.record)? {
            return Ok(self.examined());
        }
        // A page that is full ends before this one, which the next begins with.
        if self.entries.len() == self.limit
            || (!self.entries.is_empty() && self.bytes + size > PAGE_BYTES)
        {
            return Ok(Step::StopBefore);
        }
        self.bytes += size;
        self.entries.push(shown(loaded.entry, viewer));
        Ok(self.examined())
    }
}

/// Where the service is served, which decides who its callers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The admin socket: the operator.
    Admin,
    /// The TLS port: a pinned peer (by its client certificate) or anyone.
    Public,
}

pub struct CatalogueService {
    node: Arc<Node>,
    port: Port,
    /// What one List or History call examines at most (`SCAN_BUDGET`).
    scan_budget: usize,
}

impl CatalogueService {
    pub fn new(node: Arc<Node>, port: Port) -> Self {
        CatalogueService {
            node,
            port,
            scan_budget: SCAN_BUDGET,
        }
    }

    fn viewer<T>(&self, request: &Request<T>) -> Viewer {
        match self.port {
            Port::Admin => Viewer::Operator,
            // A peer removed since it connected is anonymous from now on.
            Port::Public => match PeerInfo::of(request).and_then(|p| p.key) {
                Some(key) if self.node.peers().name_of(&key).is_some() => {
                    self.node.peer_viewer(&key)
                }
                _ => Viewer::Anonymous,
            },
        }
    }
}

/// A stored envelope decoded far enough to apply visibility.
struct Loaded {
    entry: RecordEntry,
    author: PublicKey,
    record: Record,
}

/// What a caller other than the operator is shown of an entry: its
/// sequence number would count records it may not see.
fn shown(mut entry: RecordEntry, viewer: &Viewer) -> RecordEntry {
    if *viewer != Viewer::Operator {
        entry.seq = 0;
    }
    entry
}

/// Loads an envelope and its record. Stored envelopes were verified before they
/// were written, so this decodes without checking the signature again.
fn load(store: &Store, stored: StoredEnvelope) -> Result<Loaded, Status> {
    let envelope = Envelope::decode(stored.bytes.as_slice()).map_err(|e| {
        Status::internal(format!(
            "stored envelope {} does not decode: {e}",
            stored.id
        ))
    })?;
    let record = wire::decode_payload(&envelope.payload).map_err(|e| {
        Status::internal(format!("stored record {} does not decode: {e}", stored.id))
    })?;
    let author = PublicKey::from_slice(&envelope.author)
        .ok_or_else(|| Status::internal(format!("stored record {} has a bad author", stored.id)))?;
    let current = store
        .current(&author, &record.record_id)
        .map_err(store_status)?
        .is_some_and(|c| c.id == stored.id);
    Ok(Loaded {
        entry: RecordEntry {
            id: stored.id.0.to_vec(),
            envelope: Some(envelope),
            seq: stored.seq,
            received_at_ms: stored.received_at_ms,
            current,
        },
        author,
        record,
    })
}

#[tonic::async_trait]
impl Catalogue for CatalogueService {
    async fn get(&self, request: Request<GetRequest>) -> Result<Response<RecordEntry>, Status> {
        let viewer = self.viewer(&request);
        let req = request.into_inner();
        let id = RecordId::from_slice(&req.id).ok_or_else(|| {
            Status::invalid_argument(format!(
                "record id must be 32 bytes, found {}",
                req.id.len()
            ))
        })?;
        let store = self.node.store().clone();
        blocking(move || {
            let not_found = || Status::not_found(format!("no record {id} on this node"));
            let stored = store
                .get(&id)
                .map_err(store_status)?
                .ok_or_else(not_found)?;
            let loaded = load(&store, stored)?;
            if !may_read(&store, &viewer, &loaded.author, &loaded.record).map_err(store_status)? {
                return Err(not_found());
            }
            Ok(Response::new(shown(loaded.entry, &viewer)))
        })
        .await
    }

    async fn list(&self, request: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        let viewer = self.viewer(&request);
        let req = request.into_inner();
        let kind =
            wire::kind_from_proto(req.kind).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let author = if req.author.is_empty() {
            None
        } else {
            Some(parse_key(&req.author, "author")?)
        };
        if let Some(a) = author
            && !req.page_token.is_empty()
            && !req.page_token.starts_with(&a.0)
        {
            return Err(Status::invalid_argument(
                "page token does not belong to this author filter",
            ));
        }
        let limit = match req.limit as usize {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        };
        let _turn = self.read_turn().await?;
        let store = self.node.store().clone();
        let budget = self.scan_budget;
        blocking(move || {
            // The kind is filtered here rather than by the scan, so that
            // records of other kinds count against the budget too.
            let filter = ListFilter { kind: None, author };
            let after = (!req.page_token.is_empty()).then_some(req.page_token.as_slice());
            let mut page = Page::new(limit, budget);
            // Visibility and withdrawal are decided while scanning, so a page is
            // full of records the caller may see, unless the scan ran out of
            // its budget first.
            let next = store
                .scan_current(&filter, after, |cur| {
                    let withdrawn =
                        cur.kind == maillage_record::Kind::Tombstone && !req.include_withdrawn;
                    if withdrawn || kind.is_some_and(|k| k != cur.kind) {
                        return Ok(page.examined());
                    }
                    page.offer(&store, &viewer, cur.id)
                })
                .map_err(store_status)?;
            Ok(Response::new(ListResponse {
                entries: page.finish()?,
                next_page_token: next.unwrap_or_default(),
            }))
        })
        .await
    }

    async fn history(
        &self,
        request: Request<HistoryRequest>,
    ) -> Result<Response<HistoryResponse>, Status> {
        let viewer = self.viewer(&request);
        let req = request.into_inner();
        let author = parse_key(&req.author, "author")?;
        // A record_id that no record can have is refused as such: looked up,
        // it could match another record's keys.
        maillage_record::model::validate_record_id(&req.record_id)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let after = match req.page_token.len() {
            0 => None,
            8 => Some(u64::from_be_bytes(
                req.page_token[..].try_into().expect("8 bytes"),
            )),
            n => {
                return Err(Status::invalid_argument(format!(
                    "page token must be 8 bytes (from a previous HistoryResponse), found {n}"
                )));
            }
        };
        let limit = match req.limit as usize {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        };
        let _turn = self.read_turn().await?;
        let store = self.node.store().clone();
        let budget = self.scan_budget;
        blocking(move || {
            let mut page = Page::new(limit, budget);
            let mut from = after;
            let mut next = None;
            // Versions the caller may not see are skipped while reading, a
            // batch at a time, so that a page it is given holds at least one
            // version it may see: otherwise an empty page would tell it that
            // versions it may not see exist.
            'scan: loop {
                let (versions, more) = store
                    .history_page(&author, &req.record_id, from, HISTORY_BATCH)
                    .map_err(store_status)?;
                for h in &versions {
                    match page.offer(&store, &viewer, h.id).map_err(store_status)? {
                        Step::Next => from = Some(h.version),
                        Step::StopAfter => {
                            next = Some(h.version);
                            break 'scan;
                        }
                        Step::StopBefore => {
                            next = from;
                            break 'scan;
                        }
                    }
                }
                if !more {
                    break;
                }
            }
            let entries = page.finish()?;
            if entries.is_empty() {
                return Err(Status::not_found(format!(
                    "no version of record_id '{}' by {author} on this node",
                    req.record_id
                )));
            }
            Ok(Response::new(HistoryResponse {
                entries,
                next_page_token: next.map(|v| v.to_be_bytes().to_vec()).unwrap_or_default(),
            }))
        })
        .await
    }

    async fn search(
        &self,
        request: Request<SearchRequest>,
    ) -> Result<Response<SearchResponse>, Status> {
        let viewer = self.viewer(&request);
        let node = self.node.clone();
        let req = request.into_inner();
        let _turn = self.search_turn().await?;
        blocking(move || super::search::search(&node, req, &viewer).map(Response::new)).await
    }

    async fn stats(
        &self,
        request: Request<StatsRequest>,
    ) -> Result<Response<StatsResponse>, Status> {
        let viewer = self.viewer(&request);
        let node = self.node.clone();
        let req = request.into_inner();
        let _turn = self.search_turn().await?;
        blocking(move || super::search::stats(&node, req, &viewer).map(Response::new)).await
    }
}

impl CatalogueService {
    /// A turn to read on the public port (List, History): the same turns
    /// as searches, since a page costs about as much as one.
    async fn read_turn(&self) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, Status> {
        self.search_turn().await
    }

    /// A turn to search on the public port: a caller waits a little, then
    /// is told to come back, so that a flood of searches queues no longer
    /// than that. The operator's searches (admin socket) take no turn.
    async fn search_turn(&self) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, Status> {
        match self.port {
            Port::Admin => Ok(None),
            Port::Public => self
                .node
                .search_turn(Some(PUBLIC_SEARCH_PATIENCE))
                .await
                .map(Some)
                .ok_or_else(|| {
                    Status::resource_exhausted("too many searches at once: retry in a moment")
                }),
        }
    }
}

/// How long a search on the public port waits for its turn.
const PUBLIC_SEARCH_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::tests::start_node;
    use maillage_proto::v1::{HistoryRequest, ListRequest, SearchRequest};
    use maillage_record::model::Dataset;
    use maillage_record::{Body, Siren, Visibility};

    /// What an anonymous caller learns: nothing of a record it may not see,
    /// whether it exists or not (a record_id that no record can have is
    /// refused alike, and no answer carries a server path), and no sequence
    /// number, which would count the records it may not see.
    #[tokio::test]
    async fn anonymous_callers_learn_nothing_of_what_they_may_not_see() {
        let dir = tempfile::tempdir().unwrap();
        let node = start_node(dir.path()).await;
        let restricted = Record {
            record_id: "x".into(),
            version: 1,
            issued_at_ms: 1_764_000_000_000,
            visibility: Visibility::Restricted {
                audience: vec![Siren::parse("213101496").unwrap()],
            },
            provenance: None,
            body: Body::Dataset(Dataset::new("Secret", "Réservé à Colomiers")),
        };
        let public = Record {
            record_id: "p".into(),
            visibility: Visibility::Public,
            body: Body::Dataset(Dataset::new("Ouvert", "Pour tous")),
            ..restricted.clone()
        };
        for r in [restricted, public] {
            let signed = node.author().sign(&[], r).unwrap().record;
            node.ledger()
                .insert(&signed, crate::store::Admission::RequireNewer)
                .unwrap();
        }
        let service = CatalogueService::new(node.clone(), Port::Public);
        let history = |record_id: &str| {
            service.history(Request::new(HistoryRequest {
                author: node.public_key().0.to_vec(),
                record_id: record_id.into(),
                ..Default::default()
            }))
        };
        // "x\0" once matched record x's keys: INTERNAL, "corrupt", and the
        // store's path, for x only.
        let (exists, absent) = (
            history("x\0").await.unwrap_err(),
            history("y\0").await.unwrap_err(),
        );
        assert_eq!(exists.code(), tonic::Code::InvalidArgument, "{exists:?}");
        assert_eq!(exists.code(), absent.code());
        assert!(!exists.message().contains(&dir.path().display().to_string()));
        // The restricted record is not found, as one that does not exist.
        let (hidden, none) = (
            history("x").await.unwrap_err(),
            history("y").await.unwrap_err(),
        );
        assert_eq!(
            (hidden.code(), none.code()),
            (tonic::Code::NotFound, tonic::Code::NotFound)
        );
        // The public one is shown without its sequence number.
        let shown = history("p").await.unwrap().into_inner();
        assert_eq!(shown.entries.len(), 1);
        assert_eq!(shown.entries[0].seq, 0);
        // Nor do searches say how far the store goes.
        let indexer = node.indexer().spawn();
        crate::search::tests::indexed(&node).await;
        let found = service
            .search(Request::new(SearchRequest {
                query: "ouvert".into(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(found.total, 1);
        assert_eq!((found.indexed_seq, found.stored_seq), (0, 0));
        // The operator still sees them.
        let admin = CatalogueService::new(node.clone(), Port::Admin);
        let all = admin
            .history(Request::new(HistoryRequest {
                author: node.public_key().0.to_vec(),
                record_id: "x".into(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(all.entries[0].seq > 0);
        node.stop();
        indexer.join().unwrap();
    }

    fn dataset(record_id: &str, visibility: Visibility, words: usize) -> Record {
        let mut d = Dataset::new("Jeu", "Données");
        // A rich row: each keyword is 500 two-byte characters.
        d.keywords = vec!["é".repeat(500); words];
        Record {
            record_id: record_id.into(),
            version: 1,
            issued_at_ms: 1_764_000_000_000,
            visibility,
            provenance: None,
            body: Body::Dataset(d),
        }
    }

    fn store_all(node: &Node, records: Vec<Record>) {
        for r in records {
            let signed = node.author().sign(&[], r).unwrap().record;
            node.ledger()
                .insert(&signed, crate::store::Admission::RequireNewer)
                .unwrap();
        }
    }

    /// Every page of a List, following the tokens.
    async fn pages(service: &CatalogueService, limit: u32) -> Vec<ListResponse> {
        let mut out = Vec::new();
        let mut page_token = Vec::new();
        loop {
            let page = service
                .list(Request::new(ListRequest {
                    limit,
                    page_token,
                    ..Default::default()
                }))
                .await
                .unwrap()
                .into_inner();
            page_token = page.next_page_token.clone();
            out.push(page);
            if page_token.is_empty() {
                return out;
            }
        }
    }

    /// An anonymous List on a node of mostly federation records examines
    /// at most its budget of records per call, and says where to go on.
    #[tokio::test]
    async fn a_list_examines_at_most_its_budget() {
        let dir = tempfile::tempdir().unwrap();
        let node = start_node(dir.path()).await;
        let mut records: Vec<Record> = (0..30)
            .map(|i| dataset(&format!("f{i:02}"), Visibility::Federation, 0))
            .collect();
        records.push(dataset("z1", Visibility::Public, 0));
        records.push(dataset("z2", Visibility::Public, 0));
        store_all(&node, records);
        let mut anonymous = CatalogueService::new(node.clone(), Port::Public);
        anonymous.scan_budget = 10;
        let listed = pages(&anonymous, 100).await;
        // 30 hidden records, 10 examined per call: three pages say nothing
        // but where to go on, the fourth holds both public records.
        let sizes: Vec<usize> = listed.iter().map(|p| p.entries.len()).collect();
        assert_eq!(sizes, [0, 0, 0, 2], "entries per page");
        // Records of another kind than asked count against the budget too.
        let projects = anonymous
            .list(Request::new(ListRequest {
                kind: maillage_record::wire::kind_to_proto(maillage_record::Kind::Project) as i32,
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(projects.entries.is_empty());
        assert!(
            !projects.next_page_token.is_empty(),
            "the whole store was scanned"
        );
        // The operator's List has the same budget and sees everything.
        let mut operator = CatalogueService::new(node.clone(), Port::Admin);
        operator.scan_budget = 10;
        let seen: usize = pages(&operator, 100)
            .await
            .iter()
            .map(|p| p.entries.len())
            .sum();
        assert_eq!(seen, 32);
        // A page of `limit` still ends where the next begins.
        let seen: Vec<String> = pages(&CatalogueService::new(node.clone(), Port::Admin), 7)
            .await
            .iter()
            .flat_map(|p| p.entries.iter())
            .map(|e| {
                maillage_record::wire::decode_payload(&e.envelope.as_ref().unwrap().payload)
                    .unwrap()
                    .record_id
            })
            .collect();
        assert_eq!(seen.len(), 32);
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "in order, once each");
        node.stop();
    }

    /// A page holds at most about 2 MiB of envelopes, whatever its limit,
    /// so that it fits in any client's 4 MiB message limit; History too.
    #[tokio::test]
    async fn pages_of_rich_records_stay_small() {
        let dir = tempfile::tempdir().unwrap();
        let node = start_node(dir.path()).await;
        // 24 records of about 100 KB: 2.4 MB in all.
        let records = (0..24)
            .map(|i| dataset(&format!("r{i:02}"), Visibility::Public, 100))
            .collect();
        store_all(&node, records);
        let anonymous = CatalogueService::new(node.clone(), Port::Public);
        let listed = pages(&anonymous, 1000).await;
        assert!(listed.len() >= 2, "{} page(s)", listed.len());
        for p in &listed {
            assert!(
                p.encoded_len() <= PAGE_BYTES + 300_000,
                "{}",
                p.encoded_len()
            );
        }
        assert_eq!(listed.iter().map(|p| p.entries.len()).sum::<usize>(), 24);
        // Versions of one record, paged alike.
        let mut versions = Vec::new();
        for v in 2..=25 {
            let mut r = dataset("r00", Visibility::Public, 100);
            r.version = v;
            versions.push(r);
        }
        store_all(&node, versions);
        let mut page_token = Vec::new();
        let mut seen = Vec::new();
        loop {
            let page = anonymous
                .history(Request::new(HistoryRequest {
                    author: node.public_key().0.to_vec(),
                    record_id: "r00".into(),
                    limit: 10,
                    page_token,
                }))
                .await
                .unwrap()
                .into_inner();
            assert!(page.entries.len() <= 10);
            assert!(page.encoded_len() <= PAGE_BYTES + 300_000);
            seen.extend(page.entries.iter().map(|e| e.current));
            page_token = page.next_page_token;
            if page_token.is_empty() {
                break;
            }
        }
        assert_eq!(seen.len(), 25, "every version once");
        assert_eq!(seen.iter().filter(|c| **c).count(), 1);
        assert!(seen[24], "the last is current");
        node.stop();
    }

    /// History skips the versions a caller may not see without telling it
    /// they exist: a record whose first versions were restricted shows its
    /// public ones on the first page, and one it may see no version of is
    /// not found.
    #[tokio::test]
    async fn history_hides_versions_the_caller_may_not_see() {
        let dir = tempfile::tempdir().unwrap();
        let node = start_node(dir.path()).await;
        let restricted = Visibility::Restricted {
            audience: vec![Siren::parse("213101496").unwrap()],
        };
        let mut versions = Vec::new();
        for v in 1..=20 {
            let mut r = dataset(
                "h",
                if v <= 15 {
                    restricted.clone()
                } else {
                    Visibility::Public
                },
                0,
            );
            r.version = v;
            versions.push(r);
        }
        store_all(&node, versions);
        let history = |budget| {
            let mut anonymous = CatalogueService::new(node.clone(), Port::Public);
            anonymous.scan_budget = budget;
            let request = Request::new(HistoryRequest {
                author: node.public_key().0.to_vec(),
                record_id: "h".into(),
                limit: 100,
                page_token: vec![],
            });
            async move { anonymous.history(request).await }
        };
        // 15 hidden versions are more than the budget: not found, as a
        // record that does not exist, rather than an empty page.
        assert_eq!(history(8).await.unwrap_err().code(), tonic::Code::NotFound);
        let page = history(100).await.unwrap().into_inner();
        let versions: Vec<u64> = page
            .entries
            .iter()
            .map(|e| {
                maillage_record::wire::decode_payload(&e.envelope.as_ref().unwrap().payload)
                    .unwrap()
                    .version
            })
            .collect();
        assert_eq!(versions, [16, 17, 18, 19, 20]);
        node.stop();
    }
}
