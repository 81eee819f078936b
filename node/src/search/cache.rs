//! Caches in front of the index, for the searches people repeat: a
//! catalogue's front page, a territory's usual queries.
//!
//! - Facet counts per segment and query. A segment never changes but for its
//!   deletions, so its counts hold, across commits, until it gets a deletion
//!   or is merged away: a sync adds small segments beside the big ones, and
//!   a search only counts in the new ones.
//! - Whole result pages per searcher generation, until the next commit.
//!   Ranking is not cached per segment, because a score depends on the whole
//!   index (how rare a word is), which every commit changes.
//! - Statistics per searcher generation, as pages: a chef de file asking
//!   for its territory's figures again on a quiet node gets them at once.
//!   They are not warmed: one costs a fraction of a second on a large
//!   catalogue, too much to redo at every commit of a sync.
//! - The warmer readies a new searcher before it is published (tantivy runs
//!   it in `reload`, on the indexer's thread): for the searches recently
//!   asked more than once, it counts their matches in the commit's new
//!   segments and makes again the pages kept for them, as Solr autowarms its
//!   caches. So a commit does not make the next searches slow. What it does
//!   is bounded (32 queries, their pages within the first 100 results, 64
//!   pages, 250 ms), so that callers cannot make every commit expensive.
//!
//! Keys hold the caller (`Viewer`), so a cached answer is only ever given to
//! the caller it was computed for. Nothing here does IO.

use std::collections::{BTreeMap, HashSet};
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rustc_hash::FxHashMap;
use tantivy::collector::Collector;
use tantivy::index::SegmentId;
use tantivy::query::EnableScoring;
use tantivy::{Opstamp, Searcher, SearcherGeneration, SegmentReader};

use super::page::Engine;
use super::tally::{Counted, Tally};
use super::{Bucket, Figures, Filters, GroupBy, Hit};
use crate::viewer::Viewer;

/// At most this much of facet counts (estimated bytes) are kept.
const FACET_BYTES: usize = 64 << 20;
/// At most this many result pages are kept per searcher generation.
const PAGES: usize = 1024;
/// At most this many statistics are kept per searcher generation.
const STATS: usize = 256;
/// The warmer readies this many of the queries asked again most recently.
const WARMED: usize = 32;
/// ... only their pages within the first this many results (deep pages are
/// rarely asked again, and cost the most: anyone may ask for them) ...
const WARMED_DEPTH: usize = 100;
/// ... at most this many pages in all ...
const WARMED_PAGES: usize = 64;
/// ... and for no longer than this: past it, the rest are computed when
/// asked. What a commit costs does not depend on what anonymous callers ask.
const WARM_BUDGET: std::time::Duration = std::time::Duration::from_millis(250);
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

/// Statistics as asked: the filters, the grouping and who asks.
type StatsKey = (Filters, GroupBy, Viewer);

#[derive(Default)]
pub struct Caches {
    facets: Mutex<Facets>,
    pages: Mutex<Generations<(Arc<Key>, usize, usize), Page>>,
    stats: Mutex<Generations<StatsKey, Figures>>,
    /// Apart from `facets`, which the warmer (a low-priority thread) takes
    /// for every segment: a search that finds its page needs only this lock
    /// and `pages`.
    recent: Mutex<Recent>,
    counters: [AtomicU64; 6],
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
    /// Statistics answered from the cache, and statistics computed.
    pub stats_hits: u64,
    pub stats_misses: u64,
}

impl std::ops::Sub for CacheStats {
    type Output = CacheStats;

    /// What happened between two readings.
    fn sub(self, before: CacheStats) -> CacheStats {
        CacheStats {
            facet_hits: self.facet_hits - before.facet_hits,
            facet_misses: self.facet_misses - before.facet_misses,
            page_hits: self.page_hits - before.page_hits,
            page_misses: self.page_misses - before.page_misses,
            stats_hits: self.stats_hits - before.stats_hits,
            stats_misses: self.stats_misses - before.stats_misses,
        }
    }
}

const FACET_HIT: usize = 0;
const FACET_MISS: usize = 1;
const PAGE_HIT: usize = 2;
const PAGE_MISS: usize = 3;
const STATS_HIT: usize = 4;
const STATS_MISS: usize = 5;

