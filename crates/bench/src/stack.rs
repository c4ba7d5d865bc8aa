//! The system under test: one `redis-server`, one interceptor and two connectors, each a real
//! process on loopback, started once and shared by the scenarios (the memory scenario starts a
//! connector of its own, the cold-start scenario starts fresh processes).
//!
//! On [`Bus::Cluster`] (`--redis-cluster` runs a stack of each kind, one after the other) the
//! services' bus is a Redis Cluster instead (3 primaries, a replica each, from the test harness
//! `redis-test-server`); the single `redis-server` is still started, for what measures Redis
//! itself (the `redis-benchmark` ceiling) and the pull scenario's bookkeeping.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::http_client::HttpConnection;
use crate::options::Options;
use crate::processes::{self, Binaries, Process, RunDir, ServiceSpec};
use crate::tokens::{Secret, PROJECT};

/// Longest wait for a service to answer `/status` after it is started.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts service processes wired to the run's Redis and JWT secret.
pub struct Launcher {
    pub dir: RunDir,
    binaries: Binaries,
    secret: Secret,
    /// The bus setting every service gets: `REDIS_URL` or `REDIS_CLUSTER_NODES`.
    bus: (&'static str, String),
    /// `--service-env` settings for every service.
    extra_env: Vec<(String, String)>,
}

impl Launcher {
    /// Starts an interceptor; returns it and its time from `exec` to the first `/status`.
    pub fn start_interceptor(&self, name: &str) -> anyhow::Result<(Process, Duration)> {
        self.start_interceptor_with(name, Vec::new())
    }

    /// Starts an interceptor with `settings` besides Redis (push authentication, pull mode).
    pub fn start_interceptor_with(
        &self,
        name: &str,
        settings: Vec<(&str, String)>,
    ) -> anyhow::Result<(Process, Duration)> {
        let mut base = vec![(self.bus.0, self.bus.1.clone())];
        base.extend(settings);
        let spec = ServiceSpec {
            name,
            binary: &self.binaries.interceptor,
            env: self.env(base),
        };
        processes::start_service(&self.dir, &spec, START_TIMEOUT)
    }

    /// Starts a connector; returns it and its time from `exec` to the first `/status`.
    pub fn start_connector(&self, name: &str) -> anyhow::Result<(Process, Duration)> {
        let spec = ServiceSpec {
            name,
            binary: &self.binaries.connector,
            env: self.env(vec![
                (self.bus.0, self.bus.1.clone()),
                ("GCP_PROJECT_ID", PROJECT.into()),
                (
                    "JWT_SECRET_KEY_PATH",
                    self.secret.path().display().to_string(),
                ),
                ("AUTH_OPTION", "Skip".into()),
            ]),
        };
        processes::start_service(&self.dir, &spec, START_TIMEOUT)
    }

    /// `base` plus the `--service-env` settings, which come last and so win.
    fn env(&self, base: Vec<(&str, String)>) -> Vec<(String, String)> {
        base.into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .chain(self.extra_env.iter().cloned())
            .collect()
    }

    /// A token every connector accepts, valid for two hours.
    pub fn token(&self) -> String {
        self.secret
            .token("bench-agent@example.com", Duration::from_secs(7_200))
    }
}

/// What the services' bus runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bus {
    /// The single `redis-server` (`REDIS_URL`), as by default in production.
    Standalone,
    /// A 3-primary Redis Cluster (`REDIS_CLUSTER_NODES`).
    Cluster,
}

impl Bus {
    /// The buses a run measures: standalone, and with `--redis-cluster` the cluster after it,
    /// so both appear in the same table.
    pub fn for_run(options: &Options) -> Vec<Bus> {
        if options.redis_cluster {
            vec![Bus::Standalone, Bus::Cluster]
        } else {
            vec![Bus::Standalone]
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Bus::Standalone => "standalone",
            Bus::Cluster => "cluster",
        }
    }
}

/// Fields drop in order: services, then Redis, then the run directory.
pub struct Stack {
    /// Two connector instances on the same bus.
    pub connectors: Vec<Process>,
    pub interceptor: Process,
    pub redis: Process,
    /// The bus's Redis Cluster on [`Bus::Cluster`] (stopped when dropped).
    pub cluster: Option<redis_test_server::RedisCluster>,
    pub launcher: Launcher,
    /// Distinguishes this run's conversation names and message ids.
    pub run_id: String,
    /// Resident memory of each service once ready, before any load, in KiB.
    pub idle_rss: Vec<(String, u64)>,
}

