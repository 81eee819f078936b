//! What the public HTTP export serves (`http.rs`): the public datasets and
//! projects, and the organisations that publish them.
//!
//! A harvester walks the catalogue page by page. Reading and decoding every
//! record for every page would make a harvest cost the square of the
//! catalogue, so the export keeps an **index**: the ids of the public
//! datasets and projects, in (author, record_id) order, found from the sync
//! set without decoding a record, and the publishing organisations. A page
//! decodes only its own records.
//!
//! The index is rebuilt when the store has changed, and at least every
//! `MAX_AGE` or `IDLE_SPACING` times its length, whichever is longer
//! (the operator's trust and peer settings, which decide who an
//! Organisation record may speak for, are not store changes); but never
//! sooner after the last rebuild than `SPACING` times as long as that one
//! took, so that a flow of incoming records keeps rebuilds to a fraction
//! of one core. A quick rebuild (a small store) is made by the request that
//! finds the index stale, which then sees what was just published; a long
//! one runs on its own thread while requests go on with the index they
//! have. A request waits for a long rebuild only when there is no index at
//! all, and the node builds one as its HTTP interface starts.
//!
//! Blocking: every function here reads the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use maillage_dcat::{CatalogInfo, Entry, Graph, Page, Relation};
use maillage_record::model::Agent;
use maillage_record::{Body, Kind, PublicKey, Record, RecordId};

use crate::access::Read;
use crate::node::Node;
use crate::store::{ListFilter, Step, StoreError};
use crate::viewer::Viewer;

/// The longest time an index is served while a newer one could be built.
const MAX_AGE: Duration = Duration::from_secs(60);
/// A rebuild waits at least this many times as long as the last one took.
const SPACING: u32 = 5;
/// And this many times, when the store has not changed (`MAX_AGE`).
const IDLE_SPACING: u32 = 60;
/// A rebuild that took less is made by the request that needs it, unless
/// more than `QUICK_CHANGES` records were written since (what was quick
/// for a small store is not for the same store after a large import).
const QUICK: Duration = Duration::from_millis(100);
const QUICK_CHANGES: u64 = 10_000;
/// Items an export without `page` holds at most: a larger catalogue is
/// served as its first page, with Hydra links to the next.
pub const UNPAGED_MAX: usize = 1_000;

/// The public export's index, shared by every request of the HTTP server.
pub struct Exports {
    current: Mutex<Option<Arc<Index>>>,
    /// Held by whoever builds an index (the first, or one in the background).
    building: Mutex<()>,
    refresh: Duration,
    /// Past this many records written since it was built, a rebuild is
    /// long, whatever the last one took (`QUICK_CHANGES`).
    quick_changes: u64,
}

impl Default for Exports {
    fn default() -> Exports {
        Exports::with_refresh(Duration::ZERO)
    }
}

/// An author, its ranges in the index's datasets and projects, and whether
/// any of them says where it comes from (else a view by provenance takes
/// its ranges whole or leaves them).
type AuthorRanges = (
    PublicKey,
    std::ops::Range<usize>,
    std::ops::Range<usize>,
    bool,
);

/// Where a dataset or project comes from, as its provenance says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Origin {
    /// The SIREN it was published on behalf of (0: on no one's behalf;
    /// `SOMEONE_ELSE`: on behalf of an organisation that names no SIREN).
    on_behalf_of: u32,
    /// The host it was imported from, numbered from 1 in `Index::hosts`
    /// (0: not imported, or from a file).
    source: u32,
}

/// `Origin::on_behalf_of` of an organisation without a SIREN: no SIREN is
/// that large.
const SOMEONE_ELSE: u32 = u32::MAX;

/// Records related to one that a page shows at most, of each kind: anyone
/// may relate a record to another, and a page costs what it shows.
pub const RELATED_SHOWN: usize = 20;

/// The public records that complete one record.
#[derive(Debug, Clone, Default)]
pub struct Related {
    /// A project's details (the same author's ProjectDetails naming it;
    /// one for the public and one for the federation, say).
    pub details: Vec<RecordId>,
    pub resources: Vec<RecordId>,
    pub collections: Vec<RecordId>,
}

/// The public records at one point of the store.
pub struct Index {
    built: Instant,
    /// How long it took to build.
    took: Duration,
    seq: u64,
    /// In (author, record_id) order, so each author's are together.
    datasets: Vec<RecordId>,
    projects: Vec<RecordId>,
    /// Each author's range in `datasets` and in `projects`: a view of some
    /// authors costs the number of authors, not of records.
    authors: Vec<AuthorRanges>,
    /// Of each dataset and project (same positions): what its provenance
    /// says, for the views that need it.
    dataset_origins: Vec<Origin>,
    project_origins: Vec<Origin>,
    /// The hosts records were imported from; `Origin::source` numbers them
    /// from 1.
    hosts: Vec<String>,
    /// What public records say of others, by the (author, record_id) they
    /// name: a project's details, the resources related to a record, the
    /// collections a record is in.
    related: HashMap<(PublicKey, String), Related>,
    /// The organisation each author speaks for, by author (hex), from its
    /// public Organisation record where trust vouches for its SIREN.
    organisations: HashMap<String, Agent>,
    /// The datasets and projects the public may not see, for the readers
    /// who may see some (a read token, a signed-in agent): each page
    /// checks them against the reader, one by one.
    beyond_datasets: Vec<Beyond>,
    beyond_projects: Vec<Beyond>,
    /// What `beyond` found for the last readers: a reader paging through
    /// the export looks through the list once per rebuild, not per page.
    beyond_seen: Mutex<Vec<(BeyondKey, Arc<Vec<RecordId>>)>>,
}

/// A reader, a view, and datasets (true) or projects.
type BeyondKey = (Viewer, View, bool);

/// Readers whose `beyond` lists an index keeps.
const BEYOND_KEPT: usize = 16;

/// A page of `/projects.json`: its documents, the next page if one
/// follows, and the records beyond the public it shows.
pub type ProjectsPage = (serde_json::Value, Option<(usize, usize)>, Vec<Read>);

/// A dataset or project the public may not see.
struct Beyond {
    id: RecordId,
    author: PublicKey,
    visibility: maillage_record::Visibility,
}

