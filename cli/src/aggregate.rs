//! `maillage aggregate`: publish a territory's signed statistics (or a
//! roll-up of other aggregates), and verify one against what this node
//! holds (docs/aggregates.md).

use std::path::Path;

use anyhow::Context;
use maillage_record::json::record_to_json;
use maillage_record::model::{Aggregate, Figure};
use maillage_record::{Body, PublicKey, Record, RecordId, wire};
use serde_json::json;

use crate::connect::{NodeConn, refused};

fn aggregate_of(payload: Option<maillage_proto::v1::Payload>) -> anyhow::Result<Record> {
    let payload = payload.context("the node answered without the aggregate")?;
    Ok(wire::payload_from_proto(payload)?)
}

pub async fn publish(
    dir: &Path,
    territory: &str,
    period: Option<&str>,
    combine: &[String],
    json_out: bool,
) -> anyhow::Result<()> {
    let combine = combine
        .iter()
        .map(|id| {
            RecordId::parse_hex(id)
                .map(|id| id.0.to_vec())
                .with_context(|| {
                    format!("--combine '{id}': an aggregate's record id is 64 hex characters")
                })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let conn = NodeConn::open(dir).await?;
    let answer = conn
        .admin()
        .aggregate_publish(maillage_proto::v1::AggregatePublishRequest {
            territory: territory.to_string(),
            period: period.unwrap_or_default().to_string(),
            combine,
        })
        .await
        .map_err(refused)?
        .into_inner();
    let published = answer
        .published
        .context("the node answered without the record id")?;
    let id = RecordId::from_slice(&published.id).context("the node answered a bad record id")?;
    let record = aggregate_of(answer.payload)?;
    if json_out {
        let doc = json!({
            "id": id.to_hex(), "record_id": published.record_id, "version": published.version,
            "record": record_to_json(&record),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!("{}", id.to_hex());
    if let Body::Aggregate(a) = &record.body {
        print_figures(a);
        eprintln!(
            "published {} version {}: {} {} organisation(s); verify it anywhere with  maillage aggregate verify {}",
            published.record_id,
            published.version,
            if a.combines.is_empty() {
                "computed from the records of".to_string()
            } else {
                format!("the sum of {} aggregates, over", a.combines.len())
            },
            a.organisations.len(),
            id.to_hex()
        );
    }
    Ok(())
}

pub async fn verify(dir: &Path, id: &str, json_out: bool) -> anyhow::Result<()> {
    let id = RecordId::parse_hex(id)
        .with_context(|| format!("'{id}' is not a record id (64 hex characters)"))?;
    let conn = NodeConn::open(dir).await?;
    let answer = conn
        .admin()
        .aggregate_verify(maillage_proto::v1::AggregateVerifyRequest { id: id.0.to_vec() })
        .await
        .map_err(refused)?
        .into_inner();
    let record = aggregate_of(answer.payload)?;
    let author = PublicKey::from_slice(&answer.author)
        .map(|k| k.to_hex())
        .unwrap_or_default();
    let matches = answer.findings.is_empty();
    if json_out {
        let doc = json!({
            "id": id.to_hex(), "author": author, "matches": matches,
            "findings": answer.findings, "inputs_here": answer.inputs_here,
            "record": record_to_json(&record),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if matches {
        println!(
            "match: {} ({}, by {author}) is what this node recomputes from the {} {} it holds",
            id.to_hex(),
            record.record_id,
            answer.inputs_here,
            if matches!(&record.body, Body::Aggregate(a) if !a.combines.is_empty()) {
                "aggregate(s) combined"
            } else {
                "record version(s)"
            }
        );
    } else {
        println!(
            "mismatch: {} ({}, by {author})",
            id.to_hex(),
            record.record_id
        );
        for f in &answer.findings {
            println!("  - {f}");
        }
    }
    if matches {
        Ok(())
    } else {
        anyhow::bail!(
            "aggregate {} does not match what this node holds: {} finding(s)",
            id.to_hex(),
            answer.findings.len()
        )
    }
}

fn print_figures(a: &Aggregate) {
    let shown = |f: &Figure| match (f.records, f.sum) {
        (None, _) => "secret".to_string(),
        (Some(r), None) => format!(
            "{}{r}  ({} org.)",
            if f.lower_bound { "≥ " } else { "" },
            f.organisations.unwrap_or(0)
        ),
        (Some(r), Some(s)) => format!(
            "{s} over {}{r}  ({} org.)",
            if f.lower_bound { "≥ " } else { "" },
            f.organisations.unwrap_or(0)
        ),
    };
    for f in &a.figures {
        let what = if f.value.is_empty() {
            f.group.clone()
        } else {
            format!("{} = {}", f.group, f.value)
        };
        println!("  {what:<44} {}", shown(f));
    }
}
