//! A collector that counts the values of keyword fields and sums number
//! fields over every matching document, from the fast-field columns: facets
//! and statistics cost a few column reads per match, and no stored document.
//!
//! Values are counted by number, not by text: every value of a counted field
//! gets a number once (`Numbering`), and each segment a table from its term
//! ordinals to those numbers, made once (segments never change). A search
//! then counts in an array, adds segments' counts as numbers, and reads the
//! text of the few values it shows. Reading a segment's dictionary, or
//! hashing values as text, for every segment of every search cost more than
//! the counting itself.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rustc_hash::FxHashMap;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Cardinality, Column, StrColumn};
use tantivy::index::SegmentId;
use tantivy::query::Weight;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use super::cache::{Caches, Key};
use super::{Bucket, Facet};

/// Counts of `counted` fields' values and sums of `summed` fields.
pub struct Tally<'a> {
    counted: Vec<Facet>,
    summed: Vec<&'static str>,
    within: Option<(&'static str, Arc<HashSet<String>>)>,
    /// The numbering this tally counts in, from start to end.
    numbers: Arc<Numbers>,
    /// Where each segment's counts are looked up and kept, and under what.
    cached: Option<(&'a Caches, Arc<Key>)>,
}

impl<'a> Tally<'a> {
    pub fn new(counted: &[Facet], summed: &[&'static str], numbering: &Numbering) -> Tally<'a> {
        Tally {
            counted: counted.to_vec(),
            summed: summed.to_vec(),
            within: None,
            numbers: numbering.current(),
            cached: None,
        }
    }

    /// The facets a search shows.
    pub fn facets(numbering: &Numbering) -> Tally<'a> {
        Tally::new(&Facet::SEARCHED, &[], numbering)
    }

    /// Counts of a segment are looked up in `caches` under `key` (the
    /// search whose matches these are), and kept there.
    pub fn cached(mut self, caches: &'a Caches, key: Arc<Key>) -> Tally<'a> {
        self.cached = Some((caches, key));
        self
    }

    /// Only documents whose `field` is one of `values` (a join: project
    /// details whose project matched).
    pub fn within(mut self, field: &'static str, values: Arc<HashSet<String>>) -> Tally<'a> {
        self.within = Some((field, values));
        self
    }
}

impl Tally<'_> {
    /// The counts of this tally's query in `reader`'s segment, if cached.
    pub fn counted_before(&self, reader: &SegmentReader) -> Option<Arc<Counted>> {
        let (caches, key) = self.cached.as_ref()?;
        // Counts made in another numbering do not add up with this one's.
        caches.facets(reader, key, self.numbers.id)
    }

    /// Caches `counted`, the counts of this tally's query in `reader`'s
    /// segment (if this tally is cached).
    pub fn keep(&self, reader: &SegmentReader, counted: &Arc<Counted>) {
        if let Some((caches, key)) = &self.cached {
            caches.keep_facets(reader, key, counted.clone());
        }
    }
}

/// Values numbered past this many (or past twice those the live segments
/// hold, if more), the next search starts a new numbering: dataset themes
/// are free text, and the values of merged-away segments must not pile up.
/// About 100 bytes each.
const MAX_VALUES: usize = 1 << 20;
/// (segment, field) tables kept before all are dropped. The warmer drops
/// those of segments no searcher holds (`Numbering::retain`), so this is
/// only a backstop: an index has a few dozen segments, each with a table
/// per counted field (`Facet`: seven).
const MAX_TABLES: usize = 4096;

/// The numbering searches count in. It is only ever replaced, never changed
/// under a search: a search keeps the one it started with.
#[derive(Default)]
pub struct Numbering(Mutex<Arc<Numbers>>);

impl Numbering {
    /// Forgets the tables of segments no searcher holds any more: a column
    /// keeps its segment's files open, and merged-away files take disk
    /// space until they are closed.
    pub fn retain(&self, live: &HashSet<SegmentId>) {
        let current = self.current();
        let mut k = current.known.write().unwrap_or_else(|p| p.into_inner());
        k.tables.retain(|(segment, _), _| live.contains(segment));
    }

    pub(super) fn current(&self) -> Arc<Numbers> {
        let mut current = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if current.full.load(Ordering::Relaxed) {
            // Room for twice the values the segments still searched hold:
            // a numbering those alone fill would otherwise be replaced at
            // every search.
            let live = current.live_values();
            *current = Arc::new(Numbers::with_limit(MAX_VALUES.max(2 * live)));
        }
        current.clone()
    }

    /// Makes the next search start a new numbering.
    #[cfg(test)]
    pub fn replace_soon(&self) {
        let current = self.0.lock().unwrap_or_else(|p| p.into_inner());
        current.full.store(true, Ordering::Relaxed);
    }
}

/// Every value of the counted fields seen, numbered densely from 1 (0: no
/// value), and per segment and field the number of each term ordinal.
pub struct Numbers {
    /// Tells counts made in this numbering from others (cached counts).
    id: u64,
    known: RwLock<Known>,
    /// Values numbered past which this numbering is `full`.
    limit: usize,
    full: AtomicBool,
}

#[derive(Default)]
struct Known {
    /// Per segment and field, its column (opening one reads its footer and
    /// dictionary: a cost per search and segment) and the number of each of
    /// its term ordinals.
    tables: FxHashMap<(SegmentId, Facet), Table>,
    /// Per field, the number of each value (as the index holds it).
    numbers: FxHashMap<Facet, FxHashMap<Box<[u8]>, u32>>,
    /// Values by number; number 0 is none.
    values: Vec<Box<str>>,
    /// The field of each number, as an index in `fields`: a merged count is
    /// split by field reading one byte per value.
    field_of: Vec<u8>,
    fields: Vec<Facet>,
}

/// A segment's keyword column, and the number of each of its term ordinals.
#[derive(Clone)]
struct Table {
    column: StrColumn,
    numbers: Arc<Vec<u32>>,
}

impl Known {
    /// The number of `field`'s value `term`, if it has one (0 for the
    /// empty value).
    fn get(&self, field: Facet, term: &[u8]) -> Option<u32> {
        if term.is_empty() {
            return Some(0);
        }
        self.numbers.get(&field)?.get(term).copied()
    }

    /// The number of `field`'s value `term`, given now if it has none (0
    /// for the empty value).
    fn number(&mut self, field: Facet, term: Box<[u8]>) -> u32 {
        if term.is_empty() {
            return 0;
        }
        let next = self.values.len() as u32;
        let text: Box<str> = String::from_utf8_lossy(&term).into();
        let n = *self
            .numbers
            .entry(field)
            .or_default()
            .entry(term)
            .or_insert(next);
        if n == next {
            self.values.push(text);
            let f = match self.fields.iter().position(|f| *f == field) {
                Some(f) => f,
                None => {
                    self.fields.push(field);
                    self.fields.len() - 1
                }
            };
            // A tally counts a handful of fields, all a `Facet` (u8::MAX is
            // "no field").
            debug_assert!(f < usize::from(u8::MAX));
            self.field_of.push(u8::try_from(f).unwrap_or(u8::MAX));
        }
        n
    }
}

impl Default for Numbers {
    fn default() -> Self {
        Numbers::with_limit(MAX_VALUES)
    }
}

impl Numbers {
    fn with_limit(limit: usize) -> Numbers {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Numbers {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            known: RwLock::new(Known {
                values: vec!["".into()],
                field_of: vec![u8::MAX],
                ..Known::default()
            }),
            limit,
            full: AtomicBool::new(false),
        }
    }

    /// How many values the tables kept (those of the segments searched
    /// lately) hold.
    pub(super) fn live_values(&self) -> usize {
        let k = self.read();
        let mut live = vec![false; k.values.len()];
        for table in k.tables.values() {
            for &n in table.numbers.iter() {
                if let Some(l) = live.get_mut(n as usize) {
                    *l = n != 0;
                }
            }
        }
        live.into_iter().filter(|l| *l).count()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Known> {
        self.known.read().unwrap_or_else(|p| p.into_inner())
    }

    /// `field`'s column in `reader`'s segment and the number of each of
    /// its term ordinals (0 for the empty value); none if no document of
    /// the segment has the field.
    fn table(&self, reader: &SegmentReader, field: Facet) -> tantivy::Result<Option<Table>> {
        let key = (reader.segment_id(), field);
        if let Some(t) = self.read().tables.get(&key) {
            return Ok(Some(t.clone()));
        }
        let Some(column) = reader.fast_fields().str(field.column())? else {
            return Ok(None);
        };
        // Read outside the lock: two searches may both read it, once.
        let mut terms: Vec<Box<[u8]>> = Vec::with_capacity(column.num_terms());
        if let Ok(mut stream) = column.dictionary().stream() {
            while stream.advance() {
                terms.push(stream.key().into());
            }
        }
        // Values already numbered are looked up under the read lock, which
        // searches share; the write lock, which makes them wait, is only
        // taken for values never seen (a new segment of a known index has
        // few). This runs on the indexer's thread too (the warmer), at a
        // lower priority than searches.
        let mut table = vec![0u32; terms.len()];
        let mut unknown = Vec::new();
        {
            let k = self.read();
            for (ord, term) in terms.iter().enumerate() {
                match k.get(field, term) {
                    Some(n) => table[ord] = n,
                    None => unknown.push(ord),
                }
            }
        }
        let mut k = self.known.write().unwrap_or_else(|p| p.into_inner());
        for ord in unknown {
            table[ord] = k.number(field, std::mem::take(&mut terms[ord]));
        }
        // A dictionary that did not read whole counts nothing.
        table.resize(column.num_terms(), 0);
        if k.values.len() > self.limit {
            self.full.store(true, Ordering::Relaxed);
        }
        if k.tables.len() >= MAX_TABLES {
            k.tables.clear();
        }
        let table = Table {
            column,
            numbers: Arc::new(table),
        };
        k.tables.insert(key, table.clone());
        Ok(Some(table))
    }
}

/// Counts by number, and the numbers counted: a thread's, lent to one
/// segment's count at a time, so that a count reads and resets only the
/// entries it touched. Allocating and zeroing an array as long as every
/// value known (tens of thousands of organisations) for each segment of each
/// search cost more than the counting.
#[derive(Default)]
struct Scratch {
    counts: Vec<u64>,
    touched: Vec<u32>,
}

thread_local! {
    static SPARE: RefCell<Option<Scratch>> = const { RefCell::new(None) };
}

impl Scratch {
    /// This thread's, or a new one if it is lent.
    fn borrow() -> Scratch {
        SPARE.with_borrow_mut(Option::take).unwrap_or_default()
    }

    fn add(&mut self, number: u32, n: u64) {
        if n == 0 {
            // Listed in `touched` only once its count is not zero.
            return;
        }
        let i = number as usize;
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        if self.counts[i] == 0 {
            self.touched.push(number);
        }
        self.counts[i] += n;
    }

    /// (number, count) of every number counted, in no order; the scratch is
    /// all zeros again, and given back to the thread.
    fn give_back(mut self) -> Vec<(u32, u64)> {
        let counts = &mut self.counts;
        let out = self
            .touched
            .drain(..)
            .map(|number| (number, std::mem::take(&mut counts[number as usize])))
            .collect();
        SPARE.with_borrow_mut(|spare| *spare = Some(self));
        out
    }
}

/// What a segment's tally found: the counts of its values, by number, and
/// (sum, how many) per summed field. What the cache keeps per segment.
#[derive(Debug, Default)]
pub struct Counted {
    /// The numbering of `counts`.
    numbering: u64,
    matched: u64,
    counts: Vec<(u32, u64)>,
    sums: Vec<(&'static str, f64, u64)>,
}

impl Counted {
    /// The numbering the counts are in.
    pub fn numbering(&self) -> u64 {
        self.numbering
    }

    /// About how much memory this takes (a cache's measure).
    pub fn bytes(&self) -> usize {
        64 + self.counts.len() * 16 + self.sums.len() * 32
    }
}

/// What a tally found over every segment.
pub struct Tallied {
    /// Documents counted.
    pub matched: u64,
    numbers: Arc<Numbers>,
    /// Per field (by its index in the numbering), (number, count) in no
    /// order.
    counts: Vec<Vec<(u32, u64)>>,
    sums: FxHashMap<&'static str, (f64, u64)>,
}

impl Tallied {
    /// The `limit` most frequent values of `field`, labelled, most frequent
    /// first and equal counts by label. Which of equal counts make the cut
    /// at `limit` is decided by value (labels are only looked up for the
    /// values kept).
    pub fn buckets(&self, field: Facet, limit: usize) -> Vec<Bucket> {
        let known = self.numbers.read();
        let Some(counts) = known
            .fields
            .iter()
            .position(|f| *f == field)
            .and_then(|f| self.counts.get(f))
        else {
            return Vec::new();
        };
        // Values counted fewer times than the one at the cut cannot make
        // it: they are never looked up (thousands of organisations).
        let least = if counts.len() > limit && limit > 0 {
            let mut ns: Vec<u64> = counts.iter().map(|(_, n)| *n).collect();
            *ns.select_nth_unstable_by(limit - 1, |a, b| b.cmp(a)).1
        } else {
            0
        };
        let v: Vec<(String, u64)> = most_frequent(
            counts
                .iter()
                .filter(|(_, n)| *n >= least)
                .filter_map(|&(number, n)| Some((&**known.values.get(number as usize)?, n))),
            limit,
        )
        .into_iter()
        .map(|(value, n)| (value.to_string(), n))
        .collect();
        drop(known);
        let mut buckets: Vec<Bucket> = v
            .into_iter()
            .map(|(value, count)| Bucket {
                label: field.label(&value),
                value,
                count,
            })
            .collect();
        // Equal counts in the order people read them: by name, accents
        // aside ("Échirolles" before "Fontaine"), not by SIREN, which says
        // nothing to a reader.
        buckets.sort_by_cached_key(|b| {
            (
                std::cmp::Reverse(b.count),
                maillage_record::vocab::normalize(&b.label),
                b.label.clone(),
                b.value.clone(),
            )
        });
        buckets
    }

    /// The sum of `field` and how many documents had a value.
    pub fn sum(&self, field: &str) -> (f64, u64) {
        self.sums.get(field).copied().unwrap_or((0.0, 0))
    }
}

/// The `limit` values with the highest counts (ties by value), unordered:
/// a facet shows ten organisations out of thousands, so the rest are only
/// compared with the least of the kept ones, never sorted or copied.
fn most_frequent<K: Ord>(values: impl Iterator<Item = (K, u64)>, limit: usize) -> Vec<(K, u64)> {
    // The kept ones, the least frequent on top (ties: the greatest value).
    let mut kept: BinaryHeap<Reverse<(u64, Reverse<K>)>> = BinaryHeap::new();
    for (value, n) in values {
        let candidate = Reverse((n, Reverse(value)));
        if kept.len() < limit {
            kept.push(candidate);
        } else if let Some(mut least) = kept.peek_mut()
            && candidate < *least
        {
            *least = candidate;
        }
    }
    kept.into_iter()
        .map(|Reverse((n, Reverse(value)))| (value, n))
        .collect()
}

/// The terms of a keyword column under some of its ordinals.
fn terms_of(c: &StrColumn, mut ords: Vec<u64>) -> HashMap<u64, String> {
    ords.sort_unstable();
    ords.dedup();
    let mut names = Vec::with_capacity(ords.len());
    let _ = c.dictionary().sorted_ords_to_term_cb(&ords, |term| {
        names.push(String::from_utf8_lossy(term).into_owned());
    });
    ords.into_iter().zip(names).collect()
}

/// The values of two single-valued keyword fields, document by document
/// (an aggregate's selection: each record's key and organisation).
pub struct Pairs(pub &'static str, pub &'static str);

pub struct SegmentPairs(Option<(StrColumn, StrColumn)>, Vec<(u64, u64)>);

impl Collector for Pairs {
    type Fruit = Vec<(String, String)>;
    type Child = SegmentPairs;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentPairs> {
        let ff = reader.fast_fields();
        Ok(SegmentPairs(
            ff.str(self.0)?.zip(ff.str(self.1)?),
            Vec::new(),
        ))
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        fruits: Vec<Vec<(String, String)>>,
    ) -> tantivy::Result<Vec<(String, String)>> {
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for SegmentPairs {
    type Fruit = Vec<(String, String)>;

    fn collect(&mut self, doc: DocId, _: Score) {
        if let Some((a, b)) = &self.0
            && let (Some(x), Some(y)) = (a.term_ords(doc).next(), b.term_ords(doc).next())
        {
            self.1.push((x, y));
        }
    }

    fn harvest(self) -> Vec<(String, String)> {
        let Some((a, b)) = self.0 else {
            return Vec::new();
        };
        let xs = terms_of(&a, self.1.iter().map(|p| p.0).collect());
        let ys = terms_of(&b, self.1.iter().map(|p| p.1).collect());
        self.1
            .iter()
            .filter_map(|(x, y)| Some((xs.get(x)?.clone(), ys.get(y)?.clone())))
            .collect()
    }
}

/// What a members view says of each organisation: its datasets, projects
/// and reuses among the matches, how many of them `own` (an author's key
/// in hex) signed, and when the last was received.
pub struct Activity {
    pub own: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgActivity {
    pub datasets: u64,
    pub projects: u64,
    pub reuses: u64,
    /// Signed by `own`: published through this node.
    pub through_own: u64,
    /// Milliseconds since the epoch; 0: none.
    pub last_received_ms: i64,
}

pub struct SegmentActivity {
    columns: Option<(StrColumn, StrColumn, StrColumn, Column<i64>)>,
    /// (org, kind, key, received) ordinals and value, per document.
    docs: Vec<(u64, u64, u64, i64)>,
    own: String,
}

impl Collector for Activity {
    type Fruit = HashMap<String, OrgActivity>;
    type Child = SegmentActivity;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentActivity> {
        let ff = reader.fast_fields();
        let columns = match (
            ff.str(Facet::Organisation.column())?,
            ff.str(Facet::Kind.column())?,
            ff.str("key")?,
        ) {
            (Some(o), Some(k), Some(key)) => Some((o, k, key, ff.i64("received")?)),
            _ => None,
        };
        Ok(SegmentActivity {
            columns,
            docs: Vec::new(),
            own: self.own.clone(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        fruits: Vec<HashMap<String, OrgActivity>>,
    ) -> tantivy::Result<HashMap<String, OrgActivity>> {
        let mut out: HashMap<String, OrgActivity> = HashMap::new();
        for fruit in fruits {
            for (org, a) in fruit {
                let o = out.entry(org).or_default();
                o.datasets += a.datasets;
                o.projects += a.projects;
                o.reuses += a.reuses;
                o.through_own += a.through_own;
                o.last_received_ms = o.last_received_ms.max(a.last_received_ms);
            }
        }
        Ok(out)
    }
}

impl SegmentCollector for SegmentActivity {
    type Fruit = HashMap<String, OrgActivity>;

    fn collect(&mut self, doc: DocId, _: Score) {
        if let Some((o, k, key, received)) = &self.columns
            && let (Some(o), Some(k), Some(key)) = (
                o.term_ords(doc).next(),
                k.term_ords(doc).next(),
                key.term_ords(doc).next(),
            )
        {
            self.docs
                .push((o, k, key, received.first(doc).unwrap_or(0)));
        }
    }

    fn harvest(self) -> HashMap<String, OrgActivity> {
        let Some((o, k, key, _)) = &self.columns else {
            return HashMap::new();
        };
        let orgs = terms_of(o, self.docs.iter().map(|d| d.0).collect());
        let kinds = terms_of(k, self.docs.iter().map(|d| d.1).collect());
        let keys = terms_of(key, self.docs.iter().map(|d| d.2).collect());
        let own = format!("{}/", self.own);
        let mut out: HashMap<String, OrgActivity> = HashMap::new();
        for (org, kind, key, received) in &self.docs {
            let (Some(org), Some(kind)) = (orgs.get(org), kinds.get(kind)) else {
                continue;
            };
            let a = out.entry(org.clone()).or_default();
            match kind.as_str() {
                "dataset" => a.datasets += 1,
                "project" => a.projects += 1,
                "reuse" => a.reuses += 1,
                _ => {}
            }
            if keys.get(key).is_some_and(|k| k.starts_with(&own)) {
                a.through_own += 1;
            }
            a.last_received_ms = a.last_received_ms.max(*received);
        }
        out
    }
}

/// Every value of a keyword field among the matches.
pub struct Values(pub &'static str);

pub struct SegmentValues(Option<StrColumn>, HashSet<u64>);

impl Collector for Values {
    type Fruit = HashSet<String>;
    type Child = SegmentValues;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentValues> {
        Ok(SegmentValues(
            reader.fast_fields().str(self.0)?,
            HashSet::new(),
        ))
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<HashSet<String>>) -> tantivy::Result<HashSet<String>> {
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for SegmentValues {
    type Fruit = HashSet<String>;

    fn collect(&mut self, doc: DocId, _: Score) {
        if let Some(c) = &self.0 {
            self.1.extend(c.term_ords(doc));
        }
    }

    fn harvest(self) -> HashSet<String> {
        let Some(c) = self.0 else {
            return HashSet::new();
        };
        let mut ords: Vec<u64> = self.1.into_iter().collect();
        ords.sort_unstable();
        let mut out = HashSet::with_capacity(ords.len());
        let _ = c.dictionary().sorted_ords_to_term_cb(&ords, |term| {
            out.insert(String::from_utf8_lossy(term).into_owned());
        });
        out
    }
}

/// A counted keyword column and the number of each of its term ordinals.
struct Keyword {
    column: StrColumn,
    /// Whether a document may have several values (read one by one).
    multivalued: bool,
    numbers: Arc<Vec<u32>>,
}

pub struct SegmentTally {
    numbering: u64,
    matched: u64,
    /// The join column, the values it must take, and per term ordinal
    /// whether it is one of them (0: not looked up yet, 1: yes, 2: no).
    within: Option<(Option<StrColumn>, Arc<HashSet<String>>, Vec<u8>)>,
    columns: Vec<Keyword>,
    counts: Scratch,
    /// Summed columns: (field, column, sum, how many had a value).
    summed: Vec<(&'static str, Option<Column<f64>>, f64, u64)>,
    /// Column values of one block of documents.
    block: Vec<Option<u64>>,
    block_f64: Vec<Option<f64>>,
}

impl Collector for Tally<'_> {
    type Fruit = Tallied;
    type Child = SegmentTally;

    /// Counts in a segment, or takes its counts from the cache. Only called
    /// by searches that need no scores.
    fn collect_segment(
        &self,
        weight: &dyn Weight,
        segment_ord: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<Arc<Counted>> {
        let count = || -> tantivy::Result<Arc<Counted>> {
            let mut child = self.for_segment(segment_ord, reader)?;
            match reader.alive_bitset() {
                None => weight.for_each_no_score(reader, &mut |docs| child.collect_block(docs))?,
                // Deleted documents taken out, the rest still counted a
                // block at a time.
                Some(alive) => {
                    let mut kept = Vec::new();
                    weight.for_each_no_score(reader, &mut |docs| {
                        kept.clear();
                        kept.extend(docs.iter().copied().filter(|d| alive.is_alive(*d)));
                        child.collect_block(&kept);
                    })?
                }
            }
            Ok(child.harvest())
        };
        if let Some(found) = self.counted_before(reader) {
            return Ok(found);
        }
        let counted = count()?;
        self.keep(reader, &counted);
        Ok(counted)
    }

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentTally> {
        let fast = reader.fast_fields();
        let mut columns = Vec::new();
        for &field in &self.counted {
            let Some(Table { column, numbers }) = self.numbers.table(reader, field)? else {
                continue;
            };
            columns.push(Keyword {
                multivalued: column.ords().get_cardinality() == Cardinality::Multivalued,
                numbers,
                column,
            });
        }
        let summed = self
            .summed
            .iter()
            .map(|name| (*name, fast.f64(name).ok(), 0.0, 0))
            .collect();
        let within = match &self.within {
            None => None,
            Some((field, values)) => {
                let column = fast.str(field)?;
                let terms = column.as_ref().map_or(0, |c| c.num_terms());
                Some((column, values.clone(), vec![0u8; terms]))
            }
        };
        Ok(SegmentTally {
            numbering: self.numbers.id,
            matched: 0,
            within,
            columns,
            counts: Scratch::borrow(),
            summed,
            block: Vec::new(),
            block_f64: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Arc<Counted>>) -> tantivy::Result<Tallied> {
        let mut counts = Scratch::borrow();
        let mut out = Tallied {
            matched: 0,
            numbers: self.numbers.clone(),
            counts: Vec::new(),
            sums: FxHashMap::default(),
        };
        for fruit in &fruits {
            if fruit.numbering != self.numbers.id {
                // `collect_segment` only ever counts in, or takes from the
                // cache counts of, this tally's numbering.
                return Err(tantivy::TantivyError::InternalError(
                    "facet counts of another numbering".into(),
                ));
            }
            out.matched += fruit.matched;
            for &(number, n) in &fruit.counts {
                counts.add(number, n);
            }
            for &(field, sum, n) in &fruit.sums {
                let into = out.sums.entry(field).or_default();
                into.0 += sum;
                into.1 += n;
            }
        }
        let counts = counts.give_back();
        let known = self.numbers.read();
        out.counts = vec![Vec::new(); known.fields.len()];
        for (number, n) in counts {
            let Some(by_field) = known
                .field_of
                .get(number as usize)
                .and_then(|f| out.counts.get_mut(usize::from(*f)))
            else {
                continue;
            };
            by_field.push((number, n));
        }
        Ok(out)
    }
}

impl SegmentTally {
    /// Whether `doc` passes the join, if there is one.
    fn within(&mut self, doc: DocId) -> bool {
        let Some((column, values, known)) = &mut self.within else {
            return true;
        };
        let Some(c) = column else { return false };
        let mut inside = false;
        for ord in c.term_ords(doc) {
            let k = &mut known[ord as usize];
            if *k == 0 {
                let mut v = String::new();
                let found = c.ord_to_str(ord, &mut v).unwrap_or(false) && values.contains(&v);
                *k = if found { 1 } else { 2 };
            }
            inside |= *k == 1;
        }
        inside
    }
}

/// Counts the values of ordinals `ords` (0: none, not counted).
fn add(counts: &mut Scratch, numbers: &[u32], ords: impl Iterator<Item = u64>) {
    for ord in ords {
        match numbers.get(ord as usize) {
            Some(&number) if number != 0 => counts.add(number, 1),
            _ => {}
        }
    }
}

impl SegmentCollector for SegmentTally {
    type Fruit = Arc<Counted>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        if !self.within(doc) {
            return;
        }
        self.matched += 1;
        for c in &self.columns {
            add(&mut self.counts, &c.numbers, c.column.term_ords(doc));
        }
        for (_, column, sum, n) in &mut self.summed {
            if let Some(v) = column.as_ref().and_then(|c| c.first(doc)) {
                *sum += v;
                *n += 1;
            }
        }
    }

    /// A block of matches (when nothing in the segment was deleted): each
    /// column is read for the whole block at once.
    fn collect_block(&mut self, docs: &[DocId]) {
        if self.within.is_some() {
            for &doc in docs {
                self.collect(doc, 0.0);
            }
            return;
        }
        self.matched += docs.len() as u64;
        let block = &mut self.block;
        for c in &self.columns {
            if c.multivalued {
                for &doc in docs {
                    add(&mut self.counts, &c.numbers, c.column.term_ords(doc));
                }
            } else {
                block.clear();
                block.resize(docs.len(), None);
                c.column.ords().first_vals(docs, block);
                add(
                    &mut self.counts,
                    &c.numbers,
                    block.iter().flatten().copied(),
                );
            }
        }
        let block = &mut self.block_f64;
        for (_, column, sum, n) in &mut self.summed {
            let Some(column) = column else { continue };
            block.clear();
            block.resize(docs.len(), None);
            column.first_vals(docs, block);
            for v in block.iter().flatten() {
                *sum += v;
                *n += 1;
            }
        }
    }

    fn harvest(self) -> Arc<Counted> {
        Arc::new(Counted {
            numbering: self.numbering,
            matched: self.matched,
            counts: self.counts.give_back(),
            sums: self
                .summed
                .into_iter()
                .map(|(field, _, sum, n)| (field, sum, n))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_count_starts_from_zero() {
        let sorted = |mut v: Vec<(u32, u64)>| {
            v.sort_unstable();
            v
        };
        let mut counts = Scratch::borrow();
        // Ordinal 0 is the empty value (number 0): not counted.
        let numbers: Vec<u32> = (0..1000).map(|o| o * 10).collect();
        add(&mut counts, &numbers, [7, 3, 0, 7, 999, 3, 7].into_iter());
        counts.add(20_000, 4);
        assert_eq!(
            sorted(counts.give_back()),
            [(30, 2), (70, 3), (9990, 1), (20_000, 4)]
        );
        // Counted again on the same thread, with the scratch given back:
        // nothing left from before.
        let mut counts = Scratch::borrow();
        assert!(counts.counts.len() > 20_000, "the thread's scratch again");
        add(&mut counts, &numbers, [3, 500].into_iter());
        assert_eq!(sorted(counts.give_back()), [(30, 1), (5000, 1)]);
        // A count that stopped half way (an error, a panic) never gives its
        // scratch back: the next one starts anew.
        let mut stopped = Scratch::borrow();
        stopped.add(6, 2);
        let mut next = Scratch::borrow();
        next.add(6, 1);
        drop(stopped);
        assert_eq!(next.give_back(), [(6, 1)]);
    }

    #[test]
    fn values_are_numbered_once_per_field_and_a_full_numbering_is_replaced() {
        let numbering = Numbering::default();
        let numbers = numbering.current();
        let mut k = numbers.known.write().unwrap();
        let mut number = |field, value: &str| k.number(field, value.as_bytes().into());
        let a = number(Facet::Theme, "Mobilités");
        assert_eq!(a, 1);
        assert_eq!(number(Facet::Theme, "Mobilités"), a);
        assert_eq!(number(Facet::Status, "Mobilités"), 2);
        assert_eq!(number(Facet::Status, ""), 0, "none");
        assert_eq!(k.get(Facet::Theme, "Mobilités".as_bytes()), Some(1));
        assert_eq!(k.get(Facet::Theme, b"Economie"), None);
        assert_eq!(k.get(Facet::Organisation, b""), Some(0));
        drop(k);
        // The same numbering until it is full; then a new one, whose counts
        // the cache tells apart.
        assert_eq!(numbering.current().id, numbers.id);
        numbers.full.store(true, Ordering::Relaxed);
        let next = numbering.current();
        assert_ne!(next.id, numbers.id);
        assert_eq!(next.read().values.len(), 1, "only 'none'");
        assert_eq!(
            next.limit, MAX_VALUES,
            "no segment searched: no values live"
        );
        assert_eq!(numbers.read().fields, [Facet::Theme, Facet::Status]);
        assert_eq!(numbers.read().field_of, [u8::MAX, 0, 1]);
    }

    #[test]
    fn buckets_keep_the_highest_counts_and_break_ties_at_the_cut_by_value() {
        let numbering = Numbering::default();
        let numbers = numbering.current();
        let mut k = numbers.known.write().unwrap();
        let sirens = [
            "213105554",
            "213100605",
            "243100518",
            "200046977",
            "213100001",
        ];
        let counted: Vec<(u32, u64)> = sirens
            .iter()
            .zip([4, 9, 4, 4, 1])
            .map(|(siren, n)| (k.number(Facet::Organisation, siren.as_bytes().into()), n))
            .collect();
        drop(k);
        let tallied = Tallied {
            matched: 22,
            numbers: numbers.clone(),
            counts: vec![counted],
            sums: FxHashMap::default(),
        };
        let top = |limit| -> Vec<(String, u64)> {
            tallied
                .buckets(Facet::Organisation, limit)
                .into_iter()
                .map(|b| (b.value, b.count))
                .collect()
        };
        // Three counted 4: the two smallest SIRENs make the cut of three.
        let cut: Vec<(String, u64)> = top(3);
        assert_eq!(cut.len(), 3);
        assert_eq!(cut[0], ("213100605".to_string(), 9));
        let mut tied: Vec<&str> = cut[1..].iter().map(|(v, _)| v.as_str()).collect();
        tied.sort();
        assert_eq!(tied, ["200046977", "213105554"]);
        assert_eq!(top(usize::MAX).len(), 5);
        assert!(top(0).is_empty());
        assert!(tallied.buckets(Facet::Theme, 10).is_empty());
    }

    #[test]
    fn most_frequent_keeps_the_highest_counts_ties_by_value() {
        let counts = [("b", 5), ("a", 5), ("c", 9), ("d", 1), ("e", 5)];
        let mut top = most_frequent(counts.into_iter(), 3);
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        assert_eq!(top, [("c", 9), ("a", 5), ("b", 5)]);
        assert_eq!(most_frequent(counts.into_iter(), 0), []);
        assert_eq!(most_frequent(counts.into_iter(), usize::MAX).len(), 5);
    }
}
