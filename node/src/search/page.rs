//! A page of results: the best matches ranked, every match counted, and the
//! hits read from the index. Searches and the warmer make pages alike.

use std::sync::Arc;

use tantivy::collector::TopDocs;
use tantivy::schema::Value;
use tantivy::{Searcher, TantivyDocument};

use super::cache::{Caches, Key, Page};
use super::query::Queries;
use super::tally::{Numbering, Tally};
use super::{FACET_VALUES, FACETS, Hit};
use crate::node::Viewer;

/// What searches and the warmer share.
pub struct Engine {
    pub queries: Queries,
    pub numbering: Numbering,
    pub caches: Caches,
}

impl Engine {
    /// A page of `key`'s results: `query` ranked, and counted.
    pub fn page(
        &self,
        searcher: &Searcher,
        key: &Arc<Key>,
        query: Box<dyn tantivy::query::Query>,
        offset: usize,
        page_size: usize,
    ) -> tantivy::Result<Page> {
        let ranked = self.queries.ranked(&key.text, query.box_clone());
        let tally = Tally::facets(&self.numbering).cached(&self.caches, key.clone());
        let top = TopDocs::with_limit(page_size)
            .and_offset(offset)
            .order_by_score();
        // Two passes: ranking alone may skip documents that cannot make the
        // page, and counting alone needs no score and reads its columns a
        // block of documents at a time (or finds its counts cached). The
        // tally counts every match: it is the total too.
        let top = searcher.search(&ranked, &top)?;
        let counts = searcher.search(&query, &tally)?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            let mut hit = self.hit(&doc, score);
            // Peer names describe this node's links: the public only learns
            // that a record was relayed.
            if key.viewer == Viewer::Anonymous && hit.relayed_by.is_some() {
                hit.relayed_by = Some("a peer".into());
            }
            hits.push(hit);
        }
        let facets = FACETS
            .iter()
            .map(|(name, field)| (name.to_string(), counts.buckets(field, FACET_VALUES)))
            .collect();
        Ok(Page {
            total: counts.matched,
            hits,
            facets,
        })
    }

    fn hit(&self, doc: &TantivyDocument, score: f32) -> Hit {
        let f = &self.queries.fields;
        let text = |field| {
            doc.get_first(field)
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        };
        let opt = |field| Some(text(field)).filter(|s: &String| !s.is_empty());
        Hit {
            id: text(f.id),
            record_id: text(f.record_id),
            version: doc
                .get_first(f.version)
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
            kind: text(f.kind),
            title: text(f.title),
            author: text(f.author),
            organisation_siren: opt(f.org),
            organisation_name: opt(f.org_name),
            signature_verified: true,
            relayed_by: opt(f.origin),
            received_at_ms: doc
                .get_first(f.received)
                .and_then(|v| v.as_i64())
                .unwrap_or(0),
            score,
        }
    }
}
