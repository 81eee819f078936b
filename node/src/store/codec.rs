//! The byte layout of every key and value the store writes: each as a type
//! whose `encode` and `decode` sit side by side, so a layout is read where it
//! is written.
//!
//! Stores written by older nodes must open with their data: a layout never
//! changes in place, and each type has a test pinning its exact bytes.
//! Integers are big-endian so that keys sort numerically. A decoder accepts
//! whatever the store has always accepted (some ignore trailing bytes), and
//! returns `None` for anything else, which the store reports as
//! `StoreError::Corrupt`.
//!
//! Keys that are nothing but a value's own bytes have no type here:
//! `envelopes` and `syncset` are keyed by the 32-byte record id, `trust` by
//! the 32-byte author key, `peers` by the peer's name. The values of `peers`
//! and `trust` are the node's own (JSON): the store only keeps them durable.

use std::borrow::Cow;

use maillage_record::{Kind, PublicKey, RecordId, Siren, Visibility};

fn read_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// `envelopes` value: seq (8) ‖ received_at_ms (8) ‖ the canonical envelope
/// bytes (maillage.v1.Envelope).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvelopeValue<'a> {
    pub seq: u64,
    pub received_at_ms: i64,
    pub envelope: &'a [u8],
}

impl<'a> EnvelopeValue<'a> {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(16 + self.envelope.len());
        v.extend_from_slice(&self.seq.to_be_bytes());
        v.extend_from_slice(&self.received_at_ms.to_be_bytes());
        v.extend_from_slice(self.envelope);
        v
    }

    pub fn decode(v: &'a [u8]) -> Option<Self> {
        Some(EnvelopeValue {
            seq: read_u64(v, 0)?,
            received_at_ms: read_u64(v, 8)? as i64,
            envelope: v.get(16..)?,
        })
    }
}

/// `current` key: author (32) ‖ record_id (UTF-8). Keys sort by author then
/// record id, the order `list_current` pages in, and an author's keys share
/// the author as prefix (its filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentKey<'a> {
    pub author: PublicKey,
    pub record_id: &'a str,
}

impl<'a> CurrentKey<'a> {
    pub fn encode(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(32 + self.record_id.len());
        k.extend_from_slice(&self.author.0);
        k.extend_from_slice(self.record_id.as_bytes());
        k
    }

    pub fn decode(k: &'a [u8]) -> Option<Self> {
        Some(CurrentKey {
            author: PublicKey::from_slice(k.get(..32)?)?,
            record_id: std::str::from_utf8(&k[32..]).ok()?,
        })
    }
}

/// `current` value, the current version of a record: version (8) ‖ id (32) ‖
/// kind (1, `Kind::code`) ‖ seq (8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentValue {
    pub version: u64,
    pub id: RecordId,
    pub kind: Kind,
    pub seq: u64,
}

impl CurrentValue {
    const LEN: usize = 49;

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Self::LEN);
        v.extend_from_slice(&self.version.to_be_bytes());
        v.extend_from_slice(&self.id.0);
        v.push(self.kind.code());
        v.extend_from_slice(&self.seq.to_be_bytes());
        v
    }

    pub fn decode(v: &[u8]) -> Option<Self> {
        if v.len() != Self::LEN {
            return None;
        }
        Some(CurrentValue {
            version: read_u64(v, 0)?,
            id: RecordId::from_slice(&v[8..40])?,
            kind: Kind::from_code(v[40])?,
            seq: read_u64(v, 41)?,
        })
    }
}

/// `history` key, one per stored version: author (32) ‖ record_id ‖ 0x00 ‖
/// version (8) ‖ id (32); the value is empty. A record's versions share the
/// prefix up to 0x00 and sort by version after it, so `history` reads them
/// oldest first with one seek. `record_id` never contains 0x00 (see
/// `validate_record_id`), so the first 0x00 after the author is the separator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryKey<'a> {
    pub author: PublicKey,
    pub record_id: &'a str,
    pub version: u64,
    pub id: RecordId,
}

