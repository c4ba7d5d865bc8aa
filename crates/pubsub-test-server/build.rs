//! Compiles the minimal Pub/Sub proto with `protox` (a pure-Rust protobuf compiler), so building
//! needs no `protoc` on the machine, then generates the prost messages and the tonic server and
//! client with `tonic-prost-build`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/google/pubsub/v1/pubsub.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Payloads are shared, not copied, between the ledger and every delivery.
        .bytes(".google.pubsub.v1.PubsubMessage.data")
        .compile_fds(descriptors)?;
    Ok(())
}
