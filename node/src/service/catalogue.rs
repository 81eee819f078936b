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
use crate::node::Node;
use crate::store::{ListFilter, Store, StoredEnvelope};
use crate::tls::PeerInfo;
use crate::viewer::{Viewer, may_read};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;

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
}

impl CatalogueService {
    pub fn new(node: Arc<Node>, port: Port) -> Self {
        CatalogueService { node, port }
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
        let store = self.node.store().clone();
        blocking(move || {
            let filter = ListFilter { kind, author };
            let after = (!req.page_token.is_empty()).then_some(req.page_token.as_slice());
            let mut entries = Vec::new();
            let mut failure = None;
            // Visibility and withdrawal are decided while scanning, so a page is
            // full of records the caller may see.
            let (_, next) = store
                .list_current(&filter, after, limit, |cur| {
                    if cur.kind == maillage_record::Kind::Tombstone && !req.include_withdrawn {
                        return false;
                    }
                    let loaded = store
                        .get(&cur.id)
                        .map_err(store_status)
                        .and_then(|s| {
                            s.ok_or_else(|| {
                                Status::internal(format!("indexed record {} is missing", cur.id))
                            })
                        })
                        .and_then(|s| load(&store, s));
                    let loaded = loaded.and_then(|l| {
                        let readable = may_read(&store, &viewer, &l.author, &l.record)
                            .map_err(store_status)?;
                        Ok((l, readable))
                    });
                    match loaded {
                        Ok((l, true)) => {
                            if entries.len() < limit {
                                entries.push(shown(l.entry, &viewer));
                            }
                            true
                        }
                        Ok(_) => false,
                        Err(e) => {
                            failure.get_or_insert(e);
                            false
                        }
                    }
                })
                .map_err(store_status)?;
            if let Some(e) = failure {
                return Err(e);
            }
            Ok(Response::new(ListResponse {
                entries,
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
        let store = self.node.store().clone();
        blocking(move || {
            let mut entries = Vec::new();
            for h in store
                .history(&author, &req.record_id)
                .map_err(store_status)?
            {
                let stored = store.get(&h.id).map_err(store_status)?.ok_or_else(|| {
                    Status::internal(format!("history names a missing record {}", h.id))
                })?;
                let loaded = load(&store, stored)?;
                if may_read(&store, &viewer, &loaded.author, &loaded.record)
                    .map_err(store_status)?
                {
                    entries.push(shown(loaded.entry, &viewer));
                }
            }
            if entries.is_empty() {
                return Err(Status::not_found(format!(
                    "no version of record_id '{}' by {author} on this node",
                    req.record_id
                )));
            }
            Ok(Response::new(HistoryResponse { entries }))
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
    use maillage_proto::v1::{HistoryRequest, SearchRequest};
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
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(all.entries[0].seq > 0);
        node.stop();
        indexer.join().unwrap();
    }
}
