//! Fuzz targets: each takes bytes as an attacker or a messy file would give
//! them to a node, and must answer with an error, never a panic, a hang or
//! an unbounded allocation. Where the input is accepted, what it decodes to
//! must survive a round trip.
//!
//! `scripts/fuzz` runs them under AFL++ (`src/bin/fuzz.rs`, the `afl`
//! feature); the tests below replay the seed corpus (`corpus/<target>/`) and
//! a short, seeded mutation run of it on every `cargo test`.

use maillage_import::Format;
use maillage_proto::v1 as pb;
use maillage_record::{Kind, envelope, json, territory, vocab, wire};
use prost::Message;

// The HTTP query string, as the node reads it: the file alone, so that the
// targets build without the node (and RocksDB).
#[path = "../../node/src/query_string.rs"]
#[allow(dead_code)]
mod query_string;

/// A fuzz target: takes any bytes.
pub type Target = fn(&[u8]);

/// Every target, by name (the name of its corpus folder).
pub const TARGETS: &[(&str, Target)] = &[
    ("envelope", envelope_bytes),
    ("payload", payload),
    ("document", document),
    ("import_scdl", |d| import(Format::ScdlCatalogue, d)),
    ("import_etalab", |d| import(Format::EtalabCatalogue, d)),
    ("import_bibliotheque", |d| import(Format::BibliothequeIa, d)),
    ("import_dcat", |d| import(Format::DcatJsonLd, d)),
    ("import_udata", |d| import(Format::Udata, d)),
    ("import_ckan", |d| import(Format::Ckan, d)),
    ("reconcile", reconcile),
    ("http_query", http_query),
];

pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// An envelope as a peer sends it: decoded and verified. One that verifies
/// re-encodes to the same canonical bytes, and its payload decodes alike.
fn envelope_bytes(data: &[u8]) {
    let _ = envelope::decode_stored(data);
    if let Ok(verified) = envelope::verify_bytes(data) {
        let env = pb::Envelope::decode(data).expect("it verified");
        let again = envelope::verify(&env).expect("verifies twice");
        assert_eq!(again.id(), verified.id());
    }
}

/// A payload: decoded and validated; one accepted encodes back to a payload
/// that decodes to the same record.
fn payload(data: &[u8]) {
    if let Ok(record) = wire::decode_payload(data) {
        let proto = wire::payload_to_proto(&record);
        let back = wire::payload_from_proto(proto).expect("a decoded record converts back");
        assert_eq!(back, record);
    }
}

/// A JSON document as `maillage publish` reads it.
fn document(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = json::parse_document(text);
    }
}

/// An import file: every row accepted or refused with its line; accepted
/// rows are records that validate.
fn import(format: Format, data: &[u8]) {
    if let Ok(parsed) = maillage_import::parse(format, "fuzz", data) {
        for row in parsed.rows {
            for record in row.records {
                let proto = wire::payload_to_proto(&record);
                assert!(
                    wire::payload_from_proto(proto).is_ok(),
                    "an imported row does not validate: {record:?}"
                );
            }
        }
    }
}

/// Reconciliation frames from a peer: the first byte chooses which side of
/// the protocol they reach (the node answering a Reconcile, or the node's
/// own sync reading a peer's answers); the rest is frames, each prefixed
/// by its length (2 bytes), as a stream of ReconcileFrame messages would
/// bring them.
fn reconcile(data: &[u8]) {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let mut storage = negentropy::NegentropyStorageVector::new();
    for i in 0..64u64 {
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&(i * 7919).to_be_bytes());
        storage
            .insert(
                1_764_000_000_000 + i * 1_000,
                negentropy::Id::from_byte_array(id),
            )
            .expect("fresh storage");
    }
    storage.seal().expect("once");
    // The node's frame limit (replication::FRAME_LIMIT).
    let Ok(mut neg) = negentropy::Negentropy::owned(storage, 512 * 1024) else {
        return;
    };
    let initiator = mode & 1 == 1;
    if initiator && neg.initiate().is_err() {
        return;
    }
    // The node's round cap (replication::MAX_ROUNDS).
    for _ in 0..256 {
        let Some((len, body)) = rest.split_first_chunk::<2>() else {
            return;
        };
        let len = (u16::from_be_bytes(*len) as usize).min(body.len());
        let (frame, after) = body.split_at(len);
        rest = after;
        // The frame as it arrives: inside a protobuf message.
        let message = pb::ReconcileFrame {
            negentropy: frame.to_vec(),
        };
        let Ok(frame) = pb::ReconcileFrame::decode(message.encode_to_vec().as_slice()) else {
            return;
        };
        let answered = if initiator {
            let (mut have, mut need) = (Vec::new(), Vec::new());
            neg.reconcile_with_ids(&frame.negentropy, &mut have, &mut need)
                .map(|a| a.unwrap_or_default())
        } else {
            neg.reconcile(&frame.negentropy)
        };
        match answered {
            Ok(answer) => assert!(answer.len() <= 512 * 1024 + 1024, "a frame past the limit"),
            Err(_) => return,
        }
    }
}

