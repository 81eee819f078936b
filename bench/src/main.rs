//! maillage benchmarks: every figure beside a baseline measured in the same
//! run, and the limit it is held to. Rewrites docs/benchmarks.md.
//!
//!     cargo run --release -p maillage-bench            # 1,000,000 records
//!     MAILLAGE_BENCH_N=100000 cargo run --release -p maillage-bench
//!     # A developer's probe (writes no report): a node of N records kept in
//!     # DIR, each search and browsing timed alone; MAILLAGE_PROBE_REINDEX=1
//!     # times a rebuild.
//!     MAILLAGE_BENCH_PROBE=DIR cargo run --release -p maillage-bench
//!
//! Nodes run in this process (the real `server::start`/`run`, real RocksDB in
//! temp dirs, real gRPC over mutual TLS on 127.0.0.1), so the two nodes of a
//! sync share this machine's two cores.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use maillage_node::config::Config;
use maillage_node::node::Node;
use maillage_node::replication::FETCH_BATCH_RECORDS;
use maillage_node::replication::client::{self, SyncReport};
use maillage_node::server;
use maillage_node::tls::WireCounters;
use maillage_record::model::Dataset;
use maillage_record::{Body, PublicKey, Record, SigningKey, VerifiedRecord, Visibility, envelope};
use negentropy::{Id, Negentropy, NegentropyStorageVector};

// The allocator maillage-node runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod corpus;
mod probe;
mod search;

const DIFF: usize = 1_000;
/// Records a node ingests while it answers searches.
const INGEST: usize = 100_000;
const FED_NODES: usize = 20;

