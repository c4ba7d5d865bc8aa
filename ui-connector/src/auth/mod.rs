//! Desktop platform authentication: who may be given one of the connector's tokens.
//!
//! `POST /register` (see [`crate::registration`]) hands the desktop's `Authorization` header to
//! the provider chosen by `AUTH_OPTION`; each provider is one small module implementing
//! [`PlatformAuth`]. `POST /register-app` checks application credentials with the provider
//! chosen by `APP_AUTH_OPTION` (only Twilio so far). Every check calls the platform's real API
//! (HTTPS unless a `*_BASE_URL` override says otherwise) through one shared HTTP client with a
//! timeout; nothing is cached, so a revoked platform token stops working at once.
//!
//! Adding a platform: a module with a config struct read from `Settings` and a type
//! implementing [`PlatformAuth`], a [`PlatformConfig`] variant, and one arm in each of
//! `PlatformConfig::from_settings`, [`PlatformConfig::option_name`] and `PlatformConfig::build`.
//!
//! Tokens and secrets are never logged: errors from the HTTP client are logged without their URL
//! (the `SalesforceLWC` check carries the token in the query string), and [`Five9Config`]'s
//! `Debug` hides the trust token.

mod five9;
mod genesys;
mod salesforce;
mod skip;
mod twilio_account;
mod twilio_flex;

use std::time::Duration;

use agent_assist_core::config::{self as env, ConfigError};
use anyhow::Context;
use futures::future::BoxFuture;
use reqwest::StatusCode;

pub use five9::{Five9, Five9Config};
pub use genesys::{GenesysCloud, GenesysConfig};
pub use salesforce::{Salesforce, SalesforceConfig};
pub use skip::Skip;
pub use twilio_account::{TwilioAccount, TwilioAccountConfig};
pub use twilio_flex::{TwilioFlex, TwilioFlexConfig};

/// How long a provider check may take unless `AUTH_TIMEOUT_SECONDS` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Desktop platform authentication settings, read once at start-up (names as in the Python
/// service; empty values count as unset).
///
/// | Setting | Default | Used by |
/// |---|---|---|
/// | `AUTH_OPTION` | unset: every `/register` is refused | `Salesforce`, `SalesforceLWC`, `GenesysCloud`, `Twilio`, `Five9` or `Skip`; anything else is a start-up error |
/// | `AUTH_TIMEOUT_SECONDS` | `5` | longest wait for one provider check, in seconds (fractions allowed, e.g. `0.5`; at most 300) |
/// | `SALESFORCE_ORGANIZATION_ID` | required | `Salesforce`, `SalesforceLWC`: the organisation whose users may register (15 or 18 characters) |
/// | `SALESFORCE_DOMAIN` | `login.salesforce.com` for `Salesforce`; required for `SalesforceLWC` unless `SALESFORCE_BASE_URL` is set | host of the userinfo endpoint (`<my-domain>.my.salesforce.com`), no scheme |
/// | `SALESFORCE_BASE_URL` | `https://{SALESFORCE_DOMAIN}` | overrides the Salesforce base URL (tests, proxies) |
/// | `GENESYS_CLOUD_ENVIRONMENT` | `mypurecloud.com` | `GenesysCloud`: the region's domain, e.g. `mypurecloud.de` |
/// | `GENESYS_CLOUD_BASE_URL` | `https://api.{GENESYS_CLOUD_ENVIRONMENT}` | overrides the Genesys Cloud API base URL |
/// | `TWILIO_FLEX_ENVIRONMENT` | required unless `TWILIO_FLEX_BASE_URL` is set | `Twilio`: host of the Flex `/verify` function, e.g. `my-service-1234.twil.io` |
/// | `TWILIO_FLEX_BASE_URL` | `https://{TWILIO_FLEX_ENVIRONMENT}` | overrides the Flex function base URL |
/// | `FIVE9_TRUST_TOKEN` | required | `Five9`: the shared secret the desktop sends as `Bearer <token>` |
/// | `APP_AUTH_OPTION` | unset: every `/register-app` is refused | `Twilio`; anything else is a start-up error |
/// | `TWILIO_ACCOUNT_SID` | required | `APP_AUTH_OPTION=Twilio`: the account whose credentials may register |
/// | `TWILIO_ACCOUNTS_BASE_URL` | `https://api.twilio.com/2010-04-01/Accounts` | overrides the Twilio Accounts API base URL |
///
/// A `*_BASE_URL` override wins over the host setting beside it; it may use `http://` (a warning
/// is logged) and must not include the path the check appends itself
/// (`/services/oauth2/userinfo`, `/api/v2/users/me`, `/verify`, `/{sid}.json`). A required value
/// still equal to the Python sample's placeholder (`YOUR_...`) is a start-up error, like a missing
/// one.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `AUTH_OPTION`; `None`: nobody can register (fail closed).
    pub platform: Option<PlatformConfig>,
    /// `APP_AUTH_OPTION`; `None`: no application can register (fail closed).
    pub app: Option<AppAuthConfig>,
    /// `AUTH_TIMEOUT_SECONDS`: the whole provider call, connecting to reading the answer.
    pub timeout: Duration,
}

