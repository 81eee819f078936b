//! Reads that decode what they find: records rather than bytes. Stored
//! envelopes were verified before they were written, so they are decoded
//! without checking signatures again. A record that does not decode is
//! logged and skipped: one bad entry must not hide the others.

use maillage_record::{Kind, PublicKey, Record};

use super::{CurrentEntry, ListFilter, Store, StoreError};

impl Store {
    /// Calls `f` with every current record that `wanted` selects from the
    /// index, decoded (blocking: it scans the store). A store failure ends
    /// the scan.
    pub fn for_each_current(
        &self,
        filter: &ListFilter,
        mut wanted: impl FnMut(&CurrentEntry) -> bool,
        mut f: impl FnMut(&CurrentEntry, Record),
    ) -> Result<(), StoreError> {
        let mut failure = None;
        self.list_current(filter, None, usize::MAX, |cur| {
            if failure.is_some() || !wanted(cur) {
                return false;
            }
            match self.record(&cur.id) {
                Ok(Some(r)) => f(cur, r),
                Ok(None) => {}
                Err(e) => failure = Some(e),
            }
            false
        })?;
        failure.map_or(Ok(()), Err)
    }

    /// The record stored under `id`, decoded; `None` if there is none, or
    /// if it does not decode (logged).
    pub fn record(&self, id: &maillage_record::RecordId) -> Result<Option<Record>, StoreError> {
        let Some(stored) = self.get(id)? else {
            return Ok(None);
        };
        match maillage_record::envelope::decode_stored(&stored.bytes) {
            Ok(r) => Ok(Some(r)),
            Err(e) => {
                tracing::error!(%id, error = %e, "stored record does not decode");
                Ok(None)
            }
        }
    }

    /// The records stored under `ids`, decoded, with their authors, in the
    /// order asked (one batched read); `None` where there is none or it
    /// does not decode (logged).
    pub fn records_many(
        &self,
        ids: &[maillage_record::RecordId],
    ) -> Result<Vec<Option<(PublicKey, Record)>>, StoreError> {
        Ok(self
            .get_many(ids)?
            .into_iter()
            .zip(ids)
            .map(|(stored, id)| {
                let stored = stored?;
                match maillage_record::envelope::decode_stored_authored(&stored.bytes) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        tracing::error!(%id, error = %e, "stored record does not decode");
                        None
                    }
                }
            })
            .collect())
    }

    /// The current Organisation record `author` published about itself, if
    /// this store holds one: what an author says of itself, which trust may
    /// or may not confirm (see `viewer`).
    pub fn organisation_record(&self, author: &PublicKey) -> Result<Option<Record>, StoreError> {
        let filter = ListFilter {
            kind: Some(Kind::Organisation),
            author: Some(*author),
        };
        let (entries, _) = self.list_current(&filter, None, 16, |_| true)?;
        for e in entries {
            if let Some(rec) = self.record(&e.id)? {
                return Ok(Some(rec));
            }
        }
        Ok(None)
    }
}
