//! The connector's own Google identity, sent upstream instead of the desktop's token.
//!
//! Built lazily, on the first proxied call, then kept: a connector that only streams events
//! never needs Google credentials, and building them starts the library's background token
//! refresh (which on a laptop without credentials would poke at the metadata server). A build
//! that fails is not kept, so the next call tries again (e.g. once a key file is mounted);
//! meanwhile calls get a 503 with a JSON error and the reason goes to the log. Note that ADC
//! itself only fails to build when `GOOGLE_APPLICATION_CREDENTIALS` names a missing or invalid
//! file; with no file at all it falls back to the metadata server, and off Google Cloud it is
//! getting the token that fails (also a 503, within `DIALOGFLOW_TIMEOUT_SECONDS`).
//!
//! Tokens are cached and refreshed by `google-cloud-auth`; they are never logged.

use std::path::{Path, PathBuf};

use google_cloud_auth::credentials::{
    external_account, impersonated, service_account, user_account, Builder, CacheableResource,
    Credentials,
};
use http::{Extensions, HeaderMap};
use tokio::sync::OnceCell;

/// Enough for Dialogflow and, unlike the narrower `dialogflow` scope, grantable to the user
/// credentials `gcloud auth application-default login` creates.
pub(crate) const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Why no Google headers could be had for a call.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CredentialsError {
    #[error("cannot set up Google credentials: {0}")]
    Build(String),
    #[error("cannot get a Google access token: {0}")]
    Token(String),
}

/// Application Default Credentials, or one credentials file.
pub(crate) struct GoogleCredentials {
    file: Option<PathBuf>,
    cell: OnceCell<Credentials>,
}

impl std::fmt::Debug for GoogleCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleCredentials")
            .field("file", &self.file)
            .field("built", &self.cell.initialized())
            .finish()
    }
}

impl GoogleCredentials {
    /// `None`: Application Default Credentials.
    pub fn new(file: Option<PathBuf>) -> Self {
        Self {
            file,
            cell: OnceCell::new(),
        }
    }

    /// The headers that authenticate one call (`authorization`, and `x-goog-user-project` when
    /// a quota project is configured).
    pub async fn headers(&self) -> Result<HeaderMap, CredentialsError> {
        let credentials = self.cell.get_or_try_init(|| async { self.build() }).await?;
        match credentials.headers(Extensions::new()).await {
            Ok(CacheableResource::New { data, .. }) => Ok(data),
            // Only returned when the caller passes an entity tag, which this one never does.
            Ok(CacheableResource::NotModified) => Err(CredentialsError::Token(
                "the credentials returned no headers".into(),
            )),
            Err(e) => Err(CredentialsError::Token(e.to_string())),
        }
    }

    fn build(&self) -> Result<Credentials, CredentialsError> {
        let built = match &self.file {
            None => Builder::default()
                .with_scopes([SCOPE])
                .build()
                .map_err(|e| e.to_string()),
            Some(path) => from_file(path),
        };
        match built {
            Ok(credentials) => {
                match &self.file {
                    None => tracing::info!("Google credentials: Application Default Credentials"),
                    Some(path) => {
                        tracing::info!(file = %path.display(), "Google credentials: from file")
                    }
                }
                Ok(credentials)
            }
            Err(reason) => Err(CredentialsError::Build(reason)),
        }
    }
}

/// Builds credentials from a JSON file of any type ADC understands.
fn from_file(path: &Path) -> Result<Credentials, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let kind = json
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or_default()
        .to_owned();
    let built = match kind.as_str() {
        // Self-signed JWTs with the scope: no token endpoint is called.
        "service_account" => service_account::Builder::new(json)
            .with_access_specifier(service_account::AccessSpecifier::from_scopes([SCOPE]))
            .build(),
        "authorized_user" => user_account::Builder::new(json)
            .with_scopes([SCOPE])
            .build(),
        "impersonated_service_account" => impersonated::Builder::new(json)
            .with_scopes([SCOPE])
            .build(),
        "external_account" => external_account::Builder::new(json)
            .with_scopes([SCOPE])
            .build(),
        other => {
            return Err(format!(
                "{}: unsupported credentials type {other:?}",
                path.display()
            ))
        }
    };
    built.map_err(|e| format!("{}: {e}", path.display()))
}
