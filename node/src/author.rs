//! Signing as this node: the rules every record the node writes under its
//! own key follows, whether an operator publishes it (`SignAndPublish`),
//! an import brings it (`Import`), or it withdraws what left a source
//! (`WithdrawMissing`):
//! - the node signs only as its own organisation: an Organisation record of
//!   another SIREN is refused, and an imported row of another organisation
//!   says on whose behalf (`provenance.on_behalf_of`), never pretends;
//! - a draft without a version becomes the next one;
//! - a withdrawal (tombstone) goes to exactly the audience of what it
//!   withdraws;
//! - a version that narrows who may see a record goes with a withdrawal
//!   for the former audience (`Signed::notice`): nodes outside the new
//!   audience learn that what they hold is superseded, not what replaced it;
//! - an import stores a new version only where a row changed, and never
//!   takes over a live record of another source.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use maillage_record::model::Tombstone;
use maillage_record::{
    Body, EnvelopeError, Kind, PublicKey, Record, RecordId, SigningKey, Siren, VerifiedRecord,
    Visibility, envelope,
};

use crate::ledger::Ledger;
use crate::store::{CurrentEntry, ListFilter, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AuthorError {
    #[error(
        "the record names author {named}, but this node signs only as {own} ({name}, SIREN {siren}): \
         have that author sign it and send it with Publish"
    )]
    OtherAuthor {
        named: String,
        own: PublicKey,
        name: String,
        siren: Siren,
    },
    #[error(
        "this node signs for SIREN {siren} ({name}); an Organisation record for SIREN {claimed} \
         must be signed by that organisation's own key"
    )]
    OtherOrganisation {
        siren: Siren,
        name: String,
        claimed: Siren,
    },
    #[error(
        "a membership endorses another organisation's key; this one names this node's own key \
         ({own}): a key cannot vouch for itself (its committee or a trust root endorses it)"
    )]
    SelfEndorsement { own: PublicKey },
    #[error("collection item '{item}': {reason}; a collection names its items to all its readers")]
    CollectionItem { item: String, reason: String },
    #[error(
        "this node's key was handed over to {successor}: restart the node (it then signs with \
         the new key)"
    )]
    HandedOver { successor: PublicKey },
    #[error(
        "this node was restored from a backup taken {taken}: it signs nothing until it has \
         synced with each of its peers ({waiting} still to go), so that it never numbers a \
         version twice (what it published after the backup comes back from them); run \
         `maillage sync`, or `maillage peer remove NAME` for a peer gone for good"
    )]
    Restored { taken: String, waiting: String },
    #[error(
        "a succession of this node's own key is made by `maillage key rotate`, which also \
         writes the new key and re-signs the catalogue with it"
    )]
    OwnSuccession,
    #[error(transparent)]
    Invalid(#[from] EnvelopeError),
    #[error(
        "the current version of '{record_id}' ({id}) does not decode: not withdrawn, since its \
         visibility is unknown; `maillage get {id}` shows it"
    )]
    UnknownVisibility { record_id: String, id: RecordId },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A signed draft: the record, and, if it narrows who may see the record,
/// the withdrawal that goes first to the former audience (its version just
/// before the record's). Nodes outside the new audience would otherwise
/// keep the earlier version current, and keep showing it, forever.
#[derive(Debug, Clone)]
pub struct Signed {
    pub notice: Option<VerifiedRecord>,
    pub record: VerifiedRecord,
}

/// The reason a narrowing notice gives (`Signed::notice`).
pub const NARROWED: &str = "visibilité restreinte dans une version suivante (visibility narrowed)";

/// What became of one imported draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created { version: u64, id: RecordId },
    Updated { version: u64, id: RecordId },
    Unchanged { version: u64 },
    Rejected(String),
}

/// This node as an author: its key, its organisation, and where what it
/// signs is stored.
pub struct Author {
    key: SigningKey,
    public_key: PublicKey,
    siren: Siren,
    name: String,
    store: Arc<Store>,
    ledger: Arc<Ledger>,
    /// The key this node's key handed over to (`hand_over`): it signs
    /// nothing more until it restarts with it.
    handed_over: std::sync::Mutex<Option<PublicKey>>,
    /// After a restore: the peers to sync with before signing again
    /// (`hold_until_synced`).
    restored: std::sync::Mutex<Option<RestoreHold>>,
}

