//! Running `deploy/*.sh` against a fake `gcloud`.
//!
//! Each [`Sandbox`] is a fresh directory holding a fake `gcloud` (a bash script placed first on
//! `PATH`) that appends every invocation to a log and answers the queries the scripts make.
//! [`Sandbox::run`] runs a script from that directory with a clean environment and returns what
//! it printed and the recorded `gcloud` calls.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The workspace root (this crate is `crates/deployment-checks`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// The project number the fake reports (for the Pub/Sub service agent's address).
pub const PROJECT_NUMBER: &str = "123456789012";
pub const REDIS_HOST: &str = "10.1.2.3";
pub const REDIS_PORT: &str = "6379";
/// The Redis cluster's discovery endpoint the fake reports.
pub const REDIS_CLUSTER_ADDRESS: &str = "10.1.2.10";
pub const REDIS_CLUSTER_PORT: &str = "6379";

/// The URL the fake reports for a Cloud Run service.
pub fn service_url(service: &str) -> String {
    format!("https://{service}-fakehash-uc.a.run.app")
}

/// The APIs deploy.sh must enable.
pub const REQUIRED_APIS: [&str; 10] = [
    "run.googleapis.com",
    "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com",
    "redis.googleapis.com",
    "vpcaccess.googleapis.com",
    "compute.googleapis.com",
    "secretmanager.googleapis.com",
    "pubsub.googleapis.com",
    "dialogflow.googleapis.com",
    "iam.googleapis.com",
];

/// The fake. Log format: one line per call, the CLOUDSDK_CORE_PROJECT it saw, then each
/// argument, tab-separated. Existence checks (`describe`) answer NOT_FOUND, success or
/// PERMISSION_DENIED depending on FAKE_GCLOUD_STATE; `--format=value(...)` queries print
/// plausible values (an existing subscription's push config, endpoint, account and audience,
/// comes from the FAKE_GCLOUD_PUSH_CONFIGS file, `<subscription>\t<endpoint>\t<account>\t<audience>`
/// lines, see [`Sandbox::push_configs`]; none when it has no line for it; the service connection
/// policies a `list` reports come from FAKE_GCLOUD_CONNECTION_POLICIES, see
/// [`Sandbox::connection_policies`]); everything else
/// succeeds silently. Whatever is piped to a `--data-file=-` command is appended to
/// FAKE_GCLOUD_STDIN.
const FAKE_GCLOUD: &str = r#"#!/usr/bin/env bash
set -u
{
  printf '%s' "${CLOUDSDK_CORE_PROJECT:-<unset>}"
  for arg in "$@"; do printf '\t%s' "$arg"; done
  printf '\n'
} >>"$FAKE_GCLOUD_LOG"

format='' subject='' previous=''
for arg in "$@"; do
  case $arg in --format=*) format=${arg#--format=} ;; esac
  [[ $previous == describe ]] && subject=$arg
  previous=$arg
done

for arg in "$@"; do
  if [[ $arg == --data-file=- ]]; then
    cat >>"$FAKE_GCLOUD_STDIN"
    exit 0
  fi
done

case $format in
  'value(projectNumber)') echo 123456789012; exit 0 ;;
  'value(host)') echo 10.1.2.3; exit 0 ;;
  'value(port)') echo 6379; exit 0 ;;
  'value(discoveryEndpoints[0].address)') echo 10.1.2.10; exit 0 ;;
  'value(discoveryEndpoints[0].port)') echo 6379; exit 0 ;;
  'value(status.url)') echo "https://$subject-fakehash-uc.a.run.app"; exit 0 ;;
  'value(config.name)') printf '%s\n' $FAKE_GCLOUD_ENABLED_APIS; exit 0 ;;
  'value(pushConfig.pushEndpoint,pushConfig.oidcToken.serviceAccountEmail,pushConfig.oidcToken.audience)')
    [[ -f $FAKE_GCLOUD_PUSH_CONFIGS ]] &&
      awk -F '\t' -v s="$subject" '$1 == s { print $2 "\t" $3 "\t" $4 }' "$FAKE_GCLOUD_PUSH_CONFIGS"
    exit 0 ;;
  'value(name.basename(),network.basename())')
    [[ -f $FAKE_GCLOUD_CONNECTION_POLICIES ]] && cat "$FAKE_GCLOUD_CONNECTION_POLICIES"
    exit 0 ;;
  'value(bindings.role)')
    [[ $FAKE_GCLOUD_STATE == existing ]] && echo roles/granted
    exit 0 ;;
esac

for arg in "$@"; do
  if [[ $arg == describe ]]; then
    case $FAKE_GCLOUD_STATE in
      existing) echo "name: $subject"; exit 0 ;;
      denied) echo "ERROR: (gcloud) PERMISSION_DENIED: Permission denied on $subject (or it may not exist, NOT_FOUND)" >&2; exit 1 ;;
      *) echo "ERROR: (gcloud) NOT_FOUND: $subject was not found" >&2; exit 1 ;;
    esac
  fi
