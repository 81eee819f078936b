//! This node's side of a link to one peer: reconcile, fetch what we lack,
//! then follow the peer's announcements; on failure, back off and retry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use maillage_proto::v1::replication_client::ReplicationClient;
use maillage_proto::v1::{Announcement, FetchRequest, ReconcileFrame, SubscribeRequest};
use maillage_record::{PublicKey, RecordId};
use negentropy::Id;
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;

use super::MAX_FETCH_IDS;
use super::intake::{Intake, intake_blocking};
use crate::node::Node;
use crate::peers::PeerState;
use crate::tls;

/// What one reconciliation did.
#[derive(Debug, Default, Clone)]
pub struct SyncReport {
    /// Ids the peer had that we lacked.
    pub need: u64,
    /// Ids we have that the peer lacked (it fetches them when it syncs with us).
    pub have: u64,
    pub intake: Intake,
    pub round_trips: u32,
    /// Negentropy frame bytes, each way.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Bytes on the wire (TCP payload: TLS, HTTP/2 and gRPC framing included)
    /// until reconciliation ended, connection set-up included; and in all.
    pub wire_reconcile: u64,
    pub wire_total: u64,
    pub elapsed: Duration,
    /// Time until reconciliation ended (the fetch follows).
    pub reconcile_elapsed: Duration,
}

