//! What the public HTTP export serves (`http.rs`): the public datasets and
//! projects, and the organisations that publish them.
//!
//! A harvester walks the catalogue page by page. Reading and decoding every
//! record for every page would make a harvest cost the square of the
//! catalogue, so the export keeps an **index**: the ids of the public
//! datasets and projects, in (author, record_id) order, found from the sync
//! set without decoding a record, and the publishing organisations. A page
//! decodes only its own records. The index is rebuilt when the store has
//! changed, at most every `REFRESH` (a flow of incoming records does not
//! rebuild it for every request), and at least every `MAX_AGE` (the
//! operator's trust and peer settings, which decide who an Organisation
//! record may speak for, are not store changes).
//!
//! Blocking: every function here reads the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use maillage_dcat::{CatalogInfo, Entry, Graph, Page};
use maillage_record::model::Agent;
use maillage_record::{Body, Kind, PublicKey, Record, RecordId};

use crate::node::Node;
use crate::store::{ListFilter, Step, StoreError};
use crate::viewer::Viewer;

/// The shortest time between two rebuilds of the index.
const REFRESH: Duration = Duration::from_secs(10);
/// The longest time an index is served.
const MAX_AGE: Duration = Duration::from_secs(60);
/// Items an export without `page` holds at most: a larger catalogue is
/// served as its first page, with Hydra links to the next.
pub const UNPAGED_MAX: usize = 1_000;

/// The public export's index, shared by every request of the HTTP server.
#[derive(Default)]
pub struct Exports {
    current: Mutex<Option<Arc<Index>>>,
}

/// An author, and its ranges in the index's datasets and projects.
type AuthorRanges = (PublicKey, std::ops::Range<usize>, std::ops::Range<usize>);

/// The public records at one point of the store.
pub struct Index {
    built: Instant,
    seq: u64,
    /// In (author, record_id) order, so each author's are together.
    datasets: Vec<RecordId>,
    projects: Vec<RecordId>,
    /// Each author's range in `datasets` and in `projects`: a view of some
    /// authors costs the number of authors, not of records.
    authors: Vec<AuthorRanges>,
    /// The organisation each author speaks for, by author (hex), from its
    /// public Organisation record where trust vouches for its SIREN.
    organisations: HashMap<String, Agent>,
}

impl Exports {
    /// The index, rebuilt first if it is stale. Requests wait for one
    /// rebuild rather than making their own.
    pub fn index(&self, node: &Node) -> Result<Arc<Index>, StoreError> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let seq = node.store().last_seq();
        if let Some(index) = &*current {
            let age = index.built.elapsed();
            if age < MAX_AGE && (index.seq == seq || age < REFRESH) {
                return Ok(index.clone());
            }
        }
        let index = Arc::new(Index::build(node, seq)?);
        *current = Some(index.clone());
        Ok(index)
    }
}

impl Index {
    fn build(node: &Node, seq: u64) -> Result<Index, StoreError> {
        let store = node.store();
        let mut index = Index {
            built: Instant::now(),
            seq,
            datasets: Vec::new(),
            projects: Vec::new(),
            authors: Vec::new(),
            organisations: HashMap::new(),
        };
        store.scan_current(&ListFilter::default(), None, |cur| {
            // The scan goes author by author.
            if index.authors.last().is_none_or(|(a, ..)| *a != cur.author) {
                let (d, p) = (index.datasets.len(), index.projects.len());
                index.authors.push((cur.author, d..d, p..p));
            }
            if !matches!(cur.kind, Kind::Dataset | Kind::Project | Kind::Organisation) {
                return Ok(Step::Next);
            }
            // Visibility from the sync set: nothing else is decoded.
            let public = store
                .sync_items_many(&[cur.id])?
                .pop()
                .flatten()
                .is_some_and(|i| Viewer::Anonymous.may_see(&cur.author, &i.visibility));
            if !public {
                return Ok(Step::Next);
            }
            let ranges = index.authors.last_mut().expect("pushed above");
            match cur.kind {
                Kind::Dataset => {
                    index.datasets.push(cur.id);
                    ranges.1.end = index.datasets.len();
                }
                Kind::Project => {
                    index.projects.push(cur.id);
                    ranges.2.end = index.projects.len();
                }
                _ => {
                    if let Some(agent) = store
                        .record(&cur.id)?
                        .and_then(|r| vouched_organisation(node, &cur.author, r))
                    {
                        index.organisations.insert(cur.author.to_hex(), agent);
                    }
                }
            }
            Ok(Step::Next)
        })?;
        Ok(index)
    }