/// Two generations of entries: new ones go to `young`; when it is full it
/// becomes `old`, and what was `old` is dropped unless used meanwhile (a hit
/// in `old` moves the entry back to `young`). An approximation of "least
/// recently used" that costs nothing per hit.
#[derive(Default)]
struct Facets {
    young: FxHashMap<SegmentKey, Arc<Counted>>,
    old: FxHashMap<SegmentKey, Arc<Counted>>,
    young_bytes: usize,
}

/// Queries recently asked: the tick of their last use, and how many times
/// they were asked.
#[derive(Default)]
struct Recent {
    asked: FxHashMap<Arc<Key>, (u64, u32)>,
    tick: u64,
}

/// Answers per searcher generation: the newest two, because searches that
/// began before a reload still use the older one.
struct Generations<K, V>(BTreeMap<u64, FxHashMap<K, Arc<V>>>);

impl<K, V> Default for Generations<K, V> {
    fn default() -> Self {
        Generations(BTreeMap::new())
    }
}

impl<K: Hash + Eq, V> Generations<K, V> {
    fn get(&self, generation: u64, key: &K) -> Option<Arc<V>> {
        self.0.get(&generation)?.get(key).cloned()
    }

    /// Keeps `value`, `cap` entries at most per generation: when full, the
    /// generation's entries are all dropped (a new searcher comes with
    /// every commit anyway).
    fn keep(&mut self, generation: u64, key: K, value: Arc<V>, cap: usize) {
        if !self.0.contains_key(&generation) {
            // Older than both kept generations: that searcher is going.
            if self.0.len() >= 2 && self.0.keys().all(|g| *g > generation) {
                return;
            }
            self.0.insert(generation, FxHashMap::default());
            while self.0.len() > 2 {
                self.0.pop_first();
            }
        }
        let Some(kept) = self.0.get_mut(&generation) else {
            return;
        };
        if kept.len() >= cap {
            kept.clear();
        }
        kept.insert(key, value);
    }

