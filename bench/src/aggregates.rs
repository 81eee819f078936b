//! Signed aggregates (issue 23) on the two nodes replication leaves full:
//! a région's aggregate computed, signed and stored on one node, verified
//! on the other; then one aggregate per département, and their roll-up.

use std::time::{Duration, Instant};

use maillage_node::testkit::{self, Filters, Viewer};
use maillage_record::{Body, RecordId};

use crate::nodes::BenchNode;
use crate::report::{Row, Section};

/// The territory of the big aggregate: the métropole the bench nodes speak
/// for (`nodes.rs`), whose communes' records node a publishes on their
/// behalf, as a chef de file does.
const REGION: &str = "243100518";
/// Records published for its communes.
const MEMBER_RECORDS: usize = 100_000;
/// Aggregates the roll-up combines.
const ROLLED_UP: usize = 100;

pub struct AggregateFigures {
    /// Record versions counted (as the verifier found them), and the
    /// organisations they come from.
    records: u64,
    organisations: usize,
    /// The aggregate of the région: computed, signed, stored.
    compute: Duration,
    /// The région's statistics by theme, as `/stats` counts them (uncached).
    stats: Duration,
    /// Its verification on the other node, and what it found.
    verify: Duration,
    verified_inputs: u64,
    findings: Vec<String>,
    /// One aggregate per département: the median, and the roll-up of them.
    per_departement: Duration,
    rollup: Duration,
    rolled_up: usize,
}

fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> impl std::future::Future<Output = anyhow::Result<T>> {
    async move {
        tokio::task::spawn_blocking(f)
            .await?
            .map_err(|e| anyhow::anyhow!(e))
    }
}

/// `n` records of the métropole's communes, on their behalf, drafts.
fn member_records(n: usize) -> Vec<maillage_record::Record> {
    use maillage_record::model::{Agent, Provenance};
    let communes: Vec<&maillage_record::territory::Collectivity> =
        maillage_record::territory::all()
            .iter()
            .filter(|c| c.epci_siren.as_deref() == Some("243100518"))
            .collect();
    (0..n)
        .map(|i| {
            let c = communes[i % communes.len()];
            let mut r = crate::corpus::record(i);
            r.record_id = format!("membre-{i}");
            r.version = 0;
            r.issued_at_ms = 0;
            if i % 4 == 3 {
                r.visibility = maillage_record::Visibility::Federation;
            }
            r.provenance = Some(Provenance {
                source_format: "bench".into(),
                source: None,
                source_identifier: Some(format!("membre-{i}")),
                on_behalf_of: Some(Agent {
                    name: c.name.clone(),
                    siren: Some(c.siren.clone()),
                    url: None,
                }),
                as_written: Default::default(),
            });
            r
        })
        .collect()
}

