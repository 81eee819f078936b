//! Record commands: publish, get, list, history, verify. Every record the node
//! returns is verified here too: the CLI trusts signatures, not the node.

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, bail};
use maillage_proto::v1::{
    Envelope, GetRequest, ListRequest, PublishRequest, PublishResponse, RecordEntry, SignRequest,
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

pub async fn get(dir: &Path, named: &str, raw: bool, json_out: bool) -> anyhow::Result<()> {
    let conn = NodeConn::open(dir).await?;
    // An id (any version), or a record by AUTHOR_KEY/record_id or this
    // node's record_id: its current version.
    let id = match RecordId::parse_hex(named) {
        Ok(id) => id,
        Err(_) => {
            let (author, record_id) = match crate::collection::author_and_id(named) {
                Some(found) => found?,
                None => (conn.own_key().await?, named.to_string()),
            };
            crate::collection::current(&conn, &author, &record_id)
                .await?
                .with_context(|| {
                    format!(
                        "no record '{record_id}' by {author} on this node: give an id (64 hex \
                         characters, as `maillage list` shows it), AUTHOR_KEY/record_id, or one \
                         of this node's record_ids"
                    )
                })?
                .id()
        }
    };
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
    let entries = crate::collection::history(&conn, &author, record_id)
        .await?
        .with_context(|| {
            format!("no version of record_id '{record_id}' by {author} on this node")
        })?;
    let mut rows = Vec::new();
    for entry in &entries {
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
/// `maillage withdraw RECORD_ID`: a withdrawal the node signs; it goes to
/// the audience of what it withdraws.
pub async fn withdraw(
    dir: &Path,
    record_id: &str,
    reason: &str,
    json_out: bool,
) -> anyhow::Result<()> {
    use maillage_record::model::Tombstone;
    use maillage_record::{Body, Record, Visibility};
    let conn = NodeConn::open(dir).await?;
    let draft = Record {
        record_id: record_id.to_string(),
        version: 0,
        issued_at_ms: 0,
        // The node gives a withdrawal the audience of what it withdraws.
        visibility: Visibility::Public,
        provenance: None,
        body: Body::Tombstone(Tombstone {
            reason: reason.to_string(),
        }),
    };
    draft
        .validate_draft()
        .with_context(|| format!("cannot withdraw '{record_id}'"))?;
    let key = conn.own_key().await?;
    // Only what exists is withdrawn: a typo must not publish a tombstone.
    match crate::collection::current(&conn, &key, record_id).await? {
        None => bail!(
            "no record '{record_id}' by this node to withdraw; `maillage list` shows its records"
        ),
        Some(rec) if rec.record().kind() == Kind::Tombstone => bail!(
            "'{record_id}' is already withdrawn (version {})",
            rec.record().version
        ),
        Some(_) => {}
    }
    let resp = conn
        .admin()
        .sign_and_publish(SignRequest {
            payload: Some(wire::payload_to_proto(&draft)),
            author: Vec::new(),
        })
        .await
        .map_err(explain)?
        .into_inner();
    let id = RecordId::from_slice(&resp.id).context("the node answered with a malformed id")?;
    if json_out {
        println!(
            "{}",
            json!({"id": id.to_hex(), "record_id": resp.record_id, "version": resp.version})
        );
    } else {
        println!(
            "withdrew '{}' (version {}): {id}",
            resp.record_id, resp.version
        );
    }
    Ok(())
}

/// `maillage sign FILE --key KEY`: signs a JSON record offline. No node is
/// asked anything: the document must give its version.
pub fn sign_offline(
    file: &Path,
    key_file: &Path,
    out: Option<std::path::PathBuf>,
    json_out: bool,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut draft = parse_document(&text)
        .with_context(|| format!("{} is not a valid record", file.display()))?
        .record;
    if draft.version == 0 {
        bail!(
            "{}: give \"version\" in the document: signing offline, no node says which version \
             comes next (`maillage history RECORD_ID` on a node shows the current one)",
            file.display()
        );
    }
    if draft.issued_at_ms == 0 {
        draft.issued_at_ms = maillage_record::now_ms();
    }
    let key = maillage_record::keyfile::read(key_file)?;
    let signed = envelope::sign(&key, &draft)
        .with_context(|| format!("{} is not a valid record", file.display()))?;
    let out = out.unwrap_or_else(|| file.with_extension("envelope"));
    std::fs::write(&out, signed.envelope_bytes())
        .with_context(|| format!("cannot write {}", out.display()))?;
    if json_out {
        println!(
            "{}",
            json!({"id": signed.id().to_hex(), "author": signed.author().to_hex(),
                "envelope": out.display().to_string()})
        );
    } else {
        println!(
            "signed '{}' version {} as {}: {}\n  publish it with: maillage publish --signed {}",
            draft.record_id,
            draft.version,
            signed.author(),
            signed.id(),
            out.display()
        );
    }
    Ok(())
}

/// `maillage key consent PREDECESSOR --key FILE`: the new key's consent to
/// succeed a lost key, for the committee's `succession` record.
pub fn key_consent(predecessor: &str, key_file: &Path, json_out: bool) -> anyhow::Result<()> {
    let predecessor = PublicKey::parse_hex(predecessor.trim())
        .with_context(|| format!("'{predecessor}' is not a public key"))?;
    let key = maillage_record::keyfile::read(key_file)?;
    let s = maillage_record::model::Succession::consented(predecessor, &key);
    if json_out {
        println!(
            "{}",
            json!({"kind": "succession", "record_id": format!("succession-{}", &s.successor.to_hex()[..16]),
                "predecessor": s.predecessor.to_hex(), "successor": s.successor.to_hex(),
                "successor_signature": s.successor_signature})
        );
    } else {
        println!("{}", s.successor_signature);
        eprintln!(
            "give this, with the new key {}, to the committee: it publishes the succession \
             (`maillage key consent --json` writes the whole record)",
            s.successor
        );
    }
    Ok(())
}

/// `maillage key rotate`: hands the node's key over to a new one.
pub async fn key_rotate(dir: &Path, json_out: bool) -> anyhow::Result<()> {
    let conn = NodeConn::open(dir).await?;
    let resp = conn
        .admin()
        .key_rotate(maillage_proto::v1::KeyRotateRequest {})
        .await
        .map_err(explain)?
        .into_inner();
    let successor =
        PublicKey::from_slice(&resp.successor).context("the node answered with a malformed key")?;
    let succession =
        RecordId::from_slice(&resp.succession).context("the node answered with a malformed id")?;
    if json_out {
        println!(
            "{}",
            json!({"public_key": successor.to_hex(), "succession": succession.to_hex(),
                "records": resp.records})
        );
    } else {
        println!("new key      {successor}");
        println!("succession   {succession} (signed by the former key)");
        println!("re-signed    {} record(s)", resp.records);
        println!(
            "restart the node now (systemctl restart maillage): it signs nothing more until it \
             speaks with the new key. Peers follow the succession by themselves."
        );
    }
    Ok(())
}

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
