//! The access log (issue 22): each time a signed-in agent or a read token
//! is shown a record that is not public, who (`session:SUBJECT` or
//! `token:ID`), for which organisation, what, where (`Via`), and when.
//! Kept `RETENTION`, in the store; `maillage access-log` reads it. Nothing
//! else of the agent is kept here (no name, no address).

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
    /// Where: `Via::as_str`.
    #[serde(default)]
    pub via: String,
}

/// A record beyond the public that was shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// The envelope's id and its author, in hex.
    pub id: String,
    pub author: String,
    pub record_id: String,
    pub kind: maillage_record::Kind,
}

/// Where a record beyond the public was shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Its page, or the record as JSON (and what its page shows with it:
    /// a project's details).
    Page,
    /// Its title in a search, an organisation's or a territory's page.
    Search,
    /// In an export (`/projects.json`, the DCAT catalogue).
    Export,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Page => "page",
            Via::Search => "search",
            Via::Export => "export",
        }
    }
}

#[derive(Default)]
pub struct AccessLog {
    written: AtomicU64,
}

impl AccessLog {
    /// Writes lines, in one batch; now and then, forgets those past
    /// `RETENTION`. A failure is logged, not returned: the reader has been
    /// served.
    pub fn note(&self, ledger: &Ledger, lines: &[Access]) {
        let Some(first) = lines.first() else {
            return;
        };
        let n = self
            .written
            .fetch_add(lines.len() as u64, Ordering::Relaxed);
        let values: Vec<(i64, u64, Vec<u8>)> = lines
            .iter()
            .zip(n..)
            .map(|(a, n)| (a.at_ms, n, serde_json::to_vec(a).expect("a line encodes")))
            .collect();
        if let Err(e) = ledger.log_access(&values) {
            tracing::error!(error = %e, "the access log could not be written");
        }
        if n / PRUNE_EVERY != (n + lines.len() as u64) / PRUNE_EVERY || n == 0 {
            let before = first.at_ms - RETENTION.as_millis() as i64;
            if let Err(e) = ledger.prune_access(before) {
                tracing::error!(error = %e, "the access log could not be pruned");
            }
        }
        for access in lines {
            tracing::info!(
                target: "maillage::access",
                who = %access.who,
                siren = %access.siren,
                id = %access.id,
                kind = %access.kind,
                via = %access.via,
                "read beyond the public"
            );
        }
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