done
exit 0
"#;

/// What the fake's existence checks answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    /// Nothing exists yet: describes fail with NOT_FOUND, no API is enabled, no binding exists.
    Empty,
    /// Everything exists: describes succeed, every API is enabled, every binding exists.
    Deployed,
    /// Describes fail with PERMISSION_DENIED.
    Denied,
}

/// One recorded `gcloud` call.
#[derive(Debug, Clone)]
pub struct Call {
    /// CLOUDSDK_CORE_PROJECT as the call saw it.
    pub project: String,
    pub args: Vec<String>,
}

impl Call {
    /// Whether the arguments start with `words` (e.g. `["pubsub", "topics", "create"]`).
    pub fn is(&self, words: &[&str]) -> bool {
        self.args.len() >= words.len() && self.args.iter().zip(words).all(|(a, w)| a == w)
    }

    /// The value of `--name=value` or `--name value`.
    pub fn flag(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}=");
        self.args.iter().enumerate().find_map(|(i, arg)| {
            if let Some(value) = arg.strip_prefix(&prefix) {
                Some(value)
            } else if arg == name {
                self.args
                    .get(i + 1)
                    .map(String::as_str)
                    .filter(|v| !v.starts_with("--"))
            } else {
                None
            }
        })
    }

    /// Whether the bare switch `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.args.iter().any(|a| a == name)
    }

    /// The argument right after `words` (the resource a command is about).
    pub fn subject(&self, words: &[&str]) -> Option<&str> {
        self.is(words)
            .then(|| self.args.get(words.len()).map(String::as_str))
            .flatten()
    }

    /// Reads leave the cloud unchanged; everything else is a change.
    pub fn is_read(&self) -> bool {
        self.args
            .iter()
            .any(|a| a == "describe" || a == "list" || a == "get-iam-policy")
    }

    pub fn line(&self) -> String {
        self.args.join(" ")
    }
}

/// What a script run printed and did.
#[derive(Debug)]
pub struct Outcome {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub calls: Vec<Call>,
    /// Everything piped to `gcloud ... --data-file=-`.
    pub piped_secret: String,
}

impl Outcome {
    pub fn calls_of(&self, words: &[&str]) -> Vec<&Call> {
        self.calls.iter().filter(|c| c.is(words)).collect()
    }

    /// The only call starting with `words` whose subject is `subject`.
    pub fn one(&self, words: &[&str], subject: &str) -> &Call {
        let found: Vec<&Call> = self
            .calls
            .iter()
            .filter(|c| c.subject(words) == Some(subject))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected exactly one `gcloud {} {subject}`, found {}:\n{}",
            words.join(" "),
            found.len(),
            self.transcript()
        );
        found[0]
    }

    /// Position of the only call starting with `words` and `subject`.
    pub fn position(&self, words: &[&str], subject: &str) -> usize {
        let call = self.one(words, subject);
        self.calls
            .iter()
            .position(|c| std::ptr::eq(c, call))
            .expect("call is in the list")
    }

    pub fn changes(&self) -> Vec<&Call> {
        self.calls.iter().filter(|c| !c.is_read()).collect()
    }

    /// The calls, then the output, for assertion messages.
    pub fn transcript(&self) -> String {
        let calls: Vec<String> = self
            .calls
            .iter()
            .map(|c| format!("  {}", c.line()))
            .collect();
        format!(
            "exit {:?}\ncalls:\n{}\nstdout:\n{}\nstderr:\n{}",
            self.code,
            calls.join("\n"),
            self.stdout,
            self.stderr
        )
    }
}

static SANDBOXES: AtomicUsize = AtomicUsize::new(0);

/// A scratch directory with the fake `gcloud`, removed when dropped.
pub struct Sandbox {
    pub dir: PathBuf,
    bin: PathBuf,
}

