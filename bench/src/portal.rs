//! The public portal (issue 21) on a node holding the whole corpus: 8
//! clients ask for one kind of page for a while, then for the same answer as
//! JSON (or the same export page in Turtle), in the same run; and what a
//! page weighs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use maillage_record::VerifiedRecord;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::nodes::BenchNode;
use crate::report::{Row, Section, pct};

/// Clients asking at once.
const CLIENTS: usize = 8;
/// How long each kind of page is asked for.
const SPELL: Duration = Duration::from_secs(8);
/// Départements whose territory pages are asked for.
const DEPARTEMENTS: [&str; 8] = ["31", "69", "75", "13", "33", "59", "44", "67"];

/// Latencies of one kind of request, in microseconds, and how many failed.
#[derive(Default)]
pub struct Spell {
    micros: Vec<u64>,
    failed: u64,
    first_failure: Option<String>,
}

pub struct PortalFigures {
    pub records: usize,
    /// (what, the page, the same as JSON or in another format, limit in ms)
    pub kinds: Vec<(&'static str, Spell, &'static str, Spell, u64)>,
    /// (page, as a signed-in agent, the same pages anonymous)
    pub signed: Vec<(&'static str, Spell, Spell)>,
    /// (page, bytes of HTML, bytes of the stylesheet)
    pub weights: Vec<(&'static str, usize, usize)>,
}

/// One HTTP/1.1 GET on a kept-alive connection: the status and the body's
/// length (the load benchmark's clients use it too).
pub async fn get(
    stream: &mut TcpStream,
    path: &str,
    accept: &str,
) -> std::io::Result<(u16, usize)> {
    get_as(stream, path, accept, None).await
}

/// `get`, with a read token if one is given.
async fn get_as(
    stream: &mut TcpStream,
    path: &str,
    accept: &str,
    token: Option<&str>,
) -> std::io::Result<(u16, usize)> {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: bench\r\nAccept: {accept}\r\n{auth}\r\n")
                .as_bytes(),
        )
        .await?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await?;
    Ok((status, length))
}

/// `CLIENTS` clients ask for `paths` (round robin, each from its own
/// place) for `SPELL`.
async fn spell(addr: &str, paths: Arc<Vec<String>>, accept: &'static str) -> Spell {
    spell_as(addr, paths, accept, Arc::new(Vec::new())).await
}

/// `spell`, each request with the next of `tokens` if there are any (as
/// signed-in agents: many of them, each under its rate).
async fn spell_as(
    addr: &str,
    paths: Arc<Vec<String>>,
    accept: &'static str,
    tokens: Arc<Vec<String>>,
) -> Spell {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (addr, paths, stop, tokens) = (
            addr.to_string(),
            paths.clone(),
            stop.clone(),
            tokens.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut s = Spell::default();
            let mut stream: Option<TcpStream> = None;
            let mut i = c * paths.len() / CLIENTS;
            while !stop.load(Ordering::Relaxed) {
                let path = &paths[i % paths.len()];
                i += 1;
                if stream.is_none() {
                    stream = TcpStream::connect(&addr).await.ok();
                }
                let Some(conn) = stream.as_mut() else {
                    s.failed += 1;
                    continue;
                };
                let t = Instant::now();
                let token = (!tokens.is_empty()).then(|| tokens[i % tokens.len()].as_str());
                match get_as(conn, path, accept, token).await {
                    Ok((200, _)) => s.micros.push(t.elapsed().as_micros() as u64),
                    Ok((status, _)) => {
                        s.failed += 1;
                        s.first_failure.get_or_insert(format!("{path}: {status}"));
                    }
                    Err(e) => {
                        s.failed += 1;
                        s.first_failure.get_or_insert(format!("{path}: {e}"));
                        stream = None;
                    }
                }
            }
            s
        }));
    }
    tokio::time::sleep(SPELL).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Spell::default();
    for t in tasks {
        let s = t.await.expect("a client");
        all.micros.extend(s.micros);
        all.failed += s.failed;
        all.first_failure = all.first_failure.or(s.first_failure);
    }
    all
}

