//! The Publish service: envelopes signed by their authors.

use std::sync::Arc;

use maillage_proto::v1::publish_server::Publish;
use maillage_proto::v1::{PublishRequest, PublishResponse};
use maillage_record::{VerifiedRecord, envelope};
use tonic::{Request, Response, Status};

use super::{blocking, envelope_status, store_status};
use crate::node::Node;
use crate::store::Admission;

pub struct PublishService {
    node: Arc<Node>,
}

impl PublishService {
    pub fn new(node: Arc<Node>) -> Self {
        PublishService { node }
    }
}

/// Stores a record that passed verification and answers as Publish does.
pub(crate) async fn store_published(
    node: &Arc<Node>,
    rec: VerifiedRecord,
) -> Result<PublishResponse, Status> {
    let record_id = rec.record().record_id.clone();
    let version = rec.record().version;
    let kind = rec.record().kind();
    let n = node.clone();
    // The write fsyncs (and a membership releases what it trusts).
    let inserted = blocking(move || {
        n.ledger()
            .insert(&rec, Admission::RequireNewer)
            .map_err(store_status)
    })
    .await?;
    tracing::info!(id = %inserted.id, %kind, record_id, version, seq = inserted.seq, "record published");
    Ok(PublishResponse {
        id: inserted.id.0.to_vec(),
        record_id,
        version,
        seq: inserted.seq,
        superseded_version: inserted.previous_version,
    })
}

/// Stores what this node signed for its operator (`Author::sign`): the
/// record, after the notice that withdraws it from a former audience if it
/// narrows who may see it, in one write; answers for the record.
pub(crate) async fn store_signed(
    node: &Arc<Node>,
    signed: crate::author::Signed,
) -> Result<PublishResponse, Status> {
    if let Some(notice) = signed.notice.clone() {
        // The notice first: refused (the record changed meanwhile), the
        // record is not stored either, or its former audience would keep
        // the earlier version for good.
        let n = node.clone();
        let id = notice.id();
        blocking(move || {
            n.ledger()
                .insert(&notice, Admission::RequireNewer)
                .map_err(store_status)
        })
        .await?;
        tracing::info!(%id, record_id = signed.record.record().record_id, "narrowing a record's visibility: its former audience is told it is withdrawn");
    }
    store_published(node, signed.record).await
}

#[tonic::async_trait]
impl Publish for PublishService {
    async fn publish(
        &self,
        request: Request<PublishRequest>,
    ) -> Result<Response<PublishResponse>, Status> {
        let env = request
            .into_inner()
            .envelope
            .ok_or_else(|| Status::invalid_argument("field `envelope` is missing"))?;
        // Verification is CPU work (a signature check): keep it off the reactor.
        let rec = tokio::task::spawn_blocking(move || envelope::verify(&env))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(envelope_status)?;
        if !self.node.may_publish(&rec.author()) {
            return Err(Status::permission_denied(format!(
                "author {} may not publish on this node: its operator lists allowed keys under [publish] authors",
                rec.author()
            )));
        }
        store_published(&self.node, rec).await.map(Response::new)
    }
}
