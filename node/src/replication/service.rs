//! The Replication service: what a pinned peer may ask of this node. Every
//! answer is filtered by what that peer may see (`Viewer::Peer`).

use std::sync::Arc;

use maillage_proto::v1::replication_server::Replication;
use maillage_proto::v1::{
    Announcement, FetchBatch, FetchRequest, ReconcileFrame, SubscribeRequest,
};
use maillage_record::{PublicKey, RecordId, Visibility};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::{FETCH_BATCH_BYTES, FETCH_BATCH_RECORDS, MAX_FETCH_IDS, Replicator};
use crate::accept::PeerInfo;
use crate::node::Node;
use crate::refusals::Refusal;
use crate::service::store_status;
use crate::viewer::Viewer;

pub struct ReplicationService {
    node: Arc<Node>,
    replicator: Arc<Replicator>,
}

impl ReplicationService {
    pub fn new(node: Arc<Node>, replicator: Arc<Replicator>) -> Self {
        ReplicationService { node, replicator }
    }

    /// The calling peer: it must have presented a key, and that key must still
    /// be pinned (the peer may have been removed since it connected).
    fn peer<T>(&self, request: &Request<T>) -> Result<(String, Viewer), Status> {
        let key: PublicKey = PeerInfo::of(request)
            .and_then(|p| p.key)
            .ok_or_else(|| {
                Status::unauthenticated(
                    "replication needs mutual TLS with a pinned key: this call came without a client certificate",
                )
            })?;
        let name = self.node.peers().name_of(&key).ok_or_else(|| {
            Status::permission_denied(format!("key {key} is no longer a pinned peer of this node"))
        })?;
        // It reached us, so it is up: if our own link to it is backing off, retry now.
        self.replicator.wake(&name);
        Ok((name, self.node.peer_viewer(&key)))
    }
}

type Stream<T> = ReceiverStream<Result<T, Status>>;

#[tonic::async_trait]
impl Replication for ReplicationService {
    type ReconcileStream = Stream<ReconcileFrame>;
    type FetchStream = Stream<FetchBatch>;
    type SubscribeStream = Stream<Announcement>;