impl Stack {
    pub async fn start(options: &Options, bus: Bus) -> anyhow::Result<Self> {
        let binaries = Binaries::in_dir(&options.bin_dir)?;
        let dir = RunDir::create(options.keep_logs)?;
        let secret = Secret::create(dir.path())?;
        let redis = processes::start_redis(&dir)?;
        let cluster = if bus == Bus::Cluster {
            Some(tokio::task::spawn_blocking(redis_test_server::RedisCluster::start).await?)
        } else {
            None
        };
        let bus = match &cluster {
            Some(cluster) => ("REDIS_CLUSTER_NODES", cluster.seed_urls().join(",")),
            None => ("REDIS_URL", format!("redis://127.0.0.1:{}", redis.port())),
        };
        let launcher = Launcher {
            bus,
            extra_env: options.service_env.clone(),
            dir,
            binaries,
            secret,
        };
        let interceptor = launcher.start_interceptor("interceptor")?.0;
        let connectors = vec![
            launcher.start_connector("connector-a")?.0,
            launcher.start_connector("connector-b")?.0,
        ];
        for service in std::iter::once(&interceptor).chain(&connectors) {
            wait_ready(service.addr()).await?;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let idle_rss = std::iter::once(&interceptor)
            .chain(&connectors)
            .map(|p| Ok((p.name().to_owned(), p.rss_kib()?)))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            launcher,
            run_id: format!("{:08x}", rand::random::<u32>()),
            redis,
            cluster,
            interceptor,
            connectors,
            idle_rss,
        })
    }

    /// Fails when a process of the stack has died (a crash under load is a failed run).
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        self.redis.ensure_running()?;
        self.interceptor.ensure_running()?;
        for connector in &mut self.connectors {
            connector.ensure_running()?;
        }
        Ok(())
    }

    /// The interceptor being measured (the stack's, or another one), the bus's Redis servers,
    /// the other processes of the stack and the harness itself, by name and pid, for CPU
    /// accounting.
    pub fn cpu_accounts(&self, interceptor: (&str, u32)) -> Vec<(String, u32)> {
        let mut accounts = vec![(interceptor.0.to_owned(), interceptor.1)];
        accounts.extend(self.bus_servers());
        accounts.extend(
            self.connectors
                .iter()
                .map(|c| (c.name().to_owned(), c.pid())),
        );
        accounts.push(("bench".to_owned(), std::process::id()));
        accounts
    }

    /// The Redis servers the bus runs on: the single `redis` or, on a cluster, each node as
    /// `primary :<port>` or `replica :<port>` (its pid from `INFO server`; a node that does not
    /// answer is left out).
    fn bus_servers(&self) -> Vec<(String, u32)> {
        let Some(cluster) = &self.cluster else {
            return vec![("redis".to_owned(), self.redis.pid())];
        };
        let primaries: Vec<u16> = cluster.primaries().iter().map(|n| n.port()).collect();
        cluster
            .nodes()
            .iter()
            .filter_map(|node| {
                let info: String = cluster.query(node, redis::cmd("INFO").arg("server")).ok()?;
                let pid = info
                    .lines()
                    .find_map(|l| l.strip_prefix("process_id:"))?
                    .trim()
                    .parse()
                    .ok()?;
                let role = if primaries.contains(&node.port()) {
                    "primary"
                } else {
                    "replica"
                };
                Some((format!("{role} :{}", node.port()), pid))
            })
            .collect()
    }

    /// Keeps the logs after the run.
    pub fn keep_logs(&mut self) {
        self.launcher.dir.keep();
    }
}

/// Waits until `GET /ready` answers 200 (the service reaches Redis).
pub async fn wait_ready(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let status = match HttpConnection::open(addr).await {
            Ok(mut connection) => connection.get("/ready").await.map(|(s, _)| s).ok(),
            Err(_) => None,
        };
        if status == Some(200) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{addr} not ready within {START_TIMEOUT:?} (last status {status:?})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `redis-cli` against the stack's Redis (statistics for the report).
pub async fn redis_cli(redis: &Process, args: &[&str]) -> anyhow::Result<String> {
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &redis.port().to_string()])
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("redis-cli timed out")?
    .context("run redis-cli (installed with redis-server)")?;
    if !output.status.success() {
        bail!(
            "redis-cli {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
