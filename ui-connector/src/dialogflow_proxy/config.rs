//! The proxy's settings.

use std::path::PathBuf;
use std::time::Duration;

use agent_assist_core::config::{ConfigError, Settings};

use super::target::Endpoint;

/// Default for [`ProxyConfig::timeout`] (`DIALOGFLOW_TIMEOUT_SECONDS`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Default for [`ProxyConfig::max_request_bytes`]: 10 MiB, far above any Dialogflow request a
/// desktop makes (`analyzeContent` with a long transcript is a few hundred KiB).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

/// How the proxy reaches Dialogflow and whose calls it accepts.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// `DIALOGFLOW_API_ENDPOINT`: one base URL (`http(s)://host[:port][/prefix]`) used for every
    /// location, for tests and private endpoints (Private Service Connect, a local emulator).
    /// Unset (the default): `https://dialogflow.googleapis.com` for location `global`, otherwise
    /// `https://<location>-dialogflow.googleapis.com`. The request's path and query string are
    /// appended unchanged.
    pub api_endpoint: Option<String>,
    /// `DIALOGFLOW_ALLOWED_PROJECTS`: comma-separated projects a desktop may call through the
    /// proxy (default: `GCP_PROJECT_ID` only). Compared as exact strings with the `projects/<p>`
    /// path segment, so a desktop that addresses the project by number needs the number listed
    /// too (e.g. `my-project,123456789012`). Any other project gets a 403 before anything is
    /// sent, so a desktop token cannot spend the connector's Google identity elsewhere.
    pub allowed_projects: Vec<String>,
    /// `DIALOGFLOW_TIMEOUT_SECONDS` (default 30, at least 1): longest wait, per call, from the
    /// start of forwarding (getting a Google token included) until Dialogflow's response
    /// headers arrive (then 504), and longest silence between two chunks of the response body
    /// (then the relayed response is cut off). Connecting has the same limit (then 504 too).
    pub timeout: Duration,
    /// Largest request body accepted for a proxied call (default
    /// [`DEFAULT_MAX_REQUEST_BYTES`]); larger ones get a 413. Not an environment setting.
    pub max_request_bytes: usize,
    /// A credentials JSON file (service account key, `authorized_user`, impersonated service
    /// account or external account) to use instead of Application Default Credentials. Not an
    /// environment setting: deployments use ADC (the metadata server on Cloud Run,
    /// `GOOGLE_APPLICATION_CREDENTIALS`, or `gcloud auth application-default login` locally);
    /// this exists so tests and embedders can choose credentials without touching the process
    /// environment.
    pub credentials_file: Option<PathBuf>,
}

impl Default for ProxyConfig {
    /// Google's endpoints, ADC, default limits, and no allowed project: every proxied call is
    /// refused until [`ProxyConfig::allowed_projects`] is filled in.
    fn default() -> Self {
        Self {
            api_endpoint: None,
            allowed_projects: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            credentials_file: None,
        }
    }
}

impl ProxyConfig {
    /// Defaults, allowing `project_id` only.
    pub fn new(project_id: &str) -> Self {
        Self {
            allowed_projects: vec![project_id.to_owned()],
            ..Self::default()
        }
    }

