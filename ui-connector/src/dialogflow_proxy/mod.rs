//! The Dialogflow REST proxy (placeholder).

use std::sync::Arc;

use agent_assist_core::config::ConfigError;
use axum::Router;

use crate::app::AppState;

#[derive(Debug, Clone, Default)]
pub struct ProxyConfig {}

impl ProxyConfig {
    pub fn from_env(_project_id: &str) -> Result<Self, ConfigError> {
        Ok(Self {})
    }
}

pub struct DialogflowProxy {}

impl DialogflowProxy {
    pub fn new(_config: &ProxyConfig) -> anyhow::Result<Self> {
        Ok(Self {})
    }
}

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
}
