//! Records imported from an external source (`maillage import`): signed with
//! the node's key, a new version only where something changed, and withdrawn
//! when they leave their source.
//!
//! The node holds one key, its organisation's. A row the source attributes to
//! another organisation is still signed by this node, and its provenance says
//! on whose behalf (`on_behalf_of`): the node never pretends to be that
//! collectivity. A row of the node's own organisation drops that mention.

use std::collections::{HashMap, HashSet};

use maillage_record::model::Tombstone;
use maillage_record::{Body, Kind, Record, RecordId, VerifiedRecord, envelope};

use crate::node::Node;
use crate::store::{ListFilter, StoreError};

/// What became of one draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created { version: u64, id: RecordId },
    Updated { version: u64, id: RecordId },
    Unchanged { version: u64 },
    Rejected(String),
}

/// Signs and stores a batch of drafts (blocking). Returns one outcome per
/// draft, in order; the accepted ones are stored in one synced write.
pub fn import_blocking(node: &Node, drafts: Vec<Record>) -> Result<Vec<Outcome>, StoreError> {
    let mut outcomes = Vec::with_capacity(drafts.len());
    let mut signed: Vec<(usize, VerifiedRecord, bool)> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let now = maillage_record::now_ms();
    for (i, mut draft) in drafts.into_iter().enumerate() {
        if let Some(first) = seen.insert(draft.record_id.clone(), i) {
            outcomes.push(Outcome::Rejected(format!(
                "record_id '{}' comes twice in this import (also item {}): two rows of the source \
                 have the same identifier",
                draft.record_id,
                first + 1
            )));
            continue;
        }
        if let Some(p) = &mut draft.provenance {
            if p.on_behalf_of
                .as_ref()
                .is_some_and(|a| a.siren.as_deref() == Some(node.siren.as_str()))
            {
                p.on_behalf_of = None;
            }
        }
        if let Body::Organisation(o) = &draft.body {
            if o.siren != node.siren {
                outcomes.push(Outcome::Rejected(format!(
                    "an Organisation record for SIREN {} must be signed by that organisation's \
                     own key; this node signs for {}",
                    o.siren, node.siren
                )));
                continue;
            }
        }
        draft.version = 0;
        draft.issued_at_ms = 0;
        if let Err(e) = draft.validate_draft() {
            outcomes.push(Outcome::Rejected(e.to_string()));
            continue;
        }
        let current = node.store.current(&node.public_key, &draft.record_id)?;
        let mut version = 1;
        if let Some(cur) = &current {
            let stored = node
                .store
                .get(&cur.id)?
                .and_then(|s| envelope::decode_stored(&s.bytes).ok());
            if stored.as_ref().is_some_and(|r| same_content(r, &draft)) {
                outcomes.push(Outcome::Unchanged {
                    version: cur.version,
                });
                continue;
            }
            // A live record of another source (or written by hand) is not
            // taken over: a later --withdraw-missing of this source would
            // withdraw a row its own source still lists.
            if let Some(r) = stored.as_ref().filter(|r| r.kind() != Kind::Tombstone) {
                if let Some(other) = other_source(r, &draft) {
                    outcomes.push(Outcome::Rejected(format!(
                        "record_id '{}' already holds a record from {other}: not replaced by this \
                         import; to import this file as that same source, pass --source with \
                         its name",
                        draft.record_id
                    )));
                    continue;
                }
            }
            version = cur.version + 1;
        }
        draft.version = version;
        draft.issued_at_ms = now;
        match envelope::sign(node.signing_key(), &draft) {
            Ok(rec) => {
                signed.push((i, rec, current.is_some()));
                // Filled in below, once the write succeeded.
                outcomes.push(Outcome::Unchanged { version: 0 });
            }
            Err(e) => outcomes.push(Outcome::Rejected(e.to_string())),
        }
    }
    if signed.is_empty() {
        return Ok(outcomes);
    }
    let recs: Vec<VerifiedRecord> = signed.iter().map(|(_, r, _)| r.clone()).collect();
    // Only newer versions are written: if the record changed since it was
    // read above (a publish, another import), this row loses, rather than
    // two different records sharing one version number.
    let stored = node.insert_many_newer_blocking(&recs)?;
    for ((i, rec, existed), result) in signed.into_iter().zip(stored) {
        let version = rec.record().version;
        outcomes[i] = match (result, existed) {
            (Err(e), _) => Outcome::Rejected(format!(
                "record '{}' changed while it was imported ({e}): import again",
                rec.record().record_id
            )),
            (Ok(_), false) => Outcome::Created {
                version,
                id: rec.id(),
            },
            (Ok(_), true) => Outcome::Updated {
                version,
                id: rec.id(),
            },
        };
    }
    Ok(outcomes)
}

/// Where `current` comes from, if not from the draft's source.
fn other_source(current: &Record, draft: &Record) -> Option<String> {
    let key = |r: &Record| {
        r.provenance
            .as_ref()
            .map(|p| (p.source_format.clone(), p.source.clone()))
    };
    if key(current) == key(draft) {
        return None;
    }
    Some(match &current.provenance {
        Some(p) => format!(
            "the source '{}' ({})",
            p.source.as_deref().unwrap_or("?"),
            p.source_format
        ),
        None => "no import (it was published directly)".to_string(),
    })
}

/// Whether two records say the same thing (versions and dates aside).
fn same_content(a: &Record, b: &Record) -> bool {
    a.visibility == b.visibility && a.provenance == b.provenance && a.body == b.body
}

/// Tombstones this node's current records imported from (`format`,
/// `source`) whose record_id is not in `keep`. Returns their record_ids.
pub fn withdraw_missing_blocking(
    node: &Node,
    format: &str,
    source: &str,
    keep: &HashSet<String>,
) -> Result<Vec<String>, StoreError> {
    let filter = ListFilter {
        kind: None,
        author: Some(node.public_key),
    };
    let mut gone: Vec<Record> = Vec::new();
    node.for_each_current(
        &filter,
        |cur| cur.kind != Kind::Tombstone && !keep.contains(&cur.record_id),
        |_, record| {
            let from_source = record
                .provenance
                .as_ref()
                .is_some_and(|p| p.source_format == format && p.source.as_deref() == Some(source));
            if from_source {
                gone.push(record);
            }
        },
    )?;
    let now = maillage_record::now_ms();
    let mut recs = Vec::with_capacity(gone.len());
    // A tombstone's reason is bounded (2,000 characters); so is this one.
    let reason: String = format!("no longer in {source} ({format})")
        .chars()
        .take(1_000)
        .collect();
    for r in &gone {
        let tombstone = Record {
            record_id: r.record_id.clone(),
            version: r.version + 1,
            issued_at_ms: now,
            visibility: r.visibility.clone(),
            provenance: r.provenance.clone(),
            body: Body::Tombstone(Tombstone {
                reason: reason.clone(),
            }),
        };
        // The tombstone copies a valid record and a bounded reason: signing
        // it cannot fail validation; if it ever did, it is not reported.
        match envelope::sign(node.signing_key(), &tombstone) {
            Ok(rec) => recs.push(rec),
            Err(e) => tracing::error!(record_id = %r.record_id, error = %e, "cannot withdraw"),
        }
    }
    let stored = node.insert_many_newer_blocking(&recs)?;
    // Only what was written is reported withdrawn (a record that changed in
    // the meantime is not).
    Ok(recs
        .iter()
        .zip(stored)
        .filter(|(_, r)| r.is_ok())
        .map(|(r, _)| r.record().record_id.clone())
        .collect())
}
