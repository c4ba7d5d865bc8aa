//! `GenesysCloud`: the token is good when `GET /api/v2/users/me` with it as a bearer token
//! answers 200. (Genesys does not report an organisation to compare, as in the Python service.)
//! The desktop may send the token with or without a leading `Bearer `.

use agent_assist_core::config::{ConfigError, Settings};
use futures::future::BoxFuture;

use super::provider_http::{endpoint, send};
use super::provider_settings::{check_host, url_override};
use super::registry::{required_token, AuthError, PlatformAuth};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenesysConfig {
    /// `GENESYS_CLOUD_BASE_URL`, default `https://api.{GENESYS_CLOUD_ENVIRONMENT}` with
    /// `GENESYS_CLOUD_ENVIRONMENT` defaulting to `mypurecloud.com` (as in the Python service).
    pub base_url: String,
}

impl GenesysConfig {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let base_url = match url_override(settings, "GENESYS_CLOUD_BASE_URL")? {
            Some(url) => url,
            None => {
                let environment = settings
                    .get("GENESYS_CLOUD_ENVIRONMENT")
                    .unwrap_or_else(|| "mypurecloud.com".to_owned());
                check_host("GENESYS_CLOUD_ENVIRONMENT", &environment)?;
                format!("https://api.{environment}")
            }
        };
        Ok(Self { base_url })
    }
}

pub struct GenesysCloud {
    client: reqwest::Client,
    users_me: reqwest::Url,
}

impl GenesysCloud {
    pub fn new(config: &GenesysConfig, client: reqwest::Client) -> anyhow::Result<Self> {
        Ok(Self {
            client,
            users_me: endpoint(&config.base_url, "/api/v2/users/me")?,
        })
    }
}

impl PlatformAuth for GenesysCloud {
    fn name(&self) -> &'static str {
        "GenesysCloud"
    }

    fn verify<'a>(&'a self, authorization: &'a str) -> BoxFuture<'a, Result<(), AuthError>> {
        Box::pin(async move {
            let token = required_token(authorization)?;
            let request = self.client.get(self.users_me.clone()).bearer_auth(token);
            send(self.name(), request).await.map(drop)
        })
    }
}
