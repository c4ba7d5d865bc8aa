//! Command-line options, with the full and the smoke presets.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

pub const USAGE: &str = "\
agent-assist-bench: load and resource benchmark of the Agent Assist backend.

Starts redis-server, cloud-pubsub-interceptor and ui-connector (release builds) on loopback,
drives them, and prints a Markdown table. Build first: cargo build --release --workspace

USAGE: agent-assist-bench [OPTIONS]

  --bin-dir DIR           where the service binaries are (default: this binary's directory)
  --smoke                 a few seconds, tiny loads; only checks that everything is delivered
  --only LIST             scenarios to run, comma-separated:
                          push,pull,e2e,fanout,connections,coldstart (default: all)
  --duration SECS         measured time of push and e2e runs (default 10)
  --warmup SECS           unmeasured lead-in of the push run (default 1)
  --push-connections N    concurrent push connections (default 64)
  --push-auth             also run the push scenario against an interceptor with push
                          authentication on (a JWKS stand-in in this process, one token reused
                          for every push, as Pub/Sub does for its hour); on in --smoke
  --pull-messages N       messages published for the pull scenario (default 300000)
  --e2e K@R,...           end-to-end runs: K sockets, R pushes/s (default 1000@1000,10000@2000)
  --e2e-connections N     push connections of the e2e load generator (default 32)
  --fanout-sockets N      sockets in the fan-out conversation, over two connectors (default 1000)
  --fanout-pushes N       fan-out rounds (default 20)
  --sockets N,...         connected-socket steps of the memory scenario (default 10000,20000)
  --cold-starts N         cold starts per binary (default 5)
  --redis-requests N      requests of the redis-benchmark ceiling (default 200000)
  --service-env K=V       an environment setting for every service (repeatable), e.g.
                          TOKIO_WORKER_THREADS=1; reported runs use none
  --redis-cluster         run the scenarios twice in one table: on one redis-server, then
                          with the services' bus on a Redis Cluster (3 primaries, a replica
                          each, started from redis-server), with the push figures side by
                          side and Redis CPU per event per shard (INFO cpu);
                          with --only push,e2e (or a part of it)
  --keep-logs             keep the run directory (service logs) after the run
  -h, --help              this text
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Push,
    Pull,
    EndToEnd,
    FanOut,
    Connections,
    ColdStart,
}

impl Scenario {
    /// In run order: pull right after push, so their ratio compares like with like.
    pub const ALL: [Scenario; 6] = [
        Scenario::Push,
        Scenario::Pull,
        Scenario::EndToEnd,
        Scenario::FanOut,
        Scenario::Connections,
        Scenario::ColdStart,
    ];

    fn parse(name: &str) -> anyhow::Result<Self> {
        Ok(match name {
            "push" => Scenario::Push,
            "pull" => Scenario::Pull,
            "e2e" => Scenario::EndToEnd,
            "fanout" => Scenario::FanOut,
            "connections" => Scenario::Connections,
            "coldstart" => Scenario::ColdStart,
            other => bail!("unknown scenario {other:?}"),
        })
    }
}

/// One end-to-end run: `sockets` clients, `rate` pushes per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndToEndRun {
    pub sockets: usize,
    pub rate: u32,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub smoke: bool,
    pub bin_dir: PathBuf,
    pub scenarios: Vec<Scenario>,
    pub duration: Duration,
    pub warmup: Duration,
    pub push_connections: usize,
    /// Run the push scenario a second time with push authentication on.
    pub push_auth: bool,
    pub pull_messages: usize,
    pub e2e_runs: Vec<EndToEndRun>,
    pub e2e_connections: usize,
    pub fanout_sockets: usize,
    pub fanout_pushes: usize,
    pub socket_steps: Vec<usize>,
    pub cold_starts: usize,
    pub redis_requests: usize,
    pub service_env: Vec<(String, String)>,
    pub keep_logs: bool,
    /// Also run on a Redis Cluster, after standalone (`--redis-cluster`).
    pub redis_cluster: bool,
}

