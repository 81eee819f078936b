//! What benchmarks and end-to-end tests use of the node beyond starting one
//! (`config`, `server`): built only with the `testkit` feature, so that the
//! rest of the crate stays private and free to change.

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::node::Node;
pub use crate::replication::client::{Progress, SyncReport};
pub use crate::replication::{FETCH_BATCH_RECORDS, FRAME_LIMIT};
pub use crate::search::{CacheStats, Filters, GroupBy, SearchRequest};
pub use crate::store::Origin;
pub use crate::viewer::Viewer;

use maillage_record::VerifiedRecord;

/// Certificates, pinned keys and channels: what a test peer, honest or
/// not, needs to speak mutual TLS with a node.
pub mod tls {
    pub use crate::accept::incoming;
    pub use crate::tls::{
        Identity, PinnedKeys, WireCounters, acceptor, anonymous_channel, anonymous_tls, channel,
    };
}

use crate::replication::client::{self, SyncError};
use crate::store::StoreError;

/// Stores `recs` in `node` as they are, trust aside, in batches (blocking):
/// a corpus whose authors no membership names.
pub fn load(node: &Node, recs: &[VerifiedRecord], origin: Origin<'_>) -> Result<(), StoreError> {
    for chunk in recs.chunks(10_000) {
        node.ledger().load(chunk, origin)?;
    }
    Ok(())
}

/// `n` read tokens seeing what an agent of this node's own organisation
/// sees (blocking): a benchmark's signed-in clients, each token kept under
/// its rate.
pub fn read_tokens(node: &Node, n: usize) -> Result<Vec<String>, String> {
    let expires = maillage_record::now_ms() + 24 * 3600 * 1000;
    (0..n)
        .map(|i| {
            node.tokens()
                .create(
                    node.ledger(),
                    node.siren().as_str(),
                    &format!("bench {i}"),
                    expires,
                )
                .map(|(token, _)| token)
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// One sync with the pinned peer `name`, as a link runs it.
pub async fn sync(node: &Arc<Node>, name: &str) -> Result<SyncReport, SyncError> {
    let peer = node
        .peers()
        .get(name)
        .ok_or_else(|| SyncError::Rpc(format!("no peer named '{name}'")))?;
    let counters = Arc::new(tls::WireCounters::default());
    let (mut c, key) = client::client(&peer, node, counters.clone())?;
    let progress = Progress::default();
    client::sync_once(node, &peer, &mut c, key, &counters, &progress).await
}

/// Waits until `node` has indexed everything it stores; says how long.
pub async fn indexed(node: &Node) -> Duration {
    let t = Instant::now();
    while node.search().indexed_seq() < node.store().last_seq() || node.search().rebuilding() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.elapsed()
}

/// Computes, signs and stores the aggregate of `territory` (or, with
/// `combine`, the roll-up of those aggregates), as `maillage aggregate
/// publish` does (blocking).
pub fn publish_aggregate(
    node: &Node,
    territory: &str,
    combine: &[maillage_record::RecordId],
) -> Result<VerifiedRecord, String> {
    let draft = crate::aggregate::prepare(
        node,
        &crate::aggregate::Request {
            territory: territory.to_string(),
            period: None,
            combine: combine.to_vec(),
        },
    )
    .map_err(|e| e.to_string())?;
    let signed = node.author().sign(&[], draft).map_err(|e| e.to_string())?;
    node.ledger()
        .insert(&signed.record, crate::store::Admission::RequireNewer)
        .map_err(|e| e.to_string())?;
    Ok(signed.record)
}

/// What `maillage aggregate verify` finds (blocking): the inputs this node
/// used, and each way the aggregate differs (none: it matches).
pub fn verify_aggregate(
    node: &Node,
    id: &maillage_record::RecordId,
) -> Result<(u64, Vec<String>), String> {
    let verdict = crate::aggregate::verify(node, id).map_err(|e| e.to_string())?;
    Ok((
        verdict.inputs_here,
        verdict.findings.iter().map(ToString::to_string).collect(),
    ))
}

/// Drafts signed with this node's key, as its operator's would be, not
/// stored (blocking): a chef de file's records for a benchmark to load
/// into several nodes.
pub fn sign_own(
    node: &Node,
    drafts: Vec<maillage_record::Record>,
) -> Result<Vec<VerifiedRecord>, String> {
    drafts
        .into_iter()
        .map(|d| {
            node.author()
                .sign(&[], d)
                .map(|s| s.record)
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// This node's own Organisation record, as signed (blocking): what a peer
/// that trusts it as a root learns its SIREN from.
pub fn own_organisation(node: &Node) -> Result<Option<VerifiedRecord>, String> {
    let filter = crate::store::ListFilter {
        kind: Some(maillage_record::Kind::Organisation),
        author: Some(node.public_key()),
    };
    let (entries, _) = node
        .store()
        .list_current(&filter, None, 1, |_| true)
        .map_err(|e| e.to_string())?;
    let Some(entry) = entries.first() else {
        return Ok(None);
    };
    let Some(stored) = node.store().get(&entry.id).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    maillage_record::envelope::verify_bytes(&stored.bytes)
        .map(Some)
        .map_err(|e| e.to_string())
}