impl<'a> HistoryKey<'a> {
    /// The prefix of every version of (author, record_id).
    pub fn prefix(author: &PublicKey, record_id: &str) -> Vec<u8> {
        Self::start(author, record_id, 0)
    }

    /// author ‖ record_id ‖ 0x00, with room for `more` bytes.
    fn start(author: &PublicKey, record_id: &str, more: usize) -> Vec<u8> {
        let mut k = Vec::with_capacity(33 + record_id.len() + more);
        k.extend_from_slice(&author.0);
        k.extend_from_slice(record_id.as_bytes());
        k.push(0);
        k
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut k = Self::start(&self.author, self.record_id, 40);
        k.extend_from_slice(&self.version.to_be_bytes());
        k.extend_from_slice(&self.id.0);
        k
    }

    pub fn decode(k: &'a [u8]) -> Option<Self> {
        let author = PublicKey::from_slice(k.get(..32)?)?;
        let rest = &k[32..];
        let separator = rest.iter().position(|&b| b == 0)?;
        let (record_id, version_id) = (&rest[..separator], &rest[separator + 1..]);
        if version_id.len() != 40 {
            return None;
        }
        Some(HistoryKey {
            author,
            record_id: std::str::from_utf8(record_id).ok()?,
            version: read_u64(version_id, 0)?,
            id: RecordId::from_slice(&version_id[8..])?,
        })
    }
}

/// `changes` key: seq (8). The last key is the last sequence number written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeKey {
    pub seq: u64,
}

impl ChangeKey {
    pub fn encode(&self) -> [u8; 8] {
        self.seq.to_be_bytes()
    }

    pub fn decode(k: &[u8]) -> Option<Self> {
        Some(ChangeKey {
            seq: read_u64(k, 0)?,
        })
    }
}

/// `changes` value: id (32) ‖ origin, the name of the peer that relayed the
/// envelope, empty for a record published or imported here. The name is kept
/// as bytes: it is read back lossily, as it always was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeValue<'a> {
    pub id: RecordId,
    pub origin: &'a [u8],
}

impl<'a> ChangeValue<'a> {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(32 + self.origin.len());
        v.extend_from_slice(&self.id.0);
        v.extend_from_slice(self.origin);
        v
    }

    pub fn decode(v: &'a [u8]) -> Option<Self> {
        Some(ChangeValue {
            id: RecordId::from_slice(v.get(..32)?)?,
            origin: &v[32..],
        })
    }
}

/// `meta` keys, each holding a `MetaValue`. The store only looks them up (it
/// never lists the table), so they have no decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKey {
    /// "schema": the layout version of the whole store.
    Schema,
    /// "count/envelopes": envelopes stored.
    Envelopes,
    /// "count/current/{kind}" (`Kind::as_str`): current records of a kind.
    CurrentCount(Kind),
}

impl MetaKey {
    pub fn encode(self) -> Vec<u8> {
        match self {
            MetaKey::Schema => b"schema".to_vec(),
            MetaKey::Envelopes => b"count/envelopes".to_vec(),
            MetaKey::CurrentCount(kind) => format!("count/current/{}", kind.as_str()).into_bytes(),
        }
    }
}

/// `meta` value: a u64 (8), a counter or the schema version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaValue(pub u64);

impl MetaValue {
    pub fn encode(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    pub fn decode(v: &[u8]) -> Option<Self> {
        read_u64(v, 0).map(MetaValue)
    }
}

/// `syncset` value: issued_at_ms (8) ‖ author (32) ‖ scope (1: 0 public,
/// 1 federation, 2 restricted) ‖ for a restricted record, its audience's
/// SIRENs (9 ASCII digits each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncsetValue<'a> {
    pub issued_at_ms: u64,
    pub author: PublicKey,
    /// Borrowed from the record when writing (no copy of the audience per
    /// record), owned when read.
    pub visibility: Cow<'a, Visibility>,
}

