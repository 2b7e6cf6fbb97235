//! Compiles the .proto files with pure-Rust protox, so no system `protoc` is needed.
use protox::prost::Message as _;

const PROTO_FILES: &[&str] = &[
    "proto/readi/agent/v1/types.proto",
    "proto/readi/agent/v1/gateway.proto",
    "proto/readi/agent/v1/compliance.proto",
    "proto/readi/report/v1/report.proto",
    "proto/readi/controller/v1/controller.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // compile_fds registers nothing by itself.
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(PROTO_FILES, ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("readi_descriptor.bin"), fds.encode_to_vec())?;
    // Undecodable requests are the caller's INVALID_ARGUMENT (see src/codec.rs).
    tonic_prost_build::configure()
        .codec_path("crate::codec::StrictCodec")
        .compile_fds(fds)?;
    Ok(())
}
