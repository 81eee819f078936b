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

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use replication::{Ceiling, DIFF, Signing};
use report::Report;

// The allocator maillage-node runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod aggregates;
mod corpus;
mod federation;
mod imports;
mod load;
mod nodes;
mod portal;
mod probe;
mod replication;
mod report;
mod search;

fn main() -> anyhow::Result<()> {
    // As the node runs (see `maillage-node`'s main).
    nodes::no_transparent_huge_pages();
    let n: usize = std::env::var("MAILLAGE_BENCH_N")
        .ok()
        .map(|v| v.parse())
        .transpose()
        .context("MAILLAGE_BENCH_N must be a number")?
        .unwrap_or(1_000_000);
    let out = PathBuf::from(
        std::env::var("MAILLAGE_BENCH_OUT").unwrap_or_else(|_| "docs/benchmarks.md".into()),
    );
    let started = report::now_utc();
    let authors = corpus::authors();
    if let Ok(dir) = std::env::var("MAILLAGE_BENCH_PROBE") {
        return probe::run(std::path::Path::new(&dir), n, &authors);
    }
    // The imports alone, printed (a developer's check; no report written).
    if std::env::var_os("MAILLAGE_BENCH_IMPORTS_ONLY").is_some() {
        let figures = tokio::runtime::Runtime::new()?.block_on(imports::run(&authors))?;
        let md = Report {
            started,
            sections: vec![imports::section(&figures)],
        }
        .render();
        print!("{md}");
        return Ok(());
    }

    eprintln!("generating {} signed records...", n + DIFF);
    let t = Instant::now();
    let records = corpus::generate(0..n + DIFF, &authors);
    let signing = Signing::of(&records, t.elapsed());
    eprintln!("measuring the batch-verification ceiling...");
    let ceiling = Ceiling::measure(&records[..records.len().min(100_000)]);
    let records = replication::spread_differences(records, n);

    let rt = tokio::runtime::Runtime::new()?;
    let (replicated, searched, aggregated, portaled, loaded, federated, imported) =
        rt.block_on(async {
            // Search runs on the two nodes replication leaves full, then the
            // load on b.
            let (a, b) = nodes::pair(&authors).await?;
            let replicated = replication::run(n, &records, &a, &b).await?;
            let searched = search::run(n, &records, &authors, &a, &b).await?;
            let aggregated = aggregates::run(&a, &b).await?;
            a.shutdown().await;
            let portaled = portal::run(&b, &records).await?;
            let loaded = load::run(&b, &authors, replicated.full_rate(n)).await?;
            b.shutdown().await;
            eprintln!("{}-node federations...", federation::NODES);
            let federated = federation::run().await?;
            let imported = imports::run(&authors).await?;
            anyhow::Ok((
                replicated, searched, aggregated, portaled, loaded, federated, imported,
            ))
        })?;

    let md = Report {
        started,
        sections: vec![
            replication::section(n, &signing, &ceiling, &replicated, &federated),
            search::section(n, &replicated, &searched),
            aggregates::section(&aggregated),
            portal::section(&portaled),
            load::section(&loaded),
            imports::section(&imported),
        ],
    }
    .render();
    std::fs::write(&out, &md).with_context(|| format!("cannot write {}", out.display()))?;
    print!("{md}");
    eprintln!("wrote {}", out.display());
    Ok(())
}
