//! Search: a tantivy index beside the store, derived from it.
//!
//! The index follows the store's change sequence (`indexer.rs`): it holds the
//! current version of every searchable record, and the sequence number it has
//! reached is committed with it. After a crash it catches up from that number;
//! `maillage reindex` rebuilds it from the first change. Nothing here is the
//! record of truth: a hit names a record id, and the envelope comes from the
//! store.
//!
//! Visibility is a query clause (`reader` terms), applied to every search and
//! every count, so a caller's results and facets only count what it may see.
//!
//! - `document.rs`: what of a record is indexed, and how (does no IO).
//! - `indexer.rs`: the thread that follows the store and commits.
//! - `query.rs`: what words and filters become, for a given caller.
//! - `page.rs`: a page of results, ranked and counted.
//! - `scoring.rs`: ranking statistics over what the caller may see.
//! - `tally.rs`: the collector behind facets and statistics.
//! - `cache.rs`: facet counts per segment and pages per searcher, for the
//!   searches people repeat, and the warmer that readies new segments.

mod cache;
mod check;
mod document;
mod facet;
mod indexer;
mod page;
mod query;
mod scoring;
mod tally;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use maillage_record::territory::Place;
use maillage_record::{Kind, PublicKey, RecordId};
use serde::{Serialize, Serializer};
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery, TermSetQuery};
use tantivy::schema::{IndexRecordOption, Term};
use tantivy::{Index, IndexReader, ReloadPolicy, Searcher};

use crate::background::{self, Background};
use crate::viewer::Viewer;
pub use cache::CacheStats;
use cache::{Caches, Key};
pub use document::Fields;
pub use document::{Org, org_of};
use facet::Facet;
pub use indexer::{Feed, Indexer, Own};
use page::Engine;
use query::Queries;
pub use tally::OrgActivity;
use tally::{Numbering, Tally};

/// Bumped when what is indexed changes: an index of another version is
/// rebuilt from the store at start.
const SCHEMA_VERSION: u64 = 11;
/// Bytes of stored documents compressed together. A hit reads its block
/// whole: tantivy's 16 KiB made reading a page's 20 hits a tenth of a
/// search no cache answers; 4 KiB (a dozen documents) costs a little more
/// disk.
const DOCSTORE_BLOCK: usize = 4096;
/// The file that says a directory is a search index maillage made (and may
/// delete to rebuild it).
const MARKER: &str = "MAILLAGE-SEARCH-INDEX";
const MARKER_TEXT: &str =
    "maillage search index: derived from the store; delete this directory to rebuild it\n";
/// Results per page when the caller does not say, and at most.
pub const DEFAULT_PAGE_SIZE: usize = 20;
pub const MAX_PAGE_SIZE: usize = 100;
/// Values listed per facet.
const FACET_VALUES: usize = 10;
/// How much more a word weighs in a title than in a description.
const TITLE_BOOST: f32 = 3.0;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("search index at {path}: {source}")]
    Index {
        path: String,
        source: tantivy::TantivyError,
    },
    #[error("cannot reset the search index at {path}: {source}")]
    Reset {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path} is not empty and is not a maillage search index: set node.search_dir to a directory of its own"
    )]
    Foreign { path: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("search: {0}")]
    Internal(String),
}

/// The computing pool dropped the search: its thread panicked (logged).
impl From<background::Dropped> for SearchError {
    fn from(e: background::Dropped) -> Self {
        SearchError::Internal(e.to_string())
    }
}

impl From<tantivy::TantivyError> for SearchError {
    fn from(e: tantivy::TantivyError) -> Self {
        SearchError::Internal(e.to_string())
    }
}

/// Filters a search or a count: each one given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Filters {
    pub kind: Option<Kind>,
    /// A project theme (any of its names) or a dataset theme as written.
    pub theme: Option<String>,
    /// A place: commune, EPCI, département or région (see `Place::parse`);
    /// records of every place inside it match.
    pub territory: Option<String>,
    /// The organisation's SIREN.
    pub organisation: Option<String>,
    pub status: Option<String>,
    pub risk: Option<String>,
    pub licence: Option<String>,
}

