//! Signed envelopes: signing, verification and record ids (docs/protocol.md).
//!
//! The signature covers the DSSE pre-authentication encoding of the payload
//! bytes, so a signature made for maillage can never be replayed as a signature
//! over some other protocol's message, and the payload is verified exactly as
//! received: it is never decoded and re-encoded before the check.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use maillage_proto::v1 as pb;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::model::{MAX_PAYLOAD_BYTES, Record};
use crate::wire::{self, PayloadError};

/// The DSSE payload type of a maillage record.
pub const PAYLOAD_TYPE: &str = "application/vnd.maillage.record.v1+protobuf";

/// The byte string an author signs: DSSE v1 pre-authentication encoding,
/// `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`, lengths in ASCII
/// decimal.
pub fn pae(payload: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut out = Vec::with_capacity(payload.len() + 80);
    // Written straight into the buffer: this runs for every record verified.
    write!(
        out,
        "DSSEv1 {} {} {} ",
        PAYLOAD_TYPE.len(),
        PAYLOAD_TYPE,
        payload.len()
    )
    .expect("writing to a Vec cannot fail");
    out.extend_from_slice(payload);
    out
}

/// An ed25519 public key: an author's identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

/// A record id: SHA-256 of the envelope's canonical encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId(pub [u8; 32]);

macro_rules! hex_id {
    ($t:ident, $what:literal) => {
        impl $t {
            /// Parses 64 hexadecimal characters.
            pub fn parse_hex(s: &str) -> Result<$t, HexError> {
                let s = s.trim();
                let bytes = hex::decode(s).map_err(|_| HexError {
                    what: $what,
                    value: s.to_string(),
                })?;
                Self::from_slice(&bytes).ok_or_else(|| HexError {
                    what: $what,
                    value: s.to_string(),
                })
            }

            pub fn from_slice(bytes: &[u8]) -> Option<$t> {
                Some($t(bytes.try_into().ok()?))
            }

            pub fn to_hex(&self) -> String {
                // By table, not `hex::encode`'s char iterator: ids and keys
                // are written into every search document, so this is hot.
                const DIGITS: &[u8; 16] = b"0123456789abcdef";
                let mut out = Vec::with_capacity(2 * self.0.len());
                for b in self.0 {
                    out.push(DIGITS[usize::from(b >> 4)]);
                    out.push(DIGITS[usize::from(b & 0xf)]);
                }
                String::from_utf8(out).expect("hex digits are ASCII")
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($t), self.to_hex())
            }
        }
    };
}
hex_id!(PublicKey, "public key");
hex_id!(RecordId, "record id");

/// 64 lowercase hex characters, as record documents write a key.
impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

/// Reads what `parse_hex` reads (either case, surrounding spaces ignored):
/// people paste keys from `maillage status` and elsewhere.
impl<'de> serde::Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        PublicKey::parse_hex(&text).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{what} '{value}' is not 64 hexadecimal characters")]
pub struct HexError {
    what: &'static str,
    value: String,
}

/// Why an envelope was refused. Each says what to check.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("not a maillage envelope: {0}")]
    Decode(String),
    #[error("payload is {size} bytes; the limit is {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("author key must be 32 bytes, found {0}")]
    AuthorLength(usize),
    #[error("author key {0} is not a usable ed25519 public key")]
    BadAuthorKey(PublicKey),
    #[error("signature must be 64 bytes, found {0} (truncated?)")]
    SignatureLength(usize),
    #[error("signature does not match: the payload was altered or was not signed by author {0}")]
    BadSignature(PublicKey),
    #[error(transparent)]
    Payload(#[from] PayloadError),
}

/// A record whose signature, size and content were checked. The only way to get
/// one is `verify` (or `sign`), so storage that takes a `VerifiedRecord` can only
/// hold verified records.
#[derive(Debug, Clone)]
pub struct VerifiedRecord {
    id: RecordId,
    author: PublicKey,
    payload: Vec<u8>,
    signature: [u8; 64],
    record: Record,
    /// The canonical encoding, made once: it is hashed for the id, then stored.
    canonical: Vec<u8>,
}