impl<'a> SyncsetValue<'a> {
    /// The entry of a record issued at `issued_at_ms`: negentropy timestamps
    /// are unsigned, so a date before 1970 is kept as 0.
    pub fn new(issued_at_ms: i64, author: PublicKey, visibility: &'a Visibility) -> Self {
        SyncsetValue {
            issued_at_ms: issued_at_ms.max(0) as u64,
            author,
            visibility: Cow::Borrowed(visibility),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let audience: &[Siren] = match &*self.visibility {
            Visibility::Restricted { audience } => audience,
            Visibility::Public | Visibility::Federation => &[],
        };
        let mut v = Vec::with_capacity(41 + 9 * audience.len());
        v.extend_from_slice(&self.issued_at_ms.to_be_bytes());
        v.extend_from_slice(&self.author.0);
        v.push(match *self.visibility {
            Visibility::Public => 0,
            Visibility::Federation => 1,
            Visibility::Restricted { .. } => 2,
        });
        for siren in audience {
            v.extend_from_slice(siren.as_str().as_bytes());
        }
        v
    }

    pub fn decode(v: &[u8]) -> Option<SyncsetValue<'static>> {
        let visibility = match v.get(40)? {
            0 => Visibility::Public,
            1 => Visibility::Federation,
            2 => {
                let rest = &v[41..];
                if !rest.len().is_multiple_of(9) {
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
        Some(SyncsetValue {
            issued_at_ms: read_u64(v, 0)?,
            author: PublicKey::from_slice(&v[8..40])?,
            visibility: Cow::Owned(visibility),
        })
    }
}

/// `conflicts` key: author (32) ‖ version (8) ‖ record_id (UTF-8). An
/// author's conflicts share the author as prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConflictKey<'a> {
    pub author: PublicKey,
    pub version: u64,
    pub record_id: &'a str,
}

impl<'a> ConflictKey<'a> {
    pub fn encode(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(40 + self.record_id.len());
        k.extend_from_slice(&self.author.0);
        k.extend_from_slice(&self.version.to_be_bytes());
        k.extend_from_slice(self.record_id.as_bytes());
        k
    }

    pub fn decode(k: &'a [u8]) -> Option<Self> {
        Some(ConflictKey {
            author: PublicKey::from_slice(k.get(..32)?)?,
            version: read_u64(k, 32)?,
            record_id: std::str::from_utf8(k.get(40..)?).ok()?,
        })
    }
}

/// `conflicts` value: what the author signed twice (1 byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictValue {
    /// Two different envelopes with the same version.
    SameVersion,
    /// A version of another kind than the record's current one.
    OtherKind,
}

impl ConflictValue {
    pub fn encode(self) -> [u8; 1] {
        [match self {
            ConflictValue::SameVersion => 1,
            ConflictValue::OtherKind => 2,
        }]
    }

    pub fn decode(v: &[u8]) -> Option<Self> {
        match v {
            [1] => Some(ConflictValue::SameVersion),
            [2] => Some(ConflictValue::OtherKind),
            _ => None,
        }
    }
}

/// `quarantine` key: author (32) ‖ id (32). An author's records share the
/// author as prefix: they are listed, counted and released by author.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarantineKey {
    pub author: PublicKey,
    pub id: RecordId,
}

impl QuarantineKey {
    pub fn encode(&self) -> [u8; 64] {
        let mut k = [0; 64];
        k[..32].copy_from_slice(&self.author.0);
        k[32..].copy_from_slice(&self.id.0);
        k
    }

    pub fn decode(k: &[u8]) -> Option<Self> {
        if k.len() != 64 {
            return None;
        }
        Some(QuarantineKey {
            author: PublicKey::from_slice(&k[..32])?,
            id: RecordId::from_slice(&k[32..])?,
        })
    }

    /// The author of a key, which is all `quarantine_authors` reads of it.
    pub fn decode_author(k: &[u8]) -> Option<PublicKey> {
        PublicKey::from_slice(k.get(..32)?)
    }

