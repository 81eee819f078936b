//! `maillage search`, `maillage stats` and `maillage reindex`. Search hits
//! come with their envelopes, and each is verified here: the CLI trusts
//! signatures, not the node.

use std::path::Path;

use maillage_proto::v1::{
    Bucket, ReindexRequest, SearchFilters, SearchHit, SearchRequest, StatsRequest,
};
use maillage_record::json::format_time;
use maillage_record::{Kind, PublicKey, envelope, wire};
use serde_json::{Value, json};

use crate::connect::{NodeConn, refused};

/// The filters of `search` and `stats`, as typed.
#[derive(Debug, Default, clap::Args)]
pub struct FilterArgs {
    /// Only this kind.
    #[arg(long, value_parser = crate::kinds())]
    pub kind: Option<String>,
    /// A project theme (mobilites, "Transition écologique", ...) or a dataset theme.
    #[arg(long)]
    pub theme: Option<String>,
    /// A commune (INSEE code), EPCI (SIREN), département (69, 2A) or région
    /// (reg:84): records of every place inside it match.
    #[arg(long)]
    pub territory: Option<String>,
    /// The organisation's SIREN.
    #[arg(long)]
    pub org: Option<String>,
    /// A project status: experimentation, deploiement, termine, abandonne.
    #[arg(long)]
    pub status: Option<String>,
    /// An AI Act risk category.
    #[arg(long)]
    pub risk: Option<String>,
    /// A licence id (etalab-2.0, odbl, ...) or URI.
    #[arg(long)]
    pub licence: Option<String>,
}

impl FilterArgs {
    fn to_proto(&self) -> anyhow::Result<SearchFilters> {
        let kind = match &self.kind {
            None => 0,
            Some(k) => wire::kind_to_proto(Kind::parse(k)?) as i32,
        };
        let s = |o: &Option<String>| o.clone().unwrap_or_default();
        Ok(SearchFilters {
            kind,
            theme: s(&self.theme),
            territory: s(&self.territory),
            organisation: s(&self.org),
            status: s(&self.status),
            risk: s(&self.risk),
            licence: s(&self.licence),
        })
    }
}

pub async fn search(
    dir: &Path,
    query: &str,
    filters: &FilterArgs,
    page: u32,
    json_out: bool,
) -> anyhow::Result<()> {
    let request = SearchRequest {
        query: query.to_string(),
        filters: Some(filters.to_proto()?),
        page,
        page_size: 0,
        with_envelopes: true,
    };
    let conn = NodeConn::open(dir).await?;
    let started = std::time::Instant::now();
    let resp = conn
        .catalogue()
        .search(request)
        .await
        .map_err(refused)?
        .into_inner();
    let took = started.elapsed();
    let hits: Vec<(SearchHit, Verdict)> = resp
        .hits
        .into_iter()
        .map(|h| {
            let v = verdict(&h);
            (h, v)
        })
        .collect();
    if json_out {
        let hits: Vec<Value> = hits.iter().map(|(h, v)| hit_json(h, v)).collect();
        let facets: serde_json::Map<String, Value> = resp
            .facets
            .iter()
            .map(|f| (f.name.clone(), buckets_json(&f.buckets)))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "query": query,
                "total": resp.total,
                "page": resp.page,
                "page_size": resp.page_size,
                "hits": hits,
                "facets": facets,
                "indexed_seq": resp.indexed_seq,
                "stored_seq": resp.stored_seq,
            }))?
        );
        return Ok(());
    }
    let plural = if resp.total == 1 { "" } else { "s" };
    let what = if query.trim().is_empty() {
        format!("record{plural}")
    } else {
        format!("result{plural} for \"{}\"", query.trim())
    };
    println!(
        "{} {what} (page {}, {} ms)",
        resp.total,
        resp.page,
        took.as_millis()
    );
    if resp.indexed_seq < resp.stored_seq {
        println!(
            "note: the index is {} changes behind the store; the newest records are not searchable yet",
            resp.stored_seq - resp.indexed_seq
        );
    }
    let first = (resp.page.max(1) as u64 - 1) * resp.page_size as u64;
    for (i, (h, v)) in hits.iter().enumerate() {
        let kind = wire::kind_from_proto(h.kind)
            .ok()
            .flatten()
            .map_or("?", Kind::label);
        println!();
        println!("{:>3}. {}  [{kind}]", first + i as u64 + 1, h.title);
        let org = match (h.organisation_name.as_str(), h.organisation_siren.as_str()) {
            ("", "") => "organisation unknown".to_string(),
            (name, "") => name.to_string(),
            ("", siren) => format!("SIREN {siren}"),
            (name, siren) => format!("{name} (SIREN {siren})"),
        };
        let from = match h.relayed_by.as_str() {
            "" => "published here".to_string(),
            peer => format!("relayed by peer '{peer}'"),
        };
        println!(
            "     {org} · {} · {from}, {}",
            v.text(),
            format_time(h.received_at_ms)
        );
        println!("     id {}", hex::encode(&h.id));
    }
    if resp.total > 0 {
        println!();
        for f in &resp.facets {
            if f.buckets.is_empty() {
                continue;
            }
            let values: Vec<String> = f
                .buckets
                .iter()
                .map(|b| format!("{} {}", b.label, b.count))
                .collect();
            println!("{:<14}{}", format!("{}:", f.name), values.join(" · "));
        }
    }
    if hits.iter().any(|(_, v)| matches!(v, Verdict::Invalid(_))) {
        anyhow::bail!("the node sent records whose signature does not verify (marked above)");
    }
    Ok(())
}