/// An HTTP query string, and each filter read as `/search` reads it.
fn http_query(data: &[u8]) {
    // Decoded as axum's `Query` decodes it (form-urlencoded).
    let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(data) else {
        return;
    };
    let Ok(params) = query_string::Params::new(pairs) else {
        return;
    };
    let _ = params.page();
    assert!(params.pairs().len() <= query_string::MAX_PARAMS);
    for (name, value) in params.pairs() {
        match name.as_str() {
            "territory" => {
                let _ = territory::Place::parse(value);
            }
            "kind" => {
                let _ = Kind::parse(value);
            }
            "status" => {
                let _ = vocab::ProjectStatus::parse(value);
            }
            "risk" => {
                let _ = vocab::RiskCategory::parse(value);
            }
            "org" => {
                let _ = maillage_record::Siren::parse(value);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("corpus")
            .join(target);
        let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("no seed corpus at {}: {e}", dir.display()))
            .map(|e| {
                let path = e.unwrap().path();
                let bytes = std::fs::read(&path).unwrap();
                (path, bytes)
            })
            .collect();
        files.sort();
        files
    }

    /// A small seeded generator for the mutations.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n.max(1) as u64) as usize
        }
    }

    /// One mutation as AFL++ makes them: a bit flipped, a byte set to an
    /// interesting value, bytes inserted, removed or duplicated, a splice
    /// with another seed.
    fn mutate(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8]) {
        const INTERESTING: [u8; 8] = [0, 1, 0x7f, 0x80, 0xff, b'"', b',', b'\n'];
        let at = rng.below(input.len() + 1);
        match rng.below(6) {
            0 if !input.is_empty() => {
                let i = at.min(input.len() - 1);
                input[i] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let i = at.min(input.len() - 1);
                input[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
                input.splice(at..at, bytes);
            }
            3 if !input.is_empty() => {
                let end = (at + 1 + rng.below(32)).min(input.len());
                input.drain(at.min(end)..end);
            }
            4 if !input.is_empty() => {
                let start = rng.below(input.len());
                let end = (start + 1 + rng.below(64)).min(input.len());
                let chunk = input[start..end].to_vec();
                input.splice(at..at, chunk);
            }
            _ if !other.is_empty() => {
                let start = rng.below(other.len());
                let end = (start + 1 + rng.below(256)).min(other.len());
                input.splice(at..at, other[start..end].iter().copied());
            }
            _ => input.push(rng.below(256) as u8),
        }
    }

    /// Every target takes its seed corpus, then a few thousand mutations of
    /// it (a seeded run, the same on every machine), without a panic.
    #[test]
    fn every_target_takes_its_corpus_and_mutations_of_it() {
        let rounds: usize = std::env::var("MAILLAGE_FUZZ_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(3_000);
        for (name, target) in TARGETS {
            let seeds = corpus(name);
            assert!(!seeds.is_empty(), "{name}: no seed corpus");
            for (path, bytes) in &seeds {
                let r = std::panic::catch_unwind(|| target(bytes));
                assert!(r.is_ok(), "{name}: the seed {} panics", path.display());
            }
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
            for round in 0..rounds {
                let (_, seed) = &seeds[rng.below(seeds.len())];
                let (_, other) = &seeds[rng.below(seeds.len())];
                let mut input = seed.clone();
                for _ in 0..1 + rng.below(8) {
                    mutate(&mut rng, &mut input, other);
                }
                let r = std::panic::catch_unwind(|| target(&input));
                if r.is_err() {
                    let keep = std::env::temp_dir().join(format!("maillage-fuzz-{name}-{round}"));
                    std::fs::write(&keep, &input).unwrap();
                    panic!(
                        "{name}: a mutation panics; input kept in {}",
                        keep.display()
                    );
                }
            }
        }
    }

    /// Writes the seeds that are made rather than found (envelopes,
    /// payloads, reconciliation frames): `cargo test -p maillage-fuzz --
    /// --ignored write_seeds`. The others are copies of real files.
    #[test]
    #[ignore]
    fn write_seeds() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
        let key = maillage_record::keyfile::generate().unwrap();
        let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
        for entry in std::fs::read_dir(examples).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_str().unwrap().to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let mut record = json::parse_document(&text).unwrap().record;
            record.version = record.version.max(1);
            if record.issued_at_ms == 0 {
                record.issued_at_ms = 1_764_000_000_000;
            }
            let Ok(signed) = envelope::sign(&key, &record) else {
                continue;
            };
            std::fs::write(root.join("envelope").join(&name), signed.canonical()).unwrap();
            let env = pb::Envelope::decode(signed.canonical()).unwrap();
            std::fs::write(root.join("payload").join(&name), env.payload).unwrap();
        }
        // The first frame of each side, and an exchange between two sets.
        let set = |skip: u64| {
            let mut s = negentropy::NegentropyStorageVector::new();
            for i in (0..64u64).filter(|i| i % 5 != skip) {
                let mut id = [0u8; 32];
                id[..8].copy_from_slice(&(i * 7919).to_be_bytes());
                s.insert(
                    1_764_000_000_000 + i * 1_000,
                    negentropy::Id::from_byte_array(id),
                )
                .unwrap();
            }
            s.seal().unwrap();
            negentropy::Negentropy::owned(s, 512 * 1024).unwrap()
        };
        let (mut client, mut server) = (set(1), set(2));
        let first = client.initiate().unwrap();
        let answer = server.reconcile(&first).unwrap();
        let framed = |mode: u8, frames: &[&[u8]]| {
            let mut out = vec![mode];
            for f in frames {
                out.extend_from_slice(&(f.len() as u16).to_be_bytes());
                out.extend_from_slice(f);
            }
            out
        };
        let dir = root.join("reconcile");
        std::fs::write(dir.join("query"), framed(0, &[&first])).unwrap();
        std::fs::write(dir.join("answer"), framed(1, &[&answer])).unwrap();
        std::fs::write(dir.join("both"), framed(0, &[&first, &answer])).unwrap();
    }
}