impl Default for AuthConfig {
    /// Nobody can register.
    fn default() -> Self {
        Self {
            platform: None,
            app: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl AuthConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env::optional)
    }

    /// Reads the settings through `lookup` (the environment in production, a map in tests).
    pub fn from_lookup<F>(lookup: F) -> Result<Self, ConfigError>
    where
        F: Fn(&'static str) -> Option<String>,
    {
        let settings = Settings::new(&lookup);
        Ok(Self {
            platform: PlatformConfig::from_settings(&settings)?,
            app: AppAuthConfig::from_settings(&settings)?,
            timeout: settings.timeout("AUTH_TIMEOUT_SECONDS", DEFAULT_TIMEOUT)?,
        })
    }

    /// Accept every token (local mode only).
    pub fn skip() -> Self {
        Self {
            platform: Some(PlatformConfig::Skip),
            ..Self::default()
        }
    }
}

/// The provider `AUTH_OPTION` names, with its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformConfig {
    /// `Salesforce`: OpenID Connect userinfo with the token as a bearer token; the organisation
    /// id must equal `SALESFORCE_ORGANIZATION_ID` exactly.
    Salesforce(SalesforceConfig),
    /// `SalesforceLWC`: userinfo with the token as `?access_token=`; organisation ids match on
    /// their first 15 characters.
    SalesforceLwc(SalesforceConfig),
    /// `GenesysCloud`: `GET /api/v2/users/me` must answer 200.
    GenesysCloud(GenesysConfig),
    /// `Twilio`: the Flex `/verify` function must answer 200.
    Twilio(TwilioFlexConfig),
    /// `Five9`: the header must be `Bearer <FIVE9_TRUST_TOKEN>`.
    Five9(Five9Config),
    /// `Skip`: everybody registers. Local runs only.
    Skip,
}

impl PlatformConfig {
    /// Every value `AUTH_OPTION` accepts.
    pub const OPTIONS: [&'static str; 6] = [
        "Salesforce",
        "SalesforceLWC",
        "GenesysCloud",
        "Twilio",
        "Five9",
        "Skip",
    ];

    pub(crate) fn from_settings(settings: &Settings) -> Result<Option<Self>, ConfigError> {
        let Some(option) = settings.get("AUTH_OPTION") else {
            return Ok(None);
        };
        let config = match option.as_str() {
            "Salesforce" => Self::Salesforce(SalesforceConfig::from_settings(settings, false)?),
            "SalesforceLWC" => Self::SalesforceLwc(SalesforceConfig::from_settings(settings, true)?),
            "GenesysCloud" => Self::GenesysCloud(GenesysConfig::from_settings(settings)?),
            "Twilio" => Self::Twilio(TwilioFlexConfig::from_settings(settings)?),
            "Five9" => Self::Five9(Five9Config::from_settings(settings)?),
            "Skip" => Self::Skip,
            other => {
                return Err(ConfigError::new(
                    "AUTH_OPTION",
                    format!(
                        "unknown value {other:?}; expected one of {} (or unset to refuse every registration)",
                        Self::OPTIONS.join(", ")
                    ),
                ))
            }
        };
        Ok(Some(config))
    }

