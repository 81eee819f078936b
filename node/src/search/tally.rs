//! A collector that counts the values of keyword fields and sums number
//! fields over every matching document, from the fast-field columns: facets
//! and statistics cost a few column reads per match, and no stored document.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rustc_hash::FxHashMap;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Cardinality, Column, StrColumn};
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use super::{Bucket, document, label};

/// Counts of `counted` fields' values and sums of `summed` fields.
pub struct Tally {
    counted: Vec<&'static str>,
    summed: Vec<&'static str>,
    within: Option<(&'static str, Arc<HashSet<String>>)>,
}

impl Tally {
    pub fn new(counted: &[&'static str], summed: &[&'static str]) -> Tally {
        Tally {
            counted: counted.to_vec(),
            summed: summed.to_vec(),
            within: None,
        }
    }

    /// Only documents whose `field` is one of `values` (a join: project
    /// details whose project matched).
    pub fn within(mut self, field: &'static str, values: Arc<HashSet<String>>) -> Tally {
        self.within = Some((field, values));
        self
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
    /// Counts of fields kept as numbers (SIRENs), turned into text only for
    /// the values shown.
    siren_counts: HashMap<&'static str, FxHashMap<u64, u64>>,
    sums: HashMap<&'static str, (f64, u64)>,
}

impl Tallied {
    /// The `limit` most frequent values of `field`, most frequent first (ties
    /// by value), labelled.
    pub fn buckets(&self, field: &str, limit: usize) -> Vec<Bucket> {
        let mut v: Vec<(String, u64)> = match (self.counts.get(field), self.siren_counts.get(field))
        {
            (Some(m), _) => most_frequent(m.iter().map(|(k, n)| (k.clone(), *n)), limit),
            // SIRENs are 9 digits: as numbers and as text, they sort alike.
            (None, Some(m)) => most_frequent(m.iter().map(|(k, n)| (*k, *n)), limit)
                .into_iter()
                .map(|(k, n)| (format!("{k:09}"), n))
                .collect(),
            (None, None) => Vec::new(),
        };
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.into_iter()
            .map(|(value, count)| Bucket {
                label: label(field, &value),
                value,
                count,
            })
            .collect()
    }

