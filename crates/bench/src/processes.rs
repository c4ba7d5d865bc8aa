//! Starting, watching and stopping the processes under test: `redis-server` and the two service
//! binaries, each on a free loopback port, with logs in the run directory.
//!
//! Also what the harness reads about them from `/proc`: resident memory (`VmRSS`) and CPU time,
//! and the open-file limit every child inherits.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Where the service binaries are (`--bin-dir`).
#[derive(Debug, Clone)]
pub struct Binaries {
    pub interceptor: PathBuf,
    pub connector: PathBuf,
}

impl Binaries {
    pub fn in_dir(dir: &Path) -> anyhow::Result<Self> {
        let binaries = Self {
            interceptor: dir.join("cloud-pubsub-interceptor"),
            connector: dir.join("ui-connector"),
        };
        for path in [&binaries.interceptor, &binaries.connector] {
            if !path.is_file() {
                bail!(
                    "{} not found; build the services first (cargo build --release --workspace) \
                     or point --bin-dir at them",
                    path.display()
                );
            }
        }
        Ok(binaries)
    }
}

/// A temporary directory for the run: the JWT secret, Redis's working directory, service logs.
pub struct RunDir {
    path: PathBuf,
    keep: bool,
}

impl RunDir {
    pub fn create(keep: bool) -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "agent-assist-bench-{}-{}",
            std::process::id(),
            crate::payload::clock_ns()
        ));
        std::fs::create_dir_all(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(Self { path, keep })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the directory (logs) after the run, e.g. because something failed.
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("logs kept in {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A child process the harness started; killed (by its pid, through its handle) on drop.
pub struct Process {
    name: String,
    child: Child,
    port: u16,
}

impl Process {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Fails when the process has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited ({status})", self.name);
        }
        Ok(())
    }

    /// Resident memory in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        rss_kib(self.pid())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free on every address a moment ago, chosen outside the kernel's ephemeral
/// range: the harness's own client sockets (tens of thousands) and other programs' outgoing
/// connections take their ports from that range, and a service could then fail to listen.
pub fn free_port() -> anyhow::Result<u16> {
    let (low, high) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| {
            let mut bounds = range.split_whitespace().map(|b| b.parse::<u16>().ok());
            Some((bounds.next()??, bounds.next()??))
        })
        .unwrap_or((32_768, 60_999));
    let candidates = if low > 11_000 {
        10_000..low
    } else {
        high.saturating_add(1).max(1_025)..u16::MAX
    };
    for _ in 0..200 {
        let port = rand::random_range(candidates.clone());
        if TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok() {
            return Ok(port);
        }
    }
    Ok(TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))?
        .local_addr()?
        .port())
}

