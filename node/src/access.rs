//! The access log (issue 22): each time a signed-in agent or a read token
//! is shown a record that is not public (its page, or the record as JSON),
//! who (`session:SUBJECT` or `token:ID`), for which organisation, what, and
//! when. Kept `RETENTION`, in the store; `maillage access-log` reads it.
//! Nothing else of the agent is kept here (no name, no address).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ledger::Ledger;
use crate::store::{Store, StoreError};

/// How long a line is kept.
pub const RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);
/// Lines written between two prunings of the old ones.
const PRUNE_EVERY: u64 = 1_000;
/// Lines one query looks through at most.
const SCAN_MAX: usize = 100_000;

/// One read beyond the public.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Access {
    pub at_ms: i64,
    /// `session:SUBJECT` (the identity provider's subject) or `token:ID`.
    pub who: String,
    pub siren: String,
    /// The envelope's id (hex), its author (hex) and record_id, its kind.
    pub id: String,
    pub author: String,
    pub record_id: String,
    pub kind: String,
}

#[derive(Default)]
pub struct AccessLog {
    written: AtomicU64,
}

impl AccessLog {
    /// Writes a line; now and then, forgets those past `RETENTION`. A
    /// failure is logged, not returned: the reader has been served.
    pub fn note(&self, ledger: &Ledger, access: &Access) {
        let n = self.written.fetch_add(1, Ordering::Relaxed);
        let value = serde_json::to_vec(access).expect("a line encodes");
        if let Err(e) = ledger.log_access(access.at_ms, n, &value) {
            tracing::error!(error = %e, "the access log could not be written");
        }
        if n.is_multiple_of(PRUNE_EVERY) {
            let before = access.at_ms - RETENTION.as_millis() as i64;
            if let Err(e) = ledger.prune_access(before) {
                tracing::error!(error = %e, "the access log could not be pruned");
            }
        }
        tracing::info!(
            target: "maillage::access",
            who = %access.who,
            siren = %access.siren,
            id = %access.id,
            kind = %access.kind,
            "read beyond the public"
        );
    }

    /// Lines from `since_ms`, oldest first, of one organisation if asked,
    /// at most `limit`.
    pub fn read(
        store: &Store,
        since_ms: i64,
        siren: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Access>, StoreError> {
        Ok(store
            .access_log(since_ms, SCAN_MAX)?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice::<Access>(&v).ok())
            .filter(|a| siren.is_none_or(|s| a.siren == s))
            .take(limit)
            .collect())
    }
}
