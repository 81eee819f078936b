//! maillage-node: stores signed catalogue and project records in RocksDB and
//! serves them over gRPC. `docs/architecture.md` has the map.

pub mod config;
pub mod node;
pub mod server;
pub mod service;
pub mod store;
