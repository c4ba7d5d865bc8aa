//! Local mode (placeholder).

use crate::config::ConnectorConfig;

pub fn config_from_env() -> anyhow::Result<ConnectorConfig> {
    anyhow::bail!("local mode is not implemented yet")
}