    /// A key past every key of `author` (ids are 32 bytes, this suffix is 33
    /// bytes of 0xff), where a seek finds the next author's first record.
    pub fn past_author(author: &PublicKey) -> [u8; 65] {
        let mut k = [0xff; 65];
        k[..32].copy_from_slice(&author.0);
        k
    }
}

/// `quarantine` value: received_at_ms (8) ‖ 0x00 ‖ peer name length (1) ‖
/// peer name ‖ the canonical envelope bytes.
///
/// Entries written before the peer was kept hold received_at_ms (8) ‖ the
/// envelope, and must still be read: an envelope's first byte (a protobuf
/// tag) is never 0, so the 0x00 tells the two layouts apart. `peer: None`
/// reads and writes that older layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarantineValue<'a> {
    pub received_at_ms: i64,
    pub peer: Option<&'a [u8]>,
    pub envelope: &'a [u8],
}

impl<'a> QuarantineValue<'a> {
    pub fn encode(&self) -> Vec<u8> {
        let Some(peer) = self.peer else {
            let mut v = Vec::with_capacity(8 + self.envelope.len());
            v.extend_from_slice(&self.received_at_ms.to_be_bytes());
            v.extend_from_slice(self.envelope);
            return v;
        };
        // Its length is one byte. Peer names are at most 64 bytes
        // (`peers::validate_name`): this cut never happens to a valid one.
        let peer = &peer[..peer.len().min(255)];
        let mut v = Vec::with_capacity(10 + peer.len() + self.envelope.len());
        v.extend_from_slice(&self.received_at_ms.to_be_bytes());
        v.push(0);
        v.push(peer.len() as u8);
        v.extend_from_slice(peer);
        v.extend_from_slice(self.envelope);
        v
    }

    pub fn decode(v: &'a [u8]) -> Option<Self> {
        let received_at_ms = read_u64(v, 0)? as i64;
        let after_time = &v[8..];
        let (peer, envelope) = match *after_time {
            [0, len, ref rest @ ..] if rest.len() >= usize::from(len) => {
                let (name, envelope) = rest.split_at(usize::from(len));
                (Some(name), envelope)
            }
            [0, ..] => return None,
            _ => (None, after_time),
        };
        Some(QuarantineValue {
            received_at_ms,
            peer,
            envelope,
        })
    }
}

#[cfg(test)]
mod tests {
    //! Each layout pinned to the bytes a store holds: if one of these fails,
    //! the change breaks every existing store, whatever the round trips say.

    use super::*;

    /// Bytes from hexadecimal fields, written in layout order.
    fn hex(fields: &[&str]) -> Vec<u8> {
        hex::decode(fields.concat()).expect("test hex")
    }

    const AUTHOR: PublicKey = PublicKey([0x07; 32]);
    const AUTHOR_HEX: &str = "0707070707070707070707070707070707070707070707070707070707070707";
    const ID: RecordId = RecordId([0x11; 32]);
    const ID_HEX: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    /// A protobuf message's bytes: field 1, length 3, "abc".
    const ENVELOPE: &[u8] = b"\x0a\x03abc";

    #[test]
    fn envelope_value() {
        let value = EnvelopeValue {
            seq: 0x0102,
            received_at_ms: 1_764_000_000_000,
            envelope: ENVELOPE,
        };
        let bytes = value.encode();
        assert_eq!(
            bytes,
            hex(&["0000000000000102", "0000019ab697e800", "0a03616263"])
        );
        assert_eq!(EnvelopeValue::decode(&bytes), Some(value));
        assert_eq!(EnvelopeValue::decode(&bytes[..15]), None);
    }

    #[test]
    fn current_key() {
        let key = CurrentKey {
            author: AUTHOR,
            record_id: "été-1",
        };
        let bytes = key.encode();
        assert_eq!(bytes, hex(&[AUTHOR_HEX, "c3a974c3a92d31"]));
        assert_eq!(CurrentKey::decode(&bytes), Some(key));
        assert_eq!(CurrentKey::decode(&bytes[..31]), None);
        assert_eq!(CurrentKey::decode(&bytes[..33]), None, "cut inside 'é'");
    }