/// What to search for.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// Words, as typed; empty for every record the filters keep.
    pub text: String,
    pub filters: Filters,
    /// From 1.
    pub page: usize,
    pub page_size: usize,
}

/// One result. In JSON (`/search`), the id and the author are in hex and
/// the kind is its name, as they are written in the index.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    #[serde(serialize_with = "hex")]
    pub id: RecordId,
    pub record_id: String,
    pub version: u64,
    pub kind: Kind,
    pub title: String,
    #[serde(serialize_with = "hex")]
    pub author: PublicKey,
    pub organisation_siren: Option<String>,
    pub organisation_name: Option<String>,
    /// True: the node verified this record's signature when it stored it
    /// (it stores nothing unverified); not verified again for a search.
    pub signature_verified: bool,
    /// What trust says of the author now (`Node::vouch` fills it in: the
    /// index does not know).
    pub author_trust: &'static str,
    /// Who vouches, now, that the author speaks for `organisation_siren`;
    /// empty if no one does.
    pub siren_source: &'static str,
    /// The peer that relayed it; absent for a record published here.
    pub relayed_by: Option<String>,
    pub received_at_ms: i64,
    pub score: f32,
    /// A public record (not in JSON: the access log's business).
    #[serde(skip)]
    pub public: bool,
}

/// An id or a key as its hex string.
fn hex<S: Serializer>(id: &impl std::fmt::Display, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}

/// One value of a facet and how many matching records have it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    pub value: String,
    pub label: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// Matching records the caller may see.
    pub total: u64,
    pub page: usize,
    pub page_size: usize,
    pub hits: Vec<Hit>,
    /// The name of each of `Facet::SEARCHED` → the most frequent values
    /// among all matches.
    pub facets: BTreeMap<String, Vec<Bucket>>,
    /// How far the index has followed the store (sequence numbers): when
    /// they differ, the newest records are not searchable yet.
    pub indexed_seq: u64,
    pub stored_seq: u64,
}

/// What statistics are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum GroupBy {
    #[default]
    Kind,
    Theme,
    Status,
    Organisation,
    Territory,
    Quarter,
}

impl GroupBy {
    pub fn parse(s: &str) -> Result<GroupBy, String> {
        match s.trim().to_lowercase().as_str() {
            "" | "kind" => Ok(GroupBy::Kind),
            "theme" => Ok(GroupBy::Theme),
            "status" => Ok(GroupBy::Status),
            "org" | "organisation" | "organization" => Ok(GroupBy::Organisation),
            "territory" | "departement" | "dep" => Ok(GroupBy::Territory),
            "quarter" | "trimestre" => Ok(GroupBy::Quarter),
            other => Err(format!(
                "cannot group by '{other}': use kind, theme, status, org, territory or quarter"
            )),
        }
    }

    /// As `--by` takes it: the facet's name, but for organisations, which
    /// `--by` has always called "org".
    pub fn name(self) -> &'static str {
        match self {
            GroupBy::Organisation => "org",
            by => by.facet().name(),
        }
    }

    /// The field counted.
    fn facet(self) -> Facet {
        match self {
            GroupBy::Kind => Facet::Kind,
            GroupBy::Theme => Facet::Theme,
            GroupBy::Status => Facet::Status,
            GroupBy::Organisation => Facet::Organisation,
            GroupBy::Territory => Facet::Territory,
            GroupBy::Quarter => Facet::Quarter,
        }
    }
}

/// A territory's figures, as a chef de file reports them.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub total: u64,
    pub by: String,
    pub groups: Vec<Bucket>,
    pub projects: ProjectStats,
    pub indexed_seq: u64,
    pub stored_seq: u64,
}