pub async fn run(b: &BenchNode, records: &[VerifiedRecord]) -> anyhow::Result<PortalFigures> {
    let addr = b.http.clone().expect("node b serves HTTP");
    // A spread of records, as visitors arriving from search engines ask.
    let step = (records.len() / 2_000).max(1);
    let record_paths: Vec<String> = records
        .iter()
        .step_by(step)
        .map(|r| format!("/records/{}/{}", r.author().to_hex(), r.record().record_id))
        .collect();
    let queries: Vec<String> = (0..200).map(crate::corpus::distinct_query).collect();
    let encode = |q: &str| q.replace(' ', "+");
    let search_pages: Vec<String> = queries
        .iter()
        .map(|q| format!("/recherche?q={}", encode(q)))
        .collect();
    let search_json: Vec<String> = queries
        .iter()
        .map(|q| format!("/search?q={}&page_size=20", encode(q)))
        .collect();
    let territory_pages: Vec<String> = DEPARTEMENTS
        .iter()
        .map(|d| format!("/territoires/{d}"))
        .collect();
    let territory_json: Vec<String> = DEPARTEMENTS
        .iter()
        .map(|d| format!("/stats?territory={d}&by=theme"))
        .collect();
    let pages = 1_000usize;
    let export_pages: Vec<String> = (0..pages)
        .map(|p| format!("/catalog.jsonld?page={}&page_size=100", p * 7 % pages + 1))
        .collect();
    let export_turtle: Vec<String> = export_pages
        .iter()
        .map(|p| p.replace("catalog.jsonld", "catalog.ttl"))
        .collect();

    // The export's index is built once, on the first export request (which
    // may time out first: asked again until it is answered).
    let started = Instant::now();
    loop {
        let mut warm = TcpStream::connect(&addr).await?;
        let (status, _) = get(&mut warm, &export_pages[0], "*/*").await?;
        if status == 200 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "the export's first page answers {status} after 5 minutes"
        );
    }
    eprintln!(
        "portal: the export's index built in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut kinds = Vec::new();
    let mut signed = Vec::new();
    let search_agent = search_pages.clone();
    let html = "text/html";
    eprintln!("portal: record pages...");
    let a = spell(&addr, Arc::new(record_paths.clone()), html).await;
    let j = spell(&addr, Arc::new(record_paths.clone()), "application/json").await;
    kinds.push((
        "record pages (2,000 records)",
        a,
        "the same records as JSON",
        j,
        30,
    ));
    eprintln!("portal: search pages...");
    let a = spell(&addr, Arc::new(search_pages), html).await;
    let j = spell(&addr, Arc::new(search_json), "*/*").await;
    kinds.push((
        "search pages with facets (200 searches)",
        a,
        "the same searches as JSON (/search)",
        j,
        100,
    ));
    eprintln!("portal: territory pages...");
    let a = spell(&addr, Arc::new(territory_pages), html).await;
    let j = spell(&addr, Arc::new(territory_json), "*/*").await;
    kinds.push((
        "territory pages (8 départements)",
        a,
        "their statistics as JSON (/stats)",
        j,
        100,
    ));
    // Signed-in agents (read tokens: the same viewer as a session, of a
    // member organisation) against the same pages anonymous, in the same
    // run: what signing in costs.
    let node = b.node.clone();
    let tokens = Arc::new(
        tokio::task::spawn_blocking(move || maillage_node::testkit::read_tokens(&node, 400))
            .await?
            .map_err(anyhow::Error::msg)?,
    );
    eprintln!("portal: record pages, signed in...");
    let anon = spell(&addr, Arc::new(record_paths.clone()), html).await;
    let agent = spell_as(&addr, Arc::new(record_paths.clone()), html, tokens.clone()).await;
    signed.push(("record pages", agent, anon));
    eprintln!("portal: search pages, signed in...");
    let anon = spell(&addr, Arc::new(search_agent.clone()), html).await;
    let agent = spell_as(&addr, Arc::new(search_agent), html, tokens).await;
    signed.push(("search pages with facets", agent, anon));
    eprintln!("portal: export pages...");
    let a = spell(&addr, Arc::new(export_pages), "*/*").await;
    let j = spell(&addr, Arc::new(export_turtle), "*/*").await;
    kinds.push((
        "DCAT-AP export pages of 100 datasets (JSON-LD)",
        a,
        "the same pages in Turtle",
        j,
        50,
    ));

    // A connection of its own: the first one has been idle too long.
    let mut warm = TcpStream::connect(&addr).await?;
    let mut weights = Vec::new();
    let (_, css) = get(&mut warm, "/static/maillage.css", "text/css").await?;
    for (name, path) in [
        ("home", "/".to_string()),
        ("search", search_pages_first(&queries)),
        ("record", record_paths[0].clone()),
        ("territory", "/territoires/31".to_string()),
    ] {
        let (status, bytes) = get(&mut warm, &path, html).await?;
        anyhow::ensure!(status == 200, "{path}: {status}");
        weights.push((name, bytes, css));
    }
    Ok(PortalFigures {
        records: records.len(),
        kinds,
        signed,
        weights,
    })
}

