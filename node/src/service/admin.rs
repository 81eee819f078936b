//! The Admin service, on the local Unix socket only: status, and signing with
//! the node's organisation key.

use std::path::Path;
use std::sync::Arc;

use maillage_proto::v1::admin_server::Admin;
use maillage_proto::v1::{KindCount, PublishResponse, SignRequest, StatusRequest, StatusResponse};
use maillage_record::{Body, PublicKey, envelope, wire};
use tonic::{Request, Response, Status};

use super::{blocking, envelope_status, publish::store_published, store_status};
use crate::node::Node;

pub struct AdminService {
    node: Arc<Node>,
}

impl AdminService {
    pub fn new(node: Arc<Node>) -> Self {
        AdminService { node }
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let node = &self.node;
        let (envelopes, last_seq, by_kind) = node.store.counts();
        let data_dir = node.data_dir.clone();
        let store_bytes = blocking(move || Ok(dir_size(&data_dir))).await?;
        Ok(Response::new(StatusResponse {
            public_key: node.public_key.0.to_vec(),
            siren: node.siren.to_string(),
            organisation_name: node.name.clone(),
            current_by_kind: by_kind
                .into_iter()
                .map(|(kind, count)| KindCount {
                    kind: kind.as_str().into(),
                    count,
                })
                .collect(),
            envelopes,
            last_seq,
            uptime_seconds: node.started.elapsed().as_secs(),
            store_bytes,
            grpc_listen: node.grpc_listen.clone(),
            node_version: env!("CARGO_PKG_VERSION").into(),
        }))
    }

    async fn sign_and_publish(
        &self,
        request: Request<SignRequest>,
    ) -> Result<Response<PublishResponse>, Status> {
        let node = &self.node;
        let req = request.into_inner();
        if !req.author.is_empty() && req.author != node.public_key.0 {
            let named = PublicKey::from_slice(&req.author)
                .map_or_else(|| hex::encode(&req.author), |k| k.to_hex());
            return Err(Status::permission_denied(format!(
                "the record names author {named}, but this node signs only as {} ({}, SIREN {}): \
                 have that author sign it and send it with Publish",
                node.public_key, node.name, node.siren
            )));
        }
        let payload = req
            .payload
            .ok_or_else(|| Status::invalid_argument("field `payload` is missing"))?;
        let mut record = wire::payload_from_proto(payload)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        if let Body::Organisation(o) = &record.body {
            if o.siren != node.siren.as_str() {
                return Err(Status::permission_denied(format!(
                    "this node signs for SIREN {} ({}); an Organisation record for SIREN {} \
                     must be signed by that organisation's own key",
                    node.siren, node.name, o.siren
                )));
            }
        }
        if record.version == 0 {
            let store = node.store.clone();
            let (author, record_id) = (node.public_key, record.record_id.clone());
            let current =
                blocking(move || store.current(&author, &record_id).map_err(store_status)).await?;
            record.version = current.map_or(1, |c| c.version + 1);
        }
        if record.issued_at_ms == 0 {
            record.issued_at_ms = maillage_record::now_ms();
        }
        let signed = envelope::sign(node.signing_key(), &record).map_err(envelope_status)?;
        store_published(node, signed).await.map(Response::new)
    }
}

/// Bytes of the files under `dir`, recursively; what the store takes on disk.
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
