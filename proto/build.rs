//! Generates the tonic/prost code for `wasmgrid/v1/*.proto` with a vendored
//! `protoc`, so building needs nothing installed beyond Rust.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let protos = [
        "wasmgrid/v1/common.proto",
        "wasmgrid/v1/agent.proto",
        "wasmgrid/v1/issuer.proto",
        "wasmgrid/v1/admin.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    // Serialize: the broker's web dashboard serves these messages as JSON,
    // so its API and the gRPC API cannot drift apart.
    tonic_prost_build::configure()
        .type_attribute(".wasmgrid.v1", "#[derive(serde::Serialize)]")
        .compile_protos(&protos, &["."])?;
    Ok(())
}