    #[test]
    fn conflict_key_and_value() {
        let key = ConflictKey {
            author: AUTHOR,
            version: 3,
            record_id: "été-1",
        };
        let bytes = key.encode();
        assert_eq!(
            bytes,
            hex(&[AUTHOR_HEX, "0000000000000003", "c3a974c3a92d31"])
        );
        assert_eq!(ConflictKey::decode(&bytes), Some(key));
        assert_eq!(ConflictKey::decode(&bytes[..39]), None);
        assert_eq!(ConflictValue::SameVersion.encode(), [1]);
        assert_eq!(ConflictValue::OtherKind.encode(), [2]);
        assert_eq!(ConflictValue::decode(&[2]), Some(ConflictValue::OtherKind));
        assert_eq!(ConflictValue::decode(&[3]), None);
    }

    #[test]
    fn current_value() {
        let value = CurrentValue {
            version: 3,
            id: ID,
            kind: Kind::Dataset,
            seq: 0x0102,
        };
        let bytes = value.encode();
        assert_eq!(
            bytes,
            hex(&["0000000000000003", ID_HEX, "02", "0000000000000102"])
        );
        assert_eq!(CurrentValue::decode(&bytes), Some(value));
        assert_eq!(CurrentValue::decode(&bytes[..48]), None);
        let mut unknown_kind = bytes;
        unknown_kind[40] = 0;
        assert_eq!(CurrentValue::decode(&unknown_kind), None);
    }

    #[test]
    fn history_key() {
        let key = HistoryKey {
            author: AUTHOR,
            record_id: "a",
            version: 3,
            id: ID,
        };
        let bytes = key.encode();
        assert_eq!(
            bytes,
            hex(&[AUTHOR_HEX, "61", "00", "0000000000000003", ID_HEX])
        );
        assert_eq!(HistoryKey::prefix(&AUTHOR, "a"), hex(&[AUTHOR_HEX, "6100"]));
        assert!(bytes.starts_with(&HistoryKey::prefix(&AUTHOR, "a")));
        assert_eq!(HistoryKey::decode(&bytes), Some(key));
        assert_eq!(HistoryKey::decode(&bytes[..bytes.len() - 1]), None);
        // An author key holding 0x00 is not mistaken for the separator.
        let key = HistoryKey {
            author: PublicKey([0; 32]),
            ..key
        };
        assert_eq!(HistoryKey::decode(&key.encode()), Some(key));
    }

    #[test]
    fn change_key_and_value() {
        let key = ChangeKey { seq: 0x0102 };
        assert_eq!(key.encode(), *hex(&["0000000000000102"]));
        assert_eq!(ChangeKey::decode(&key.encode()), Some(key));
        assert_eq!(ChangeKey::decode(&[1; 7]), None);

        for (origin, origin_hex) in [(&b"lyon"[..], "6c796f6e"), (&b""[..], "")] {
            let value = ChangeValue { id: ID, origin };
            let bytes = value.encode();
            assert_eq!(bytes, hex(&[ID_HEX, origin_hex]));
            assert_eq!(ChangeValue::decode(&bytes), Some(value));
        }
        assert_eq!(ChangeValue::decode(&[1; 31]), None);
    }

    #[test]
    fn meta_keys_and_values() {
        assert_eq!(MetaKey::Schema.encode(), b"schema");
        assert_eq!(MetaKey::Envelopes.encode(), b"count/envelopes");
        let counters: Vec<Vec<u8>> = Kind::ALL
            .into_iter()
            .map(|kind| MetaKey::CurrentCount(kind).encode())
            .collect();
        assert_eq!(
            counters,
            [
                &b"count/current/organisation"[..],
                b"count/current/dataset",
                b"count/current/project",
                b"count/current/tombstone",
                b"count/current/membership",
                b"count/current/project_details",
                b"count/current/resource",
                b"count/current/collection",
                b"count/current/succession",
                b"count/current/revocation",
                b"count/current/aggregate",
                b"count/current/reuse",
            ]
        );

        let value = MetaValue(0x0102);
        assert_eq!(value.encode(), *hex(&["0000000000000102"]));
        assert_eq!(MetaValue::decode(&value.encode()), Some(value));
        assert_eq!(MetaValue::decode(&[1; 7]), None);
    }

