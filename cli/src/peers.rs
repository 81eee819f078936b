//! `maillage peer`, `sync`, `trust` and `quarantine`: who this node replicates
//! with, whose records it accepts, and what waits for trust.

use std::path::Path;

use anyhow::anyhow;
use maillage_proto::v1::{
    Peer, PeerAddRequest, PeerListRequest, PeerRemoveRequest, QuarantineDropRequest,
    QuarantineListRequest, QuarantineReleaseRequest, SyncRequest, TrustAddRequest,
    TrustListRequest, TrustRemoveRequest,
};
use maillage_record::{PublicKey, json::format_time};
use serde_json::{Value, json};

use crate::connect::{NodeConn, refused};
use crate::status::{human_bytes, human_duration};

fn parse_key(text: &str) -> anyhow::Result<PublicKey> {
    PublicKey::parse_hex(text.trim()).map_err(|e| {
        anyhow!("'{text}' is not a public key: {e}; the other node's operator reads it with `maillage status`")
    })
}

fn key_hex(bytes: &[u8]) -> String {
    PublicKey::from_slice(bytes).map_or_else(|| hex::encode(bytes), |k| k.to_hex())
}

fn when(ms: i64) -> String {
    if ms == 0 {
        "never".into()
    } else {
        format_time(ms)
    }
}

/// The SIREN a peer is served restricted records for, and who vouches.
fn siren_line(p: &Peer) -> String {
    match p.siren_source.as_str() {
        "" => "none: records restricted to an organisation are not served to it \
               (`peer add ... --siren` vouches for its SIREN)"
            .into(),
        "membership" => format!("{} (from a trusted membership)", p.siren),
        "operator" => format!("{} (vouched for by this node's operator)", p.siren),
        "root" => format!("{} (its own claim, as a trust root)", p.siren),
        other => format!("{} ({other})", p.siren),
    }
}

fn peer_json(p: &Peer) -> Value {
    json!({
        "name": p.name,
        "url": p.url,
        "key": key_hex(&p.key),
        "state": p.state,
        "subscribed": p.subscribed,
        "last_sync": if p.last_sync_ms == 0 { Value::Null } else { Value::from(format_time(p.last_sync_ms)) },
        "records_received": p.records_received,
        "records_sent": p.records_sent,
        "last_error": if p.last_error.is_empty() { Value::Null } else { Value::from(p.last_error.clone()) },
        "consecutive_failures": p.consecutive_failures,
        "siren": if p.siren.is_empty() { Value::Null } else { Value::from(p.siren.clone()) },
        "siren_source": if p.siren_source.is_empty() { Value::Null } else { Value::from(p.siren_source.clone()) },
        "version": if p.version.is_empty() { Value::Null } else { Value::from(p.version.clone()) },
    })
}

pub async fn peer_add(
    dir: &Path,
    name: &str,
    url: &str,
    key: &str,
    siren: Option<&str>,
    json_out: bool,
) -> anyhow::Result<()> {
    let key = parse_key(key)?;
    let conn = NodeConn::open(dir).await?;
    let peer = conn
        .admin()
        .peer_add(PeerAddRequest {
            name: name.into(),
            url: url.into(),
            key: key.0.to_vec(),
            siren: siren.unwrap_or_default().into(),
        })
        .await
        .map_err(refused)?
        .into_inner();
    if json_out {
        println!("{}", serde_json::to_string_pretty(&peer_json(&peer))?);
    } else {
        println!("peer {} pinned: {} with key {}", peer.name, peer.url, key);
        println!("siren: {}", siren_line(&peer));
        eprintln!(
            "its operator must pin this node too (`maillage peer add` with the key `maillage status` shows here)"
        );
    }
    Ok(())
}

pub async fn peer_remove(dir: &Path, name: &str, json_out: bool) -> anyhow::Result<()> {
    let conn = NodeConn::open(dir).await?;
    conn.admin()
        .peer_remove(PeerRemoveRequest { name: name.into() })
        .await
        .map_err(refused)?;
    if json_out {
        println!("{}", json!({ "removed": name }));
    } else {
        println!("peer {name} removed: its connections are refused from now on");
    }
    Ok(())
}

pub async fn peer_list(dir: &Path, json_out: bool) -> anyhow::Result<()> {
    let conn = NodeConn::open(dir).await?;
    let peers = conn
        .admin()
        .peer_list(PeerListRequest {})
        .await
        .map_err(refused)?
        .into_inner()
        .peers;
    if json_out {
        let items: Vec<Value> = peers.iter().map(peer_json).collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(());
    }
    if peers.is_empty() {
        eprintln!("no peers: add one with `maillage peer add NAME https://host:port --key KEY`");
        return Ok(());
    }
    for p in &peers {
        println!(
            "{:<16} {:<8} {}{}",
            p.name,
            p.state,
            p.url,
            if p.subscribed { " (live)" } else { "" }
        );
        println!("    key            {}", key_hex(&p.key));
        println!(
            "    version        {}",
            if p.version.is_empty() {
                "not known yet (said at its first sync)"
            } else {
                &p.version
            }
        );
        println!("    siren          {}", siren_line(p));
        println!("    last sync      {}", when(p.last_sync_ms));
        println!(
            "    records        {} received, {} sent",
            p.records_received, p.records_sent
        );
        if !p.last_error.is_empty() {
            println!(
                "    last error     {} ({} failure(s) in a row)",
                p.last_error, p.consecutive_failures
            );
        }
    }
    Ok(())
}

