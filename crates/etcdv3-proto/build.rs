//! Compiles the vendored etcd `.proto` files without a `protoc` binary:
//! `protox` parses them into a `FileDescriptorSet`, which `tonic-prost-build`
//! turns into Rust code in `OUT_DIR`.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "mvccpb/kv.proto",
    "authpb/auth.proto",
    "etcdserverpb/rpc.proto",
    "v3lockpb/v3lock.proto",
    "v3electionpb/v3election.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("proto");
    println!("cargo:rerun-if-changed={}", root.display());
    for file in PROTOS {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }

    let fds = protox::compile(PROTOS, [&root])?;

    let server = std::env::var_os("CARGO_FEATURE_SERVER").is_some();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(server)
        .compile_fds(fds)?;
    Ok(())
}
