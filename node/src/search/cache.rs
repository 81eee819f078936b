//! Caches in front of the index, for the searches people repeat: a
//! catalogue's front page, a territory's usual queries.
//!
//! - Facet counts per segment and query. A segment never changes but for its
//!   deletions, so its counts hold, across commits, until it gets a deletion
//!   or is merged away: a sync adds small segments beside the big ones, and
//!   a search only counts in the new ones.
//! - Whole result pages per searcher generation: until the next commit.
//!   Ranking is not cached per segment, because a score depends on the whole
//!   index (how rare a word is), which every commit changes.
//! - The warmer counts the recently asked queries on each new segment
//!   before the searcher holding it is published (tantivy runs it in
//!   `reload`, on the indexer's thread), so a search after a commit does not
//!   pay for the segments the commit added.
//!
//! Keys hold the caller (`Viewer`), so a cached answer is only ever given to
//! a caller that may see what it counts. Nothing here does IO.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rustc_hash::FxHashMap;
use tantivy::index::SegmentId;
use tantivy::query::EnableScoring;
use tantivy::{Opstamp, Searcher, SearcherGeneration, SegmentReader};

use super::query::Queries;
use super::tally::{SirenTables, Tallied, Tally};
use super::{Bucket, Filters, Hit};
use crate::node::Viewer;

/// At most this much of facet counts (estimated bytes) are kept.
const FACET_BYTES: usize = 64 << 20;
/// At most this many result pages are kept (of one searcher generation).
const PAGES: usize = 1024;
/// The warmer counts this many of the queries asked most recently.
const WARMED: usize = 32;
/// Queries remembered as recently asked.
const RECENT: usize = 256;

/// A search as asked: its words (trimmed), its filters and who asks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub text: String,
    pub filters: Filters,
    pub viewer: Viewer,
}

/// What a page of results holds that the index decides.
pub struct Page {
    pub total: u64,
    pub hits: Vec<Hit>,
    pub facets: BTreeMap<String, Vec<Bucket>>,
}

/// A segment as a searcher sees it: its deletions included.
type SegmentKey = (SegmentId, Option<Opstamp>, Arc<Key>);

#[derive(Default)]
pub struct Caches {
    facets: Mutex<Facets>,
    pages: Mutex<Pages>,
    counters: [AtomicU64; 4],
}

/// How often the caches answered (since the node started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Segments whose counts were found (by a search or the warmer), and
    /// segments counted.
    pub facet_hits: u64,
    pub facet_misses: u64,
    /// Searches answered with a kept page, and searches computed.
    pub page_hits: u64,
    pub page_misses: u64,
}

const FACET_HIT: usize = 0;
const FACET_MISS: usize = 1;
const PAGE_HIT: usize = 2;
const PAGE_MISS: usize = 3;

/// Two generations of entries: new ones go to `young`; when it is full it
/// becomes `old`, and what was `old` is dropped unless used meanwhile (a hit
/// in `old` moves the entry back to `young`). An approximation of "least
/// recently used" that costs nothing per hit.
#[derive(Default)]
struct Facets {
    young: FxHashMap<SegmentKey, Arc<Tallied>>,
    old: FxHashMap<SegmentKey, Arc<Tallied>>,
    young_bytes: usize,
    /// Queries recently asked, with the tick of their last use.
    recent: FxHashMap<Arc<Key>, u64>,
    tick: u64,
}