/// What statistics count, before the sequence numbers they were counted at
/// are added: what the cache keeps.
pub struct Figures {
    total: u64,
    groups: Vec<Bucket>,
    projects: ProjectStats,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ProjectStats {
    pub projects: u64,
    pub by_status: Vec<Bucket>,
    pub by_risk: Vec<Bucket>,
    /// Projects whose details (visible to the caller) are counted below.
    pub with_details: u64,
    pub by_budget: Vec<Bucket>,
    /// Sum of the measured figures, and how many projects measured them.
    pub energy_kwh_per_year: f64,
    pub energy_reported: u64,
    pub emissions_kgco2e_per_year: f64,
    pub emissions_reported: u64,
}

/// The index, its reader, and how far it has followed the store.
pub struct Search {
    index: Index,
    reader: IndexReader,
    engine: Arc<Engine>,
    path: PathBuf,
    indexed_seq: AtomicU64,
    /// A rebuild was asked for and the indexer has not taken it up yet.
    reindex: AtomicBool,
    /// The indexer is rebuilding (until its final commit).
    rebuilding: AtomicBool,
    /// How far a rebuild has read the store (`maillage reindex --wait`).
    rebuilt_seq: AtomicU64,
    /// Records just stored, handed to the indexer in memory.
    pub(crate) feed: Arc<indexer::Feed>,
    /// Registered with the reader, which only holds it weakly.
    _warmer: Arc<cache::Warmer>,
    /// Where searches the caches cannot answer, and statistics, are
    /// computed, one per core at a time (`background.rs`).
    computing: Background,
}

impl Search {
    /// Opens the index at `path`, or creates it; an index written with
    /// another schema version, or one that does not open, is started anew
    /// (it is derived data: the indexer rebuilds it from the store).
    ///
    /// `stored_seq` is the store's last sequence number: an index that has
    /// seen more (the store was replaced under it) is started anew too. A
    /// non-empty directory is only ever deleted if maillage made it.
    pub fn open(path: &Path, stored_seq: u64) -> Result<Search, SearchError> {
        let shown = path.display().to_string();
        let err = |source| SearchError::Index {
            path: shown.clone(),
            source,
        };
        let reset = |source| SearchError::Reset {
            path: shown.clone(),
            source,
        };
        std::fs::create_dir_all(path).map_err(reset)?;
        let (fields, schema) = Fields::schema();
        let marker = path.join(MARKER);
        let existing = Index::open_in_dir(path).ok().and_then(|index| {
            let seq = committed_seq(&index)?;
            (index.schema() == schema && seq <= stored_seq).then_some((index, seq))
        });
        let (index, seq) = match existing {
            Some(found) => found,
            None => {
                if std::fs::read_dir(path).map_err(reset)?.next().is_some() {
                    if !marker.exists() {
                        return Err(SearchError::Foreign { path: shown });
                    }
                    tracing::warn!(path = %shown, "the search index is from another version, damaged, or ahead of the store: rebuilding it from the store");
                    std::fs::remove_dir_all(path).map_err(reset)?;
                    std::fs::create_dir_all(path).map_err(reset)?;
                }
                std::fs::write(&marker, MARKER_TEXT).map_err(reset)?;
                let settings = tantivy::IndexSettings {
                    docstore_blocksize: DOCSTORE_BLOCK,
                    ..tantivy::IndexSettings::default()
                };
                let index = Index::builder()
                    .schema(schema)
                    .settings(settings)
                    .create_in_dir(path)
                    .map_err(err)?;
                (index, 0)
            }
        };
        document::register_tokenizers(&index);
        let engine = Arc::new(Engine {
            queries: Queries::new(&index, fields),
            numbering: Numbering::default(),
            caches: Caches::default(),
            views: Default::default(),
        });
        let warmer = Arc::new(cache::Warmer(engine.clone()));
        let weak = Arc::downgrade(&warmer);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .warmers(vec![weak as std::sync::Weak<dyn tantivy::Warmer>])
            .try_into()
            .map_err(err)?;
        Ok(Search {
            index,
            reader,
            engine,
            _warmer: warmer,
            computing: Background::new("maillage-search", background::COMPUTED_SEARCHES),
            path: path.to_path_buf(),
            indexed_seq: AtomicU64::new(seq),
            reindex: AtomicBool::new(false),
            rebuilding: AtomicBool::new(false),
            rebuilt_seq: AtomicU64::new(0),
            feed: Arc::default(),
        })
    }

