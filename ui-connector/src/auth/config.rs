//! Which desktop platform and application checks are configured, with their settings.
//!
//! Adding a platform: a module with a config struct read from [`Settings`] and a type
//! implementing [`PlatformAuth`](super::PlatformAuth), a [`PlatformConfig`] variant, and one arm
//! in each of [`PlatformConfig::from_settings`], [`PlatformConfig::option_name`] and the registry's
//! `build_platform`.

use std::time::Duration;

use agent_assist_core::config::{ConfigError, Settings};

use super::{Five9Config, GenesysConfig, SalesforceConfig, TwilioAccountConfig, TwilioFlexConfig};

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
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        Ok(Self {
            platform: PlatformConfig::from_settings(settings)?,
            app: AppAuthConfig::from_settings(settings)?,
            timeout: settings.fractional_seconds_or(
                "AUTH_TIMEOUT_SECONDS",
                DEFAULT_TIMEOUT,
                300.0,
            )?,
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

    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, ConfigError> {
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
}

/// The application check `APP_AUTH_OPTION` names, with its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppAuthConfig {
    /// `Twilio`: the Accounts API must accept `accountSid:authToken` for `TWILIO_ACCOUNT_SID`.
    Twilio(TwilioAccountConfig),
}

impl AppAuthConfig {
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, ConfigError> {
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
