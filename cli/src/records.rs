//! Record commands: publish, get, list, history, verify. Every record the node
//! returns is verified here too: the CLI trusts signatures, not the node.

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, bail};
use maillage_proto::v1::{
    Envelope, GetRequest, HistoryRequest, ListRequest, PublishRequest, PublishResponse,
    RecordEntry, SignRequest,
};
use maillage_record::json::{format_time, parse_document, record_to_json};
use maillage_record::{Kind, PublicKey, RecordId, VerifiedRecord, envelope, wire};
use prost::Message;
use serde_json::{Value, json};

use crate::connect::{NodeConn, explain};

/// `maillage publish FILE`: a JSON record the node signs, or with `signed`, an
/// envelope someone already signed (as `get --raw` writes it).
pub async fn publish(dir: &Path, file: &Path, signed: bool, json_out: bool) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let conn = NodeConn::open(dir).await?;
    let resp: PublishResponse = if signed {
        let env = Envelope::decode(bytes.as_slice())
            .with_context(|| format!("{} is not a signed envelope", file.display()))?;
        conn.publish()
            .publish(PublishRequest {
                envelope: Some(env),
            })
            .await
            .map_err(explain)?
            .into_inner()
    } else {
        let text = String::from_utf8(bytes).with_context(|| {
            format!(
                "{} is not UTF-8 text; for a signed envelope use --signed",
                file.display()
            )
        })?;
        let draft = parse_document(&text)
            .with_context(|| format!("{} is not a valid record", file.display()))?;
        conn.admin()
            .sign_and_publish(SignRequest {
                payload: Some(wire::payload_to_proto(&draft.record)),
                author: draft.author.map(|a| a.0.to_vec()).unwrap_or_default(),
            })
            .await
            .map_err(explain)?
            .into_inner()
    };
    let id = RecordId::from_slice(&resp.id).context("the node answered with a malformed id")?;
    if json_out {
        println!(
            "{}",
            json!({
                "id": id.to_hex(),
                "record_id": resp.record_id,
                "version": resp.version,
                "seq": resp.seq,
                "superseded_version": resp.superseded_version,
            })
        );
    } else {
        let superseded = match resp.superseded_version {
            0 => String::new(),
            v => format!(", supersedes version {v}"),
        };
        eprintln!(
            "published '{}' version {}{superseded}",
            resp.record_id, resp.version
        );
        println!("{id}");
    }
    Ok(())
}

pub async fn get(dir: &Path, id: &str, raw: bool, json_out: bool) -> anyhow::Result<()> {
    let id = RecordId::parse_hex(id)?;
    let conn = NodeConn::open(dir).await?;
    let entry = conn
        .catalogue()
        .get(GetRequest { id: id.0.to_vec() })
        .await
        .map_err(explain)?
        .into_inner();
    let checked = check(&entry)?;
    if raw {
        let mut out = std::io::stdout().lock();
        if out.is_terminal() {
            bail!(
                "--raw writes binary: redirect it to a file, e.g. `maillage get --raw {id} > record.envelope`"
            );
        }
        out.write_all(&checked.envelope_bytes())?;
        out.flush()?;
    } else if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&entry_json(&entry, &checked))?
        );
    } else {
        print_entry(&entry, &checked);
    }
    Ok(())
}