    /// The last store sequence number the searchable index reflects.
    pub fn indexed_seq(&self) -> u64 {
        self.indexed_seq.load(Ordering::Acquire)
    }

    /// How many segments the searchable index has (each query visits every
    /// one; merges keep them few).
    pub fn segments(&self) -> usize {
        self.reader.searcher().segment_readers().len()
    }

    /// Asks the indexer to rebuild the index from the first change. Searches
    /// keep answering from the old index until the new one is complete.
    pub fn request_reindex(&self) {
        self.reindex.store(true, Ordering::Release);
    }

    /// Whether a rebuild is asked for or under way.
    pub fn rebuilding(&self) -> bool {
        self.reindex.load(Ordering::Acquire) || self.rebuilding.load(Ordering::Acquire)
    }

    /// How far the rebuild under way has read the store's changes.
    pub fn rebuilt_seq(&self) -> u64 {
        self.rebuilt_seq.load(Ordering::Acquire)
    }

    /// The index's fields.
    pub(crate) fn fields(&self) -> &Fields {
        &self.engine.queries.fields
    }

    /// Forgets every cached count and page: what follows is computed from
    /// the index (a measurement of the uncached path, or a test).
    pub fn clear_caches(&self) {
        self.engine.caches.clear();
    }

    /// How often searches were answered from the caches.
    pub fn cache_stats(&self) -> CacheStats {
        self.engine.caches.stats()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records matching `req` that `viewer` may see, best first, with facet
    /// counts over all of them.
    pub fn search(
        &self,
        req: &SearchRequest,
        viewer: &Viewer,
        stored_seq: u64,
    ) -> Result<Results, SearchError> {
        let page = req.page.max(1);
        let page_size = match req.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let offset = (page - 1).saturating_mul(page_size);
        if offset > 10_000 {
            return Err(SearchError::BadRequest(format!(
                "page {page} is too far: narrow the search instead (at most 10,000 results are paged)"
            )));
        }
        let key = Arc::new(Key {
            text: req.text.trim().to_string(),
            filters: req.filters.clone(),
            viewer: viewer.clone(),
        });
        // Parsed first: a bad filter is an error whatever is cached.
        let query = self.engine.queries.query(&key.text, &key.filters, viewer)?;
        // Read before the searcher: a commit in between makes this an
        // understatement, never a claim about records not searched.
        let indexed_seq = self.indexed_seq();
        let searcher = self.reader.searcher();
        let generation = searcher.generation().generation_id();
        self.engine.caches.asked(&key);
        let found = match self.engine.caches.page(generation, &key, page, page_size) {
            Some(found) => found,
            None => {
                let (engine, k) = (self.engine.clone(), key.clone());
                let found = Arc::new(
                    self.computing
                        .run(move || engine.page(&searcher, &k, query, offset, page_size))??,
                );
                self.engine
                    .caches
                    .keep_page(generation, &key, page, page_size, found.clone());
                found
            }
        };
        Ok(Results {
            total: found.total,
            page,
            page_size,
            hits: found.hits.clone(),
            facets: found.facets.clone(),
            indexed_seq,
            stored_seq,
        })
    }

    /// Counts and sums over the records the filters keep that `viewer` may see.
    pub fn stats(
        &self,
        filters: &Filters,
        by: GroupBy,
        viewer: &Viewer,
        stored_seq: u64,
    ) -> Result<Stats, SearchError> {
        // Parsed first: a bad filter is an error whatever is cached.
        self.engine.queries.query("", filters, viewer)?;
        let indexed_seq = self.indexed_seq();
        let searcher = self.reader.searcher();
        let generation = searcher.generation().generation_id();
        let caches = &self.engine.caches;
        let figures = match caches.stats_figures(generation, filters, by, viewer) {
            Some(figures) => figures,
            None => {
                let (engine, f, v) = (self.engine.clone(), filters.clone(), viewer.clone());
                // Computed where searches the caches cannot answer are, one
                // per core at a time.
                let figures = Arc::new(
                    self.computing
                        .run(move || engine.stats(&searcher, &f, by, &v))??,
                );
                caches.keep_stats_figures(generation, filters, by, viewer, figures.clone());
                figures
            }
        };
        Ok(Stats {
            total: figures.total,
            by: by.name().to_string(),
            groups: figures.groups.clone(),
            projects: figures.projects.clone(),
            indexed_seq,
            stored_seq,
        })
    }
}

/// A query for one exact term.
fn exactly(term: Term) -> Box<dyn Query> {
    Box::new(TermQuery::new(term, IndexRecordOption::Basic))
}

/// A query for any of `terms`.
fn any_of(terms: impl IntoIterator<Item = Term>) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(
        terms
            .into_iter()
            .map(|t| (Occur::Should, exactly(t)))
            .collect(),
    ))
}