    #[test]
    fn syncset_value() {
        let audience = vec![
            Siren::parse("243100518").unwrap(),
            Siren::parse("213105554").unwrap(),
        ];
        for (visibility, scope_hex) in [
            (Visibility::Public, "00"),
            (Visibility::Federation, "01"),
            (
                Visibility::Restricted { audience },
                // "243100518" "213105554" in ASCII.
                "02323433313030353138323133313035353534",
            ),
        ] {
            let value = SyncsetValue::new(1_700_000_000_000, AUTHOR, &visibility);
            let bytes = value.encode();
            assert_eq!(bytes, hex(&["0000018bcfe56800", AUTHOR_HEX, scope_hex]));
            assert_eq!(SyncsetValue::decode(&bytes), Some(value));
        }
        let before_1970 = SyncsetValue::new(-5, AUTHOR, &Visibility::Public);
        assert_eq!(before_1970.encode()[..8], [0; 8]);
        assert_eq!(SyncsetValue::decode(&[0; 12]), None);
        let mut bad_scope = before_1970.encode();
        bad_scope[40] = 3;
        assert_eq!(SyncsetValue::decode(&bad_scope), None);
        let mut cut_siren = hex(&["0000018bcfe56800", AUTHOR_HEX, "02"]);
        cut_siren.extend_from_slice(b"24310051");
        assert_eq!(SyncsetValue::decode(&cut_siren), None);
    }

    #[test]
    fn quarantine_key() {
        let key = QuarantineKey {
            author: AUTHOR,
            id: ID,
        };
        let bytes = key.encode();
        assert_eq!(bytes[..], hex(&[AUTHOR_HEX, ID_HEX]));
        assert_eq!(QuarantineKey::decode(&bytes), Some(key));
        assert_eq!(QuarantineKey::decode(&bytes[..63]), None);
        assert_eq!(QuarantineKey::decode_author(&bytes), Some(AUTHOR));
        let past = QuarantineKey::past_author(&AUTHOR);
        assert_eq!(
            past[..],
            hex(&[AUTHOR_HEX, &"ff".repeat(33)]),
            "author ‖ 33 × 0xff"
        );
        let last_of_author = QuarantineKey {
            author: AUTHOR,
            id: RecordId([0xff; 32]),
        };
        assert!(last_of_author.encode()[..] < past[..]);
    }

    #[test]
    fn quarantine_value_in_both_layouts() {
        let value = QuarantineValue {
            received_at_ms: 5,
            peer: Some(b"blagnac"),
            envelope: ENVELOPE,
        };
        let bytes = value.encode();
        assert_eq!(
            bytes,
            hex(&[
                "0000000000000005",
                "00",
                "07",
                "626c61676e6163",
                "0a03616263"
            ])
        );
        assert_eq!(QuarantineValue::decode(&bytes), Some(value));

        // As written before the peer was kept.
        let older = QuarantineValue {
            peer: None,
            ..value
        };
        let bytes = older.encode();
        assert_eq!(bytes, hex(&["0000000000000005", "0a03616263"]));
        assert_eq!(QuarantineValue::decode(&bytes), Some(older));

        assert_eq!(QuarantineValue::decode(&[0; 7]), None);
        let name_cut = hex(&["0000000000000005", "00", "07", "626c61"]);
        assert_eq!(QuarantineValue::decode(&name_cut), None);
        let long = [b'p'; 300];
        let cut = QuarantineValue {
            peer: Some(&long),
            ..value
        };
        assert_eq!(
            QuarantineValue::decode(&cut.encode()).and_then(|v| v.peer),
            Some(&long[..255])
        );
    }
}
