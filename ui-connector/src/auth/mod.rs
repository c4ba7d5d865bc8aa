//! Desktop platform authentication (placeholder: filled in by the registration work).

use agent_assist_core::config::ConfigError;

#[derive(Debug, Clone, Default)]
pub struct AuthConfig {}

impl AuthConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {})
    }

    /// Accept every token (local mode only).
    pub fn skip() -> Self {
        Self {}
    }
}

/// Checks desktop platform tokens.
pub struct Authenticators {}

impl Authenticators {
    pub fn new(_config: &AuthConfig) -> Self {
        Self {}
    }
}