impl Search {
    /// The key (author/record_id) and organisation of every record of one
    /// of `kinds` placed in `place` (by its organisation or what it
    /// covers), public or federation: the candidates of an aggregate
    /// (`crate::aggregate`). Blocking; no cache (an aggregate is rare).
    pub fn placed(
        &self,
        place: &Place,
        kinds: &[Kind],
    ) -> Result<Vec<(String, String)>, SearchError> {
        let f = &self.engine.queries.fields;
        let query = BooleanQuery::new(vec![
            (
                Occur::Must,
                exactly(Term::from_field_text(f.place, &place.to_string())),
            ),
            (
                Occur::Must,
                any_of(
                    kinds
                        .iter()
                        .map(|k| Term::from_field_text(f.kind, k.as_str())),
                ),
            ),
            (
                Occur::Must,
                any_of([
                    Term::from_field_text(f.reader, document::READER_PUBLIC),
                    Term::from_field_text(f.reader, document::READER_FEDERATION),
                ]),
            ),
        ]);
        let searcher = self.reader.searcher();
        Ok(searcher.search(&query, &tally::Pairs("key", Facet::Organisation.column()))?)
    }

    /// Searchable records by visibility: (public, federation, restricted),
    /// from the index's term counts (for the metrics; cheap: no document
    /// is read).
    pub fn count_by_visibility(&self) -> Result<(u64, u64, u64), SearchError> {
        let f = &self.engine.queries.fields;
        let searcher = self.reader.searcher();
        let count = |reader: &str| -> Result<u64, SearchError> {
            let term = Term::from_field_text(f.reader, reader);
            let mut n = 0u64;
            for segment in searcher.segment_readers() {
                n += u64::from(
                    segment
                        .inverted_index(f.reader)?
                        .doc_freq(&term)
                        .map_err(tantivy::TantivyError::from)?,
                );
            }
            Ok(n)
        };
        let (public, federation) = (
            count(document::READER_PUBLIC)?,
            count(document::READER_FEDERATION)?,
        );
        let all = searcher.num_docs();
        Ok((public, federation, all.saturating_sub(public + federation)))
    }

    /// For each of `orgs` (SIRENs) with datasets, projects or reuses
    /// `viewer` may see: how many of each, how many signed by `own` (this
    /// node's key), and when the last was received (blocking: the members
    /// view).
    pub fn activity(
        &self,
        orgs: &[String],
        own: &PublicKey,
        viewer: &Viewer,
    ) -> Result<std::collections::HashMap<String, tally::OrgActivity>, SearchError> {
        let f = &self.engine.queries.fields;
        let mut must: Vec<(Occur, Box<dyn Query>)> = vec![
            (
                Occur::Must,
                Box::new(TermSetQuery::new(
                    orgs.iter().map(|o| Term::from_field_text(f.org, o)),
                )),
            ),
            (
                Occur::Must,
                any_of(
                    [Kind::Dataset, Kind::Project, Kind::Reuse]
                        .iter()
                        .map(|k| Term::from_field_text(f.kind, k.as_str())),
                ),
            ),
        ];
        if let Some(readers) = self.engine.queries.readers(viewer) {
            must.push((Occur::Must, any_of(readers)));
        }
        let searcher = self.reader.searcher();
        Ok(searcher.search(
            &BooleanQuery::new(must),
            &tally::Activity { own: own.to_hex() },
        )?)
    }