/// How far a sync is, for `maillage sync`'s progress bar.
#[derive(Debug, Default)]
pub struct Progress {
    pub need: std::sync::atomic::AtomicU64,
    pub received: std::sync::atomic::AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("{0}")]
    Rpc(String),
    #[error("reconciliation failed: {0}")]
    Negentropy(String),
    #[error("peer ended the reconciliation before it was complete")]
    Truncated,
    #[error(
        "{url} said nothing for {secs} s while this node waited for {waited}: given up, to be tried again later"
    )]
    Silent {
        url: String,
        secs: u64,
        waited: &'static str,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// How long a peer may stay silent in the middle of a sync before the sync
/// is given up (and tried again with the usual backoff). HTTP/2 keepalives
/// notice a peer that is gone; this catches one that is there but stuck, so
/// that `maillage sync` always ends. A reconciliation frame or a fetch batch
/// takes well under a second from a healthy peer, even a loaded one.
const PEER_SILENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// Awaits the peer's next answer (`waited` says what it is), at most
/// `PEER_SILENCE`.
async fn answer<T>(
    url: &str,
    waited: &'static str,
    call: impl std::future::Future<Output = Result<T, tonic::Status>>,
) -> Result<T, SyncError> {
    match tokio::time::timeout(PEER_SILENCE, call).await {
        Ok(answered) => answered.map_err(|s| rpc_error(url, s)),
        Err(_) => Err(SyncError::Silent {
            url: url.to_string(),
            secs: PEER_SILENCE.as_secs(),
            waited,
        }),
    }
}

/// Turns a gRPC failure into what an operator can act on.
fn rpc_error(url: &str, s: tonic::Status) -> SyncError {
    use tonic::Code;
    let text = match s.code() {
        // A TLS refusal of our key surfaces in tonic as Cancelled or Unavailable.
        Code::Unavailable | Code::Cancelled | Code::Unknown => format!(
            "cannot reach {url} ({}): is the peer running, and is this node's key pinned there \
             (`maillage peer add` on the peer, with this node's `maillage status` key)?",
            s.message()
        ),
        Code::Unauthenticated | Code::PermissionDenied => {
            format!("{url} refused us: {}", s.message())
        }
        _ => format!("{url}: {}: {}", s.code(), s.message()),
    };
    SyncError::Rpc(text)
}

/// A Replication client for `peer`, counting its traffic into `counters`.
pub fn client(
    peer: &PeerState,
    node: &Node,
    counters: Arc<tls::WireCounters>,
) -> Result<(ReplicationClient<Channel>, PublicKey), SyncError> {
    let key = peer
        .public_key()
        .ok_or_else(|| SyncError::Rpc(format!("peer {} has an unreadable key", peer.name)))?;
    let channel = tls::channel(&peer.url, node.identity(), key, counters)?;
    // Envelopes are up to 256 KiB and fetch batches ~1 MiB: 16 MiB leaves room.
    let client = ReplicationClient::new(channel)
        .max_decoding_message_size(16 << 20)
        .max_encoding_message_size(16 << 20);
    Ok((client, key))
}

/// One full reconciliation with `peer`, then the fetch of what we lack.
pub async fn sync_once(
    node: &Arc<Node>,
    peer: &PeerState,
    client: &mut ReplicationClient<Channel>,
    key: PublicKey,
    counters: &tls::WireCounters,
    progress: &Progress,
) -> Result<SyncReport, SyncError> {
    let started = Instant::now();
    let wire_before = counters.total();
    let mut report = SyncReport::default();
    // We only ever tell a peer about ids it may see: negentropy frames carry ids.
    let viewer = node.peer_viewer(&key);
    let node2 = node.clone();
    let mut neg = tokio::task::spawn_blocking(move || super::negentropy_for(&node2, &viewer))
        .await
        .map_err(|e| SyncError::Negentropy(e.to_string()))?
        .map_err(|e| SyncError::Negentropy(e.to_string()))?;

    let first = neg
        .initiate()
        .map_err(|e| SyncError::Negentropy(e.to_string()))?;
    report.bytes_sent += first.len() as u64;
    let (tx, rx) = mpsc::channel(2);
    tx.send(ReconcileFrame { negentropy: first })
        .await
        .expect("receiver alive");
    let answers = answer(
        &peer.url,
        "the start of a reconciliation",
        client.reconcile(ReceiverStream::new(rx)),
    )
    .await?;
    // Every node says its version in a header (`server::VERSION_HEADER`):
    // `maillage peer list` shows it.
    if let Some(version) = answers
        .metadata()
        .get(crate::server::VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 40)
    {
        let version = version.to_string();
        node.peers().update(&peer.name, |p| p.version = version);
    }
    let mut answers = answers.into_inner();
    let mut have: Vec<Id> = Vec::new();
    let mut need: Vec<Id> = Vec::new();
    loop {
        let frame = answer(&peer.url, "a reconciliation frame", answers.message())
            .await?
            .ok_or(SyncError::Truncated)?;
        report.round_trips += 1;
        report.bytes_received += frame.negentropy.len() as u64;
        // A peer that never lets it converge must not hold this sync (and
        // `maillage sync`) forever, nor send frames of any size.
        if report.round_trips > super::MAX_ROUNDS {
            return Err(SyncError::Negentropy(format!(
                "the peer's reconciliation did not converge in {} rounds",
                super::MAX_ROUNDS
            )));
        }
        if frame.negentropy.len() > super::MAX_FRAME_BYTES {
            return Err(SyncError::Negentropy(format!(
                "the peer sent a reconciliation frame of {} bytes (at most {})",
                frame.negentropy.len(),
                super::MAX_FRAME_BYTES
            )));
        }
        let next = neg
            .reconcile_with_ids(&frame.negentropy, &mut have, &mut need)
            .map_err(|e| SyncError::Negentropy(e.to_string()))?;
        match next {
            Some(msg) => {
                report.bytes_sent += msg.len() as u64;
                if tx.send(ReconcileFrame { negentropy: msg }).await.is_err() {
                    return Err(SyncError::Truncated);
                }
            }
            None => break,
        }
    }
    drop(tx);
    report.reconcile_elapsed = started.elapsed();
    report.wire_reconcile = counters.total() - wire_before;
    report.need = need.len() as u64;
    report.have = have.len() as u64;
    // Skip what we hold (a record visible to one side only), what waits in
    // quarantine, and what we refused lately: otherwise every reconciliation
    // would fetch them again.
    // Store lookups, possibly a million: off the runtime, so other links go on.
    let node2 = node.clone();
    let need = tokio::task::spawn_blocking(move || {
        let mut wanted = Vec::with_capacity(need.len());
        for id in need.iter().map(|id| RecordId(**id)) {
            if node2.ledger().quarantine().wants(&id)? {
                wanted.push(id);
            }
        }
        Ok::<_, crate::store::StoreError>(wanted)
    })
    .await
    .map_err(|e| SyncError::Rpc(e.to_string()))??;
    progress
        .need
        .store(need.len() as u64, std::sync::atomic::Ordering::Relaxed);
    report.intake = fetch(node, &peer.name, &peer.url, client, &need, progress).await?;
    report.elapsed = started.elapsed();
    report.wire_total = counters.total() - wire_before;
    Ok(report)
}

/// The envelopes of `batch` among `asked`, each once (taken out of
/// `asked`), with their first-seen times.
fn only_asked(
    asked: &mut std::collections::HashSet<RecordId>,
    batch: maillage_proto::v1::FetchBatch,
) -> maillage_proto::v1::FetchBatch {
    let mut out = maillage_proto::v1::FetchBatch::default();
    let mut seen = batch.first_seen_ms.into_iter();
    for env in batch.envelopes {
        let at = seen.next().unwrap_or(0);
        let id = maillage_record::envelope::record_id(&env.payload, &env.author, &env.signature);
        if asked.remove(&id) {
            out.envelopes.push(env);
            out.first_seen_ms.push(at);
        }
    }
    out
}

/// Fetches envelopes by id from a peer and takes them in. Receiving and
/// verifying overlap: while one batch is verified and stored, the next one is
/// already on its way, and up to `INTAKE_IN_FLIGHT` batches verify at once
/// (one per core).
pub async fn fetch(
    node: &Arc<Node>,
    peer: &str,
    url: &str,
    client: &mut ReplicationClient<Channel>,
    ids: &[RecordId],
    progress: &Progress,
) -> Result<Intake, SyncError> {
    let in_flight_max = std::thread::available_parallelism().map_or(2, |n| n.get()) + 1;
    let mut total = Intake::default();
    let mut in_flight: std::collections::VecDeque<
        crate::background::Pending<Result<Intake, crate::store::StoreError>>,
    > = std::collections::VecDeque::new();
    for chunk in ids.chunks(MAX_FETCH_IDS) {
        let request = FetchRequest {
            ids: chunk.iter().map(|id| id.0.to_vec()).collect(),
        };
        // Only what was asked is taken: a peer must not slip in records
        // nobody asked for (nor the same one many times).
        let mut asked: std::collections::HashSet<RecordId> = chunk.iter().copied().collect();
        let mut batches = answer(url, "the start of a fetch", client.fetch(request))
            .await?
            .into_inner();
        while let Some(batch) = answer(url, "a batch of records", batches.message()).await? {
            let sent = batch.envelopes.len();
            let batch = only_asked(&mut asked, batch);
            if batch.envelopes.len() < sent {
                let stray = (sent - batch.envelopes.len()) as u64;
                total.rejected += stray;
                tracing::warn!(
                    peer,
                    stray,
                    "a peer sent records that were not asked for (or twice): refused"
                );
            }
            progress.received.fetch_add(
                batch.envelopes.len() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
            if in_flight.len() >= in_flight_max {
                let done = in_flight.pop_front().expect("non-empty");
                total += done.await.map_err(|e| SyncError::Rpc(e.to_string()))??;
            }
            let peer_name = peer.to_string();
            // Verified and stored at a lower priority than searches.
            in_flight.push_back(node.background().spawn({
                let node = node.clone();
                move || intake_blocking(&node, &batch.envelopes, &batch.first_seen_ms, &peer_name)
            }));
        }
        // What reconciliation said the peer has, and it did not send.
        total.withheld += asked.len() as u64;
    }
    for done in in_flight {
        total += done.await.map_err(|e| SyncError::Rpc(e.to_string()))??;
    }
    if total.stored + total.quarantined + total.rejected > 0 {
        tracing::info!(
            peer,
            stored = total.stored,
            quarantined = total.quarantined,
            rejected = total.rejected,
            "records received"
        );
    }
    node.peers().update(peer, |p| {
        p.records_received += total.stored + total.quarantined;
    });
    Ok(total)
}

/// The link to one peer, for as long as it stays pinned: subscribe, reconcile,
/// follow announcements, reconcile again every `sync_interval`; back off
/// exponentially (0.5 s doubling up to 5 min) while the peer fails. `wake`
/// cuts a backoff short.
pub async fn run_link(node: Arc<Node>, name: String, wake: Arc<Notify>) {
    let mut failures: u32 = 0;
    let mut stopping = node.stopping();
    loop {
        if *stopping.borrow() {
            return;
        }
        let Some(peer) = node.peers().get(&name) else {
            return;
        };
        // A revoked key is not spoken to (its records would be refused).
        if peer.revoked {
            tracing::warn!(peer = name, "the peer's key is revoked: its link ends");
            return;
        }
        let result = link_once(&node, &peer).await;
        node.peers().update(&name, |p| {
            p.subscribed = false;
            p.syncing = false;
        });
        let pause = match result {
            Ok(()) => {
                failures = 0;
                Duration::ZERO
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let text = e.to_string();
                tracing::warn!(peer = name, failures, error = %text, "replication with peer failed");
                node.peers().update(&name, |p| {
                    p.consecutive_failures = failures;
                    p.last_error = text;
                });
                backoff(failures)
            }
        };
        if !pause.is_zero() {
            // A wake cuts the backoff short, but never below a second between
            // attempts: two failing links that wake each other must not spin.
            let earliest = tokio::time::Instant::now() + pause.min(Duration::from_secs(1));
            let woken = tokio::select! {
                _ = tokio::time::sleep(pause) => false,
                _ = wake.notified() => true,
                _ = stopping.wait_for(|s| *s) => return,
            };
            if woken {
                tokio::time::sleep_until(earliest).await;
            }
        }
    }
}

/// The pause after `failures` failures in a row.
pub fn backoff(failures: u32) -> Duration {
    let ms = 500u64.saturating_mul(1 << failures.saturating_sub(1).min(10));
    Duration::from_millis(ms.min(300_000))
}

/// Subscribe first (so nothing published meanwhile is missed), reconcile,
/// then follow announcements until the next periodic reconciliation; repeat
/// on the same connection until something fails or the node stops.
async fn link_once(node: &Arc<Node>, peer: &PeerState) -> Result<(), SyncError> {
    let counters = Arc::new(tls::WireCounters::default());
    let (mut client, key) = client(peer, node, counters.clone())?;
    let mut announcements = answer(
        &peer.url,
        "the subscription",
        client.subscribe(SubscribeRequest {}),
    )
    .await?
    .into_inner();
    let stopping = node.stopping();
    // One connection and one subscription for as long as they work: each
    // round reconciles, then follows announcements until the next round.
    loop {
        if *stopping.borrow() {
            return Ok(());
        }
        node.peers().update(&peer.name, |p| {
            p.subscribed = true;
            p.syncing = true;
        });
        let report = sync_once(
            node,
            peer,
            &mut client,
            key,
            &counters,
            &Progress::default(),
        )
        .await?;
        record_success(node, &peer.name, &report);
        follow(node, peer, &mut client, &mut announcements).await?;
    }
}

pub fn record_success(node: &Node, name: &str, report: &SyncReport) {
    tracing::debug!(
        peer = name,
        need = report.need,
        have = report.have,
        round_trips = report.round_trips,
        bytes = report.bytes_sent + report.bytes_received,
        ms = report.elapsed.as_millis() as u64,
        "reconciled"
    );
    node.peers().update(name, |p| {
        p.syncing = false;
        p.last_sync_ms = maillage_record::now_ms();
        p.last_error.clear();
        p.consecutive_failures = 0;
        p.wire_bytes += report.wire_total;
    });
    // A restored node may sign again once this peer gave it everything it
    // offered (a peer that held some back is waited for again).
    if report.intake.withheld == 0 {
        node.synced_with(name);
    } else {
        tracing::warn!(
            peer = name,
            withheld = report.intake.withheld,
            "the peer did not send every record it offered"
        );
    }
}

async fn follow(
    node: &Arc<Node>,
    peer: &PeerState,
    client: &mut ReplicationClient<Channel>,
    announcements: &mut Streaming<Announcement>,
) -> Result<(), SyncError> {
    let deadline = tokio::time::Instant::now() + node.replication().sync_interval;
    let mut stopping = node.stopping();
    loop {
        let msg = tokio::select! {
            m = announcements.message() => m.map_err(|s| rpc_error(&peer.url, s))?,
            _ = tokio::time::sleep_until(deadline) => return Ok(()),
            _ = stopping.wait_for(|s| *s) => return Ok(()),
        };
        let Some(msg) = msg else {
            // The peer closed the stream (it is shutting down): reconnect.
            return Err(SyncError::Rpc(format!(
                "{} closed the announcement stream",
                peer.url
            )));
        };
        tracing::debug!(
            peer = peer.name,
            ids = msg.ids.len(),
            lagged = msg.lagged,
            "announcement"
        );
        if msg.lagged {
            // We missed some: a reconciliation finds them.
            return Ok(());
        }
        let node2 = node.clone();
        let missing = tokio::task::spawn_blocking(move || {
            let mut missing = Vec::new();
            for raw in &msg.ids {
                if let Some(id) = RecordId::from_slice(raw)
                    && node2.ledger().quarantine().wants(&id)?
                {
                    missing.push(id);
                }
            }
            Ok::<_, crate::store::StoreError>(missing)
        })
        .await
        .map_err(|e| SyncError::Rpc(e.to_string()))??;
        if !missing.is_empty() {
            fetch(
                node,
                &peer.name,
                &peer.url,
                client,
                &missing,
                &Progress::default(),
            )
            .await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_half_a_second_up_to_five_minutes() {
        let secs: Vec<f64> = [1, 2, 3, 4, 10, 11, 50]
            .iter()
            .map(|&f| backoff(f).as_secs_f64())
            .collect();
        assert_eq!(secs, vec![0.5, 1.0, 2.0, 4.0, 256.0, 300.0, 300.0]);
    }
}
