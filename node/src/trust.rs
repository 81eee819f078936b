//! Whose records this node accepts from peers (docs/architecture.md, "Trust"):
//! - this node's own organisation;
//! - a trust root the operator added (`maillage trust add-root`);
//! - a key endorsed by a `Membership` record whose author is a root (or this
//!   node's own organisation), or a committee that a root endorsed (one level
//!   of delegation), and whose validity covers the record's `issued_at`.
//!   A membership that endorses its own author counts for nothing.
//!
//! The same endorsement says which SIREN a key speaks for (`endorsement`):
//! when several do, the choice is the same on every node (a root's before a
//! committee's, then the latest issued, then by issuer and record_id).
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
    by_record: HashMap<(PublicKey, String), Slot>,
    by_member: HashMap<PublicKey, HashSet<(PublicKey, String)>>,
}

/// The current version of one Membership record (or of its withdrawal).
struct Slot {
    version: u64,
    issued_at_ms: i64,
    membership: Option<Membership>,
}

/// An accepted membership: who issued it, and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endorsement {
    pub issuer: PublicKey,
    pub record_id: String,
    pub siren: Siren,
    pub role: MembershipRole,
    /// Whether its issuer is a root (else a committee a root endorsed).
    pub by_root: bool,
    /// When it ends, if it does: the earliest end along the chain (this
    /// membership's, and its committee's); 0 if none ends.
    pub valid_until_ms: i64,
    /// A chef de file's or a committee's scope, as the membership says.
    pub scope: Vec<String>,
    issued_at_ms: i64,
}

/// The earlier of two ends, 0 meaning none.
fn earlier_end(a: i64, b: i64) -> i64 {
    match (a, b) {
        (0, x) | (x, 0) => x,
        (a, b) => a.min(b),
    }
}

impl Endorsement {
    /// The order in which endorsements of one key are preferred: a root's
    /// first, then the latest issued, then by issuer and record_id, so
    /// that every node makes the same choice.
    fn rank(&self) -> (bool, std::cmp::Reverse<i64>, PublicKey, &str) {
        (
            !self.by_root,
            std::cmp::Reverse(self.issued_at_ms),
            self.issuer,
            self.record_id.as_str(),
        )
    }
}

/// In memory only: the ledger persists roots (`add_root`, `remove_root` take
/// the write to make) and feeds it what is stored (`observe`).
pub struct Trust {
    own: PublicKey,
    roots: RwLock<BTreeMap<PublicKey, RootInfo>>,
    endorsements: RwLock<Endorsements>,
    keys: RwLock<KeyEvents>,
}