impl VerifiedRecord {
    pub fn id(&self) -> RecordId {
        self.id
    }
    pub fn author(&self) -> PublicKey {
        self.author
    }
    pub fn record(&self) -> &Record {
        &self.record
    }
    /// The payload bytes, exactly as signed.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
    /// The canonical encoding: what is stored, hashed and exported by `get --raw`.
    pub fn envelope_bytes(&self) -> Vec<u8> {
        self.canonical.clone()
    }

    /// The canonical encoding, borrowed.
    pub fn canonical(&self) -> &[u8] {
        &self.canonical
    }
    pub fn to_proto(&self) -> pb::Envelope {
        pb::Envelope {
            payload: self.payload.clone(),
            author: self.author.0.to_vec(),
            signature: self.signature.to_vec(),
        }
    }
}

/// The id an envelope has: SHA-256 of its canonical encoding. Lets a receiver
/// name an envelope it refused, which `verify` gives no id for.
pub fn record_id(payload: &[u8], author: &[u8], signature: &[u8]) -> RecordId {
    RecordId(Sha256::digest(canonical_encoding(payload, author, signature)).into())
}

/// Field 1, 2 and 3 of `Envelope`, each once, in order: the bytes the id hashes.
pub fn canonical_encoding(payload: &[u8], author: &[u8], signature: &[u8]) -> Vec<u8> {
    pb::Envelope {
        payload: payload.to_vec(),
        author: author.to_vec(),
        signature: signature.to_vec(),
    }
    .encode_to_vec()
}

/// Signs a record with `key`. The record must be complete (version ≥ 1).
pub fn sign(key: &SigningKey, record: &Record) -> Result<VerifiedRecord, EnvelopeError> {
    record
        .validate()
        .map_err(|e| EnvelopeError::Payload(PayloadError::Invalid(e)))?;
    let payload = wire::encode_payload(record);
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(EnvelopeError::TooLarge {
            size: payload.len(),
            limit: MAX_PAYLOAD_BYTES,
        });
    }
    let signature = key.sign(&pae(&payload)).to_bytes();
    let author = PublicKey(key.verifying_key().to_bytes());
    let canonical = canonical_encoding(&payload, &author.0, &signature);
    let id = RecordId(Sha256::digest(&canonical).into());
    Ok(VerifiedRecord {
        id,
        author,
        payload,
        signature,
        record: record.clone(),
        canonical,
    })
}

/// Checks an envelope in full: sizes, key, signature, then the payload's content.
pub fn verify(env: &pb::Envelope) -> Result<VerifiedRecord, EnvelopeError> {
    let (author, key, signature) = precheck(env)?;
    // Strict verification: rejects small-order keys and malleable signatures, so
    // one payload cannot gain a second valid signature (and a second record id).
    key.verify_strict(&pae(&env.payload), &Signature::from_bytes(&signature))
        .map_err(|_| EnvelopeError::BadSignature(author))?;
    finish(env, author, signature)
}

/// Verifies many envelopes (a replication batch) with one batch signature
/// check, which costs about half of checking them one by one. If the batch
/// fails, each envelope is checked alone (strictly) to say which ones are bad.
///
/// Known gap: the batch equation is cofactorless with random weights, so a
/// signature crafted with a torsion component in R, which `verify` always
/// refuses, passes a batch with a small probability. Only its author can make
/// one; the cure is cofactored (ZIP-215) verification everywhere.
pub fn verify_batch(envs: &[pb::Envelope]) -> Vec<Result<VerifiedRecord, EnvelopeError>> {
    let mut results: Vec<Result<(PublicKey, [u8; 64]), EnvelopeError>> =
        Vec::with_capacity(envs.len());
    let (mut messages, mut signatures, mut keys, mut idx) = (vec![], vec![], vec![], vec![]);
    // One lock per batch, not per envelope.
    let mut keys_seen = KEY_CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if keys_seen.len() > KEY_CACHE_LIMIT {
        keys_seen.clear();
    }
    for (i, env) in envs.iter().enumerate() {
        let checked = precheck_cached(env, &mut keys_seen);
        if let Ok((_, key, sig)) = &checked {
            messages.push(pae(&env.payload));
            signatures.push(Signature::from_bytes(sig));
            keys.push(*key);
            idx.push(i);
        }
        results.push(checked.map(|(author, _, sig)| (author, sig)));
    }
    drop(keys_seen);
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    if !refs.is_empty() && ed25519_dalek::verify_batch(&refs, &signatures, &keys).is_err() {
        for (n, &i) in idx.iter().enumerate() {
            if keys[n].verify_strict(refs[n], &signatures[n]).is_err() {
                let author = PublicKey(keys[n].to_bytes());
                results[i] = Err(EnvelopeError::BadSignature(author));
            }
        }
    }
    results
        .into_iter()
        .zip(envs)
        .map(|(r, env)| r.and_then(|(author, sig)| finish(env, author, sig)))
        .collect()
}