    /// The organisation an author (hex) speaks for, where its public
    /// Organisation record claims the SIREN trust vouches for.
    pub fn organisation(&self, author: &str) -> Option<&Agent> {
        self.organisations.get(author)
    }

    /// The catalogue, or one page of it (`(number, size)`): a catalogue
    /// larger than `UNPAGED_MAX` is served as its first page of that size.
    pub fn catalog(
        &self,
        node: &Node,
        info: &CatalogInfo,
        page: Option<(usize, usize)>,
        document: &'static str,
        view: &View,
    ) -> Result<Graph, StoreError> {
        let all = self.seen(node, view, |r| r.1.clone(), &self.datasets);
        let total = all.len();
        let page = page.or((total > UNPAGED_MAX).then_some((1, UNPAGED_MAX)));
        let ids = all.slice(page);
        let records = load(node, &ids)?;
        let entries: Vec<Entry<'_>> = records
            .iter()
            .map(|(author, record)| Entry {
                author: author.clone(),
                record,
                author_organisation: self.organisations.get(author).cloned(),
            })
            .collect();
        let page = page.map(|(number, size)| Page {
            number,
            size,
            total,
            document,
            filters: view.query(),
        });
        Ok(maillage_dcat::catalog(info, &entries, page))
    }

    /// Every public project with its author (hex), at most `max` of them,
    /// and how many there are in all.
    pub fn project_records(
        &self,
        node: &Node,
        max: usize,
    ) -> Result<(Vec<(String, Record)>, usize), StoreError> {
        // All of them: no view.
        let ids = &self.projects[..self.projects.len().min(max)];
        Ok((load(node, ids)?, self.projects.len()))
    }

    /// The public projects as maillage JSON documents with their author,
    /// or one page of them; more than `UNPAGED_MAX` are served as their
    /// first page. Also says whether a next page follows.
    pub fn projects(
        &self,
        node: &Node,
        page: Option<(usize, usize)>,
        view: &View,
    ) -> Result<(serde_json::Value, Option<(usize, usize)>), StoreError> {
        let all = self.seen(node, view, |r| r.2.clone(), &self.projects);
        let total = all.len();
        let page = page.or((total > UNPAGED_MAX).then_some((1, UNPAGED_MAX)));
        let docs = load(node, &all.slice(page))?
            .into_iter()
            .map(|(author, record)| {
                let mut doc = maillage_record::json::record_to_json(&record);
                doc["author"] = author.into();
                doc
            })
            .collect();
        let next = page
            .filter(|(number, size)| number.saturating_mul(*size) < total)
            .map(|(number, size)| (number + 1, size));
        Ok((serde_json::Value::Array(docs), next))
    }
}

/// Which public records an export holds: all of them, or those of the
/// authors that speak for one organisation (`?org=SIREN`), or this node's
/// own (`?own=1`: what it signed itself, so that a portal harvesting a
/// committee and its members gets each record once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    pub organisation: Option<maillage_record::Siren>,
    pub own: bool,
}

impl View {
    /// The query that asks for this view again, for paging links.
    pub fn query(&self) -> String {
        let mut q = String::new();
        if let Some(s) = &self.organisation {
            q.push_str(&format!("&org={}", s.as_str()));
        }
        if self.own {
            q.push_str("&own=1");
        }
        q
    }

    fn keeps(&self, node: &Node, author: &PublicKey) -> bool {
        (!self.own || *author == node.public_key())
            && self
                .organisation
                .as_ref()
                .is_none_or(|s| node.speaks_for(author).is_some_and(|(v, _)| v == *s))
    }
}

/// The ids a view holds: ranges of the index's list, in order.
struct Seen<'a> {
    ids: &'a [RecordId],
    ranges: Vec<std::ops::Range<usize>>,
}

