//! Generates the internal gRPC code (tonic + prost) from proto/grpc/*.proto
//! into OUT_DIR. protoc comes from .cargo/config.toml's PROTOC (ci/protoc, the
//! vendored one). The simulator's build (`--cfg madsim`) has no gRPC: skipped.

fn main() {
    const PROTO: &str = "../proto/grpc/strata/internal/v1/internal.proto";
    println!("cargo:rerun-if-changed={PROTO}");
    println!("cargo:rerun-if-env-changed=CARGO_CFG_MADSIM");
    if std::env::var_os("CARGO_CFG_MADSIM").is_some() {
        return;
    }
    let result = tonic_prost_build::configure()
        // Object bytes stay `Bytes` end to end (no copy into a Vec).
        .bytes(".strata.internal.v1.ReadObjectResponse.data")
        .compile_protos(&[PROTO], &["../proto/grpc"]);
    if let Err(e) = result {
        panic!("cannot generate the internal gRPC code from {PROTO}: {e} (is PROTOC, set by .cargo/config.toml to ci/protoc, usable?)");
    }
}
