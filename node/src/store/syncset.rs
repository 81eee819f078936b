//! The `syncset` table: for every stored envelope, what reconciliation needs
//! (its negentropy timestamp) and what decides who may learn of it (author and
//! visibility), so a node can build a peer's view without decoding payloads.
//! Keyed by record id; the value is a `codec::SyncsetValue`.

use maillage_record::{PublicKey, RecordId, Visibility};
use rocksdb::IteratorMode;

use super::codec::{EnvelopeValue, SyncsetValue};
use super::{CF_SYNCSET, Store, StoreError};

/// One stored envelope as reconciliation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncItem {
    pub id: RecordId,
    pub issued_at_ms: u64,
    pub author: PublicKey,
    pub visibility: Visibility,
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
            let stored = EnvelopeValue::decode(&v).ok_or_else(bad)?;
            let env = maillage_proto::v1::Envelope::decode(stored.envelope).map_err(|_| bad())?;
            let author = PublicKey::from_slice(&env.author).ok_or_else(bad)?;
            let record = maillage_record::wire::decode_payload(&env.payload).map_err(|_| bad())?;
            let sync = SyncsetValue::new(record.issued_at_ms, author, &record.visibility);
            batch.put_cf(self.cf(CF_SYNCSET), &k, sync.encode());
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
            |id, v| self.sync_item(&id.0, v),
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
            out.push(self.sync_item(&k, &v)?);
        }
        Ok(out)
    }

    fn sync_item(&self, id: &[u8], v: &[u8]) -> Result<SyncItem, StoreError> {
        let bad = || self.corrupt("syncset entry");
        let value = SyncsetValue::decode(v).ok_or_else(bad)?;
        Ok(SyncItem {
            id: RecordId::from_slice(id).ok_or_else(bad)?,
            issued_at_ms: value.issued_at_ms,
            author: value.author,
            visibility: value.visibility.into_owned(),
        })
    }
}