/// What the CLI found when it checked a hit's envelope.
enum Verdict {
    Verified,
    /// The node did not send it (it became invisible or was superseded
    /// between the search and the read).
    Unchecked,
    Invalid(String),
}

impl Verdict {
    fn text(&self) -> String {
        match self {
            Verdict::Verified => "signature verified".into(),
            Verdict::Unchecked => "signature not checked (record changed meanwhile)".into(),
            Verdict::Invalid(e) => format!("SIGNATURE INVALID: {e}"),
        }
    }
}

fn verdict(h: &SearchHit) -> Verdict {
    let Some(env) = &h.envelope else {
        return Verdict::Unchecked;
    };
    match envelope::verify(env) {
        Ok(rec) if rec.id().0.as_slice() == h.id.as_slice() => Verdict::Verified,
        Ok(rec) => Verdict::Invalid(format!(
            "the node sent {} for {}",
            rec.id(),
            hex::encode(&h.id)
        )),
        Err(e) => Verdict::Invalid(e.to_string()),
    }
}

fn hit_json(h: &SearchHit, v: &Verdict) -> Value {
    json!({
        "id": hex::encode(&h.id),
        "record_id": h.record_id,
        "version": h.version,
        "kind": wire::kind_from_proto(h.kind).ok().flatten().map(Kind::as_str),
        "title": h.title,
        "author": PublicKey::from_slice(&h.author).map(|k| k.to_hex()),
        "organisation": {
            "siren": (!h.organisation_siren.is_empty()).then_some(&h.organisation_siren),
            "name": (!h.organisation_name.is_empty()).then_some(&h.organisation_name),
        },
        "signature": match v {
            Verdict::Verified => "verified".to_string(),
            Verdict::Unchecked => "unchecked".to_string(),
            Verdict::Invalid(e) => format!("invalid: {e}"),
        },
        "author_trust": (!h.author_trust.is_empty()).then_some(&h.author_trust),
        "siren_source": (!h.siren_source.is_empty()).then_some(&h.siren_source),
        "relayed_by": (!h.relayed_by.is_empty()).then_some(&h.relayed_by),
        "received_at": format_time(h.received_at_ms),
        "score": h.score,
    })
}

fn buckets_json(b: &[Bucket]) -> Value {
    b.iter()
        .map(|b| json!({"value": b.value, "label": b.label, "count": b.count}))
        .collect()
}