    /// The keys kept for the newest generation.
    fn newest(&self) -> impl Iterator<Item = &K> {
        self.0
            .values()
            .next_back()
            .into_iter()
            .flat_map(|m| m.keys())
    }
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
            stats_hits: n(STATS_HIT),
            stats_misses: n(STATS_MISS),
        }
    }

    /// The counts of `key`'s matches in `segment`, if known in `numbering`.
    pub fn facets(
        &self,
        segment: &SegmentReader,
        key: &Arc<Key>,
        numbering: u64,
    ) -> Option<Arc<Counted>> {
        let at = (segment.segment_id(), segment.delete_opstamp(), key.clone());
        let (found, evicted) = lock(&self.facets).get(at, FACET_BYTES);
        // Freed outside the lock.
        drop(evicted);
        let found = found.filter(|c| c.numbering() == numbering);
        self.count(FACET_HIT, found.is_some());
        found
    }

    pub fn keep_facets(&self, segment: &SegmentReader, key: &Arc<Key>, counts: Arc<Counted>) {
        let at = (segment.segment_id(), segment.delete_opstamp(), key.clone());
        let evicted = lock(&self.facets).keep(at, counts, FACET_BYTES);
        // Freed outside the lock.
        drop(evicted);
    }

    /// Notes that `key` was asked: the warmer readies recent queries.
    pub fn asked(&self, key: &Arc<Key>) {
        let mut r = lock(&self.recent);
        r.tick += 1;
        let tick = r.tick;
        let asked = r.asked.entry(key.clone()).or_insert((tick, 0));
        *asked = (tick, asked.1.saturating_add(1));
        if r.asked.len() > RECENT {
            let mut ticks: Vec<u64> = r.asked.values().map(|(t, _)| *t).collect();
            let (_, nth, _) = ticks.select_nth_unstable_by(RECENT / 2, |a, b| b.cmp(a));
            let keep_from = *nth;
            r.asked.retain(|_, (t, _)| *t >= keep_from);
        }
    }

    /// The `n` queries asked more than once that were asked most recently,
    /// the latest first (a search asked once is not worth readying), each
    /// with the (page, page size) kept for it in the newest generation.
    fn recent(&self, n: usize) -> Vec<(Arc<Key>, Vec<(usize, usize)>)> {
        let mut v: Vec<(Arc<Key>, u64)> = lock(&self.recent)
            .asked
            .iter()
            .filter(|(_, (_, asked))| *asked > 1)
            .map(|(k, (t, _))| (k.clone(), *t))
            .collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1));
        v.truncate(n);
        // Copied out, then matched: the caller is the low-priority warmer,
        // and searches take the same lock.
        let kept: Vec<(Arc<Key>, usize, usize)> = lock(&self.pages).newest().cloned().collect();
        let mut wanted: FxHashMap<Arc<Key>, Vec<(usize, usize)>> =
            v.iter().map(|(k, _)| (k.clone(), Vec::new())).collect();
        for (key, page, size) in kept {
            if let Some(pages) = wanted.get_mut(&key) {
                pages.push((page, size));
            }
        }
        v.into_iter()
            .map(|(key, _)| {
                let pages = wanted.remove(&key).unwrap_or_default();
                (key, pages)
            })
            .collect()
    }

    /// The page of `key` as the searcher of `generation` gave it, if kept.
    pub fn page(
        &self,
        generation: u64,
        key: &Arc<Key>,
        page: usize,
        size: usize,
    ) -> Option<Arc<Page>> {
        let found = lock(&self.pages).get(generation, &(key.clone(), page, size));
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
        lock(&self.pages).keep(generation, (key.clone(), page, size), found, PAGES);
    }

    /// The statistics the searcher of `generation` gave, if kept.
    pub fn stats_figures(
        &self,
        generation: u64,
        filters: &Filters,
        by: GroupBy,
        viewer: &Viewer,
    ) -> Option<Arc<Figures>> {
        // A key is built to look up: statistics are asked seldom enough.
        let key = (filters.clone(), by, viewer.clone());
        let found = lock(&self.stats).get(generation, &key);
        self.count(STATS_HIT, found.is_some());
        found
    }

    pub fn keep_stats_figures(
        &self,
        generation: u64,
        filters: &Filters,
        by: GroupBy,
        viewer: &Viewer,
        figures: Arc<Figures>,
    ) {
        let key = (filters.clone(), by, viewer.clone());
        lock(&self.stats).keep(generation, key, figures, STATS);
    }

    /// Forgets every cached answer (the recent queries stay).
    pub fn clear(&self) {
        let mut f = lock(&self.facets);
        f.young.clear();
        f.old.clear();
        f.young_bytes = 0;
        drop(f);
        lock(&self.pages).0.clear();
        lock(&self.stats).0.clear();
    }

    /// Keeps only the counts of segments, and the pages of generations,
    /// that some searcher still holds.
    fn retain(&self, segments: &HashSet<(SegmentId, Option<Opstamp>)>, generations: &HashSet<u64>) {
        let mut f = lock(&self.facets);
        let live = |(id, del, _): &SegmentKey| segments.contains(&(*id, *del));
        f.old.retain(|at, _| live(at));
        f.young.retain(|at, _| live(at));
        f.young_bytes = f.young.values().map(|t| t.bytes()).sum();
        drop(f);
        lock(&self.pages).0.retain(|g, _| generations.contains(g));
        lock(&self.stats).0.retain(|g, _| generations.contains(g));
    }
}

/// Entries a `Facets` let go of, for the caller to free once it has let go
/// of the lock.
type Evicted = FxHashMap<SegmentKey, Arc<Counted>>;

impl Facets {
    /// The counts kept under `at`; found in `old`, they are young again.
    fn get(&mut self, at: SegmentKey, cap: usize) -> (Option<Arc<Counted>>, Evicted) {
        if let Some(t) = self.young.get(&at) {
            return (Some(t.clone()), Evicted::default());
        }
        match self.old.remove(&at) {
            Some(t) => (Some(t.clone()), self.keep(at, t, cap)),
            None => (None, Evicted::default()),
        }
    }

    /// Keeps `counts`, `cap` bytes at most in both generations.
    fn keep(&mut self, at: SegmentKey, counts: Arc<Counted>, cap: usize) -> Evicted {
        let bytes = counts.bytes();
        let mut evicted = Evicted::default();
        if self.young_bytes + bytes > cap / 2 {
            evicted = std::mem::replace(&mut self.old, std::mem::take(&mut self.young));
            self.young_bytes = 0;
        }
        self.young_bytes += bytes;
        if let Some(before) = self.young.insert(at, counts) {
            self.young_bytes -= before.bytes();
        }
        evicted
    }
}

