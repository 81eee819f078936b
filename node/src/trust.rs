//! Whose records this node accepts from peers (docs/architecture.md, "Trust"):
//! - this node's own organisation;
//! - a trust root the operator added (`maillage trust add-root`);
//! - a key endorsed by a `Membership` record whose author is a root (or this
//!   node's own organisation), or a committee that a root endorsed (one level
//!   of delegation), and whose validity covers the record's `issued_at`.
//!
//! Records of other authors wait in quarantine (`replication::quarantine`)
//! until one of those becomes true, whatever the order in which things
//! arrive (`Ledger::release`). Trust is kept in memory: the ledger persists
//! roots and tells it of every membership stored.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::RwLock;

use maillage_record::model::{Membership, MembershipRole};
use maillage_record::{Body, Kind, PublicKey, Record, Siren};
use serde::{Deserialize, Serialize};

use crate::store::{ListFilter, Store, StoreError};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RootInfo {
    #[serde(default)]
    pub note: String,
    pub added_at_ms: i64,
}

/// The current version of each Membership record, by (issuer, record_id),
/// and who each one endorses. A withdrawal (a tombstone) is kept too, even
/// one that came before the membership it withdraws: that membership, older,
/// then changes nothing, whatever the order in which they arrived.
#[derive(Default)]
struct Endorsements {
    by_record: HashMap<(PublicKey, String), (u64, Option<Membership>)>,
    by_member: HashMap<PublicKey, HashSet<(PublicKey, String)>>,
}

/// In memory only: the ledger persists roots (`add_root`, `remove_root` take
/// the write to make) and feeds it what is stored (`observe`).
pub struct Trust {
    own: PublicKey,
    roots: RwLock<BTreeMap<PublicKey, RootInfo>>,
    endorsements: RwLock<Endorsements>,
}

impl Trust {
    pub fn load(store: &Store, own: PublicKey) -> Result<Trust, StoreError> {
        let mut roots = BTreeMap::new();
        for (key, value) in store.roots()? {
            // A value this version cannot read still names a trusted key.
            let info = serde_json::from_slice(&value).unwrap_or(RootInfo {
                note: String::new(),
                added_at_ms: 0,
            });
            roots.insert(key, info);
        }
        let trust = Trust {
            own,
            roots: RwLock::new(roots),
            endorsements: RwLock::default(),
        };
        // Every current Membership record in the store.
        let filter = ListFilter {
            kind: Some(Kind::Membership),
            author: None,
        };
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            let (entries, next) = store.list_current(&filter, cursor.as_deref(), 1000, |_| true)?;
            for e in entries {
                if let Some(stored) = store.get(&e.id)?
                    && let Ok(record) = maillage_record::envelope::decode_stored(&stored.bytes)
                {
                    trust.observe(&e.author, &record);
                }
            }
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        Ok(trust)
    }

    /// A root, or this node's own key: a committee's node trusts the
    /// memberships it signs itself.
    pub fn is_root(&self, key: &PublicKey) -> bool {
        *key == self.own
            || self
                .roots
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(key)
    }

    /// Whether a record by `author` issued at `at_ms` is accepted from peers.
    pub fn accepts(&self, author: &PublicKey, at_ms: i64) -> bool {
        self.is_root(author) || self.endorsed(author, at_ms, None, 2)
    }

    /// Whether some record by `key` might be accepted: a root, or a key some
    /// membership names, whatever its dates or issuer. A cheap first look
    /// before the records waiting in quarantine are verified again.
    pub fn may_accept(&self, key: &PublicKey) -> bool {
        self.is_root(key)
            || self
                .endorsements
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .by_member
                .get(key)
                .is_some_and(|m| !m.is_empty())
    }