/// What `Author::hand_over` did.
#[derive(Debug, Clone)]
pub struct HandedOver {
    pub successor: PublicKey,
    /// The succession record, signed by the former key.
    pub succession: RecordId,
    /// Records re-signed by the successor (each withdrawn under the former
    /// key).
    pub records: u64,
    /// The successor's Organisation record, for `organisation.envelope`.
    pub organisation: Option<VerifiedRecord>,
}

/// What a restored node waits for before it signs again.
struct RestoreHold {
    /// When the backup was taken, as shown to the operator.
    taken: String,
    waiting: std::collections::BTreeSet<String>,
}

/// The current version of a record of this node, decoded if it decodes.
struct Current {
    entry: CurrentEntry,
    record: Option<Record>,
}

impl Author {
    pub fn new(
        key: SigningKey,
        siren: Siren,
        name: String,
        store: Arc<Store>,
        ledger: Arc<Ledger>,
    ) -> Author {
        Author {
            public_key: PublicKey(key.verifying_key().to_bytes()),
            key,
            siren,
            name,
            store,
            ledger,
            handed_over: std::sync::Mutex::new(None),
            restored: std::sync::Mutex::new(None),
        }
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// Signs a draft an operator wrote (blocking: it reads the current
    /// version). `named` is the author the request names, if any. A draft
    /// without a version becomes the next version, without a date is dated
    /// now; a withdrawal takes the visibility of what it withdraws.
    pub fn sign(&self, named: &[u8], mut draft: Record) -> Result<Signed, AuthorError> {
        self.check_may_sign()?;
        if !named.is_empty() && named != self.public_key.0 {
            return Err(AuthorError::OtherAuthor {
                named: PublicKey::from_slice(named)
                    .map_or_else(|| hex::encode(named), |k| k.to_hex()),
                own: self.public_key,
                name: self.name.clone(),
                siren: self.siren.clone(),
            });
        }
        self.check_organisation(&draft)?;
        let withdrawing = draft.kind() == Kind::Tombstone;
        let current = self.current(&draft.record_id)?;
        if draft.version == 0 || withdrawing {
            if withdrawing
                && let Some(c) = &current
                && c.record.is_none()
            {
                // A withdrawal must not guess: public by default could
                // reveal a restricted record's id.
                return Err(AuthorError::UnknownVisibility {
                    record_id: draft.record_id,
                    id: c.entry.id,
                });
            }
            follow(&mut draft, current.as_ref());
        }
        self.check_kind(&draft, current.as_ref())?;
        self.check_collection(&draft)?;
        if draft.issued_at_ms == 0 {
            draft.issued_at_ms = maillage_record::now_ms();
        }
        let notice = self.narrowing_notice(current.as_ref(), &mut draft)?;
        Ok(Signed {
            notice,
            record: envelope::sign(&self.key, &draft)?,
        })
    }

    /// If `draft` narrows who may see the current version (someone who may
    /// see it may not see the draft), the withdrawal of the current version
    /// for its audience, numbered just before the draft (which moves up a
    /// version if it has to).
    fn narrowing_notice(
        &self,
        current: Option<&Current>,
        draft: &mut Record,
    ) -> Result<Option<VerifiedRecord>, AuthorError> {
        let Some(Current {
            entry,
            record: Some(was),
        }) = current
        else {
            return Ok(None);
        };
        if was.kind() == Kind::Tombstone
            || draft.kind() == Kind::Tombstone
            || was.visibility.may_list(&draft.visibility)
        {
            return Ok(None);
        }
        let notice = Record {
            record_id: draft.record_id.clone(),
            version: entry.version + 1,
            issued_at_ms: draft.issued_at_ms,
            visibility: was.visibility.clone(),
            provenance: draft.provenance.clone(),
            body: Body::Tombstone(Tombstone {
                reason: NARROWED.into(),
            }),
        };
        draft.version = draft.version.max(entry.version + 2);
        Ok(Some(envelope::sign(&self.key, &notice)?))
    }

    /// Signs and stores a batch of imported drafts (blocking). Returns one
    /// outcome per draft, in order; the accepted ones are stored in one
    /// synced write.
    pub fn import(&self, drafts: Vec<Record>) -> Result<Vec<Outcome>, StoreError> {
        if let Err(e) = self.check_may_sign() {
            return Ok(drafts
                .iter()
                .map(|_| Outcome::Rejected(e.to_string()))
                .collect());
        }
        let mut outcomes = Vec::with_capacity(drafts.len());
        let mut signed: Vec<(usize, VerifiedRecord, bool)> = Vec::new();
        // Narrowing notices, by the index in `signed` of the row each goes with.
        let mut notices: Vec<(usize, VerifiedRecord)> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        // (item, draft, whether the record existed, its narrowing notice)
        let mut to_sign: Vec<(usize, Record, bool, Option<VerifiedRecord>)> = Vec::new();
        let now = maillage_record::now_ms();
        for (i, mut draft) in drafts.into_iter().enumerate() {
            if let Some(first) = seen.insert(draft.record_id.clone(), i) {
                outcomes.push(Outcome::Rejected(format!(
                    "record_id '{}' comes twice in this import (also item {}): two rows of the \
                     source have the same identifier",
                    draft.record_id,
                    first + 1
                )));
                continue;
            }
            // A row of this node's own organisation is not on anyone's behalf.
            if let Some(p) = &mut draft.provenance
                && p.on_behalf_of
                    .as_ref()
                    .is_some_and(|a| a.siren.as_deref() == Some(self.siren.as_str()))
            {
                p.on_behalf_of = None;
            }
            if let Err(e) = self.check_organisation(&draft) {
                outcomes.push(Outcome::Rejected(e.to_string()));
                continue;
            }
            // The node numbers and dates what it imports.
            draft.version = 0;
            draft.issued_at_ms = 0;
            if let Err(e) = draft.validate_draft() {
                outcomes.push(Outcome::Rejected(e.to_string()));
                continue;
            }
            let current = self.current(&draft.record_id)?;
            // Numbered, and a withdrawal given its audience, before it is
            // compared: an unchanged row is then unchanged however it was
            // written.
            follow(&mut draft, current.as_ref());
            if let Err(e) = self
                .check_kind(&draft, current.as_ref())
                .and_then(|()| self.check_collection(&draft))
            {
                outcomes.push(Outcome::Rejected(e.to_string()));
                continue;
            }
            if let Some(Current {
                entry,
                record: Some(r),
            }) = &current
            {
                if same_content(r, &draft) {
                    outcomes.push(Outcome::Unchanged {
                        version: entry.version,
                    });
                    continue;
                }
                // A live record of another source (or written by hand) is
                // not taken over: a later --withdraw-missing of this source
                // would withdraw a row its own source still lists.
                if r.kind() != Kind::Tombstone
                    && let Some(other) = other_source(r, &draft)
                {
                    outcomes.push(Outcome::Rejected(format!(
                        "record_id '{}' already holds a record from {other}: not replaced by \
                         this import; to import this file as that same source, pass --source \
                         with its name",
                        draft.record_id
                    )));
                    continue;
                }
            }
            draft.issued_at_ms = now;
            let notice = match self.narrowing_notice(current.as_ref(), &mut draft) {
                Ok(n) => n,
                Err(e) => {
                    outcomes.push(Outcome::Rejected(e.to_string()));
                    continue;
                }
            };
            to_sign.push((i, draft, current.is_some(), notice));
            // Filled in below, once signed and written.
            outcomes.push(Outcome::Unchanged { version: 0 });
        }
        // Signing is most of an import's work: the batch is signed on as
        // many threads as there are cores.
        for ((i, _, existed, notice), rec) in to_sign.iter().zip(sign_all(&self.key, &to_sign)) {
            match rec {
                Ok(rec) => {
                    if let Some(n) = notice {
                        notices.push((signed.len(), n.clone()));
                    }
                    signed.push((*i, rec, *existed));
                }
                Err(e) => outcomes[*i] = Outcome::Rejected(e.to_string()),
            }
        }
        if signed.is_empty() {
            return Ok(outcomes);
        }
        // Notices first: a row whose notice is refused (the record changed
        // meanwhile) is not stored, or its former audience would keep the
        // earlier version for good.
        let mut lost = HashSet::new();
        if !notices.is_empty() {
            let recs: Vec<VerifiedRecord> = notices.iter().map(|(_, n)| n.clone()).collect();
            for ((row, _), result) in notices.iter().zip(self.ledger.insert_newer(&recs)?) {
                if let Err(e) = result {
                    let (i, rec, _) = &signed[*row];
                    outcomes[*i] = Outcome::Rejected(format!(
                        "record '{}' changed while it was imported ({e}): import again",
                        rec.record().record_id
                    ));
                    lost.insert(*row);
                }
            }
        }
        let signed: Vec<_> = signed
            .into_iter()
            .enumerate()
            .filter(|(row, _)| !lost.contains(row))
            .map(|(_, s)| s)
            .collect();
        let recs: Vec<VerifiedRecord> = signed.iter().map(|(_, r, _)| r.clone()).collect();
        // Only newer versions are written: if the record changed since it
        // was read above (a publish, another import), this row loses, rather
        // than two different records sharing one version number.
        let stored = self.ledger.insert_newer(&recs)?;
        for ((i, rec, existed), result) in signed.into_iter().zip(stored) {
            let (version, id) = (rec.record().version, rec.id());
            outcomes[i] = match (result, existed) {
                (Err(e), _) => Outcome::Rejected(format!(
                    "record '{}' changed while it was imported ({e}): import again",
                    rec.record().record_id
                )),
                (Ok(_), false) => Outcome::Created { version, id },
                (Ok(_), true) => Outcome::Updated { version, id },
            };
        }
        Ok(outcomes)
    }

    /// Withdraws this node's current records imported from (`format`,
    /// `source`) whose record_id is not in `keep` (blocking). Returns the
    /// record_ids withdrawn.
    pub fn withdraw_missing(
        &self,
        format: &str,
        source: &str,
        keep: &HashSet<String>,
    ) -> Result<Vec<String>, AuthorError> {
        self.check_may_sign()?;
        let filter = ListFilter {
            kind: None,
            author: Some(self.public_key),
        };
        let mut gone: Vec<Record> = Vec::new();
        self.store.for_each_current(
            &filter,
            |cur| cur.kind != Kind::Tombstone && !keep.contains(&cur.record_id),
            |_, record| {
                let from_source = record.provenance.as_ref().is_some_and(|p| {
                    p.source_format == format && p.source.as_deref() == Some(source)
                });
                if from_source {
                    gone.push(record);
                }
            },
        )?;
        let now = maillage_record::now_ms();
        // A tombstone's reason is bounded (2,000 characters); so is this one.
        let reason: String = format!("no longer in {source} ({format})")
            .chars()
            .take(1_000)
            .collect();
        let mut recs = Vec::with_capacity(gone.len());
        for r in &gone {
            let mut tombstone = Record {
                record_id: r.record_id.clone(),
                version: 0,
                issued_at_ms: now,
                visibility: r.visibility.clone(),
                provenance: r.provenance.clone(),
                body: Body::Tombstone(Tombstone {
                    reason: reason.clone(),
                }),
            };
            follow_record(&mut tombstone, r.version, Some(r));
            // The tombstone copies a valid record and a bounded reason:
            // signing it cannot fail validation; if it ever did, it is not
            // reported.
            match envelope::sign(&self.key, &tombstone) {
                Ok(rec) => recs.push(rec),
                Err(e) => {
                    tracing::error!(record_id = %r.record_id, error = %e, "cannot withdraw")
                }
            }
        }
        let stored = self.ledger.insert_newer(&recs)?;
        // Only what was written is reported withdrawn (a record that changed
        // in the meantime is not).
        Ok(recs
            .iter()
            .zip(stored)
            .filter(|(_, r)| r.is_ok())
            .map(|(r, _)| r.record().record_id.clone())
            .collect())
    }

    /// Whether this node may sign now: not once its key was handed over,
    /// nor while a restore's hold lasts (`hold_until_synced`).
    fn check_may_sign(&self) -> Result<(), AuthorError> {
        if let Some(successor) = *self.handed_over.lock().unwrap_or_else(|p| p.into_inner()) {
            return Err(AuthorError::HandedOver { successor });
        }
        match &*self.restored.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(hold) => Err(AuthorError::Restored {
                taken: hold.taken.clone(),
                waiting: hold.waiting.iter().cloned().collect::<Vec<_>>().join(", "),
            }),
            None => Ok(()),
        }
    }

