//! maillage's wire format: the protobuf messages and gRPC services of `proto/`,
//! generated at build time. Hand-written code lives elsewhere; the only place
//! that converts these types to the domain model is `maillage_record::wire`.

#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("maillage.v1");
}

/// Encoded `FileDescriptorSet` of every maillage proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("maillage_descriptor");
