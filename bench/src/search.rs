//! Search under load: clients query a node holding N records (gRPC, as the
//! CLI does) while the node ingests a sync; SQLite FTS5 on the same records
//! and queries, with a writer inserting meanwhile, is the baseline a small
//! team would otherwise pick.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use maillage_proto::v1::catalogue_client::CatalogueClient;
use maillage_proto::v1::{SearchFilters, SearchRequest};
use maillage_record::territory::{self, Place};
use maillage_record::{Body, Record, VerifiedRecord};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

pub const CLIENTS: usize = 8;
/// Each client runs at least this many queries, and goes on while the sync lasts.
const MIN_QUERIES_PER_CLIENT: usize = 100;

/// (words, kind filter, territory filter)
pub const QUERIES: &[(&str, Option<&str>, Option<&str>)] = &[
    ("budget", None, None),
    ("collecte des déchets", None, None),
    ("qualité de l'air", None, None),
    ("vélos", None, None),
    ("énergie bâtiments", None, None),
    ("subventions associations", None, None),
    ("transport scolaire", None, None),
    ("eau potable", None, None),
    ("éclairage public", None, None),
    ("agent conversationnel", None, None),
    ("urbanisme", None, None),
    ("marchés publics", None, None),
    ("arbres", None, None),
    ("cantines", None, None),
    ("stationnement", None, None),
    ("piscines horaires", None, None),
    ("délibérations", None, None),
    ("mobilité douce", None, None),
    ("lyon", None, None),
    ("toulouse déchets", None, None),
    ("déchets", None, Some("69")),
    ("déchets", Some("project"), None),
    ("énergie", None, Some("reg:84")),
    ("vélos", Some("dataset"), Some("33")),
    ("fuites réseau eau", Some("project"), None),
];

#[derive(Debug, Default, Clone)]
pub struct Latencies {
    pub micros: Vec<u64>,
    pub wall: Duration,
    /// How many records each search matched (its total).
    pub totals: Vec<u64>,
    /// Whether each search was asked for the first time.
    pub new: Vec<bool>,
}

/// What the clients ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// `QUERIES`, over and over, as people repeat a catalogue's usual
    /// searches: caches answer most of them.
    Repeated,
    /// A different search each time (`corpus::distinct_query`), shared out
    /// between the clients: no cache helps; the index answers every one.
    Distinct,
    /// The usual searches, and one new search in `NEW_IN_MIXED`: a
    /// catalogue's traffic, where the caches answer most searches while the
    /// index computes the new ones on the same cores.
    Mixed,
}

/// One search in this many is new in `Workload::Mixed`.
pub const NEW_IN_MIXED: usize = 10;

impl Latencies {
    pub fn pct_ms(&self, p: usize) -> f64 {
        super::pct(&self.micros, p) as f64 / 1000.0
    }
    pub fn qps(&self) -> f64 {
        self.micros.len() as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// The searches that were new (`true`), or asked before (`false`).
    pub fn only(&self, new: bool) -> Latencies {
        let keep = |i: &usize| self.new[*i] == new;
        let indices: Vec<usize> = (0..self.micros.len()).filter(keep).collect();
        Latencies {
            micros: indices.iter().map(|i| self.micros[*i]).collect(),
            wall: self.wall,
            totals: indices.iter().map(|i| self.totals[*i]).collect(),
            new: vec![new; indices.len()],
        }
    }
}

/// A gRPC Catalogue client on a node's admin socket.
async fn client(socket: &Path) -> anyhow::Result<CatalogueClient<Channel>> {
    let path = socket.to_path_buf();
    let channel = Endpoint::try_from("http://admin.sock")?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { UnixStream::connect(path).await.map(TokioIo::new) }
        }))
        .await?;
    Ok(CatalogueClient::new(channel))
}

fn request(workload: Workload, i: usize) -> SearchRequest {
    let (words, kind, territory) = QUERIES[i % QUERIES.len()];
    if workload == Workload::Distinct {
        return SearchRequest {
            query: crate::corpus::distinct_query(i),
            filters: None,
            page: 1,
            page_size: 20,
            with_envelopes: false,
        };
    }
    SearchRequest {
        query: words.into(),
        filters: Some(SearchFilters {
            kind: kind.map_or(0, |k| {
                maillage_record::wire::kind_to_proto(
                    maillage_record::Kind::parse(k).expect("known kind"),
                ) as i32
            }),
            territory: territory.unwrap_or_default().into(),
            ..Default::default()
        }),
        page: 1,
        page_size: 20,
        with_envelopes: false,
    }
}

/// Asks each of `QUERIES` once, untimed: what follows measures a node in
/// use, not its first searches after a start.
pub async fn warm_up(socket: &Path) -> anyhow::Result<()> {
    let mut cl = client(socket).await?;
    for i in 0..QUERIES.len() {
        cl.search(request(Workload::Repeated, i)).await?;
    }
    Ok(())
}

