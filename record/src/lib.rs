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

pub mod envelope;
pub mod json;
pub mod keyfile;
pub mod model;
pub mod siren;
pub mod wire;

pub use ed25519_dalek::SigningKey;
pub use envelope::{EnvelopeError, PublicKey, RecordId, VerifiedRecord};
pub use model::{Body, Kind, Record, ValidationError, Visibility};
pub use siren::Siren;