impl Exports {
    /// Rebuilt no more often than every `refresh` (and `SPACING`) while
    /// the store changes.
    pub fn with_refresh(refresh: Duration) -> Exports {
        Exports {
            current: Mutex::new(None),
            building: Mutex::new(()),
            refresh,
            quick_changes: QUICK_CHANGES,
        }
    }

    /// The index. A stale one is rebuilt here if that is quick; otherwise
    /// a rebuild starts in the background and this request is answered from
    /// the index there is, unless that index is far behind the store. A
    /// request waits for a long rebuild only when there is no index, or
    /// when the one there is misses more than a tenth of what the store has
    /// written (a first sync, a large import): a harvester shown a
    /// catalogue missing most of its records could take them for
    /// withdrawals.
    pub fn index(self: &Arc<Self>, node: &Arc<Node>) -> Result<Arc<Index>, StoreError> {
        if let Some(index) = self.latest() {
            if !self.stale(&index, node) {
                return Ok(index);
            }
            let written = node.store().last_seq().saturating_sub(index.seq);
            let far_behind = written > self.quick_changes && written.saturating_mul(10) > index.seq;
            if !far_behind && (index.took >= QUICK || written > self.quick_changes) {
                self.rebuild_in_background(node);
                return Ok(index);
            }
        }
        let _building = self.building.lock().unwrap_or_else(|e| e.into_inner());
        // Another request may have built it while this one waited.
        if let Some(index) = self.latest()
            && !self.stale(&index, node)
        {
            return Ok(index);
        }
        self.build(node)
    }

    fn latest(&self) -> Option<Arc<Index>> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn stale(&self, index: &Index, node: &Node) -> bool {
        let age = index.built.elapsed();
        let refresh = self.refresh.max(index.took * SPACING);
        // Unchanged, the store only needs a rebuild for what trust now
        // vouches for: at most a sixtieth of the time goes to that.
        let unchanged = MAX_AGE.max(index.took * IDLE_SPACING);
        age >= unchanged || (index.seq != node.store().last_seq() && age >= refresh)
    }

    /// Builds the index now, and serves it from then on.
    fn build(&self, node: &Node) -> Result<Arc<Index>, StoreError> {
        let index = Arc::new(Index::build(node, node.store().last_seq())?);
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(index.clone());
        Ok(index)
    }