    /// The `AUTH_OPTION` value this came from.
    pub fn option_name(&self) -> &'static str {
        match self {
            Self::Salesforce(_) => "Salesforce",
            Self::SalesforceLwc(_) => "SalesforceLWC",
            Self::GenesysCloud(_) => "GenesysCloud",
            Self::Twilio(_) => "Twilio",
            Self::Five9(_) => "Five9",
            Self::Skip => "Skip",
        }
    }

    fn build(&self, http: &mut HttpClient) -> anyhow::Result<Box<dyn PlatformAuth>> {
        Ok(match self {
            Self::Salesforce(c) => Box::new(Salesforce::new(c, false, http.get()?)?),
            Self::SalesforceLwc(c) => Box::new(Salesforce::new(c, true, http.get()?)?),
            Self::GenesysCloud(c) => Box::new(GenesysCloud::new(c, http.get()?)?),
            Self::Twilio(c) => Box::new(TwilioFlex::new(c, http.get()?)?),
            Self::Five9(c) => Box::new(Five9::new(c)),
            Self::Skip => Box::new(Skip),
        })
    }
}

/// The application check `APP_AUTH_OPTION` names, with its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppAuthConfig {
    /// `Twilio`: the Accounts API must accept `accountSid:authToken` for `TWILIO_ACCOUNT_SID`.
    Twilio(TwilioAccountConfig),
}

impl AppAuthConfig {
    pub(crate) fn from_settings(settings: &Settings) -> Result<Option<Self>, ConfigError> {
        match settings.get("APP_AUTH_OPTION").as_deref() {
            None => Ok(None),
            Some("Twilio") => Ok(Some(Self::Twilio(TwilioAccountConfig::from_settings(
                settings,
            )?))),
            Some(other) => Err(ConfigError::new(
                "APP_AUTH_OPTION",
                format!(
                    "unknown value {other:?}; expected Twilio (or unset to refuse every application)"
                ),
            )),
        }
    }
}

/// Why a platform or an application did not get a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The check is not configured (`AUTH_OPTION` or `APP_AUTH_OPTION` unset): nobody passes.
    #[error("not enabled on this server")]
    Disabled,
    /// The credentials were checked and refused. The reason is for logs, never contains a token.
    #[error("refused: {0}")]
    Refused(String),
    /// The provider could not give an answer: unreachable, timed out, answered 5xx or 429, or
    /// answered 200 with an unreadable body. Nobody gets a token either (fail closed), but the
    /// caller answers 503 so the desktop retries instead of treating the agent as unauthorised.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
}

/// One desktop platform's check of the `Authorization` header `/register` received.
///
/// Implementations call the platform (or compare a secret) and never log the header.
pub trait PlatformAuth: Send + Sync {
    /// The `AUTH_OPTION` value, for logs and messages.
    fn name(&self) -> &'static str;

    /// `Ok` when the platform vouches for the holder of `authorization` (the raw header value,
    /// empty when absent).
    fn verify<'a>(&'a self, authorization: &'a str) -> BoxFuture<'a, Result<(), AuthError>>;
}

/// The configured checks, built once at start-up.
pub struct Authenticators {
    platform: Option<Box<dyn PlatformAuth>>,
    app: Option<TwilioAccount>,
}

impl Authenticators {
    /// Builds the providers and, if any of them calls out, the shared HTTP client (which fails
    /// only when no TLS root certificates can be loaded). `Skip` is announced with a warning.
    pub fn new(config: &AuthConfig) -> anyhow::Result<Self> {
        let mut http = HttpClient::new(config.timeout);
        let platform = config
            .platform
            .as_ref()
            .map(|p| p.build(&mut http))
            .transpose()?;
        let app = match &config.app {
            None => None,
            Some(AppAuthConfig::Twilio(c)) => Some(TwilioAccount::new(c, http.get()?)?),
        };
        match &platform {
            None => tracing::warn!(
                "AUTH_OPTION is not set: every POST /register is refused and no agent desktop can get a token"
            ),
            Some(_) if config.platform == Some(PlatformConfig::Skip) => tracing::warn!(
                "AUTH_OPTION=Skip: POST /register gives a token to ANYONE without checking anything; \
                 for local runs only, never in production"
            ),
            Some(p) => tracing::info!(
                provider = p.name(),
                timeout_ms = config.timeout.as_millis() as u64,
                "desktop registration checks tokens with the platform"
            ),
        }
        if let Some(app) = &app {
            tracing::info!(
                provider = app.name(),
                "application registration (POST /register-app) enabled"
            );
        }
        Ok(Self { platform, app })
    }

