//! Load (issue 19): 100 clients at once on node b (anonymous searches over
//! TLS and over HTTP, the operator publishing on the admin socket) while a
//! new node syncs b's million records, with 10,000 idle connections held
//! against b's ports; each kind of call timed beside the same calls on the
//! idle node, memory sampled before, during and after.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use maillage_proto::v1::admin_client::AdminClient;
use maillage_proto::v1::catalogue_client::CatalogueClient;
use maillage_proto::v1::{SearchRequest, SignRequest};
use maillage_record::model::Dataset;
use maillage_record::{Body, Record, SigningKey, Visibility, wire};
use tokio::net::{TcpSocket, TcpStream};
use tonic::transport::Channel;

use crate::nodes::BenchNode;
use crate::report::{Row, Section, human, pct};
use crate::search::QUERIES;

const TLS_SEARCHERS: usize = 40;
const HTTP_SEARCHERS: usize = 40;
const PUBLISHERS: usize = 20;
const IDLE_CONNECTIONS: usize = 10_000;
/// Calls of each kind timed on the idle node, one client.
const IDLE_CALLS: usize = 200;

/// What one kind of call met.
#[derive(Debug, Default, Clone)]
pub struct Calls {
    pub micros: Vec<u64>,
    /// Refusals the limits document (RESOURCE_EXHAUSTED, 503).
    pub refused: u64,
    /// Anything else.
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Calls {
    fn merge(&mut self, other: Calls) {
        self.micros.extend(other.micros);
        self.refused += other.refused;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
    fn ms(&self, p: usize) -> f64 {
        pct(&self.micros, p) as f64 / 1000.0
    }
}

pub struct LoadFigures {
    seconds: u64,
    /// (kind, idle, loaded)
    kinds: Vec<(&'static str, Calls, Calls)>,
    rss_before: u64,
    rss_peak: u64,
    rss_after: u64,
    idle_held: usize,
    idle_closed: usize,
    idle_failed: usize,
    synced: u64,
    sync_of: u64,
    /// The same sync's rate alone (records per second), from replication.
    sync_alone_rate: f64,
    refusals: Vec<(&'static str, u64)>,
}

/// The process's resident memory (the nodes run in it), in bytes.
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

async fn admin(socket: &Path) -> anyhow::Result<AdminClient<Channel>> {
    Ok(AdminClient::new(
        crate::search::admin_channel(socket).await?,
    ))
}

/// The i-th search: the usual ones, and a new one in ten.
fn words(i: usize) -> String {
    if i % 10 == 9 {
        crate::corpus::distinct_query(i)
    } else {
        QUERIES[i % QUERIES.len()].0.to_string()
    }
}

/// Anonymous searches over TLS until `stop` (or `count` calls).
async fn tls_searches(
    channel: Channel,
    client: usize,
    count: usize,
    stop: Arc<AtomicBool>,
) -> Calls {
    let mut cl = CatalogueClient::new(channel);
    let mut calls = Calls::default();
    for i in 0..count {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let t = Instant::now();
        let r = cl
            .search(SearchRequest {
                query: words(client * 100_003 + i),
                page: 1,
                page_size: 20,
                ..Default::default()
            })
            .await;
        match r {
            Ok(_) => calls.micros.push(t.elapsed().as_micros() as u64),
            Err(s) if s.code() == tonic::Code::ResourceExhausted => calls.refused += 1,
            Err(s) => {
                calls.errors += 1;
                calls.first_error.get_or_insert(s.to_string());
            }
        }
    }
    calls
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Anonymous searches over HTTP until `stop` (or `count` calls).
async fn http_searches(addr: String, client: usize, count: usize, stop: Arc<AtomicBool>) -> Calls {
    let mut calls = Calls::default();
    let mut stream: Option<TcpStream> = None;
    for i in 0..count {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let t = Instant::now();
        if stream.is_none() {
            match TcpStream::connect(&addr).await {
                Ok(s) => stream = Some(s),
                Err(e) => {
                    calls.errors += 1;
                    calls.first_error.get_or_insert(e.to_string());
                    continue;
                }
            }
        }
        let path = format!("/search?q={}", encode(&words(client * 100_003 + i)));
        match crate::portal::get(stream.as_mut().expect("connected"), &path, "*/*")
            .await
            .map(|(status, _)| status)
        {
            Ok(200) => calls.micros.push(t.elapsed().as_micros() as u64),
            Ok(503) => calls.refused += 1,
            Ok(other) => {
                calls.errors += 1;
                calls.first_error.get_or_insert(format!("HTTP {other}"));
            }
            Err(e) => {
                // A connection the node closed (its limits): a new one.
                stream = None;
                calls.errors += 1;
                calls.first_error.get_or_insert(e.to_string());
            }
        }
    }
    calls
}

/// The operator publishing datasets on the admin socket.
async fn publishes(socket: &Path, client: usize, count: usize, stop: Arc<AtomicBool>) -> Calls {
    let mut calls = Calls::default();
    let mut cl = match admin(socket).await {
        Ok(c) => c,
        Err(e) => {
            calls.errors += 1;
            calls.first_error = Some(e.to_string());
            return calls;
        }
    };
    for i in 0..count {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let record = Record {
            record_id: format!("charge-{client}-{i}"),
            version: 0,
            issued_at_ms: 0,
            visibility: Visibility::Public,
            provenance: None,
            body: Body::Dataset(Dataset::new(
                format!("Jeu publié sous charge {client} {i}"),
                "Publié pendant le banc d'essai de charge.",
            )),
        };
        let t = Instant::now();
        let r = cl
            .sign_and_publish(SignRequest {
                payload: Some(wire::payload_to_proto(&record)),
                ..Default::default()
            })
            .await;
        match r {
            Ok(_) => calls.micros.push(t.elapsed().as_micros() as u64),
            Err(s) => {
                calls.errors += 1;
                calls.first_error.get_or_insert(s.to_string());
            }
        }
    }
    calls
}

/// Opens `count` TCP connections to `ports` in turn, from as many loopback
/// addresses as needed (127.0.0.2 onwards, 50 each), and never sends a
/// byte. Returns them, and how many failed to connect.
async fn idle_connections(ports: &[String], count: usize) -> (Vec<TcpStream>, usize) {
    let mut held = Vec::with_capacity(count);
    let mut failed = 0;
    for i in 0..count {
        let source =
            std::net::Ipv4Addr::new(127, 0, (2 + i / 50 / 250) as u8, (2 + (i / 50) % 250) as u8);
        let target: std::net::SocketAddr = ports[i % ports.len()].parse().expect("an address");
        let socket = match TcpSocket::new_v4() {
            Ok(s) => s,
            Err(_) => {
                failed += 1;
                continue;
            }
        };
        if socket.bind((source, 0).into()).is_err() {
            failed += 1;
            continue;
        }
        match tokio::time::timeout(Duration::from_secs(2), socket.connect(target)).await {
            Ok(Ok(s)) => held.push(s),
            _ => failed += 1,
        }
    }
    (held, failed)
}

/// How many of `conns` the node still holds open (a read would block).
fn still_open(conns: &[TcpStream]) -> usize {
    let mut buf = [0u8; 1];
    conns
        .iter()
        .filter(|c| matches!(c.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock))
        .count()
}

pub async fn run(
    b: &BenchNode,
    authors: &[SigningKey],
    sync_alone_rate: f64,
) -> anyhow::Result<LoadFigures> {
    let seconds: u64 = std::env::var("MAILLAGE_BENCH_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let http = b.http.clone().expect("node b serves HTTP");
    let tls_addr = b.url.trim_start_matches("https://").to_string();
    let never = Arc::new(AtomicBool::new(false));

    // Each kind alone, one client, on the idle node.
    eprintln!("load: each kind of call alone...");
    let idle_tls = tls_searches(b.anonymous_channel()?, 7, IDLE_CALLS, never.clone()).await;
    let idle_http = http_searches(http.clone(), 7, IDLE_CALLS, never.clone()).await;
    let idle_publish = publishes(&b.admin, 999, IDLE_CALLS / 2, never.clone()).await;

    let rss_before = rss();
    let peak = Arc::new(AtomicU64::new(rss_before));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    eprintln!("load: {IDLE_CONNECTIONS} idle connections...");
    let (idle, idle_failed) =
        idle_connections(&[tls_addr.clone(), http.clone()], IDLE_CONNECTIONS).await;

    eprintln!("load: a new node syncs b's records...");
    let joined = b.joined(2, authors).await?;
    joined.trust(b.public_key())?;
    let sync_of = b.envelopes();
    let sync = {
        let joined = Arc::new(joined);
        let j = joined.clone();
        (joined, tokio::spawn(async move { j.sync("b").await }))
    };

    eprintln!(
        "load: {} clients for {seconds} s...",
        TLS_SEARCHERS + HTTP_SEARCHERS + PUBLISHERS
    );
    let mut tasks = Vec::new();
    for c in 0..TLS_SEARCHERS {
        let ch = b.anonymous_channel()?;
        tasks.push((
            "TLS search",
            tokio::spawn(tls_searches(ch, c, usize::MAX, stop.clone())),
        ));
    }
    for c in 0..HTTP_SEARCHERS {
        tasks.push((
            "HTTP search",
            tokio::spawn(http_searches(http.clone(), c, usize::MAX, stop.clone())),
        ));
    }
    for c in 0..PUBLISHERS {
        let socket = b.admin.clone();
        let stop = stop.clone();
        tasks.push((
            "publish",
            tokio::spawn(async move { publishes(&socket, c, usize::MAX, stop).await }),
        ));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let idle_held = still_open(&idle);
    stop.store(true, Ordering::Relaxed);
    let mut loaded: Vec<(&'static str, Calls)> = Vec::new();
    for (kind, task) in tasks {
        let calls = task.await?;
        match loaded.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, all)) => all.merge(calls),
            None => loaded.push((kind, calls)),
        }
    }
    let (joined, sync_task) = sync;
    let synced = joined.envelopes();
    sync_task.abort();
    let _ = sync_task.await;
    sampler.await?;
    let rss_peak = peak.load(Ordering::Relaxed);
    let idle_closed = idle.len() - idle_held;
    drop(idle);
    if let Ok(j) = Arc::try_unwrap(joined) {
        j.shutdown().await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss();
    let take = |k: &str| {
        loaded
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, c)| c.clone())
            .unwrap_or_default()
    };
    Ok(LoadFigures {
        seconds,
        kinds: vec![
            ("TLS search", idle_tls, take("TLS search")),
            ("HTTP search", idle_http, take("HTTP search")),
            ("publish", idle_publish, take("publish")),
        ],
        rss_before,
        rss_peak,
        rss_after,
        idle_held,
        idle_closed,
        idle_failed,
        synced,
        sync_of,
        sync_alone_rate,
        refusals: b.refusals(),
    })
}

pub fn section(f: &LoadFigures) -> Section {
    let mut rows = Vec::new();
    let clients = [
        ("TLS search", TLS_SEARCHERS),
        ("HTTP search", HTTP_SEARCHERS),
        ("publish", PUBLISHERS),
    ];
    for (kind, idle, loaded) in &f.kinds {
        let n = clients
            .iter()
            .find(|(k, _)| k == kind)
            .map_or(0, |(_, n)| *n);
        let ratio = loaded.ms(50) / idle.ms(50).max(1e-6);
        rows.push(
            Row::new(
                format!("load: {kind}, {n} of 100 clients, during a sync and {IDLE_CONNECTIONS} idle connections"),
                format!(
                    "p50 {:.1} ms, p99 {:.1} ms; {} answered, {} refused (documented), {} errors{}",
                    loaded.ms(50),
                    loaded.ms(99),
                    loaded.micros.len(),
                    loaded.refused,
                    loaded.errors,
                    loaded
                        .first_error
                        .as_ref()
                        .map(|e| format!(" (first: {})", e.chars().take(120).collect::<String>()))
                        .unwrap_or_default()
                ),
            )
            .baseline(
                format!("idle node, one client: p50 {:.2} ms, p99 {:.2} ms", idle.ms(50), idle.ms(99)),
                ratio,
            )
            .limit(
                "answers throughout; no errors beyond documented refusals",
                loaded.errors == 0 && !loaded.micros.is_empty(),
            ),
        );
    }
    let rate = f.synced as f64 / f.seconds as f64;
    rows.push(
        Row::new(
            format!("load: a new node syncs {} records meanwhile", f.sync_of),
            format!("{} records in {} s ({rate:.0}/s)", f.synced, f.seconds),
        )
        .baseline(
            format!("the same sync alone: {:.0}/s", f.sync_alone_rate),
            rate / f.sync_alone_rate.max(1e-9),
        )
        .limit("progresses under load", f.synced > 0),
    );
    rows.push(
        Row::new(
            format!("load: {IDLE_CONNECTIONS} idle connections (TLS and HTTP ports, 200 source addresses)"),
            format!(
                "{} held open at the end, {} closed by the node (its connection limits, handshake and header timeouts), {} not connected",
                f.idle_held, f.idle_closed, f.idle_failed
            ),
        )
        .limit(
            "at most 1,024 + 512 held (accept::MAX_CONNECTIONS + http::MAX_CONNECTIONS)",
            f.idle_held <= 1_024 + 512,
        ),
    );
    rows.push(
        Row::new(
            "load: memory of the process (both nodes)",
            format!(
                "RSS {} before, {} at peak, {} after",
                human(f.rss_before),
                human(f.rss_peak),
                human(f.rss_after)
            ),
        )
        .baseline(
            "before the load",
            f.rss_peak as f64 / f.rss_before.max(1) as f64,
        )
        .limit(
            "peak within 4 GiB of before",
            f.rss_peak <= f.rss_before + (4 << 30),
        ),
    );
    let refused: Vec<String> = f
        .refusals
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    rows.push(Row::new(
        "load: refusals counted by node b (status)",
        if refused.is_empty() {
            "none".to_string()
        } else {
            refused.join(", ")
        },
    ));
    Section {
        title: "Under load (issue 19)",
        intro: format!(
            "For {} s, {TLS_SEARCHERS} anonymous clients search node b over TLS and {HTTP_SEARCHERS} over HTTP (the usual searches, a new one in ten), {PUBLISHERS} publish as its operator on the admin socket, a new node syncs b's records, and {IDLE_CONNECTIONS} connections from 200 loopback addresses are opened against b's ports and never send a byte. Each kind of call is timed beside the same calls on the idle node, one client. The nodes run in the benchmark's process: its RSS is theirs.",
            f.seconds
        ),
        rows,
        notes: Vec::new(),
    }
}
