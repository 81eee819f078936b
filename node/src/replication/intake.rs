//! What happens to envelopes that come from peers: batch-verified, then
//! stored if their author is trusted, quarantined if not, refused if forged.
//! Nothing unverified goes anywhere, not even to the quarantine. The order of
//! arrival does not matter: whenever trust grows (a Membership stored, from a
//! peer or published here; a root added; and at every start, in case the node
//! stopped in between), the records that waited for it are released.

use std::collections::{BTreeMap, HashSet};

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
            Body::Membership(m) => Some(m.member_key),
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
        if let Err(e) = node.store.quarantine(&fresh, peer) {
            node.forget_quarantined(fresh.iter().map(|r| r.id()));
            return Err(e);
        }
        out.quarantined = fresh.len() as u64;
        for rec in &fresh {
            tracing::info!(peer, author = %rec.author(), id = %rec.id(), "quarantined a record of an untrusted author");
        }
    }
    if !keys.is_empty() {
        out.stored += release_trusted(node)?;
    }
    Ok(out)
}

/// What a record released from quarantine says it came from when the
/// quarantine did not keep its peer (entries of older versions); no peer
/// name has parentheses.
pub const QUARANTINE_ORIGIN: &str = "(quarantine)";

/// Releases what trust now accepts among the quarantined records (blocking).
/// Called whenever trust may have grown. Every author in quarantine that some
/// membership names is looked at, not only the keys a new membership names: a
/// member promoted to committee makes its own members trusted, and a root
/// added makes the members of its committees trusted. A pass that stores
/// memberships may trust more: passes go on until one stores nothing, so the
/// order in which authors are looked at does not matter. Returns how many
/// records were stored.
pub fn release_trusted(node: &Node) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        if node.quarantined() == 0 {
            return Ok(total);
        }
        let mut stored = 0;
        for author in node.store.quarantine_authors()? {
            // Records of a key no membership names would stay anyway.
            if node.trust.may_accept(&author) {
                stored += release_author(node, &author)?;
            }
        }
        total += stored;
        if stored == 0 {
            return Ok(total);
        }
    }
}