pub async fn run(a: &BenchNode, b: &BenchNode) -> anyhow::Result<AggregateFigures> {
    eprintln!(
        "aggregates: {MEMBER_RECORDS} records of {REGION}'s communes, signed by a, on both nodes..."
    );
    b.trust(a.public_key())?;
    // What b learns a's SIREN from, as a peer trusting it would: a's own
    // Organisation record (signed here if the bench node has none).
    let node = a.node.clone();
    let org = match blocking(move || testkit::own_organisation(&node)).await? {
        Some(org) => org,
        None => {
            let node = a.node.clone();
            let draft = maillage_record::Record {
                record_id: "organisation".into(),
                version: 0,
                issued_at_ms: 0,
                visibility: maillage_record::Visibility::Public,
                provenance: None,
                body: Body::Organisation(maillage_record::model::Organisation::new(
                    maillage_record::Siren::parse(REGION).map_err(|e| anyhow::anyhow!("{e}"))?,
                    "Toulouse Métropole",
                )),
            };
            let mut signed = blocking(move || testkit::sign_own(&node, vec![draft])).await?;
            let org = signed.pop().expect("one signed");
            a.load(vec![org.clone()]).await?;
            org
        }
    };
    b.load(vec![org]).await?;
    let node = a.node.clone();
    let signed = blocking(move || testkit::sign_own(&node, member_records(MEMBER_RECORDS))).await?;
    a.load(signed.clone()).await?;
    b.load(signed).await?;
    a.indexed().await;
    b.indexed().await;
    eprintln!("aggregates: {REGION} on a, verified on b...");
    // The baseline: the same territory's statistics, counted by the index.
    let node = a.node.clone();
    let t = Instant::now();
    blocking(move || {
        let filters = Filters {
            territory: Some(REGION.into()),
            ..Filters::default()
        };
        node.search()
            .stats(
                &filters,
                testkit::GroupBy::Theme,
                &Viewer::Operator,
                node.store().last_seq(),
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await?;
    let stats = t.elapsed();

    let node = a.node.clone();
    let t = Instant::now();
    let rec = blocking(move || testkit::publish_aggregate(&node, REGION, &[])).await?;
    let compute = t.elapsed();
    let id = rec.id();
    let organisations = match &rec.record().body {
        Body::Aggregate(agg) => agg.organisations.len(),
        _ => 0,
    };
    b.publish(rec).await?;
    b.indexed().await;
    let node = b.node.clone();
    let t = Instant::now();
    let (verified_inputs, findings) =
        blocking(move || testkit::verify_aggregate(&node, &id)).await?;
    let verify = t.elapsed();
    let records = verified_inputs;

    eprintln!("aggregates: {ROLLED_UP} départements, then their roll-up...");
    let mut departements: Vec<String> = maillage_record::territory::all()
        .iter()
        .filter_map(|c| c.departement.clone())
        .collect();
    departements.sort();
    departements.dedup();
    departements.truncate(ROLLED_UP);
    let mut ids: Vec<RecordId> = Vec::new();
    let mut times = Vec::new();
    for dep in departements {
        let node = a.node.clone();
        let t = Instant::now();
        let rec = blocking(move || testkit::publish_aggregate(&node, &dep, &[])).await?;
        times.push(t.elapsed());
        ids.push(rec.id());
    }
    times.sort();
    let per_departement = times[times.len() / 2];
    let rolled_up = ids.len();
    let node = a.node.clone();
    let t = Instant::now();
    blocking(move || testkit::publish_aggregate(&node, "france", &ids)).await?;
    let rollup = t.elapsed();
    Ok(AggregateFigures {
        records,
        organisations,
        compute,
        stats,
        verify,
        verified_inputs,
        findings,
        per_departement,
        rollup,
        rolled_up,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn section(f: &AggregateFigures) -> Section {
    let verdict = if f.findings.is_empty() {
        format!("match, from {} records", f.verified_inputs)
    } else {
        format!(
            "**mismatch**, {} findings; the first: {}",
            f.findings.len(),
            f.findings[0]
        )
    };
    Section {
        title: "Signed aggregates",
        intro: format!(
            "The aggregate of a chef de file's territory (Toulouse Métropole, {REGION}: {} \
             records of {} organisations, {MEMBER_RECORDS} of them published by the node on \
             its communes' behalf, a quarter federation-only) computed, signed and stored on \
             one node that holds the whole corpus, then verified on the other, which holds the \
             same records; then one aggregate per département (the corpus' records are \
             examined; their authors speak for no organisation, so they are not counted) and a national roll-up of {} of them \
             (docs/aggregates.md).",
            f.records, f.organisations, f.rolled_up
        ),
        rows: vec![
            Row::new(
                format!(
                    "aggregate of a territory of {} records: compute, sign, store",
                    f.records
                ),
                format!("{:.0} ms", ms(f.compute)),
            )
            .baseline(
                format!("its statistics by theme, uncached: {:.0} ms", ms(f.stats)),
                ms(f.compute) / ms(f.stats).max(0.001),
            )
            .limit("< 2 s", f.compute < Duration::from_secs(2)),
            Row::new(
                "its verification on the other node",
                format!("{:.0} ms ({verdict})", ms(f.verify)),
            )
            .baseline(
                format!("computing it: {:.0} ms", ms(f.compute)),
                ms(f.verify) / ms(f.compute).max(0.001),
            )
            .limit(
                "< 2 s",
                f.verify < Duration::from_secs(2) && f.findings.is_empty(),
            ),
            Row::new(
                format!(
                    "roll-up of {} aggregates: combine, sign, store",
                    f.rolled_up
                ),
                format!("{:.1} ms", ms(f.rollup)),
            )
            .baseline(
                format!(
                    "one département's aggregate (median): {:.0} ms",
                    ms(f.per_departement)
                ),
                ms(f.rollup) / ms(f.per_departement).max(0.001),
            )
            .limit("< 100 ms", f.rollup < Duration::from_millis(100)),
        ],
        notes: vec![
            "A leaf aggregate reads its candidates' keys from the search index, then each \
             record's current version from the store (batched reads), and counts them; the \
             verifier does the same on its own store. A roll-up reads only the aggregates it \
             combines."
                .into(),
        ],
    }
}
