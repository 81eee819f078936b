//! Scores that depend only on what the caller may see.
//!
//! BM25 weighs a word by how many records hold it (its idf) and a record's
//! length against the average length. Counted over the whole index, as
//! tantivy does by default, an anonymous caller's scores would move when
//! restricted or federation records holding its words arrive: searching a
//! public record's word and watching its score is then an oracle for words
//! in records the caller may not read ("is there a hidden record about
//! 'licenciement'?"). Here the three statistics (records, records holding a
//! word, words in a field) are counted over the records the caller may see,
//! alive (not deleted), and nothing else; the operator, who sees every
//! record, is scored over the whole index.
//!
//! Counting is per segment and kept per segment (segments never change but
//! for their deletions, which are part of the key), so a commit only counts
//! its new segments. The counts are bounded: at most `MAX_VIEWS` (segment,
//! deletions, caller) sets, each with at most `MAX_TERMS` word counts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tantivy::index::SegmentId;
use tantivy::query::Bm25StatisticsProvider;
use tantivy::schema::{Field, IndexRecordOption, Term};
use tantivy::{BitSet, DocId, DocSet, Searcher, SegmentReader, TERMINATED};

/// Sets of visible records kept (per segment, deletions and caller).
const MAX_VIEWS: usize = 512;
/// Word counts kept per set; past it the set's counts start again.
const MAX_TERMS: usize = 4_096;

/// What a caller may see, as the index says it: the `reader` terms of the
/// records it may read (`query.rs` builds them, the same as its filter).
pub type Readers = Vec<Term>;

/// The visible sets counted so far, shared by every search and the warmer.
#[derive(Default)]
pub struct Views {
    kept: Mutex<HashMap<ViewKey, Arc<SegmentView>>>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct ViewKey {
    segment: SegmentId,
    deleted: DocId,
    readers: Arc<Readers>,
}

/// The records of one segment that one caller may see.
struct SegmentView {
    visible: BitSet,
    count: u64,
    /// Whether every record of the segment is visible and none is deleted:
    /// the segment's own word counts are then the caller's.
    whole: bool,
    tokens: Mutex<HashMap<Field, u64>>,
    doc_freqs: Mutex<HashMap<Term, u64>>,
}

impl Views {
    /// The statistics of `searcher`'s records that `readers` may see.
    pub fn statistics<'s>(
        &self,
        searcher: &'s Searcher,
        readers: Readers,
    ) -> tantivy::Result<Statistics<'s>> {
        let readers = Arc::new(readers);
        let mut segments = Vec::with_capacity(searcher.segment_readers().len());
        for reader in searcher.segment_readers() {
            let key = ViewKey {
                segment: reader.segment_id(),
                deleted: reader.num_deleted_docs(),
                readers: readers.clone(),
            };
            let kept = self.kept.lock().unwrap().get(&key).cloned();
            let view = match kept {
                Some(view) => view,
                None => {
                    // Counted outside the lock: other callers go on.
                    let view = Arc::new(SegmentView::count(reader, &readers)?);
                    self.keep(searcher, key, view.clone());
                    view
                }
            };
            segments.push((reader, view));
        }
        Ok(Statistics { segments })
    }

    fn keep(&self, searcher: &Searcher, key: ViewKey, view: Arc<SegmentView>) {
        let mut kept = self.kept.lock().unwrap();
        if kept.len() >= MAX_VIEWS {
            // Sets of segments merged away or of older deletions go first;
            // if that is not enough, every set is counted again as needed.
            let live: Vec<(SegmentId, DocId)> = searcher
                .segment_readers()
                .iter()
                .map(|r| (r.segment_id(), r.num_deleted_docs()))
                .collect();
            kept.retain(|k, _| live.contains(&(k.segment, k.deleted)));
            if kept.len() >= MAX_VIEWS {
                kept.clear();
            }
        }
        kept.insert(key, view);
    }
}

impl SegmentView {
    fn count(reader: &SegmentReader, readers: &Readers) -> tantivy::Result<SegmentView> {
        let mut visible = BitSet::with_max_value(reader.max_doc());
        let alive = reader.alive_bitset();
        for term in readers {
            let index = reader.inverted_index(term.field())?;
            let Some(mut postings) = index.read_postings(term, IndexRecordOption::Basic)? else {
                continue;
            };
            let mut doc = postings.doc();
            while doc != TERMINATED {
                if alive.is_none_or(|a| a.is_alive(doc)) {
                    visible.insert(doc);
                }
                doc = postings.advance();
            }
        }
        let count = visible.len() as u64;
        Ok(SegmentView {
            whole: count == u64::from(reader.max_doc()),
            visible,
            count,
            tokens: Mutex::default(),
            doc_freqs: Mutex::default(),
        })
    }

    /// Summed from the records' lengths (`fieldnorm`s) even where the
    /// segment's own total would do: that total is exact where lengths are
    /// rounded, and a segment merged with hidden records would then change
    /// the sum.
    fn tokens(&self, reader: &SegmentReader, field: Field) -> tantivy::Result<u64> {
        if let Some(n) = self.tokens.lock().unwrap().get(&field) {
            return Ok(*n);
        }
        let norms = reader.get_fieldnorms_reader(field)?;
        let n = (0..reader.max_doc())
            .filter(|doc| self.visible.contains(*doc))
            .map(|doc| u64::from(norms.fieldnorm(doc)))
            .sum();
        self.tokens.lock().unwrap().insert(field, n);
        Ok(n)
    }

    fn doc_freq(&self, reader: &SegmentReader, term: &Term) -> tantivy::Result<u64> {
        let index = reader.inverted_index(term.field())?;
        if self.whole {
            return Ok(u64::from(index.doc_freq(term)?));
        }
        if let Some(n) = self.doc_freqs.lock().unwrap().get(term) {
            return Ok(*n);
        }
        let mut n = 0;
        if let Some(mut postings) = index.read_postings(term, IndexRecordOption::Basic)? {
            let mut doc = postings.doc();
            while doc != TERMINATED {
                n += u64::from(self.visible.contains(doc));
                doc = postings.advance();
            }
        }
        let mut kept = self.doc_freqs.lock().unwrap();
        if kept.len() >= MAX_TERMS {
            kept.clear();
        }
        kept.insert(term.clone(), n);
        Ok(n)
    }
}

/// BM25's statistics over one caller's records of one searcher.
pub struct Statistics<'s> {
    segments: Vec<(&'s SegmentReader, Arc<SegmentView>)>,
}

impl Bm25StatisticsProvider for Statistics<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        self.segments
            .iter()
            .map(|(reader, view)| view.tokens(reader, field))
            .sum()
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Ok(self.segments.iter().map(|(_, view)| view.count).sum())
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        self.segments
            .iter()
            .map(|(reader, view)| view.doc_freq(reader, term))
            .sum()
    }
}
