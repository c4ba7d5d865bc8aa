//! Polls a service's `GET /status` in the background (every 50 ms, keep-alive connection,
//! reconnecting after a failure) and records how long each answer took and how many failed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::http_client::HttpConnection;
use crate::latency::{Latencies, Ms, Summary};
use crate::scenarios::thousands;

const PERIOD: Duration = Duration::from_millis(50);

/// Upper bound on probes, whatever the run's length (an hour at the period above).
const MAX_PROBES: u64 = 72_000;

pub struct StatusMonitor {
    stop: watch::Sender<bool>,
    task: JoinHandle<Probes>,
}

/// What the monitor saw.
pub struct Probes {
    pub latencies: Summary,
    pub answered: u64,
    pub failed: u64,
}

impl Probes {
    /// The report's figure: answered, failed, p99 and worst latency.
    pub fn describe(&self) -> String {
        format!(
            "{} answered, {} failed, p99 {}, max {}",
            thousands(self.answered),
            self.failed,
            Ms(self.latencies.p99),
            Ms(self.latencies.max)
        )
    }

    /// The check: every probe answered (and at least one was made).
    pub fn all_answered(&self) -> bool {
        self.failed == 0 && self.answered > 0
    }
}

impl StatusMonitor {
    pub fn start(addr: SocketAddr) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut latencies = Latencies::default();
            let mut failed = 0;
            let mut connection: Option<HttpConnection> = None;
            let mut ticker = tokio::time::interval(PERIOD);
            for _ in 0..MAX_PROBES {
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = ticker.tick() => {}
                }
                let started = Instant::now();
                let answer = async {
                    if connection.is_none() {
                        connection = Some(HttpConnection::open(addr).await?);
                    }
                    let connection = connection.as_mut().expect("just opened");
                    connection.get("/status").await
                }
                .await;
                match answer {
                    Ok((200, _)) => latencies.record(started.elapsed()),
                    _ => {
                        failed += 1;
                        connection = None;
                    }
                }
            }
            Probes {
                answered: latencies.count(),
                latencies: latencies.summary(),
                failed,
            }
        });
        Self { stop, task }
    }

    pub async fn stop(self) -> anyhow::Result<Probes> {
        let _ = self.stop.send(true);
        Ok(self.task.await?)
    }
}

/// `count` sequential `GET /status` on one connection, for a snapshot at a given load.
pub async fn probe(addr: SocketAddr, count: usize) -> anyhow::Result<Summary> {
    let mut connection = HttpConnection::open(addr).await?;
    let mut latencies = Latencies::default();
    for _ in 0..count {
        let started = Instant::now();
        let (status, _) = connection.get("/status").await?;
        anyhow::ensure!(status == 200, "/status answered {status}");
        latencies.record(started.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(latencies.summary())
}
