//! `MAILLAGE_BENCH_PROBE=DIR`: a developer's probe, not part of the report.
//! Keeps a node of N records in DIR (built once), then times each benchmark
//! query alone, in process, so a change to the query path can be measured in
//! seconds instead of a full benchmark run. `MAILLAGE_PROBE_VIEWER=anonymous`
//! searches as the public.

use std::path::Path;
use std::time::Instant;

use ed25519_dalek::SigningKey;
use maillage_node::config::Config;
use maillage_node::server;
use maillage_node::testkit::{Filters, SearchRequest, Viewer};

use crate::{corpus, nodes, search};

pub fn run(dir: &Path, n: usize, authors: &[SigningKey]) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let fresh = !dir.join("maillage.toml").exists();
    if fresh {
        std::fs::create_dir_all(dir)?;
        let key = maillage_record::keyfile::generate()?;
        maillage_record::keyfile::write_new(&dir.join("organisation.key"), &key)?;
        std::fs::write(
            dir.join("maillage.toml"),
            "[organisation]\nsiren = \"243100518\"\nname = \"probe\"\nkey_file = \"organisation.key\"\n\
             [node]\ngrpc_listen = \"127.0.0.1:0\"\n[log]\nlevel = \"warn\"\n",
        )?;
    }
    let path = dir.join("maillage.toml");
    let config = Config::parse(&path, &std::fs::read_to_string(&path)?)?;
    rt.block_on(async {
        let started = server::start(&config).await?;
        let node = started.node.clone();
        // What `server::run` would do; the probe needs no ports.
        let _indexer = node.indexer().spawn();
        let loading = Instant::now();
        if fresh {
            eprintln!("probe: generating and storing {n} records...");
            for first in (0..n).step_by(100_000) {
                let recs = corpus::generate(first..(first + 100_000).min(n), authors);
                let node = node.clone();
                tokio::task::spawn_blocking(move || nodes::load(&node, &recs)).await??;
            }
        }
        if std::env::var_os("MAILLAGE_PROBE_REINDEX").is_some() {
            node.search().request_reindex();
        }
        let t = Instant::now();
        nodes::indexed(&node).await;
        eprintln!(
            "probe: indexed ({:.1} s after storing; {:.1} s in all)",
            t.elapsed().as_secs_f64(),
            loading.elapsed().as_secs_f64()
        );
        eprintln!("probe: {} segments", node.search().segments());
        // As whom: the operator (default), or `anonymous`, whose scores are
        // counted over the public records only.
        let viewer = match std::env::var("MAILLAGE_PROBE_VIEWER").as_deref() {
            Ok("anonymous") => Viewer::Anonymous,
            _ => Viewer::Operator,
        };
        eprintln!("probe: searching as {viewer:?}");
        let reps: usize = std::env::var("MAILLAGE_PROBE_REPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10);
        // Milliseconds per search of `req` computed from the index (the
        // caches emptied before each), then answered from the caches; and
        // its total.
        let time = |req: &SearchRequest| -> anyhow::Result<(f64, f64, u64)> {
            let mut total = 0;
            let mut spent = [0.0; 2];
            for (cached, spent) in spent.iter_mut().enumerate() {
                for _ in 0..reps {
                    if cached == 0 {
                        node.search().clear_caches();
                    }
                    let t = Instant::now();
                    total = node.search().search(req, &viewer, 0)?.total;
                    *spent += t.elapsed().as_secs_f64() * 1000.0 / reps as f64;
                }
            }
            Ok((spent[0], spent[1], total))
        };
        println!("   index   cached    total");
        let (mut all, mut all_cached) = (0.0, 0.0);
        for (words, kind, territory) in search::QUERIES {
            let req = SearchRequest {
                text: words.to_string(),
                filters: Filters {
                    kind: kind.map(|k| maillage_record::Kind::parse(k).expect("kind")),
                    territory: territory.map(str::to_string),
                    ..Filters::default()
                },
                page: 1,
                page_size: 20,
            };
            let (ms, cached, total) = time(&req)?;
            all += ms;
            all_cached += cached;
            println!("{ms:8.2} {cached:8.3} {total:8} {words:?} {kind:?} {territory:?}");
        }
        let n = search::QUERIES.len() as f64;
        println!("{:8.2} {:8.3} ms mean", all / n, all_cached / n);
        // Browsing (no words), as a catalogue's front page does: every
        // record matches. Not among the benchmark's queries.
        for kind in [None, Some(maillage_record::Kind::Project)] {
            let req = SearchRequest {
                filters: Filters {
                    kind,
                    ..Filters::default()
                },
                page: 1,
                page_size: 20,
                ..SearchRequest::default()
            };
            let (ms, cached, total) = time(&req)?;
            println!("{ms:8.2} {cached:8.3} {total:8} browsing, kind {kind:?}");
        }
        // Different searches, each asked once, as the benchmark's
        // "different search each time" clients ask them.
        let (mut spent, mut totals) = (0.0, Vec::new());
        let distinct = 200;
        for i in 0..distinct {
            let req = SearchRequest {
                text: corpus::distinct_query(i),
                page: 1,
                page_size: 20,
                ..SearchRequest::default()
            };
            let t = Instant::now();
            totals.push(node.search().search(&req, &viewer, 0)?.total);
            spent += t.elapsed().as_secs_f64() * 1000.0;
        }
        totals.sort_unstable();
        println!(
            "{:8.2} ms mean of {distinct} different searches (median {} matches)",
            spent / distinct as f64,
            totals[distinct / 2]
        );
        // The same different searches asked by 1, 2 and 8 threads at once,
        // the caches emptied first: how much does a search slow down beside
        // others (the computing pool runs one per core)?
        let others: Vec<String> = (distinct..2 * distinct).map(corpus::distinct_query).collect();
        for threads in [1, 2, 8] {
            node.search().clear_caches();
            let t = Instant::now();
            std::thread::scope(|scope| -> anyhow::Result<()> {
                let handles: Vec<_> = (0..threads)
                    .map(|k| {
                        let (node, others, viewer) = (&node, &others, &viewer);
                        scope.spawn(move || -> anyhow::Result<()> {
                            for text in others.iter().skip(k).step_by(threads) {
                                let req = SearchRequest {
                                    text: text.clone(),
                                    page: 1,
                                    page_size: 20,
                                    ..SearchRequest::default()
                                };
                                node.search().search(&req, viewer, 0)?;
                            }
                            Ok(())
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .try_for_each(|h| h.join().expect("probe thread"))
            })?;
            let wall = t.elapsed().as_secs_f64() * 1000.0;
            println!(
                "{:8.2} ms of wall time per search, {threads} thread(s) asking {} other different searches",
                wall / others.len() as f64,
                others.len()
            );
        }
        anyhow::Ok(())
    })
}
