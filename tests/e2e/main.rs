//! End-to-end: real `maillage` and `maillage-node` processes, real RocksDB,
//! real sockets, real mutual TLS on 127.0.0.1. One test binary; a module per
//! feature.

mod aggregates;
mod crash;
mod export;
mod faults;
mod forged;
mod foundation;
mod import;
mod operations;
mod portal;
mod replication;
mod search;
mod signin;
mod support;
mod territories;
mod trust;
