//! gRPC services, one file each. They translate between requests and the node;
//! the rules live in the node's parts (`ledger`, `author`, `viewer`, `trust`),
//! the encoding in `maillage_record::wire`, and each kind of refusal has one
//! mapping to a gRPC status here.

pub mod admin;
pub mod catalogue;
pub mod publish;
mod search;

use maillage_record::EnvelopeError;
use tonic::Status;

use crate::author::AuthorError;
use crate::store::StoreError;

/// The gRPC status for a store error; internal failures are logged here, once.
pub(crate) fn store_status(e: StoreError) -> Status {
    match e {
        StoreError::Duplicate(_) => Status::already_exists(e.to_string()),
        StoreError::NotNewer { .. } | StoreError::OtherKind { .. } => {
            Status::failed_precondition(e.to_string())
        }
        // The cause (with the store's path) goes to the node's log, not to
        // a caller, who may be anyone on the public port.
        // Said to every caller (without the path): retry later.
        StoreError::Unwritable { why, .. } => {
            tracing::error!(error = %e, "store failure");
            Status::unavailable(format!(
                "the node cannot store anything now: {why}; nothing was stored. Retry once \
                 that is fixed: the node goes on by itself"
            ))
        }
        StoreError::Db(_)
        | StoreError::Corrupt { .. }
        | StoreError::Schema { .. }
        | StoreError::Snapshot { .. } => {
            tracing::error!(error = %e, "store failure");
            Status::internal(
                "the node's record store failed; its operator finds the cause in the node's log",
            )
        }
    }
}

/// The gRPC status for a refusal to sign as this node.
pub(crate) fn author_status(e: AuthorError) -> Status {
    match e {
        AuthorError::OtherAuthor { .. }
        | AuthorError::OtherOrganisation { .. }
        | AuthorError::SelfEndorsement { .. } => Status::permission_denied(e.to_string()),
        AuthorError::Invalid(e) => envelope_status(e),
        AuthorError::UnknownVisibility { .. } => Status::internal(e.to_string()),
        AuthorError::CollectionItem { .. }
        | AuthorError::HandedOver { .. }
        | AuthorError::Restored { .. }
        | AuthorError::OwnSuccession => Status::failed_precondition(e.to_string()),
        AuthorError::Store(e) => store_status(e),
    }
}

/// A 32-byte key from a request, or INVALID_ARGUMENT naming the field.
pub(crate) fn parse_key(bytes: &[u8], what: &str) -> Result<maillage_record::PublicKey, Status> {
    maillage_record::PublicKey::from_slice(bytes).ok_or_else(|| {
        Status::invalid_argument(format!(
            "{what} must be a 32-byte ed25519 public key, found {} bytes",
            bytes.len()
        ))
    })
}

pub(crate) fn envelope_status(e: EnvelopeError) -> Status {
    Status::invalid_argument(e.to_string())
}

/// Runs blocking store reads off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("read task failed: {e}")))?
}