/// Runs `CLIENTS` clients against the node at `socket` until `done` is set
/// and each ran `MIN_QUERIES_PER_CLIENT`. Returns every latency.
pub async fn query_node_owned(
    socket: PathBuf,
    done: Arc<AtomicBool>,
    workload: Workload,
) -> anyhow::Result<Latencies> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    // Distinct searches are numbered across clients, from where the last
    // run stopped: none is ever asked twice.
    static NEXT_DISTINCT: AtomicUsize = AtomicUsize::new(0);
    for c in 0..CLIENTS {
        let mut cl = client(&socket).await?;
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut i = c * 3;
            while out.len() < MIN_QUERIES_PER_CLIENT || !done.load(Ordering::Acquire) {
                let asked = match workload {
                    Workload::Mixed if i % NEW_IN_MIXED == NEW_IN_MIXED - 1 => Workload::Distinct,
                    Workload::Mixed => Workload::Repeated,
                    w => w,
                };
                let n = match asked {
                    Workload::Distinct => NEXT_DISTINCT.fetch_add(1, Ordering::Relaxed),
                    _ => i,
                };
                let t = Instant::now();
                let found = cl.search(request(asked, n)).await?.into_inner();
                let new = asked == Workload::Distinct;
                out.push((t.elapsed().as_micros() as u64, found.total, new));
                i += 1;
            }
            Ok::<_, anyhow::Error>(out)
        }));
    }
    let mut all = Latencies::default();
    for t in tasks {
        for (us, total, new) in t.await?? {
            all.micros.push(us);
            all.totals.push(total);
            all.new.push(new);
        }
    }
    all.wall = started.elapsed();
    Ok(all)
}

/// What the baseline indexes of a record: the same title and text the node
/// indexes, and the same facets.
struct Row {
    title: String,
    body: String,
    kind: &'static str,
    theme: String,
    org: String,
    dep: String,
    reg: String,
    status: String,
}

fn row(r: &Record) -> Row {
    let (body, theme, org, status) = match &r.body {
        Body::Dataset(d) => (
            format!(
                "{}\n{}\n{}",
                d.description,
                d.keywords.join("\n"),
                d.themes.join("\n")
            ),
            d.themes.first().cloned().unwrap_or_default(),
            d.publisher
                .as_ref()
                .and_then(|p| p.siren.clone())
                .unwrap_or_default(),
            String::new(),
        ),
        Body::Project(p) => (
            format!(
                "{}\n{}",
                p.description,
                p.organisation_name.clone().unwrap_or_default()
            ),
            p.theme.map(|t| t.as_str().to_string()).unwrap_or_default(),
            String::new(),
            p.status.as_str().to_string(),
        ),
        _ => (String::new(), String::new(), String::new(), String::new()),
    };
    let place = Place::of_siren(&org);
    let dep = place
        .iter()
        .flat_map(Place::with_ancestors)
        .find_map(|p| match p {
            Place::Departement(d) => Some(d),
            _ => None,
        })
        .unwrap_or_default();
    let reg = territory::region_of_departement(&dep)
        .unwrap_or_default()
        .to_string();
    Row {
        title: r.body.label().to_string(),
        body,
        kind: r.kind().as_str(),
        theme,
        org,
        dep,
        reg,
        status,
    }
}