fn main() -> anyhow::Result<()> {
    // As the node runs (see `maillage-node`'s main).
    maillage_node::background::no_transparent_huge_pages();
    let n: usize = std::env::var("MAILLAGE_BENCH_N")
        .ok()
        .map(|v| v.parse())
        .transpose()
        .context("MAILLAGE_BENCH_N must be a number")?
        .unwrap_or(1_000_000);
    let out = PathBuf::from(
        std::env::var("MAILLAGE_BENCH_OUT").unwrap_or_else(|_| "docs/benchmarks.md".into()),
    );
    let rt = tokio::runtime::Runtime::new()?;
    let mut md = String::new();
    writeln!(md, "# Benchmarks\n")?;
    writeln!(
        md,
        "Written by `scripts/bench` ({}), on {} cores. Release build; nodes in one process on \
         127.0.0.1 with real RocksDB, gRPC and mutual TLS. Figures are compared with baselines \
         measured in the same run.\n",
        now_utc(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    )?;

    eprintln!("generating {} signed records...", n + DIFF);
    let authors: Vec<SigningKey> = (0..1000u32)
        .map(|i| {
            let mut seed = [7u8; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            SigningKey::from_bytes(&seed)
        })
        .collect();
    if let Ok(dir) = std::env::var("MAILLAGE_BENCH_PROBE") {
        return probe::run(std::path::Path::new(&dir), n, &authors);
    }
    let t = Instant::now();
    let records = corpus::generate(0..n + DIFF, &authors);
    let sign_rate = records.len() as f64 / t.elapsed().as_secs_f64();
    let avg_bytes = records
        .iter()
        .map(|r| r.envelope_bytes().len())
        .sum::<usize>()
        / records.len().max(1);

    // Ceiling: this machine batch-verifying the same envelopes.
    eprintln!("measuring the batch-verification ceiling...");
    let (ceiling_1, ceiling_all) = verify_ceiling(&records[..records.len().min(100_000)]);
    eprintln!("batch verify: {ceiling_all:.0}/s all cores, {ceiling_1:.0}/s one core");

    // The DIFF records the two nodes will not share are spread over the whole
    // set (every k-th), as real differences are, not bunched at its end.
    let records = spread_differences(records, n);
    let result = rt.block_on(replication_benches(n, &records, &authors))?;

    writeln!(md, "## Replication (issue 4)\n")?;
    writeln!(
        md,
        "{n} records by 1,000 authors (datasets named after collectivities of \
         `data/collectivites.csv`, {avg_bytes} bytes per envelope on average); signing ran at \
         {sign_rate:.0}/s on all cores.\n"
    )?;
    writeln!(
        md,
        "| what | measured | baseline (same run) | ratio | limit | holds |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|")?;
    let full = &result.full;
    let full_rate = n as f64 / full.elapsed.as_secs_f64();
    row(
        &mut md,
        "first full sync: records/s (verify, trust, store)",
        format!("{full_rate:.0}/s ({:.1} s)", full.elapsed.as_secs_f64()),
        format!("batch verify: {ceiling_all:.0}/s all cores, {ceiling_1:.0}/s one core"),
        full_rate / ceiling_all,
        "≥ 0.5 × batch verify (all cores)",
        full_rate >= 0.5 * ceiling_all,
    )?;
    let d = &result.diff;
    row(
        &mut md,
        &format!("{n} vs {n}, {DIFF} differences: round trips"),
        d.report.round_trips.to_string(),
        format!("negentropy alone: {}", d.alone_rounds),
        d.report.round_trips as f64 / d.alone_rounds.max(1) as f64,
        "≤ 4",
        d.report.round_trips <= 4,
    )?;
    row(
        &mut md,
        &format!("{n} vs {n}, {DIFF} differences: bytes on the wire (TLS included) to reconcile"),
        human(d.report.wire_reconcile),
        format!("negentropy alone: {}", human(d.alone_bytes)),
        d.report.wire_reconcile as f64 / d.alone_bytes.max(1) as f64,
        "≤ 2 × negentropy alone",
        d.report.wire_reconcile <= 2 * d.alone_bytes,
    )?;
    row(
        &mut md,
        &format!("{n} vs {n}, {DIFF} differences: time to reconcile"),
        format!("{} ms", d.report.reconcile_elapsed.as_millis()),
        format!("negentropy alone: {} ms", d.alone_time.as_millis()),
        d.report.reconcile_elapsed.as_secs_f64() / d.alone_time.as_secs_f64().max(1e-6),
        "< 1 s",
        d.report.reconcile_elapsed < Duration::from_secs(1),
    )?;
    row(
        &mut md,
        &format!(
            "{n} vs {n}, {DIFF} differences: reconcile and fetch {} records",
            d.report.need
        ),
        format!(
            "{} ms, {}",
            d.report.elapsed.as_millis(),
            human(d.report.wire_total)
        ),
        "-".into(),
        f64::NAN,
        "-",
        true,
    )?;
    let s = &result.same;
    row(
        &mut md,
        &format!("{n} vs {n}, identical: round trips and bytes"),
        format!("{} round trip, {}", s.round_trips, human(s.wire_reconcile)),
        format!("negentropy alone: {}", human(result.same_alone_bytes)),
        s.wire_reconcile as f64 / result.same_alone_bytes.max(1) as f64,
        "1 round trip, a few KB",
        s.round_trips == 1 && s.wire_reconcile < 16 * 1024,
    )?;
    let f = &result.federation;
    row(
        &mut md,
        &format!(
            "publish → visible on all {FED_NODES} nodes, chain (p50 / max of {})",
            f.chain.len()
        ),
        format!("{} / {} ms", pct(&f.chain, 50), pct(&f.chain, 100)),
        format!("one hop: {} ms", pct(&f.one_hop, 50)),
        pct(&f.chain, 50) as f64 / pct(&f.one_hop, 50).max(1) as f64,
        "< 2 s",
        pct(&f.chain, 100) < 2000,
    )?;
    row(
        &mut md,
        &format!(
            "publish → visible on all {FED_NODES} nodes, random graph (p50 / max of {})",
            f.random.len()
        ),
        format!("{} / {} ms", pct(&f.random, 50), pct(&f.random, 100)),
        format!("one hop: {} ms", pct(&f.one_hop, 50)),
        pct(&f.random, 50) as f64 / pct(&f.one_hop, 50).max(1) as f64,
        "< 2 s",
        pct(&f.random, 100) < 2000,
    )?;
    writeln!(
        md,
        "\nNotes:\n\
         - \"negentropy alone\" runs the same two sets through the `negentropy` crate in memory, \
           with the same 512 KiB frame limit: no TLS, no gRPC. Our figure counts every TCP byte \
           of the connection, TLS handshake included.\n\
         - The full sync shares the machine with the node it pulls from (both in this process).\n\
         - Federation: {FED_NODES} nodes, each a real server with its own RocksDB; a record \
           published on one end is relayed hop by hop through live announcements.\n"
    )?;

    let sf = &result.search;
    writeln!(md, "## Search (issue 5)\n")?;
    writeln!(
        md,
        "The same {n} records (one in eight an AI project), then {INGEST} more by sync. Queries: \
         {} French queries, some with a kind or territory filter, each returning the best 20, the \
         total and five facets (kind, theme, organisation, département, status), over gRPC on the \
         admin socket as the CLI sends them. Baseline: SQLite FTS5 (unicode61, accents removed, no \
         stemming) on the same title and text, same queries and facets, {} reader threads, while \
         a writer inserts the same {INGEST} records.\n",
        search::QUERIES.len(),
        search::CLIENTS
    )?;
    writeln!(
        md,
        "| what | measured | baseline (same run) | ratio | limit | holds |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|")?;
    let index_rate = n as f64 / sf.index_elapsed.as_secs_f64();
    let sqlite_rate = n as f64 / sf.sqlite_build.as_secs_f64();
    row(
        &mut md,
        &format!("store then index {n} records (node a): records/s"),
        format!(
            "{index_rate:.0}/s ({:.1} s; storing alone {:.1} s)",
            sf.index_elapsed.as_secs_f64(),
            sf.load_elapsed.as_secs_f64()
        ),
        format!("SQLite FTS5 build: {sqlite_rate:.0}/s"),
        index_rate / sqlite_rate,
        "≥ the full-sync rate (keeps up)",
        index_rate >= full_rate,
    )?;
    row(
        &mut md,
        &format!("first full sync of {n}: index behind when the sync ends"),
        format!("{:.1} s", sf.index_lag.as_secs_f64()),
        format!("sync: {:.1} s", sf.sync_elapsed.as_secs_f64()),
        sf.index_lag.as_secs_f64() / sf.sync_elapsed.as_secs_f64().max(1e-9),
        "≤ 0.1 × the sync",
        sf.index_lag.as_secs_f64() <= 0.1 * sf.sync_elapsed.as_secs_f64(),
    )?;
    let median = |l: &search::Latencies| {
        let mut t = l.totals.clone();
        t.sort_unstable();
        t.get(t.len() / 2).copied().unwrap_or(0)
    };
    latency_row(
        &mut md,
        &format!(
            "search on {n} records, {} clients, during a sync of {INGEST}: p50 / p99 ({} queries)",
            search::CLIENTS,
            sf.node.micros.len()
        ),
        &sf.node,
        "SQLite FTS5 while inserting",
        &sf.sqlite,
    )?;
    latency_row(
        &mut md,
        &format!(
            "the same searches on an idle node: p50 / p99 ({} queries)",
            sf.idle.micros.len()
        ),
        &sf.idle,
        "during the sync",
        &sf.node,
    )?;
    latency_row(
        &mut md,
        &format!(
            "a different search each time (no cache helps), during a sync of {INGEST}: p50 / p99 \
             ({} queries, median {} matches; the usual searches: {})",
            sf.distinct.micros.len(),
            median(&sf.distinct),
            median(&sf.node)
        ),
        &sf.distinct,
        "the usual searches during the sync",
        &sf.node,
    )?;
    latency_row(
        &mut md,
        &format!(
            "a different search each time, idle node: p50 / p99 ({} queries)",
            sf.distinct_idle.micros.len()
        ),
        &sf.distinct_idle,
        "during the sync",
        &sf.distinct,
    )?;
    let (usual, new) = (sf.mixed.only(false), sf.mixed.only(true));
    latency_row(
        &mut md,
        &format!(
            "the usual searches and one new search in {}, during a third sync of {INGEST}: \
             p50 / p99 ({} queries)",
            search::NEW_IN_MIXED,
            sf.mixed.micros.len()
        ),
        &sf.mixed,
        "the usual searches alone during a sync",
        &sf.node,
    )?;
    latency_row(
        &mut md,
        &format!(
            "… of which the usual searches ({} queries)",
            usual.micros.len()
        ),
        &usual,
        "alone during a sync",
        &sf.node,
    )?;
    latency_row(
        &mut md,
        &format!("… of which the new searches ({} queries)", new.micros.len()),
        &new,
        "a new search each time during a sync",
        &sf.distinct,
    )?;
    row(
        &mut md,
        "queries per second, same runs",
        format!("{:.0}/s", sf.node.qps()),
        format!("SQLite FTS5: {:.0}/s", sf.sqlite.qps()),
        sf.node.qps() / sf.sqlite.qps().max(1e-9),
        "-",
        true,
    )?;
    row(
        &mut md,
        &format!("sync of {INGEST} records while answering searches"),
        format!(
            "{:.0} records/s",
            INGEST as f64 / sf.ingest_elapsed.as_secs_f64()
        ),
        format!("first full sync: {full_rate:.0}/s"),
        INGEST as f64 / sf.ingest_elapsed.as_secs_f64() / full_rate,
        "-",
        true,
    )?;
    writeln!(
        md,
        "\nNotes:\n\
         - Every node indexes what it stores, in one thread: the full-sync figures above include \
           node b indexing as it syncs, and node a was indexed before the sync began.\n\
         - Both nodes, the 8 clients and the baseline share this machine's cores.\n\
         - Before the usual searches are timed, each is asked once: the figures are those of a \
           node in use, not of its first searches after a start.\n\
         - Caches (see docs/architecture.md): during the sync, {} of the {} usual searches were \
           answered with a page kept for the searcher they used (made by an earlier search, or by \
           the warmer before a commit was searched); the rest were ranked again. Facet counts per \
           segment: {} found kept, {} counted (by searches, or by the warmer).\n\
         - Background work (sync intake, serving peers, indexing, RocksDB's flushes and \
           compactions) runs at a lower CPU priority than searches: while 8 clients search \
           without pause, the sync slows down instead of the searches.\n\
         - Different searches: a word of a subject and a word of the descriptions (\"{}\", \
           \"{}\", ...), each asked once, during a second sync of {INGEST} records.\n\
         - A mix of searches: each client asks the usual searches in turn and, every {}th \
           search, a new one of the same kind, during a third sync of {INGEST} records: what a \
           catalogue serves, where most searches are asked again.\n",
        sf.cached.page_hits,
        sf.cached.page_hits + sf.cached.page_misses,
        sf.cached.facet_hits,
        sf.cached.facet_misses,
        corpus::distinct_query(0),
        corpus::distinct_query(1000),
        search::NEW_IN_MIXED,
    )?;

    std::fs::write(&out, &md).with_context(|| format!("cannot write {}", out.display()))?;
    print!("{md}");
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// A row of search latencies against issue 5's limit (p50 < 5 ms, p99 <
/// 20 ms); the ratio is of the p99s.
fn latency_row(
    md: &mut String,
    what: &str,
    measured: &search::Latencies,
    baseline_name: &str,
    baseline: &search::Latencies,
) -> anyhow::Result<()> {
    let (p50, p99) = (measured.pct_ms(50), measured.pct_ms(99));
    row(
        md,
        what,
        format!("{p50:.2} / {p99:.2} ms"),
        format!(
            "{baseline_name}: {:.2} / {:.2} ms",
            baseline.pct_ms(50),
            baseline.pct_ms(99)
        ),
        p99 / baseline.pct_ms(99).max(1e-9),
        "p50 < 5 ms, p99 < 20 ms",
        p50 < 5.0 && p99 < 20.0,
    )
}

fn row(
    md: &mut String,
    what: &str,
    measured: String,
    baseline: String,
    ratio: f64,
    limit: &str,
    holds: bool,
) -> anyhow::Result<()> {
    let ratio = if ratio.is_nan() {
        "-".to_string()
    } else {
        // Two significant digits at least: a ratio of 0.004 is not 0.00.
        match ratio.abs() {
            r if r != 0.0 && r < 0.01 => format!("{ratio:.4}"),
            _ => format!("{ratio:.2}"),
        }
    };
    writeln!(
        md,
        "| {what} | {measured} | {baseline} | {ratio} | {limit} | {} |",
        if holds { "yes" } else { "**no**" }
    )?;
    Ok(())
}

fn human(b: u64) -> String {
    if b < 10 * 1024 {
        format!("{b} B")
    } else if b < 10 << 20 {
        format!("{:.1} KiB", b as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
    }
}

fn pct(v: &[u64], p: usize) -> u64 {
    let mut v = v.to_vec();
    v.sort();
    if v.is_empty() {
        return 0;
    }
    v[((v.len() - 1) * p / 100).min(v.len() - 1)]
}

fn now_utc() -> String {
    maillage_record::json::format_time(maillage_record::now_ms())
}

/// Reorders `records` so the last DIFF are taken evenly from the whole range.
fn spread_differences(records: Vec<VerifiedRecord>, n: usize) -> Vec<VerifiedRecord> {
    let total = records.len();
    let step = (total / DIFF).max(1);
    let (mut base, mut extra) = (Vec::with_capacity(n), Vec::with_capacity(DIFF));
    for (i, r) in records.into_iter().enumerate() {
        if i % step == step / 2 && extra.len() < DIFF {
            extra.push(r);
        } else {
            base.push(r);
        }
    }
    base.extend(extra);
    base
}

/// Batch verification of these envelopes, as many at a time as a fetch batch
/// holds, on one core and on every core: the ceiling a full sync is compared to.
fn verify_ceiling(records: &[VerifiedRecord]) -> (f64, f64) {
    let envs: Vec<_> = records.iter().map(|r| r.to_proto()).collect();
    let one = |envs: &[maillage_proto::v1::Envelope]| {
        let t = Instant::now();
        for batch in envs.chunks(FETCH_BATCH_RECORDS) {
            let msgs: Vec<Vec<u8>> = batch.iter().map(|e| envelope::pae(&e.payload)).collect();
            let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
            let sigs: Vec<ed25519_dalek::Signature> = batch
                .iter()
                .map(|e| ed25519_dalek::Signature::from_slice(&e.signature).unwrap())
                .collect();
            let keys: Vec<ed25519_dalek::VerifyingKey> = batch
                .iter()
                .map(|e| {
                    ed25519_dalek::VerifyingKey::from_bytes(
                        &e.author.as_slice().try_into().unwrap(),
                    )
                    .unwrap()
                })
                .collect();
            ed25519_dalek::verify_batch(&refs, &sigs, &keys).expect("genuine signatures");
        }
        envs.len() as f64 / t.elapsed().as_secs_f64()
    };
    let single = one(&envs);
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let per = envs.len().div_ceil(threads);
    let t = Instant::now();
    std::thread::scope(|s| {
        for c in envs.chunks(per) {
            s.spawn(move || one(c));
        }
    });
    (single, envs.len() as f64 / t.elapsed().as_secs_f64())
}

struct Diff {
    report: SyncReport,
    alone_rounds: u32,
    alone_bytes: u64,
    alone_time: Duration,
}

struct Federation {
    chain: Vec<u64>,
    random: Vec<u64>,
    one_hop: Vec<u64>,
}

struct Results {
    full: SyncReport,
    diff: Diff,
    same: SyncReport,
    same_alone_bytes: u64,
    federation: Federation,
    search: SearchFigures,
}

#[derive(Default)]
struct SearchFigures {
    /// Storing the first N records in node a, and until they were indexed.
    load_elapsed: Duration,
    index_elapsed: Duration,
    /// How long b's index took to catch up once its full sync ended.
    index_lag: Duration,
    sync_elapsed: Duration,
    /// The node under 8 clients while it ingests INGEST records by sync.
    node: search::Latencies,
    /// The same clients before the sync, with nothing else running.
    idle: search::Latencies,
    /// Different searches each time (no cache helps), during a second sync
    /// of INGEST records and idle.
    distinct: search::Latencies,
    distinct_idle: search::Latencies,
    /// The usual searches with a new one now and then, during a third sync.
    mixed: search::Latencies,
    /// How the caches answered the usual searches during the sync.
    cached: maillage_node::search::CacheStats,
    ingest_elapsed: Duration,
    sqlite_build: Duration,
    sqlite: search::Latencies,
}

/// 8 clients search b (N records) while b syncs INGEST new records from a;
/// then the SQLite FTS5 baseline on the same records and queries.
async fn search_bench(
    n: usize,
    records: &[VerifiedRecord],
    authors: &[SigningKey],
    a: &BenchNode,
    b: &BenchNode,
) -> anyhow::Result<SearchFigures> {
    eprintln!("search: {INGEST} more records on node a...");
    let first = n + DIFF;
    let more = corpus::generate(first..first + INGEST, authors);
    {
        let (node, recs) = (a.node.clone(), more.clone());
        tokio::task::spawn_blocking(move || load(&node, &recs)).await??;
    }
    search::indexed(&a.node).await;
    search::indexed(&b.node).await;
    eprintln!(
        "search: {} clients on node b, idle ({} segments)...",
        search::CLIENTS,
        b.node.search.segments()
    );
    search::warm_up(&b.admin).await?;
    let idle = search::query_node_owned(
        b.admin.clone(),
        Arc::new(std::sync::atomic::AtomicBool::new(true)),
        search::Workload::Repeated,
    )
    .await?;
    eprintln!("search: different searches on node b, idle...");
    let distinct_idle = search::query_node_owned(
        b.admin.clone(),
        Arc::new(std::sync::atomic::AtomicBool::new(true)),
        search::Workload::Distinct,
    )
    .await?;
    let syncing = |workload| async move {
        eprintln!(
            "search: {} clients on node b ({workload:?}) while it syncs ({} segments)...",
            search::CLIENTS,
            b.node.search.segments()
        );
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let queries = tokio::spawn(search::query_node_owned(
            b.admin.clone(),
            done.clone(),
            workload,
        ));
        let t = Instant::now();
        let report = sync(b, "a").await;
        let ingest_elapsed = t.elapsed();
        done.store(true, std::sync::atomic::Ordering::Release);
        let node = queries.await??;
        let report = report?;
        anyhow::ensure!(
            report.intake.stored as usize == INGEST,
            "the sync stored {} of {INGEST}",
            report.intake.stored
        );
        eprintln!(
            "node: p50 {:.2} ms, p99 {:.2} ms over {} queries",
            node.pct_ms(50),
            node.pct_ms(99),
            node.micros.len()
        );
        anyhow::Ok((node, ingest_elapsed))
    };
    let before = b.node.search.cache_stats();
    let (node, ingest_elapsed) = syncing(search::Workload::Repeated).await?;
    let after = b.node.search.cache_stats();
    let cached = after - before;

    eprintln!("search: {INGEST} more records on node a, for different searches...");
    {
        let recs = corpus::generate(first + INGEST..first + 2 * INGEST, authors);
        let node = a.node.clone();
        tokio::task::spawn_blocking(move || load(&node, &recs)).await??;
    }
    search::indexed(&a.node).await;
    let (distinct, _) = syncing(search::Workload::Distinct).await?;

    eprintln!("search: {INGEST} more records on node a, for a mix of searches...");
    {
        let recs = corpus::generate(first + 2 * INGEST..first + 3 * INGEST, authors);
        let node = a.node.clone();
        tokio::task::spawn_blocking(move || load(&node, &recs)).await??;
    }
    search::indexed(&a.node).await;
    let (mixed, _) = syncing(search::Workload::Mixed).await?;

    eprintln!("search: SQLite FTS5 baseline on the same {n} records...");
    // Blocks this (main) thread only: the nodes run on the runtime's workers.
    let (db, sqlite_build) = search::Sqlite::build(&records[..n])?;
    let sqlite = db.query_while_inserting(&more, (n + 1) as i64)?;
    eprintln!(
        "sqlite: p50 {:.2} ms, p99 {:.2} ms over {} queries",
        sqlite.pct_ms(50),
        sqlite.pct_ms(99),
        sqlite.micros.len()
    );
    Ok(SearchFigures {
        node,
        idle,
        distinct,
        distinct_idle,
        mixed,
        cached,
        ingest_elapsed,
        sqlite_build,
        sqlite,
        ..Default::default()
    })
}

/// A node in this process, on 127.0.0.1:0, with its own temp dir.
struct BenchNode {
    node: Arc<Node>,
    admin: PathBuf,
    url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn bench_node(i: usize) -> anyhow::Result<(server::Started, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let key = maillage_record::keyfile::generate()?;
    maillage_record::keyfile::write_new(&dir.path().join("organisation.key"), &key)?;
    // Real SIRENs are not needed to measure; any valid one will do.
    let text = format!(
        "[organisation]\nsiren = \"243100518\"\nname = \"bench {i}\"\nkey_file = \"organisation.key\"\n\
         [node]\ngrpc_listen = \"127.0.0.1:0\"\n[log]\nlevel = \"warn\"\n"
    );
    let config = Config::parse(&dir.path().join("maillage.toml"), &text)?;
    Ok((server::start(&config).await?, dir))
}

fn run_node(started: server::Started, dir: tempfile::TempDir) -> BenchNode {
    let node = started.node.clone();
    let admin = started.admin_path.clone();
    let url = format!("https://{}", started.grpc.local_addr().expect("bound"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = server::run(started, async {
            let _ = stopped.await;
        })
        .await;
    });
    BenchNode {
        node,
        admin,
        url,
        stop,
        task,
        _dir: dir,
    }
}

impl BenchNode {
    async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Pins each node on the other (no link task: the benchmark drives syncs).
fn pin(a: &BenchNode, b: &BenchNode, name_of_b: &str) {
    a.node
        .peers
        .add(
            name_of_b,
            &b.url,
            b.node.public_key,
            None,
            a.node.public_key,
        )
        .expect("pin");
}

async fn sync(a: &BenchNode, peer: &str) -> anyhow::Result<SyncReport> {
    let state = a.node.peers.get(peer).context("peer pinned")?;
    let counters = Arc::new(WireCounters::default());
    let (mut c, key) = client::client(&state, &a.node, counters.clone())?;
    let progress = client::Progress::default();
    Ok(client::sync_once(&a.node, &state, &mut c, key, &counters, &progress).await?)
}

fn load(node: &Node, recs: &[VerifiedRecord]) -> anyhow::Result<()> {
    for chunk in recs.chunks(10_000) {
        node.insert_many_blocking(chunk, maillage_node::store::Origin::Local)?;
    }
    Ok(())
}

/// Negentropy in memory on two sets: (round trips, bytes both ways, time).
fn negentropy_alone(
    client_items: &[(u64, [u8; 32])],
    server_items: &[(u64, [u8; 32])],
) -> (u32, u64, Duration) {
    let storage = |items: &[(u64, [u8; 32])]| {
        let mut s = NegentropyStorageVector::with_capacity(items.len());
        for (ts, id) in items {
            s.insert(*ts, Id::from_byte_array(*id)).unwrap();
        }
        s.seal().unwrap();
        s
    };
    let (cs, ss) = (storage(client_items), storage(server_items));
    let t = Instant::now();
    let mut client = Negentropy::owned(cs, maillage_node::replication::FRAME_LIMIT).unwrap();
    let mut server = Negentropy::owned(ss, maillage_node::replication::FRAME_LIMIT).unwrap();
    let mut msg = client.initiate().unwrap();
    let (mut rounds, mut bytes) = (0u32, msg.len() as u64);
    let (mut have, mut need) = (vec![], vec![]);
    loop {
        let answer = server.reconcile(&msg).unwrap();
        bytes += answer.len() as u64;
        rounds += 1;
        match client
            .reconcile_with_ids(&answer, &mut have, &mut need)
            .unwrap()
        {
            Some(next) => {
                bytes += next.len() as u64;
                msg = next;
            }
            None => break,
        }
    }
    (rounds, bytes, t.elapsed())
}

fn items(recs: &[VerifiedRecord]) -> Vec<(u64, [u8; 32])> {
    recs.iter()
        .map(|r| (r.record().issued_at_ms as u64, r.id().0))
        .collect()
}

async fn replication_benches(
    n: usize,
    records: &[VerifiedRecord],
    authors: &[SigningKey],
) -> anyhow::Result<Results> {
    let (sa, da) = bench_node(0).await?;
    let (sb, db) = bench_node(1).await?;
    let (a, b) = (run_node(sa, da), run_node(sb, db));
    for k in authors {
        let k = PublicKey(k.verifying_key().to_bytes());
        b.node.trust.add_root(k, "bench")?;
        a.node.trust.add_root(k, "bench")?;
    }
    pin(&a, &b, "b");
    pin(&b, &a, "a");

    eprintln!("loading {n} records into node a, and indexing them...");
    let t = Instant::now();
    {
        let (node, recs) = (a.node.clone(), records[..n].to_vec());
        tokio::task::spawn_blocking(move || load(&node, &recs)).await??;
    }
    let load_elapsed = t.elapsed();
    search::indexed(&a.node).await;
    let index_elapsed = t.elapsed();
    eprintln!(
        "stored in {:.1} s, indexed in {:.1} s",
        load_elapsed.as_secs_f64(),
        index_elapsed.as_secs_f64()
    );
    eprintln!("first full sync of {n} records to node b...");
    let full = sync(&b, "a").await?;
    eprintln!(
        "full sync: {:.0} records/s",
        n as f64 / full.elapsed.as_secs_f64()
    );
    anyhow::ensure!(
        full.intake.stored as usize == n,
        "full sync stored {} of {n}",
        full.intake.stored
    );
    let index_lag = search::indexed(&b.node).await;
    eprintln!(
        "b's index caught up {:.1} s after the sync",
        index_lag.as_secs_f64()
    );

    // Each side gets half of DIFF records the other lacks.
    eprintln!("reconciling {n} vs {n} with {DIFF} differences...");
    let extra = &records[n..n + DIFF];
    {
        let (na, nb) = (a.node.clone(), b.node.clone());
        let (ea, eb) = (extra[..DIFF / 2].to_vec(), extra[DIFF / 2..].to_vec());
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            load(&na, &ea)?;
            load(&nb, &eb)
        })
        .await??;
    }
    let mut a_set = items(&records[..n]);
    a_set.extend(items(&extra[..DIFF / 2]));
    let mut b_set = items(&records[..n]);
    b_set.extend(items(&extra[DIFF / 2..]));
    // The organisation records of the two nodes are in both stores too: count them.
    let (alone_rounds, alone_bytes, alone_time) = negentropy_alone(&b_set, &a_set);
    let report = sync(&b, "a").await?;
    let diff = Diff {
        report,
        alone_rounds,
        alone_bytes,
        alone_time,
    };
    // b now has a's half; a pulls b's half: identical sets.
    sync(&a, "b").await?;
    eprintln!("reconciling identical sets...");
    let same = sync(&b, "a").await?;
    let all = items(&records[..n + DIFF]);
    let (_, same_alone_bytes, _) = negentropy_alone(&all, &all);

    let search = search_bench(n, records, authors, &a, &b).await?;
    let search = SearchFigures {
        load_elapsed,
        index_elapsed,
        index_lag,
        sync_elapsed: full.elapsed,
        ..search
    };
    a.shutdown().await;
    b.shutdown().await;

    eprintln!("{FED_NODES}-node federations...");
    let federation = federation_bench().await?;
    Ok(Results {
        full,
        diff,
        same,
        same_alone_bytes,
        federation,
        search,
    })
}

/// Publish on one node, wait until every node holds the record.
async fn federation_bench() -> anyhow::Result<Federation> {
    let mut chain = Vec::new();
    let mut random = Vec::new();
    let mut one_hop = Vec::new();
    for topology in ["chain", "random"] {
        let mut started = Vec::new();
        for i in 0..FED_NODES {
            started.push(bench_node(100 + i).await?);
        }
        let urls: Vec<String> = started
            .iter()
            .map(|(s, _)| format!("https://{}", s.grpc.local_addr().expect("bound")))
            .collect();
        let nodes: Vec<Arc<Node>> = started.iter().map(|(s, _)| s.node.clone()).collect();
        let mut edges: Vec<(usize, usize)> = (0..FED_NODES - 1).map(|i| (i, i + 1)).collect();
        if topology == "random" {
            // A ring plus chords from a fixed pseudo-random sequence: connected, small diameter.
            edges.push((FED_NODES - 1, 0));
            let mut x: u64 = 0x2545_f491_4f6c_dd1d;
            for _ in 0..FED_NODES {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let (p, q) = (
                    (x % FED_NODES as u64) as usize,
                    ((x >> 20) % FED_NODES as u64) as usize,
                );
                if p != q && !edges.contains(&(p, q)) && !edges.contains(&(q, p)) {
                    edges.push((p, q));
                }
            }
        }
        for (p, q) in &edges {
            for (x, y) in [(*p, *q), (*q, *p)] {
                nodes[x].peers.add(
                    &format!("n{y}"),
                    &urls[y],
                    nodes[y].public_key,
                    None,
                    nodes[x].public_key,
                )?;
            }
        }
        for x in &nodes {
            for y in &nodes {
                x.trust.add_root(y.public_key, "bench")?;
            }
        }
        // Peers are pinned before `run`: each node starts its links at once.
        let running: Vec<BenchNode> = started.into_iter().map(|(s, d)| run_node(s, d)).collect();
        // Let every link subscribe and converge on the organisation records.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let key = SigningKey::from_bytes(&[9; 32]);
        for x in &nodes {
            x.trust
                .add_root(PublicKey(key.verifying_key().to_bytes()), "bench")?;
        }
        for round in 0..10 {
            let origin = if topology == "chain" {
                0
            } else {
                round % FED_NODES
            };
            let record = Record {
                record_id: format!("{topology}-{round}"),
                version: 1,
                issued_at_ms: maillage_record::now_ms(),
                visibility: Visibility::Public,
                provenance: None,
                body: Body::Dataset(Dataset::new(format!("Jeu {round}"), "Propagation")),
            };
            let rec = envelope::sign(&key, &record)?;
            let id = rec.id();
            let t = Instant::now();
            nodes[origin]
                .insert(rec, maillage_node::store::Admission::RequireNewer)
                .await?;
            let mut first_hop = None;
            loop {
                let neighbour = if origin + 1 < FED_NODES {
                    origin + 1
                } else {
                    origin - 1
                };
                if first_hop.is_none() && nodes[neighbour].store.contains(&id)? {
                    first_hop = Some(t.elapsed().as_millis() as u64);
                }
                if nodes.iter().all(|x| x.store.contains(&id).unwrap_or(false)) {
                    break;
                }
                anyhow::ensure!(
                    t.elapsed() < Duration::from_secs(30),
                    "{topology}: record {round} did not reach every node in 30 s"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let all = t.elapsed().as_millis() as u64;
            one_hop.push(first_hop.unwrap_or(all));
            if topology == "chain" {
                chain.push(all);
            } else {
                random.push(all);
            }
        }
        for x in running {
            x.shutdown().await;
        }
    }
    Ok(Federation {
        chain,
        random,
        one_hop,
    })
}