/// Stores the quarantined records of `author` that trust accepts now, each
/// verified again (the quarantine is not trusted storage). The others stay,
/// not even verified: a record is decoded first, and only one that trust
/// accepts is worth a signature check. Returns how many were stored.
fn release_author(node: &Node, author: &PublicKey) -> Result<u64, StoreError> {
    let waiting = node.store.quarantined(Some(author), usize::MAX)?;
    // By the peer each came from, which they are stored as coming from.
    let mut by_peer: BTreeMap<Option<&str>, Vec<VerifiedRecord>> = BTreeMap::new();
    let mut broken = Vec::new();
    for q in &waiting {
        // One that does not decode does not verify either: it is dropped below.
        if envelope::decode_stored(&q.bytes)
            .is_ok_and(|r| !node.trust.accepts(&q.author, r.issued_at_ms))
        {
            continue;
        }
        match envelope::verify_bytes(&q.bytes) {
            Ok(rec) => by_peer.entry(q.peer.as_deref()).or_default().push(rec),
            Err(e) => {
                tracing::error!(id = %q.id, error = %e, "dropped a quarantined record that no longer verifies");
                broken.push((q.author, q.id));
            }
        }
    }
    let tried: HashSet<_> = by_peer.values().flatten().map(|r| r.id()).collect();
    let (mut stored, mut still) = (0, HashSet::new());
    for (peer, mut recs) in by_peer {
        let origin = Origin::Peer(peer.unwrap_or(QUARANTINE_ORIGIN));
        stored += store_accepted(node, &mut recs, origin)?.0;
        still.extend(recs.iter().map(|r| r.id()));
    }
    let taken: Vec<_> = waiting
        .iter()
        .filter(|q| tried.contains(&q.id) && !still.contains(&q.id))
        .map(|q| (q.author, q.id))
        .chain(broken)
        .collect();
    node.store.unquarantine(&taken)?;
    node.forget_quarantined(taken.iter().map(|(_, id)| *id));
    if stored > 0 {
        tracing::info!(%author, stored, "released quarantined records of a newly trusted author");
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::tests::start_node;
    use maillage_record::model::{Dataset, Membership, MembershipRole};
    use maillage_record::{Record, SigningKey, Siren, Visibility};

    fn signer(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn signed(by: &SigningKey, record_id: &str, version: u64, body: Body) -> pb::Envelope {
        let record = Record {
            record_id: record_id.into(),
            version,
            issued_at_ms: 1_764_000_000_000,
            visibility: Visibility::Public,
            provenance: None,
            body,
        };
        envelope::sign(by, &record).unwrap().to_proto()
    }

    fn membership(member: &SigningKey, role: MembershipRole) -> Body {
        Body::Membership(Membership {
            member_key: PublicKey(member.verifying_key().to_bytes()),
            siren: Siren::parse("213101496").unwrap(),
            role,
            valid_from_ms: 0,
            valid_until_ms: 0,
        })
    }

    fn dataset(title: &str) -> Body {
        Body::Dataset(Dataset::new(title, "Données de la commune"))
    }

    /// Records that wait for trust are released however trust comes: a
    /// membership published on this node, a member promoted to committee
    /// (which trusts that member's own members), a root added.
    #[tokio::test]
    async fn quarantined_records_are_released_whenever_trust_grows() {
        let dir = tempfile::tempdir().unwrap();
        let node = start_node(dir.path()).await;
        // The blocking calls the replicator makes off the runtime, called
        // here on the test's own thread.
        let intake = |envs: Vec<pb::Envelope>| intake_blocking(&node, &envs, "peer").unwrap();
        let stored = |env: &pb::Envelope| {
            let id = envelope::verify(env).unwrap().id();
            node.store.contains(&id).unwrap()
        };

        // A commune's record waits; this node, its committee, then signs
        // the commune's membership itself.
        let commune = signer(10);
        let early = signed(&commune, "voirie", 1, dataset("Voirie"));
        assert_eq!(intake(vec![early.clone()]).quarantined, 1);
        let m = envelope::sign(
            node.signing_key(),
            &Record {
                record_id: "membre-commune".into(),
                version: 1,
                issued_at_ms: 1_764_000_000_000,
                visibility: Visibility::Public,
                provenance: None,
                body: membership(&commune, MembershipRole::Member),
            },
        )
        .unwrap();
        crate::service::publish::store_published(&node, m)
            .await
            .unwrap();
        assert!(stored(&early), "released by the membership published here");
        assert_eq!(node.quarantined(), 0);
        // It says which peer it came from, not that it waited.
        let id = envelope::verify(&early).unwrap().id();
        let change = node
            .store
            .changes_since(0, usize::MAX)
            .unwrap()
            .into_iter()
            .find(|c| c.id == id)
            .unwrap();
        assert_eq!(change.relayed_by.as_deref(), Some("peer"));

        // A root endorses an EPCI as a plain member, which endorses a
        // commune: the commune's record waits, until the root makes the
        // EPCI a committee.
        let (root, epci, member) = (signer(20), signer(21), signer(22));
        node.trust
            .add_root(PublicKey(root.verifying_key().to_bytes()), "committee")
            .unwrap();
        let as_member = signed(&root, "epci", 1, membership(&epci, MembershipRole::Member));
        let endorses = signed(
            &epci,
            "commune",
            1,
            membership(&member, MembershipRole::Member),
        );
        assert_eq!(intake(vec![as_member, endorses]).stored, 2);
        let waiting = signed(&member, "eclairage", 1, dataset("Éclairage public"));
        assert_eq!(intake(vec![waiting.clone()]).quarantined, 1);
        let promoted = signed(
            &root,
            "epci",
            2,
            membership(&epci, MembershipRole::Committee),
        );
        let out = intake(vec![promoted]);
        assert_eq!(out.stored, 2, "the promotion and the record it trusts");
        assert!(stored(&waiting));

        // Committees not yet trusted, each with a commune it endorses: all
        // wait. Made roots, the committees' records are released, then the
        // communes', which their memberships trust, whichever of the two
        // keys the quarantine lists first.
        let mut records = Vec::new();
        for seed in [30, 32, 34, 36] {
            let (committee, commune) = (signer(seed), signer(seed + 1));
            let m = signed(
                &committee,
                "c",
                1,
                membership(&commune, MembershipRole::Member),
            );
            let r = signed(&commune, "budget", 1, dataset("Budget"));
            assert_eq!(intake(vec![m, r.clone()]).quarantined, 2);
            node.trust
                .add_root(PublicKey(committee.verifying_key().to_bytes()), "")
                .unwrap();
            records.push(r);
        }
        assert_eq!(release_trusted(&node).unwrap(), 8);
        assert!(records.iter().all(stored));
        assert_eq!(node.quarantined(), 0);

        // A promotion that itself waited: an EPCI endorsed as a plain member
        // by a root has endorsed a commune, whose record waits; a committee
        // not yet trusted makes the EPCI a committee. Made a root, that
        // committee releases the promotion, and with it the commune's record,
        // whichever of their keys the quarantine lists first.
        let key = |k: &SigningKey| PublicKey(k.verifying_key().to_bytes());
        for seed in [40, 44, 48, 52] {
            let (root, committee, epci, commune) = (
                signer(seed),
                signer(seed + 1),
                signer(seed + 2),
                signer(seed + 3),
            );
            node.trust.add_root(key(&root), "").unwrap();
            let endorsed = [
                signed(&root, "epci", 1, membership(&epci, MembershipRole::Member)),
                signed(
                    &epci,
                    "commune",
                    1,
                    membership(&commune, MembershipRole::Member),
                ),
            ];
            assert_eq!(intake(endorsed.to_vec()).stored, 2);
            let waiting = signed(&commune, "parcs", 1, dataset("Parcs et jardins"));
            let promotion = signed(
                &committee,
                "epci-comite",
                1,
                membership(&epci, MembershipRole::Committee),
            );
            assert_eq!(intake(vec![waiting.clone(), promotion]).quarantined, 2);
            node.trust.add_root(key(&committee), "").unwrap();
            assert_eq!(release_trusted(&node).unwrap(), 2, "seed {seed}");
            assert!(stored(&waiting), "seed {seed}");
        }
    }

    /// A membership that arrives after its withdrawal changes nothing, also
    /// when the node restarted in between (trust then comes from the store).
    #[tokio::test]
    async fn a_withdrawn_membership_stays_withdrawn_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let node = start_node(dir.path()).await;
        let (root, member) = (signer(60), signer(61));
        node.trust
            .add_root(PublicKey(root.verifying_key().to_bytes()), "")
            .unwrap();
        let withdrawal = Body::Tombstone(maillage_record::model::Tombstone {
            reason: "fin de l'adhésion".into(),
        });
        let out = intake_blocking(&node, &[signed(&root, "m", 2, withdrawal)], "peer").unwrap();
        assert_eq!(out.stored, 1);
        drop(node);

        let node = crate::node::tests::restart_node(dir.path()).await;
        let late = signed(&root, "m", 1, membership(&member, MembershipRole::Member));
        assert_eq!(intake_blocking(&node, &[late], "peer").unwrap().stored, 1);
        let member = PublicKey(member.verifying_key().to_bytes());
        assert!(!node.trust.accepts(&member, 1_764_000_000_000));
        assert!(node.trust.siren_of(&member).is_none());
    }
}
