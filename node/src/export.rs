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

/// The public records at one point of the store.
pub struct Index {
    built: Instant,
    seq: u64,
    datasets: Vec<RecordId>,
    projects: Vec<RecordId>,
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
            organisations: HashMap::new(),
        };
        store.scan_current(&ListFilter::default(), None, |cur| {
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
            match cur.kind {
                Kind::Dataset => index.datasets.push(cur.id),
                Kind::Project => index.projects.push(cur.id),
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
    ) -> Result<Graph, StoreError> {
        let total = self.datasets.len();
        let page = page.or((total > UNPAGED_MAX).then_some((1, UNPAGED_MAX)));
        let ids = slice(&self.datasets, page);
        let records = load(node, ids)?;
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
    ) -> Result<(serde_json::Value, Option<(usize, usize)>), StoreError> {
        let total = self.projects.len();
        let page = page.or((total > UNPAGED_MAX).then_some((1, UNPAGED_MAX)));
        let docs = load(node, slice(&self.projects, page))?
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

/// The ids of one page (all of them without one).
fn slice(ids: &[RecordId], page: Option<(usize, usize)>) -> &[RecordId] {
    let Some((number, size)) = page else {
        return ids;
    };
    let start = number.saturating_sub(1).saturating_mul(size).min(ids.len());
    let end = start.saturating_add(size).min(ids.len());
    &ids[start..end]
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
            .catalog(&node, &info, Some((2, 2)), Page::JSON_LD)
            .unwrap();
        assert_eq!(datasets_in(&page), 2);
        // A change within REFRESH waits for the next rebuild.
        store_datasets(&node, 8, 1, Visibility::Public);
        assert!(Arc::ptr_eq(&index, &exports.index(&node).unwrap()));
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
        let whole = index.catalog(&node, &info, None, Page::TURTLE).unwrap();
        assert_eq!(datasets_in(&whole), UNPAGED_MAX);
        let turtle = whole.to_turtle();
        assert!(turtle.contains("hydra:next"), "no link to the next page");
        // Asked in Turtle, its links to other pages stay in Turtle.
        assert!(turtle.contains("/catalog.ttl?page=2&"), "{turtle}");
        assert!(!turtle.contains("/catalog.jsonld?"), "{turtle}");
        let last = index
            .catalog(&node, &info, Some((2, UNPAGED_MAX)), Page::JSON_LD)
            .unwrap();
        assert_eq!(datasets_in(&last), 1);
        node.stop();
    }
}
