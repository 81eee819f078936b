//! `maillage collection create|add|remove|show`: curated lists of records,
//! signed by the node's organisation and replicated like any record. An item
//! names a record (author and record_id), not one version of it, so a
//! collection follows its items' updates.

use std::path::Path;

use anyhow::{Context, bail};
use maillage_proto::v1::{GetRequest, HistoryRequest, RecordEntry, SignRequest};
use maillage_record::model::{Collection, RecordRef};
use maillage_record::{
    Body, PublicKey, Record, RecordId, VerifiedRecord, Visibility, envelope, wire,
};
use serde_json::json;

use crate::connect::{NodeConn, explain};

/// Every version of (author, record_id) the node holds, oldest first,
/// following History's pages; `None` if it holds none.
pub(crate) async fn history(
    conn: &NodeConn,
    author: &PublicKey,
    record_id: &str,
) -> anyhow::Result<Option<Vec<RecordEntry>>> {
    let mut client = conn.catalogue();
    let mut entries = Vec::new();
    let mut page_token = Vec::new();
    loop {
        let resp = client
            .history(HistoryRequest {
                author: author.0.to_vec(),
                record_id: record_id.to_string(),
                limit: 1000,
                page_token,
            })
            .await;
        let page = match resp {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == tonic::Code::NotFound && entries.is_empty() => return Ok(None),
            Err(s) => return Err(explain(s)),
        };
        entries.extend(page.entries);
        if page.next_page_token.is_empty() {
            return Ok(Some(entries));
        }
        page_token = page.next_page_token;
    }
}

/// The current version of (author, record_id) on the node, verified; `None`
/// if the node holds none.
pub(crate) async fn current(
    conn: &NodeConn,
    author: &PublicKey,
    record_id: &str,
) -> anyhow::Result<Option<VerifiedRecord>> {
    let Some(entries) = history(conn, author, record_id).await? else {
        return Ok(None);
    };
    let Some(entry) = entries.into_iter().find(|e| e.current) else {
        return Ok(None);
    };
    let env = entry
        .envelope
        .context("the node sent an entry without an envelope")?;
    let rec = envelope::verify(&env).context("the node sent a record that does not verify")?;
    Ok(Some(rec))
}

/// The collection `record_id` of this node, current and not withdrawn.
async fn load(
    conn: &NodeConn,
    key: &PublicKey,
    record_id: &str,
) -> anyhow::Result<(Record, Collection)> {
    let rec = current(conn, key, record_id).await?.with_context(|| {
        format!("no collection '{record_id}' on this node: create it with `maillage collection create {record_id} --title ...`")
    })?;
    let record = rec.record().clone();
    match &record.body {
        Body::Collection(c) => {
            let c = c.clone();
            Ok((record, c))
        }
        Body::Tombstone(_) => bail!("collection '{record_id}' was withdrawn"),
        other => bail!("'{record_id}' is a {}, not a collection", other.kind()),
    }
}

async fn publish(conn: &NodeConn, record: &Record) -> anyhow::Result<(RecordId, u64)> {
    let resp = conn
        .admin()
        .sign_and_publish(SignRequest {
            payload: Some(wire::payload_to_proto(record)),
            author: Vec::new(),
        })
        .await
        .map_err(explain)?
        .into_inner();
    let id = RecordId::from_slice(&resp.id).context("the node answered with a malformed id")?;
    Ok((id, resp.version))
}

pub async fn create(
    dir: &Path,
    record_id: &str,
    title: &str,
    description: Option<&str>,
    visibility: &str,
    json_out: bool,
) -> anyhow::Result<()> {
    let visibility = match visibility {
        "public" => Visibility::Public,
        "federation" => Visibility::Federation,
        other => bail!("--visibility '{other}': a collection is public or federation"),
    };
    let record = Record {
        record_id: record_id.to_string(),
        version: 0,
        issued_at_ms: 0,
        visibility,
        provenance: None,
        body: Body::Collection(Collection {
            title: title.to_string(),
            description: description.map(str::to_string),
            items: Vec::new(),
        }),
    };
    record
        .validate_draft()
        .with_context(|| format!("collection '{record_id}'"))?;
    let conn = NodeConn::open(dir).await?;
    let key = conn.own_key().await?;
    if let Some(existing) = current(&conn, &key, record_id).await?
        && !matches!(existing.record().body, Body::Tombstone(_))
    {
        bail!(
            "'{record_id}' already exists on this node (a {}): add items with `maillage collection add {record_id} ITEM...`",
            existing.record().kind()
        );
    }
    let (id, version) = publish(&conn, &record).await?;
    report(
        json_out,
        record_id,
        id,
        version,
        0,
        &format!("created collection '{record_id}'"),
    );
    Ok(())
}