pub async fn sync(dir: &Path, name: Option<&str>, json_out: bool) -> anyhow::Result<()> {
    let conn = NodeConn::open(dir).await?;
    if !json_out {
        eprintln!("reconciling with {}...", name.unwrap_or("every peer"));
    }
    let mut stream = conn
        .admin()
        .sync(SyncRequest {
            name: name.unwrap_or_default().into(),
        })
        .await
        .map_err(refused)?
        .into_inner();
    // A progress bar on a terminal, for a large first sync; nothing for scripts.
    use std::io::IsTerminal;
    let draw = !json_out && std::io::stderr().is_terminal();
    let mut bar: Option<indicatif::ProgressBar> = None;
    let mut results = Vec::new();
    while let Some(msg) = stream.message().await.map_err(refused)? {
        if msg.done {
            results = msg.results;
            break;
        }
        let (need, received): (u64, u64) = msg
            .peers
            .iter()
            .fold((0, 0), |(n, r), p| (n + p.need, r + p.received));
        if draw && need > 0 {
            let bar = bar.get_or_insert_with(|| crate::progress::bar(need, "records received"));
            bar.set_length(need);
            bar.set_position(received.min(need));
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let failed = results.iter().filter(|r| !r.ok).count();
    if json_out {
        let items: Vec<Value> = results
            .iter()
            .map(|r| {
                json!({
                    "peer": r.peer, "ok": r.ok,
                    "error": if r.ok { Value::Null } else { Value::from(r.error.clone()) },
                    "need": r.need, "have": r.have, "stored": r.stored,
                    "quarantined": r.quarantined, "rejected": r.rejected,
                    "round_trips": r.round_trips, "bytes_sent": r.bytes_sent,
                    "bytes_received": r.bytes_received, "millis": r.millis,
                    "wire_bytes_reconcile": r.wire_bytes_reconcile,
                    "wire_bytes_total": r.wire_bytes_total,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else if results.is_empty() {
        eprintln!("no peers to sync with: add one with `maillage peer add`");
    } else {
        for r in &results {
            if r.ok {
                println!(
                    "{}: {} new, {} quarantined, {} refused; it lacks {} of ours ({} round trips, {} bytes on the wire, {} ms)",
                    r.peer,
                    r.stored,
                    r.quarantined,
                    r.rejected,
                    r.have,
                    r.round_trips,
                    r.wire_bytes_total,
                    r.millis
                );
            } else {
                println!("{}: failed: {}", r.peer, r.error);
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} peer(s) failed to sync");
    }
    Ok(())
}

pub async fn trust_add(dir: &Path, key: &str, note: &str, json_out: bool) -> anyhow::Result<()> {
    let key = parse_key(key)?;
    let conn = NodeConn::open(dir).await?;
    let released = conn
        .admin()
        .trust_add(TrustAddRequest {
            key: key.0.to_vec(),
            note: note.into(),
        })
        .await
        .map_err(refused)?
        .into_inner()
        .released;
    if json_out {
        println!("{}", json!({ "key": key.to_hex(), "released": released }));
    } else {
        println!("{key} is a trust root; {released} quarantined record(s) released");
    }
    Ok(())
}

pub async fn trust_remove(dir: &Path, key: &str, json_out: bool) -> anyhow::Result<()> {
    let key = parse_key(key)?;
    let conn = NodeConn::open(dir).await?;
    conn.admin()
        .trust_remove(TrustRemoveRequest {
            key: key.0.to_vec(),
        })
        .await
        .map_err(refused)?;
    if json_out {
        println!("{}", json!({ "removed": key.to_hex() }));
    } else {
        println!("{key} is no longer a trust root (records already accepted stay)");
    }
    Ok(())
}

pub async fn trust_list(dir: &Path, json_out: bool) -> anyhow::Result<()> {
    let conn = NodeConn::open(dir).await?;
    let roots = conn
        .admin()
        .trust_list(TrustListRequest {})
        .await
        .map_err(refused)?
        .into_inner()
        .roots;
    if json_out {
        let items: Vec<Value> = roots
            .iter()
            .map(
                |r| json!({ "key": key_hex(&r.key), "note": r.note, "added": when(r.added_at_ms) }),
            )
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else if roots.is_empty() {
        eprintln!(
            "no trust roots: records from peers wait in quarantine until you add one with `maillage trust add-root KEY`"
        );
    } else {
        for r in &roots {
            println!("{}  {}  {}", key_hex(&r.key), when(r.added_at_ms), r.note);
        }
    }
    Ok(())
}

/// How long ago `ms` was, for people.
fn age(ms: i64) -> String {
    let secs = (maillage_record::now_ms() - ms).max(0) as u64 / 1000;
    human_duration(secs)
}

pub async fn quarantine_list(dir: &Path, limit: u32, json_out: bool) -> anyhow::Result<()> {
    let conn = NodeConn::open(dir).await?;
    let resp = conn
        .admin()
        .quarantine_list(QuarantineListRequest { limit })
        .await
        .map_err(refused)?
        .into_inner();
    if json_out {
        let items: Vec<Value> = resp
            .records
            .iter()
            .map(|q| {
                json!({
                    "id": hex::encode(&q.id), "author": key_hex(&q.author),
                    "record_id": q.record_id, "kind": q.kind, "bytes": q.bytes,
                    "received": when(q.received_at_ms),
                    "age_seconds": (maillage_record::now_ms() - q.received_at_ms).max(0) / 1000,
                    "from": q.peer, "reason": q.reason,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "total": resp.total,
                "bytes": resp.total_bytes,
                "oldest": (resp.oldest_received_at_ms > 0).then(|| when(resp.oldest_received_at_ms)),
                "limits": {
                    "records": resp.limit_records,
                    "bytes": resp.limit_bytes,
                    "per_peer": resp.limit_per_peer,
                    "expiry_seconds": resp.expiry_seconds,
                },
                "records": items,
            }))?
        );
    } else if resp.records.is_empty() {
        eprintln!("quarantine is empty");
    } else {
        for q in &resp.records {
            let from = match q.peer.as_str() {
                "" => String::new(),
                peer => format!(" from {peer}"),
            };
            println!(
                "{}  {:<12} {:<30} by {}  {:>9}  {} ago{from}",
                hex::encode(&q.id),
                q.kind,
                q.record_id,
                key_hex(&q.author),
                human_bytes(q.bytes),
                age(q.received_at_ms)
            );
        }
        eprintln!(
            "{} record(s), {} (limits: {} records, {}, {} per peer, kept {}), wait for their author \
             to be trusted (`maillage trust add-root KEY`, or a membership); `maillage quarantine \
             drop|purge` drops them",
            resp.total,
            human_bytes(resp.total_bytes),
            resp.limit_records,
            human_bytes(resp.limit_bytes),
            resp.limit_per_peer,
            human_duration(resp.expiry_seconds),
        );
    }
    Ok(())
}

pub async fn quarantine_drop(dir: &Path, what: &[String], json_out: bool) -> anyhow::Result<()> {
    let mut req = QuarantineDropRequest::default();
    for w in what {
        // Ids and keys are both 64 hex characters: which one it is, the node
        // tells by what waits; both are sent.
        let bytes = hex::decode(w.trim())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| {
                anyhow!(
                    "'{w}' is neither a record id nor an author key (64 hex characters); \
                     `maillage quarantine list` shows both"
                )
            })?;
        req.ids.push(bytes.clone());
        req.authors.push(bytes);
    }
    drop_request(dir, req, json_out).await
}

pub async fn quarantine_purge(
    dir: &Path,
    older_than: Option<&str>,
    json_out: bool,
) -> anyhow::Result<()> {
    let mut req = QuarantineDropRequest::default();
    match older_than {
        None => req.all = true,
        Some(text) => {
            let d = humantime::parse_duration(text).map_err(|e| {
                anyhow!("--older-than '{text}' is not a duration ({e}): e.g. \"7days\" or \"12h\"")
            })?;
            req.received_before_ms = maillage_record::now_ms() - d.as_millis() as i64;
        }
    }
    drop_request(dir, req, json_out).await
}

async fn drop_request(
    dir: &Path,
    req: QuarantineDropRequest,
    json_out: bool,
) -> anyhow::Result<()> {
    let conn = NodeConn::open(dir).await?;
    let resp = conn
        .admin()
        .quarantine_drop(req)
        .await
        .map_err(refused)?
        .into_inner();
    if json_out {
        println!("{}", json!({ "dropped": resp.dropped }));
    } else {
        eprintln!("dropped {} quarantined record(s)", resp.dropped);
    }
    Ok(())
}

pub async fn quarantine_release(dir: &Path, json_out: bool) -> anyhow::Result<()> {
    let conn = NodeConn::open(dir).await?;
    let resp = conn
        .admin()
        .quarantine_release(QuarantineReleaseRequest {})
        .await
        .map_err(refused)?
        .into_inner();
    if json_out {
        println!(
            "{}",
            json!({ "released": resp.stored + resp.already, "stored": resp.stored,
                "waiting": resp.waiting })
        );
    } else {
        eprintln!(
            "released {} record(s); {} still wait for their author to be trusted",
            resp.stored + resp.already,
            resp.waiting
        );
    }
    Ok(())
}
