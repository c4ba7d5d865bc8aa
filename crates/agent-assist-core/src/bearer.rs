//! Reading the token out of an `Authorization` header value, one way for every caller: the
//! connector's own JWTs, the desktop platforms' tokens, and Google-signed ID tokens.
//!
//! The scheme is matched case-insensitively (`Bearer`, `bearer`) and separated from the token
//! by whitespace; surrounding whitespace is ignored. Desktops of the Python era send their
//! token both with and without the scheme, so callers that accept both use [`token`], and
//! callers that require the scheme use [`bearer_token`].

/// The token after a `Bearer` scheme; `None` when the header names no `Bearer` scheme.
/// `Some("")` for a scheme without a token.
pub fn bearer_token(header: &str) -> Option<&str> {
    let header = header.trim();
    let (scheme, rest) = header
        .split_once(char::is_whitespace)
        .unwrap_or((header, ""));
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The token, whether or not the header starts with `Bearer`; may be empty.
pub fn token(header: &str) -> &str {
    bearer_token(header).unwrap_or_else(|| header.trim())
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_is_optional_for_token_and_required_for_bearer_token() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("BEARER\tabc"), Some("abc"));
        assert_eq!(bearer_token("abc"), None);
        assert_eq!(bearer_token("Béarer abc"), None);
        assert_eq!(bearer_token("Bearerabc"), None);
        assert_eq!(bearer_token(" Bearer "), Some(""));
        assert_eq!(bearer_token("bearer"), Some(""));
        assert_eq!(bearer_token("Basic dXNlcjpwdw=="), None);
        assert_eq!(token("Bearer abc"), "abc");
        assert_eq!(token(" abc "), "abc");
        assert_eq!(token("Bearer "), "");
        assert_eq!(token(""), "");
    }
}
