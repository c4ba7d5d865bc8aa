//! Checks shared by the providers' settings: base-URL overrides, host names, and values left at
//! the Python sample's placeholders.

use agent_assist_core::config::{ConfigError, Settings};

/// The value of a `*_BASE_URL` override: an http(s) URL without query or fragment, returned
/// without a trailing `/`. Plain http is allowed (tests, sidecars) with a warning.
pub(crate) fn url_override(
    settings: &Settings,
    url_setting: &'static str,
) -> Result<Option<String>, ConfigError> {
    let Some(raw) = settings.get(url_setting) else {
        return Ok(None);
    };
    let url = reqwest::Url::parse(&raw)
        .map_err(|e| ConfigError::new(url_setting, format!("{raw:?} is not a URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" => tracing::warn!(
            setting = url_setting,
            url = %raw,
            "provider base URL is plain http: tokens cross the network unencrypted"
        ),
        _ => {
            return Err(ConfigError::new(
                url_setting,
                format!("{raw:?} must be an http:// or https:// URL"),
            ))
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(
            url_setting,
            "must not have a query or a fragment",
        ));
    }
    Ok(Some(raw.trim_end_matches('/').to_owned()))
}

/// Checks that `host` (the value of `setting`) is a bare host name such as `example.com`.
pub(crate) fn check_host(setting: &'static str, host: &str) -> Result<(), ConfigError> {
    let valid = !host.contains("://")
        && !host.contains(['/', '?', '#', '@', ' '])
        && reqwest::Url::parse(&format!("https://{host}")).is_ok();
    if valid {
        Ok(())
    } else {
        Err(ConfigError::new(
            setting,
            format!("{host:?} must be a host name without scheme or path, e.g. example.com"),
        ))
    }
}

/// Rejects a value still set to the Python sample configuration's placeholder.
pub(crate) fn reject_placeholder(
    name: &'static str,
    value: &str,
    placeholder: &str,
) -> Result<(), ConfigError> {
    if value == placeholder {
        return Err(ConfigError::new(
            name,
            format!("is still the sample placeholder {placeholder:?}"),
        ));
    }
    Ok(())
}
