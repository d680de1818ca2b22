//! Generates the server and client of containerd's snapshot service
//! (`containerd.services.snapshots.v1.Snapshots`) and of overlaysnapd's admin service
//! (`overlaysnap.admin.v1.Admin`) from the protos in `proto/`, with the protoc that
//! `protoc-bin-vendored` ships, so no system protoc is needed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // Labels as the library keeps them: ordered maps.
    config.btree_map(["."]);
    let protos = [
        PathBuf::from("proto/services/snapshots/v1/snapshots.proto"),
        PathBuf::from("proto/overlaysnap/admin/v1/admin.proto"),
    ];
    let includes = [PathBuf::from("proto"), protoc_bin_vendored::include_path()?];
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_with_config(config, &protos, &includes)?;
    Ok(())
}
