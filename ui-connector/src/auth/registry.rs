//! The configured checks, built once at start-up, and the trait every platform check implements.

use futures::future::BoxFuture;

use super::provider_http::HttpClient;
use super::{
    AppAuthConfig, AuthConfig, Five9, GenesysCloud, PlatformConfig, Salesforce, Skip,
    TwilioAccount, TwilioFlex,
};

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
            .map(|p| build_platform(p, &mut http))
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

/// The provider for `config`, sharing `http`.
fn build_platform(
    config: &PlatformConfig,
    http: &mut HttpClient,
) -> anyhow::Result<Box<dyn PlatformAuth>> {
    Ok(match config {
        PlatformConfig::Salesforce(c) => Box::new(Salesforce::new(c, false, http.get()?)?),
        PlatformConfig::SalesforceLwc(c) => Box::new(Salesforce::new(c, true, http.get()?)?),
        PlatformConfig::GenesysCloud(c) => Box::new(GenesysCloud::new(c, http.get()?)?),
        PlatformConfig::Twilio(c) => Box::new(TwilioFlex::new(c, http.get()?)?),
        PlatformConfig::Five9(c) => Box::new(Five9::new(c)),
        PlatformConfig::Skip => Box::new(Skip),
    })
}

/// The token in a header that may or may not start with `Bearer `; refused when empty.
pub(crate) fn required_token(authorization: &str) -> Result<&str, AuthError> {
    let token = agent_assist_core::bearer::token(authorization);
    if token.is_empty() {
        return Err(AuthError::Refused(
            "no token in the Authorization header".into(),
        ));
    }
    Ok(token)
}
