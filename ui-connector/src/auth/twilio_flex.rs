//! `Twilio`: the desktop's token is posted as `{"Token": <header>}` to the Flex deployment's
//! `/verify` function, which answers 200 for a valid token. The header is passed on exactly as
//! received (as the Python service did), since the function is the customer's own code.

use agent_assist_core::config::{ConfigError, Settings};
use futures::future::BoxFuture;

use super::provider_http::{endpoint, send};
use super::provider_settings::{check_host, reject_placeholder, url_override};
use super::registry::{AuthError, PlatformAuth};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioFlexConfig {
    /// `TWILIO_FLEX_BASE_URL`, default `https://{TWILIO_FLEX_ENVIRONMENT}`.
    pub base_url: String,
}

impl TwilioFlexConfig {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let base_url = match url_override(settings, "TWILIO_FLEX_BASE_URL")? {
            Some(url) => url,
            None => {
                let environment = settings.required(
                    "TWILIO_FLEX_ENVIRONMENT",
                    "the host of the Flex /verify function, e.g. my-service-1234.twil.io; \
                     or set TWILIO_FLEX_BASE_URL",
                )?;
                reject_placeholder(
                    "TWILIO_FLEX_ENVIRONMENT",
                    &environment,
                    "YOUR_DOMAIN.twil.io",
                )?;
                check_host("TWILIO_FLEX_ENVIRONMENT", &environment)?;
                format!("https://{environment}")
            }
        };
        Ok(Self { base_url })
    }
}

pub struct TwilioFlex {
    client: reqwest::Client,
    verify: reqwest::Url,
}

impl TwilioFlex {
    pub fn new(config: &TwilioFlexConfig, client: reqwest::Client) -> anyhow::Result<Self> {
        Ok(Self {
            client,
            verify: endpoint(&config.base_url, "/verify")?,
        })
    }
}

impl PlatformAuth for TwilioFlex {
    fn name(&self) -> &'static str {
        "Twilio"
    }

    fn verify<'a>(&'a self, authorization: &'a str) -> BoxFuture<'a, Result<(), AuthError>> {
        Box::pin(async move {
            if authorization.trim().is_empty() {
                return Err(AuthError::Refused(
                    "no token in the Authorization header".into(),
                ));
            }
            let request = self
                .client
                .post(self.verify.clone())
                .json(&serde_json::json!({ "Token": authorization }));
            send(self.name(), request).await.map(drop)
        })
    }
}