/// An item written `AUTHOR_KEY/record_id`, if it is written so.
pub(crate) fn author_and_id(item: &str) -> Option<anyhow::Result<(PublicKey, String)>> {
    let (a, r) = item.split_once('/').filter(|(a, _)| a.len() == 64)?;
    Some(
        PublicKey::parse_hex(a)
            .map(|k| (k, r.to_string()))
            .with_context(|| format!("item '{item}': bad author key")),
    )
}

/// Resolves an item as the operator names it: a record's 64-hex id (any of
/// its versions), `AUTHOR_KEY/record_id`, or the record_id of one of this
/// node's own records. The record must be on the node, and visible to
/// whoever may see the collection.
async fn resolve(
    conn: &NodeConn,
    own: &PublicKey,
    item: &str,
    list: Option<&Visibility>,
) -> anyhow::Result<(RecordRef, String)> {
    let (author, record_id) = if let Ok(id) = RecordId::parse_hex(item) {
        let entry = conn
            .catalogue()
            .get(GetRequest { id: id.0.to_vec() })
            .await
            .map_err(|s| match s.code() {
                tonic::Code::NotFound => {
                    anyhow::anyhow!("item '{item}': no record with this id on this node")
                }
                _ => explain(s),
            })?
            .into_inner();
        let env = entry
            .envelope
            .context("the node sent an entry without an envelope")?;
        let rec = envelope::verify(&env).context("the node sent a record that does not verify")?;
        (rec.author(), rec.record().record_id.clone())
    } else if let Some(named) = author_and_id(item) {
        named?
    } else {
        (*own, item.to_string())
    };
    let Some(rec) = current(conn, &author, &record_id).await? else {
        bail!(
            "item '{item}': no record '{record_id}' by {author} on this node; name an item by its id (maillage search shows it), AUTHOR_KEY/record_id, or one of this node's record_ids"
        );
    };
    if matches!(rec.record().body, Body::Tombstone(_)) {
        bail!("item '{item}': record '{record_id}' was withdrawn");
    }
    if let Some(list) = list.filter(|l| !l.may_list(&rec.record().visibility)) {
        bail!(
            "item '{item}': record '{record_id}' is {}, the collection is {}: listing it would name it to readers who may not see it",
            rec.record().visibility.name(),
            list.name()
        );
    }
    let r = RecordRef {
        author: (author != *own).then(|| author.to_hex()),
        record_id,
    };
    Ok((r, rec.record().body.label().to_string()))
}

pub async fn add(
    dir: &Path,
    record_id: &str,
    items: &[String],
    json_out: bool,
) -> anyhow::Result<()> {
    let conn = NodeConn::open(dir).await?;
    let key = conn.own_key().await?;
    let (mut record, mut collection) = load(&conn, &key, record_id).await?;
    let mut added = 0;
    for item in items {
        let (r, label) = resolve(&conn, &key, item, Some(&record.visibility)).await?;
        if collection.items.contains(&r) {
            eprintln!("already in the collection: {label}");
            continue;
        }
        eprintln!("adding: {label}");
        collection.items.push(r);
        added += 1;
    }
    if added == 0 {
        if json_out {
            println!(
                "{}",
                json!({"record_id": record_id, "id": null, "version": record.version, "items": collection.items.len()})
            );
        } else {
            eprintln!(
                "nothing to add: collection '{record_id}' unchanged (version {})",
                record.version
            );
        }
        return Ok(());
    }
    save(
        &conn,
        &mut record,
        collection,
        json_out,
        &format!("added {added} item(s) to '{record_id}'"),
    )
    .await
}

