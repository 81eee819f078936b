//! `Store::check`: every table read back and held against the others, on one
//! snapshot (a check of a running node sees each write whole or not at all).
//!
//! What holds in a sound store, and what `check` verifies:
//! - every envelope decodes, verifies (its signature, again) and is stored
//!   under its own id; its sync-set entry says its date, author and
//!   visibility; its history key exists; its sequence number's change names
//!   it.
//! - every current entry names a stored envelope of that author, record_id,
//!   version and kind, and the version the rules make current (the highest;
//!   of equal versions, the later issued, then the greater id).
//! - every history key, change and sync-set entry names a stored envelope.
//! - the counters in `meta` equal what the tables hold.
//!
//! A store is read whole: blocking, and long on a large store (each
//! signature is verified again).

use std::collections::BTreeMap;

use maillage_record::{Kind, RecordId, envelope};
use rocksdb::IteratorMode;

use super::codec::{
    ChangeKey, ChangeValue, CurrentKey, CurrentValue, EnvelopeValue, HistoryKey, MetaKey,
    MetaValue, SyncsetValue,
};
use super::{
    CF_CHANGES, CF_CURRENT, CF_ENVELOPES, CF_HISTORY, CF_META, CF_SYNCSET, Store, StoreError,
};

/// Problems a report names one by one; more are counted.
const MAX_NAMED: usize = 100;

/// What a check found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Entries read, by table.
    pub checked: BTreeMap<&'static str, u64>,
    /// The first problems found, each saying where and what.
    pub problems: Vec<String>,
    /// Every problem found (`problems` names the first 100).
    pub problem_count: u64,
}

impl Report {
    pub fn problem(&mut self, what: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_NAMED {
            self.problems.push(what);
        }
    }

    pub fn count(&mut self, table: &'static str) {
        *self.checked.entry(table).or_default() += 1;
    }

    pub fn is_sound(&self) -> bool {
        self.problem_count == 0
    }
}