    /// Starts one rebuild on its own thread, unless one is under way.
    pub fn rebuild_in_background(self: &Arc<Self>, node: &Arc<Node>) {
        let (exports, node) = (self.clone(), node.clone());
        if try_building(&self.building).is_none() {
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("export-index".into())
            .spawn(move || {
                // Whoever took the lock since builds; this one gives way.
                let Some(_building) = try_building(&exports.building) else {
                    return;
                };
                if let Some(index) = exports.latest()
                    && !exports.stale(&index, &node)
                {
                    return;
                }
                if let Err(e) = exports.build(&node) {
                    tracing::error!(error = %e, "the export index could not be rebuilt");
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "no thread to rebuild the export index");
        }
    }
}

/// The building lock if no one holds it. A build that panicked leaves it
/// poisoned, which does not stop the next one.
fn try_building(lock: &Mutex<()>) -> Option<std::sync::MutexGuard<'_, ()>> {
    match lock.try_lock() {
        Ok(guard) => Some(guard),
        Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

impl Index {
    fn build(node: &Node, seq: u64) -> Result<Index, StoreError> {
        let store = node.store();
        let started = Instant::now();
        let mut index = Index {
            built: started,
            took: Duration::ZERO,
            seq,
            datasets: Vec::new(),
            projects: Vec::new(),
            authors: Vec::new(),
            dataset_origins: Vec::new(),
            project_origins: Vec::new(),
            hosts: Vec::new(),
            related: HashMap::new(),
            organisations: HashMap::new(),
            beyond_datasets: Vec::new(),
            beyond_projects: Vec::new(),
            beyond_seen: Mutex::new(Vec::new()),
        };
        let mut host_numbers: HashMap<String, u32> = HashMap::new();
        let mut beyond_related: std::collections::HashSet<RecordId> = Default::default();
        store.scan_current(&ListFilter::default(), None, |cur| {
            // The scan goes author by author.
            if index.authors.last().is_none_or(|(a, ..)| *a != cur.author) {
                let (d, p) = (index.datasets.len(), index.projects.len());
                index.authors.push((cur.author, d..d, p..p, false));
            }
            if matches!(
                cur.kind,
                Kind::Tombstone | Kind::Membership | Kind::Succession | Kind::Revocation
            ) {
                return Ok(Step::Next);
            }
            // Visibility from the sync set, before anything is decoded.
            let Some(item) = store.sync_items_many(&[cur.id])?.pop().flatten() else {
                return Ok(Step::Next);
            };
            let public = Viewer::Anonymous.may_see(&cur.author, &item.visibility);
            if !public {
                match cur.kind {
                    Kind::Organisation => return Ok(Step::Next),
                    // Not decoded here: only a reader beyond the public
                    // needs them, and what its view asks of their
                    // provenance is read then (`beyond`).
                    Kind::Dataset | Kind::Project => {
                        let beyond = Beyond {
                            id: cur.id,
                            author: cur.author,
                            visibility: item.visibility,
                        };
                        if cur.kind == Kind::Dataset {
                            index.beyond_datasets.push(beyond);
                        } else {
                            index.beyond_projects.push(beyond);
                        }
                        return Ok(Step::Next);
                    }
                    _ => {}
                }
            }
            let Some(record) = store.record(&cur.id)? else {
                return Ok(Step::Next);
            };
            let mut origin = || {
                let p = record.provenance.as_ref();
                let on_behalf_of = p.and_then(|p| p.on_behalf_of.as_ref()).map_or(0, |a| {
                    a.siren
                        .as_ref()
                        .and_then(|s| s.as_str().parse().ok())
                        .unwrap_or(SOMEONE_ELSE)
                });
                let source = p
                    .and_then(|p| source_host(p.source.as_deref()?))
                    .map_or(0, |host| {
                        let next = host_numbers.len() as u32 + 1;
                        *host_numbers.entry(host).or_insert_with_key(|h| {
                            index.hosts.push(h.clone());
                            next
                        })
                    });
                Origin {
                    on_behalf_of,
                    source,
                }
            };
            match cur.kind {
                Kind::Dataset => {
                    let o = origin();
                    index.datasets.push(cur.id);
                    index.dataset_origins.push(o);
                    let ranges = index.authors.last_mut().expect("pushed above");
                    ranges.1.end = index.datasets.len();
                    ranges.3 |= o != Origin::default();
                }
                Kind::Project => {
                    let o = origin();
                    index.projects.push(cur.id);
                    index.project_origins.push(o);
                    let ranges = index.authors.last_mut().expect("pushed above");
                    ranges.2.end = index.projects.len();
                    ranges.3 |= o != Origin::default();
                }
                Kind::Organisation => {
                    if let Some(agent) = vouched_organisation(node, &cur.author, record) {
                        index.organisations.insert(cur.author.to_hex(), agent);
                    }
                }
                _ => {
                    if !public {
                        beyond_related.insert(cur.id);
                    }
                    index.relate(cur.author, cur.id, &record)
                }
            }
            Ok(Step::Next)
        })?;
        // The public first in each list: a page looks at so many of them
        // (`shown`), and records others may not see must not hide them.
        for rel in index.related.values_mut() {
            for list in [&mut rel.details, &mut rel.resources, &mut rel.collections] {
                list.sort_by_key(|id| beyond_related.contains(id));
            }
        }
        index.took = started.elapsed();
        tracing::info!(
            took_ms = index.took.as_millis() as u64,
            datasets = index.datasets.len(),
            projects = index.projects.len(),
            beyond = index.beyond_datasets.len() + index.beyond_projects.len(),
            "the export's index was built"
        );
        Ok(index)
    }

    /// The organisation an author (hex) speaks for, where its public
    /// Organisation record claims the SIREN trust vouches for.
    pub fn organisation(&self, author: &str) -> Option<&Agent> {
        self.organisations.get(author)
    }

    /// Notes what a ProjectDetails, Resource or Collection record says of
    /// the records it names (whoever may see it: `shown` checks the reader).
    fn relate(&mut self, author: PublicKey, id: RecordId, record: &Record) {
        // A reference names its author, or means the referring record's.
        let named = |r: &maillage_record::model::RecordRef| match &r.author {
            Some(hex) => PublicKey::parse_hex(hex)
                .ok()
                .map(|by| (by, r.record_id.clone())),
            None => Some((author, r.record_id.clone())),
        };
        match &record.body {
            // A record's resources are its author's: others' would put
            // their titles and addresses in its DCAT description.
            Body::Resource(res) => {
                for key in res.related.iter().filter_map(named) {
                    if key.0 == author {
                        self.related.entry(key).or_default().resources.push(id);
                    }
                }
            }
            Body::Collection(c) => {
                for key in c.items.iter().filter_map(named) {
                    self.related.entry(key).or_default().collections.push(id);
                }
            }
            Body::ProjectDetails(d) => {
                self.related
                    .entry((author, d.project.clone()))
                    .or_default()
                    .details
                    .push(id);
            }
            _ => {}
        }
    }

    /// The public records that complete a record: its details, resources
    /// and collections.
    pub fn related(&self, author: &PublicKey, record_id: &str) -> Option<&Related> {
        self.related.get(&(*author, record_id.to_string()))
    }

    /// The records completing `author`'s `record_id`, decoded: details,
    /// resources, collections (at most `RELATED_SHOWN` of each), each as
    /// this node holds it now: still current, one `viewer` may see, and a
    /// collection only if `viewer` may read it whole (`viewer::may_read`:
    /// one that lists a record it may not see is not shown, not even its
    /// title).
    pub fn related_records(
        &self,
        node: &Node,
        viewer: &Viewer,
        author: &PublicKey,
        record_id: &str,
    ) -> Result<RelatedRecords, StoreError> {
        let Some(rel) = self.related(author, record_id) else {
            return Ok(RelatedRecords::default());
        };
        let details = shown(node, viewer, &rel.details, 1)?;
        let resources = shown(node, viewer, &rel.resources, RELATED_SHOWN)?;
        let collections = shown(node, viewer, &rel.collections, RELATED_SHOWN)?;
        let read = details
            .iter()
            .chain(&resources)
            .chain(&collections)
            .filter_map(beyond_public)
            .collect();
        let strip = |v: Vec<(RecordId, String, Record)>| {
            v.into_iter().map(|(_, a, r)| (a, r)).collect::<Vec<_>>()
        };
        Ok(RelatedRecords {
            details: details.into_iter().next().map(|(_, _, r)| r),
            resources: strip(resources),
            collections: strip(collections),
            read,
        })
    }

    /// The resources of `author`'s `record_id` alone, for DCAT.
    fn resources(
        &self,
        node: &Node,
        viewer: &Viewer,
        author: &PublicKey,
        record_id: &str,
    ) -> Result<Vec<(RecordId, String, Record)>, StoreError> {
        match self.related(author, record_id) {
            Some(rel) => shown(node, viewer, &rel.resources, RELATED_SHOWN),
            None => Ok(Vec::new()),
        }
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
        viewer: &Viewer,
    ) -> Result<(Graph, Vec<Read>), StoreError> {
        let all = self.seen(
            node,
            view,
            |r| r.1.clone(),
            &self.datasets,
            &self.dataset_origins,
        );
        let beyond = self.beyond(node, view, viewer, true);
        let total = all.len() + beyond.len();
        let page = page.or((total > UNPAGED_MAX).then_some((1, UNPAGED_MAX)));
        let records = still_current(node, load(node, &all.slice_with(&beyond, page))?)?;
        let mut read: Vec<Read> = records.iter().filter_map(beyond_public).collect();
        let mut entries: Vec<Entry<'_>> = Vec::with_capacity(records.len());
        for (_, author, record) in &records {
            let relations = match PublicKey::parse_hex(author) {
                Ok(key) => {
                    let resources = self.resources(node, viewer, &key, &record.record_id)?;
                    read.extend(resources.iter().filter_map(beyond_public));
                    RelatedRecords {
                        resources: resources.into_iter().map(|(_, a, r)| (a, r)).collect(),
                        ..RelatedRecords::default()
                    }
                    .relations()
                }
                Err(_) => Vec::new(),
            };
            entries.push(Entry {
                author: author.clone(),
                record,
                author_organisation: self.organisations.get(author).cloned(),
                relations,
            });
        }
        let page = page.map(|(number, size)| Page {
            number,
            size,
            total,
            document,
            filters: view.query(),
        });
        Ok((maillage_dcat::catalog(info, &entries, page), read))
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
        let records = load(node, ids)?
            .into_iter()
            .map(|(_, a, r)| (a, r))
            .collect();
        Ok((records, self.projects.len()))
    }

    /// The public projects as maillage JSON documents with their author,
    /// or one page of them; more than `UNPAGED_MAX` are served as their
    /// first page. Also says whether a next page follows.
    pub fn projects(
        &self,
        node: &Node,
        page: Option<(usize, usize)>,
        view: &View,
        viewer: &Viewer,
    ) -> Result<ProjectsPage, StoreError> {
        let all = self.seen(
            node,
            view,
            |r| r.2.clone(),
            &self.projects,
            &self.project_origins,
        );
        let beyond = self.beyond(node, view, viewer, false);
        let total = all.len() + beyond.len();
        let page = page.or((total > UNPAGED_MAX).then_some((1, UNPAGED_MAX)));
        let records = still_current(node, load(node, &all.slice_with(&beyond, page))?)?;
        let mut read: Vec<Read> = records.iter().filter_map(beyond_public).collect();
        let mut docs = Vec::new();
        for (_, author, record) in records {
            let mut doc = maillage_record::json::record_to_json(&record);
            // Its details and resources the reader may see, as the
            // bibliothèque shows them beside the project.
            if let Ok(key) = PublicKey::parse_hex(&author) {
                let related = self.related_records(node, viewer, &key, &record.record_id)?;
                read.extend(related.read);
                if let Some(d) = related.details {
                    doc["details"] = maillage_record::json::record_to_json(&d);
                }
                if !related.resources.is_empty() {
                    doc["resources"] = related
                        .resources
                        .iter()
                        .map(|(by, r)| {
                            let mut res = maillage_record::json::record_to_json(r);
                            res["author"] = by.clone().into();
                            res
                        })
                        .collect();
                }
            }
            doc["author"] = author.into();
            docs.push(doc);
        }
        let next = page
            .filter(|(number, size)| number.saturating_mul(*size) < total)
            .map(|(number, size)| (number + 1, size));
        Ok((serde_json::Value::Array(docs), next, read))
    }

    /// Of the datasets (or projects) beyond the public, the ids `viewer`
    /// may see that `view` keeps, in order.
    fn beyond(
        &self,
        node: &Node,
        view: &View,
        viewer: &Viewer,
        datasets: bool,
    ) -> Arc<Vec<RecordId>> {
        if matches!(viewer, Viewer::Anonymous) {
            return Arc::default();
        }
        let key = (viewer.clone(), view.clone(), datasets);
        let kept = || {
            self.beyond_seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some((_, ids)) = kept().iter().find(|(k, _)| *k == key) {
            return ids.clone();
        }
        let list = if datasets {
            &self.beyond_datasets
        } else {
            &self.beyond_projects
        };
        let wanted: Option<u32> = view
            .organisation
            .as_ref()
            .and_then(|s| s.as_str().parse().ok());
        let store = node.store();
        let mut ids: Vec<RecordId> = Vec::new();
        for b in list {
            if !viewer.may_see(&b.author, &b.visibility)
                || (view.own && b.author != node.public_key())
            {
                continue;
            }
            if wanted.is_some() || view.exclude_source.is_some() {
                // The view asks what its provenance says: read it now.
                let provenance = match store.record(&b.id) {
                    Ok(Some(r)) => r.provenance,
                    _ => continue,
                };
                let p = provenance.as_ref();
                if let Some(x) = &view.exclude_source
                    && p.and_then(|p| source_host(p.source.as_deref()?))
                        .is_some_and(|h| host_matches(&h, x))
                {
                    continue;
                }
                if let Some(w) = wanted {
                    let behalf = p.and_then(|p| p.on_behalf_of.as_ref()).map(|a| {
                        a.siren
                            .as_ref()
                            .and_then(|s| s.as_str().parse().ok())
                            .unwrap_or(SOMEONE_ELSE)
                    });
                    let of = match behalf {
                        Some(o) if node.publishes_for_others(&b.author) => Some(o),
                        _ => node
                            .speaks_for(&b.author)
                            .and_then(|(s, _)| s.as_str().parse().ok()),
                    };
                    if of != Some(w) {
                        continue;
                    }
                }
            }
            ids.push(b.id);
        }
        let ids = Arc::new(ids);
        let mut kept = kept();
        if kept.len() >= BEYOND_KEPT {
            kept.remove(0);
        }
        kept.push((key, ids.clone()));
        ids
    }
}

/// Of a page's records, those beyond the public only if they are still
/// their record's current version: one replaced since the index was built
/// may have narrowed its audience (the public ones are kept: public
/// anyway, until the next rebuild).
fn still_current(
    node: &Node,
    records: Vec<(RecordId, String, Record)>,
) -> Result<Vec<(RecordId, String, Record)>, StoreError> {
    let mut out = Vec::with_capacity(records.len());
    for (id, author, record) in records {
        if record.visibility != maillage_record::Visibility::Public {
            let Ok(key) = PublicKey::parse_hex(&author) else {
                continue;
            };
            if node
                .store()
                .current(&key, &record.record_id)?
                .is_none_or(|c| c.id != id)
            {
                continue;
            }
        }
        out.push((id, author, record));
    }
    Ok(out)
}

/// A record shown beyond the public, for the access log.
fn beyond_public((id, author, record): &(RecordId, String, Record)) -> Option<Read> {
    (record.visibility != maillage_record::Visibility::Public).then(|| Read {
        id: id.to_hex(),
        author: author.clone(),
        record_id: record.record_id.clone(),
        kind: record.kind(),
    })
}

/// The public records that complete one, decoded, with their author (hex).
#[derive(Debug, Default)]
pub struct RelatedRecords {
    pub details: Option<Record>,
    pub resources: Vec<(String, Record)>,
    pub collections: Vec<(String, Record)>,
    /// Those of them beyond the public, for the access log.
    pub read: Vec<Read>,
}

impl RelatedRecords {
    /// The resources, as the DCAT export relates them.
    pub fn relations(&self) -> Vec<Relation> {
        self.resources
            .iter()
            .filter_map(|(by, r)| match &r.body {
                Body::Resource(res) => Some(Relation {
                    author: by.clone(),
                    record_id: r.record_id.clone(),
                    title: res.title.clone(),
                    kind: res.resource_kind.label().to_string(),
                    url: res.url.clone(),
                }),
                _ => None,
            })
            .collect()
    }
}

/// The host of an http(s) address, lowercase, without its port.
fn source_host(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    let host = host.split(':').next()?.to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// Which public records an export holds: all of them, or those of one
/// organisation (`?org=SIREN`: published on its behalf, or by an author
/// that speaks for it and on behalf of no one else), or this node's own
/// (`?own=1`: what it signed itself, so that a portal harvesting a
/// committee and its members gets each record once); and, of those, none
/// imported from a host (`?exclude_source=HOST`: a harvester does not get
/// back what the node took from it; `data.gouv.fr` also leaves out
/// `www.data.gouv.fr`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    pub organisation: Option<maillage_record::Siren>,
    pub own: bool,
    pub exclude_source: Option<String>,
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
        if let Some(h) = &self.exclude_source {
            q.push_str(&format!("&exclude_source={h}"));
        }
        q
    }

    /// Reads a host to leave out as a user writes it: a host, or an
    /// address whose host is taken.
    pub fn source_to_exclude(text: &str) -> Result<String, String> {
        let t = text.trim();
        let host = if t.contains("://") {
            source_host(t)
        } else {
            source_host(&format!("https://{t}"))
        };
        match host {
            Some(h)
                if h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')) =>
            {
                Ok(h)
            }
            _ => Err(format!(
                "exclude_source '{text}' is not a host: write it as www.data.gouv.fr"
            )),
        }
    }
}

/// Whether `host` is `excluded` or one of its subdomains.
fn host_matches(host: &str, excluded: &str) -> bool {
    host == excluded
        || host
            .strip_suffix(excluded)
            .is_some_and(|sub| sub.ends_with('.'))
}

/// The ids a view holds: ranges of the index's list, in order.
struct Seen<'a> {
    ids: &'a [RecordId],
    ranges: Vec<std::ops::Range<usize>>,
}

impl Index {
    /// The ranges of `ids` (datasets or projects, as `range` picks, with
    /// their `origins`) that the view keeps.
    fn seen<'a>(
        &'a self,
        node: &Node,
        view: &View,
        range: impl Fn(&AuthorRanges) -> std::ops::Range<usize>,
        ids: &'a [RecordId],
        origins: &[Origin],
    ) -> Seen<'a> {
        if *view == View::default() {
            // The whole list: one range.
            return Seen {
                ids,
                ranges: std::iter::once(0..ids.len()).collect(),
            };
        }
        // By host number (0: not imported from a host).
        let mut excluded = vec![false; self.hosts.len() + 1];
        if let Some(x) = &view.exclude_source {
            for (n, h) in self.hosts.iter().enumerate() {
                excluded[n + 1] = host_matches(h, x);
            }
        }
        let excluding = excluded.contains(&true);
        let wanted: Option<u32> = view
            .organisation
            .as_ref()
            .and_then(|s| s.as_str().parse().ok());
        let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
        let mut keep = |r: std::ops::Range<usize>| match ranges.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => ranges.push(r),
        };
        for a in &self.authors {
            let span = range(a);
            if span.is_empty() || (view.own && a.0 != node.public_key()) {
                continue;
            }
            let speaks_for: Option<u32> = node
                .speaks_for(&a.0)
                .and_then(|(s, _)| s.as_str().parse().ok());
            // On behalf of others only if the author may publish for them
            // (`Node::publishes_for_others`); else its records are its own.
            let for_others = a.3 && wanted.is_some() && node.publishes_for_others(&a.0);
            if (!excluding || !a.3) && !for_others {
                // Every record of the author is kept, or none.
                if wanted.is_none() || speaks_for == wanted {
                    keep(span);
                }
                continue;
            }
            for i in span {
                let o = origins.get(i).copied().unwrap_or_default();
                if excluded.get(o.source as usize).copied().unwrap_or(false) {
                    continue;
                }
                let of = if for_others && o.on_behalf_of != 0 {
                    Some(o.on_behalf_of)
                } else {
                    speaks_for
                };
                if wanted.is_none() || of == wanted {
                    keep(i..i + 1);
                }
            }
        }
        Seen { ids, ranges }
    }
}