pub async fn list(
    dir: &Path,
    kind: Option<&str>,
    author: Option<&str>,
    all: bool,
    json_out: bool,
) -> anyhow::Result<()> {
    let kind = kind.map(Kind::parse).transpose()?;
    let author = author.map(PublicKey::parse_hex).transpose()?;
    let conn = NodeConn::open(dir).await?;
    let mut client = conn.catalogue();
    let mut token = Vec::new();
    let mut rows = Vec::new();
    // Follow the pages: a listing shows everything that matches.
    loop {
        let page = client
            .list(ListRequest {
                kind: kind.map_or(0, |k| wire::kind_to_proto(k) as i32),
                author: author.map(|a| a.0.to_vec()).unwrap_or_default(),
                limit: 1000,
                page_token: token,
                include_withdrawn: all,
            })
            .await
            .map_err(explain)?
            .into_inner();
        for entry in &page.entries {
            let checked = check(entry)?;
            rows.push((entry.clone(), checked));
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    if json_out {
        let items: Vec<Value> = rows.iter().map(|(e, c)| entry_json(e, c)).collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else if rows.is_empty() {
        eprintln!("no records");
    } else {
        for (_, c) in &rows {
            let r = c.record();
            println!(
                "{:<12} {:<28} v{:<3} {}  {}",
                r.kind().as_str(),
                r.record_id,
                r.version,
                &c.id().to_hex()[..12],
                r.body.label()
            );
        }
        eprintln!("{} record(s)", rows.len());
    }
    Ok(())
}

pub async fn history(
    dir: &Path,
    record_id: &str,
    author: Option<&str>,
    json_out: bool,
) -> anyhow::Result<()> {
    let conn = NodeConn::open(dir).await?;
    let author = match author {
        Some(a) => PublicKey::parse_hex(a)?,
        None => conn.own_key().await?,
    };
    let resp = conn
        .catalogue()
        .history(HistoryRequest {
            author: author.0.to_vec(),
            record_id: record_id.to_string(),
        })
        .await
        .map_err(explain)?
        .into_inner();
    let mut rows = Vec::new();
    for entry in &resp.entries {
        rows.push((entry, check(entry)?));
    }
    if json_out {
        let items: Vec<Value> = rows.iter().map(|(e, c)| entry_json(e, c)).collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else {
        for (e, c) in &rows {
            let r = c.record();
            println!(
                "v{:<3} {}  issued {}  {}{}",
                r.version,
                c.id(),
                format_time(r.issued_at_ms),
                r.body.label(),
                if e.current { "  (current)" } else { "" }
            );
        }
    }
    Ok(())
}

/// `maillage verify FILE`: offline, no node needed.
pub fn verify(file: &Path, json_out: bool) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let rec = envelope::verify_bytes(&bytes)
        .with_context(|| format!("{} does not verify", file.display()))?;
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "valid": true,
                "id": rec.id().to_hex(),
                "author": rec.author().to_hex(),
                "record": record_to_json(rec.record()),
            }))?
        );
    } else {
        let r = rec.record();
        println!(
            "valid: {} '{}' version {} signed by {}\n  id {}",
            r.kind(),
            r.record_id,
            r.version,
            rec.author(),
            rec.id()
        );
    }
    Ok(())
}

/// Verifies what the node sent, and that it is the record that was asked for.
fn check(entry: &RecordEntry) -> anyhow::Result<VerifiedRecord> {
    let env = entry
        .envelope
        .as_ref()
        .context("the node sent an entry without an envelope")?;
    let rec = envelope::verify(env).context("the node sent a record that does not verify")?;
    if rec.id().0.as_slice() != entry.id.as_slice() {
        bail!(
            "the node sent record {} under another id {}",
            rec.id(),
            hex::encode(&entry.id)
        );
    }
    Ok(rec)
}

fn entry_json(entry: &RecordEntry, rec: &VerifiedRecord) -> Value {
    json!({
        "id": rec.id().to_hex(),
        "author": rec.author().to_hex(),
        "signature": "verified",
        "current": entry.current,
        "seq": entry.seq,
        "received_at": format_time(entry.received_at_ms),
        "record": record_to_json(rec.record()),
    })
}

fn print_entry(entry: &RecordEntry, rec: &VerifiedRecord) {
    let r = rec.record();
    println!("id           {}", rec.id());
    println!("author       {} (signature verified)", rec.author());
    println!(
        "record       {} '{}' version {}{}",
        r.kind(),
        r.record_id,
        r.version,
        if entry.current {
            " (current)"
        } else {
            " (superseded)"
        }
    );
    println!("issued       {}", format_time(r.issued_at_ms));
    println!(
        "received     {} (seq {})",
        format_time(entry.received_at_ms),
        entry.seq
    );
    let body = record_to_json(r);
    println!(
        "{}",
        serde_json::to_string_pretty(&body).unwrap_or_else(|_| body.to_string())
    );
}
