//! One fetch of Google's published signing keys (a JWK Set) and how long the response says it
//! stays fresh.
//!
//! Only keys that can sign an RS256 ID token are kept (RSA, `alg` RS256 or absent, `use` `sig`
//! or absent, with a `kid`); a key of a kind we do not know is skipped rather than failing the
//! whole set, so Google adding an EC key one day cannot lock everyone out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::header::{AGE, CACHE_CONTROL};
use axum::http::HeaderMap;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::DecodingKey;

/// Google's key set is about 2 KiB; anything near this is not a key set.
const MAX_JWKS_BYTES: usize = 256 * 1024;

pub(crate) struct FetchedKeys {
    pub keys: HashMap<String, Arc<DecodingKey>>,
    /// Freshness lifetime from `Cache-Control: max-age` less `Age`; `None` when the response
    /// does not say (the cache then uses its default).
    pub max_age: Option<Duration>,
}

/// Fetches and parses the key set; the error is a sentence for logs and 503 details.
pub(crate) async fn fetch_jwks(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<FetchedKeys, String> {
    let mut response = http
        .get(url)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| format!("fetching {url} failed: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("fetching {url} answered {status}"));
    }
    let max_age = freshness_lifetime(response.headers());
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the key set from {url} failed: {e}"))?
    {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(format!(
                "the key set from {url} is larger than {MAX_JWKS_BYTES} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    let keys = parse_jwks(&body).map_err(|e| format!("the key set from {url} {e}"))?;
    Ok(FetchedKeys { keys, max_age })
}

#[derive(serde::Deserialize)]
struct RawKeySet {
    keys: Vec<serde_json::Value>,
}

fn parse_jwks(body: &[u8]) -> Result<HashMap<String, Arc<DecodingKey>>, String> {
    let raw: RawKeySet =
        serde_json::from_slice(body).map_err(|e| format!("is not a JWK Set: {e}"))?;
    let mut keys = HashMap::new();
    for value in raw.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        if let Some((kid, key)) = rs256_key(&jwk) {
            keys.insert(kid, Arc::new(key));
        }
    }
    if keys.is_empty() {
        return Err("holds no RSA signing key with a kid".to_owned());
    }
    Ok(keys)
}

fn rs256_key(jwk: &Jwk) -> Option<(String, DecodingKey)> {
    let kid = jwk.common.key_id.clone()?;
    let AlgorithmParameters::RSA(rsa) = &jwk.algorithm else {
        return None;
    };
    if !matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::RS256)) {
        return None;
    }
    if !matches!(
        jwk.common.public_key_use,
        None | Some(PublicKeyUse::Signature)
    ) {
        return None;
    }
    let key = DecodingKey::from_rsa_components(&rsa.n, &rsa.e).ok()?;
    Some((kid, key))
}

/// `max-age` less `Age` (RFC 9111 section 4.2); `no-store` and `no-cache` mean stale at once.
fn freshness_lifetime(headers: &HeaderMap) -> Option<Duration> {
    let mut max_age = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim();
            let lower = directive.to_ascii_lowercase();
            if lower == "no-store" || lower == "no-cache" {
                return Some(Duration::ZERO);
            }
            if let Some(seconds) = lower.strip_prefix("max-age=") {
                if let Ok(seconds) = seconds.trim_matches('"').parse::<u64>() {
                    max_age = Some(seconds);
                }
            }
        }
    }
    let age = headers
        .get(AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    max_age.map(|max_age| Duration::from_secs(max_age.saturating_sub(age)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn freshness_is_max_age_less_age() {
        let google = "public, max-age=19548, must-revalidate, no-transform";
        assert_eq!(
            freshness_lifetime(&headers(&[("cache-control", google)])),
            Some(Duration::from_secs(19548))
        );
        assert_eq!(
            freshness_lifetime(&headers(&[("cache-control", google), ("age", "548")])),
            Some(Duration::from_secs(19000))
        );
        assert_eq!(
            freshness_lifetime(&headers(&[("cache-control", "max-age=10"), ("age", "99")])),
            Some(Duration::ZERO)
        );
        assert_eq!(
            freshness_lifetime(&headers(&[("cache-control", "no-cache")])),
            Some(Duration::ZERO)
        );
        assert_eq!(freshness_lifetime(&headers(&[])), None);
        assert_eq!(
            freshness_lifetime(&headers(&[("cache-control", "public")])),
            None
        );
    }

    #[test]
    fn keeps_only_rsa_signing_keys_with_a_kid() {
        let body = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "rs", "alg": "RS256", "use": "sig", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "kid": "no-alg", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "kid": "rs512", "alg": "RS512", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "n": "sXch", "e": "AQAB"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "future-kind", "kid": "odd"}
        ]});
        let keys = parse_jwks(body.to_string().as_bytes()).unwrap();
        let mut kids: Vec<_> = keys.keys().cloned().collect();
        kids.sort();
        assert_eq!(kids, ["no-alg", "rs"]);
    }

    #[test]
    fn a_set_without_usable_keys_is_an_error() {
        assert!(parse_jwks(br#"{"keys": []}"#).is_err());
        assert!(parse_jwks(b"<html>").is_err());
    }
}
