//! The bearer token of a push or webhook call, read with the one bearer parser of the crate
//! ([`crate::bearer`]), with the reasons a Google-signed caller is told: the scheme is required
//! here (Google always sends it), and the token must be one non-empty word.

use axum::http::HeaderValue;

use super::error::{IdTokenError, UnauthenticatedReason};

/// The token of an `Authorization: Bearer <token>` header, or a 401-class error saying what is
/// wrong with the header.
pub fn bearer_token(authorization: Option<&HeaderValue>) -> Result<&str, IdTokenError> {
    let Some(value) = authorization else {
        return Err(IdTokenError::unauthenticated(
            UnauthenticatedReason::MissingAuthorization,
            "no Authorization header",
        ));
    };
    let not_bearer = || {
        IdTokenError::unauthenticated(
            UnauthenticatedReason::NotBearer,
            "the Authorization header is not \"Bearer <token>\"",
        )
    };
    let value = value.to_str().map_err(|_| not_bearer())?;
    match crate::bearer::bearer_token(value) {
        Some(token) if !token.is_empty() && !token.contains(char::is_whitespace) => Ok(token),
        _ => Err(not_bearer()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Result<String, UnauthenticatedReason> {
        let header = HeaderValue::from_str(value).unwrap();
        bearer_token(Some(&header))
            .map(str::to_owned)
            .map_err(|e| match e {
                IdTokenError::Unauthenticated { reason, .. } => reason,
                other => panic!("unexpected class {other:?}"),
            })
    }

    #[test]
    fn reads_the_token_after_the_scheme() {
        assert_eq!(parse("Bearer abc.def.ghi").as_deref(), Ok("abc.def.ghi"));
        assert_eq!(parse("bearer   abc").as_deref(), Ok("abc"));
        assert_eq!(parse("BEARER abc ").as_deref(), Ok("abc"));
    }

    #[test]
    fn refuses_other_schemes_and_empty_tokens() {
        use UnauthenticatedReason::NotBearer;
        assert_eq!(parse("Basic dXNlcjpwYXNz"), Err(NotBearer));
        assert_eq!(parse("Bearer"), Err(NotBearer));
        assert_eq!(parse("Bearer "), Err(NotBearer));
        assert_eq!(parse("Bearer a b"), Err(NotBearer));
        assert_eq!(parse("Bearerabc"), Err(NotBearer));
        assert_eq!(parse("abc.def.ghi"), Err(NotBearer));
    }

    #[test]
    fn a_missing_header_is_its_own_reason() {
        let reason = match bearer_token(None) {
            Err(IdTokenError::Unauthenticated { reason, .. }) => reason,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(reason, UnauthenticatedReason::MissingAuthorization);
    }
}