impl Options {
    fn full(bin_dir: PathBuf) -> Self {
        Self {
            smoke: false,
            bin_dir,
            scenarios: Scenario::ALL.to_vec(),
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(1),
            push_connections: 64,
            push_auth: false,
            pull_messages: 300_000,
            e2e_runs: vec![
                EndToEndRun {
                    sockets: 1_000,
                    rate: 1_000,
                },
                EndToEndRun {
                    sockets: 10_000,
                    rate: 2_000,
                },
            ],
            e2e_connections: 32,
            fanout_sockets: 1_000,
            fanout_pushes: 20,
            socket_steps: vec![10_000, 20_000],
            cold_starts: 5,
            redis_requests: 200_000,
            service_env: Vec::new(),
            keep_logs: false,
            redis_cluster: false,
        }
    }

    fn smoke(bin_dir: PathBuf) -> Self {
        Self {
            smoke: true,
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            push_connections: 8,
            push_auth: true,
            pull_messages: 2_000,
            e2e_runs: vec![EndToEndRun {
                sockets: 20,
                rate: 100,
            }],
            e2e_connections: 4,
            fanout_sockets: 20,
            fanout_pushes: 3,
            socket_steps: vec![100, 200],
            cold_starts: 1,
            redis_requests: 2_000,
            ..Self::full(bin_dir)
        }
    }

    /// Parses the arguments after the program name.
    pub fn parse(args: &[String]) -> anyhow::Result<Self> {
        let default_bin_dir = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("target/release"));
        let smoke = args.iter().any(|a| a == "--smoke");
        let mut options = if smoke {
            Self::smoke(default_bin_dir)
        } else {
            Self::full(default_bin_dir)
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let mut value = || {
                args.next()
                    .with_context(|| format!("{flag} needs a value"))
                    .map(String::as_str)
            };
            match flag.as_str() {
                "--smoke" => {}
                "--keep-logs" => options.keep_logs = true,
                "--redis-cluster" => options.redis_cluster = true,
                "--push-auth" => options.push_auth = true,
                "--bin-dir" => options.bin_dir = value()?.into(),
                "--only" => {
                    options.scenarios = value()?
                        .split(',')
                        .map(Scenario::parse)
                        .collect::<anyhow::Result<_>>()?;
                }
                "--duration" => options.duration = seconds(value()?)?,
                "--warmup" => options.warmup = seconds(value()?)?,
                "--push-connections" => options.push_connections = number(value()?)?,
                "--pull-messages" => options.pull_messages = number(value()?)?,
                "--e2e" => {
                    options.e2e_runs = value()?
                        .split(',')
                        .map(parse_e2e_run)
                        .collect::<anyhow::Result<_>>()?;
                }
                "--e2e-connections" => options.e2e_connections = number(value()?)?,
                "--fanout-sockets" => options.fanout_sockets = number(value()?)?,
                "--fanout-pushes" => options.fanout_pushes = number(value()?)?,
                "--sockets" => {
                    options.socket_steps = value()?
                        .split(',')
                        .map(number)
                        .collect::<anyhow::Result<_>>()?;
                }
                "--cold-starts" => options.cold_starts = number(value()?)?,
                "--redis-requests" => options.redis_requests = number(value()?)?,
                "--service-env" => {
                    let setting = value()?;
                    let (key, val) = setting
                        .split_once('=')
                        .with_context(|| format!("{setting:?}: expected KEY=VALUE"))?;
                    options.service_env.push((key.to_owned(), val.to_owned()));
                }
                other => bail!("unknown option {other:?}\n\n{USAGE}"),
            }
        }
        if options.push_connections == 0 || options.e2e_connections == 0 {
            bail!("connection counts must be at least 1");
        }
        if options.pull_messages == 0 {
            bail!("--pull-messages must be at least 1");
        }
        // The other scenarios read Redis's figures from the single redis-server (or do not
        // involve the bus's scaling); on a cluster they would report the wrong server.
        let cluster_scenarios = [Scenario::Push, Scenario::EndToEnd];
        if options.redis_cluster
            && options
                .scenarios
                .iter()
                .any(|s| !cluster_scenarios.contains(s))
        {
            bail!("--redis-cluster runs the push and e2e scenarios only: add --only push,e2e");
        }
        Ok(options)
    }

    pub fn runs(&self, scenario: Scenario) -> bool {
        self.scenarios.contains(&scenario)
    }
}

