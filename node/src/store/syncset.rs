//! The `syncset` table: for every stored envelope, what reconciliation needs
//! (its negentropy timestamp) and what decides who may learn of it (author and
//! visibility), so a node can build a peer's view without decoding payloads.
//!
//! Value: issued_at_ms (8, big-endian, clamped at 0) ‖ author (32) ‖ scope (1:
//! 0 public, 1 federation, 2 restricted) ‖ audience SIRENs (9 ASCII digits each).

use maillage_record::{PublicKey, RecordId, Siren, Visibility};
use rocksdb::IteratorMode;

use super::{CF_SYNCSET, Store, StoreError};

/// One stored envelope as reconciliation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncItem {
    pub id: RecordId,
    pub issued_at_ms: u64,
    pub author: PublicKey,
    pub visibility: Visibility,
}

pub(super) fn encode(issued_at_ms: i64, author: &PublicKey, visibility: &Visibility) -> Vec<u8> {
    let mut v = Vec::with_capacity(41);
    v.extend_from_slice(&(issued_at_ms.max(0) as u64).to_be_bytes());
    v.extend_from_slice(&author.0);
    match visibility {
        Visibility::Public => v.push(0),
        Visibility::Federation => v.push(1),
        Visibility::Restricted { audience } => {
            v.push(2);
            for s in audience {
                v.extend_from_slice(s.as_str().as_bytes());
            }
        }
    }
    v
}

fn decode(id: &[u8], v: &[u8]) -> Option<SyncItem> {
    let id = RecordId::from_slice(id)?;
    let issued_at_ms = u64::from_be_bytes(v.get(..8)?.try_into().ok()?);
    let author = PublicKey::from_slice(v.get(8..40)?)?;
    let visibility = match v.get(40)? {
        0 => Visibility::Public,
        1 => Visibility::Federation,
        2 => {
            let rest = &v[41..];
            if rest.len() % 9 != 0 {
                return None;
            }
            let audience = rest
                .chunks(9)
                .map(|c| Siren::parse(std::str::from_utf8(c).ok()?).ok())
                .collect::<Option<Vec<_>>>()?;
            Visibility::Restricted { audience }
        }
        _ => return None,
    };
    Some(SyncItem {
        id,
        issued_at_ms,
        author,
        visibility,
    })
}

impl Store {
    /// Stores written before the `syncset` table existed have envelopes and
    /// no syncset entries: rebuild them once, at open, or those records would
    /// never be offered to peers.
    pub(super) fn backfill_syncset(&self) -> Result<(), StoreError> {
        use prost::Message;
        let empty = self
            .db
            .iterator_cf(self.cf(CF_SYNCSET), IteratorMode::Start)
            .next()
            .is_none();
        if !empty {
            return Ok(());
        }
        let mut batch = rocksdb::WriteBatch::default();
        let mut n = 0u64;
        for item in self
            .db
            .iterator_cf(self.cf(super::CF_ENVELOPES), IteratorMode::Start)
        {
            let (k, v) = item?;
            let bad = || self.corrupt("envelope while rebuilding the syncset");
            let env = maillage_proto::v1::Envelope::decode(v.get(16..).ok_or_else(bad)?)
                .map_err(|_| bad())?;
            let author = PublicKey::from_slice(&env.author).ok_or_else(bad)?;
            let record = maillage_record::wire::decode_payload(&env.payload).map_err(|_| bad())?;
            batch.put_cf(
                self.cf(CF_SYNCSET),
                &k,
                encode(record.issued_at_ms, &author, &record.visibility),
            );
            n += 1;
        }
        if n > 0 {
            self.db.write(batch)?;
            tracing::info!(records = n, "rebuilt the sync index of an older store");
        }
        Ok(())
    }

    /// The syncset entries of many ids at once, in the order asked.
    pub fn sync_items_many(&self, ids: &[RecordId]) -> Result<Vec<Option<SyncItem>>, StoreError> {
        self.read_many(
            CF_SYNCSET,
            ids,
            |id| &id.0,
            &Default::default(),
            |id, v| decode(&id.0, v).ok_or_else(|| self.corrupt("syncset entry")),
        )
    }

    /// Every stored envelope as reconciliation sees it (read once at start;
    /// the node keeps it up to date in memory from then on).
    pub fn sync_items(&self) -> Result<Vec<SyncItem>, StoreError> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(CF_SYNCSET), IteratorMode::Start)
        {
            let (k, v) = item?;
            out.push(decode(&k, &v).ok_or_else(|| self.corrupt("syncset entry"))?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let author = PublicKey([7; 32]);
        for visibility in [
            Visibility::Public,
            Visibility::Federation,
            Visibility::Restricted {
                audience: vec![
                    Siren::parse("243100518").unwrap(),
                    Siren::parse("213105554").unwrap(),
                ],
            },
        ] {
            let v = encode(1_700_000_000_000, &author, &visibility);
            let item = decode(&[1; 32], &v).unwrap();
            assert_eq!(item.visibility, visibility);
            assert_eq!(item.author, author);
            assert_eq!(item.issued_at_ms, 1_700_000_000_000);
        }
        assert!(decode(&[1; 32], &[0; 12]).is_none());
    }
}
