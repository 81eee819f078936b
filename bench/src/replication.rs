//! Replication between two nodes (issue 4): a first full sync against the
//! machine's batch-verification ceiling, then reconciling sets that differ a
//! little, or not at all, against negentropy alone in memory.

use std::time::{Duration, Instant};

use maillage_record::{VerifiedRecord, envelope};
use negentropy::{Id, Negentropy, NegentropyStorageVector};

use crate::federation::Federation;
use crate::nodes::{BenchNode, FETCH_BATCH_RECORDS, FRAME_LIMIT, SyncReport};
use crate::report::{Row, Section, human};

/// Records the two nodes do not share when they reconcile.
pub const DIFF: usize = 1_000;

/// How the records were made: the introduction of the section tells it.
pub struct Signing {
    /// Records signed per second, on all cores.
    pub rate: f64,
    pub avg_bytes: usize,
}

impl Signing {
    pub fn of(records: &[VerifiedRecord], elapsed: Duration) -> Signing {
        Signing {
            rate: records.len() as f64 / elapsed.as_secs_f64(),
            avg_bytes: records
                .iter()
                .map(|r| r.envelope_bytes().len())
                .sum::<usize>()
                / records.len().max(1),
        }
    }
}

/// This machine batch-verifying the same envelopes (records/s): the ceiling
/// a full sync is compared to.
pub struct Ceiling {
    pub one_core: f64,
    pub all_cores: f64,
}

impl Ceiling {
    /// Batch verification of these envelopes, as many at a time as a fetch
    /// batch holds, on one core and on every core.
    pub fn measure(records: &[VerifiedRecord]) -> Ceiling {
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
        let one_core = one(&envs);
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
        let per = envs.len().div_ceil(threads);
        let t = Instant::now();
        std::thread::scope(|s| {
            for c in envs.chunks(per) {
                s.spawn(move || one(c));
            }
        });
        let ceiling = Ceiling {
            one_core,
            all_cores: envs.len() as f64 / t.elapsed().as_secs_f64(),
        };
        eprintln!("{}", ceiling.text());
        ceiling
    }

    fn text(&self) -> String {
        format!(
            "batch verify: {:.0}/s all cores, {:.0}/s one core",
            self.all_cores, self.one_core
        )
    }
}

