//! Desktop platform authentication: who may be given one of the connector's tokens.
//!
//! `POST /register` (see [`crate::registration`]) hands the desktop's `Authorization` header to
//! the provider chosen by `AUTH_OPTION`; each provider is one small module implementing
//! [`PlatformAuth`]. `POST /register-app` checks application credentials with the provider
//! chosen by `APP_AUTH_OPTION` (only Twilio so far). Every check calls the platform's real API
//! (HTTPS unless a `*_BASE_URL` override says otherwise) through one shared HTTP client with a
//! timeout; nothing is cached, so a revoked platform token stops working at once.
//!
//! - [`config`]: which checks are configured, read from the settings.
//! - [`registry`]: the checks built from it, and the [`PlatformAuth`] trait.
//! - `provider_http`: the shared HTTP client and how answers map to [`AuthError`].
//! - `provider_settings`: checks shared by the providers' settings.
//! - one module per provider.
//!
//! Tokens and secrets are never logged: errors from the HTTP client are logged without their URL
//! (the `SalesforceLWC` check carries the token in the query string), and [`Five9Config`]'s
//! `Debug` hides the trust token.

pub mod config;
mod five9;
mod genesys;
mod provider_http;
mod provider_settings;
pub mod registry;
mod salesforce;
mod skip;
mod twilio_account;
mod twilio_flex;

pub use config::{AppAuthConfig, AuthConfig, PlatformConfig, DEFAULT_TIMEOUT};
pub use five9::{Five9, Five9Config};
pub use genesys::{GenesysCloud, GenesysConfig};
pub use registry::{AuthError, Authenticators, PlatformAuth};
pub use salesforce::{Salesforce, SalesforceConfig};
pub use skip::Skip;
pub use twilio_account::{TwilioAccount, TwilioAccountConfig};
pub use twilio_flex::{TwilioFlex, TwilioFlexConfig};