    /// The `AUTH_OPTION` in force, if any.
    pub fn platform_name(&self) -> Option<&'static str> {
        self.platform.as_ref().map(|p| p.name())
    }

    /// The `APP_AUTH_OPTION` in force, if any.
    pub fn app_name(&self) -> Option<&'static str> {
        self.app.as_ref().map(|a| a.name())
    }

    /// Checks the `Authorization` header of `/register` (empty when absent).
    pub async fn verify_platform(&self, authorization: &str) -> Result<(), AuthError> {
        match &self.platform {
            None => Err(AuthError::Disabled),
            Some(platform) => platform.verify(authorization).await,
        }
    }

    /// Checks the application credentials of `/register-app`.
    pub async fn verify_app(&self, account_sid: &str, auth_token: &str) -> Result<(), AuthError> {
        match &self.app {
            None => Err(AuthError::Disabled),
            Some(app) => app.verify(account_sid, auth_token).await,
        }
    }
}

/// The one HTTP client all providers share, built on first need.
struct HttpClient {
    timeout: Duration,
    client: Option<reqwest::Client>,
}

impl HttpClient {
    fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            client: None,
        }
    }

    /// A handle on the shared client (clones share one connection pool).
    fn get(&mut self) -> anyhow::Result<reqwest::Client> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .user_agent(concat!(
                "agent-assist-ui-connector/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .context("cannot build the HTTP client for desktop platform authentication")?;
        self.client = Some(client.clone());
        Ok(client)
    }
}

/// Settings read through a lookup function; blank values count as unset.
pub(crate) struct Settings<'a> {
    lookup: &'a dyn Fn(&'static str) -> Option<String>,
}

impl<'a> Settings<'a> {
    pub(crate) fn new(lookup: &'a dyn Fn(&'static str) -> Option<String>) -> Self {
        Self { lookup }
    }

    /// The trimmed value of `name`, `None` when unset or blank.
    pub(crate) fn get(&self, name: &'static str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The value of `name`; `purpose` says in the error what it is for.
    pub(crate) fn required(
        &self,
        name: &'static str,
        purpose: &str,
    ) -> Result<String, ConfigError> {
        self.get(name)
            .ok_or_else(|| ConfigError::new(name, format!("must be set ({purpose})")))
    }

    /// A positive number of seconds, fractions allowed, at most 300.
    pub(crate) fn timeout(
        &self,
        name: &'static str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        let secs: f64 = raw
            .parse()
            .map_err(|e| ConfigError::new(name, format!("{raw:?} is not a number: {e}")))?;
        if !(secs > 0.0 && secs <= 300.0) {
            return Err(ConfigError::new(
                name,
                format!("{raw:?} must be more than 0 and at most 300 seconds"),
            ));
        }
        Ok(Duration::from_secs_f64(secs))
    }

    /// The value of a `*_BASE_URL` override: an http(s) URL without query or fragment, returned
    /// without a trailing `/`. Plain http is allowed (tests, sidecars) with a warning.
    pub(crate) fn url_override(
        &self,
        url_setting: &'static str,
    ) -> Result<Option<String>, ConfigError> {
        let Some(raw) = self.get(url_setting) else {
            return Ok(None);
        };
        let url = reqwest::Url::parse(&raw)
            .map_err(|e| ConfigError::new(url_setting, format!("{raw:?} is not a URL: {e}")))?;
        match url.scheme() {
            "https" => {}
            "http" => tracing::warn!(
                setting = url_setting,
                url = %raw,
                "provider base URL is plain http: tokens cross the network unencrypted"
            ),
            _ => {
                return Err(ConfigError::new(
                    url_setting,
                    format!("{raw:?} must be an http:// or https:// URL"),
                ))
            }
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ConfigError::new(
                url_setting,
                "must not have a query or a fragment",
            ));
        }
        Ok(Some(raw.trim_end_matches('/').to_owned()))
    }
}

