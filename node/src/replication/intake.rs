//! What happens to envelopes that come from peers: batch-verified, then
//! stored if their author is trusted, quarantined if not, refused if forged.
//! Nothing unverified goes anywhere, not even to the quarantine. The order of
//! arrival does not matter: a Membership stored later releases the records
//! that waited for it.

use std::collections::HashSet;

use maillage_proto::v1 as pb;
use maillage_record::{Body, PublicKey, VerifiedRecord, envelope};

use crate::node::Node;
use crate::store::{Origin, StoreError};

/// What became of a batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Intake {
    /// New records stored (and announced to our own subscribers), including
    /// quarantined ones released by memberships in the batch.
    pub stored: u64,
    /// Valid records we already had.
    pub duplicates: u64,
    /// Valid records of untrusted authors, put aside.
    pub quarantined: u64,
    /// Forged or invalid envelopes, and records refused by a full quarantine.
    pub rejected: u64,
}

impl std::ops::AddAssign for Intake {
    fn add_assign(&mut self, o: Intake) {
        self.stored += o.stored;
        self.duplicates += o.duplicates;
        self.quarantined += o.quarantined;
        self.rejected += o.rejected;
    }
}

fn accepted(node: &Node, rec: &VerifiedRecord) -> bool {
    node.trust.accepts(&rec.author(), rec.record().issued_at_ms)
}

/// The keys that Memberships among `recs` endorse.
fn endorsed(recs: &[VerifiedRecord], new: &[bool]) -> Vec<PublicKey> {
    recs.iter()
        .zip(new)
        .filter(|(_, n)| **n)
        .filter_map(|(r, _)| match &r.record().body {
            Body::Membership(m) => PublicKey::parse_hex(&m.member_key).ok(),
            _ => None,
        })
        .collect()
}

/// Stores what the trust policy accepts among `waiting`, again and again:
/// a membership stored in one round may accept records of the next.
/// Returns (stored, duplicates, endorsed keys); `waiting` keeps the rest.
fn store_accepted(
    node: &Node,
    waiting: &mut Vec<VerifiedRecord>,
    origin: Origin<'_>,
) -> Result<(u64, u64, Vec<PublicKey>), StoreError> {
    let (mut stored, mut duplicates, mut keys) = (0, 0, Vec::new());
    loop {
        let (ok, rest): (Vec<_>, Vec<_>) = waiting.drain(..).partition(|r| accepted(node, r));
        *waiting = rest;
        if ok.is_empty() {
            return Ok((stored, duplicates, keys));
        }
        let new = node.insert_many_blocking(&ok, origin)?;
        let n = new.iter().filter(|b| **b).count() as u64;
        stored += n;
        duplicates += ok.len() as u64 - n;
        keys.extend(endorsed(&ok, &new));
    }
}

/// Verifies and stores envelopes received from `peer` (blocking: signature
/// checks and a synced write; call it off the async runtime).
pub fn intake_blocking(
    node: &Node,
    envelopes: &[pb::Envelope],
    peer: &str,
) -> Result<Intake, StoreError> {
    let mut out = Intake::default();
    let mut verified = Vec::with_capacity(envelopes.len());
    for (result, env) in envelope::verify_batch(envelopes).into_iter().zip(envelopes) {
        match result {
            Ok(rec) => verified.push(rec),
            Err(e) => {
                out.rejected += 1;
                node.note_refused(envelope::record_id(
                    &env.payload,
                    &env.author,
                    &env.signature,
                ));
                let author = PublicKey::from_slice(&env.author)
                    .map_or_else(|| "?".to_string(), |k| k.to_hex());
                tracing::warn!(peer, %author, error = %e, "refused a record from a peer");
            }
        }
    }
    let (stored, duplicates, keys) = store_accepted(node, &mut verified, Origin::Peer(peer))?;
    out.stored = stored;
    out.duplicates = duplicates;

    let mut fresh = Vec::new();
    for rec in verified {
        if node.is_quarantined(&rec.id()) || node.store.contains(&rec.id())? {
            out.duplicates += 1;
        } else {
            fresh.push(rec);
        }
    }
    if !fresh.is_empty() {
        let limit = node.replication.quarantine_limit;
        let room = node.reserve_quarantine(fresh.iter().map(|r| r.id()), limit);
        if fresh.len() > room {
            let refused = fresh.len() - room;
            out.rejected += refused as u64;
            tracing::warn!(
                peer,
                refused,
                limit,
                "quarantine is full: records of untrusted authors refused; trust their authors or raise replication.quarantine_limit"
            );
            fresh.truncate(room);
        }
        if let Err(e) = node.store.quarantine(&fresh) {
            node.forget_quarantined(fresh.iter().map(|r| r.id()));
            return Err(e);
        }
        out.quarantined = fresh.len() as u64;
        for rec in &fresh {
            tracing::info!(peer, author = %rec.author(), id = %rec.id(), "quarantined a record of an untrusted author");
        }
    }
    out.stored += release_blocking(node, keys)?;
    Ok(out)
}

/// What a record released from quarantine says it came from: the quarantine
/// does not keep the peer, and no peer name has parentheses.
pub const QUARANTINE_ORIGIN: &str = "(quarantine)";

/// Releases the quarantined records of `keys`, newly trusted (a root added,
/// or a membership stored), and then of the keys that the memberships so
/// released endorse, and so on. Each record is verified again (the
/// quarantine is not trusted storage); records whose date no membership
/// covers stay. Returns how many were stored.
pub fn release_blocking(node: &Node, keys: Vec<PublicKey>) -> Result<u64, StoreError> {
    let mut work = keys;
    let mut seen = HashSet::new();
    let mut total = 0;
    while let Some(key) = work.pop() {
        if !seen.insert(key) {
            continue;
        }
        let waiting = node.store.quarantined(Some(&key), usize::MAX)?;
        if waiting.is_empty() {
            continue;
        }
        let mut recs: Vec<VerifiedRecord> = Vec::with_capacity(waiting.len());
        let mut broken = Vec::new();
        for q in &waiting {
            match envelope::verify_bytes(&q.bytes) {
                Ok(rec) => recs.push(rec),
                Err(e) => {
                    tracing::error!(id = %q.id, error = %e, "dropped a quarantined record that no longer verifies");
                    broken.push((q.author, q.id));
                }
            }
        }
        let before: HashSet<_> = recs.iter().map(|r| r.id()).collect();
        let (stored, _, endorsed) =
            store_accepted(node, &mut recs, Origin::Peer(QUARANTINE_ORIGIN))?;
        let still: HashSet<_> = recs.iter().map(|r| r.id()).collect();
        let taken: Vec<_> = waiting
            .iter()
            .filter(|q| before.contains(&q.id) && !still.contains(&q.id))
            .map(|q| (q.author, q.id))
            .chain(broken)
            .collect();
        node.store.unquarantine(&taken)?;
        node.forget_quarantined(taken.iter().map(|(_, id)| *id));
        if stored > 0 {
            tracing::info!(author = %key, stored, "released quarantined records of a newly trusted author");
        }
        total += stored;
        work.extend(endorsed);
    }
    Ok(total)
}