impl Index {
    /// The ranges of `ids` (datasets or projects, as `range` picks) whose
    /// author the view keeps.
    fn seen<'a>(
        &'a self,
        node: &Node,
        view: &View,
        range: impl Fn(&AuthorRanges) -> std::ops::Range<usize>,
        ids: &'a [RecordId],
    ) -> Seen<'a> {
        let ranges = if *view == View::default() {
            // The whole list: one range.
            std::iter::once(0..ids.len()).collect()
        } else {
            self.authors
                .iter()
                .filter(|a| view.keeps(node, &a.0))
                .map(&range)
                .filter(|r| !r.is_empty())
                .collect()
        };
        Seen { ids, ranges }
    }
}

impl Seen<'_> {
    fn len(&self) -> usize {
        self.ranges.iter().map(|r| r.len()).sum()
    }

    /// The ids of one page (all of them without one).
    fn slice(&self, page: Option<(usize, usize)>) -> Vec<RecordId> {
        let total = self.len();
        let (start, end) = match page {
            None => (0, total),
            Some((number, size)) => {
                let start = number.saturating_sub(1).saturating_mul(size).min(total);
                (start, start.saturating_add(size).min(total))
            }
        };
        let mut out = Vec::with_capacity(end - start);
        let mut at = 0;
        for r in &self.ranges {
            let (from, to) = (start.max(at), end.min(at + r.len()));
            if from < to {
                out.extend_from_slice(&self.ids[r.start + (from - at)..r.start + (to - at)]);
            }
            at += r.len();
            if at >= end {
                break;
            }
        }
        out
    }
}

/// The records of `ids`, with their author (hex). The index names the
/// versions current when it was built: a page may show one that has been
/// replaced since, until the next rebuild.
fn load(node: &Node, ids: &[RecordId]) -> Result<Vec<(String, Record)>, StoreError> {
    use prost::Message;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(stored) = node.store().get(id)? else {
            continue;
        };
        // Stored envelopes were verified before they were written.
        let decoded = maillage_proto::v1::Envelope::decode(stored.bytes.as_slice())
            .ok()
            .and_then(|e| {
                let author = PublicKey::from_slice(&e.author)?;
                let record = maillage_record::wire::decode_payload(&e.payload).ok()?;
                Some((author.to_hex(), record))
            });
        match decoded {
            Some(r) => out.push(r),
            None => tracing::error!(%id, "stored record does not decode; left out of the export"),
        }
    }
    Ok(out)
}