/// Checks that `host` (the value of `setting`) is a bare host name such as `example.com`.
pub(crate) fn check_host(setting: &'static str, host: &str) -> Result<(), ConfigError> {
    let valid = !host.contains("://")
        && !host.contains(['/', '?', '#', '@', ' '])
        && reqwest::Url::parse(&format!("https://{host}")).is_ok();
    if valid {
        Ok(())
    } else {
        Err(ConfigError::new(
            setting,
            format!("{host:?} must be a host name without scheme or path, e.g. example.com"),
        ))
    }
}

/// Rejects a value still set to the Python sample configuration's placeholder.
pub(crate) fn reject_placeholder(
    name: &'static str,
    value: &str,
    placeholder: &str,
) -> Result<(), ConfigError> {
    if value == placeholder {
        return Err(ConfigError::new(
            name,
            format!("is still the sample placeholder {placeholder:?}"),
        ));
    }
    Ok(())
}

/// Parses `{base}{path}` (the base is validated at start-up, so this fails only on a bad path).
pub(crate) fn endpoint(base: &str, path: &str) -> anyhow::Result<reqwest::Url> {
    let url = format!("{base}{path}");
    reqwest::Url::parse(&url).with_context(|| format!("invalid provider URL {url}"))
}

/// The token after a `Bearer ` scheme (matched case-insensitively), if the header has one.
pub(crate) fn strip_bearer(authorization: &str) -> Option<&str> {
    let header = authorization.trim();
    let (scheme, rest) = header.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case("bearer") || !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    Some(rest.trim())
}

/// The token in a header that may or may not start with `Bearer `; refused when empty.
pub(crate) fn bearer_token(authorization: &str) -> Result<&str, AuthError> {
    let token = strip_bearer(authorization).unwrap_or(authorization).trim();
    if token.is_empty() {
        return Err(AuthError::Refused(
            "no token in the Authorization header".into(),
        ));
    }
    Ok(token)
}

/// Sends a provider request: 200 is returned; 5xx and 429 mean the provider is unavailable;
/// any other status is a refusal; transport failures (connect, timeout) mean unavailable.
pub(crate) async fn send(
    provider: &'static str,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, AuthError> {
    let response = request
        .send()
        .await
        .map_err(|e| request_failed(provider, e))?;
    let status = response.status();
    if status == StatusCode::OK {
        Ok(response)
    } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        Err(AuthError::Unavailable(format!(
            "{provider} answered {status}"
        )))
    } else {
        Err(AuthError::Refused(format!("{provider} answered {status}")))
    }
}

/// Reads a 200 answer's JSON body; an unreadable body means the provider is not working.
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    provider: &'static str,
    response: reqwest::Response,
) -> Result<T, AuthError> {
    response.json().await.map_err(|e| {
        if e.is_timeout() {
            request_failed(provider, e)
        } else {
            AuthError::Unavailable(format!(
                "{provider} answered 200 with an unreadable body: {}",
                error_chain(&e.without_url())
            ))
        }
    })
}

/// A transport failure, described without the URL (it may carry a token).
fn request_failed(provider: &'static str, error: reqwest::Error) -> AuthError {
    let error = error.without_url();
    if error.is_builder() {
        // The token cannot be put in a request (e.g. not a valid header value).
        return AuthError::Refused(format!("token unusable in a {provider} request"));
    }
    let what = if error.is_timeout() {
        "did not answer in time"
    } else if error.is_connect() {
        "could not be reached"
    } else {
        "request failed"
    };
    AuthError::Unavailable(format!("{provider} {what}: {}", error_chain(&error)))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_prefix_is_optional_and_case_insensitive() {
        assert_eq!(strip_bearer("Bearer abc"), Some("abc"));
        assert_eq!(strip_bearer("bearer  abc "), Some("abc"));
        assert_eq!(strip_bearer("abc"), None);
        assert_eq!(strip_bearer("Béarer abc"), None);
        assert_eq!(bearer_token("Bearer abc"), Ok("abc"));
        assert_eq!(bearer_token("abc"), Ok("abc"));
        assert_eq!(strip_bearer("Bearerabc"), None);
        assert_eq!(strip_bearer(" Bearer "), Some(""));
        assert!(matches!(
            bearer_token("Bearer "),
            Err(AuthError::Refused(_))
        ));
        assert!(matches!(bearer_token("bearer"), Err(AuthError::Refused(_))));
        assert!(matches!(bearer_token(""), Err(AuthError::Refused(_))));
    }
}