    /// After a restore from a backup, signs nothing until each of `peers`
    /// has been synced with (`synced`): versions this node signed after the
    /// backup are back by then, and the next version follows them instead
    /// of numbering one twice. No peer: nothing to wait for.
    pub fn hold_until_synced(&self, taken: String, peers: Vec<String>) {
        *self.restored.lock().unwrap_or_else(|p| p.into_inner()) =
            (!peers.is_empty()).then(|| RestoreHold {
                taken,
                waiting: peers.into_iter().collect(),
            });
    }

    /// `peer` was synced with (or removed): true when that lifted the hold.
    pub fn synced(&self, peer: &str) -> bool {
        let mut hold = self.restored.lock().unwrap_or_else(|p| p.into_inner());
        let Some(h) = hold.as_mut() else {
            return false;
        };
        h.waiting.remove(peer);
        if h.waiting.is_empty() {
            *hold = None;
            return true;
        }
        false
    }

    /// A peer pinned while the hold lasts is waited for too: it may be the
    /// one holding what this node signed after the backup.
    pub fn also_wait_for(&self, peer: &str) {
        if let Some(h) = self
            .restored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            h.waiting.insert(peer.to_string());
        }
    }

    /// The peers still to sync with after a restore.
    pub fn restore_waiting(&self) -> Vec<String> {
        self.restored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|h| h.waiting.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Hands this node's key over to `successor` (blocking: one synced
    /// write): every current record of this node is withdrawn under the
    /// former key and signed again, same record_id and content, by the
    /// successor; then the former key signs the succession. Peers follow
    /// it: the successor inherits the former key's memberships, roots and
    /// pins, and records the former key signs later are refused. This node
    /// signs nothing more until it restarts with the successor.
    pub fn hand_over(&self, successor: &SigningKey) -> Result<HandedOver, AuthorError> {
        // A restored node's versions are not known yet (`hold_until_synced`).
        self.check_may_sign()?;
        let mut handed = self.handed_over.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(successor) = *handed {
            return Err(AuthorError::HandedOver { successor });
        }
        let next = PublicKey(successor.verifying_key().to_bytes());
        let mut current: Vec<Record> = Vec::new();
        self.store.for_each_current(
            &ListFilter {
                kind: None,
                author: Some(self.public_key),
            },
            |cur| {
                !matches!(
                    cur.kind,
                    Kind::Tombstone | Kind::Succession | Kind::Revocation
                )
            },
            |_, record| current.push(record),
        )?;
        // Withdrawals just before the succession, copies from it on: the
        // former key's last words are within its time.
        let at = maillage_record::now_ms();
        let reason =
            format!("clé remplacée : la fiche continue sous la clé {next} (key handed over)");
        let mut recs = Vec::with_capacity(2 * current.len() + 1);
        let mut organisation = None;
        for r in &current {
            // A membership stays under the former key as well: what that
            // key vouched for (a member's revocation, a recovery) still
            // rests on it. The successor signs its own copy.
            if r.kind() != Kind::Membership {
                let withdrawal = Record {
                    record_id: r.record_id.clone(),
                    version: r.version + 1,
                    issued_at_ms: at - 1,
                    visibility: r.visibility.clone(),
                    provenance: r.provenance.clone(),
                    body: Body::Tombstone(Tombstone {
                        reason: reason.clone(),
                    }),
                };
                recs.push(envelope::sign(&self.key, &withdrawal)?);
            }
            let copy = Record {
                version: 1,
                issued_at_ms: at,
                ..r.clone()
            };
            let signed = envelope::sign(successor, &copy)?;
            if r.kind() == Kind::Organisation {
                organisation = Some(signed.clone());
            }
            recs.push(signed);
        }
        let succession = envelope::sign(
            &self.key,
            &Record {
                record_id: format!("succession-{}", &next.to_hex()[..16]),
                version: 1,
                issued_at_ms: at,
                visibility: Visibility::Public,
                provenance: None,
                body: Body::Succession(maillage_record::model::Succession::consented(
                    self.public_key,
                    successor,
                )),
            },
        )?;
        let succession_id = succession.id();
        recs.push(succession);
        let mut results = self.ledger.insert_newer(&recs)?;
        let done = results.pop().expect("the succession is among them");
        // Once the succession is stored, the former key is done, whatever
        // else failed (a record changed meanwhile): it signs nothing more.
        done?;
        *handed = Some(next);
        for (rec, result) in recs.iter().zip(results) {
            if let Err(e) = result {
                tracing::warn!(record_id = rec.record().record_id, error = %e, "a record was not handed over to the new key: publish it again once the node restarts");
            }
        }
        Ok(HandedOver {
            successor: next,
            succession: succession_id,
            records: current.len() as u64,
            organisation,
        })
    }

    /// What this node may say of organisations: its own SIREN only, and
    /// never endorse itself (trust ignores such a membership anyway).
    fn check_organisation(&self, draft: &Record) -> Result<(), AuthorError> {
        match &draft.body {
            Body::Organisation(o) if o.siren != self.siren => Err(AuthorError::OtherOrganisation {
                siren: self.siren.clone(),
                name: self.name.clone(),
                claimed: o.siren.clone(),
            }),
            Body::Membership(m) if m.member_key == self.public_key => {
                Err(AuthorError::SelfEndorsement {
                    own: self.public_key,
                })
            }
            Body::Succession(x) if x.predecessor == self.public_key => {
                Err(AuthorError::OwnSuccession)
            }
            _ => Ok(()),
        }
    }

    /// A collection lists only records this node holds and that all its
    /// readers may see (nodes check it again on every read: an item's
    /// visibility may narrow later).
    fn check_collection(&self, draft: &Record) -> Result<(), AuthorError> {
        let Body::Collection(c) = &draft.body else {
            return Ok(());
        };
        for item in &c.items {
            let named = match &item.author {
                Some(a) => format!("{a}/{}", item.record_id),
                None => item.record_id.clone(),
            };
            let refuse = |reason: String| AuthorError::CollectionItem {
                item: named.clone(),
                reason,
            };
            let author = match &item.author {
                None => self.public_key,
                Some(hex) => {
                    PublicKey::parse_hex(hex).map_err(|e| refuse(format!("bad author key: {e}")))?
                }
            };
            let Some(current) = self.store.current(&author, &item.record_id)? else {
                return Err(refuse(format!(
                    "no record '{}' by {author} on this node",
                    item.record_id
                )));
            };
            let visibility = self
                .store
                .sync_items_many(&[current.id])?
                .pop()
                .flatten()
                .map(|i| i.visibility);
            match visibility {
                Some(v) if draft.visibility.may_list(&v) => {}
                Some(v) => {
                    return Err(refuse(format!(
                        "the record is {}, the collection is {}: listing it would name it to \
                         readers who may not see it",
                        v.name(),
                        draft.visibility.name()
                    )));
                }
                None => return Err(refuse("its visibility is unknown".into())),
            }
        }
        Ok(())
    }

    /// A record keeps its kind, even across a withdrawal: a new version of
    /// another kind than the last one that was not a withdrawal is refused
    /// (the store refuses it against the current version; this looks past
    /// a withdrawal, so that no node, whatever versions it holds, sees a
    /// record change kind).
    fn check_kind(&self, draft: &Record, current: Option<&Current>) -> Result<(), AuthorError> {
        let kind = draft.kind();
        let Some(c) = current else { return Ok(()) };
        if kind == Kind::Tombstone {
            return Ok(());
        }
        let mut last = c.record.as_ref().map(|r| (r.kind(), r.version));
        if c.entry.kind == Kind::Tombstone {
            last = None;
            for h in self
                .store
                .history(&self.public_key, &draft.record_id)?
                .iter()
                .rev()
            {
                if let Some(r) = self.store.record(&h.id)?
                    && r.kind() != Kind::Tombstone
                {
                    last = Some((r.kind(), r.version));
                    break;
                }
            }
        }
        match last {
            Some((was, _)) if was != kind && was != Kind::Tombstone => {
                Err(AuthorError::Store(StoreError::OtherKind {
                    record_id: draft.record_id.clone(),
                    version: draft.version,
                    current: was,
                    kind,
                }))
            }
            _ => Ok(()),
        }
    }

    fn current(&self, record_id: &str) -> Result<Option<Current>, StoreError> {
        let Some(entry) = self.store.current(&self.public_key, record_id)? else {
            return Ok(None);
        };
        let record = self.store.record(&entry.id)?;
        Ok(Some(Current { entry, record }))
    }
}

