//! Federations of `NODES` nodes, a chain and a random graph: how long a
//! record published on one node takes to reach every node, relayed hop by
//! hop through live announcements.

use std::time::{Duration, Instant};

use maillage_record::model::Dataset;
use maillage_record::{Body, PublicKey, Record, SigningKey, Visibility, envelope};

use crate::nodes::{BenchNode, Starting};
use crate::report::{Row, pct};

pub const NODES: usize = 20;

/// Milliseconds from publishing to every node holding the record.
pub struct Federation {
    chain: Vec<u64>,
    random: Vec<u64>,
    /// To the origin's neighbour, in both topologies.
    one_hop: Vec<u64>,
}

/// Publish on one node, wait until every node holds the record.
pub async fn run() -> anyhow::Result<Federation> {
    let mut chain = Vec::new();
    let mut random = Vec::new();
    let mut one_hop = Vec::new();
    for topology in ["chain", "random"] {
        let mut started = Vec::new();
        for i in 0..NODES {
            started.push(Starting::new(100 + i).await?);
        }
        for (p, q) in &edges(topology == "random") {
            for (x, y) in [(*p, *q), (*q, *p)] {
                started[x].pin(&format!("n{y}"), &started[y])?;
            }
        }
        for x in &started {
            for y in &started {
                x.trust(y.public_key())?;
            }
        }
        // Peers are pinned before `run`: each node starts its links at once.
        let nodes: Vec<BenchNode> = started.into_iter().map(Starting::run).collect();
        // Let every link subscribe and converge on the organisation records.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let key = SigningKey::from_bytes(&[9; 32]);
        for x in &nodes {
            x.trust(PublicKey(key.verifying_key().to_bytes()))?;
        }
        for round in 0..10 {
            let origin = if topology == "chain" {
                0
            } else {
                round % NODES
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
            nodes[origin].publish(rec).await?;
            let mut first_hop = None;
            loop {
                let neighbour = if origin + 1 < NODES {
                    origin + 1
                } else {
                    origin - 1
                };
                if first_hop.is_none() && nodes[neighbour].holds(&id)? {
                    first_hop = Some(t.elapsed().as_millis() as u64);
                }
                if nodes.iter().all(|x| x.holds(&id).unwrap_or(false)) {
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
        for x in nodes {
            x.shutdown().await;
        }
    }
    Ok(Federation {
        chain,
        random,
        one_hop,
    })
}

/// A chain of every node; for `random`, closed into a ring plus chords from
/// a fixed pseudo-random sequence: connected, small diameter.
fn edges(random: bool) -> Vec<(usize, usize)> {
    let mut edges: Vec<(usize, usize)> = (0..NODES - 1).map(|i| (i, i + 1)).collect();
    if random {
        edges.push((NODES - 1, 0));
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..NODES {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (p, q) = (
                (x % NODES as u64) as usize,
                ((x >> 20) % NODES as u64) as usize,
            );
            if p != q && !edges.contains(&(p, q)) && !edges.contains(&(q, p)) {
                edges.push((p, q));
            }
        }
    }
    edges
}

impl Federation {
    /// Rows of the replication table.
    pub fn rows(&self) -> Vec<Row> {
        let one_hop = pct(&self.one_hop, 50);
        [("chain", &self.chain), ("random graph", &self.random)]
            .into_iter()
            .map(|(topology, times)| {
                Row::new(
                    format!(
                        "publish → visible on all {NODES} nodes, {topology} (p50 / max of {})",
                        times.len()
                    ),
                    format!("{} / {} ms", pct(times, 50), pct(times, 100)),
                )
                .baseline(
                    format!("one hop: {one_hop} ms"),
                    pct(times, 50) as f64 / one_hop.max(1) as f64,
                )
                .limit("< 2 s", pct(times, 100) < 2000)
            })
            .collect()
    }

    /// The note under the replication table.
    pub fn note() -> String {
        format!(
            "Federation: {NODES} nodes, each a real server with its own RocksDB; a record \
             published on one end is relayed hop by hop through live announcements."
        )
    }
}
