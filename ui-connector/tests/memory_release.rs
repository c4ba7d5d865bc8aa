//! The real binary gives its memory back after a crowd of sockets leaves
//! (`src/memory_release.rs`): a few thousand joined sockets raise its resident size by tens of
//! megabytes; once they close, the size must fall most of the way back to where it started.
//! Without the trim glibc keeps the freed pages and the size stays at its peak, so this fails.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent_assist_test_support::{RedisServer, SecretFile, SocketClient};
use futures::stream::{self, StreamExt, TryStreamExt};
use ui_connector::jwt::JwtKeys;

const BINARY: &str = env!("CARGO_BIN_EXE_ui-connector");
const PROJECT: &str = "memory-project";

/// Sockets in the crowd: enough for tens of megabytes, few enough for a 2-core machine and a
/// debug build (a few seconds to open).
const SOCKETS: usize = 3_000;
/// Connections opened at once.
const CONCURRENCY: usize = 64;
/// Most the trim may take after the last socket closed (it waits a second for the burst to end).
const RELEASE_WINDOW: Duration = Duration::from_secs(20);

/// The connector process; killed when dropped so a failed assertion leaves nothing behind.
struct Connector(Child);

impl Drop for Connector {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Connector {
    fn rss_kib(&mut self) -> u64 {
        if let Ok(Some(status)) = self.0.try_wait() {
            panic!("the connector exited: {status}");
        }
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }
}

/// Each socket (and the connector's side of it) is a descriptor: raise this process's soft
/// limit to the hard one (the connector inherits it) and check the crowd fits.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    assert!(
        limit.rlim_cur as usize > SOCKETS + 200,
        "the open-file limit ({}) is too low for {SOCKETS} sockets",
        limit.rlim_cur
    );
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_ready(connector: &mut Connector, addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = reqwest::Client::new();
    loop {
        connector.rss_kib(); // panics if it exited
        let url = format!("http://{addr}/status");
        if let Ok(response) = client.get(&url).send().await {
            if response.status().is_success() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the connector never answered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_goes_back_after_a_crowd_of_sockets_leaves() {
    raise_open_file_limit();
    let redis = RedisServer::start();
    let secret = SecretFile::new("memory-release-secret\n");
    let port = free_port();
    let mut connector = Connector(
        Command::new(BINARY)
            .env_clear()
            .env("PORT", port.to_string())
            .env("REDIS_URL", redis.url())
            .env("GCP_PROJECT_ID", PROJECT)
            .env("JWT_SECRET_KEY_PATH", secret.path())
            .env("AUTH_OPTION", "Skip")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    wait_ready(&mut connector, addr).await;
    let fresh = connector.rss_kib();

    let keys = JwtKeys::from_secret_file(secret.path(), PROJECT.into(), Duration::from_secs(3_600))
        .unwrap();
    let token = keys.issue("agent@example.com");
    let sockets: Vec<SocketClient> = stream::iter(0..SOCKETS)
        .map(|i| {
            let token = token.clone();
            async move {
                let mut socket = SocketClient::connect(addr, &token).await?;
                let ack = socket
                    .join(format!("projects/{PROJECT}/conversations/crowd-{i}"))
                    .await?;
                anyhow::ensure!(ack[0] == true, "join refused: {ack}");
                anyhow::Ok(socket)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await
        .unwrap();
    let peak = connector.rss_kib();
    let grown = peak.saturating_sub(fresh);
    assert!(
        grown > 20_000,
        "{SOCKETS} sockets should cost tens of MB: fresh {fresh} KiB, with them {peak} KiB"
    );

    drop(sockets);
    let closed = Instant::now();
    // Most of the growth must go: without the trim the size stays within a few percent of the
    // peak. Sampled, since nothing announces that the memory went back.
    let goal = fresh + grown / 4;
    let mut now = peak;
    while now > goal && closed.elapsed() < RELEASE_WINDOW {
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = connector.rss_kib();
    }
    assert!(
        now <= goal,
        "RSS {now} KiB {:?} after the sockets closed (fresh {fresh} KiB, with {SOCKETS} sockets \
         {peak} KiB, goal {goal} KiB)",
        closed.elapsed()
    );
    println!(
        "fresh {fresh} KiB, {SOCKETS} sockets {peak} KiB, {now} KiB {:.1} s after they closed",
        closed.elapsed().as_secs_f64()
    );
}
