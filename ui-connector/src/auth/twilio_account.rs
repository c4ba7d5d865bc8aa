//! `APP_AUTH_OPTION=Twilio`: an application proves it holds the credentials of
//! `TWILIO_ACCOUNT_SID` by fetching that account from the Twilio Accounts API
//! (`GET {accounts}/{TWILIO_ACCOUNT_SID}.json`, basic auth `accountSid:authToken`): Twilio must
//! answer 200 with `sid` equal to `TWILIO_ACCOUNT_SID`.
//! See <https://www.twilio.com/docs/iam/api/account#fetch-an-account-resource>.

use agent_assist_core::config::{ConfigError, Settings};
use serde::Deserialize;

use super::provider_http::{endpoint, read_json, send};
use super::provider_settings::url_override;
use super::registry::AuthError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioAccountConfig {
    /// `TWILIO_ACCOUNT_SID`.
    pub account_sid: String,
    /// `TWILIO_ACCOUNTS_BASE_URL`, default `https://api.twilio.com/2010-04-01/Accounts`.
    pub accounts_base_url: String,
}

impl TwilioAccountConfig {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let account_sid = settings.required(
            "TWILIO_ACCOUNT_SID",
            "the Twilio account whose credentials may register applications",
        )?;
        if !account_sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ConfigError::new(
                "TWILIO_ACCOUNT_SID",
                format!("{account_sid:?} is not a Twilio account SID (letters and digits, AC...)"),
            ));
        }
        let accounts_base_url = url_override(settings, "TWILIO_ACCOUNTS_BASE_URL")?
            .unwrap_or_else(|| "https://api.twilio.com/2010-04-01/Accounts".to_owned());
        Ok(Self {
            account_sid,
            accounts_base_url,
        })
    }
}

pub struct TwilioAccount {
    client: reqwest::Client,
    account_url: reqwest::Url,
    account_sid: String,
}

#[derive(Deserialize)]
struct Account {
    #[serde(default)]
    sid: Option<String>,
}

impl TwilioAccount {
    pub fn new(config: &TwilioAccountConfig, client: reqwest::Client) -> anyhow::Result<Self> {
        Ok(Self {
            client,
            account_url: endpoint(
                &config.accounts_base_url,
                &format!("/{}.json", config.account_sid),
            )?,
            account_sid: config.account_sid.clone(),
        })
    }

    pub fn name(&self) -> &'static str {
        "Twilio"
    }

    /// `Ok` when Twilio accepts `account_sid:auth_token` for the configured account.
    pub async fn verify(&self, account_sid: &str, auth_token: &str) -> Result<(), AuthError> {
        if account_sid.is_empty() || auth_token.is_empty() {
            return Err(AuthError::Refused("empty accountSid or authToken".into()));
        }
        let request = self
            .client
            .get(self.account_url.clone())
            .basic_auth(account_sid, Some(auth_token));
        let response = send("Twilio Accounts API", request).await?;
        let account: Account = read_json("Twilio Accounts API", response).await?;
        match account.sid {
            Some(sid) if sid == self.account_sid => Ok(()),
            other => Err(AuthError::Refused(format!(
                "Twilio reported account {:?}, not the configured one",
                other.unwrap_or_default()
            ))),
        }
    }
}