    /// Reads `DIALOGFLOW_API_ENDPOINT`, `DIALOGFLOW_ALLOWED_PROJECTS` and
    /// `DIALOGFLOW_TIMEOUT_SECONDS`; `project_id` (`GCP_PROJECT_ID`) is the default allow-list.
    pub fn from_settings(settings: &Settings, project_id: &str) -> Result<Self, ConfigError> {
        let api_endpoint = match settings.get("DIALOGFLOW_API_ENDPOINT") {
            None => None,
            Some(raw) => {
                let endpoint = Endpoint::parse(Some(&raw))
                    .map_err(|reason| ConfigError::new("DIALOGFLOW_API_ENDPOINT", reason))?;
                endpoint.base().map(str::to_owned)
            }
        };
        let allowed_projects = match settings.list("DIALOGFLOW_ALLOWED_PROJECTS") {
            None => vec![project_id.to_owned()],
            Some(list) if list.is_empty() => {
                return Err(ConfigError::new(
                    "DIALOGFLOW_ALLOWED_PROJECTS",
                    "lists no project",
                ))
            }
            Some(list) => {
                if let Some(bad) = list.iter().find(|p| !is_project_like(p)) {
                    return Err(ConfigError::new(
                        "DIALOGFLOW_ALLOWED_PROJECTS",
                        format!(
                            "{bad:?} is not a project id or number (letters, digits, '-', ':', '.')"
                        ),
                    ));
                }
                list
            }
        };
        Ok(Self {
            api_endpoint,
            allowed_projects,
            timeout: settings
                .seconds_or("DIALOGFLOW_TIMEOUT_SECONDS", DEFAULT_TIMEOUT.as_secs())?,
            ..Self::default()
        })
    }

    /// Whether `project` (the raw `projects/<p>` segment) may be called.
    pub fn allows_project(&self, project: &str) -> bool {
        self.allowed_projects.iter().any(|p| p == project)
    }
}

/// Project ids (`my-project`, `example.com:my-project`) and numbers.
fn is_project_like(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b':' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_pairs(project_id: &str, pairs: &[(&str, &str)]) -> Result<ProxyConfig, ConfigError> {
        ProxyConfig::from_settings(&Settings::from_pairs(pairs.iter().copied()), project_id)
    }

    #[test]
    fn defaults() {
        let config = from_pairs("p1", &[]).unwrap();
        assert_eq!(config.api_endpoint, None);
        assert_eq!(config.allowed_projects, vec!["p1".to_owned()]);
        assert_eq!(config.timeout, Duration::from_secs(30));
        assert_eq!(config.max_request_bytes, 10 * 1024 * 1024);
        assert_eq!(config.credentials_file, None);
        // Empty values count as unset (Cloud Run deploys often set them).
        let config = from_pairs(
            "p1",
            &[
                ("DIALOGFLOW_API_ENDPOINT", ""),
                ("DIALOGFLOW_ALLOWED_PROJECTS", " "),
                ("DIALOGFLOW_TIMEOUT_SECONDS", ""),
            ],
        )
        .unwrap();
        assert_eq!(config.allowed_projects, vec!["p1".to_owned()]);
        assert!(ProxyConfig::default().allowed_projects.is_empty());
    }

    #[test]
    fn explicit_values() {
        let config = from_pairs(
            "p1",
            &[
                ("DIALOGFLOW_API_ENDPOINT", "http://127.0.0.1:9000/"),
                ("DIALOGFLOW_ALLOWED_PROJECTS", " p2 , 123456789012,,"),
                ("DIALOGFLOW_TIMEOUT_SECONDS", "5"),
            ],
        )
        .unwrap();
        assert_eq!(
            config.api_endpoint.as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(config.allowed_projects, vec!["p2", "123456789012"]);
        assert!(config.allows_project("123456789012"));
        assert!(!config.allows_project("p1"));
        assert!(!config.allows_project("P2"));
        assert_eq!(config.timeout, Duration::from_secs(5));
    }

    #[test]
    fn invalid_values_name_the_variable() {
        for (name, value) in [
            ("DIALOGFLOW_API_ENDPOINT", "ftp://example.com"),
            ("DIALOGFLOW_API_ENDPOINT", "not a url"),
            ("DIALOGFLOW_API_ENDPOINT", "https://example.com/?q=1"),
            ("DIALOGFLOW_API_ENDPOINT", "https://user:pw@example.com"),
            ("DIALOGFLOW_ALLOWED_PROJECTS", ","),
            ("DIALOGFLOW_ALLOWED_PROJECTS", "p1,a/b"),
            ("DIALOGFLOW_TIMEOUT_SECONDS", "0"),
            ("DIALOGFLOW_TIMEOUT_SECONDS", "soon"),
        ] {
            let err = from_pairs("p1", &[(name, value)]).unwrap_err();
            assert_eq!(err.variable, name, "{value}");
        }
    }
}