/// Decoded author keys, shared by every batch: decoding a key costs a point
/// decompression, and a federation has far fewer authors than records. A
/// decoded key is a pure function of its bytes, so sharing it is safe.
static KEY_CACHE: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<[u8; 32], VerifyingKey>>,
> = std::sync::LazyLock::new(Default::default);
/// Past this many authors the cache starts over (about 10 MB at most).
const KEY_CACHE_LIMIT: usize = 65_536;

/// Sizes and key, everything but the signature and the content.
fn precheck(env: &pb::Envelope) -> Result<(PublicKey, VerifyingKey, [u8; 64]), EnvelopeError> {
    precheck_cached(env, &mut Default::default())
}

fn precheck_cached(
    env: &pb::Envelope,
    keys: &mut std::collections::HashMap<[u8; 32], VerifyingKey>,
) -> Result<(PublicKey, VerifyingKey, [u8; 64]), EnvelopeError> {
    if env.payload.len() > MAX_PAYLOAD_BYTES {
        return Err(EnvelopeError::TooLarge {
            size: env.payload.len(),
            limit: MAX_PAYLOAD_BYTES,
        });
    }
    let author =
        PublicKey::from_slice(&env.author).ok_or(EnvelopeError::AuthorLength(env.author.len()))?;
    let signature: [u8; 64] = env
        .signature
        .as_slice()
        .try_into()
        .map_err(|_| EnvelopeError::SignatureLength(env.signature.len()))?;
    // Decoding a key costs a point decompression: once per author.
    let key = match keys.get(&author.0) {
        Some(k) => *k,
        None => {
            let k = VerifyingKey::from_bytes(&author.0)
                .map_err(|_| EnvelopeError::BadAuthorKey(author))?;
            if k.is_weak() {
                return Err(EnvelopeError::BadAuthorKey(author));
            }
            keys.insert(author.0, k);
            k
        }
    };
    Ok((author, key, signature))
}

/// After the signature: the content, and the id.
fn finish(
    env: &pb::Envelope,
    author: PublicKey,
    signature: [u8; 64],
) -> Result<VerifiedRecord, EnvelopeError> {
    let record = wire::decode_payload(&env.payload)?;
    let canonical = canonical_encoding(&env.payload, &author.0, &signature);
    let id = RecordId(Sha256::digest(&canonical).into());
    Ok(VerifiedRecord {
        id,
        author,
        payload: env.payload.clone(),
        signature,
        record,
        canonical,
    })
}

/// Decodes an envelope this node stored, without checking its signature again:
/// only envelopes that passed `verify` are ever stored.
pub fn decode_stored(bytes: &[u8]) -> Result<Record, EnvelopeError> {
    let env = pb::Envelope::decode(bytes).map_err(|e| EnvelopeError::Decode(e.to_string()))?;
    Ok(wire::decode_payload(&env.payload)?)
}

/// Like `decode_stored`, with the envelope's author, and without checking
/// the content's rules again either (they were checked before it was
/// stored): for reads of many records at once (an aggregate's).
pub fn decode_stored_authored(bytes: &[u8]) -> Result<(PublicKey, Record), EnvelopeError> {
    let env = pb::Envelope::decode(bytes).map_err(|e| EnvelopeError::Decode(e.to_string()))?;
    let author = PublicKey::from_slice(&env.author)
        .ok_or_else(|| EnvelopeError::Decode("the author is not 32 bytes".into()))?;
    let payload = pb::Payload::decode(env.payload.as_slice())
        .map_err(|e| EnvelopeError::Decode(e.to_string()))?;
    let record =
        wire::payload_from_proto(payload).map_err(|e| EnvelopeError::Decode(e.to_string()))?;
    Ok((author, record))
}

