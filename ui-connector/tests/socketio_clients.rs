//! Runs the Socket.IO end-to-end suite (`tests/socketio/*.test.mjs`): the npm package
//! `socket.io-client` 4, as desktops use it, against the real `ui-connector` and
//! `cloud-pubsub-interceptor` binaries and a real Redis. `.ci/run` installs Node and the
//! suite's packages (`npm ci` in `tests/socketio`).

use std::path::{Path, PathBuf};
use std::process::Command;

use redis_test_server::RedisServer;

fn interceptor_binary() -> PathBuf {
    let path =
        Path::new(env!("CARGO_BIN_EXE_ui-connector")).with_file_name("cloud-pubsub-interceptor");
    if !path.exists() {
        // `cargo test -p ui-connector` alone does not build the other service.
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "-p",
                "cloud-pubsub-interceptor",
                "--bin",
                "cloud-pubsub-interceptor",
            ])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building cloud-pubsub-interceptor failed");
    }
    path
}

#[test]
fn socket_io_client_suite() {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/socketio");
    assert!(
        suite.join("node_modules/socket.io-client").exists(),
        "run `npm ci` in {} first (.ci/run does)",
        suite.display()
    );
    let redis = RedisServer::start();
    let output = Command::new("node")
        .arg("--test")
        .arg("--test-concurrency=1")
        .arg("live.test.mjs")
        .current_dir(&suite)
        .env("CONNECTOR_BIN", env!("CARGO_BIN_EXE_ui-connector"))
        .env("INTERCEPTOR_BIN", interceptor_binary())
        .env("REDIS_URL", redis.url())
        .output()
        .expect("node must be installed (.ci/run installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "the Socket.IO suite failed (see above)"
    );
    assert!(
        stdout.contains("# fail 0"),
        "no failure line in the node output"
    );
    assert!(!stdout.contains("# pass 0"), "the node suite ran no test");
}