/// The first and last positions (exclusive) of a page of `total` items
/// (all of them without a page).
fn bounds(page: Option<(usize, usize)>, total: usize) -> (usize, usize) {
    match page {
        None => (0, total),
        Some((number, size)) => {
            let start = number.saturating_sub(1).saturating_mul(size).min(total);
            (start, start.saturating_add(size).min(total))
        }
    }
}

impl Seen<'_> {
    fn len(&self) -> usize {
        self.ranges.iter().map(|r| r.len()).sum()
    }

    /// The ids of one page of these followed by `more`.
    fn slice_with(&self, more: &[RecordId], page: Option<(usize, usize)>) -> Vec<RecordId> {
        let own = self.len();
        let (start, end) = bounds(page, own + more.len());
        let mut out = self.between(start.min(own), end.min(own));
        if end > own {
            out.extend_from_slice(&more[start.max(own) - own..end - own]);
        }
        out
    }

    /// The ids from position `start` to `end` (exclusive).
    fn between(&self, start: usize, end: usize) -> Vec<RecordId> {
        let mut out = Vec::with_capacity(end.saturating_sub(start));
        let mut at = 0;
        for r in &self.ranges {
            if at >= end {
                break;
            }
            let (from, to) = (start.max(at), end.min(at + r.len()));
            if from < to {
                out.extend_from_slice(&self.ids[r.start + (from - at)..r.start + (to - at)]);
            }
            at += r.len();
        }
        out
    }
}