pub struct Sqlite {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

const SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    CREATE VIRTUAL TABLE docs USING fts5(title, body, tokenize = 'unicode61 remove_diacritics 2');
    CREATE TABLE meta(id INTEGER PRIMARY KEY, kind TEXT, theme TEXT, org TEXT, dep TEXT, reg TEXT, status TEXT);
    CREATE INDEX meta_kind ON meta(kind);
    CREATE INDEX meta_dep ON meta(dep);
    CREATE INDEX meta_reg ON meta(reg);
";

fn insert(
    conn: &mut rusqlite::Connection,
    recs: &[VerifiedRecord],
    first_id: i64,
) -> anyhow::Result<()> {
    for (c, chunk) in recs.chunks(1024).enumerate() {
        let tx = conn.transaction()?;
        {
            let mut docs =
                tx.prepare_cached("INSERT INTO docs(rowid, title, body) VALUES (?1, ?2, ?3)")?;
            let mut meta = tx.prepare_cached(
                "INSERT INTO meta(id, kind, theme, org, dep, reg, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (i, r) in chunk.iter().enumerate() {
                let id = first_id + (c * 1024 + i) as i64;
                let row = row(r.record());
                docs.execute(rusqlite::params![id, row.title, row.body])?;
                meta.execute(rusqlite::params![
                    id, row.kind, row.theme, row.org, row.dep, row.reg, row.status
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok(())
}

impl Sqlite {
    /// Builds the baseline database from `recs`; returns it and how long it took.
    pub fn build(recs: &[VerifiedRecord]) -> anyhow::Result<(Sqlite, Duration)> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("fts.sqlite");
        let t = Instant::now();
        let mut conn = rusqlite::Connection::open(&path)?;
        conn.execute_batch(SCHEMA)?;
        insert(&mut conn, recs, 1)?;
        Ok((Sqlite { path, _dir: dir }, t.elapsed()))
    }

    /// The same queries from `CLIENTS` threads while a writer inserts `more`.
    pub fn query_while_inserting(
        &self,
        more: &[VerifiedRecord],
        first_id: i64,
    ) -> anyhow::Result<Latencies> {
        let done = AtomicBool::new(false);
        let started = Instant::now();
        let micros = std::thread::scope(|s| -> anyhow::Result<Vec<u64>> {
            let writer = s.spawn(|| -> anyhow::Result<()> {
                let mut conn = rusqlite::Connection::open(&self.path)?;
                conn.busy_timeout(Duration::from_secs(30))?;
                let r = insert(&mut conn, more, first_id);
                done.store(true, Ordering::Release);
                r
            });
            let readers: Vec<_> = (0..CLIENTS)
                .map(|c| {
                    let done = &done;
                    s.spawn(move || -> anyhow::Result<Vec<u64>> {
                        let conn = rusqlite::Connection::open_with_flags(
                            &self.path,
                            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                        )?;
                        conn.busy_timeout(Duration::from_secs(30))?;
                        let mut out = Vec::new();
                        let mut i = c * 3;
                        while out.len() < MIN_QUERIES_PER_CLIENT || !done.load(Ordering::Acquire) {
                            let t = Instant::now();
                            sqlite_query(&conn, i)?;
                            out.push(t.elapsed().as_micros() as u64);
                            i += 1;
                        }
                        Ok(out)
                    })
                })
                .collect();
            let mut all = Vec::new();
            for r in readers {
                all.extend(r.join().expect("reader thread")?);
            }
            writer.join().expect("writer thread")?;
            Ok(all)
        })?;
        Ok(Latencies {
            new: vec![false; micros.len()],
            micros,
            wall: started.elapsed(),
            totals: Vec::new(),
        })
    }
}

/// What the node does for a query, in SQL: the best 20 by BM25 (title
/// weighing 3), the total, and the facet counts over every match.
fn sqlite_query(conn: &rusqlite::Connection, i: usize) -> anyhow::Result<u64> {
    let (words, kind, territory) = QUERIES[i % QUERIES.len()];
    // FTS5 syntax: each word quoted, all required.
    let matched: Vec<String> = words
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() > 1)
        .map(|w| format!("\"{w}\""))
        .collect();
    let mut filter = String::new();
    let mut args: Vec<String> = vec![matched.join(" ")];
    if let Some(k) = kind {
        args.push(k.to_string());
        filter.push_str(&format!(" AND m.kind = ?{}", args.len()));
    }
    if let Some(t) = territory {
        match Place::parse(t).map_err(anyhow::Error::msg)? {
            Place::Region(r) => {
                args.push(r);
                filter.push_str(&format!(" AND m.reg = ?{}", args.len()));
            }
            p => {
                args.push(p.code().to_string());
                filter.push_str(&format!(" AND m.dep = ?{}", args.len()));
            }
        }
    }
    let params = rusqlite::params_from_iter(args.iter());
    let mut top = conn.prepare_cached(&format!(
        "SELECT d.rowid, d.title, bm25(docs, 3.0, 1.0) AS score FROM docs d JOIN meta m ON m.id = d.rowid \
         WHERE docs MATCH ?1{filter} ORDER BY score LIMIT 20"
    ))?;
    let titles: Vec<String> = top
        .query_map(params, |r| r.get::<_, String>(1))?
        .collect::<Result<_, _>>()?;
    let mut facets = conn.prepare_cached(&format!(
        "SELECT m.kind, m.theme, m.org, m.dep, m.status FROM docs d JOIN meta m ON m.id = d.rowid \
         WHERE docs MATCH ?1{filter}"
    ))?;
    let mut counts: [HashMap<String, u64>; 5] = Default::default();
    let mut total = 0u64;
    let mut rows = facets.query(rusqlite::params_from_iter(args.iter()))?;
    while let Some(r) = rows.next()? {
        total += 1;
        for (f, c) in counts.iter_mut().enumerate() {
            *c.entry(r.get::<_, String>(f)?).or_default() += 1;
        }
    }
    anyhow::ensure!(
        total == 0 || !titles.is_empty(),
        "sqlite found matches but no top results"
    );
    Ok(total)
}

/// Waits until `node` has indexed everything it stores.
pub async fn indexed(node: &maillage_node::node::Node) -> Duration {
    let t = Instant::now();
    while node.search.indexed_seq() < node.store.last_seq() || node.search.rebuilding() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.elapsed()
}