/// Readies a new searcher before it answers searches; forgets the segments
/// and generations no searcher holds.
pub struct Warmer(pub Arc<Engine>);

impl tantivy::Warmer for Warmer {
    /// Never fails: warming is only ever a head start, and a failure here
    /// would fail the reload, and with it the indexer's commit.
    fn warm(&self, searcher: &Searcher) -> tantivy::Result<()> {
        let engine = &self.0;
        let generation = searcher.generation().generation_id();
        let deadline = std::time::Instant::now() + WARM_BUDGET;
        let mut pages_left = WARMED_PAGES;
        for (key, mut pages) in engine.caches.recent(WARMED) {
            if std::time::Instant::now() >= deadline {
                break;
            }
            pages.retain(|&(page, size)| page.saturating_mul(size) <= WARMED_DEPTH);
            pages.truncate(pages_left);
            pages_left -= pages.len();
            let ready = || -> Result<(), String> {
                // It parsed when it was asked.
                let query = engine
                    .queries
                    .query(&key.text, &key.filters, &key.viewer)
                    .map_err(|e| e.to_string())?;
                // Through the cache: the segments it holds cost nothing.
                let weight = query
                    .weight(EnableScoring::disabled_from_searcher(searcher))
                    .map_err(|e| e.to_string())?;
                let tally = Tally::facets(&engine.numbering).cached(&engine.caches, key.clone());
                for (ord, segment) in searcher.segment_readers().iter().enumerate() {
                    tally
                        .collect_segment(weight.as_ref(), ord as u32, segment)
                        .map_err(|e| e.to_string())?;
                }
                for &(page, size) in &pages {
                    let offset = (page - 1) * size;
                    let found = engine
                        .page(searcher, &key, query.box_clone(), offset, size)
                        .map_err(|e| e.to_string())?;
                    engine
                        .caches
                        .keep_page(generation, &key, page, size, Arc::new(found));
                }
                Ok(())
            };
            if let Err(e) = ready() {
                tracing::warn!(query = %key.text, error = %e, "could not ready a search for the new index; it will be computed when asked");
            }
        }
        Ok(())
    }

    fn garbage_collect(&self, live: &[&SearcherGeneration]) {
        let segments: HashSet<(SegmentId, Option<Opstamp>)> = live
            .iter()
            .flat_map(|g| g.segments().iter().map(|(id, del)| (*id, *del)))
            .collect();
        let generations = live.iter().map(|g| g.generation_id()).collect();
        self.0.caches.retain(&segments, &generations);
        self.0
            .numbering
            .retain(&segments.iter().map(|(id, _)| *id).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_used_again_stay_and_the_others_go() {
        let key = Arc::new(Key {
            text: "budget".into(),
            filters: Filters::default(),
            viewer: Viewer::Operator,
        });
        let segments: Vec<SegmentKey> = (0..6)
            .map(|_| (SegmentId::generate_random(), None, key.clone()))
            .collect();
        let counts = Arc::new(Counted::default());
        // Room for three entries per generation.
        let cap = 2 * 3 * counts.bytes();
        let mut f = Facets::default();
        for at in &segments[..4] {
            f.keep(at.clone(), counts.clone(), cap);
        }
        // The fourth made the first three old.
        assert_eq!((f.young.len(), f.old.len()), (1, 3));
        // Used again: young again.
        assert!(f.get(segments[0].clone(), cap).0.is_some());
        assert_eq!((f.young.len(), f.old.len()), (2, 2));
        f.keep(segments[4].clone(), counts.clone(), cap);
        // Young is full: the old entries not used since go.
        let evicted = f.keep(segments[5].clone(), counts.clone(), cap);
        let mut gone: Vec<String> = evicted.keys().map(|k| k.0.uuid_string()).collect();
        gone.sort();
        let mut want: Vec<String> = [1, 2].map(|i| segments[i].0.uuid_string()).to_vec();
        want.sort();
        assert_eq!(gone, want);
        for (i, at) in segments.iter().enumerate() {
            let kept = f.get(at.clone(), cap).0.is_some();
            assert_eq!(kept, ![1, 2].contains(&i), "segment {i}");
        }
    }
}
