//! What happens to envelopes that come from peers: batch-verified, then
//! stored if their author is trusted, quarantined if not, refused if forged.
//! Nothing unverified goes anywhere, not even to the quarantine.

use maillage_proto::v1 as pb;
use maillage_record::{PublicKey, VerifiedRecord, envelope};

use crate::node::Node;
use crate::store::StoreError;

/// What became of a batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Intake {
    /// New records stored (and announced to our own subscribers).
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

/// Verifies and stores envelopes received from `peer` (blocking: signature
/// checks and a synced write; call it off the async runtime).
pub fn intake_blocking(
    node: &Node,
    envelopes: &[pb::Envelope],
    peer: &str,
) -> Result<Intake, StoreError> {
    let mut out = Intake::default();
    let mut trusted = Vec::new();
    let mut untrusted = Vec::new();
    for (result, env) in envelope::verify_batch(envelopes).into_iter().zip(envelopes) {
        match result {
            Ok(rec) if node.trust.accepts(&rec.author()) => trusted.push(rec),
            Ok(rec) => untrusted.push(rec),
            Err(e) => {
                out.rejected += 1;
                if let (Some(author), Ok(sig)) = (
                    PublicKey::from_slice(&env.author),
                    <[u8; 64]>::try_from(env.signature.as_slice()),
                ) {
                    node.note_refused(maillage_record::RecordId(
                        sha2_id(&env.payload, &author.0, &sig),
                    ));
                }
                let author = PublicKey::from_slice(&env.author)
                    .map_or_else(|| "?".to_string(), |k| k.to_hex());
                tracing::warn!(peer, %author, error = %e, "refused a record from a peer");
            }
        }
    }
    let stored = node.insert_many_blocking(&trusted)? as u64;
    out.stored = stored;
    out.duplicates = trusted.len() as u64 - stored;

    let mut fresh = Vec::new();
    for rec in untrusted {
        if node.is_quarantined(&rec.id()) || node.store.contains(&rec.id())? {
            out.duplicates += 1;
        } else {
            fresh.push(rec);
        }
    }
    if !fresh.is_empty() {
        let room = node
            .replication
            .quarantine_limit
            .saturating_sub(node.quarantined()) as usize;
        if fresh.len() > room {
            let refused = fresh.len() - room;
            out.rejected += refused as u64;
            tracing::warn!(
                peer,
                refused,
                limit = node.replication.quarantine_limit,
                "quarantine is full: records of untrusted authors refused; trust their authors or raise replication.quarantine_limit"
            );
            fresh.truncate(room);
        }
        node.store.quarantine(&fresh)?;
        out.quarantined = fresh.len() as u64;
        node.note_quarantined(fresh.iter().map(|r| r.id()), true);
        for rec in &fresh {
            tracing::info!(peer, author = %rec.author(), id = %rec.id(), "quarantined a record of an untrusted author");
        }
    }
    Ok(out)
}

/// Releases the quarantined records of `author`, now trusted: each is
/// verified again (the quarantine is not trusted storage) and stored.
pub fn release_blocking(node: &Node, author: &PublicKey) -> Result<u64, StoreError> {
    let waiting = node.store.quarantined(Some(author), usize::MAX)?;
    let mut recs: Vec<VerifiedRecord> = Vec::with_capacity(waiting.len());
    for q in &waiting {
        match envelope::verify_bytes(&q.bytes) {
            Ok(rec) => recs.push(rec),
            Err(e) => tracing::error!(id = %q.id, error = %e, "dropped a quarantined record that no longer verifies"),
        }
    }
    let stored = node.insert_many_blocking(&recs)? as u64;
    let keys: Vec<_> = waiting.iter().map(|q| (q.author, q.id)).collect();
    node.store.unquarantine(&keys)?;
    node.note_quarantined(waiting.iter().map(|q| q.id), false);
    if stored > 0 {
        tracing::info!(%author, stored, "released quarantined records of a newly trusted author");
    }
    Ok(stored)
}

/// The id an envelope would have (SHA-256 of its canonical encoding).
fn sha2_id(payload: &[u8], author: &[u8; 32], signature: &[u8; 64]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(envelope::canonical_encoding(payload, author, signature)).into()
}