pub async fn remove(
    dir: &Path,
    record_id: &str,
    items: &[String],
    json_out: bool,
) -> anyhow::Result<()> {
    let conn = NodeConn::open(dir).await?;
    let key = conn.own_key().await?;
    let (mut record, mut collection) = load(&conn, &key, record_id).await?;
    let before = collection.items.len();
    for item in items {
        // An item is matched as it is written, so a record since withdrawn
        // or gone can still be removed.
        let r = if let Some(named) = author_and_id(item) {
            let (a, r) = named?;
            RecordRef {
                author: (a != key).then(|| a.to_hex()),
                record_id: r,
            }
        } else if RecordId::parse_hex(item).is_ok() {
            // Removing needs no visibility check.
            resolve(&conn, &key, item, None).await?.0
        } else {
            RecordRef {
                author: None,
                record_id: item.clone(),
            }
        };
        let n = collection.items.len();
        collection.items.retain(|i| *i != r);
        if collection.items.len() == n {
            bail!(
                "item '{item}' is not in collection '{record_id}': `maillage collection show {record_id}` lists its items"
            );
        }
    }
    let removed = before - collection.items.len();
    save(
        &conn,
        &mut record,
        collection,
        json_out,
        &format!("removed {removed} item(s) from '{record_id}'"),
    )
    .await
}

/// Publishes the next version; refused if another version was published
/// since it was read (then the operator runs the command again).
async fn save(
    conn: &NodeConn,
    record: &mut Record,
    collection: Collection,
    json_out: bool,
    what: &str,
) -> anyhow::Result<()> {
    let items = collection.items.len();
    record.version += 1;
    record.issued_at_ms = 0;
    record.body = Body::Collection(collection);
    let (id, version) = publish(conn, record).await?;
    report(json_out, &record.record_id, id, version, items, what);
    Ok(())
}

fn report(json_out: bool, record_id: &str, id: RecordId, version: u64, items: usize, what: &str) {
    if json_out {
        println!(
            "{}",
            json!({"record_id": record_id, "id": id.to_hex(), "version": version, "items": items})
        );
    } else {
        eprintln!("{what} (version {version}, {items} item(s))");
        println!("{id}");
    }
}

pub async fn show(
    dir: &Path,
    record_id: &str,
    author: Option<&str>,
    json_out: bool,
) -> anyhow::Result<()> {
    let conn = NodeConn::open(dir).await?;
    let own = conn.own_key().await?;
    let key = match author {
        Some(a) => PublicKey::parse_hex(a).with_context(|| format!("--author '{a}'"))?,
        None => own,
    };
    let (record, collection) = load(&conn, &key, record_id).await?;
    let mut rows = Vec::new();
    for item in &collection.items {
        let item_author = match &item.author {
            Some(a) => PublicKey::parse_hex(a).ok(),
            None => Some(key),
        };
        let found = match item_author {
            Some(a) => current(&conn, &a, &item.record_id).await?,
            None => None,
        };
        rows.push((item, item_author, found));
    }
    if json_out {
        let items: Vec<_> = rows
            .iter()
            .map(|(item, a, found)| {
                json!({
                    "author": a.map(|k| k.to_hex()),
                    "record_id": item.record_id,
                    "kind": found.as_ref().map(|r| r.record().kind().as_str()),
                    "title": found.as_ref().map(|r| r.record().body.label().to_string()),
                    "id": found.as_ref().map(|r| r.id().to_hex()),
                    "on_this_node": found.is_some(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "record_id": record.record_id,
                "version": record.version,
                "author": key.to_hex(),
                "title": collection.title,
                "description": collection.description,
                "items": items,
            }))?
        );
        return Ok(());
    }
    println!(
        "{} (collection '{}', version {})",
        collection.title, record.record_id, record.version
    );
    if let Some(d) = &collection.description {
        println!("{d}");
    }
    println!("{} item(s), signature verified", rows.len());
    for (i, (item, a, found)) in rows.iter().enumerate() {
        match found {
            Some(r) => println!(
                "{:>3}. {}  [{}]  {}",
                i + 1,
                r.record().body.label(),
                r.record().kind().label(),
                r.id()
            ),
            None => println!(
                "{:>3}. '{}' by {} (not on this node)",
                i + 1,
                item.record_id,
                a.map_or_else(|| "an unreadable key".into(), |k| k.to_hex())
            ),
        }
    }
    Ok(())
}
