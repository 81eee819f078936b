//! A page of results: the best matches ranked, every match counted, and the
//! hits read from the index. Searches and the warmer make pages alike.

use std::sync::Arc;

use maillage_record::{Kind, PublicKey, RecordId};
use tantivy::collector::{Collector, SegmentCollector, TopDocs};
use tantivy::query::{EnableScoring, Query};
use tantivy::schema::{Field, Value};
use tantivy::{DocAddress, DocId, Score, Searcher, SegmentOrdinal, TantivyDocument};

use super::cache::{Caches, Key, Page};
use super::query::Queries;
use super::scoring::Views;
use super::tally::{Numbering, Tallied, Tally};
use super::{FACET_VALUES, Facet, Hit};
use crate::viewer::Viewer;

/// What searches and the warmer share.
pub struct Engine {
    pub queries: Queries,
    pub numbering: Numbering,
    pub caches: Caches,
    /// What each caller may see, counted for its scores.
    pub views: Views,
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
        let ranked = self.queries.ranked(&key.text, query);
        let tally = Tally::facets(&self.numbering).cached(&self.caches, key.clone());
        let top = TopDocs::with_limit(page_size)
            .and_offset(offset)
            .order_by_score();
        // Scored over what the caller may see (`scoring.rs`).
        let views;
        let scoring = match self.queries.readers(&key.viewer) {
            None => EnableScoring::enabled_from_searcher(searcher),
            Some(readers) => {
                views = self.views.statistics(searcher, readers)?;
                EnableScoring::enabled_from_statistics_provider(&views, searcher)
            }
        };
        let (top, counts) = rank_and_count(searcher, ranked.as_ref(), scoring, &top, &tally)?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            let mut hit = match self.hit(&doc, score) {
                Ok(hit) => hit,
                // Only ever written from a verified record: the index is
                // damaged. The other hits are still worth giving.
                Err(e) => {
                    tracing::error!(doc = ?address, error = %e, "a search hit does not read: left out; `maillage reindex` rebuilds the index");
                    continue;
                }
            };
            // Peer names describe this node's links: the public only learns
            // that a record was relayed.
            // Which peer relayed a record is the operator's business (and
            // a peer's); the public and agents of collectivities are told
            // it came from a peer, not which.
            let told = matches!(key.viewer, Viewer::Operator | Viewer::Peer { .. });
            if !told && hit.relayed_by.is_some() {
                hit.relayed_by = Some("a peer".into());
            }
            hits.push(hit);
        }
        let facets = Facet::SEARCHED
            .iter()
            .map(|f| (f.name().to_string(), counts.buckets(*f, FACET_VALUES)))
            .collect();
        Ok(Page {
            total: counts.matched,
            hits,
            facets,
        })
    }

    /// The hit `doc` stands for; an error if its id, kind or author do not
    /// read as one.
    fn hit(&self, doc: &TantivyDocument, score: f32) -> Result<Hit, String> {
        let f = &self.queries.fields;
        let str_of = |field: Field| doc.get_first(field).and_then(|v| v.as_str()).unwrap_or("");
        let text = |field| str_of(field).to_string();
        let opt = |field| Some(text(field)).filter(|s: &String| !s.is_empty());
        Ok(Hit {
            id: RecordId::parse_hex(str_of(f.id)).map_err(|e| e.to_string())?,
            record_id: text(f.record_id),
            version: doc
                .get_first(f.version)
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
            kind: Kind::parse(str_of(f.kind)).map_err(|e| e.to_string())?,
            title: text(f.title),
            author: PublicKey::parse_hex(str_of(f.author)).map_err(|e| e.to_string())?,
            organisation_siren: opt(f.org),
            organisation_name: opt(f.org_name),
            signature_verified: true,
            author_trust: "",
            siren_source: "",
            relayed_by: opt(f.origin),
            received_at_ms: doc
                .get_first(f.received)
                .and_then(|v| v.as_i64())
                .unwrap_or(0),
            public: doc.get_first(f.public).and_then(|v| v.as_u64()) == Some(1),
            score,
        })
    }
}

/// The best matches of `ranked` (scored with `scoring`'s statistics) by
/// `top`, and the counts of every match by `tally` (the total too), in one
/// pass over each segment's matches.
///
/// Ranking visits every match anyway (a query whose title words add to the
/// score is not one tantivy can skip through), so counting beside it spares
/// a second pass over the posting lists; matches are still counted a block
/// at a time. A segment whose counts are cached is only ranked.
pub(super) fn rank_and_count<T>(
    searcher: &Searcher,
    ranked: &dyn Query,
    scoring: EnableScoring,
    top: &T,
    tally: &Tally,
) -> tantivy::Result<(Vec<(Score, DocAddress)>, Tallied)>
where
    T: Collector<Fruit = Vec<(Score, DocAddress)>>,
{
    /// Matches counted at once.
    const BLOCK: usize = 64;
    let weight = ranked.weight(scoring)?;
    let mut tops = Vec::new();
    let mut counts = Vec::new();
    let mut block: Vec<DocId> = Vec::with_capacity(BLOCK);
    for (ord, reader) in searcher.segment_readers().iter().enumerate() {
        let ord = ord as SegmentOrdinal;
        if let Some(counted) = tally.counted_before(reader) {
            tops.push(top.collect_segment(weight.as_ref(), ord, reader)?);
            counts.push(counted);
            continue;
        }
        let mut best = top.for_segment(ord, reader)?;
        let mut count = tally.for_segment(ord, reader)?;
        let alive = reader.alive_bitset();
        block.clear();
        weight.for_each(reader, &mut |doc, score| {
            if alive.is_some_and(|alive| alive.is_deleted(doc)) {
                return;
            }
            best.collect(doc, score);
            block.push(doc);
            if block.len() == BLOCK {
                count.collect_block(&block);
                block.clear();
            }
        })?;
        count.collect_block(&block);
        tops.push(best.harvest());
        let counted = count.harvest();
        tally.keep(reader, &counted);
        counts.push(counted);
    }
    Ok((top.merge_fruits(tops)?, tally.merge_fruits(counts)?))
}