/// Makes `draft` follow the current version, if any: the next version if
/// it has none, and, for a withdrawal, the current version's audience.
fn follow(draft: &mut Record, current: Option<&Current>) {
    match current {
        None if draft.version == 0 => draft.version = 1,
        None => {}
        Some(c) => follow_record(draft, c.entry.version, c.record.as_ref()),
    }
}

fn follow_record(draft: &mut Record, current_version: u64, current: Option<&Record>) {
    if draft.version == 0 {
        draft.version = current_version + 1;
    }
    // A withdrawal goes to exactly those who may see the record: wider, it
    // would tell others the id of a record they were never shown (a JSON
    // tombstone without `visibility` is public); narrower, some would keep
    // a record that was withdrawn.
    if draft.kind() == Kind::Tombstone
        && let Some(r) = current
    {
        draft.visibility = r.visibility.clone();
    }
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

/// Signs each draft, on as many threads as there are cores (a batch of a
/// few is signed on this one); the results in order.
fn sign_all(
    key: &SigningKey,
    drafts: &[(usize, Record, bool, Option<VerifiedRecord>)],
) -> Vec<Result<VerifiedRecord, EnvelopeError>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || drafts.len() < 64 {
        return drafts
            .iter()
            .map(|(_, d, ..)| envelope::sign(key, d))
            .collect();
    }
    let chunk = drafts.len().div_ceil(threads);
    std::thread::scope(|s| {
        let parts: Vec<_> = drafts
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|(_, d, ..)| envelope::sign(key, d))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().expect("a signing thread panicked"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::tests::start_node;
    use maillage_record::model::{Dataset, Membership, MembershipRole, Organisation, Provenance};
    use maillage_record::{Visibility, envelope};

    fn draft(record_id: &str, visibility: Visibility, body: Body) -> Record {
        Record {
            record_id: record_id.into(),
            version: 0,
            issued_at_ms: 0,
            visibility,
            provenance: None,
            body,
        }
    }

    fn imported(record_id: &str, title: &str) -> Record {
        Record {
            provenance: Some(Provenance {
                source_format: "scdl".into(),
                source: Some("catalogue.csv".into()),
                source_identifier: Some(record_id.into()),
                on_behalf_of: None,
                as_written: Default::default(),
            }),
            ..draft(
                record_id,
                Visibility::Public,
                Body::Dataset(Dataset::new(title, "Données")),
            )
        }
    }

    /// The same rules whichever way a draft comes: the next version, a
    /// withdrawal to the audience of what it withdraws, no Organisation
    /// record for another SIREN.
    #[tokio::test]
    async fn operator_drafts_and_imports_follow_the_same_rules() {
        let dir = tempfile::tempdir().unwrap();
        let node = start_node(dir.path()).await;
        let author = node.author();
        let store = |rec: &VerifiedRecord| {
            node.ledger()
                .insert(rec, crate::store::Admission::RequireNewer)
                .unwrap()
        };
        let audience = Visibility::Restricted {
            audience: vec![Siren::parse("213101496").unwrap()],
        };

        let v1 = author
            .sign(
                &[],
                draft(
                    "budget",
                    audience.clone(),
                    Body::Dataset(Dataset::new("Budget", "Lignes")),
                ),
            )
            .unwrap();
        let v1 = v1.record;
        assert_eq!(v1.record().version, 1);
        store(&v1);
        // A withdrawal written as public goes to the record's audience only.
        let gone = author
            .sign(
                &node.public_key().0,
                draft(
                    "budget",
                    Visibility::Public,
                    Body::Tombstone(Tombstone {
                        reason: "erreur".into(),
                    }),
                ),
            )
            .unwrap()
            .record;
        assert_eq!(
            (gone.record().version, &gone.record().visibility),
            (2, &audience)
        );

        // Another author, another organisation: refused, with the same words
        // by SignAndPublish and by Import.
        let other = author.sign(&[7; 32], imported("x", "X")).unwrap_err();
        assert!(matches!(other, AuthorError::OtherAuthor { .. }), "{other}");
        let blagnac = Body::Organisation(Organisation::new(
            Siren::parse("213100696").unwrap(),
            "Blagnac",
        ));
        let refused = author
            .sign(&[], draft("org", Visibility::Public, blagnac.clone()))
            .unwrap_err()
            .to_string();
        assert!(refused.contains("must be signed by that organisation's own key"));
        let outcomes = author
            .import(vec![draft("org", Visibility::Public, blagnac)])
            .unwrap();
        assert_eq!(outcomes, [Outcome::Rejected(refused)]);

        // An import numbers after what is stored, and leaves an unchanged
        // row alone.
        let first = author.import(vec![imported("voirie", "Voirie")]).unwrap();
        assert!(matches!(first[0], Outcome::Created { version: 1, .. }));
        let again = author.import(vec![imported("voirie", "Voirie")]).unwrap();
        assert_eq!(again, [Outcome::Unchanged { version: 1 }]);
        let changed = author
            .import(vec![imported("voirie", "Voirie communale")])
            .unwrap();
        assert!(matches!(changed[0], Outcome::Updated { version: 2, .. }));

        // An imported withdrawal goes to the audience of what it withdraws,
        // and importing it again changes nothing.
        let parking = Record {
            visibility: audience.clone(),
            ..imported("parking", "Parkings")
        };
        author.import(vec![parking.clone()]).unwrap();
        let withdrawal = Record {
            visibility: Visibility::Public,
            body: Body::Tombstone(Tombstone {
                reason: "fermé".into(),
            }),
            ..parking
        };
        let gone = author.import(vec![withdrawal.clone()]).unwrap();
        let Outcome::Updated { version: 2, id } = gone[0] else {
            panic!("{gone:?}");
        };
        assert_eq!(
            node.store().record(&id).unwrap().unwrap().visibility,
            audience
        );
        let again = author.import(vec![withdrawal]).unwrap();
        assert_eq!(again, [Outcome::Unchanged { version: 2 }]);
    }

    /// A membership this node imports trusts its member at once: the
    /// member's records that waited in quarantine are released, as when the
    /// membership is published.
    #[tokio::test]
    async fn an_imported_membership_releases_what_it_trusts() {
        let dir = tempfile::tempdir().unwrap();
        let node = start_node(dir.path()).await;
        let commune = SigningKey::from_bytes(&[42; 32]);
        let waiting = envelope::sign(
            &commune,
            &Record {
                version: 1,
                issued_at_ms: 1_764_000_000_000,
                ..draft(
                    "parcs",
                    Visibility::Public,
                    Body::Dataset(Dataset::new("Parcs", "Jardins")),
                )
            },
        )
        .unwrap();
        let held = node
            .ledger()
            .admit(vec![waiting.clone()], "colomiers")
            .unwrap();
        assert_eq!(held.quarantined, 1);

        let membership = Body::Membership(Membership {
            member_key: PublicKey(commune.verifying_key().to_bytes()),
            siren: Siren::parse("213101496").unwrap(),
            role: MembershipRole::Member,
            valid_from_ms: 0,
            valid_until_ms: 0,
            scope: vec![],
        });
        let outcomes = node
            .author()
            .import(vec![draft(
                "membre-colomiers",
                Visibility::Public,
                membership,
            )])
            .unwrap();
        assert!(
            matches!(outcomes[0], Outcome::Created { .. }),
            "{outcomes:?}"
        );
        assert!(node.store().contains(&waiting.id()).unwrap());
        assert!(node.ledger().quarantine().is_empty());
    }
}