/// Starts `redis-server` on a free loopback port, persistence off, and waits until it answers.
pub fn start_redis(dir: &RunDir) -> anyhow::Result<Process> {
    let port = free_port()?;
    let redis_dir = dir.path().join("redis");
    std::fs::create_dir_all(&redis_dir)?;
    let log = std::fs::File::create(dir.path().join("redis.log"))?;
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--maxclients", "10000"])
        .arg("--dir")
        .arg(&redis_dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context(
            "cannot start redis-server; install it (apt-get install -y redis-server), .ci/run does",
        )?;
    let mut process = Process {
        name: "redis-server".into(),
        child,
        port,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if redis_ping(process.addr()) {
            return Ok(process);
        }
        process.ensure_running()?;
        if Instant::now() > deadline {
            bail!("redis-server did not answer on port {port} within 10 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn redis_ping(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read(&mut reply).is_ok()
        && reply.starts_with(b"+PONG")
}

/// How to start one service process.
pub struct ServiceSpec<'a> {
    /// Name in logs and the report (`interceptor`, `connector-a`...).
    pub name: &'a str,
    pub binary: &'a Path,
    /// Variables besides `PORT` and `RUST_LOG=warn` (which they may override).
    pub env: Vec<(String, String)>,
}

/// Attempts at starting a service whose port was taken between choosing and binding it.
const PORT_ATTEMPTS: usize = 3;

/// Starts a service on a free port and waits (at most `timeout`) until `GET /status` answers
/// 200. Returns the process and the time from just before `exec` to that first answer.
pub fn start_service(
    dir: &RunDir,
    spec: &ServiceSpec<'_>,
    timeout: Duration,
) -> anyhow::Result<(Process, Duration)> {
    let log_path = dir.path().join(format!("{}.log", spec.name));
    let mut attempt = 0;
    loop {
        attempt += 1;
        let logged_before = std::fs::metadata(&log_path).map_or(0, |m| m.len() as usize);
        match start_once(spec, &log_path, timeout) {
            Ok(started) => return Ok(started),
            Err(e) => {
                let log = std::fs::read(&log_path).unwrap_or_default();
                let log = String::from_utf8_lossy(log.get(logged_before..).unwrap_or_default());
                if log.contains("cannot listen on port") && attempt < PORT_ATTEMPTS {
                    continue;
                }
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                bail!("{e:#}; its log ends with:\n{}", tail.join("\n"));
            }
        }
    }
}

fn start_once(
    spec: &ServiceSpec<'_>,
    log_path: &Path,
    timeout: Duration,
) -> anyhow::Result<(Process, Duration)> {
    let port = free_port()?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)?;
    let mut command = Command::new(spec.binary);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PORT", port.to_string())
        .env("RUST_LOG", "warn")
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let started = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("start {}", spec.binary.display()))?;
    let mut process = Process {
        name: spec.name.to_owned(),
        child,
        port,
    };
    let addr = process.addr();
    loop {
        if http_get_status(addr) == Some(200) {
            return Ok((process, started.elapsed()));
        }
        process.ensure_running()?;
        if started.elapsed() > timeout {
            bail!("{} did not answer /status within {timeout:?}", spec.name);
        }
        // Fine-grained polling: cold start is measured with this loop.
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// One blocking `GET /status` on a fresh connection; `None` when nothing answers yet.
pub fn http_get_status(addr: SocketAddr) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .write_all(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// `VmRSS` of a process, in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// User plus system CPU time of a process (all its threads).
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("malformed /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    let ticks: u64 = fields
        .get(11..13)
        .context("short /proc/<pid>/stat")?
        .iter()
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_nanos(ticks * 1_000_000_000 / per_second))
}

/// Raises the soft open-file limit to the hard limit (inherited by every child) and returns
/// `(soft, hard)` afterwards.
pub fn raise_open_file_limit() -> (u64, u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    (limit.rlim_cur, limit.rlim_max)
}

/// Ratio of a CPU time to a wall-clock window, in percent of one core.
pub fn cpu_percent(cpu: Duration, wall: Duration) -> f64 {
    if wall.is_zero() {
        return 0.0;
    }
    cpu.as_secs_f64() / wall.as_secs_f64() * 100.0
}

/// A snapshot of the CPU time of several processes (by pid), to compute usage over a window.
pub struct CpuSnapshot {
    at: Instant,
    times: Vec<(String, u32, Duration)>,
}

impl CpuSnapshot {
    pub fn take(processes: &[(String, u32)]) -> Self {
        Self {
            at: Instant::now(),
            times: processes
                .iter()
                .map(|(name, pid)| (name.clone(), *pid, cpu_time(*pid).unwrap_or_default()))
                .collect(),
        }
    }

    /// Each process's CPU use since this snapshot, in percent of one core.
    pub fn usage_since(&self) -> Vec<(String, f64)> {
        let wall = self.at.elapsed();
        self.times
            .iter()
            .map(|(name, pid, before)| {
                let now = cpu_time(*pid).unwrap_or(*before);
                (name.clone(), cpu_percent(now.saturating_sub(*before), wall))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_memory_and_cpu() {
        let pid = std::process::id();
        assert!(rss_kib(pid).unwrap() > 0);
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(30) {}
        assert!(cpu_time(pid).unwrap() > Duration::ZERO);
    }
}
