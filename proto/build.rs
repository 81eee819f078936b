//! Generates the Rust code for proto/ with protox (pure Rust), so building
//! maillage needs no `protoc`. The encoded descriptor set is kept for gRPC
//! reflection.
use std::path::PathBuf;

const FILES: &[&str] = &[
    "proto/maillage/v1/record.proto",
    "proto/maillage/v1/catalogue.proto",
    "proto/maillage/v1/publish.proto",
    "proto/maillage/v1/admin.proto",
    "proto/maillage/v1/replication.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for f in FILES {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(FILES, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("maillage_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