/// An author's Organisation record names the publisher of its datasets: it
/// is believed only if it claims the SIREN the author speaks for
/// (`Sirens::of`); what an author says of itself is not enough.
fn vouched_organisation(node: &Node, author: &PublicKey, record: Record) -> Option<Agent> {
    let Body::Organisation(o) = record.body else {
        return None;
    };
    let (vouched, _) = node.speaks_for(author)?;
    (o.siren == vouched).then(|| Agent {
        name: o.name,
        siren: Some(o.siren.to_string()),
        url: o.website,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::tests::start_node;
    use maillage_record::Visibility;
    use maillage_record::model::Dataset;

    fn store_datasets(node: &Node, from: usize, count: usize, visibility: Visibility) {
        for i in from..from + count {
            let record = Record {
                record_id: format!("d{i:05}"),
                version: 1,
                issued_at_ms: 1_764_000_000_000,
                visibility: visibility.clone(),
                provenance: None,
                body: Body::Dataset(Dataset::new(format!("Jeu {i}"), "Données")),
            };
            let signed = node.author().sign(&[], record).unwrap().record;
            node.ledger()
                .insert(&signed, crate::store::Admission::RequireNewer)
                .unwrap();
        }
    }

    fn datasets_in(graph: &Graph) -> usize {
        graph.to_turtle().matches("a dcat:Dataset").count()
    }

    /// A harvest reads the store once, not once per page: pages come from
    /// one index until the store changes, and not more often than every
    /// REFRESH while it keeps changing.
    #[tokio::test]
    async fn pages_come_from_one_index() {
        let dir = tempfile::tempdir().unwrap();
        let node = start_node(dir.path()).await;
        store_datasets(&node, 0, 5, Visibility::Public);
        store_datasets(&node, 5, 3, Visibility::Federation);
        let exports = Exports::default();
        let index = exports.index(&node).unwrap();
        assert_eq!((index.datasets.len(), index.projects.len()), (5, 0));
        assert!(Arc::ptr_eq(&index, &exports.index(&node).unwrap()));
        let info = CatalogInfo::for_node("Toulouse Métropole", "243100518", "https://d.example");
        let page = index
            .catalog(&node, &info, Some((2, 2)), Page::JSON_LD, &View::default())
            .unwrap();
        assert_eq!(datasets_in(&page), 2);
        // A change within REFRESH waits for the next rebuild.
        store_datasets(&node, 8, 1, Visibility::Public);
        assert!(Arc::ptr_eq(&index, &exports.index(&node).unwrap()));
        node.stop();
    }

    /// `?own=1` and `?org=SIREN` hold the records of this node, or of the
    /// authors that speak for that SIREN, and their pages link to pages of
    /// the same view.
    #[tokio::test]
    async fn views_hold_their_authors_records_only() {
        let dir = tempfile::tempdir().unwrap();
        let node = start_node(dir.path()).await;
        store_datasets(&node, 0, 3, Visibility::Public);
        // Two datasets of another author, stored as a peer's would be.
        let other = maillage_record::keyfile::generate().unwrap();
        for i in 0..2 {
            let record = Record {
                record_id: format!("autre{i}"),
                version: 1,
                issued_at_ms: 1_764_000_000_000,
                visibility: Visibility::Public,
                provenance: None,
                body: Body::Dataset(Dataset::new(format!("Autre {i}"), "Données")),
            };
            let signed = maillage_record::envelope::sign(&other, &record).unwrap();
            node.ledger()
                .insert(&signed, crate::store::Admission::RequireNewer)
                .unwrap();
        }
        let index = Exports::default().index(&node).unwrap();
        let info = CatalogInfo::for_node("Toulouse Métropole", "243100518", "https://d.example");
        let count = |view: &View, page| {
            datasets_in(
                &index
                    .catalog(&node, &info, page, Page::TURTLE, view)
                    .unwrap(),
            )
        };
        let own = View {
            own: true,
            ..View::default()
        };
        let org = View {
            organisation: Some(node.siren().clone()),
            ..View::default()
        };
        assert_eq!(count(&View::default(), None), 5);
        assert_eq!(count(&own, None), 3);
        assert_eq!(count(&org, None), 3);
        assert_eq!(count(&own, Some((2, 2))), 1);
        let page = index
            .catalog(&node, &info, Some((1, 2)), Page::TURTLE, &own)
            .unwrap()
            .to_turtle();
        assert!(
            page.contains("/catalog.ttl?page=2&page_size=2&own=1"),
            "{page}"
        );
        assert!(!page.contains("Autre"), "{page}");
        let (projects, _) = index.projects(&node, None, &own).unwrap();
        assert_eq!(projects.as_array().unwrap().len(), 0);
        node.stop();
    }

    /// A catalogue too large to serve whole is served as its first page,
    /// with a Hydra link to the next.
    #[tokio::test]
    async fn a_large_catalogue_is_paged_unasked() {
        let dir = tempfile::tempdir().unwrap();
        let node = start_node(dir.path()).await;
        store_datasets(&node, 0, UNPAGED_MAX + 1, Visibility::Public);
        let index = Exports::default().index(&node).unwrap();
        let info = CatalogInfo::for_node("Toulouse Métropole", "243100518", "https://d.example");
        let whole = index
            .catalog(&node, &info, None, Page::TURTLE, &View::default())
            .unwrap();
        assert_eq!(datasets_in(&whole), UNPAGED_MAX);
        let turtle = whole.to_turtle();
        assert!(turtle.contains("hydra:next"), "no link to the next page");
        // Asked in Turtle, its links to other pages stay in Turtle.
        assert!(turtle.contains("/catalog.ttl?page=2&"), "{turtle}");
        assert!(!turtle.contains("/catalog.jsonld?"), "{turtle}");
        let last = index
            .catalog(
                &node,
                &info,
                Some((2, UNPAGED_MAX)),
                Page::JSON_LD,
                &View::default(),
            )
            .unwrap();
        assert_eq!(datasets_in(&last), 1);
        node.stop();
    }
}