    /// Whether `key` holds a Membership (with `role`, if given) covering
    /// `at_ms`, by a root, or (depth 2) by a committee a root endorsed.
    fn endorsed(
        &self,
        key: &PublicKey,
        at_ms: i64,
        role: Option<MembershipRole>,
        depth: u8,
    ) -> bool {
        let issuers: Vec<PublicKey> = {
            let e = self.endorsements.read().unwrap_or_else(|p| p.into_inner());
            let Some(records) = e.by_member.get(key) else {
                return false;
            };
            records
                .iter()
                .filter(|r| {
                    matches!(e.by_record.get(*r), Some((_, Some(m)))
                        if m.covers(at_ms) && role.is_none_or(|want| m.role == want))
                })
                .map(|(issuer, _)| *issuer)
                .collect()
        };
        issuers.iter().any(|issuer| {
            self.is_root(issuer)
                || (depth > 1
                    && self.endorsed(issuer, at_ms, Some(MembershipRole::Committee), depth - 1))
        })
    }

    /// The SIREN an accepted Membership gives `key`, now: what decides the
    /// restricted records a peer may receive.
    pub fn siren_of(&self, key: &PublicKey) -> Option<Siren> {
        let now = maillage_record::now_ms();
        let e = self.endorsements.read().unwrap_or_else(|p| p.into_inner());
        let candidates: Vec<(PublicKey, Membership)> = e
            .by_member
            .get(key)?
            .iter()
            .filter_map(|r| match e.by_record.get(r) {
                Some((_, Some(m))) if m.covers(now) => Some((r.0, m.clone())),
                _ => None,
            })
            .collect();
        drop(e);
        candidates
            .into_iter()
            .find(|(issuer, _)| self.accepts(issuer, now))
            .map(|(_, m)| m.siren)
    }

    /// Takes note of a stored record: a Membership (or the Tombstone that
    /// withdraws one). Returns the member key a new endorsement names.
    pub fn observe(&self, author: &PublicKey, record: &Record) -> Option<PublicKey> {
        let membership = match &record.body {
            Body::Membership(m) => Some(m.clone()),
            Body::Tombstone(_) => None,
            _ => return None,
        };
        let mut e = self.endorsements.write().unwrap_or_else(|p| p.into_inner());
        let slot = (*author, record.record_id.clone());
        if let Some((v, _)) = e.by_record.get(&slot)
            && *v >= record.version
        {
            return None;
        }
        let member = membership.as_ref().map(|m| m.member_key);
        if let Some((_, Some(old))) = e.by_record.get(&slot)
            && let old_key = old.member_key
            && let Some(set) = e.by_member.get_mut(&old_key)
        {
            set.remove(&slot);
        }
        if let Some(k) = member {
            e.by_member.entry(k).or_default().insert(slot.clone());
        }
        e.by_record.insert(slot, (record.version, membership));
        member
    }

    /// Trusts `key` as a root, once `persist` has kept its entry; returns
    /// false if it already was one. (Under the lock: two operators adding
    /// and removing at once leave memory and table alike.)
    pub(crate) fn add_root(
        &self,
        key: PublicKey,
        note: &str,
        persist: impl FnOnce(&[u8]) -> Result<(), StoreError>,
    ) -> Result<bool, StoreError> {
        let mut roots = self.roots.write().unwrap_or_else(|p| p.into_inner());
        if roots.contains_key(&key) {
            return Ok(false);
        }
        let info = RootInfo {
            note: note.to_string(),
            added_at_ms: maillage_record::now_ms(),
        };
        let value = serde_json::to_vec(&info).expect("plain struct serializes");
        persist(value.as_slice())?;
        roots.insert(key, info);
        Ok(true)
    }

    /// Stops trusting `key` once `persist` has deleted its entry (saying
    /// whether there was one); returns false if it was not a root. Records
    /// already accepted stay: they were valid when they came.
    pub(crate) fn remove_root(
        &self,
        key: &PublicKey,
        persist: impl FnOnce() -> Result<bool, StoreError>,
    ) -> Result<bool, StoreError> {
        let mut roots = self.roots.write().unwrap_or_else(|p| p.into_inner());
        let existed = persist()?;
        roots.remove(key);
        Ok(existed)
    }