/// Decodes envelope bytes (as `get --raw` writes them) and verifies them.
pub fn verify_bytes(bytes: &[u8]) -> Result<VerifiedRecord, EnvelopeError> {
    // Room for the key, signature and field headers around the largest payload.
    if bytes.len() > MAX_PAYLOAD_BYTES + 256 {
        return Err(EnvelopeError::TooLarge {
            size: bytes.len(),
            limit: MAX_PAYLOAD_BYTES,
        });
    }
    let env = pb::Envelope::decode(bytes).map_err(|e| EnvelopeError::Decode(e.to_string()))?;
    verify(&env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Body, Dataset, Visibility};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn dataset(version: u64) -> Record {
        Record {
            record_id: "budget-2026".into(),
            version,
            issued_at_ms: 1_764_000_000_000,
            visibility: Visibility::Public,
            provenance: None,
            body: Body::Dataset(Dataset::new("Budget primitif", "Le budget voté")),
        }
    }

    #[test]
    fn hex_is_lowercase_and_round_trips() {
        let id = RecordId(std::array::from_fn(|i| (i * 37 + 5) as u8));
        assert_eq!(id.to_hex(), hex::encode(id.0));
        assert_eq!(RecordId::parse_hex(&id.to_hex()).unwrap(), id);
        assert_eq!(
            PublicKey::from_slice(&[0xab; 32]).unwrap().to_hex(),
            "ab".repeat(32)
        );
    }

    #[test]
    fn pae_matches_the_dsse_spec() {
        let out = pae(b"hello");
        assert_eq!(
            out,
            b"DSSEv1 43 application/vnd.maillage.record.v1+protobuf 5 hello".to_vec()
        );
    }

    #[test]
    fn sign_then_verify() {
        let signed = sign(&key(1), &dataset(1)).unwrap();
        let again = verify_bytes(&signed.envelope_bytes()).unwrap();
        assert_eq!(again.id(), signed.id());
        assert_eq!(again.record(), &dataset(1));
        // The id is the SHA-256 of the stored bytes.
        let h: [u8; 32] = Sha256::digest(signed.envelope_bytes()).into();
        assert_eq!(signed.id().0, h);
    }

    #[test]
    fn tampering_is_caught() {
        let signed = sign(&key(1), &dataset(1)).unwrap();
        let mut env = signed.to_proto();
        let mid = env.payload.len() / 2;
        env.payload[mid] ^= 1;
        assert!(verify(&env).is_err());

        let mut env = signed.to_proto();
        env.author = key(2).verifying_key().to_bytes().to_vec();
        assert!(matches!(verify(&env), Err(EnvelopeError::BadSignature(_))));

        let mut env = signed.to_proto();
        env.signature.truncate(63);
        assert!(matches!(
            verify(&env),
            Err(EnvelopeError::SignatureLength(63))
        ));

        // Every single-bit flip anywhere in the raw envelope is refused.
        let raw = signed.envelope_bytes();
        for i in 0..raw.len() {
            let mut b = raw.clone();
            b[i] ^= 0x10;
            assert!(verify_bytes(&b).is_err(), "flip at byte {i} accepted");
        }
    }

    #[test]
    fn oversized_payload_refused() {
        let mut env = sign(&key(1), &dataset(1)).unwrap().to_proto();
        env.payload = vec![0; MAX_PAYLOAD_BYTES + 1];
        assert!(matches!(verify(&env), Err(EnvelopeError::TooLarge { .. })));
    }

    #[test]
    fn batch_verification_finds_the_forged_one() {
        let good: Vec<pb::Envelope> = (1..=5)
            .map(|v| sign(&key(v as u8), &dataset(v)).unwrap().to_proto())
            .collect();
        assert!(verify_batch(&good).iter().all(Result::is_ok));

        let mut batch = good.clone();
        batch[2].author = key(9).verifying_key().to_bytes().to_vec();
        batch[4].signature.truncate(10);
        let results = verify_batch(&batch);
        let bad: Vec<usize> = (0..5).filter(|&i| results[i].is_err()).collect();
        assert_eq!(bad, vec![2, 4]);
        assert!(matches!(results[2], Err(EnvelopeError::BadSignature(_))));
        for (r, env) in results.iter().zip(&good).take(2) {
            assert_eq!(r.as_ref().unwrap().id(), verify(env).unwrap().id());
        }
    }
}
