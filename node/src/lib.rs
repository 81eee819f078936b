//! maillage-node: stores signed catalogue and project records in RocksDB,
//! serves them over gRPC, and replicates them with pinned peers over mutual
//! TLS. `docs/architecture.md` has the map.

// The library's face: a config, and a node started from it. The rest is
// the node's own (the binary, tests and benchmarks reach what they need of
// it through `testkit`).
pub mod config;
pub mod server;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use background::no_transparent_huge_pages;

mod accept;
mod access;
mod aggregate;
mod author;
mod background;
mod backup;
mod export;
mod harvest;
mod http;
mod ledger;
mod members;
mod metrics;
mod node;
mod peers;
mod portal;
mod proposals;
mod query_string;
mod refusals;
mod replication;
mod search;
mod secret;
mod service;
mod signin;
mod stalled;
mod store;
mod systemd;
mod tls;
mod tokens;
mod trust;
mod viewer;