#[derive(Default)]
struct Pages {
    generation: u64,
    pages: FxHashMap<(Arc<Key>, usize, usize), Arc<Page>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Caches {
    fn count(&self, which: usize, found: bool) {
        self.counters[which + usize::from(!found)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> CacheStats {
        let n = |i: usize| self.counters[i].load(Ordering::Relaxed);
        CacheStats {
            facet_hits: n(FACET_HIT),
            facet_misses: n(FACET_MISS),
            page_hits: n(PAGE_HIT),
            page_misses: n(PAGE_MISS),
        }
    }

    /// The counts of `key`'s matches in `segment`, if known.
    pub fn facets(&self, segment: &SegmentReader, key: &Arc<Key>) -> Option<Arc<Tallied>> {
        let at = (segment.segment_id(), segment.delete_opstamp(), key.clone());
        let mut f = lock(&self.facets);
        let found = match f.young.get(&at) {
            Some(t) => Some(t.clone()),
            None => f.old.remove(&at).inspect(|t| f.keep(at, t.clone())),
        };
        drop(f);
        self.count(FACET_HIT, found.is_some());
        found
    }

    pub fn keep_facets(&self, segment: &SegmentReader, key: &Arc<Key>, counts: Arc<Tallied>) {
        let at = (segment.segment_id(), segment.delete_opstamp(), key.clone());
        lock(&self.facets).keep(at, counts);
    }

    /// Notes that `key` was asked: the warmer counts recent queries.
    pub fn asked(&self, key: &Arc<Key>) {
        let mut f = lock(&self.facets);
        f.tick += 1;
        let tick = f.tick;
        f.recent.insert(key.clone(), tick);
        if f.recent.len() > RECENT {
            let mut ticks: Vec<u64> = f.recent.values().copied().collect();
            let (_, nth, _) = ticks.select_nth_unstable_by(RECENT / 2, |a, b| b.cmp(a));
            let keep_from = *nth;
            f.recent.retain(|_, t| *t >= keep_from);
        }
    }

    /// The `n` queries asked most recently, the latest first.
    fn recent(&self, n: usize) -> Vec<Arc<Key>> {
        let f = lock(&self.facets);
        let mut v: Vec<(&Arc<Key>, u64)> = f.recent.iter().map(|(k, t)| (k, *t)).collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1));
        v.into_iter().take(n).map(|(k, _)| k.clone()).collect()
    }

    /// The page of `key` as the searcher of `generation` gave it, if kept.
    pub fn page(
        &self,
        generation: u64,
        key: &Arc<Key>,
        page: usize,
        size: usize,
    ) -> Option<Arc<Page>> {
        let p = lock(&self.pages);
        let found = (p.generation == generation)
            .then(|| p.pages.get(&(key.clone(), page, size)).cloned())
            .flatten();
        drop(p);
        self.count(PAGE_HIT, found.is_some());
        found
    }

    pub fn keep_page(
        &self,
        generation: u64,
        key: &Arc<Key>,
        page: usize,
        size: usize,
        found: Arc<Page>,
    ) {
        let mut p = lock(&self.pages);
        // Pages of an older searcher are stale; a searcher older than the
        // kept pages' must not replace them.
        if p.generation < generation {
            p.generation = generation;
            p.pages.clear();
        } else if p.generation > generation {
            return;
        }
        if p.pages.len() >= PAGES {
            p.pages.clear();
        }
        p.pages.insert((key.clone(), page, size), found);
    }

    /// Forgets every cached answer (the recent queries stay).
    pub fn clear(&self) {
        let mut f = lock(&self.facets);
        f.young.clear();
        f.old.clear();
        f.young_bytes = 0;
        drop(f);
        lock(&self.pages).pages.clear();
    }

    /// Keeps only the counts of segments some searcher still holds.
    fn retain(&self, live: &HashSet<(SegmentId, Option<Opstamp>)>) {
        let mut f = lock(&self.facets);
        f.old.retain(|(id, del, _), _| live.contains(&(*id, *del)));
        f.young
            .retain(|(id, del, _), _| live.contains(&(*id, *del)));
        f.young_bytes = f.young.values().map(|t| t.bytes()).sum();
    }
}

impl Facets {
    fn keep(&mut self, at: SegmentKey, counts: Arc<Tallied>) {
        let bytes = counts.bytes();
        if self.young_bytes + bytes > FACET_BYTES / 2 {
            self.old = std::mem::take(&mut self.young);
            self.young_bytes = 0;
        }
        self.young_bytes += bytes;
        if let Some(before) = self.young.insert(at, counts) {
            self.young_bytes -= before.bytes();
        }
    }
}

/// Counts the recent queries' facets on a new searcher's segments, before
/// it answers searches; and forgets the segments no searcher holds.
pub struct Warmer {
    pub queries: Arc<Queries>,
    pub sirens: Arc<SirenTables>,
    pub caches: Arc<Caches>,
}

impl tantivy::Warmer for Warmer {
    fn warm(&self, searcher: &Searcher) -> tantivy::Result<()> {
        for key in self.caches.recent(WARMED) {
            // A query that no longer parses (it did when asked) is skipped:
            // warming is only ever a head start.
            let Ok(query) = self.queries.query(&key.text, &key.filters, &key.viewer) else {
                continue;
            };
            let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
            let tally = Tally::facets(&self.sirens).cached(&self.caches, key);
            for (ord, segment) in searcher.segment_readers().iter().enumerate() {
                use tantivy::collector::Collector;
                tally.collect_segment(weight.as_ref(), ord as u32, segment)?;
            }
        }
        Ok(())
    }

    fn garbage_collect(&self, live: &[&SearcherGeneration]) {
        let live: HashSet<(SegmentId, Option<Opstamp>)> = live
            .iter()
            .flat_map(|g| g.segments().iter().map(|(id, del)| (*id, *del)))
            .collect();
        self.caches.retain(&live);
    }
}
