//! A collector that counts the values of keyword fields and sums number
//! fields over every matching document, from the fast-field columns: facets
//! and statistics cost a few column reads per match, and no stored document.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use rustc_hash::FxHashMap;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Cardinality, Column, StrColumn};
use tantivy::index::SegmentId;
use tantivy::query::Weight;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use super::cache::{Caches, Key};
use super::{Bucket, FACETS, document, label};

/// Counts of `counted` fields' values and sums of `summed` fields.
pub struct Tally<'a> {
    counted: Vec<&'static str>,
    summed: Vec<&'static str>,
    within: Option<(&'static str, Arc<HashSet<String>>)>,
    sirens: &'a SirenTables,
    /// Where each segment's counts are looked up and kept, and under what.
    cached: Option<(&'a Caches, Arc<Key>)>,
}

impl<'a> Tally<'a> {
    pub fn new(
        counted: &[&'static str],
        summed: &[&'static str],
        sirens: &'a SirenTables,
    ) -> Tally<'a> {
        Tally {
            counted: counted.to_vec(),
            summed: summed.to_vec(),
            within: None,
            sirens,
            cached: None,
        }
    }

    /// The facets a search shows.
    pub fn facets(sirens: &'a SirenTables) -> Tally<'a> {
        Tally::new(&FACETS.map(|(_, field)| field), &[], sirens)
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

/// Whether a keyword field holds SIRENs (tens of thousands of values).
fn holds_sirens(field: &str) -> bool {
    field == "org"
}

/// SIRENs numbered densely (0: none), and per segment the number of each
/// term ordinal of a SIREN field. A broad query matches tens of thousands of
/// organisations: reading that many terms from a segment's dictionary, or
/// hashing SIRENs, costs more than the counting. Segments never change, so
/// their table is made once, and a query counts in arrays, across segments
/// too.
#[derive(Default)]
pub struct SirenTables(Mutex<Sirens>);

#[derive(Default)]
struct Sirens {
    tables: FxHashMap<(SegmentId, &'static str), Arc<Vec<u32>>>,
    numbers: FxHashMap<u64, u32>,
    /// By number; 0 is none.
    sirens: Vec<u64>,
}

/// Tables kept before all are dropped (merged-away segments leave theirs
/// behind; an index has a few dozen segments at a time).
const SIREN_TABLES: usize = 256;

impl SirenTables {
    fn lock(&self) -> std::sync::MutexGuard<'_, Sirens> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn of(&self, reader: &SegmentReader, field: &'static str, column: &StrColumn) -> Arc<Vec<u32>> {
        let key = (reader.segment_id(), field);
        if let Some(t) = self.lock().tables.get(&key) {
            return t.clone();
        }
        // Read outside the lock: two queries may both read it, once.
        let mut terms = Vec::with_capacity(column.num_terms());
        if let Ok(mut stream) = column.dictionary().stream() {
            while stream.advance() {
                let term = stream.key();
                let siren = std::str::from_utf8(term)
                    .ok()
                    .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|t| t.parse().ok());
                terms.push(siren.unwrap_or(0));
            }
        }
        // A dictionary that did not read whole counts nothing.
        terms.resize(column.num_terms(), 0);
        let mut s = self.lock();
        if s.sirens.is_empty() {
            s.sirens.push(0);
        }
        let table: Vec<u32> = terms
            .into_iter()
            .map(|siren| {
                if siren == 0 {
                    return 0;
                }
                let next = s.sirens.len() as u32;
                let n = *s.numbers.entry(siren).or_insert(next);
                if n == next {
                    s.sirens.push(siren);
                }
                n
            })
            .collect();
        let table = Arc::new(table);
        if s.tables.len() >= SIREN_TABLES {
            s.tables.clear();
        }
        s.tables.insert(key, table.clone());
        table
    }

    /// (SIREN, count) of (number, count).
    fn counts(&self, counted: &[(u32, u64)]) -> Vec<(u64, u64)> {
        let s = self.lock();
        counted
            .iter()
            .filter_map(|(number, n)| Some((*s.sirens.get(*number as usize)?, *n)))
            .filter(|(siren, n)| *n > 0 && *siren != 0)
            .collect()
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

/// What a tally found: value counts per field, and (sum, how many) per
/// summed field.
#[derive(Debug, Default)]
pub struct Tallied {
    /// Documents counted.
    pub matched: u64,
    counts: HashMap<&'static str, HashMap<String, u64>>,
    /// Counts of SIREN fields, kept as numbers (turned into text only for
    /// the values shown).
    siren_counts: HashMap<&'static str, Vec<(u64, u64)>>,
    /// The same per segment, by the SIRENs' numbers in `SirenTables`.
    numbered: HashMap<&'static str, Vec<(u32, u64)>>,
    sums: HashMap<&'static str, (f64, u64)>,
}

impl Tallied {
    /// About how much memory this takes (a cache's measure).
    pub fn bytes(&self) -> usize {
        let counts: usize = self.counts.values().map(|m| 64 + m.len() * 48).sum();
        let numbered: usize = self.numbered.values().map(|v| 32 + v.len() * 16).sum();
        128 + counts + numbered + self.sums.len() * 32
    }

    /// The `limit` most frequent values of `field`, labelled, most frequent
    /// first and equal counts by label. Which of equal counts make the cut
    /// at `limit` is decided by value (labels are only looked up for the
    /// values kept).
    pub fn buckets(&self, field: &str, limit: usize) -> Vec<Bucket> {
        let v: Vec<(String, u64)> = match (self.counts.get(field), self.siren_counts.get(field)) {
            (Some(m), _) => most_frequent(m.iter().map(|(k, n)| (k.clone(), *n)), limit),
            // SIRENs are 9 digits: as numbers and as text, they sort alike.
            (None, Some(m)) => most_frequent(m.iter().copied(), limit)
                .into_iter()
                .map(|(k, n)| (format!("{k:09}"), n))
                .collect(),
            (None, None) => Vec::new(),
        };
        let mut buckets: Vec<Bucket> = v
            .into_iter()
            .map(|(value, count)| Bucket {
                label: label(field, &value),
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

/// A keyword column and the count of each of its term ordinals.
struct Counted {
    field: &'static str,
    column: Option<StrColumn>,
    /// Whether a document may have several values (read one by one).
    multivalued: bool,
    counts: Counts,
}

enum Counts {
    /// Per ordinal.
    Dense(Vec<u64>),
    /// For a SIREN field: the SIREN number of each ordinal, and the ordinal
    /// of each match, counted at the end (a selective query must not pay for
    /// every organisation).
    Sirens(Arc<Vec<u32>>, Vec<u32>),
}

impl Counts {
    fn add(&mut self, ords: impl Iterator<Item = u64>) {
        match self {
            Counts::Sirens(_, seen) => seen.extend(ords.map(|o| o as u32)),
            Counts::Dense(counts) => {
                for ord in ords {
                    counts[ord as usize] += 1;
                }
            }
        }
    }

    /// (SIREN number, count); none counted for no organisation.
    fn sirens(numbers: &[u32], mut seen: Vec<u32>) -> Vec<(u32, u64)> {
        let number = |ord: u32| numbers.get(ord as usize).copied().unwrap_or(0);
        if seen.len() > numbers.len() / 4 {
            return count_by_number(
                seen.into_iter()
                    .map(|ord| (number(ord), 1))
                    .filter(|(number, _)| *number != 0),
            );
        }
        // Sorted, the matches of one organisation are counted together, and
        // the table is read in order instead of at random.
        seen.sort_unstable();
        seen.chunk_by(|a, b| a == b)
            .map(|run| (number(run[0]), run.len() as u64))
            .filter(|(number, _)| *number != 0)
            .collect()
    }
}

/// (number, sum of its counts) for every number in `counted`, in no order.
///
/// The counts go into an array indexed by number, kept by each thread: a
/// query then reads and resets only the entries it touched. Allocating,
/// zeroing and scanning an array as long as every organisation known (tens
/// of thousands) for each segment of each search cost more than the
/// counting. (A segment's few matches are sorted instead: `Counts::sirens`.)
fn count_by_number(counted: impl Iterator<Item = (u32, u64)>) -> Vec<(u32, u64)> {
    thread_local! {
        /// Counts by number, and the numbers whose count is not zero.
        static SCRATCH: RefCell<(Vec<u64>, Vec<u32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
    }
    SCRATCH.with_borrow_mut(|(counts, touched)| {
        // Left over by a count that panicked: every count not zero is listed.
        for number in touched.drain(..) {
            counts[number as usize] = 0;
        }
        for (number, n) in counted {
            let i = number as usize;
            if i >= counts.len() {
                counts.resize(i + 1, 0);
            }
            if counts[i] == 0 && n > 0 {
                touched.push(number);
            }
            counts[i] += n;
        }
        let out = touched
            .iter()
            .map(|number| (*number, std::mem::take(&mut counts[*number as usize])))
            .collect();
        touched.clear();
        out
    })
}

pub struct SegmentTally {
    matched: u64,
    /// The join column, the values it must take, and per term ordinal
    /// whether it is one of them (0: not looked up yet, 1: yes, 2: no).
    within: Option<(Option<StrColumn>, Arc<HashSet<String>>, Vec<u8>)>,
    columns: Vec<Counted>,
    numbers: Vec<(&'static str, Option<Column<f64>>, f64, u64)>,
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
    ) -> tantivy::Result<Arc<Tallied>> {
        let count = || -> tantivy::Result<Arc<Tallied>> {
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
        let Some((caches, key)) = &self.cached else {
            return count();
        };
        if let Some(found) = caches.facets(reader, key) {
            return Ok(found);
        }
        let counted = count()?;
        caches.keep_facets(reader, key, counted.clone());
        Ok(counted)
    }

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentTally> {
        let fast = reader.fast_fields();
        let mut columns = Vec::new();
        for name in &self.counted {
            let column = fast.str(name)?;
            let terms = column.as_ref().map_or(0, |c| c.num_terms());
            let multivalued = column
                .as_ref()
                .is_some_and(|c| c.ords().get_cardinality() == Cardinality::Multivalued);
            let counts = match &column {
                Some(c) if holds_sirens(name) => {
                    Counts::Sirens(self.sirens.of(reader, name, c), Vec::new())
                }
                _ => Counts::Dense(vec![0; terms]),
            };
            columns.push(Counted {
                field: name,
                column,
                multivalued,
                counts,
            });
        }
        let numbers = self
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
            matched: 0,
            within,
            columns,
            numbers,
            block: Vec::new(),
            block_f64: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Arc<Tallied>>) -> tantivy::Result<Tallied> {
        let mut out = Tallied::default();
        for fruit in &fruits {
            out.matched += fruit.matched;
            for (field, counts) in &fruit.counts {
                let into = out.counts.entry(*field).or_default();
                for (value, n) in counts {
                    match into.get_mut(value) {
                        Some(into) => *into += n,
                        None => {
                            into.insert(value.clone(), *n);
                        }
                    }
                }
            }
            for (field, (sum, n)) in &fruit.sums {
                let into = out.sums.entry(*field).or_default();
                into.0 += *sum;
                into.1 += *n;
            }
        }
        let numbered: HashSet<&'static str> = fruits
            .iter()
            .flat_map(|fruit| fruit.numbered.keys().copied())
            .collect();
        for field in numbered {
            let counted = count_by_number(
                fruits
                    .iter()
                    .filter_map(|fruit| fruit.numbered.get(field))
                    .flatten()
                    .copied(),
            );
            out.siren_counts.insert(field, self.sirens.counts(&counted));
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

impl SegmentCollector for SegmentTally {
    type Fruit = Arc<Tallied>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        if !self.within(doc) {
            return;
        }
        self.matched += 1;
        for c in &mut self.columns {
            if let Some(column) = &c.column {
                c.counts.add(column.term_ords(doc));
            }
        }
        for (_, column, sum, n) in &mut self.numbers {
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
        for c in &mut self.columns {
            let Some(column) = &c.column else { continue };
            if c.multivalued {
                for &doc in docs {
                    c.counts.add(column.term_ords(doc));
                }
            } else {
                block.clear();
                block.resize(docs.len(), None);
                column.ords().first_vals(docs, block);
                c.counts.add(block.iter().flatten().copied());
            }
        }
        let block = &mut self.block_f64;
        for (_, column, sum, n) in &mut self.numbers {
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

    fn harvest(self) -> Arc<Tallied> {
        let mut out = Tallied {
            matched: self.matched,
            ..Tallied::default()
        };
        for c in self.columns {
            let counts = match c.counts {
                Counts::Sirens(sirens, seen) => {
                    out.numbered.insert(c.field, Counts::sirens(&sirens, seen));
                    continue;
                }
                Counts::Dense(counts) => counts,
            };
            let into = out.counts.entry(c.field).or_default();
            let Some(column) = c.column else { continue };
            // One pass over the dictionary in order: looking ordinals up one
            // by one decodes a block each time, and broad queries touch
            // thousands of values.
            let (ords, ns): (Vec<u64>, Vec<u64>) = counts
                .into_iter()
                .enumerate()
                .filter(|(_, n)| *n > 0)
                .map(|(ord, n)| (ord as u64, n))
                .unzip();
            let mut ns = ns.into_iter();
            let _ = column.dictionary().sorted_ords_to_term_cb(&ords, |term| {
                if let Some(n) = ns.next()
                    && term != document::NONE.as_bytes()
                {
                    into.insert(String::from_utf8_lossy(term).into_owned(), n);
                }
            });
        }
        for (field, _, sum, n) in self.numbers {
            out.sums.insert(field, (sum, n));
        }
        Arc::new(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sirens_are_counted_and_each_count_starts_from_zero() {
        // Ordinal 0 is the empty value: no organisation, not counted.
        let numbers: Vec<u32> = (0..1000).map(|o| o * 10).collect();
        let sorted = |mut v: Vec<(u32, u64)>| {
            v.sort_unstable();
            v
        };
        let few = vec![7, 3, 0, 7, 999, 3, 7];
        assert_eq!(
            sorted(Counts::sirens(&numbers, few.clone())),
            [(30, 2), (70, 3), (9990, 1)]
        );
        // Counted again on the same thread: nothing left from before.
        assert_eq!(
            sorted(Counts::sirens(&numbers, vec![3, 500])),
            [(30, 1), (5000, 1)]
        );
        // A count that panicked half way leaves nothing behind either.
        let panicked = std::panic::catch_unwind(|| {
            count_by_number(
                [(5, 1), (6, 2)]
                    .into_iter()
                    .chain(std::iter::from_fn(|| panic!())),
            )
        });
        assert!(panicked.is_err());
        assert_eq!(sorted(count_by_number([(6, 1)].into_iter())), [(6, 1)]);
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
