//! Replication between pinned peers (docs/architecture.md, "Replication").
//!
//! - `service`: what peers may ask of us (Reconcile, Fetch, Subscribe);
//! - `client`: our link to each peer (reconcile, fetch, follow, back off);
//! - `intake`: verify, trust-check, store or quarantine what peers send.
//!
//! The `Replicator` owns one link task per pinned peer and runs on-demand
//! syncs for `maillage sync`.

pub mod client;
pub mod intake;
pub mod quarantine;
pub mod service;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::node::Node;
pub use client::SyncReport;

/// Negentropy frame limit: well below gRPC's 4 MiB message limit, and large
/// enough that a big difference still takes few round trips.
pub const FRAME_LIMIT: u64 = 512 * 1024;
/// The largest reconciliation frame accepted from a peer: what negentropy
/// writes under `FRAME_LIMIT`, with room for its framing. A larger one ends
/// the call with INVALID_ARGUMENT.
pub const MAX_FRAME_BYTES: usize = 2 * FRAME_LIMIT as usize;
/// Rounds of one reconciliation, at most, on either side. A million records
/// against a million converge in a few dozen; a peer that never lets it
/// converge is cut off here, and `maillage sync` always ends.
pub const MAX_ROUNDS: u32 = 256;
/// How long a reconciliation may wait for the peer's next frame.
pub const FRAME_SILENCE: std::time::Duration = std::time::Duration::from_secs(60);
/// Ids per Fetch request (32 bytes each: 128 KiB).
pub const MAX_FETCH_IDS: usize = 4096;
/// Approximate bytes per FetchBatch.
pub const FETCH_BATCH_BYTES: usize = 1 << 20;
/// At most this many envelopes per FetchBatch (fewer if they are large). The
/// receiver verifies and stores a batch as one unit: a bigger batch makes
/// batch verification and the synced write cheaper per record.
pub const FETCH_BATCH_RECORDS: usize = 1024;

/// A negentropy instance over what `viewer` may see of this node's records
/// (blocking: it walks the whole sync set).
pub fn negentropy_for(
    node: &Node,
    viewer: &crate::viewer::Viewer,
) -> Result<negentropy::Negentropy<'static, negentropy::NegentropyStorageVector>, negentropy::Error>
{
    let view = node.ledger().sync_view(viewer);
    let mut storage = negentropy::NegentropyStorageVector::with_capacity(view.len());
    for (ts, id) in view {
        storage.insert(ts, negentropy::Id::from_byte_array(id.0))?;
    }
    storage.seal()?;
    negentropy::Negentropy::owned(storage, FRAME_LIMIT)
}

struct Link {
    task: JoinHandle<()>,
    wake: Arc<Notify>,
}

pub struct Replicator {
    node: Arc<Node>,
    links: Mutex<HashMap<String, Link>>,
}

impl Replicator {
    /// Starts a link to every pinned peer.
    pub fn start(node: Arc<Node>) -> Arc<Replicator> {
        let r = Arc::new(Replicator {
            node: node.clone(),
            links: Mutex::new(HashMap::new()),
        });
        for peer in node.peers().list() {
            r.restart(&peer.name);
        }
        r
    }

    /// (Re)starts the link to a peer, after `peer add`.
    pub fn restart(&self, name: &str) {
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(client::run_link(
            self.node.clone(),
            name.to_string(),
            wake.clone(),
        ));
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = links.insert(name.to_string(), Link { task, wake }) {
            old.task.abort();
        }
    }

    /// Stops the link to a peer, after `peer remove`.
    pub fn stop(&self, name: &str) {
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = links.remove(name) {
            old.task.abort();
        }
    }

    /// Cuts a failing link's backoff short: the peer just reached us, or the
    /// operator asked for a sync. A healthy link is left alone (waking it on
    /// every call from the peer would make two healthy links chase each other).
    pub fn wake(&self, name: &str) {
        if self
            .node
            .peers()
            .get(name)
            .is_none_or(|p| p.consecutive_failures == 0)
        {
            return;
        }
        let links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(link) = links.get(name) {
            link.wake.notify_one();
        }
    }

    /// Reconciles with one peer now and waits for the result.
    pub async fn sync_now(
        &self,
        name: &str,
        progress: &client::Progress,
    ) -> Result<SyncReport, String> {
        let peer = self
            .node
            .peers()
            .get(name)
            .ok_or_else(|| format!("no peer named '{name}'"))?;
        let node = &self.node;
        let result = async {
            let counters = Arc::new(crate::tls::WireCounters::default());
            let (mut c, key) = client::client(&peer, node, counters.clone())?;
            client::sync_once(node, &peer, &mut c, key, &counters, progress).await
        }
        .await;
        match result {
            Ok(report) => {
                // A link in backoff can retry now (before the success resets the count).
                self.wake(name);
                client::record_success(node, name, &report);
                Ok(report)
            }
            Err(e) => {
                let text = e.to_string();
                node.peers().update(name, |p| {
                    p.consecutive_failures += 1;
                    p.last_error = text.clone();
                });
                Err(text)
            }
        }
    }

    /// Stops every link (shutdown).
    pub fn shutdown(&self) {
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        for (_, link) in links.drain() {
            link.task.abort();
        }
    }
}