impl Store {
    /// Checks every table against the others (see the module's doc).
    /// Problems go in the report; an error is a store that cannot be read.
    pub fn check(&self) -> Result<Report, StoreError> {
        let snap = self.db.snapshot();
        let mut report = Report::default();
        let get = |cf: &str, key: &[u8]| snap.get_cf(self.cf(cf), key);

        // Envelopes, and what each one implies elsewhere.
        let mut envelopes = 0u64;
        for item in snap.iterator_cf(self.cf(CF_ENVELOPES), IteratorMode::Start) {
            let (k, v) = item?;
            report.count(CF_ENVELOPES);
            envelopes += 1;
            let Some(id) = RecordId::from_slice(&k) else {
                report.problem(format!(
                    "envelopes: a key of {} bytes, not a record id",
                    k.len()
                ));
                continue;
            };
            let Some(value) = EnvelopeValue::decode(&v) else {
                report.problem(format!("envelopes: {id}: the value is truncated"));
                continue;
            };
            let verified = match envelope::verify_bytes(value.envelope) {
                Ok(r) => r,
                Err(e) => {
                    report.problem(format!("envelopes: {id}: does not verify: {e}"));
                    continue;
                }
            };
            if verified.id() != id {
                report.problem(format!(
                    "envelopes: {id}: holds the envelope of {}",
                    verified.id()
                ));
                continue;
            }
            let record = verified.record();
            let author = verified.author();
            match get(CF_SYNCSET, &id.0)?.as_deref().map(SyncsetValue::decode) {
                None => report.problem(format!("syncset: no entry for {id}")),
                Some(None) => report.problem(format!("syncset: {id}: the value does not decode")),
                Some(Some(s)) => {
                    let expected =
                        SyncsetValue::new(record.issued_at_ms, author, &record.visibility);
                    if s != expected {
                        report.problem(format!(
                            "syncset: {id}: says another date, author or visibility than its envelope"
                        ));
                    }
                }
            }
            let history = HistoryKey {
                author,
                record_id: &record.record_id,
                version: record.version,
                id,
            };
            if get(CF_HISTORY, &history.encode())?.is_none() {
                report.problem(format!(
                    "history: no entry for {id} (version {} of '{}')",
                    record.version, record.record_id
                ));
            }
            let change = get(CF_CHANGES, &ChangeKey { seq: value.seq }.encode())?;
            match change.as_deref().map(ChangeValue::decode) {
                Some(Some(c)) if c.id == id => {}
                _ => report.problem(format!(
                    "changes: sequence number {} does not name {id}",
                    value.seq
                )),
            }
        }

        // Current versions.
        let mut current_by_kind: BTreeMap<Kind, u64> = BTreeMap::new();
        for item in snap.iterator_cf(self.cf(CF_CURRENT), IteratorMode::Start) {
            let (k, v) = item?;
            report.count(CF_CURRENT);
            let (Some(key), Some(value)) = (CurrentKey::decode(&k), CurrentValue::decode(&v))
            else {
                report.problem("current: an entry does not decode".into());
                continue;
            };
            *current_by_kind.entry(value.kind).or_default() += 1;
            let named = format!("current: '{}' by {}", key.record_id, key.author);
            let Some(stored) = get(CF_ENVELOPES, &value.id.0)? else {
                report.problem(format!("{named}: names {}, which is not stored", value.id));
                continue;
            };
            let record = EnvelopeValue::decode(&stored)
                .and_then(|e| envelope::verify_bytes(e.envelope).ok());
            let Some(record) = record else {
                // Reported with the envelopes.
                continue;
            };
            let r = record.record();
            if record.author() != key.author
                || r.record_id != key.record_id
                || r.version != value.version
                || r.kind() != value.kind
            {
                report.problem(format!(
                    "{named}: names {}, another record or version",
                    value.id
                ));
                continue;
            }
            // The version the rules make current, among the history.
            let prefix = HistoryKey::prefix(&key.author, key.record_id);
            let mut best: Option<(u64, u64, RecordId)> = None;
            for h in snap.iterator_cf(
                self.cf(CF_HISTORY),
                IteratorMode::From(&prefix, rocksdb::Direction::Forward),
            ) {
                let (hk, _) = h?;
                if !hk.starts_with(&prefix) {
                    break;
                }
                let Some(h) = HistoryKey::decode(&hk) else {
                    report.problem(format!("{named}: a history key does not decode"));
                    continue;
                };
                let issued = get(CF_SYNCSET, &h.id.0)?
                    .as_deref()
                    .and_then(SyncsetValue::decode)
                    .map_or(0, |s| s.issued_at_ms);
                let candidate = (h.version, issued, h.id);
                if best.is_none_or(|b| candidate > b) {
                    best = Some(candidate);
                }
            }
            if let Some((version, _, id)) = best
                && id != value.id
            {
                report.problem(format!(
                    "{named}: is version {} ({}), but version {version} ({id}) should be",
                    value.version, value.id
                ));
            }
        }

        // Entries that name envelopes.
        for item in snap.iterator_cf(self.cf(CF_HISTORY), IteratorMode::Start) {
            let (k, _) = item?;
            report.count(CF_HISTORY);
            match HistoryKey::decode(&k) {
                None => report.problem("history: a key does not decode".into()),
                Some(h) => {
                    if get(CF_ENVELOPES, &h.id.0)?.is_none() {
                        report.problem(format!("history: names {}, which is not stored", h.id));
                    }
                }
            }
        }
        for item in snap.iterator_cf(self.cf(CF_CHANGES), IteratorMode::Start) {
            let (k, v) = item?;
            report.count(CF_CHANGES);
            let (Some(key), Some(change)) = (ChangeKey::decode(&k), ChangeValue::decode(&v)) else {
                report.problem("changes: an entry does not decode".into());
                continue;
            };
            let stored = get(CF_ENVELOPES, &change.id.0)?;
            match stored.as_deref().and_then(EnvelopeValue::decode) {
                None => report.problem(format!(
                    "changes: {} names {}, which is not stored",
                    key.seq, change.id
                )),
                Some(e) if e.seq != key.seq => report.problem(format!(
                    "changes: {} names {}, stored as change {}",
                    key.seq, change.id, e.seq
                )),
                Some(_) => {}
            }
        }
        for item in snap.iterator_cf(self.cf(CF_SYNCSET), IteratorMode::Start) {
            let (k, _) = item?;
            report.count(CF_SYNCSET);
            if get(CF_ENVELOPES, &k)?.is_none() {
                report.problem(format!(
                    "syncset: names {}, which is not stored",
                    RecordId::from_slice(&k).map_or_else(|| hex::encode(&k), |id| id.to_hex())
                ));
            }
        }

        // Counters.
        let counter = |key: MetaKey| -> Result<u64, StoreError> {
            Ok(get(CF_META, &key.encode())?
                .as_deref()
                .and_then(MetaValue::decode)
                .map_or(0, |MetaValue(n)| n))
        };
        let said = counter(MetaKey::Envelopes)?;
        if said != envelopes {
            report.problem(format!(
                "meta: counts {said} envelopes, the table holds {envelopes}"
            ));
        }
        for kind in Kind::ALL {
            let (said, found) = (
                counter(MetaKey::CurrentCount(kind))?,
                current_by_kind.get(&kind).copied().unwrap_or(0),
            );
            if said != found {
                report.problem(format!(
                    "meta: counts {said} current {kind} records, the table holds {found}"
                ));
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::signed;
    use super::super::{Admission, CF_CURRENT, CF_ENVELOPES, CF_HISTORY, CF_META};
    use super::*;

    fn filled(dir: &std::path::Path) -> Store {
        let store = Store::open_at(dir).unwrap();
        for (key, record_id, version) in [(1, "a", 1), (1, "a", 2), (1, "b", 1), (2, "a", 1)] {
            store
                .insert(&signed(key, record_id, version), Admission::KeepHistory)
                .unwrap();
        }
        store
    }

    #[test]
    fn a_sound_store_checks_clean() {
        let dir = tempfile::tempdir().unwrap();
        let report = filled(dir.path()).check().unwrap();
        assert!(report.is_sound(), "{:?}", report.problems);
        assert_eq!(report.checked[CF_ENVELOPES], 4);
        assert_eq!(report.checked[CF_CURRENT], 3);
    }

    /// Each kind of damage is found and named.
    #[test]
    fn damage_is_found_and_named() {
        type Damage = fn(&Store);
        let damages: [(&str, Damage); 5] = [
            ("history: no entry", |s| {
                let v = signed(1, "b", 1);
                let key = HistoryKey {
                    author: v.author(),
                    record_id: "b",
                    version: 1,
                    id: v.id(),
                };
                s.db.delete_cf(s.cf(CF_HISTORY), key.encode()).unwrap();
            }),
            ("does not verify", |s| {
                let v = signed(2, "a", 1);
                let stored = s.db.get_cf(s.cf(CF_ENVELOPES), v.id().0).unwrap().unwrap();
                let mut bytes = stored.clone();
                // A byte of the signature, at the end of the envelope.
                *bytes.last_mut().unwrap() ^= 1;
                s.db.put_cf(s.cf(CF_ENVELOPES), v.id().0, bytes).unwrap();
            }),
            ("should be", |s| {
                // Current names version 1 though version 2 is stored.
                let (v1, v2) = (signed(1, "a", 1), signed(1, "a", 2));
                let key = CurrentKey {
                    author: v1.author(),
                    record_id: "a",
                };
                let old =
                    s.db.get_cf(s.cf(CF_CURRENT), key.encode())
                        .unwrap()
                        .unwrap();
                let mut value = CurrentValue::decode(&old).unwrap();
                assert_eq!(value.id, v2.id());
                value.version = 1;
                value.id = v1.id();
                s.db.put_cf(s.cf(CF_CURRENT), key.encode(), value.encode())
                    .unwrap();
            }),
            ("counts 5 envelopes", |s| {
                s.db.put_cf(
                    s.cf(CF_META),
                    MetaKey::Envelopes.encode(),
                    MetaValue(5).encode(),
                )
                .unwrap();
            }),
            ("which is not stored", |s| {
                let v = signed(1, "b", 1);
                s.db.delete_cf(s.cf(CF_ENVELOPES), v.id().0).unwrap();
            }),
        ];
        for (said, damage) in damages {
            let dir = tempfile::tempdir().unwrap();
            let store = filled(dir.path());
            damage(&store);
            let report = store.check().unwrap();
            assert!(
                report.problems.iter().any(|p| p.contains(said)),
                "expected a problem saying '{said}': {:?}",
                report.problems
            );
        }
    }
}
