//! The connectors' JWT secret and the tokens the load clients connect with.
//!
//! The harness writes a random secret to a file in its run directory and hands the path to every
//! connector as `JWT_SECRET_KEY_PATH`; clients present HS256 tokens signed with it, with the
//! claims the connector checks (`exp`, `gcp_agent_assist_project`, `gcp_agent_assist_user`).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

/// The project every connector runs for (`GCP_PROJECT_ID`) and every token names.
pub const PROJECT: &str = "bench-project";

/// A secret shared by the harness and the connectors.
pub struct Secret {
    key: String,
    path: PathBuf,
}

impl Secret {
    /// Generates a random secret and writes it to `dir/jwt_secret_key`.
    pub fn create(dir: &Path) -> anyhow::Result<Self> {
        let key = hex::encode(rand::random::<[u8; 32]>());
        let path = dir.join("jwt_secret_key");
        std::fs::write(&path, format!("{key}\n"))
            .with_context(|| format!("write {}", path.display()))?;
        Ok(Self { key, path })
    }

    /// The file to give connectors as `JWT_SECRET_KEY_PATH`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A token valid for `lifetime`, for `user`.
    pub fn token(&self, user: &str, lifetime: Duration) -> String {
        #[derive(Serialize)]
        struct Claims<'a> {
            exp: u64,
            gcp_agent_assist_project: &'a str,
            gcp_agent_assist_user: &'a str,
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let claims = Claims {
            exp: (now + lifetime).as_secs(),
            gcp_agent_assist_project: PROJECT,
            gcp_agent_assist_user: user,
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(self.key.as_bytes()),
        )
        .expect("HS256 signing with a non-empty secret cannot fail")
    }
}
