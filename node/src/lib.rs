//! maillage-node: stores signed catalogue and project records in RocksDB,
//! serves them over gRPC, and replicates them with pinned peers over mutual
//! TLS. `docs/architecture.md` has the map.

pub mod author;
pub mod background;
pub mod config;
pub mod http;
pub mod ledger;
pub mod node;
pub mod peers;
pub mod replication;
pub mod search;
pub mod server;
pub mod service;
pub mod store;
pub mod tls;
pub mod trust;
pub mod viewer;
