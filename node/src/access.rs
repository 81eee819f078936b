//! The access log (issue 22): each time a signed-in agent or a read token
//! is shown a record that is not public, who (`session:SUBJECT` or
//! `token:ID`), for which organisation, what, where (`Via`), and when.
//! Kept `RETENTION`, in the store; `maillage access-log` reads it. Nothing
//! else of the agent is kept here (no name, no address).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ledger::Ledger;
use crate::store::{Store, StoreError};

/// How long a line is kept.
pub const RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);
/// Requests written between two prunings of the old lines.
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

/// One request's reads, as stored: one line (one key, one encoding, one
/// line of the node's log) however many records it showed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Request {
    pub at_ms: i64,
    pub who: String,
    pub siren: String,
    pub via: String,
    #[serde(default)]
    pub records: Vec<StoredRead>,
    // A line written one record at a time (before `records`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    record_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
}

/// A record of a stored request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredRead {
    pub id: String,
    pub author: String,
    pub record_id: String,
    pub kind: String,
}

impl Request {
    /// A request's line, by `who` of `siren`, `via` where.
    pub fn new(who: &str, siren: &str, via: Via, reads: Vec<Read>) -> Request {
        Request {
            at_ms: maillage_record::now_ms(),
            who: who.to_string(),
            siren: siren.to_string(),
            via: via.as_str().to_string(),
            records: reads
                .into_iter()
                .map(|r| StoredRead {
                    id: r.id,
                    author: r.author,
                    record_id: r.record_id,
                    kind: r.kind.as_str().to_string(),
                })
                .collect(),
            id: None,
            author: None,
            record_id: None,
            kind: None,
        }
    }

    /// Its reads, one line each.
    fn lines(self) -> Vec<Access> {
        let line = |r: StoredRead| Access {
            at_ms: self.at_ms,
            who: self.who.clone(),
            siren: self.siren.clone(),
            id: r.id,
            author: r.author,
            record_id: r.record_id,
            kind: r.kind,
            via: self.via.clone(),
        };
        match (&self.id, &self.author, &self.record_id, &self.kind) {
            (Some(id), Some(author), Some(record_id), Some(kind)) if self.records.is_empty() => {
                vec![line(StoredRead {
                    id: id.clone(),
                    author: author.clone(),
                    record_id: record_id.clone(),
                    kind: kind.clone(),
                })]
            }
            _ => self.records.clone().into_iter().map(line).collect(),
        }
    }
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

/// What the writer thread is asked.
enum Job {
    Request(Request),
    /// Answers once every line sent before is written.
    Flush(std::sync::mpsc::SyncSender<()>),
}

/// Batches queued for the writer at most: past it, a request waits for
/// room (a line is never dropped).
const QUEUED: usize = 1_024;

/// The access log: requests hand their lines to a thread that writes them
/// (one batch for all that waits, not synced, and the node's log), so a
/// page shown beyond the public costs its reader no write.
pub struct AccessLog {
    jobs: std::sync::mpsc::SyncSender<Job>,
}

impl AccessLog {
    /// Starts the writer thread; it ends when the log is dropped. It holds
    /// the ledger only while it writes: the store closes with the node.
    pub fn new(ledger: &std::sync::Arc<Ledger>) -> AccessLog {
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(QUEUED);
        let ledger = std::sync::Arc::downgrade(ledger);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_lines(&ledger, &queue))
            .expect("the access log's thread starts");
        AccessLog { jobs }
    }

    /// Hands a request's reads to the writer. Waits only if it is far
    /// behind.
    pub fn note(&self, request: Request) {
        if !request.records.is_empty() && self.jobs.send(Job::Request(request)).is_err() {
            tracing::error!("the access log's writer is gone; lines were lost");
        }
    }

    /// Returns once every line noted before is written.
    pub fn flush(&self) {
        let (done, wait) = std::sync::mpsc::sync_channel(1);
        if self.jobs.send(Job::Flush(done)).is_ok() {
            let _ = wait.recv();
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
            .filter_map(|(_, v)| serde_json::from_slice::<Request>(&v).ok())
            .filter(|r| siren.is_none_or(|s| r.siren == s))
            .flat_map(Request::lines)
            .take(limit)
            .collect())
    }
}

/// The writer thread: everything that waits goes in one write; now and
/// then, lines past `RETENTION` are forgotten. A failure is logged, not
/// returned: the readers have been served.
fn write_lines(ledger: &std::sync::Weak<Ledger>, queue: &std::sync::mpsc::Receiver<Job>) {
    let mut written: u64 = 0;
    while let Ok(first) = queue.recv() {
        let mut lines = Vec::new();
        let mut flushes = Vec::new();
        let mut take = |job: Job| match job {
            Job::Request(r) => lines.push(r),
            Job::Flush(done) => flushes.push(done),
        };
        take(first);
        while let Ok(job) = queue.try_recv() {
            take(job);
        }
        if !lines.is_empty() {
            let Some(ledger) = ledger.upgrade() else {
                break;
            };
            let values: Vec<(i64, u64, Vec<u8>)> = lines
                .iter()
                .zip(written..)
                .map(|(a, n)| (a.at_ms, n, serde_json::to_vec(a).expect("a line encodes")))
                .collect();
            if let Err(e) = ledger.log_access(&values) {
                tracing::error!(error = %e, "the access log could not be written");
            }
            let before = written;
            written += lines.len() as u64;
            if before / PRUNE_EVERY != written / PRUNE_EVERY {
                let until = lines[0].at_ms - RETENTION.as_millis() as i64;
                if let Err(e) = ledger.prune_access(until) {
                    tracing::error!(error = %e, "the access log could not be pruned");
                }
            }
            for request in &lines {
                tracing::info!(
                    target: "maillage::access",
                    who = %request.who,
                    siren = %request.siren,
                    via = %request.via,
                    records = request.records.len(),
                    first = %request.records[0].record_id,
                    "read beyond the public"
                );
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request's reads are one stored line, read back one line per
    /// record; a line written one record at a time reads as before.
    #[test]
    fn a_request_is_one_line_read_back_per_record() {
        let read = |n: &str| Read {
            id: format!("id{n}"),
            author: "a".into(),
            record_id: format!("r{n}"),
            kind: maillage_record::Kind::Dataset,
        };
        let request = Request::new(
            "token:1",
            "213101496",
            Via::Search,
            vec![read("1"), read("2")],
        );
        let stored: Request =
            serde_json::from_slice(&serde_json::to_vec(&request).unwrap()).unwrap();
        let lines = stored.lines();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            (lines[1].record_id.as_str(), lines[1].via.as_str()),
            ("r2", "search")
        );
        let old = br#"{"at_ms":1,"who":"session:a","siren":"213101496","id":"x","author":"y","record_id":"colomiers","kind":"dataset","via":"page"}"#;
        let lines = serde_json::from_slice::<Request>(old).unwrap().lines();
        assert_eq!(lines.len(), 1);
        assert_eq!(
            (lines[0].record_id.as_str(), lines[0].kind.as_str()),
            ("colomiers", "dataset")
        );
    }
}