pub async fn stats(
    dir: &Path,
    filters: &FilterArgs,
    by: &str,
    json_out: bool,
) -> anyhow::Result<()> {
    let conn = NodeConn::open(dir).await?;
    let resp = conn
        .catalogue()
        .stats(StatsRequest {
            filters: Some(filters.to_proto()?),
            by: by.to_string(),
        })
        .await
        .map_err(refused)?
        .into_inner();
    let p = resp.projects.unwrap_or_default();
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "total": resp.total,
                "by": resp.by,
                "groups": buckets_json(&resp.groups),
                "projects": {
                    "count": p.projects,
                    "by_status": buckets_json(&p.by_status),
                    "by_risk": buckets_json(&p.by_risk),
                    "with_details": p.with_details,
                    "by_budget": buckets_json(&p.by_budget),
                    "energy_kwh_per_year": p.energy_kwh_per_year,
                    "energy_reported": p.energy_reported,
                    "emissions_kgco2e_per_year": p.emissions_kgco2e_per_year,
                    "emissions_reported": p.emissions_reported,
                },
                "indexed_seq": resp.indexed_seq,
                "stored_seq": resp.stored_seq,
            }))?
        );
        return Ok(());
    }
    let scope = filters
        .territory
        .as_deref()
        .map_or(String::new(), |t| format!(" in {t}"));
    println!("{} records{scope}, by {}:", resp.total, resp.by);
    print_buckets(&resp.groups);
    if p.projects > 0 || p.with_details > 0 {
        println!();
        println!("AI projects: {}", p.projects);
        if !p.by_status.is_empty() {
            println!("  by status:");
            print_buckets(&p.by_status);
        }
        if !p.by_risk.is_empty() {
            println!("  by AI Act risk category:");
            print_buckets(&p.by_risk);
        }
        println!("  details visible for {} of them", p.with_details);
        if !p.by_budget.is_empty() {
            println!("  by budget:");
            print_buckets(&p.by_budget);
        }
        println!(
            "  energy: {} kWh/year (reported by {})",
            round(p.energy_kwh_per_year),
            p.energy_reported
        );
        println!(
            "  emissions: {} kgCO2e/year (reported by {})",
            round(p.emissions_kgco2e_per_year),
            p.emissions_reported
        );
    }
    if resp.indexed_seq < resp.stored_seq {
        println!(
            "note: the index is {} changes behind the store; the newest records are not counted yet",
            resp.stored_seq - resp.indexed_seq
        );
    }
    Ok(())
}

fn round(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

fn print_buckets(b: &[Bucket]) {
    let width = b.iter().map(|b| b.label.chars().count()).max().unwrap_or(0);
    for b in b {
        let pad = width - b.label.chars().count();
        println!("    {}{}  {:>8}", b.label, " ".repeat(pad), b.count);
    }
}

pub async fn reindex(dir: &Path, wait: bool, json_out: bool) -> anyhow::Result<()> {
    let conn = NodeConn::open(dir).await?;
    let resp = conn
        .admin()
        .reindex(ReindexRequest {})
        .await
        .map_err(refused)?
        .into_inner();
    if !wait {
        if json_out {
            println!("{}", json!({"last_seq": resp.last_seq}));
        } else {
            println!(
                "rebuilding the search index from the store ({} changes); searches use the old index until it is done: `maillage status` shows indexed_seq",
                resp.last_seq
            );
        }
        return Ok(());
    }
    // Until the rebuild is committed and the index follows the store again.
    use std::io::IsTerminal;
    let bar = (!json_out && std::io::stderr().is_terminal())
        .then(|| crate::progress::bar(resp.last_seq, "changes indexed"));
    let began = std::time::Instant::now();
    let mut seen_rebuilding = false;
    loop {
        let s = conn
            .admin()
            .status(maillage_proto::v1::StatusRequest {})
            .await
            .map_err(refused)?
            .into_inner();
        if let Some(bar) = &bar {
            bar.set_length(s.last_seq.max(1));
            bar.set_position(if s.search_rebuilding {
                s.rebuilt_seq
            } else {
                s.indexed_seq
            });
        }
        seen_rebuilding |= s.search_rebuilding;
        // The request is taken up within a poll: a rebuild too quick to be
        // seen is over once the index follows the store again.
        let settled = !s.search_rebuilding
            && s.indexed_seq >= resp.last_seq
            && (seen_rebuilding || began.elapsed() > std::time::Duration::from_secs(2));
        if settled {
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            if json_out {
                println!(
                    "{}",
                    json!({"last_seq": resp.last_seq, "indexed_seq": s.indexed_seq,
                        "millis": began.elapsed().as_millis() as u64})
                );
            } else {
                println!(
                    "search index rebuilt: {} changes in {:.1} s",
                    s.indexed_seq,
                    began.elapsed().as_secs_f64()
                );
            }
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}