/// Of `ids` (named by the index when it was built), at most `max` that
/// the public may read now: current (a version replaced since may not
/// relate any more), public, and for a collection, every item public
/// (`viewer::may_read`). At most `4 × max` are looked at.
fn shown(
    node: &Node,
    viewer: &Viewer,
    ids: &[RecordId],
    max: usize,
) -> Result<Vec<(RecordId, String, Record)>, StoreError> {
    let store = node.store();
    let mut out = Vec::new();
    for id in ids.iter().take(max.saturating_mul(4)) {
        if out.len() == max {
            break;
        }
        let Some((_, author, record)) = load(node, std::slice::from_ref(id))?.pop() else {
            continue;
        };
        let Ok(key) = PublicKey::parse_hex(&author) else {
            continue;
        };
        let current = store.current(&key, &record.record_id)?;
        if current.is_some_and(|c| c.id == *id)
            && crate::viewer::may_read(store, viewer, &key, &record)?
        {
            out.push((*id, author, record));
        }
    }
    Ok(out)
}

/// The records of `ids`, with their author (hex). The index names the
/// versions current when it was built: a page may show one that has been
/// replaced since, until the next rebuild.
fn load(node: &Node, ids: &[RecordId]) -> Result<Vec<(RecordId, String, Record)>, StoreError> {
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
                Some((*id, author.to_hex(), record))
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
    /// A reader beyond the public (a read token, a signed-in agent) gets
    /// the public records, then those it may see, paged as one list; the
    /// export says which of them were beyond the public (for the access
    /// log). No one else gets those.
    #[tokio::test]
    async fn readers_get_what_their_organisation_may_see() {
        let dir = tempfile::tempdir().unwrap();
        let node = start_node(dir.path()).await;
        let colomiers = maillage_record::Siren::parse("213101496").unwrap();
        store_datasets(&node, 0, 3, Visibility::Public);
        store_datasets(
            &node,
            3,
            2,
            Visibility::Restricted {
                audience: vec![colomiers.clone()],
            },
        );
        store_datasets(&node, 5, 1, Visibility::Federation);
        let exports = Arc::new(Exports::default());
        let index = exports.index(&node).unwrap();
        let info = CatalogInfo::for_node("Toulouse Métropole", "243100518", "https://d.example");
        let agent = Viewer::Agent {
            siren: colomiers,
            member: false,
        };
        let pages = |viewer: &Viewer| {
            (1..=3)
                .map(|n| {
                    let (graph, read) = index
                        .catalog(
                            &node,
                            &info,
                            Some((n, 2)),
                            Page::TURTLE,
                            &View::default(),
                            viewer,
                        )
                        .unwrap();
                    (datasets_in(&graph), read.len())
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(pages(&Viewer::Anonymous), [(2, 0), (1, 0), (0, 0)]);
        // 3 public, then the 2 restricted to Colomiers; not the federation's
        // (Colomiers is no member).
        assert_eq!(pages(&agent), [(2, 0), (2, 1), (1, 1)]);
        let (graph, read) = index
            .catalog(&node, &info, None, Page::TURTLE, &View::default(), &agent)
            .unwrap();
        let ttl = graph.to_turtle();
        assert!(
            ttl.contains("\"Jeu 4\"") && !ttl.contains("\"Jeu 5\""),
            "{ttl}"
        );
        let mut ids: Vec<&str> = read.iter().map(|r| r.record_id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["d00003", "d00004"]);
        // A view of another organisation's records holds none of them.
        let other = View {
            organisation: Some(maillage_record::Siren::parse("200053791").unwrap()),
            ..View::default()
        };
        let (graph, read) = index
            .catalog(&node, &info, None, Page::TURTLE, &other, &agent)
            .unwrap();
        assert_eq!((datasets_in(&graph), read.len()), (0, 0));
        node.stop();
    }

    #[tokio::test]
    async fn pages_come_from_one_index() {
        let dir = tempfile::tempdir().unwrap();
        let node = start_node(dir.path()).await;
        store_datasets(&node, 0, 5, Visibility::Public);
        store_datasets(&node, 5, 3, Visibility::Federation);
        let exports = Arc::new(Exports::with_refresh(Duration::from_secs(3600)));
        let index = exports.index(&node).unwrap();
        assert_eq!((index.datasets.len(), index.projects.len()), (5, 0));
        assert!(Arc::ptr_eq(&index, &exports.index(&node).unwrap()));
        let info = CatalogInfo::for_node("Toulouse Métropole", "243100518", "https://d.example");
        let page = index
            .catalog(
                &node,
                &info,
                Some((2, 2)),
                Page::JSON_LD,
                &View::default(),
                &Viewer::Anonymous,
            )
            .unwrap()
            .0;
        assert_eq!(datasets_in(&page), 2);
        // A change within `refresh` waits for the next rebuild.
        store_datasets(&node, 8, 1, Visibility::Public);
        assert!(Arc::ptr_eq(&index, &exports.index(&node).unwrap()));
        node.stop();
    }

    /// An index far behind the store (most of it written since: a first
    /// sync) is not served while a rebuild runs: the request waits for the
    /// rebuilt one, however long the last rebuild took.
    #[tokio::test]
    async fn an_index_far_behind_the_store_is_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let node = start_node(dir.path()).await;
        let exports = Arc::new(Exports {
            quick_changes: 2,
            ..Exports::default()
        });
        let mut first = Index::build(&node, node.store().last_seq()).unwrap();
        first.took = QUICK;
        *exports.current.lock().unwrap() = Some(Arc::new(first));
        store_datasets(&node, 0, 40, Visibility::Public);
        std::thread::sleep(QUICK * SPACING);
        let index = exports.index(&node).unwrap();
        assert_eq!(index.datasets.len(), 40, "a far-behind index was served");
        node.stop();
    }

    /// A small store's index is rebuilt by the request after a change,
    /// which sees it. A request never waits for a long rebuild while there
    /// is an index: it is answered from the one there is, and the next
    /// ones from the rebuilt one.
    #[tokio::test]
    async fn a_stale_index_is_rebuilt_quickly_or_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let node = start_node(dir.path()).await;
        store_datasets(&node, 0, 2, Visibility::Public);
        let exports = Arc::new(Exports::default());
        let first = exports.index(&node).unwrap();
        assert_eq!(first.datasets.len(), 2);
        store_datasets(&node, 2, 1, Visibility::Public);
        std::thread::sleep(first.took * SPACING);
        let quick = exports.index(&node).unwrap();
        assert_eq!(quick.datasets.len(), 3, "a quick rebuild was not made");

        // As if the last rebuild had been long.
        let mut long = Index::build(&node, quick.seq).unwrap();
        // Stale by its age (MAX_AGE) or, on a machine up for less than
        // that, by the changes below; long by how long it took.
        long.built = Instant::now().checked_sub(MAX_AGE).unwrap_or(long.built);
        long.took = QUICK;
        let first = Arc::new(long);
        *exports.current.lock().unwrap() = Some(first.clone());
        store_datasets(&node, 3, 1, Visibility::Public);
        let mut rebuilt = exports.index(&node).unwrap();
        assert!(
            Arc::ptr_eq(&first, &rebuilt),
            "the request waited for the rebuild"
        );
        for _ in 0..100 {
            if rebuilt.datasets.len() == 4 {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
            rebuilt = exports.index(&node).unwrap();
        }
        assert_eq!(rebuilt.datasets.len(), 4, "never rebuilt");
        assert_eq!(rebuilt.seq, node.store().last_seq());
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
        let index = Arc::new(Exports::default()).index(&node).unwrap();
        let info = CatalogInfo::for_node("Toulouse Métropole", "243100518", "https://d.example");
        let count = |view: &View, page| {
            datasets_in(
                &index
                    .catalog(&node, &info, page, Page::TURTLE, view, &Viewer::Anonymous)
                    .unwrap()
                    .0,
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
            .catalog(
                &node,
                &info,
                Some((1, 2)),
                Page::TURTLE,
                &own,
                &Viewer::Anonymous,
            )
            .unwrap()
            .0
            .to_turtle();
        assert!(
            page.contains("/catalog.ttl?page=2&page_size=2&own=1"),
            "{page}"
        );
        assert!(!page.contains("Autre"), "{page}");
        let (projects, _, _) = index
            .projects(&node, None, &own, &Viewer::Anonymous)
            .unwrap();
        assert_eq!(projects.as_array().unwrap().len(), 0);
        node.stop();
    }

    /// A record published on behalf of another organisation is that
    /// organisation's (`?org=`), not its author's; `?exclude_source=` leaves
    /// out what was imported from a host and its subdomains.
    #[tokio::test]
    async fn views_follow_provenance() {
        use maillage_record::model::{Agent, Provenance};
        let dir = tempfile::tempdir().unwrap();
        let node = start_node(dir.path()).await;
        let imported = |record_id: &str, source: Option<&str>, behalf: Option<&str>| {
            let record = Record {
                record_id: record_id.into(),
                version: 1,
                issued_at_ms: 1_764_000_000_000,
                visibility: Visibility::Public,
                provenance: Some(Provenance {
                    source_format: "dcat".into(),
                    source: source.map(str::to_string),
                    source_identifier: None,
                    on_behalf_of: behalf.map(|siren| Agent {
                        name: "Colomiers".into(),
                        siren: Some(siren.into()),
                        url: None,
                    }),
                    as_written: Default::default(),
                }),
                body: Body::Dataset(Dataset::new(format!("Jeu {record_id}"), "Données")),
            };
            let signed = node.author().sign(&[], record).unwrap().record;
            node.ledger()
                .insert(&signed, crate::store::Admission::RequireNewer)
                .unwrap();
        };
        store_datasets(&node, 0, 1, Visibility::Public);
        imported(
            "gouv",
            Some("https://www.data.gouv.fr/api/1/datasets/?page=2"),
            None,
        );
        imported(
            "colomiers",
            Some("https://data.colomiers.fr/catalog.ttl"),
            Some("213101496"),
        );
        let index = Arc::new(Exports::default()).index(&node).unwrap();
        let info = CatalogInfo::for_node("Toulouse Métropole", "243100518", "https://d.example");
        let titles = |view: &View| {
            let ttl = index
                .catalog(&node, &info, None, Page::TURTLE, view, &Viewer::Anonymous)
                .unwrap()
                .0
                .to_turtle();
            ["Jeu 0", "Jeu gouv", "Jeu colomiers"]
                .into_iter()
                .filter(|t| ttl.contains(&format!("\"{t}\"")))
                .collect::<Vec<_>>()
        };
        let org = |siren: &str| View {
            organisation: Some(maillage_record::Siren::parse(siren).unwrap()),
            ..View::default()
        };
        assert_eq!(titles(&org("243100518")), ["Jeu 0", "Jeu gouv"]);
        assert_eq!(titles(&org("213101496")), ["Jeu colomiers"]);
        let without = |host: &str| View {
            exclude_source: Some(View::source_to_exclude(host).unwrap()),
            ..View::default()
        };
        assert_eq!(titles(&without("data.gouv.fr")), ["Jeu 0", "Jeu colomiers"]);
        assert_eq!(
            titles(&without("https://WWW.data.gouv.fr/")),
            ["Jeu 0", "Jeu colomiers"]
        );
        assert_eq!(titles(&without("gouv.fr.example")).len(), 3);
        // Paging links keep the view.
        let page = index
            .catalog(
                &node,
                &info,
                Some((1, 5)),
                Page::TURTLE,
                &without("data.gouv.fr"),
                &Viewer::Anonymous,
            )
            .unwrap()
            .0
            .to_turtle();
        assert!(page.contains("exclude_source=data.gouv.fr"), "{page}");
        assert!(View::source_to_exclude("not a host!").is_err());
        node.stop();
    }

    /// A project's public details and resources come with it; a dataset's
    /// resources are related to it in DCAT; a private resource is not.
    #[tokio::test]
    async fn related_records_come_with_the_record() {
        use maillage_record::model::{
            Collection, Project, ProjectDetails, ProjectStatus, RecordRef, Resource,
        };
        use maillage_record::vocab::ResourceKind;
        let dir = tempfile::tempdir().unwrap();
        let node = start_node(dir.path()).await;
        let publish = |record_id: &str, visibility: Visibility, body: Body| {
            let record = Record {
                record_id: record_id.into(),
                version: 1,
                issued_at_ms: 1_764_000_000_000,
                visibility,
                provenance: None,
                body,
            };
            let signed = node.author().sign(&[], record).unwrap().record;
            node.ledger()
                .insert(&signed, crate::store::Admission::RequireNewer)
                .unwrap();
        };
        store_datasets(&node, 0, 1, Visibility::Public);
        let project = Project::new(
            "Tri du courrier",
            "Oriente les courriers.",
            ProjectStatus::Experimentation,
        );
        publish("tri", Visibility::Public, Body::Project(project));
        let mut details = ProjectDetails::new("tri");
        details.algorithm_name = Some("CamemBERT".into());
        publish(
            "tri-details",
            Visibility::Public,
            Body::ProjectDetails(details),
        );
        let resource = |title: &str, to: &str| Resource {
            resource_kind: ResourceKind::Guide,
            title: title.into(),
            description: None,
            url: Some("https://example.fr/guide".into()),
            content: None,
            licence: None,
            related: vec![RecordRef {
                author: None,
                record_id: to.into(),
            }],
        };
        publish(
            "guide",
            Visibility::Public,
            Body::Resource(resource("Guide du tri", "tri")),
        );
        publish(
            "guide-jeu",
            Visibility::Public,
            Body::Resource(resource("Guide du jeu", "d00000")),
        );
        publish(
            "interne",
            Visibility::Federation,
            Body::Resource(resource("Guide INTERNE", "tri")),
        );
        publish(
            "ia",
            Visibility::Public,
            Body::Collection(Collection {
                title: "Projets IA".into(),
                description: None,
                items: vec![RecordRef {
                    author: None,
                    record_id: "tri".into(),
                }],
            }),
        );
        // A public collection that lists a record the public may not see
        // (narrowed since) is not shown, not even its title.
        store_datasets(&node, 1, 1, Visibility::Public);
        publish(
            "revele",
            Visibility::Public,
            Body::Collection(Collection {
                title: "Collection REVELATRICE".into(),
                description: None,
                items: vec![
                    RecordRef {
                        author: None,
                        record_id: "tri".into(),
                    },
                    RecordRef {
                        author: None,
                        record_id: "d00001".into(),
                    },
                ],
            }),
        );
        let narrowed = Record {
            record_id: "d00001".into(),
            version: 2,
            issued_at_ms: 1_764_000_000_001,
            visibility: Visibility::Federation,
            provenance: None,
            body: Body::Dataset(Dataset::new("Jeu 1", "Données")),
        };
        let signed = node.author().sign(&[], narrowed).unwrap().record;
        node.ledger()
            .insert(&signed, crate::store::Admission::RequireNewer)
            .unwrap();
        // Another author's resource does not become this record's.
        let other = maillage_record::keyfile::generate().unwrap();
        let theirs = Record {
            record_id: "pub".into(),
            version: 1,
            issued_at_ms: 1_764_000_000_000,
            visibility: Visibility::Public,
            provenance: None,
            body: Body::Resource(Resource {
                related: vec![RecordRef {
                    author: Some(node.public_key().to_hex()),
                    record_id: "tri".into(),
                }],
                ..resource("Publicité AUTRE", "tri")
            }),
        };
        node.ledger()
            .insert(
                &maillage_record::envelope::sign(&other, &theirs).unwrap(),
                crate::store::Admission::RequireNewer,
            )
            .unwrap();
        let index = Arc::new(Exports::default()).index(&node).unwrap();
        let related = index
            .related_records(&node, &Viewer::Anonymous, &node.public_key(), "tri")
            .unwrap();
        assert!(!format!("{related:?}").contains("REVELATRICE"));
        assert!(!format!("{related:?}").contains("AUTRE"));
        assert!(related.details.is_some());
        assert_eq!(related.resources.len(), 1, "{:?}", related.resources);
        assert_eq!(related.collections.len(), 1);
        let (projects, _, _) = index
            .projects(&node, None, &View::default(), &Viewer::Anonymous)
            .unwrap();
        let tri = &projects[0];
        assert_eq!(tri["details"]["algorithm_name"], "CamemBERT", "{tri}");
        assert_eq!(tri["resources"][0]["title"], "Guide du tri", "{tri}");
        assert!(!projects.to_string().contains("INTERNE"));
        let info = CatalogInfo::for_node("Toulouse Métropole", "243100518", "https://d.example");
        let ttl = index
            .catalog(
                &node,
                &info,
                None,
                Page::TURTLE,
                &View::default(),
                &Viewer::Anonymous,
            )
            .unwrap()
            .0
            .to_turtle();
        assert!(ttl.contains("dct:relation"), "{ttl}");
        assert!(ttl.contains("\"Guide du jeu\"@fr"), "{ttl}");
        node.stop();
    }

    /// A catalogue too large to serve whole is served as its first page,
    /// with a Hydra link to the next.
    #[tokio::test]
    async fn a_large_catalogue_is_paged_unasked() {
        let dir = tempfile::tempdir().unwrap();
        let node = start_node(dir.path()).await;
        store_datasets(&node, 0, UNPAGED_MAX + 1, Visibility::Public);
        let index = Arc::new(Exports::default()).index(&node).unwrap();
        let info = CatalogInfo::for_node("Toulouse Métropole", "243100518", "https://d.example");
        let whole = index
            .catalog(
                &node,
                &info,
                None,
                Page::TURTLE,
                &View::default(),
                &Viewer::Anonymous,
            )
            .unwrap()
            .0;
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
                &Viewer::Anonymous,
            )
            .unwrap()
            .0;
        assert_eq!(datasets_in(&last), 1);
        node.stop();
    }
}
