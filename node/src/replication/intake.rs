//! What happens to envelopes that come from peers: batch-verified, then
//! handed to the ledger, which stores them if their author is trusted and
//! puts them in quarantine if not (`Ledger::admit`); forged ones are refused
//! here. Nothing unverified goes anywhere, not even to the quarantine.

use maillage_proto::v1 as pb;
use maillage_record::{PublicKey, envelope};

use crate::ledger::Admitted;
use crate::node::Node;
use crate::store::StoreError;

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
    /// Ids a fetch asked for that the peer did not send.
    pub withheld: u64,
}

impl std::ops::AddAssign for Intake {
    fn add_assign(&mut self, o: Intake) {
        self.stored += o.stored;
        self.duplicates += o.duplicates;
        self.quarantined += o.quarantined;
        self.rejected += o.rejected;
        self.withheld += o.withheld;
    }
}

/// Verifies and stores envelopes received from `peer`, with when the
/// federation first saw each as the peer says (`first_seen_ms`, parallel to
/// `envelopes`; missing ones are unknown) (blocking: signature checks and a
/// synced write; call it off the async runtime).
pub fn intake_blocking(
    node: &Node,
    envelopes: &[pb::Envelope],
    first_seen_ms: &[i64],
    peer: &str,
) -> Result<Intake, StoreError> {
    let mut forged = 0;
    let mut verified = Vec::with_capacity(envelopes.len());
    let mut first_seen = std::collections::HashMap::new();
    let seen = first_seen_ms.iter().copied().chain(std::iter::repeat(0));
    for ((result, env), at) in envelope::verify_batch(envelopes)
        .into_iter()
        .zip(envelopes)
        .zip(seen)
    {
        match result {
            Ok(rec) => {
                if at > 0 {
                    first_seen.insert(rec.id(), at);
                }
                verified.push(rec)
            }
            Err(e) => {
                forged += 1;
                node.ledger().quarantine().note_refused(envelope::record_id(
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
    let Admitted {
        stored,
        duplicates,
        quarantined,
        refused,
    } = node.ledger().admit_seen(verified, &first_seen, peer)?;
    if refused > 0 {
        let limits = node.ledger().quarantine().limits();
        tracing::warn!(
            peer,
            refused,
            records = limits.records,
            bytes = limits.bytes,
            per_peer = limits.per_peer,
            "records refused: the quarantine is full (or this peer's share of it), or a version changed a record's kind; trust their authors, `maillage quarantine drop` what should not wait, or raise replication.quarantine_limit, quarantine_max_bytes, quarantine_per_peer"
        );
    }
    Ok(Intake {
        stored,
        duplicates,
        quarantined,
        rejected: forged + refused,
        withheld: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::tests::start_node;
    use maillage_record::model::{Dataset, Membership, MembershipRole};
    use maillage_record::{Body, Record, SigningKey, Siren, Visibility};

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
            scope: vec![],
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
        let intake = |envs: Vec<pb::Envelope>| intake_blocking(&node, &envs, &[], "peer").unwrap();
        let stored = |env: &pb::Envelope| {
            let id = envelope::verify(env).unwrap().id();
            node.store().contains(&id).unwrap()
        };

        // A commune's record waits; this node, its committee, then signs
        // the commune's membership itself.
        let commune = signer(10);
        let early = signed(&commune, "voirie", 1, dataset("Voirie"));
        assert_eq!(intake(vec![early.clone()]).quarantined, 1);
        let m = envelope::sign(
            node.author().signing_key(),
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
        assert_eq!(node.ledger().quarantine().len(), 0);
        // It says which peer it came from, not that it waited.
        let id = envelope::verify(&early).unwrap().id();
        let change = node
            .store()
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
        node.ledger()
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
        let (mut records, mut released) = (Vec::new(), 0);
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
            let (added, n) = node
                .ledger()
                .add_root(PublicKey(committee.verifying_key().to_bytes()), "")
                .unwrap();
            assert!(added);
            released += n;
            records.push(r);
        }
        assert_eq!(released, 8);
        assert!(records.iter().all(stored));
        assert_eq!(node.ledger().quarantine().len(), 0);

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
            node.ledger().add_root(key(&root), "").unwrap();
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
            let (_, released) = node.ledger().add_root(key(&committee), "").unwrap();
            assert_eq!(released, 2, "seed {seed}");
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
        node.ledger()
            .add_root(PublicKey(root.verifying_key().to_bytes()), "")
            .unwrap();
        let withdrawal = Body::Tombstone(maillage_record::model::Tombstone {
            reason: "fin de l'adhésion".into(),
        });
        let out =
            intake_blocking(&node, &[signed(&root, "m", 2, withdrawal)], &[], "peer").unwrap();
        assert_eq!(out.stored, 1);
        drop(node);

        let node = crate::node::tests::restart_node(dir.path()).await;
        let late = signed(&root, "m", 1, membership(&member, MembershipRole::Member));
        assert_eq!(
            intake_blocking(&node, &[late], &[], "peer").unwrap().stored,
            1
        );
        let member = PublicKey(member.verifying_key().to_bytes());
        assert!(!node.trust().accepts(&member, 1_764_000_000_000));
        assert!(node.speaks_for(&member).is_none());
    }
}