/// The current Succession and Revocation records, by (author, record_id),
/// whoever signed them: whether each counts is decided when asked
/// (`Trust::vouches_for_key`), as trust may change.
#[derive(Default)]
struct KeyEvents {
    by_record: HashMap<(PublicKey, String), KeyEvent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyEvent {
    /// `predecessor` hands over to `successor` from `at_ms`.
    Succession {
        predecessor: PublicKey,
        successor: PublicKey,
        at_ms: i64,
    },
    /// `key` is compromised since `since_ms`.
    Revocation { key: PublicKey, since_ms: i64 },
}

/// A succession as a record states it, before anyone asked whether its
/// signer may.
struct Stated {
    signer: PublicKey,
    predecessor: PublicKey,
    successor: PublicKey,
    at_ms: i64,
}

/// How far successions are followed (a key rotated more often than this
/// within one federation is a fault, not a practice).
const MAX_LINEAGE: usize = 8;

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
            keys: RwLock::default(),
        };
        // Every current Membership, Succession and Revocation record, in one
        // pass over the current versions.
        let everything = ListFilter {
            kind: None,
            author: None,
        };
        let about_trust = |e: &crate::store::CurrentEntry| {
            matches!(
                e.kind,
                Kind::Membership | Kind::Succession | Kind::Revocation
            )
        };
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            let (entries, next) =
                store.list_current(&everything, cursor.as_deref(), 1000, about_trust)?;
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
    ///
    /// The successor of one (by a valid succession) is one too: a root that
    /// rotated its key stays a root.
    pub fn is_root(&self, key: &PublicKey) -> bool {
        self.lineage(key).iter().any(|k| self.is_root_itself(k))
    }

    fn is_root_itself(&self, key: &PublicKey) -> bool {
        *key == self.own
            || self
                .roots
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(key)
    }

    /// Whether a record by `author` issued at `at_ms` is accepted from peers:
    /// the key still speaks at that date (`speaks_at`), and is a root or
    /// endorsed.
    pub fn accepts(&self, author: &PublicKey, at_ms: i64) -> bool {
        self.speaks_at(author, at_ms)
            && (self.is_root(author) || self.endorsement(author, at_ms).is_some())
    }

    /// Whether `key` may still sign at `at_ms`: not handed over to a
    /// successor by then, not compromised since.
    pub fn speaks_at(&self, key: &PublicKey, at_ms: i64) -> bool {
        self.retired_at(key).is_none_or(|t| at_ms < t)
            && self.compromised_since(key).is_none_or(|t| at_ms < t)
    }

    /// When `key` handed over to a successor, by a valid succession.
    pub fn retired_at(&self, key: &PublicKey) -> Option<i64> {
        self.successor(key).map(|(_, at)| at)
    }

    /// Since when `key` is compromised, by a valid revocation.
    pub fn compromised_since(&self, key: &PublicKey) -> Option<i64> {
        let events: Vec<(PublicKey, i64)> = {
            let k = self.keys.read().unwrap_or_else(|p| p.into_inner());
            if k.by_record.is_empty() {
                return None;
            }
            k.by_record
                .iter()
                .filter_map(|((author, _), e)| match e {
                    KeyEvent::Revocation {
                        key: revoked,
                        since_ms,
                    } if revoked == key => Some((*author, *since_ms)),
                    _ => None,
                })
                .collect()
        };
        events
            .into_iter()
            .filter(|(author, _)| self.vouches_for_key(author, key))
            .map(|(_, since)| since)
            .min()
    }

    /// The key `key` handed over to, and when, by a valid succession (the
    /// earliest if several).
    ///
    /// One signed by a root or a committee (a recovery) outranks those the
    /// key signed itself; two self-signed ones naming different successors
    /// are a dispute (a thief's and the owner's): neither counts until a
    /// root or the committee signs one. A self-signed one dated from the
    /// key's compromise on counts for nothing.
    pub fn successor(&self, key: &PublicKey) -> Option<(PublicKey, i64)> {
        let valid: Vec<Stated> = self
            .successions()
            .into_iter()
            .filter(|s| s.predecessor == *key && self.vouches_for_key(&s.signer, key))
            .collect();
        if valid.is_empty() {
            return None;
        }
        let earliest = |of: Vec<&Stated>| {
            of.into_iter()
                .map(|s| (s.successor, s.at_ms))
                .min_by_key(|(successor, at)| (*at, *successor))
        };
        let vouched: Vec<&Stated> = valid.iter().filter(|s| s.signer != *key).collect();
        if !vouched.is_empty() {
            return earliest(vouched);
        }
        let compromised = self.compromised_since(key);
        let own: Vec<&Stated> = valid
            .iter()
            .filter(|s| compromised.is_none_or(|c| s.at_ms < c))
            .collect();
        let first = own.first()?.successor;
        if own.iter().any(|s| s.successor != first) {
            return None;
        }
        earliest(own)
    }

    /// Every current Succession record, whoever signed it (empty at once
    /// when there is none, as in most federations).
    fn successions(&self) -> Vec<Stated> {
        let k = self.keys.read().unwrap_or_else(|p| p.into_inner());
        k.by_record
            .iter()
            .filter_map(|((signer, _), e)| match *e {
                KeyEvent::Succession {
                    predecessor,
                    successor,
                    at_ms,
                } => Some(Stated {
                    signer: *signer,
                    predecessor,
                    successor,
                    at_ms,
                }),
                KeyEvent::Revocation { .. } => None,
            })
            .collect::<Vec<_>>()
    }

    /// The last key of `key`'s successions (itself if none).
    pub fn latest(&self, key: &PublicKey) -> PublicKey {
        let mut k = *key;
        for _ in 0..MAX_LINEAGE {
            match self.successor(&k) {
                Some((next, _)) => k = next,
                None => break,
            }
        }
        k
    }

    /// `key`, and the keys it succeeded, by valid successions: a successor
    /// inherits from its predecessors, never the other way (a key could
    /// otherwise name a root as its successor and inherit from it).
    fn lineage(&self, key: &PublicKey) -> Vec<PublicKey> {
        let mut out = vec![*key];
        let events = self.successions();
        if events.is_empty() {
            return out;
        }
        let mut i = 0;
        while i < out.len() && out.len() < MAX_LINEAGE {
            let k = out[i];
            for Stated {
                signer: author,
                predecessor: pred,
                successor: succ,
                ..
            } in &events
            {
                if *succ != k {
                    continue;
                }
                // The signer must be the predecessor, or vouch for it (a
                // root, or the committee that endorsed it); asked without
                // successions (`vouches_directly`), which would ask
                // lineage again.
                if self.vouches_directly(author, pred) && !out.contains(pred) {
                    out.push(*pred);
                }
            }
            i += 1;
        }
        out
    }

    /// Whether `author` may speak for `key` about its succession or its
    /// compromise: the key itself, a root, or a committee (whose memberships
    /// count) that endorsed it or a key it succeeded. Of a root, only itself
    /// or another root.
    fn vouches_for_key(&self, author: &PublicKey, key: &PublicKey) -> bool {
        if author == key || self.is_root_itself(author) {
            return true;
        }
        !self.is_root_itself(key)
            && self.may_endorse(author)
            && self
                .lineage(key)
                .iter()
                .any(|k| self.issued_endorsement(author, k))
    }

    /// `vouches_for_key`, for `key` itself only.
    fn vouches_directly(&self, author: &PublicKey, key: &PublicKey) -> bool {
        if author == key || self.is_root_itself(author) {
            return true;
        }
        !self.is_root_itself(key)
            && self.may_endorse(author)
            && self.issued_endorsement(author, key)
    }

    /// Whether `issuer` signed a current membership that names `key`.
    fn issued_endorsement(&self, issuer: &PublicKey, key: &PublicKey) -> bool {
        let e = self.endorsements.read().unwrap_or_else(|p| p.into_inner());
        e.by_member
            .get(key)
            .is_some_and(|slots| slots.iter().any(|(i, _)| i == issuer))
    }

    /// The keys that a membership names for `siren`, current or not: who
    /// may speak for it, to be checked with `endorsement`.
    pub fn keys_named_for(&self, siren: &Siren) -> Vec<PublicKey> {
        let e = self.endorsements.read().unwrap_or_else(|p| p.into_inner());
        let mut keys: Vec<PublicKey> = e
            .by_record
            .values()
            .filter_map(|slot| slot.membership.as_ref())
            .filter(|m| m.siren == *siren)
            .map(|m| m.member_key)
            .collect();
        keys.sort_unstable_by_key(|k| k.0);
        keys.dedup();
        keys
    }

    /// Whether `key` is a member of the federation now: a root, or
    /// endorsed by a current membership. Federation records are for them.
    pub fn is_member(&self, key: &PublicKey) -> bool {
        self.accepts(key, maillage_record::now_ms())
    }

    /// Whether some record by `key` might be accepted: a root, or a key some
    /// membership names, whatever its dates or issuer. A cheap first look
    /// before the records waiting in quarantine are verified again.
    pub fn may_accept(&self, key: &PublicKey) -> bool {
        let lineage = self.lineage(key);
        lineage.iter().any(|k| self.is_root_itself(k))
            || lineage.iter().any(|k| {
                let issuers: Vec<PublicKey> = {
                    let e = self.endorsements.read().unwrap_or_else(|p| p.into_inner());
                    e.by_member
                        .get(k)
                        .map(|slots| slots.iter().map(|(issuer, _)| *issuer).collect())
                        .unwrap_or_default()
                };
                issuers.iter().any(|i| self.may_endorse(i))
            })
    }

    /// Whether `issuer`'s memberships may count: a root (added by the
    /// operator, or this node), or a key a root endorsed as a committee,
    /// whatever the dates (a cheap look, without successions: what counts
    /// is decided by `endorsement`).
    fn may_endorse(&self, issuer: &PublicKey) -> bool {
        if self.is_root_itself(issuer) {
            return true;
        }
        let e = self.endorsements.read().unwrap_or_else(|p| p.into_inner());
        e.by_member.get(issuer).is_some_and(|slots| {
            slots.iter().any(|slot| {
                matches!(e.by_record.get(slot), Some(Slot { membership: Some(m), .. })
                    if m.role == MembershipRole::Committee && self.is_root_itself(&slot.0))
            })
        })
    }

    /// The membership that vouches for `key` at `at_ms`: issued by a root,
    /// or by a committee that a root endorsed (as a committee) at that
    /// time; the first in `Endorsement::rank` order if several do.
    pub fn endorsement(&self, key: &PublicKey, at_ms: i64) -> Option<Endorsement> {
        self.endorsements_at_depth(key, at_ms, None, 2)
            .into_iter()
            .next()
    }

    /// Every membership that vouches for `key` at `at_ms`, in
    /// `Endorsement::rank` order.
    pub fn endorsements(&self, key: &PublicKey, at_ms: i64) -> Vec<Endorsement> {
        self.endorsements_at_depth(key, at_ms, None, 2)
    }

    fn endorsements_at_depth(
        &self,
        key: &PublicKey,
        at_ms: i64,
        role: Option<MembershipRole>,
        depth: u8,
    ) -> Vec<Endorsement> {
        let lineage = self.lineage(key);
        let candidates: Vec<Endorsement> = {
            let e = self.endorsements.read().unwrap_or_else(|p| p.into_inner());
            lineage
                .iter()
                .filter_map(|k| e.by_member.get(k))
                .flatten()
                .filter_map(|slot| {
                    let m = e.by_record.get(slot)?.membership.as_ref()?;
                    (m.covers(at_ms) && role.is_none_or(|want| m.role == want)).then(|| {
                        Endorsement {
                            issuer: slot.0,
                            record_id: slot.1.clone(),
                            siren: m.siren.clone(),
                            role: m.role,
                            by_root: false,
                            valid_until_ms: m.valid_until_ms,
                            scope: m.scope.clone(),
                            issued_at_ms: e.by_record[slot].issued_at_ms,
                        }
                    })
                })
                .collect()
        };
        let mut found = candidates
            .into_iter()
            // A membership its issuer signed after handing its key over, or
            // once compromised, counts for nothing.
            .filter(|c| self.speaks_at(&c.issuer, c.issued_at_ms))
            .filter_map(|mut c| {
                c.by_root = self.is_root(&c.issuer);
                if c.by_root {
                    return Some(c);
                }
                if depth < 2 {
                    return None;
                }
                // The committee's longest-lasting membership bounds this one.
                let committee = self
                    .endorsements_at_depth(
                        &c.issuer,
                        at_ms,
                        Some(MembershipRole::Committee),
                        depth - 1,
                    )
                    .into_iter()
                    .max_by_key(|e| {
                        if e.valid_until_ms == 0 {
                            i64::MAX
                        } else {
                            e.valid_until_ms
                        }
                    })?;
                c.valid_until_ms = earlier_end(c.valid_until_ms, committee.valid_until_ms);
                Some(c)
            })
            .collect::<Vec<_>>();
        found.sort_by(|a, b| a.rank().cmp(&b.rank()));
        found
    }

    /// Takes note of a stored record: a Membership (or the Tombstone that
    /// withdraws one). Returns the member key a new endorsement names.
    pub fn observe(&self, author: &PublicKey, record: &Record) -> Option<PublicKey> {
        self.observe_key_event(author, record);
        let membership = match &record.body {
            Body::Membership(m) => Some(m.clone()),
            Body::Tombstone(_) => None,
            _ => return None,
        };
        // One that endorses its own author says nothing anyone vouched for.
        let membership = membership.filter(|m| m.member_key != *author);
        let mut e = self.endorsements.write().unwrap_or_else(|p| p.into_inner());
        let slot = (*author, record.record_id.clone());
        // Only an older version is ignored: of two with the same number, the
        // store made this one current (`Store`'s rule for equal versions).
        if let Some(s) = e.by_record.get(&slot)
            && s.version > record.version
        {
            return None;
        }
        let member = membership.as_ref().map(|m| m.member_key);
        if let Some(Slot {
            membership: Some(old),
            ..
        }) = e.by_record.get(&slot)
            && let old_key = old.member_key
            && let Some(set) = e.by_member.get_mut(&old_key)
        {
            set.remove(&slot);
        }
        if let Some(k) = member {
            e.by_member.entry(k).or_default().insert(slot.clone());
        }
        e.by_record.insert(
            slot,
            Slot {
                version: record.version,
                issued_at_ms: record.issued_at_ms,
                membership,
            },
        );
        member
    }

    /// Takes note of a current Succession or Revocation record (or of the
    /// tombstone that withdraws one).
    fn observe_key_event(&self, author: &PublicKey, record: &Record) {
        let event = match &record.body {
            Body::Succession(x) => Some(KeyEvent::Succession {
                predecessor: x.predecessor,
                successor: x.successor,
                at_ms: record.issued_at_ms,
            }),
            Body::Revocation(r) => Some(KeyEvent::Revocation {
                key: r.key,
                since_ms: r.compromised_since_ms,
            }),
            Body::Tombstone(_) => None,
            _ => return,
        };
        let mut k = self.keys.write().unwrap_or_else(|p| p.into_inner());
        let slot = (*author, record.record_id.clone());
        // Final once stated (the store refuses anything after it too): a
        // thief holding a key must not undo its revocation.
        if let Some(e) = event {
            k.by_record.entry(slot).or_insert(e);
        }
    }

    /// Whether any succession or revocation is known: what the peer table
    /// and the pinned keys follow (`Node::follow_keys`).
    pub fn has_key_events(&self) -> bool {
        !self
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_record
            .is_empty()
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
                scope: vec![],
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
        let vouched = trust.endorsement(&member, 5_000).unwrap();
        assert_eq!(vouched.siren.as_str(), "213101496");
        assert_eq!((vouched.issuer, vouched.by_root), (committee, false));
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
        assert!(trust.endorsement(&member, 5_000).is_none());
        // A later membership under the same id endorses it again.
        trust.observe(
            &root,
            &membership("m", 3, member, MembershipRole::Member, 0),
        );
        assert!(trust.accepts(&member, 5_000));
    }
    fn claim(
        id: &str,
        issued: i64,
        member: PublicKey,
        siren: &str,
        role: MembershipRole,
    ) -> Record {
        let mut r = membership(id, 1, member, role, 0);
        r.issued_at_ms = issued;
        if let Body::Membership(m) = &mut r.body {
            m.siren = Siren::parse(siren).unwrap();
        }
        r
    }

    /// Only a root, or a committee a root endorsed, says which SIREN a key
    /// speaks for: not the key itself, not a plain member; and among those
    /// who may, the choice does not depend on the order things arrived.
    #[test]
    fn who_may_say_which_siren_a_key_speaks_for() {
        const COLOMIERS: &str = "213101496";
        const BLAGNAC: &str = "213100696";
        const TOULOUSE: &str = "213105554";
        let dir = tempfile::tempdir().unwrap();
        let (store, _writer) = Store::open(dir.path()).unwrap();
        let (root, committee, member, accomplice) = (key(2), key(3), key(4), key(5));
        let build = |order: &[(PublicKey, Record)]| {
            let trust = Trust::load(&store, key(1)).unwrap();
            trust.add_root(root, "root", |_| Ok(())).unwrap();
            for (by, r) in order {
                trust.observe(by, r);
            }
            trust
        };
        let records = vec![
            (
                root,
                claim("c", 10, committee, TOULOUSE, MembershipRole::Committee),
            ),
            (
                root,
                claim("m", 10, member, COLOMIERS, MembershipRole::Member),
            ),
            // The member endorses itself, and its accomplice, for Blagnac.
            (
                member,
                claim("self", 20, member, BLAGNAC, MembershipRole::Member),
            ),
            (
                member,
                claim("acc", 20, accomplice, BLAGNAC, MembershipRole::Committee),
            ),
        ];
        let trust = build(&records);
        let vouched = trust.endorsement(&member, 5_000).unwrap();
        assert_eq!(vouched.siren.as_str(), COLOMIERS);
        assert!(trust.endorsement(&accomplice, 5_000).is_none());
        assert!(!trust.accepts(&accomplice, 5_000));

        // A committee's later membership for the member, and the root's:
        // the root's comes first, whatever the order of arrival.
        let mut more = records.clone();
        more.push((
            committee,
            claim("m2", 30, member, BLAGNAC, MembershipRole::Member),
        ));
        for order in [more.clone(), more.iter().rev().cloned().collect()] {
            let t = build(&order);
            let v = t.endorsement(&member, 5_000).unwrap();
            assert_eq!((v.siren.as_str(), v.by_root), (COLOMIERS, true));
        }
        // Between two roots' memberships, the later issued; then by issuer.
        more.push((
            root,
            claim("m3", 40, member, TOULOUSE, MembershipRole::Member),
        ));
        for order in [more.clone(), more.iter().rev().cloned().collect()] {
            let t = build(&order);
            assert_eq!(
                t.endorsement(&member, 5_000).unwrap().siren.as_str(),
                TOULOUSE
            );
        }
    }
    fn event(id: &str, issued: i64, body: Body) -> Record {
        Record {
            record_id: id.into(),
            version: 1,
            issued_at_ms: issued,
            visibility: Visibility::Public,
            provenance: None,
            body,
        }
    }

    /// A succession to `key(to)`, with its consent.
    fn succession(from: PublicKey, to: PublicKey, at: i64) -> Record {
        let seed = (2..=255u8).find(|s| key(*s) == to).expect("a test key");
        event(
            "succession",
            at,
            Body::Succession(maillage_record::model::Succession::consented(
                from,
                &maillage_record::SigningKey::from_bytes(&[seed; 32]),
            )),
        )
    }

    fn revocation(of: PublicKey, since: i64) -> Record {
        event(
            &format!("revocation-{}", &of.to_hex()[..8]),
            since,
            Body::Revocation(maillage_record::model::Revocation {
                key: of,
                compromised_since_ms: since,
                reason: String::new(),
            }),
        )
    }

    /// Successions and revocations, whoever may sign them, in any order of
    /// arrival, and the same after a restart (`Trust::load`).
    #[test]
    fn keys_hand_over_and_are_revoked_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        let (store, writer) = Store::open(dir.path()).unwrap();
        let signer = |seed: u8| maillage_record::SigningKey::from_bytes(&[seed; 32]);
        let (root, committee, member, next, stranger, stolen) =
            (key(2), key(3), key(4), key(5), key(6), key(7));
        let records: Vec<(u8, Record)> = vec![
            (
                2,
                membership("c", 1, committee, MembershipRole::Committee, 0),
            ),
            (3, membership("m", 1, member, MembershipRole::Member, 0)),
            // The member hands over to `next` at 10_000.
            (4, succession(member, next, 10_000)),
            // A stranger claims the committee hands over to it: nothing.
            (6, succession(committee, stranger, 5_000)),
            // The committee says `stolen`... which it never endorsed: nothing.
            (3, revocation(stolen, 0)),
            // The committee revokes its member's new key from 20_000 on.
            (3, revocation(next, 20_000)),
        ];
        let check = |trust: &Trust| {
            assert!(trust.accepts(&member, 9_999));
            assert!(!trust.accepts(&member, 10_000), "retired");
            assert!(trust.accepts(&next, 15_000), "inherits the membership");
            assert_eq!(
                trust.endorsement(&next, 15_000).unwrap().siren.as_str(),
                "213101496"
            );
            assert!(!trust.accepts(&next, 20_000), "revoked");
            assert_eq!(trust.latest(&member), next);
            assert_eq!(trust.latest(&committee), committee, "a stranger's claim");
            assert!(trust.accepts(&committee, 30_000));
            assert!(trust.compromised_since(&stolen).is_none());
        };
        for order in [records.clone(), records.iter().rev().cloned().collect()] {
            let trust = Trust::load(&store, key(1)).unwrap();
            trust.add_root(root, "root", |_| Ok(())).unwrap();
            for (by, r) in &order {
                trust.observe(&key(*by), r);
            }
            check(&trust);
        }
        // Stored, then loaded again: the same.
        let signed: Vec<_> = records
            .iter()
            .map(|(by, r)| maillage_record::envelope::sign(&signer(*by), r).unwrap())
            .collect();
        writer
            .write(
                &signed,
                crate::store::Admission::KeepHistory,
                crate::store::Origin::Local,
                &mut |_| {},
            )
            .unwrap();
        let trust = Trust::load(&store, key(1)).unwrap();
        trust.add_root(root, "root", |_| Ok(())).unwrap();
        check(&trust);
        // A root that hands over stays a root under its new key.
        let successor = key(8);
        trust.observe(&root, &succession(root, successor, 40_000));
        assert!(trust.is_root(&successor));
        assert!(!trust.accepts(&root, 40_000));
        assert!(trust.accepts(&successor, 40_000));
    }
    /// What the key lifecycle must not let a member do: inherit from a
    /// successor it names, speak for a root, or settle a dispute over its
    /// own key; and a statement, once made, is final.
    #[test]
    fn a_member_cannot_turn_the_key_lifecycle_against_others() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _writer) = Store::open(dir.path()).unwrap();
        let trust = Trust::load(&store, key(1)).unwrap();
        let (root, committee, member, thief, owner) = (key(2), key(3), key(4), key(5), key(6));
        trust.add_root(root, "root", |_| Ok(())).unwrap();
        trust.observe(
            &root,
            &membership("c", 1, committee, MembershipRole::Committee, 0),
        );
        trust.observe(
            &committee,
            &membership("m", 1, member, MembershipRole::Member, 0),
        );
        // The member names the root as its successor: it inherits nothing.
        trust.observe(&member, &succession(member, root, 10_000));
        assert!(!trust.is_root(&member));
        assert!(trust.accepts(&member, 5_000) && !trust.accepts(&member, 10_000));
        // It endorses the root (which counts for nothing), then revokes
        // it and hands it over: nothing either.
        trust.observe(
            &member,
            &membership("r", 1, root, MembershipRole::Member, 0),
        );
        trust.observe(&member, &revocation(root, 0));
        trust.observe(&member, &event("s2", 0, succession(root, thief, 0).body));
        assert!(trust.compromised_since(&root).is_none());
        assert!(trust.successor(&root).is_none());
        assert!(trust.accepts(&root, 50_000));

        // Two successions the owner's key signed itself, to two keys: a
        // dispute, until the committee signs one.
        let disputed = key(9);
        trust.observe(
            &root,
            &membership("o", 1, disputed, MembershipRole::Member, 0),
        );
        trust.observe(
            &disputed,
            &event("a", 20_000, succession(disputed, owner, 20_000).body),
        );
        trust.observe(
            &disputed,
            &event("b", 15_000, succession(disputed, thief, 15_000).body),
        );
        assert!(trust.successor(&disputed).is_none());
        trust.observe(
            &root,
            &event("c", 21_000, succession(disputed, owner, 21_000).body),
        );
        assert_eq!(trust.successor(&disputed).map(|(k, _)| k), Some(owner));

        // A revocation stays, whatever comes after it under its record_id.
        let stated = revocation(committee, 30_000);
        trust.observe(&root, &stated);
        let undo = Record {
            version: 2,
            body: Body::Tombstone(maillage_record::model::Tombstone {
                reason: "annulée".into(),
            }),
            ..stated
        };
        trust.observe(&root, &undo);
        assert_eq!(trust.compromised_since(&committee), Some(30_000));
    }
}
