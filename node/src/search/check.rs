//! `Search::check`: the index held against the store. Every document names
//! the current version of its record, once; every current record that
//! search shows is in the index. Records changed after the index's last
//! commit (`indexed_seq`) are left out: the indexer has yet to see them.

use std::collections::HashSet;

use maillage_record::{PublicKey, RecordId};
use tantivy::TantivyDocument;
use tantivy::schema::Value;

use super::{Search, document};
use crate::store::{ListFilter, Report, Step, Store, StoreError};

impl Search {
    /// Adds what is wrong with the index to `report` (blocking: it reads
    /// every document and every current record).
    pub fn check(&self, store: &Store, report: &mut Report) -> Result<(), StoreError> {
        if self.rebuilding() {
            report.problem(
                "search index: being rebuilt; check again once `status` shows indexed_seq at last_seq"
                    .into(),
            );
            return Ok(());
        }
        // In this order: the searcher holds at least what indexed_seq says.
        let indexed_seq = self.indexed_seq();
        let searcher = self.reader.searcher();
        let f = &self.engine.queries.fields;
        let mut indexed: HashSet<RecordId> = HashSet::new();
        let mut records: HashSet<(PublicKey, String)> = HashSet::new();
        for (ord, segment) in searcher.segment_readers().iter().enumerate() {
            let docs = match segment.get_store_reader(64) {
                Ok(d) => d,
                Err(e) => {
                    unreadable(report, e);
                    return Ok(());
                }
            };
            for doc in segment.doc_ids_alive() {
                report.count("search index");
                let doc: TantivyDocument = match docs.get(doc) {
                    Ok(d) => d,
                    Err(e) => {
                        unreadable(report, e);
                        return Ok(());
                    }
                };
                let text = |field| {
                    doc.get_first(field)
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_string()
                };
                let Ok(id) = RecordId::parse_hex(&text(f.id)) else {
                    report.problem(format!(
                        "search index: a document of segment {ord} ('{}') has no record id",
                        text(f.record_id)
                    ));
                    continue;
                };
                let Ok(author) = PublicKey::parse_hex(&text(f.author)) else {
                    report.problem(format!("search index: {id} has no author"));
                    continue;
                };
                let record_id = text(f.record_id);
                indexed.insert(id);
                if !records.insert((author, record_id.clone())) {
                    report.problem(format!(
                        "search index: '{record_id}' by {author} is indexed twice"
                    ));
                }
                match store.current(&author, &record_id)? {
                    None => report.problem(format!(
                        "search index: holds {id} ('{record_id}' by {author}), which the store does not hold as current"
                    )),
                    Some(c) if c.id != id && c.seq <= indexed_seq => report.problem(format!(
                        "search index: holds {id} for '{record_id}' by {author}, whose current version is {}",
                        c.id
                    )),
                    Some(_) => {}
                }
            }
        }
        store.scan_current(&ListFilter::default(), None, |cur| {
            if document::searchable(cur.kind)
                && cur.seq <= indexed_seq
                && !indexed.contains(&cur.id)
            {
                report.problem(format!(
                    "search index: lacks '{}' by {} ({}), current since change {}",
                    cur.record_id, cur.author, cur.id, cur.seq
                ));
            }
            Ok(Step::Next)
        })?;
        Ok(())
    }
}

/// An index that cannot be read is a problem the check reports, not an
/// error of the store; the rest of the index is not read.
fn unreadable(report: &mut Report, e: impl std::fmt::Display) {
    report.problem(format!("search index: cannot be read: {e}"));
}
