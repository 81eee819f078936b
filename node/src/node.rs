//! What a running node is: its organisation, its key, its store, and the rules
//! for who may publish and who may read what.

use std::sync::Arc;
use std::time::Instant;

use maillage_record::{PublicKey, Record, SigningKey, Siren, VerifiedRecord, Visibility};

use crate::config::Config;
use crate::store::{Admission, Inserted, Store, StoreError};

pub struct Node {
    pub siren: Siren,
    pub name: String,
    pub public_key: PublicKey,
    signing_key: SigningKey,
    pub store: Arc<Store>,
    pub publish_authors: Vec<PublicKey>,
    pub grpc_listen: String,
    pub started: Instant,
    pub data_dir: std::path::PathBuf,
}

/// Who is asking: decides which records a read may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// The node's operator, on the admin socket: sees everything.
    Operator,
    /// An unauthenticated caller on the public port: public records only.
    Anonymous,
}

impl Viewer {
    /// Whether this viewer may learn that `record` exists.
    pub fn may_see(self, record: &Record) -> bool {
        match self {
            Viewer::Operator => true,
            Viewer::Anonymous => record.visibility == Visibility::Public,
        }
    }
}

impl Node {
    pub fn new(
        config: &Config,
        signing_key: SigningKey,
        store: Arc<Store>,
        grpc_listen: String,
    ) -> Node {
        Node {
            siren: config.siren.clone(),
            name: config.name.clone(),
            public_key: PublicKey(signing_key.verifying_key().to_bytes()),
            signing_key,
            store,
            publish_authors: config.publish_authors.clone(),
            grpc_listen,
            started: Instant::now(),
            data_dir: config.data_dir.clone(),
        }
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.signing_key
    }

    /// Whether `author` may publish its own records here.
    pub fn may_publish(&self, author: &PublicKey) -> bool {
        *author == self.public_key || self.publish_authors.contains(author)
    }

    /// Stores a verified record off the async runtime (the write fsyncs).
    pub async fn insert(
        &self,
        rec: VerifiedRecord,
        admission: Admission,
    ) -> Result<Inserted, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.insert(&rec, admission))
            .await
            .expect("store insert does not panic")
    }
}