impl Sandbox {
    pub fn new(name: &str) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "{name}-{}-{}",
            std::process::id(),
            SANDBOXES.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        let bin = dir.join("bin");
        fs::create_dir_all(&bin).expect("sandbox directory");
        let gcloud = bin.join("gcloud");
        fs::write(&gcloud, FAKE_GCLOUD).expect("fake gcloud");
        make_executable(&gcloud);
        Self { dir, bin }
    }

    /// Writes an env file into the sandbox and returns its path.
    pub fn env_file(&self, contents: &str) -> PathBuf {
        let path = self.dir.join("test.env");
        fs::write(&path, contents).expect("env file");
        path
    }

    /// How existing push subscriptions are configured, for the runs that follow:
    /// (subscription, endpoint, token account, token audience); a subscription without a line
    /// has no push config (a pull subscription).
    pub fn push_configs(&self, configs: &[(&str, &str, &str, &str)]) {
        let lines: String = configs
            .iter()
            .map(|(s, e, account, audience)| format!("{s}\t{e}\t{account}\t{audience}\n"))
            .collect();
        fs::write(self.dir.join("push-configs"), lines).expect("push configs");
    }

    /// The service connection policies `list` reports for the runs that follow:
    /// (policy name, network name) pairs.
    pub fn connection_policies(&self, policies: &[(&str, &str)]) {
        let lines: String = policies
            .iter()
            .map(|(name, network)| format!("{name}\t{network}\n"))
            .collect();
        fs::write(self.dir.join("connection-policies"), lines).expect("connection policies");
    }

    /// What existing push subscriptions deliver to, with no token configuration (as another
    /// deployment's might): (subscription, endpoint) pairs.
    pub fn push_endpoints<S: AsRef<str>, E: AsRef<str>>(&self, pairs: &[(S, E)]) {
        let configs: Vec<(&str, &str, &str, &str)> = pairs
            .iter()
            .map(|(s, e)| (s.as_ref(), e.as_ref(), "", ""))
            .collect();
        self.push_configs(&configs);
    }

    /// Runs `deploy/<script>` with `args` against a cloud in state `cloud`, feeding `stdin`.
    pub fn run(&self, script: &str, args: &[&str], cloud: Cloud, stdin: &str) -> Outcome {
        self.run_with_apis(script, args, cloud, stdin, None)
    }

    /// Like [`Sandbox::run`], with the list of enabled APIs the fake reports (by default none
    /// for an empty cloud, all for a deployed one).
    pub fn run_with_apis(
        &self,
        script: &str,
        args: &[&str],
        cloud: Cloud,
        stdin: &str,
        enabled_apis: Option<&[&str]>,
    ) -> Outcome {
        let log = self.dir.join("gcloud.log");
        let piped = self.dir.join("gcloud.stdin");
        let _ = fs::remove_file(&log);
        let _ = fs::remove_file(&piped);
        let apis = enabled_apis
            .map(|apis| apis.join(" "))
            .unwrap_or_else(|| match cloud {
                Cloud::Deployed => REQUIRED_APIS.join(" "),
                _ => String::new(),
            });
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
        );
        let mut child = Command::new("bash")
            .arg(repo_root().join("deploy").join(script))
            .args(args)
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", path)
            .env("HOME", &self.dir)
            .env("LANG", "C")
            .env("FAKE_GCLOUD_LOG", &log)
            .env("FAKE_GCLOUD_STDIN", &piped)
            .env(
                "FAKE_GCLOUD_STATE",
                match cloud {
                    Cloud::Empty => "empty",
                    Cloud::Deployed => "existing",
                    Cloud::Denied => "denied",
                },
            )
            .env("FAKE_GCLOUD_ENABLED_APIS", apis)
            .env("FAKE_GCLOUD_PUSH_CONFIGS", self.dir.join("push-configs"))
            .env(
                "FAKE_GCLOUD_CONNECTION_POLICIES",
                self.dir.join("connection-policies"),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bash runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("stdin written");
        let output = child.wait_with_output().expect("script finishes");
        let calls = fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|line| {
                let mut fields = line.split('\t').map(str::to_owned);
                Call {
                    project: fields.next().unwrap_or_default(),
                    args: fields.collect(),
                }
            })
            .collect();
        Outcome {
            success: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            calls,
            piped_secret: fs::read_to_string(&piped).unwrap_or_default(),
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut permissions = fs::metadata(path).expect("metadata").permissions();
    permissions.set_mode(0o755);
    fs::set_permissions(path, permissions).expect("chmod");
}

/// Splits a command line as printed by the scripts' `--dry-run` (`+ gcloud a 'b c' ...`):
/// words separated by spaces, `'...'` quoting, `'\''` for a quote inside a quoted word.
pub fn split_printed(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '\\' => {
                in_word = true;
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            other => {
                in_word = true;
                word.push(other);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The commands a `--dry-run` printed (lines starting with `+ gcloud`), without `gcloud`.
pub fn printed_commands(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix("+ gcloud "))
        .map(split_printed)
        .collect()
}

/// Parses a `--set-env-vars` value the way gcloud does, honouring the `^DELIM^` prefix that
/// changes the separator from `,` (see `gcloud topic escaping`).
pub fn parse_env_vars(value: &str) -> Vec<(String, String)> {
    let (delimiter, body) = match value
        .strip_prefix('^')
        .and_then(|rest| rest.split_once('^'))
    {
        Some((delimiter, body)) if !delimiter.is_empty() => (delimiter.to_owned(), body),
        _ => (",".to_owned(), value),
    };
    body.split(delimiter.as_str())
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (k, v) = item.split_once('=').unwrap_or((item, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}