    async fn reconcile(
        &self,
        request: Request<Streaming<ReconcileFrame>>,
    ) -> Result<Response<Self::ReconcileStream>, Status> {
        let (peer, viewer) = self.peer(&request)?;
        let mut frames = request.into_inner();
        let node = self.node.clone();
        let refusals = self.node.refusals().clone();
        let mut stopping = self.node.stopping();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let neg =
                tokio::task::spawn_blocking(move || super::negentropy_for(&node, &viewer)).await;
            let mut neg = match neg {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => {
                    let _ = tx
                        .send(Err(Status::internal(format!("reconciliation: {e}"))))
                        .await;
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Err(Status::internal(e.to_string()))).await;
                    return;
                }
            };
            let mut rounds = 0u32;
            loop {
                let got = tokio::select! {
                    f = tokio::time::timeout(super::FRAME_SILENCE, frames.message()) => Some(f),
                    _ = stopping.wait_for(|s| *s) => None,
                };
                let Some(got) = got else { return };
                let frame = match got {
                    Ok(Ok(Some(f))) => f,
                    // The client is done: nothing more to answer.
                    Ok(Ok(None)) => return,
                    // A frame that does not decode, or is over gRPC's limit:
                    // said, not ended as if all were well.
                    Ok(Err(e)) => {
                        tracing::info!(peer, error = %e, "reconciliation frame refused");
                        refusals.note(Refusal::ReconcileFrame);
                        let status = Status::invalid_argument(format!(
                            "reconciliation frame refused: {}",
                            e.message()
                        ));
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                    Err(_) => {
                        refusals.note(Refusal::ReconcileSilence);
                        let status = Status::deadline_exceeded(format!(
                            "no reconciliation frame for {} s: the call ends",
                            super::FRAME_SILENCE.as_secs()
                        ));
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                };
                rounds += 1;
                if frame.negentropy.len() > super::MAX_FRAME_BYTES {
                    refusals.note(Refusal::ReconcileFrame);
                    let _ = tx
                        .send(Err(Status::invalid_argument(format!(
                            "a reconciliation frame is at most {} bytes, this one is {}",
                            super::MAX_FRAME_BYTES,
                            frame.negentropy.len()
                        ))))
                        .await;
                    return;
                }
                if rounds > super::MAX_ROUNDS {
                    refusals.note(Refusal::ReconcileRounds);
                    let _ = tx
                        .send(Err(Status::resource_exhausted(format!(
                            "reconciliation did not converge in {} rounds: the call ends",
                            super::MAX_ROUNDS
                        ))))
                        .await;
                    return;
                }
                let answer = match neg.reconcile(&frame.negentropy) {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::info!(peer, error = %e, "malformed reconciliation frame");
                        refusals.note(Refusal::ReconcileFrame);
                        let _ = tx
                            .send(Err(Status::invalid_argument(format!(
                                "malformed negentropy frame: {e}"
                            ))))
                            .await;
                        return;
                    }
                };
                if tx
                    .send(Ok(ReconcileFrame { negentropy: answer }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn fetch(
        &self,
        request: Request<FetchRequest>,
    ) -> Result<Response<Self::FetchStream>, Status> {
        let (peer, viewer) = self.peer(&request)?;
        let ids = request.into_inner().ids;
        if ids.len() > MAX_FETCH_IDS {
            self.node.refusals().note(Refusal::FetchIds);
            return Err(Status::invalid_argument(format!(
                "{} ids asked; at most {MAX_FETCH_IDS} per Fetch",
                ids.len()
            )));
        }
        let mut ids = ids
            .iter()
            .map(|b| RecordId::from_slice(b))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Status::invalid_argument("every id must be 32 bytes"))?;
        // Each id answered once: the same id asked 4096 times must not cost
        // 4096 reads and sends.
        let mut once = std::collections::HashSet::with_capacity(ids.len());
        ids.retain(|id| once.insert(*id));
        let node = self.node.clone();
        let mut stopping = self.node.stopping();
        let (tx, rx) = mpsc::channel(4);
        // Reads happen off the runtime, a batch of ids at a time (one batched
        // store lookup); sends are
        // async and end with shutdown, so a peer that stops reading holds
        // neither a blocking thread nor the server.
        tokio::spawn(async move {
            let mut sent = 0u64;
            let mut pending = ids.into_iter().peekable();
            while pending.peek().is_some() {
                // The peer's turn, held until what was read is sent: the
                // envelopes a node holds in memory for a peer are bounded,
                // however many Fetch calls it makes at once.
                let turn = tokio::select! {
                    t = node.fetch_turn(&peer) => t,
                    _ = stopping.wait_for(|s| *s) => return,
                };
                let slice: Vec<RecordId> = pending.by_ref().take(FETCH_BATCH_RECORDS).collect();
                let (n, v) = (node.clone(), viewer.clone());
                // Serving a peer is background work too.
                let read = node
                    .background()
                    .spawn(move || {
                        let mut batches = vec![FetchBatch::default()];
                        let mut size = 0;
                        for (env, first_seen) in n.visible_envelopes(&slice, &v)? {
                            size += env.payload.len() + 128;
                            if size >= FETCH_BATCH_BYTES {
                                batches.push(FetchBatch::default());
                                size = 0;
                            }
                            let batch = batches.last_mut().expect("non-empty");
                            batch.envelopes.push(env);
                            batch.first_seen_ms.push(first_seen);
                        }
                        Ok::<_, crate::store::StoreError>(batches)
                    })
                    .await;
                let batches = match read {
                    Ok(Ok(b)) => b,
                    Ok(Err(e)) => {
                        let _ = tx.send(Err(store_status(e))).await;
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(Status::internal(e.to_string()))).await;
                        return;
                    }
                };
                for batch in batches.into_iter().filter(|b| !b.envelopes.is_empty()) {
                    let count = batch.envelopes.len() as u64;
                    tokio::select! {
                        r = tx.send(Ok(batch)) => if r.is_err() { return },
                        _ = stopping.wait_for(|s| *s) => return,
                    }
                    sent += count;
                }
                drop(turn);
            }
            node.peers().update(&peer, |p| p.records_sent += sent);
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let (peer, mut viewer) = self.peer(&request)?;
        let node = self.node.clone();
        let mut announcements = self.node.ledger().subscribe();
        let mut stopping = self.node.stopping();
        let (tx, rx) = mpsc::channel(16);
        tracing::debug!(peer, "peer subscribed");
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                let msg = tokio::select! {
                    got = announcements.recv() => match got {
                        Ok(items) => {
                            // Unpinned since it subscribed: the stream ends here.
                            if let Viewer::Peer { key, .. } = &viewer
                                && node.peers().name_of(key).is_none()
                            {
                                return;
                            }
                            // The peer's SIREN, or whether it is a member, may
                            // have changed since it subscribed (a membership
                            // arrived or was withdrawn, its operator pinned it
                            // again): look again (in memory; a root's
                            // Organisation record is read from the store).
                            if let Viewer::Peer { key, .. } = &viewer
                                && items.iter().any(|i| !matches!(i.visibility, Visibility::Public))
                            {
                                viewer = node.peer_viewer(key);
                            }
                            let ids: Vec<Vec<u8>> = items
                                .iter()
                                .filter(|i| viewer.may_see(&i.author, &i.visibility))
                                .map(|i| i.id.0.to_vec())
                                .collect();
                            tracing::debug!(peer, announced = ids.len(), of = items.len(), "announcing");
                            if ids.is_empty() {
                                continue;
                            }
                            Announcement { ids, lagged: false }
                        }
                        Err(RecvError::Lagged(_)) => Announcement { ids: vec![], lagged: true },
                        Err(RecvError::Closed) => return,
                    },
                    // Shutdown: end the stream so the server can stop.
                    _ = stopping.wait_for(|s| *s) => return,
                    _ = tx.closed() => return,
                };
                // A subscriber that stops reading must not hold up shutdown.
                tokio::select! {
                    sent = tx.send(Ok(msg)) => if sent.is_err() { return },
                    _ = stopping.wait_for(|s| *s) => return,
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::tests::start_node;

    /// A node holding `n` public datasets of about 40 KB each, `peers`
    /// pinned; the ids of the records.
    async fn node_with_records(
        dir: &std::path::Path,
        n: usize,
        peers: &[PublicKey],
    ) -> (Arc<Node>, Vec<RecordId>) {
        let node = start_node(dir).await;
        for (i, peer) in peers.iter().enumerate() {
            node.peers()
                .add(
                    &format!("p{i}"),
                    "https://127.0.0.1:9",
                    *peer,
                    None,
                    node.public_key(),
                )
                .unwrap();
        }
        let mut ids = Vec::new();
        for i in 0..n {
            let record = maillage_record::Record {
                record_id: format!("r{i}"),
                version: 1,
                issued_at_ms: 1_764_000_000_000,
                visibility: maillage_record::Visibility::Public,
                provenance: None,
                body: maillage_record::Body::Dataset(maillage_record::model::Dataset::new(
                    "R",
                    "é".repeat(20_000),
                )),
            };
            let signed = node.author().sign(&[], record).unwrap().record;
            node.ledger()
                .insert(&signed, crate::store::Admission::RequireNewer)
                .unwrap();
            ids.push(signed.id());
        }
        (node, ids)
    }

    fn fetch_request(peer: PublicKey, ids: &[RecordId]) -> Request<FetchRequest> {
        let mut request = Request::new(FetchRequest {
            ids: ids.iter().map(|id| id.0.to_vec()).collect(),
        });
        request
            .extensions_mut()
            .insert(PeerInfo::uncounted(Some(peer)));
        request
    }

    /// One id asked 4096 times is answered once: a Fetch is no amplifier.
    #[tokio::test]
    async fn an_id_asked_many_times_is_sent_once() {
        let dir = tempfile::tempdir().unwrap();
        let peer = PublicKey([9; 32]);
        let (node, ids) = node_with_records(dir.path(), 1, &[peer]).await;
        let service = ReplicationService::new(node.clone(), Replicator::start(node.clone()));
        let request = fetch_request(peer, &[ids[0]; MAX_FETCH_IDS]);
        let mut stream = service.fetch(request).await.unwrap().into_inner();
        let mut sent = 0;
        while let Some(batch) = tokio_stream::StreamExt::next(&mut stream).await {
            sent += batch.unwrap().envelopes.len();
        }
        assert_eq!(sent, 1);
        node.stop();
    }

    /// A peer that stops reading its Fetch answers holds at most
    /// `FETCH_TURNS` reads in memory: its next call waits for one of them to
    /// be sent, and another peer's calls are not held up at all.
    #[tokio::test]
    async fn a_peer_that_stops_reading_holds_up_only_its_own_fetches() {
        use std::time::Duration;
        use tokio_stream::StreamExt;
        let dir = tempfile::tempdir().unwrap();
        let (slow, other) = (PublicKey([9; 32]), PublicKey([10; 32]));
        // 8 MB: each answer is 8 batches of 1 MiB, more than a call's queue
        // holds, so a call that is not read keeps its turn.
        let (node, ids) = node_with_records(dir.path(), 200, &[slow, other]).await;
        let service = ReplicationService::new(node.clone(), Replicator::start(node.clone()));
        let mut unread = Vec::new();
        for _ in 0..crate::node::FETCH_TURNS {
            let stream = service.fetch(fetch_request(slow, &ids)).await.unwrap();
            unread.push(stream.into_inner());
        }
        // Both turns are taken (the reads are done, their answers queued).
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut third = service
            .fetch(fetch_request(slow, &ids[..1]))
            .await
            .unwrap()
            .into_inner();
        let waited = tokio::time::timeout(Duration::from_millis(500), third.next()).await;
        assert!(
            waited.is_err(),
            "a third read for the same peer waits its turn"
        );
        // Another peer is answered at once.
        let mut theirs = service
            .fetch(fetch_request(other, &ids[..1]))
            .await
            .unwrap()
            .into_inner();
        let batch = tokio::time::timeout(Duration::from_secs(5), theirs.next())
            .await
            .expect("another peer is not held up")
            .unwrap()
            .unwrap();
        assert_eq!(batch.envelopes.len(), 1);
        // Read one answer to its end: its turn goes to the third call.
        let mut first = unread.remove(0);
        let mut sent = 0;
        while let Some(batch) = first.next().await {
            sent += batch.unwrap().envelopes.len();
        }
        assert_eq!(sent, ids.len());
        let batch = tokio::time::timeout(Duration::from_secs(5), third.next())
            .await
            .expect("the third call has its turn once the first is sent")
            .unwrap()
            .unwrap();
        assert_eq!(batch.envelopes.len(), 1);
        node.stop();
    }
}
