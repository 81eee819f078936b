//! The maillage record model, shared by the node and the CLI.
//!
//! - `model`: what a record says, and its validation rules;
//! - `json`: records as the JSON documents people write and read;
//! - `wire`: the only conversion between generated protobuf types and the model;
//! - `envelope`: signing, verification and record ids;
//! - `siren`: SIREN and SIRET checks;
//! - `keyfile`: organisation key files (the only module here that does IO).
//!
//! Nothing here links a database or opens a socket: the CLI depends on it
//! without pulling in RocksDB.

pub mod aggregate;
pub mod envelope;
pub mod json;
pub mod keyfile;
pub mod model;
pub mod siren;
pub mod territory;
pub mod vocab;
pub mod wire;

pub use ed25519_dalek::SigningKey;
pub use envelope::{EnvelopeError, PublicKey, RecordId, VerifiedRecord};
pub use model::{Body, Kind, Record, ValidationError, Visibility};
pub use siren::Siren;

/// The signed Organisation record `maillage init` leaves in a node directory;
/// the node stores it at start. CLI and node must agree on this name.
pub const ORGANISATION_ENVELOPE: &str = "organisation.envelope";

/// Now, in milliseconds since the Unix epoch (the unit of `issued_at_ms`).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
