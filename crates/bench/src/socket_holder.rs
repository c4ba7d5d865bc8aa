//! Idle joined sockets held by child processes (`agent-assist-bench hold-sockets ...`).
//!
//! One process may not hold more sockets than its open-file limit allows, and tens of thousands
//! of idle clients would also crowd the harness's own runtime, so the memory scenario spreads them
//! over helper processes, each the harness binary re-executed in this mode. A holder connects
//! and joins its sockets, prints `ready <sockets> <milliseconds>`, then answers `check` on stdin
//! with `alive <open> <closed-by-server>` and exits when stdin closes (so it never outlives the
//! harness) or after `--max-hold` seconds.

use std::net::SocketAddr;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::payload;
use crate::socket_pool::{PoolSpec, SocketPool};

/// The subcommand name.
pub const SUBCOMMAND: &str = "hold-sockets";

/// The environment variable that carries the token to a holder (not its command line).
const TOKEN_VAR: &str = "AGENT_ASSIST_BENCH_TOKEN";

/// Which sockets a holder opens: conversations `first .. first + count` of `label`.
#[derive(Debug, Clone)]
pub struct HolderSpec {
    pub server: SocketAddr,
    pub run_id: String,
    pub label: String,
    pub first: usize,
    pub count: usize,
    pub concurrency: usize,
    pub max_hold: Duration,
}

/// The harness's handle on a holder process.
pub struct SocketHolder {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl SocketHolder {
    /// Starts a holder; it begins connecting at once.
    pub fn start(spec: &HolderSpec, token: &str) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locate the harness binary")?;
        let mut child = tokio::process::Command::new(exe)
            .arg(SUBCOMMAND)
            .args(["--server", &spec.server.to_string()])
            .args(["--run-id", &spec.run_id, "--label", &spec.label])
            .args(["--first", &spec.first.to_string()])
            .args(["--count", &spec.count.to_string()])
            .args(["--concurrency", &spec.concurrency.to_string()])
            .args(["--max-hold", &spec.max_hold.as_secs().to_string()])
            .env(TOKEN_VAR, token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("start a socket holder")?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().context("holder stdout")?).lines();
        Ok(Self {
            child,
            stdin,
            stdout,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits until every socket has joined; returns how long connecting and joining took.
    pub async fn ready(&mut self, timeout: Duration) -> anyhow::Result<Duration> {
        let line = self.line(timeout).await?;
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["ready", _, millis] => Ok(Duration::from_millis(millis.parse()?)),
            _ => bail!("socket holder: {line}"),
        }
    }

    /// Asks the holder how many of its sockets are still open; fails if any was closed.
    pub async fn check(&mut self) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().context("holder stopped")?;
        stdin.write_all(b"check\n").await?;
        stdin.flush().await?;
        let line = self.line(Duration::from_secs(30)).await?;
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["alive", _, "0"] => Ok(()),
            _ => bail!("socket holder: {line}"),
        }
    }

    async fn line(&mut self, timeout: Duration) -> anyhow::Result<String> {
        tokio::time::timeout(timeout, self.stdout.next_line())
            .await
            .with_context(|| format!("socket holder silent for {timeout:?}"))??
            .context("socket holder exited")
    }

    /// Closes stdin, which makes the holder close its sockets and exit.
    pub async fn stop(mut self) {
        self.stdin.take();
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// The holder process: `hold-sockets --server ADDR --run-id ID --label L --first N --count N
/// --concurrency N --max-hold SECS`, token in the environment.
pub fn main(args: &[String]) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(hold(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("error {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn hold(args: &[String]) -> anyhow::Result<()> {
    let flag = |name: &str| -> anyhow::Result<&str> {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
            .with_context(|| format!("{name} is required"))
    };
    let server: SocketAddr = flag("--server")?.parse()?;
    let run_id = flag("--run-id")?;
    let label = flag("--label")?;
    let first: usize = flag("--first")?.parse()?;
    let count: usize = flag("--count")?.parse()?;
    let concurrency: usize = flag("--concurrency")?.parse()?;
    let max_hold = Duration::from_secs(flag("--max-hold")?.parse()?);
    let token = std::env::var(TOKEN_VAR).with_context(|| format!("{TOKEN_VAR} is not set"))?;
    crate::processes::raise_open_file_limit();

    let conversations = (first..first + count)
        .map(|i| payload::conversation(run_id, label, i).join_name)
        .collect();
    let pool = SocketPool::open(
        PoolSpec {
            server,
            token: &token,
            conversations,
            concurrency,
            source_offset: first,
        },
        // Nothing is pushed to these conversations.
        Arc::new(|_, _, _| {}),
    )
    .await?;
    println!("ready {} {}", pool.len(), pool.open_time.as_millis());

    let mut commands = BufReader::new(tokio::io::stdin()).lines();
    let deadline = tokio::time::sleep(max_hold);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            command = commands.next_line() => match command? {
                None => break,
                Some(c) if c.trim() == "check" => {
                    let closed = pool.ended_by_server();
                    println!("alive {} {closed}", pool.len() - closed);
                }
                Some(_) => {}
            }
        }
    }
    pool.close().await;
    Ok(())
}
