//! `maillage status`: what the node is and holds.

use std::path::Path;

use anyhow::Context;
use maillage_proto::v1::{HarvestNowRequest, HarvestStatus, StatusRequest};
use maillage_record::PublicKey;
use serde_json::{Map, Value, json};

use crate::connect::{NodeConn, explain};

pub async fn status(dir: &Path, json_out: bool) -> anyhow::Result<()> {
    let conn = NodeConn::open(dir).await?;
    let s = conn
        .admin()
        .status(StatusRequest {})
        .await
        .map_err(explain)?
        .into_inner();
    let key =
        PublicKey::from_slice(&s.public_key).context("the node answered with a malformed key")?;
    let by_kind: Map<String, Value> = s
        .current_by_kind
        .iter()
        .map(|k| (k.kind.clone(), Value::from(k.count)))
        .collect();
    let conflicts: Vec<Value> = s
        .conflicts
        .iter()
        .map(|c| {
            json!({
                "author": PublicKey::from_slice(&c.author).map(|k| k.to_hex()),
                "record_id": c.record_id,
                "version": c.version,
                "what": c.what,
            })
        })
        .collect();
    // Each author once, in the order the node lists them (by key).
    let mut conflicting_authors: Vec<Value> = Vec::new();
    for c in &conflicts {
        if !conflicting_authors.contains(&c["author"]) {
            conflicting_authors.push(c["author"].clone());
        }
    }
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "public_key": key.to_hex(),
                "siren": s.siren,
                "organisation": s.organisation_name,
                "grpc_listen": s.grpc_listen,
                "records": by_kind,
                "envelopes": s.envelopes,
                "last_seq": s.last_seq,
                "uptime_seconds": s.uptime_seconds,
                "store_bytes": s.store_bytes,
                "node_version": s.node_version,
                "peers": s.peers,
                "peers_healthy": s.peers_healthy,
                "trust_roots": s.trust_roots,
                "quarantined": s.quarantined,
                "indexed_seq": s.indexed_seq,
                "search_rebuilding": s.search_rebuilding,
                "searches_cached": s.searches_cached,
                "searches_computed": s.searches_computed,
                "stats_cached": s.stats_cached,
                "stats_computed": s.stats_computed,
                "conflicts": conflicts,
                "conflicting_authors": conflicting_authors,
                "refusals": s.refusals,
                "harvests": s.harvests.iter().map(harvest_json).collect::<Vec<_>>(),
                "restore_waiting": s.restore_waiting,
                "last_backup_ms": s.last_backup_ms,
                "last_backup_dir": s.last_backup_dir,
                "last_backup_error": s.last_backup_error,
                "backup_interval_s": s.backup_interval_s,
                "dir": dir.display().to_string(),
            }))?
        );
    } else {
        println!("node         {} (SIREN {})", s.organisation_name, s.siren);
        println!("public key   {key}");
        println!("gRPC         {}", s.grpc_listen);
        let counts: Vec<String> = s
            .current_by_kind
            .iter()
            .filter(|k| k.count > 0)
            .map(|k| format!("{} {}", k.count, k.kind))
            .collect();
        println!(
            "records      {} ({} envelopes with history)",
            if counts.is_empty() {
                "none".into()
            } else {
                counts.join(", ")
            },
            s.envelopes
        );
        println!(
            "peers        {} ({} in sync), {} trust root(s), {} quarantined",
            s.peers, s.peers_healthy, s.trust_roots, s.quarantined
        );
        if !s.restore_waiting.is_empty() {
            println!(
                "restored     from a backup: signs nothing until synced with {} (`maillage sync`)",
                s.restore_waiting.join(", ")
            );
        }
        if !s.last_backup_error.is_empty() {
            println!("snapshots    the last one failed: {}", s.last_backup_error);
        } else if s.last_backup_ms > 0 {
            let at =
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(s.last_backup_ms as u64);
            println!(
                "snapshots    last {} ({})",
                humantime::format_rfc3339_seconds(at),
                s.last_backup_dir
            );
        }
        let search = if s.search_rebuilding {
            "rebuilding (searches use the previous index until it is done)".to_string()
        } else if s.indexed_seq < s.last_seq {
            format!("{} changes behind the store", s.last_seq - s.indexed_seq)
        } else {
            "up to date".to_string()
        };
        let searches = s.searches_cached + s.searches_computed;
        let stats = s.stats_cached + s.stats_computed;
        match (s.searches_cached * 100).checked_div(searches) {
            Some(pct) => println!(
                "search       {search}; {searches} searches, {pct} % answered from the caches"
            ),
            None => println!("search       {search}"),
        }
        if let Some(pct) = (s.stats_cached * 100).checked_div(stats) {
            println!("statistics   {stats} asked, {pct} % answered from the cache");
        }
        if !conflicting_authors.is_empty() {
            println!(
                "conflicts    {} author(s) signed {} record version(s) twice over (same version, \
                 or another kind): `maillage status --json` lists them; ask their organisations",
                conflicting_authors.len(),
                conflicts.len()
            );
        }
        let mut refused: Vec<(&String, &u64)> =
            s.refusals.iter().filter(|(_, n)| **n > 0).collect();
        refused.sort();
        if !refused.is_empty() {
            let list: Vec<String> = refused
                .iter()
                .map(|(why, n)| format!("{why} {n}"))
                .collect();
            println!(
                "refused      {} (limits: docs/security.md)",
                list.join(", ")
            );
        }
        for h in &s.harvests {
            println!("harvest      {}", harvest_line(h));
        }
        println!("uptime       {}", human_duration(s.uptime_seconds));
        println!("store        {}", human_bytes(s.store_bytes));
        println!("version      {}", s.node_version);
    }
    Ok(())
}

