//! Google's own Pub/Sub emulator, started for a test where this machine has it.
//!
//! The emulator (a JVM program in the Cloud SDK's `platform/pubsub-emulator`) is not on any
//! package registry, so it cannot be a requirement: [`GoogleEmulator::start`] returns `None`
//! where it is not installed (the Debian package `google-cloud-cli-pubsub-emulator`, or
//! `PUBSUB_EMULATOR_BIN` pointing at its launcher), and the test must then say so on stderr
//! ([`report_skipped`]: `SKIPPED: ...`) rather than pass silently.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What a test prints on stderr when the emulator is missing.
pub const SKIPPED: &str = "SKIPPED: Google's Pub/Sub emulator is not installed (no \
    platform/pubsub-emulator under the Cloud SDK roots, PUBSUB_EMULATOR_BIN unset)";

/// Prints [`SKIPPED`] on the process's stderr itself: `eprintln!` in a passing test is captured
/// by the test harness and never shown, and a skip must be seen.
pub fn report_skipped() {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{SKIPPED}");
}

/// Longest wait for the JVM to listen.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the Cloud SDK puts the emulator's launcher, if anywhere.
pub fn emulator_launcher() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PUBSUB_EMULATOR_BIN") {
        return Some(PathBuf::from(path));
    }
    let roots = [
        std::env::var_os("CLOUDSDK_ROOT_DIR").map(PathBuf::from),
        Some(PathBuf::from("/usr/lib/google-cloud-sdk")),
        Some(PathBuf::from("/usr/share/google-cloud-sdk")),
        Some(PathBuf::from("/opt/google-cloud-sdk")),
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join("google-cloud-sdk")),
    ];
    roots
        .into_iter()
        .flatten()
        .map(|root| root.join("platform/pubsub-emulator/bin/cloud-pubsub-emulator"))
        .find(|launcher| launcher.is_file())
}

/// The emulator process on a free loopback port, killed on drop.
pub struct GoogleEmulator {
    child: Child,
    port: u16,
}

impl GoogleEmulator {
    /// Starts the emulator and waits until it listens; `None` where it is not installed.
    ///
    /// # Panics
    /// If it is installed but does not start listening within 60 s.
    pub fn start() -> Option<Self> {
        let launcher = emulator_launcher()?;
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let child = Command::new(&launcher)
            .args(["--host=127.0.0.1", &format!("--port={port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", launcher.display()));
        let emulator = Self { child, port };
        // A JVM starting up announces nothing a test can await; poll its port, bounded.
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the Pub/Sub emulator did not listen on {port} within {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(emulator)
    }

    /// `127.0.0.1:<port>`, the form `PUBSUB_EMULATOR_HOST` takes.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port>`, for a client builder's endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.host())
    }
}

impl Drop for GoogleEmulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
