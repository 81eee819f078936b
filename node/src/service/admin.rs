//! The Admin service, on the local Unix socket only: status, and signing with
//! the node's organisation key.

use std::path::Path;
use std::sync::Arc;

use maillage_proto::v1::admin_server::Admin;
use maillage_proto::v1::{
    Access, AccessLogRequest, AccessLogResponse, CheckRequest, CheckResponse, HarvestNowRequest,
    HarvestStatus, ImportOutcome, ImportRequest, ImportResponse, KeyRotateRequest,
    KeyRotateResponse, KindCount, Peer, PeerAddRequest, PeerListRequest, PeerListResponse,
    PeerProgress, PeerRemoveRequest, PeerRemoveResponse, ProposalDecideRequest,
    ProposalDecideResponse, ProposalListRequest, ProposalListResponse, PublishResponse,
    QuarantineDropRequest, QuarantineDropResponse, QuarantineListRequest, QuarantineListResponse,
    QuarantineReleaseRequest, QuarantineReleaseResponse, QuarantinedRecord, ReindexRequest,
    ReindexResponse, SignRequest, StatusRequest, StatusResponse, SyncProgress, SyncRequest,
    SyncResult, Token, TokenCreateRequest, TokenCreateResponse, TokenListRequest,
    TokenListResponse, TokenRevokeRequest, TokenRevokeResponse, TrustAddRequest, TrustAddResponse,
    TrustListRequest, TrustListResponse, TrustRemoveRequest, TrustRemoveResponse, TrustRoot,
    WithdrawMissingRequest, WithdrawMissingResponse,
};
use maillage_record::{RecordId, Siren, wire};
use tonic::{Request, Response, Status};

use super::{author_status, blocking, parse_key, publish::store_signed, store_status};
use crate::author::Outcome;
use crate::node::Node;
use crate::peers::{PeerError, PeerState};
use crate::replication::client::Progress;
use crate::replication::quarantine::Selection;
use crate::replication::{Replicator, SyncReport};
use crate::store::ConflictValue;
use std::collections::HashSet;
use std::sync::atomic::Ordering;

pub struct AdminService {
    node: Arc<Node>,
    replicator: Arc<Replicator>,
}

impl AdminService {
    pub fn new(node: Arc<Node>, replicator: Arc<Replicator>) -> Self {
        AdminService { node, replicator }
    }
}

fn peer_to_proto(node: &Node, p: &PeerState) -> Peer {
    let siren = p.public_key().and_then(|k| node.speaks_for(&k));
    Peer {
        name: p.name.clone(),
        url: p.url.clone(),
        key: p.public_key().map(|k| k.0.to_vec()).unwrap_or_default(),
        state: p.state().into(),
        last_sync_ms: p.last_sync_ms,
        records_received: p.records_received,
        records_sent: p.records_sent,
        last_error: p.last_error.clone(),
        consecutive_failures: p.consecutive_failures,
        subscribed: p.subscribed,
        version: p.version.clone(),
        added_at_ms: p.added_at_ms,
        siren: siren
            .as_ref()
            .map(|(s, _)| s.as_str().to_string())
            .unwrap_or_default(),
        siren_source: siren
            .map(|(_, from)| from.as_str().to_string())
            .unwrap_or_default(),
    }
}

