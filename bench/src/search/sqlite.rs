//! The baseline a small team would otherwise pick: SQLite FTS5 on the same
//! records and queries, with a writer inserting meanwhile.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use maillage_record::territory::{self, Place};
use maillage_record::{Body, Record, VerifiedRecord};

use super::clients::{CLIENTS, Latencies, MIN_QUERIES_PER_CLIENT, QUERIES};

/// What the baseline indexes of a record: the same title and text the node
/// indexes, and the same facets.
struct Doc {
    title: String,
    body: String,
    kind: &'static str,
    theme: String,
    org: String,
    dep: String,
    reg: String,
    status: String,
}

fn doc(r: &Record) -> Doc {
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
    let place = Place::of_siren(&org).first().cloned();
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
    Doc {
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
                let doc = doc(r.record());
                docs.execute(rusqlite::params![id, doc.title, doc.body])?;
                meta.execute(rusqlite::params![
                    id, doc.kind, doc.theme, doc.org, doc.dep, doc.reg, doc.status
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