/// Reorders `records` so the last DIFF are taken evenly from the whole range:
/// the differences two nodes reconcile are spread over the whole set, as
/// real differences are, not bunched at its end.
pub fn spread_differences(records: Vec<VerifiedRecord>, n: usize) -> Vec<VerifiedRecord> {
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

pub struct Replication {
    pub full: SyncReport,
    /// Storing the first N records in node a, and until they were indexed.
    pub load_elapsed: Duration,
    pub index_elapsed: Duration,
    /// How long b's index took to catch up once its full sync ended.
    pub index_lag: Duration,
    diff: Diff,
    same: SyncReport,
    same_alone_bytes: u64,
}

struct Diff {
    report: SyncReport,
    alone_rounds: u32,
    alone_bytes: u64,
    alone_time: Duration,
}

impl Replication {
    /// Records per second of the first full sync.
    pub fn full_rate(&self, n: usize) -> f64 {
        n as f64 / self.full.elapsed.as_secs_f64()
    }
}

/// Loads the first `n` of `records` into a, syncs them all to b, then
/// reconciles with the DIFF last records split between the two, then with
/// identical sets. Leaves both nodes holding all `records`.
pub async fn run(
    n: usize,
    records: &[VerifiedRecord],
    a: &BenchNode,
    b: &BenchNode,
) -> anyhow::Result<Replication> {
    eprintln!("loading {n} records into node a, and indexing them...");
    let t = Instant::now();
    a.load(records[..n].to_vec()).await?;
    let load_elapsed = t.elapsed();
    a.indexed().await;
    let index_elapsed = t.elapsed();
    eprintln!(
        "stored in {:.1} s, indexed in {:.1} s",
        load_elapsed.as_secs_f64(),
        index_elapsed.as_secs_f64()
    );
    eprintln!("first full sync of {n} records to node b...");
    let full = b.sync("a").await?;
    eprintln!(
        "full sync: {:.0} records/s",
        n as f64 / full.elapsed.as_secs_f64()
    );
    anyhow::ensure!(
        full.intake.stored as usize == n,
        "full sync stored {} of {n}",
        full.intake.stored
    );
    let index_lag = b.indexed().await;
    eprintln!(
        "b's index caught up {:.1} s after the sync",
        index_lag.as_secs_f64()
    );

    // Each side gets half of DIFF records the other lacks.
    eprintln!("reconciling {n} vs {n} with {DIFF} differences...");
    let extra = &records[n..n + DIFF];
    a.load(extra[..DIFF / 2].to_vec()).await?;
    b.load(extra[DIFF / 2..].to_vec()).await?;
    let mut a_set = items(&records[..n]);
    a_set.extend(items(&extra[..DIFF / 2]));
    let mut b_set = items(&records[..n]);
    b_set.extend(items(&extra[DIFF / 2..]));
    // The organisation records of the two nodes are in both stores too: count them.
    let (alone_rounds, alone_bytes, alone_time) = negentropy_alone(&b_set, &a_set);
    let report = b.sync("a").await?;
    let diff = Diff {
        report,
        alone_rounds,
        alone_bytes,
        alone_time,
    };
    // b now has a's half; a pulls b's half: identical sets.
    a.sync("b").await?;
    eprintln!("reconciling identical sets...");
    let same = b.sync("a").await?;
    let all = items(&records[..n + DIFF]);
    let (_, same_alone_bytes, _) = negentropy_alone(&all, &all);
    Ok(Replication {
        full,
        load_elapsed,
        index_elapsed,
        index_lag,
        diff,
        same,
        same_alone_bytes,
    })
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
    let mut client = Negentropy::owned(cs, FRAME_LIMIT).unwrap();
    let mut server = Negentropy::owned(ss, FRAME_LIMIT).unwrap();
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

/// The replication section: these figures, then the federation's.
pub fn section(
    n: usize,
    signing: &Signing,
    ceiling: &Ceiling,
    r: &Replication,
    federation: &Federation,
) -> Section {
    let full_rate = r.full_rate(n);
    let d = &r.diff;
    let s = &r.same;
    let differing = format!("{n} vs {n}, {DIFF} differences");
    let mut rows = vec![
        Row::new(
            "first full sync: records/s (verify, trust, store)",
            format!("{full_rate:.0}/s ({:.1} s)", r.full.elapsed.as_secs_f64()),
        )
        .baseline(ceiling.text(), full_rate / ceiling.all_cores)
        .limit(
            "≥ 0.5 × batch verify (all cores)",
            full_rate >= 0.5 * ceiling.all_cores,
        ),
        Row::new(
            format!("{differing}: round trips"),
            d.report.round_trips.to_string(),
        )
        .baseline(
            format!("negentropy alone: {}", d.alone_rounds),
            d.report.round_trips as f64 / d.alone_rounds.max(1) as f64,
        )
        .limit("≤ 4", d.report.round_trips <= 4),
        Row::new(
            format!("{differing}: bytes on the wire (TLS included) to reconcile"),
            human(d.report.wire_reconcile),
        )
        .baseline(
            format!("negentropy alone: {}", human(d.alone_bytes)),
            d.report.wire_reconcile as f64 / d.alone_bytes.max(1) as f64,
        )
        .limit(
            "≤ 2 × negentropy alone",
            d.report.wire_reconcile <= 2 * d.alone_bytes,
        ),
        Row::new(
            format!("{differing}: time to reconcile"),
            format!("{} ms", d.report.reconcile_elapsed.as_millis()),
        )
        .baseline(
            format!("negentropy alone: {} ms", d.alone_time.as_millis()),
            d.report.reconcile_elapsed.as_secs_f64() / d.alone_time.as_secs_f64().max(1e-6),
        )
        .limit("< 1 s", d.report.reconcile_elapsed < Duration::from_secs(1)),
        Row::new(
            format!("{differing}: reconcile and fetch {} records", d.report.need),
            format!(
                "{} ms, {}",
                d.report.elapsed.as_millis(),
                human(d.report.wire_total)
            ),
        ),
        Row::new(
            format!("{n} vs {n}, identical: round trips and bytes"),
            format!("{} round trip, {}", s.round_trips, human(s.wire_reconcile)),
        )
        .baseline(
            format!("negentropy alone: {}", human(r.same_alone_bytes)),
            s.wire_reconcile as f64 / r.same_alone_bytes.max(1) as f64,
        )
        .limit(
            "1 round trip, a few KB",
            s.round_trips == 1 && s.wire_reconcile < 16 * 1024,
        ),
    ];
    rows.extend(federation.rows());
    Section {
        title: "Replication (issue 4)",
        intro: format!(
            "{n} records by 1,000 authors (datasets named after collectivities of \
             `data/collectivites.csv`, {} bytes per envelope on average); signing ran at \
             {:.0}/s on all cores.",
            signing.avg_bytes, signing.rate
        ),
        rows,
        notes: vec![
            "\"negentropy alone\" runs the same two sets through the `negentropy` crate in \
             memory, with the same 512 KiB frame limit: no TLS, no gRPC. Our figure counts every \
             TCP byte of the connection, TLS handshake included."
                .into(),
            "The full sync shares the machine with the node it pulls from (both in this process)."
                .into(),
            Federation::note(),
        ],
    }
}
