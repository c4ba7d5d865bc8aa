//! `Five9`: no platform call; the desktop must send `Authorization: Bearer <FIVE9_TRUST_TOKEN>`.
//! The comparison takes the same time whatever the header holds (SHA-256 digests compared in
//! constant time, so neither the content nor the length of the secret leaks through timing).

use std::fmt;

use agent_assist_core::config::{ConfigError, Settings};
use futures::future::BoxFuture;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::provider_settings::reject_placeholder;
use super::registry::{AuthError, PlatformAuth};

#[derive(Clone, PartialEq, Eq)]
pub struct Five9Config {
    /// `FIVE9_TRUST_TOKEN`: the shared secret. Hidden from `Debug`.
    pub trust_token: String,
}

impl fmt::Debug for Five9Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Five9Config")
            .field("trust_token", &"<redacted>")
            .finish()
    }
}

impl Five9Config {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let trust_token = settings.required(
            "FIVE9_TRUST_TOKEN",
            "the shared secret Five9 desktops send as Bearer <token>",
        )?;
        reject_placeholder("FIVE9_TRUST_TOKEN", &trust_token, "YOUR_FIVE9_TRUST_TOKEN")?;
        if trust_token.len() < 16 {
            tracing::warn!(
                "FIVE9_TRUST_TOKEN is shorter than 16 characters; use a long random secret"
            );
        }
        Ok(Self { trust_token })
    }
}

pub struct Five9 {
    /// SHA-256 of the trust token; the token itself is not kept.
    digest: [u8; 32],
}

impl Five9 {
    pub fn new(config: &Five9Config) -> Self {
        Self {
            digest: Sha256::digest(config.trust_token.as_bytes()).into(),
        }
    }
}

impl PlatformAuth for Five9 {
    fn name(&self) -> &'static str {
        "Five9"
    }

    fn verify<'a>(&'a self, authorization: &'a str) -> BoxFuture<'a, Result<(), AuthError>> {
        Box::pin(async move {
            let Some(token) = agent_assist_core::bearer::bearer_token(authorization) else {
                return Err(AuthError::Refused(
                    "the Authorization header is not Bearer <token>".into(),
                ));
            };
            let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            if bool::from(digest.ct_eq(&self.digest)) && !token.is_empty() {
                Ok(())
            } else {
                Err(AuthError::Refused("wrong Five9 trust token".into()))
            }
        })
    }
}