    /// The sum of `field` and how many documents had a value.
    pub fn sum(&self, field: &str) -> (f64, u64) {
        self.sums.get(field).copied().unwrap_or((0.0, 0))
    }
}

/// The `limit` values with the highest counts (ties by value), unordered:
/// a facet shows ten organisations out of tens of thousands, so the rest
/// need not be sorted.
fn most_frequent<K: Ord>(values: impl Iterator<Item = (K, u64)>, limit: usize) -> Vec<(K, u64)> {
    let mut v: Vec<(K, u64)> = values.collect();
    let order = |a: &(K, u64), b: &(K, u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0));
    if limit < v.len() {
        v.select_nth_unstable_by(limit, order);
        v.truncate(limit);
    }
    v
}

/// A keyword column and the count of each of its term ordinals.
struct Counted {
    field: &'static str,
    column: Option<StrColumn>,
    /// Whether a document may have several values (read one by one).
    multivalued: bool,
    counts: Vec<u64>,
}

pub struct SegmentTally {
    matched: u64,
    /// The join column, the values it must take, and per term ordinal
    /// whether it is one of them (0: not looked up yet, 1: yes, 2: no).
    within: Option<(Option<StrColumn>, Arc<HashSet<String>>, Vec<u8>)>,
    columns: Vec<Counted>,
    /// Fields kept as numbers (SIRENs: tens of thousands of values, whose
    /// dictionary would cost more to read than the counting).
    sirens: Vec<(&'static str, Option<Column<u64>>, FxHashMap<u64, u64>)>,
    numbers: Vec<(&'static str, Option<Column<f64>>, f64, u64)>,
    /// Column values of one block of documents.
    block: Vec<Option<u64>>,
    block_f64: Vec<Option<f64>>,
}

/// The number field that holds the same values as `field`, if any.
fn numeric_twin(field: &str) -> Option<&'static str> {
    (field == "org").then_some("org_num")
}

impl Collector for Tally {
    type Fruit = Tallied;
    type Child = SegmentTally;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentTally> {
        let fast = reader.fast_fields();
        let mut columns = Vec::new();
        let mut sirens = Vec::new();
        for name in &self.counted {
            if let Some(numeric) = numeric_twin(name) {
                sirens.push((*name, fast.u64(numeric).ok(), FxHashMap::default()));
                continue;
            }
            let column = fast.str(name)?;
            let terms = column.as_ref().map_or(0, |c| c.num_terms());
            let multivalued = column
                .as_ref()
                .is_some_and(|c| c.ords().get_cardinality() == Cardinality::Multivalued);
            columns.push(Counted {
                field: name,
                column,
                multivalued,
                counts: vec![0; terms],
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
            sirens,
            numbers,
            block: Vec::new(),
            block_f64: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Tallied>) -> tantivy::Result<Tallied> {
        let mut out = Tallied::default();
        for fruit in fruits {
            out.matched += fruit.matched;
            for (field, counts) in fruit.counts {
                let into = out.counts.entry(field).or_default();
                for (value, n) in counts {
                    *into.entry(value).or_default() += n;
                }
            }
            for (field, mut counts) in fruit.siren_counts {
                let into = out.siren_counts.entry(field).or_default();
                // Add the smaller map into the larger one.
                if into.len() < counts.len() {
                    std::mem::swap(into, &mut counts);
                }
                for (value, n) in counts {
                    *into.entry(value).or_default() += n;
                }
            }
            for (field, (sum, n)) in fruit.sums {
                let into = out.sums.entry(field).or_default();
                into.0 += sum;
                into.1 += n;
            }
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
    type Fruit = Tallied;

    fn collect(&mut self, doc: DocId, _score: Score) {
        if !self.within(doc) {
            return;
        }
        self.matched += 1;
        for (_, column, counts) in &mut self.sirens {
            if let Some(v) = column
                .as_ref()
                .and_then(|c| c.first(doc))
                .filter(|v| *v != 0)
            {
                *counts.entry(v).or_default() += 1;
            }
        }
        for c in &mut self.columns {
            if let Some(column) = &c.column {
                for ord in column.term_ords(doc) {
                    c.counts[ord as usize] += 1;
                }
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
        for (_, column, counts) in &mut self.sirens {
            let Some(column) = column else { continue };
            block.clear();
            block.resize(docs.len(), None);
            column.first_vals(docs, block);
            // 0: no organisation.
            for v in block.iter().flatten().filter(|v| **v != 0) {
                *counts.entry(*v).or_default() += 1;
            }
        }
        for c in &mut self.columns {
            let Some(column) = &c.column else { continue };
            if c.multivalued {
                for &doc in docs {
                    for ord in column.term_ords(doc) {
                        c.counts[ord as usize] += 1;
                    }
                }
            } else {
                block.clear();
                block.resize(docs.len(), None);
                column.ords().first_vals(docs, block);
                for ord in block.iter().flatten() {
                    c.counts[*ord as usize] += 1;
                }
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

    fn harvest(self) -> Tallied {
        let mut out = Tallied {
            matched: self.matched,
            ..Tallied::default()
        };
        for (field, _, counts) in self.sirens {
            out.siren_counts.insert(field, counts);
        }
        for c in self.columns {
            let into = out.counts.entry(c.field).or_default();
            let Some(column) = c.column else { continue };
            // One pass over the dictionary in order: looking ordinals up one
            // by one decodes a block each time, and broad queries touch
            // thousands of values.
            let (ords, ns): (Vec<u64>, Vec<u64>) = c
                .counts
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
        out
    }
}