/// A harvest and its last run, as `status --json` and `harvest run --json`
/// give it.
pub(crate) fn harvest_json(h: &HarvestStatus) -> Value {
    json!({
        "name": h.name, "url": h.url, "format": h.format, "interval_s": h.interval_s,
        "running": h.running,
        "last_started_ms": h.last_started_ms, "last_finished_ms": h.last_finished_ms,
        "next_run_ms": h.next_run_ms, "pages": h.pages, "rows": h.rows,
        "created": h.created, "updated": h.updated, "unchanged": h.unchanged,
        "rows_with_warnings": h.rows_with_warnings, "refused_rows": h.refused_rows,
        "withdrawn": h.withdrawn,
        "error": (!h.error.is_empty()).then_some(&h.error),
    })
}

/// A harvest and its last run, in one line.
pub(crate) fn harvest_line(h: &HarvestStatus) -> String {
    let every = human_duration(h.interval_s);
    let last = if h.running {
        "running now".to_string()
    } else if h.last_finished_ms == 0 {
        "not run yet".to_string()
    } else if !h.error.is_empty() {
        format!("last run failed, nothing imported: {}", h.error)
    } else {
        format!(
            "last run: {} rows in {} page(s), {} created, {} updated, {} unchanged, {} with \
             warnings, {} refused{}",
            h.rows,
            h.pages,
            h.created,
            h.updated,
            h.unchanged,
            h.rows_with_warnings,
            h.refused_rows,
            if h.withdrawn > 0 {
                format!(", {} withdrawn", h.withdrawn)
            } else {
                String::new()
            }
        )
    };
    format!("{} ({} {}, every {every}): {last}", h.name, h.format, h.url)
}

/// `maillage harvest run NAME`: runs a configured harvest now.
pub async fn harvest_now(dir: &Path, name: &str, json_out: bool) -> anyhow::Result<()> {
    let conn = NodeConn::open(dir).await?;
    let h = conn
        .admin()
        .harvest_now(HarvestNowRequest {
            name: name.to_string(),
        })
        .await
        .map_err(explain)?
        .into_inner();
    if json_out {
        println!("{}", serde_json::to_string_pretty(&harvest_json(&h))?);
    } else {
        println!("{}", harvest_line(&h));
    }
    if !h.error.is_empty() {
        anyhow::bail!("the harvest '{name}' failed: {}", h.error);
    }
    Ok(())
}

pub(crate) fn human_duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

pub(crate) fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}