    /// The organisations (SIRENs) whose reuse records `viewer` may see name
    /// the project `author`/`record_id`, each once (blocking).
    pub fn reusers(
        &self,
        author: &PublicKey,
        record_id: &str,
        viewer: &Viewer,
    ) -> Result<Vec<String>, SearchError> {
        let f = &self.engine.queries.fields;
        let mut must = vec![
            (
                Occur::Must,
                exactly(Term::from_field_text(
                    f.project_key,
                    &document::key(author, record_id),
                )),
            ),
            (
                Occur::Must,
                exactly(Term::from_field_text(f.kind, Kind::Reuse.as_str())),
            ),
        ];
        if let Some(readers) = self.engine.queries.readers(viewer) {
            must.push((Occur::Must, any_of(readers)));
        }
        let searcher = self.reader.searcher();
        let mut orgs: Vec<String> = searcher
            .search(
                &BooleanQuery::new(must),
                &tally::Pairs("key", Facet::Organisation.column()),
            )?
            .into_iter()
            .map(|(_, org)| org)
            .filter(|org| !org.is_empty())
            .collect();
        orgs.sort();
        orgs.dedup();
        Ok(orgs)
    }
}

impl Engine {
    /// What `Search::stats` says: the total, its groups by `by`, and the
    /// projects' figures.
    fn stats(
        &self,
        searcher: &Searcher,
        filters: &Filters,
        by: GroupBy,
        viewer: &Viewer,
    ) -> Result<Figures, SearchError> {
        let all = self.queries.query("", filters, viewer)?;
        let groups = searcher.search(&all, &Tally::new(&[by.facet()], &[], &self.numbering))?;
        let total = groups.matched;

        let mut projects = ProjectStats::default();
        let only = |kind| {
            let mut f = filters.clone();
            f.kind = Some(kind);
            self.queries.query("", &f, viewer)
        };
        if filters.kind.is_none_or(|k| k == Kind::Project) {
            // Details carry no theme, status or organisation of their own:
            // they count when their project matched (and the caller may see
            // them), so the projects' keys are gathered in the same pass.
            let (t, keys) = searcher.search(
                &only(Kind::Project)?,
                &(
                    Tally::new(&[Facet::Status, Facet::Risk], &[], &self.numbering),
                    tally::Values("key"),
                ),
            )?;
            projects.projects = t.matched;
            projects.by_status = t.buckets(Facet::Status, usize::MAX);
            projects.by_risk = t.buckets(Facet::Risk, usize::MAX);
            let details = self.queries.query(
                "",
                &Filters {
                    kind: Some(Kind::ProjectDetails),
                    ..Filters::default()
                },
                viewer,
            )?;
            let t = searcher.search(
                &details,
                &Tally::new(&[Facet::Budget], &["kwh", "co2"], &self.numbering)
                    .within("project_key", Arc::new(keys)),
            )?;
            projects.with_details = t.matched;
            projects.by_budget = t.buckets(Facet::Budget, usize::MAX);
            (projects.energy_kwh_per_year, projects.energy_reported) = t.sum("kwh");
            (
                projects.emissions_kgco2e_per_year,
                projects.emissions_reported,
            ) = t.sum("co2");
        }
        Ok(Figures {
            total,
            groups: groups.buckets(by.facet(), usize::MAX),
            projects,
        })
    }
}

/// The store sequence number committed with the index (0 for a new index);
/// `None` if the index is not one this version wrote.
fn committed_seq(index: &Index) -> Option<u64> {
    let meta = index.load_metas().ok()?;
    let Some(payload) = meta.payload else {
        // Created, never committed by the indexer.
        return (meta.segments.is_empty()).then_some(0);
    };
    let v: serde_json::Value = serde_json::from_str(&payload).ok()?;
    (v.get("schema")?.as_u64()? == SCHEMA_VERSION).then_some(())?;
    v.get("seq")?.as_u64()
}