fn search_pages_first(queries: &[String]) -> String {
    format!("/recherche?q={}", queries[0].replace(' ', "+"))
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

pub fn section(f: &PortalFigures) -> Section {
    let mut rows = Vec::new();
    for (what, page, base_what, base, limit) in &f.kinds {
        let (p50, p99) = (pct(&page.micros, 50), pct(&page.micros, 99));
        let (b50, b99) = (pct(&base.micros, 50), pct(&base.micros, 99));
        let failed = if page.failed + base.failed == 0 {
            String::new()
        } else {
            format!(
                "; {} failed ({})",
                page.failed + base.failed,
                page.first_failure
                    .clone()
                    .or(base.first_failure.clone())
                    .unwrap_or_default()
            )
        };
        rows.push(
            Row::new(
                format!("{what}: p50 / p99, {CLIENTS} clients"),
                format!(
                    "{:.2} / {:.2} ms ({} pages{failed})",
                    ms(p50),
                    ms(p99),
                    page.micros.len()
                ),
            )
            .baseline(
                format!("{base_what}: {:.2} / {:.2} ms", ms(b50), ms(b99)),
                p99 as f64 / (b99 as f64).max(1.0),
            )
            .limit(
                match limit {
                    30 => "p99 < 30 ms",
                    50 => "p99 < 50 ms",
                    _ => "p99 < 100 ms",
                },
                ms(p99) < *limit as f64 && page.failed == 0,
            ),
        );
    }
    for (what, agent, anon) in &f.signed {
        let (p50, p99) = (pct(&agent.micros, 50), pct(&agent.micros, 99));
        let (b50, b99) = (pct(&anon.micros, 50), pct(&anon.micros, 99));
        let ratio = p99 as f64 / (b99 as f64).max(1.0);
        let failed = agent.failed + anon.failed;
        rows.push(
            Row::new(
                format!(
                    "{what} as a signed-in agent (read token, member): p50 / p99, {CLIENTS} clients"
                ),
                format!(
                    "{:.2} / {:.2} ms ({} pages{})",
                    ms(p50),
                    ms(p99),
                    agent.micros.len(),
                    if failed == 0 {
                        String::new()
                    } else {
                        format!(
                            "; {failed} failed ({})",
                            agent
                                .first_failure
                                .clone()
                                .or(anon.first_failure.clone())
                                .unwrap_or_default()
                        )
                    }
                ),
            )
            .baseline(
                format!(
                    "the same pages anonymous: {:.2} / {:.2} ms",
                    ms(b50),
                    ms(b99)
                ),
                ratio,
            )
            .limit("p99 <= 1.2 x anonymous", ratio <= 1.2 && failed == 0),
        );
    }
    for (name, html, css) in &f.weights {
        rows.push(
            Row::new(
                format!("page weight: {name} (HTML + CSS, uncompressed)"),
                format!(
                    "{:.1} KB ({html} + {css} bytes)",
                    (html + css) as f64 / 1000.0
                ),
            )
            .limit("< 60 KB", html + css < 60_000),
        );
    }
    Section {
        title: "The public portal (issue 21)",
        intro: format!(
            "Node b, holding the {} records, serves its portal over HTTP on loopback. For each kind \
             of page, {CLIENTS} clients on kept-alive connections ask for it for {} s, then for the \
             same answer as JSON (an export page: the same page in Turtle) for as long.",
            f.records,
            SPELL.as_secs()
        ),
        rows,
        notes: vec![
            "Every page takes a turn: at most 4 searches (search, territory pages) and 8 record pages at once, 2 exports; the others wait, so p99 includes that wait.".into(),
            "The map's library (Leaflet, 148 KB) is left out of the page weight, as the issue asks; it is loaded by /carte only.".into(),
            "Signed in (issue 22): the clients send read tokens (400 of them, in turn, so that none goes past its 20 requests a second), whose viewer is a session's: an agent of a member organisation, who also sees federation records and those restricted to it. Each spell signed in follows the same pages anonymous, in the same run.".into(),
        ],
    }
}