    pub fn roots(&self) -> Vec<(PublicKey, RootInfo)> {
        self.roots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use maillage_record::Visibility;

    fn key(seed: u8) -> PublicKey {
        PublicKey(
            maillage_record::SigningKey::from_bytes(&[seed; 32])
                .verifying_key()
                .to_bytes(),
        )
    }

    fn membership(
        id: &str,
        version: u64,
        member: PublicKey,
        role: MembershipRole,
        until: i64,
    ) -> Record {
        Record {
            record_id: id.into(),
            version,
            issued_at_ms: 1_000,
            visibility: Visibility::Public,
            provenance: None,
            body: Body::Membership(Membership {
                member_key: member,
                siren: Siren::parse("213101496").unwrap(),
                role,
                valid_from_ms: 0,
                valid_until_ms: until,
            }),
        }
    }

    #[test]
    fn roots_delegate_to_committees_once() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _writer) = Store::open(dir.path()).unwrap();
        let trust = Trust::load(&store, key(1)).unwrap();
        let (root, committee, member, stranger) = (key(2), key(3), key(4), key(5));
        trust.add_root(root, "root", |_| Ok(())).unwrap();
        assert!(trust.accepts(&key(1), 0), "own key");
        assert!(!trust.accepts(&member, 5_000));

        // A committee endorsed as a plain member cannot endorse others.
        trust.observe(
            &root,
            &membership("c", 1, committee, MembershipRole::Member, 0),
        );
        trust.observe(
            &committee,
            &membership("m", 1, member, MembershipRole::Member, 0),
        );
        assert!(trust.accepts(&committee, 5_000));
        assert!(!trust.accepts(&member, 5_000));
        // Version 2 makes it a committee: its member is accepted.
        trust.observe(
            &root,
            &membership("c", 2, committee, MembershipRole::Committee, 0),
        );
        assert!(trust.accepts(&member, 5_000));
        assert_eq!(trust.siren_of(&member).unwrap().as_str(), "213101496");
        // But delegation stops there: the member's endorsements count for nothing.
        trust.observe(
            &member,
            &membership("s", 1, stranger, MembershipRole::Committee, 0),
        );
        assert!(!trust.accepts(&stranger, 5_000));
        // Validity covers the record's date; an older version changes nothing.
        trust.observe(
            &root,
            &membership("c", 3, committee, MembershipRole::Committee, 4_000),
        );
        trust.observe(
            &root,
            &membership("c", 1, committee, MembershipRole::Committee, 0),
        );
        assert!(trust.accepts(&member, 3_999));
        assert!(!trust.accepts(&member, 4_000));
        // A tombstone withdraws it.
        let withdraw = Record {
            body: Body::Tombstone(maillage_record::model::Tombstone {
                reason: "fin".into(),
            }),
            ..membership("c", 4, committee, MembershipRole::Committee, 0)
        };
        trust.observe(&root, &withdraw);
        assert!(!trust.accepts(&committee, 1_000));
        assert!(!trust.accepts(&member, 1_000));
    }

    /// A withdrawal that arrives before the membership it withdraws still
    /// withdraws it: the order of arrival does not matter.
    #[test]
    fn a_withdrawal_that_comes_first_still_counts() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _writer) = Store::open(dir.path()).unwrap();
        let trust = Trust::load(&store, key(1)).unwrap();
        let (root, member) = (key(2), key(4));
        trust.add_root(root, "root", |_| Ok(())).unwrap();
        let withdraw = Record {
            body: Body::Tombstone(maillage_record::model::Tombstone {
                reason: "fin".into(),
            }),
            ..membership("m", 2, member, MembershipRole::Member, 0)
        };
        trust.observe(&root, &withdraw);
        trust.observe(
            &root,
            &membership("m", 1, member, MembershipRole::Member, 0),
        );
        assert!(!trust.accepts(&member, 5_000));
        assert!(trust.siren_of(&member).is_none());
        // A later membership under the same id endorses it again.
        trust.observe(
            &root,
            &membership("m", 3, member, MembershipRole::Member, 0),
        );
        assert!(trust.accepts(&member, 5_000));
    }
}