fn sync_result(peer: &str, r: Result<SyncReport, String>) -> SyncResult {
    match r {
        Ok(r) => SyncResult {
            peer: peer.into(),
            ok: true,
            error: String::new(),
            need: r.need,
            have: r.have,
            stored: r.intake.stored,
            quarantined: r.intake.quarantined,
            rejected: r.intake.rejected,
            round_trips: r.round_trips,
            bytes_sent: r.bytes_sent,
            bytes_received: r.bytes_received,
            millis: r.elapsed.as_millis() as u64,
            wire_bytes_reconcile: r.wire_reconcile,
            wire_bytes_total: r.wire_total,
        },
        Err(error) => SyncResult {
            peer: peer.into(),
            ok: false,
            error,
            ..Default::default()
        },
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let node = &self.node;
        let (envelopes, last_seq, by_kind) = node.store().counts();
        let data_dir = node.data_dir().to_path_buf();
        let store_bytes = blocking(move || Ok(dir_size(&data_dir))).await?;
        let peers = node.peers().list();
        let cached = node.search().cache_stats();
        let store = node.store().clone();
        let conflicts = blocking(move || store.conflicts().map_err(store_status)).await?;
        let snapshot = node.snapshot_state();
        Ok(Response::new(StatusResponse {
            public_key: node.public_key().0.to_vec(),
            siren: node.siren().to_string(),
            organisation_name: node.name().to_string(),
            current_by_kind: by_kind
                .into_iter()
                .map(|(kind, count)| KindCount {
                    kind: kind.as_str().into(),
                    count,
                })
                .collect(),
            envelopes,
            last_seq,
            uptime_seconds: node.uptime().as_secs(),
            store_bytes,
            grpc_listen: node.grpc_listen().to_string(),
            node_version: env!("CARGO_PKG_VERSION").into(),
            peers: peers.len() as u32,
            peers_healthy: peers
                .iter()
                .filter(|p| p.last_sync_ms > 0 && p.consecutive_failures == 0)
                .count() as u32,
            trust_roots: node.trust().roots().len() as u32,
            quarantined: node.ledger().quarantine().len(),
            indexed_seq: node.search().indexed_seq(),
            search_rebuilding: node.search().rebuilding(),
            rebuilt_seq: node.search().rebuilt_seq(),
            backup_interval_s: node.snapshots().map_or(0, |b| b.interval.as_secs()),
            searches_cached: cached.page_hits,
            searches_computed: cached.page_misses,
            stats_cached: cached.stats_hits,
            stats_computed: cached.stats_misses,
            refusals: self
                .node
                .refusals()
                .counts()
                .into_iter()
                .map(|(why, n)| (why.to_string(), n))
                .collect(),
            harvests: node
                .harvests()
                .statuses()
                .iter()
                .map(|(cfg, run)| harvest_status(cfg, run))
                .collect(),
            restore_waiting: node.author().restore_waiting(),
            last_backup_ms: snapshot.last_ms,
            last_backup_dir: snapshot.last_dir,
            last_backup_error: snapshot.last_error,
            conflicts: conflicts
                .into_iter()
                .map(|c| maillage_proto::v1::Conflict {
                    author: c.author.0.to_vec(),
                    record_id: c.record_id,
                    version: c.version,
                    what: match c.what {
                        ConflictValue::SameVersion => "same_version",
                        ConflictValue::OtherKind => "other_kind",
                    }
                    .into(),
                })
                .collect(),
        }))
    }

    async fn sign_and_publish(
        &self,
        request: Request<SignRequest>,
    ) -> Result<Response<PublishResponse>, Status> {
        let req = request.into_inner();
        let payload = req
            .payload
            .ok_or_else(|| Status::invalid_argument("field `payload` is missing"))?;
        let draft = wire::payload_from_proto(payload)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let node = self.node.clone();
        // Signing reads the current version: off the runtime.
        let signed = blocking(move || {
            node.author()
                .sign(&req.author, draft)
                .map_err(author_status)
        })
        .await?;
        store_signed(&self.node, signed).await.map(Response::new)
    }

    async fn peer_add(&self, request: Request<PeerAddRequest>) -> Result<Response<Peer>, Status> {
        let req = request.into_inner();
        let key = parse_key(&req.key, "the peer key")?;
        let siren = match req.siren.trim() {
            "" => None,
            s => Some(
                Siren::parse(s)
                    .map_err(|e| Status::invalid_argument(format!("the peer's SIREN: {e}")))?,
            ),
        };
        let node = self.node.clone();
        let (name, url) = (req.name.clone(), req.url.clone());
        let state = blocking(move || {
            node.peers()
                .add(&name, &url, key, siren.as_ref(), node.public_key())
                .map_err(|e| match e {
                    PeerError::Store(e) => store_status(e),
                    PeerError::KeyTaken { .. } => Status::already_exists(e.to_string()),
                    e => Status::invalid_argument(e.to_string()),
                })
        })
        .await?;
        tracing::info!(
            peer = state.name,
            url = state.url,
            key = state.key,
            "peer pinned"
        );
        self.node.author().also_wait_for(&state.name);
        self.replicator.restart(&state.name);
        Ok(Response::new(peer_to_proto(&self.node, &state)))
    }

    async fn peer_remove(
        &self,
        request: Request<PeerRemoveRequest>,
    ) -> Result<Response<PeerRemoveResponse>, Status> {
        let name = request.into_inner().name;
        let node = self.node.clone();
        let n = name.clone();
        if !blocking(move || node.peers().remove(&n).map_err(store_status)).await? {
            return Err(Status::not_found(format!(
                "no peer named '{name}': `maillage peer list` shows them"
            )));
        }
        self.replicator.stop(&name);
        self.node.synced_with(&name);
        tracing::info!(peer = name, "peer unpinned");
        Ok(Response::new(PeerRemoveResponse {}))
    }

    async fn peer_list(
        &self,
        _: Request<PeerListRequest>,
    ) -> Result<Response<PeerListResponse>, Status> {
        let peers = self
            .node
            .peers()
            .list()
            .iter()
            .map(|p| peer_to_proto(&self.node, p))
            .collect();
        Ok(Response::new(PeerListResponse { peers }))
    }

    type SyncStream = tokio_stream::wrappers::ReceiverStream<Result<SyncProgress, Status>>;

    async fn sync(
        &self,
        request: Request<SyncRequest>,
    ) -> Result<Response<Self::SyncStream>, Status> {
        let name = request.into_inner().name;
        let names: Vec<String> = if name.is_empty() {
            self.node
                .peers()
                .list()
                .into_iter()
                .map(|p| p.name)
                .collect()
        } else if self.node.peers().get(&name).is_some() {
            vec![name]
        } else {
            return Err(Status::not_found(format!(
                "no peer named '{name}': `maillage peer list` shows them"
            )));
        };
        // Peers are independent: one slow peer must not hold up the others.
        let mut runs = tokio::task::JoinSet::new();
        let mut progress = Vec::new();
        for (i, name) in names.into_iter().enumerate() {
            let replicator = self.replicator.clone();
            let p = Arc::new(Progress::default());
            progress.push((name.clone(), p.clone()));
            runs.spawn(async move {
                let r = replicator.sync_now(&name, &p).await;
                (i, sync_result(&name, r))
            });
        }
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let snapshot = |progress: &[(String, Arc<Progress>)]| {
                progress
                    .iter()
                    .map(|(peer, p)| PeerProgress {
                        peer: peer.clone(),
                        need: p.need.load(Ordering::Relaxed),
                        received: p.received.load(Ordering::Relaxed),
                    })
                    .collect::<Vec<_>>()
            };
            let mut results = Vec::new();
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
            tick.tick().await;
            while !runs.is_empty() {
                tokio::select! {
                    done = runs.join_next() => {
                        if let Some(Ok(r)) = done {
                            results.push(r);
                        }
                    }
                    _ = tick.tick() => {
                        let msg = SyncProgress { peers: snapshot(&progress), results: vec![], done: false };
                        if tx.send(Ok(msg)).await.is_err() {
                            return; // the CLI went away; the syncs go on
                        }
                    }
                }
            }
            results.sort_by_key(|(i, _)| *i);
            let _ = tx
                .send(Ok(SyncProgress {
                    peers: snapshot(&progress),
                    results: results.into_iter().map(|(_, r)| r).collect(),
                    done: true,
                }))
                .await;
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
    }

    async fn trust_add(
        &self,
        request: Request<TrustAddRequest>,
    ) -> Result<Response<TrustAddResponse>, Status> {
        let req = request.into_inner();
        let key = parse_key(&req.key, "the root key")?;
        let node = self.node.clone();
        let released = blocking(move || {
            let (added, released) = node
                .ledger()
                .add_root(key, &req.note)
                .map_err(store_status)?;
            if added {
                tracing::info!(%key, released, "trust root added");
            }
            Ok(released)
        })
        .await?;
        Ok(Response::new(TrustAddResponse { released }))
    }

    async fn trust_remove(
        &self,
        request: Request<TrustRemoveRequest>,
    ) -> Result<Response<TrustRemoveResponse>, Status> {
        let key = parse_key(&request.into_inner().key, "the root key")?;
        let node = self.node.clone();
        if !blocking(move || node.ledger().remove_root(&key).map_err(store_status)).await? {
            return Err(Status::not_found(format!(
                "{key} is not a trust root: `maillage trust list` shows them"
            )));
        }
        tracing::info!(%key, "trust root removed");
        Ok(Response::new(TrustRemoveResponse {}))
    }

    async fn trust_list(
        &self,
        _: Request<TrustListRequest>,
    ) -> Result<Response<TrustListResponse>, Status> {
        let roots = self
            .node
            .trust()
            .roots()
            .into_iter()
            .map(|(key, info)| TrustRoot {
                key: key.0.to_vec(),
                note: info.note,
                added_at_ms: info.added_at_ms,
            })
            .collect();
        Ok(Response::new(TrustListResponse { roots }))
    }

    async fn quarantine_list(
        &self,
        request: Request<QuarantineListRequest>,
    ) -> Result<Response<QuarantineListResponse>, Status> {
        let limit = match request.into_inner().limit {
            0 => 100,
            n => n.min(10_000) as usize,
        };
        let node = self.node.clone();
        let records = blocking(move || {
            let entries = node
                .ledger()
                .quarantine()
                .list(limit)
                .map_err(store_status)?;
            Ok(entries
                .into_iter()
                .map(|q| QuarantinedRecord {
                    id: q.id.0.to_vec(),
                    author: q.author.0.to_vec(),
                    record_id: q.record_id.unwrap_or_default(),
                    kind: q.kind.map(|k| k.as_str().to_string()).unwrap_or_default(),
                    received_at_ms: q.received_at_ms,
                    peer: q.peer.unwrap_or_default(),
                    bytes: q.bytes,
                    reason: "author is not trusted: not a root (`maillage trust add-root`), and no accepted Membership covers the record's date (or it expired before the record was first seen)".into(),
                })
                .collect())
        })
        .await?;
        let q = self.node.ledger().quarantine();
        let (size, limits) = (q.size(), q.limits());
        Ok(Response::new(QuarantineListResponse {
            records,
            total: size.records,
            total_bytes: size.bytes,
            oldest_received_at_ms: size.oldest_ms,
            limit_records: limits.records,
            limit_bytes: limits.bytes,
            limit_per_peer: limits.per_peer,
            expiry_seconds: limits.expiry.as_secs(),
        }))
    }

    async fn quarantine_drop(
        &self,
        request: Request<QuarantineDropRequest>,
    ) -> Result<Response<QuarantineDropResponse>, Status> {
        let req = request.into_inner();
        let ids = req
            .ids
            .iter()
            .map(|b| {
                RecordId::from_slice(b).ok_or_else(|| {
                    Status::invalid_argument(format!(
                        "a record id is 32 bytes, found {} bytes",
                        b.len()
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let authors = req
            .authors
            .iter()
            .map(|b| parse_key(b, "an author"))
            .collect::<Result<Vec<_>, _>>()?;
        let which = Selection {
            ids,
            authors,
            received_before_ms: (req.received_before_ms > 0).then_some(req.received_before_ms),
            all: req.all,
        };
        if !which.all
            && which.ids.is_empty()
            && which.authors.is_empty()
            && which.received_before_ms.is_none()
        {
            return Err(Status::invalid_argument(
                "nothing to drop: name record ids or author keys, an age, or all",
            ));
        }
        let node = self.node.clone();
        let dropped =
            blocking(move || node.ledger().drop_quarantined(&which).map_err(store_status)).await?;
        tracing::info!(
            dropped,
            "dropped quarantined records at the operator's request"
        );
        Ok(Response::new(QuarantineDropResponse { dropped }))
    }

    async fn key_rotate(
        &self,
        _: Request<KeyRotateRequest>,
    ) -> Result<Response<KeyRotateResponse>, Status> {
        let node = self.node.clone();
        let handed = blocking(move || {
            node.rotate_key().map_err(|e| match e {
                crate::node::RotateError::Author(a) => author_status(a),
                other => Status::internal(other.to_string()),
            })
        })
        .await?;
        Ok(Response::new(KeyRotateResponse {
            successor: handed.successor.0.to_vec(),
            succession: handed.succession.0.to_vec(),
            records: handed.records,
        }))
    }

    async fn quarantine_release(
        &self,
        _: Request<QuarantineReleaseRequest>,
    ) -> Result<Response<QuarantineReleaseResponse>, Status> {
        let node = self.node.clone();
        let released = blocking(move || node.ledger().release().map_err(store_status)).await?;
        Ok(Response::new(QuarantineReleaseResponse {
            stored: released.stored,
            already: released.already,
            waiting: self.node.ledger().quarantine().len(),
        }))
    }

    async fn import(
        &self,
        request: Request<ImportRequest>,
    ) -> Result<Response<ImportResponse>, Status> {
        use maillage_proto::v1::import_outcome::Result as R;
        let items = request.into_inner().items;
        if items.len() > MAX_IMPORT_BATCH {
            return Err(Status::invalid_argument(format!(
                "{} items in one Import; at most {MAX_IMPORT_BATCH}: send smaller batches",
                items.len()
            )));
        }
        let lines: Vec<u64> = items.iter().map(|i| i.line).collect();
        // A draft that does not even convert is refused alone, like an invalid one.
        let mut drafts = Vec::with_capacity(items.len());
        let mut early: Vec<Option<ImportOutcome>> = Vec::with_capacity(items.len());
        for item in items {
            let converted = item
                .draft
                .ok_or_else(|| "field `draft` is missing".to_string())
                .and_then(|p| wire::payload_from_proto(p).map_err(|e| e.to_string()));
            match converted {
                Ok(r) => {
                    drafts.push(r);
                    early.push(None);
                }
                Err(e) => early.push(Some(ImportOutcome {
                    line: item.line,
                    result: R::Rejected as i32,
                    error: e,
                    ..Default::default()
                })),
            }
        }
        let record_ids: Vec<String> = drafts.iter().map(|d| d.record_id.clone()).collect();
        let node = self.node.clone();
        let outcomes = blocking(move || node.author().import(drafts).map_err(store_status)).await?;
        let mut done = outcomes.into_iter().zip(record_ids);
        let outcomes = early
            .into_iter()
            .zip(lines)
            .map(|(early, line)| {
                if let Some(o) = early {
                    return o;
                }
                let (outcome, record_id) = done.next().expect("one outcome per draft");
                let (result, version, error, id) = match outcome {
                    Outcome::Created { version, id } => {
                        (R::Created, version, String::new(), id.0.to_vec())
                    }
                    Outcome::Updated { version, id } => {
                        (R::Updated, version, String::new(), id.0.to_vec())
                    }
                    Outcome::Unchanged { version } => {
                        (R::Unchanged, version, String::new(), vec![])
                    }
                    Outcome::Rejected(e) => (R::Rejected, 0, e, vec![]),
                };
                ImportOutcome {
                    line,
                    record_id,
                    result: result as i32,
                    version,
                    error,
                    id,
                }
            })
            .collect();
        Ok(Response::new(ImportResponse { outcomes }))
    }

    async fn withdraw_missing(
        &self,
        request: Request<tonic::Streaming<WithdrawMissingRequest>>,
    ) -> Result<Response<WithdrawMissingResponse>, Status> {
        let mut stream = request.into_inner();
        let first = stream.message().await?.ok_or_else(|| {
            Status::invalid_argument("no message: the first names the source to withdraw from")
        })?;
        if first.source_format.is_empty() || first.source.is_empty() {
            return Err(Status::invalid_argument(
                "source_format and source are required: they name the import whose missing rows are withdrawn",
            ));
        }
        let (format, source) = (first.source_format, first.source);
        let mut keep: HashSet<String> = first.keep.into_iter().collect();
        while let Some(more) = stream.message().await? {
            keep.extend(more.keep);
            if keep.len() > MAX_KEEP {
                return Err(Status::invalid_argument(format!(
                    "more than {MAX_KEEP} record_ids to keep: withdraw from smaller sources"
                )));
            }
        }
        if keep.is_empty() {
            return Err(Status::invalid_argument(
                "keep is empty: withdrawing every record of a source is refused (an empty or truncated source file?)",
            ));
        }
        let node = self.node.clone();
        let withdrawn = blocking(move || {
            node.author()
                .withdraw_missing(&format, &source, &keep)
                .map_err(author_status)
        })
        .await?;
        if !withdrawn.is_empty() {
            tracing::info!(
                count = withdrawn.len(),
                "withdrew records that left their import source"
            );
        }
        let withdrawn_count = withdrawn.len() as u64;
        Ok(Response::new(WithdrawMissingResponse {
            withdrawn: withdrawn.into_iter().take(MAX_WITHDRAWN_SHOWN).collect(),
            withdrawn_count,
        }))
    }

    async fn token_create(
        &self,
        request: Request<TokenCreateRequest>,
    ) -> Result<Response<TokenCreateResponse>, Status> {
        let req = request.into_inner();
        let node = self.node.clone();
        let (token, info) = blocking(move || {
            node.tokens()
                .create(node.ledger(), &req.siren, &req.name, req.expires_at_ms)
                .map_err(token_status)
        })
        .await?;
        tracing::info!(id = %info.id, siren = %info.siren, name = %info.name, "read token created");
        Ok(Response::new(TokenCreateResponse {
            token,
            info: Some(token_message(&info)),
        }))
    }

    async fn members(
        &self,
        request: Request<maillage_proto::v1::MembersRequest>,
    ) -> Result<Response<maillage_proto::v1::MembersResponse>, Status> {
        use crate::members::MembersError;
        let territory = request.into_inner().territory;
        let node = self.node.clone();
        let found = blocking(move || {
            crate::members::members(
                &node,
                Some(territory.as_str()),
                &crate::viewer::Viewer::Operator,
            )
            .map_err(|e| match e {
                MembersError::BadRequest(why) => Status::invalid_argument(why),
                e => Status::internal(e.to_string()),
            })
        })
        .await?;
        Ok(Response::new(maillage_proto::v1::MembersResponse {
            scope_from: found.from.as_str().to_string(),
            scope: found.scope,
            members: found
                .members
                .into_iter()
                .map(|m| maillage_proto::v1::Member {
                    siren: m.siren,
                    name: m.name,
                    kind: m.kind.map_or("", |k| k.as_str()).to_string(),
                    runs_node: m.runs_node,
                    datasets: m.activity.datasets,
                    projects: m.activity.projects,
                    reuses: m.activity.reuses,
                    through_this_node: m.activity.through_own,
                    last_record_ms: m.activity.last_received_ms,
                })
                .collect(),
        }))
    }

    async fn aggregate_publish(
        &self,
        request: Request<maillage_proto::v1::AggregatePublishRequest>,
    ) -> Result<Response<maillage_proto::v1::AggregatePublishResponse>, Status> {
        let req = request.into_inner();
        let combine = req
            .combine
            .iter()
            .map(|id| {
                RecordId::from_slice(id).ok_or_else(|| {
                    Status::invalid_argument(format!(
                        "an aggregate to combine is named by its 32-byte id, not {} bytes",
                        id.len()
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let asked = crate::aggregate::Request {
            territory: req.territory,
            period: Some(req.period).filter(|p| !p.trim().is_empty()),
            combine,
        };
        let node = self.node.clone();
        // Computing reads the index and the store; signing, the current version.
        let signed = blocking(move || {
            let draft = crate::aggregate::prepare(&node, &asked).map_err(aggregate_status)?;
            node.author().sign(&[], draft).map_err(author_status)
        })
        .await?;
        let payload = wire::payload_to_proto(signed.record.record());
        let published = store_signed(&self.node, signed).await?;
        Ok(Response::new(
            maillage_proto::v1::AggregatePublishResponse {
                published: Some(published),
                payload: Some(payload),
            },
        ))
    }

    async fn aggregate_verify(
        &self,
        request: Request<maillage_proto::v1::AggregateVerifyRequest>,
    ) -> Result<Response<maillage_proto::v1::AggregateVerifyResponse>, Status> {
        let raw = request.into_inner().id;
        let id = RecordId::from_slice(&raw).ok_or_else(|| {
            Status::invalid_argument(format!("an id is 32 bytes, not {}", raw.len()))
        })?;
        let node = self.node.clone();
        let verdict =
            blocking(move || crate::aggregate::verify(&node, &id).map_err(aggregate_status))
                .await?;
        Ok(Response::new(maillage_proto::v1::AggregateVerifyResponse {
            payload: Some(wire::payload_to_proto(&verdict.record)),
            author: verdict.author.0.to_vec(),
            findings: verdict.findings.iter().map(ToString::to_string).collect(),
            inputs_here: verdict.inputs_here,
        }))
    }

    async fn backup(
        &self,
        request: Request<maillage_proto::v1::BackupRequest>,
    ) -> Result<Response<maillage_proto::v1::BackupResponse>, Status> {
        use crate::backup::BackupError;
        let req = request.into_inner();
        let dest = std::path::PathBuf::from(req.dir);
        let node = self.node.clone();
        let written = blocking(move || {
            node.backup(&dest, req.with_key).map_err(|e| match e {
                BackupError::Relative(_) => Status::invalid_argument(e.to_string()),
                BackupError::Exists(_) => Status::already_exists(e.to_string()),
                BackupError::Io { .. } => Status::failed_precondition(e.to_string()),
                BackupError::Store(e) => store_status(e),
            })
        })
        .await?;
        tracing::info!(dir = %written.dir.display(), bytes = written.bytes, with_key = written.with_key, "backup written");
        Ok(Response::new(maillage_proto::v1::BackupResponse {
            dir: written.dir.display().to_string(),
            last_seq: written.last_seq,
            envelopes: written.envelopes,
            bytes: written.bytes,
            millis: written.elapsed.as_millis() as u64,
            with_key: written.with_key,
        }))
    }

    async fn access_log(
        &self,
        request: Request<AccessLogRequest>,
    ) -> Result<Response<AccessLogResponse>, Status> {
        let req = request.into_inner();
        let siren = match req.siren.trim() {
            "" => None,
            s => Some(
                Siren::parse(s)
                    .map_err(|e| Status::invalid_argument(format!("'{s}' is not a SIREN: {e}")))?
                    .to_string(),
            ),
        };
        let limit = match req.limit {
            0 => 1_000,
            n => (n as usize).min(100_000),
        };
        let node = self.node.clone();
        let lines = blocking(move || {
            // What requests noted before this one is in the answer.
            node.access_log().flush();
            crate::access::AccessLog::read(node.store(), req.since_ms, siren.as_deref(), limit)
                .map_err(store_status)
        })
        .await?;
        let lines = lines
            .into_iter()
            .map(|a| Access {
                at_ms: a.at_ms,
                who: a.who,
                siren: a.siren,
                id: a.id,
                author: a.author,
                record_id: a.record_id,
                kind: a.kind,
                via: a.via,
            })
            .collect();
        Ok(Response::new(AccessLogResponse { lines }))
    }

    async fn proposal_list(
        &self,
        request: Request<ProposalListRequest>,
    ) -> Result<Response<ProposalListResponse>, Status> {
        let all = request.into_inner().all;
        let proposals = self
            .node
            .proposals()
            .list(all, None)
            .iter()
            .map(proposal_message)
            .collect();
        Ok(Response::new(ProposalListResponse { proposals }))
    }

    async fn proposal_decide(
        &self,
        request: Request<ProposalDecideRequest>,
    ) -> Result<Response<ProposalDecideResponse>, Status> {
        use crate::proposals::ProposalError;
        let req = request.into_inner();
        let status = |e: ProposalError| match e {
            ProposalError::NotFound(_) => Status::not_found(e.to_string()),
            ProposalError::Decided(..) | ProposalError::Deciding(_) => {
                Status::failed_precondition(e.to_string())
            }
            ProposalError::Store(e) => store_status(e),
            e => Status::invalid_argument(e.to_string()),
        };
        let (proposal, record) = if req.accept {
            let (p, published) =
                crate::proposals::accept(&self.node, req.id.trim(), "operator", None)
                    .await
                    .map_err(status)?;
            (p, published.id)
        } else {
            let node = self.node.clone();
            let p = blocking(move || {
                node.proposals()
                    .refuse(node.ledger(), req.id.trim(), None, "operator", &req.reason)
                    .map_err(status)
            })
            .await?;
            (p, Vec::new())
        };
        Ok(Response::new(ProposalDecideResponse {
            proposal: Some(proposal_message(&proposal)),
            record,
        }))
    }

    async fn token_list(
        &self,
        _: Request<TokenListRequest>,
    ) -> Result<Response<TokenListResponse>, Status> {
        let tokens = self
            .node
            .tokens()
            .list()
            .iter()
            .map(token_message)
            .collect();
        Ok(Response::new(TokenListResponse { tokens }))
    }

    async fn token_revoke(
        &self,
        request: Request<TokenRevokeRequest>,
    ) -> Result<Response<TokenRevokeResponse>, Status> {
        let id = request.into_inner().id;
        let node = self.node.clone();
        let revoked = blocking(move || {
            node.tokens()
                .revoke(node.ledger(), id.trim())
                .map_err(token_status)
        })
        .await?;
        tracing::info!(id = %revoked.id, siren = %revoked.siren, "read token revoked");
        Ok(Response::new(TokenRevokeResponse {}))
    }

    async fn harvest_now(
        &self,
        request: Request<HarvestNowRequest>,
    ) -> Result<Response<HarvestStatus>, Status> {
        let name = request.into_inner().name;
        let run = crate::harvest::Harvests::run_now(&self.node, &name)
            .await
            .map_err(|e| match e {
                crate::harvest::RunError::NotFound(_) => Status::not_found(e.to_string()),
                crate::harvest::RunError::Running(_) => Status::failed_precondition(e.to_string()),
            })?;
        let statuses = self.node.harvests().statuses();
        let (cfg, _) = statuses
            .iter()
            .find(|(c, _)| c.name == name)
            .expect("the harvest that ran is configured");
        Ok(Response::new(harvest_status(cfg, &run)))
    }

    async fn check(
        &self,
        _request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let (last_seq, indexed_seq) = (
            self.node.store().last_seq(),
            self.node.search().indexed_seq(),
        );
        let node = self.node.clone();
        let report = blocking(move || node.check().map_err(store_status)).await?;
        if report.is_sound() {
            tracing::info!("check: the store and the index are sound");
        } else {
            tracing::error!(problems = report.problem_count, first = %report.problems[0], "check found problems");
        }
        Ok(Response::new(CheckResponse {
            checked: report
                .checked
                .into_iter()
                .map(|(table, n)| (table.to_string(), n))
                .collect(),
            problems: report.problems,
            problem_count: report.problem_count,
            last_seq,
            indexed_seq,
        }))
    }

    async fn reindex(
        &self,
        _request: Request<ReindexRequest>,
    ) -> Result<Response<ReindexResponse>, Status> {
        self.node.search().request_reindex();
        let last_seq = self.node.store().last_seq();
        tracing::info!(last_seq, "search index rebuild asked for");
        Ok(Response::new(ReindexResponse { last_seq }))
    }
}

/// Drafts per Import call: a batch is signed and stored in one synced write.
const MAX_IMPORT_BATCH: usize = 1_000;
/// Record_ids a WithdrawMissing call may keep (about 2 GiB at most, held
/// while the call lasts: the operator's own call).
const MAX_KEEP: usize = 10_000_000;
/// Withdrawn record_ids a WithdrawMissing answer names (it counts them all).
const MAX_WITHDRAWN_SHOWN: usize = 1_000;

/// Bytes of the files under `dir`, recursively; what the store takes on disk.
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// A harvest and its last run, as `status` and HarvestNow answer them.
fn harvest_status(cfg: &crate::config::Harvest, run: &crate::harvest::Run) -> HarvestStatus {
    HarvestStatus {
        name: cfg.name.clone(),
        url: cfg.url.clone(),
        format: cfg.format.cli_name().to_string(),
        interval_s: cfg.interval.as_secs(),
        last_started_ms: run.started_ms,
        last_finished_ms: run.finished_ms,
        next_run_ms: run.next_ms,
        pages: run.pages,
        rows: run.rows,
        created: run.created,
        updated: run.updated,
        unchanged: run.unchanged,
        rows_with_warnings: run.rows_with_warnings,
        refused_rows: run.refused_rows,
        withdrawn: run.withdrawn,
        error: run.error.clone().unwrap_or_default(),
        running: run.running,
    }
}

fn token_message(t: &crate::tokens::Token) -> Token {
    Token {
        id: t.id.clone(),
        siren: t.siren.to_string(),
        name: t.name.clone(),
        created_at_ms: t.created_at_ms,
        expires_at_ms: t.expires_at_ms,
    }
}

fn token_status(e: crate::tokens::TokenError) -> Status {
    use crate::tokens::TokenError;
    match e {
        TokenError::Invalid(..) | TokenError::Full => Status::invalid_argument(e.to_string()),
        TokenError::NotFound(_) => Status::not_found(e.to_string()),
        TokenError::Store(e) => store_status(e),
    }
}

fn proposal_message(p: &crate::proposals::Proposal) -> maillage_proto::v1::Proposal {
    maillage_proto::v1::Proposal {
        id: p.id.clone(),
        kind: p.kind.clone(),
        title: p.title.clone(),
        record_id: p.record_id.clone(),
        siren: p.siren.to_string(),
        organisation: p.organisation.clone(),
        agent: p.agent.clone(),
        subject: p.subject.clone(),
        created_at_ms: p.created_at_ms,
        state: p.state.as_str().to_string(),
        decided_by: p.decided_by.clone(),
        decided_at_ms: p.decided_at_ms,
        reason: p.reason.clone(),
        document: p.document.to_string(),
        change: p.change.as_str().to_string(),
        base_version: p.base_version,
    }
}

fn aggregate_status(e: crate::aggregate::AggregateError) -> Status {
    use crate::aggregate::AggregateError as E;
    match e {
        E::BadRequest(_) | E::Combine(_) | E::NotAggregate(..) => {
            Status::invalid_argument(e.to_string())
        }
        E::Unknown(_) => Status::not_found(e.to_string()),
        E::IndexBehind(_) => Status::unavailable(e.to_string()),
        E::Store(e) => store_status(e),
        E::Search(e) => Status::internal(e.to_string()),
    }
}
