//! `Salesforce` and `SalesforceLWC`: the token must belong to a user of the configured
//! organisation, as reported by Salesforce's OpenID Connect userinfo endpoint
//! (`GET /services/oauth2/userinfo`).
//!
//! - `Salesforce` sends the token as `Authorization: Bearer <token>` and requires the reported
//!   `organization_id` to equal `SALESFORCE_ORGANIZATION_ID` exactly (userinfo reports the
//!   18-character form).
//! - `SalesforceLWC` (client credentials flow from a Lightning Web Component) sends it as
//!   `?access_token=<token>` and compares the first 15 characters, so the 15- and 18-character
//!   forms of an id match each other. Both ids must be well-formed (15 or 18 letters and
//!   digits); unlike the Python service, a shorter prefix never matches.
//!
//! In both modes the desktop may send the token with or without a leading `Bearer `.

use agent_assist_core::config::{ConfigError, Settings};
use futures::future::BoxFuture;
use serde::Deserialize;

use super::provider_http::{endpoint, read_json, send};
use super::provider_settings::{check_host, url_override};
use super::registry::{required_token, AuthError, PlatformAuth};

/// Settings shared by both Salesforce modes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesforceConfig {
    /// `SALESFORCE_BASE_URL`, default `https://{SALESFORCE_DOMAIN}`.
    pub base_url: String,
    /// `SALESFORCE_ORGANIZATION_ID`.
    pub organization_id: String,
}

impl SalesforceConfig {
    pub fn from_settings(settings: &Settings, lwc: bool) -> Result<Self, ConfigError> {
        let organization_id = settings.required(
            "SALESFORCE_ORGANIZATION_ID",
            "the Salesforce organisation whose users may register",
        )?;
        if !is_org_id(&organization_id) {
            return Err(ConfigError::new(
                "SALESFORCE_ORGANIZATION_ID",
                format!(
                    "{organization_id:?} is not a Salesforce organisation id (15 or 18 letters and digits)"
                ),
            ));
        }
        if !lwc && organization_id.len() == 15 {
            tracing::warn!(
                "SALESFORCE_ORGANIZATION_ID has 15 characters but AUTH_OPTION=Salesforce compares it \
                 exactly with the 18-character id Salesforce reports; use the 18-character form"
            );
        }
        let base_url = match url_override(settings, "SALESFORCE_BASE_URL")? {
            Some(url) => url,
            None => {
                // The generic login host serves userinfo for tokens of any org; the LWC flow
                // needs the org's own My Domain host (the Python service required it too).
                let domain =
                    match settings.get("SALESFORCE_DOMAIN") {
                        Some(domain) => domain,
                        None if !lwc => "login.salesforce.com".to_owned(),
                        None => return Err(ConfigError::new(
                            "SALESFORCE_DOMAIN",
                            "must be set for AUTH_OPTION=SalesforceLWC (the org's My Domain host, \
                             e.g. example.my.salesforce.com; or set SALESFORCE_BASE_URL)",
                        )),
                    };
                check_host("SALESFORCE_DOMAIN", &domain)?;
                format!("https://{domain}")
            }
        };
        Ok(Self {
            base_url,
            organization_id,
        })
    }
}

/// Checks Salesforce tokens against one organisation.
pub struct Salesforce {
    client: reqwest::Client,
    userinfo: reqwest::Url,
    organization_id: String,
    lwc: bool,
}

#[derive(Deserialize)]
struct UserInfo {
    #[serde(default)]
    organization_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
}

impl Salesforce {
    pub fn new(
        config: &SalesforceConfig,
        lwc: bool,
        client: reqwest::Client,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            is_org_id(&config.organization_id),
            "SALESFORCE_ORGANIZATION_ID is not a Salesforce organisation id"
        );
        Ok(Self {
            client,
            userinfo: endpoint(&config.base_url, "/services/oauth2/userinfo")?,
            organization_id: config.organization_id.clone(),
            lwc,
        })
    }

    fn organisation_allowed(&self, reported: &str) -> bool {
        if self.lwc {
            is_org_id(reported) && reported.get(..15) == self.organization_id.get(..15)
        } else {
            reported == self.organization_id
        }
    }
}

impl PlatformAuth for Salesforce {
    fn name(&self) -> &'static str {
        if self.lwc {
            "SalesforceLWC"
        } else {
            "Salesforce"
        }
    }

    fn verify<'a>(&'a self, authorization: &'a str) -> BoxFuture<'a, Result<(), AuthError>> {
        Box::pin(async move {
            let token = required_token(authorization)?;
            let request = if self.lwc {
                let mut url = self.userinfo.clone();
                url.query_pairs_mut().append_pair("access_token", token);
                self.client.get(url)
            } else {
                self.client.get(self.userinfo.clone()).bearer_auth(token)
            };
            let response = send(self.name(), request).await?;
            let info: UserInfo = read_json(self.name(), response).await?;
            let reported = info.organization_id.unwrap_or_default();
            if self.organisation_allowed(&reported) {
                Ok(())
            } else {
                Err(AuthError::Refused(format!(
                    "Salesforce user {} belongs to organisation {reported:?}, not the configured one",
                    info.user_id.as_deref().unwrap_or("(unknown)")
                )))
            }
        })
    }
}

/// 15 or 18 ASCII letters and digits.
fn is_org_id(id: &str) -> bool {
    matches!(id.len(), 15 | 18) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checker(org: &str, lwc: bool) -> Salesforce {
        Salesforce::new(
            &SalesforceConfig {
                base_url: "https://example.my.salesforce.com".into(),
                organization_id: org.into(),
            },
            lwc,
            reqwest::Client::new(),
        )
        .unwrap()
    }

    #[test]
    fn lwc_matches_15_and_18_character_forms_only() {
        let lwc = checker("00D5g000004XyZa", true);
        assert!(lwc.organisation_allowed("00D5g000004XyZaEAK"));
        assert!(lwc.organisation_allowed("00D5g000004XyZa"));
        assert!(!lwc.organisation_allowed("00D5g000004XyZb"));
        assert!(
            !lwc.organisation_allowed("00D5g000004xyza"),
            "ids are case-sensitive"
        );
        assert!(!lwc.organisation_allowed("00D5g"), "a prefix is not enough");
        assert!(!lwc.organisation_allowed(""));
        assert!(!lwc.organisation_allowed("00D5g000004XyZaEA"));

        let plain = checker("00D5g000004XyZaEAK", false);
        assert!(plain.organisation_allowed("00D5g000004XyZaEAK"));
        assert!(!plain.organisation_allowed("00D5g000004XyZa"));
    }
}
