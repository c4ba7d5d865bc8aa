//! A real `redis-server` for tests.
//!
//! Tests of the conversation bus and of both services run against the same Redis they meet in
//! production, not a mock. [`RedisServer::start`] launches `redis-server` on a free loopback port
//! with persistence off, waits until it answers, and kills it on drop. [`RedisServer::stop`] and
//! [`RedisServer::restart`] let fault tests take Redis away and bring it back on the same port.
//!
//! [`RedisCluster`] does the same for a Redis Cluster (three primaries with a replica each) and
//! can move a slot or fail a primary over while a test runs.
//!
//! `redis-server` must be on `PATH` (`.ci/run` installs it); a missing binary is a test failure
//! with a message saying so, never a skipped test.

mod cluster;
mod cluster_topology;
mod hash_slot;

pub use cluster::{ClusterNode, RedisCluster};
pub use hash_slot::{key_slot, SLOT_COUNT};

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running (or deliberately stopped) `redis-server` owned by one test.
pub struct RedisServer {
    port: u16,
    /// Append-only file with an fsync per write: a kill loses nothing acknowledged.
    persistent: bool,
    child: Option<Child>,
    dir: std::path::PathBuf,
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port and waits until it answers `PING`.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// As [`RedisServer::start`], with an append-only file synced on every write, so a
    /// [`restart`](RedisServer::restart) comes back with everything it acknowledged (as
    /// Memorystore with persistence would).
    pub fn start_persistent() -> Self {
        Self::start_with(true)
    }

    fn start_with(persistent: bool) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("redis-test-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create redis working directory");
        let mut server = Self {
            port,
            persistent,
            child: None,
            dir,
        };
        server.spawn();
        server
    }

    /// The port the server listens on (kept across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server, as a crash or a network cut would; data is gone unless persistent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The port is released when the process is reaped; wait until nothing answers there.
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the server again on the same port: empty, or as it was if persistent.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Sends one inline command and returns the raw reply (for assertions on server state).
    pub fn command(&self, line: &str) -> String {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).expect("connect to test redis");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set read timeout");
        stream
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write command");
        let mut buf = [0u8; 65536];
        let n = stream.read(&mut buf).expect("read reply");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                if self.persistent { "yes" } else { "no" },
                "--appendfsync",
                "always",
                "--dir",
                self.dir.to_str().expect("utf-8 temp dir"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}); install it (apt-get install -y redis-server), .ci/run does")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
                let mut reply = [0u8; 7];
                if stream.write_all(b"PING\r\n").is_ok()
                    && stream.read(&mut reply).is_ok()
                    && reply.starts_with(b"+PONG")
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer on port {} within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port that was free a moment ago. The OS picks it, so parallel tests do not collide.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free loopback port")
}