fn number(raw: &str) -> anyhow::Result<usize> {
    raw.trim()
        .replace('_', "")
        .parse()
        .with_context(|| format!("{raw:?} is not a number"))
}

fn seconds(raw: &str) -> anyhow::Result<Duration> {
    let secs: f64 = raw
        .trim()
        .parse()
        .with_context(|| format!("{raw:?} is not a number of seconds"))?;
    if !(0.0..=3_600.0).contains(&secs) {
        bail!("{raw} s is out of range (0 to 3600)");
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_e2e_run(raw: &str) -> anyhow::Result<EndToEndRun> {
    let (sockets, rate) = raw
        .split_once('@')
        .with_context(|| format!("{raw:?}: expected SOCKETS@RATE, e.g. 1000@1000"))?;
    let run = EndToEndRun {
        sockets: number(sockets)?,
        rate: number(rate)? as u32,
    };
    if run.sockets == 0 || run.rate == 0 {
        bail!("{raw:?}: sockets and rate must be at least 1");
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn redis_cluster_runs_push_and_e2e_only() {
        let err = Options::parse(&args(&["--redis-cluster"])).unwrap_err();
        assert!(err.to_string().contains("--only push,e2e"), "{err}");
        let cluster = Options::parse(&args(&["--redis-cluster", "--only", "push,e2e"])).unwrap();
        assert!(cluster.redis_cluster);
        assert!(!Options::parse(&[]).unwrap().redis_cluster);
    }

    #[test]
    fn presets_and_overrides() {
        let full = Options::parse(&[]).unwrap();
        assert_eq!(full.e2e_runs.len(), 2);
        assert!(!full.push_auth);
        assert!(Options::parse(&args(&["--push-auth"])).unwrap().push_auth);
        assert_eq!(full.socket_steps, [10_000, 20_000]);
        let smoke = Options::parse(&args(&["--smoke", "--fanout-sockets", "10"])).unwrap();
        assert!(smoke.smoke);
        assert!(
            smoke.push_auth,
            "the smoke run keeps push authentication working"
        );
        assert_eq!(smoke.fanout_sockets, 10);
        let custom = Options::parse(&args(&[
            "--e2e",
            "5@50,10_000@2_000",
            "--only",
            "e2e,push",
            "--pull-messages",
            "1_000",
            "--duration",
            "2.5",
            "--service-env",
            "TOKIO_WORKER_THREADS=1",
        ]))
        .unwrap();
        assert_eq!(
            custom.e2e_runs[1],
            EndToEndRun {
                sockets: 10_000,
                rate: 2_000
            }
        );
        assert!(custom.runs(Scenario::Push) && !custom.runs(Scenario::FanOut));
        assert!(!custom.runs(Scenario::Pull));
        assert_eq!(custom.pull_messages, 1_000);
        assert_eq!(full.pull_messages, 300_000);
        assert_eq!(custom.duration, Duration::from_millis(2_500));
        assert_eq!(
            custom.service_env,
            [("TOKIO_WORKER_THREADS".to_owned(), "1".to_owned())]
        );
        assert!(Options::parse(&args(&["--e2e", "5"])).is_err());
        assert!(Options::parse(&args(&["--nope"])).is_err());
        assert!(Options::parse(&args(&["--duration"])).is_err());
    }
}
