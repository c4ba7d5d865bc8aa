//! Checking one Google ID token against what a service expects: RS256 signature by a current
//! Google key, Google as issuer, fresh, for our audience, from one of our accounts.
//!
//! The order of the checks decides the class of a refusal: everything that makes the token
//! untrustworthy (header, algorithm, key, signature, issuer, time) is checked before what only
//! says it is meant for someone else (audience, account), so a 403 always means "a real, current
//! Google token, just not for us".

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderValue;
use base64::Engine;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use super::bearer::bearer_token;
use super::error::{quoted, ForbiddenReason, IdTokenError, UnauthenticatedReason};
use super::key_cache::GoogleKeys;

/// Issuers of Google ID tokens (both spellings are in use).
pub const GOOGLE_ISSUERS: [&str; 2] = ["accounts.google.com", "https://accounts.google.com"];

/// Tolerated difference between Google's clock and ours, both ways, for `exp`, `iat` and `nbf`.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(30);

/// Longer tokens are refused before any parsing (Google's are about 1 KiB).
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Who may call: a token must name one of `audiences` and one of `emails`.
#[derive(Debug, Clone)]
pub struct Expectation {
    /// Accepted `aud` values (the push endpoint's audience, the webhook URL, ...).
    pub audiences: Vec<String>,
    /// Accepted `email` values (service accounts), compared exactly.
    pub emails: Vec<String>,
    /// See [`DEFAULT_CLOCK_SKEW`].
    pub clock_skew: Duration,
}

impl Expectation {
    /// One audience, one account, the default clock skew.
    pub fn new(audience: impl Into<String>, email: impl Into<String>) -> Self {
        Self {
            audiences: vec![audience.into()],
            emails: vec![email.into()],
            clock_skew: DEFAULT_CLOCK_SKEW,
        }
    }
}

/// An expectation that would accept nobody (or anybody) is a configuration mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpectationError {
    #[error("at least one non-empty audience is required")]
    NoAudience,
    #[error("at least one non-empty account email is required")]
    NoEmail,
}

/// The caller a verified token proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    /// The account (one of [`Expectation::emails`]).
    pub email: String,
    /// The audience the token was minted for (one of [`Expectation::audiences`]).
    pub audience: String,
    /// Google's stable id of the account (`sub`), when present.
    pub subject: Option<String>,
    /// `iat` and `exp`, seconds since the Unix epoch.
    pub issued_at: u64,
    pub expires_at: u64,
}

/// Verifies Google ID tokens for one [`Expectation`]. Cheap to clone; clones share the key cache.
#[derive(Debug, Clone)]
pub struct IdTokenVerifier {
    keys: GoogleKeys,
    expectation: Arc<CheckedExpectation>,
    validation: Arc<Validation>,
}

#[derive(Debug)]
struct CheckedExpectation {
    audiences: HashSet<String>,
    emails: HashSet<String>,
    clock_skew_secs: u64,
}

impl IdTokenVerifier {
    pub fn new(keys: GoogleKeys, expectation: Expectation) -> Result<Self, ExpectationError> {
        let audiences: HashSet<String> = expectation
            .audiences
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect();
        let emails: HashSet<String> = expectation
            .emails
            .into_iter()
            .filter(|e| !e.is_empty())
            .collect();
        if audiences.is_empty() {
            return Err(ExpectationError::NoAudience);
        }
        if emails.is_empty() {
            return Err(ExpectationError::NoEmail);
        }
        // jsonwebtoken checks the algorithm (RS256 only) and the signature; the claims are
        // checked below, so each failure gets its own reason and class.
        let mut validation = Validation::new(Algorithm::RS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        Ok(Self {
            keys,
            expectation: Arc::new(CheckedExpectation {
                audiences,
                emails,
                clock_skew_secs: expectation.clock_skew.as_secs(),
            }),
            validation: Arc::new(validation),
        })
    }

    pub fn keys(&self) -> &GoogleKeys {
        &self.keys
    }

    /// Verifies the `Authorization` header of a request (`Bearer <token>`).
    pub async fn verify(
        &self,
        authorization: Option<&HeaderValue>,
    ) -> Result<VerifiedIdentity, IdTokenError> {
        let token = bearer_token(authorization)?;
        self.verify_token(token).await
    }

    /// Verifies a bare token (the part after `Bearer `).
    pub async fn verify_token(&self, token: &str) -> Result<VerifiedIdentity, IdTokenError> {
        let kid = signing_key_id(token)?;
        let key = self.keys.key(&kid).await?;
        let claims = jsonwebtoken::decode::<GoogleClaims>(token, &key, &self.validation)
            .map_err(signature_error)?
            .claims;
        self.check_claims(claims, unix_now())
    }

    fn check_claims(
        &self,
        claims: GoogleClaims,
        now: u64,
    ) -> Result<VerifiedIdentity, IdTokenError> {
        use UnauthenticatedReason::*;
        let expected = &self.expectation;
        let skew = expected.clock_skew_secs;

        let iss = claims.iss.ok_or_else(|| missing("iss"))?;
        if !GOOGLE_ISSUERS.contains(&iss.as_str()) {
            return Err(IdTokenError::unauthenticated(
                WrongIssuer,
                format!("issuer {} is not Google", quoted(&iss)),
            ));
        }
        let exp = claims.exp.ok_or_else(|| missing("exp"))?;
        let iat = claims.iat.ok_or_else(|| missing("iat"))?;
        if now > exp.saturating_add(skew) {
            return Err(IdTokenError::unauthenticated(
                Expired,
                format!("expired {} s ago (clock skew allowed: {skew} s)", now - exp),
            ));
        }
        let not_before = claims.nbf.map_or(iat, |nbf| nbf.max(iat));
        if not_before > now.saturating_add(skew) {
            return Err(IdTokenError::unauthenticated(
                NotYetValid,
                format!(
                    "not valid for another {} s (clock skew allowed: {skew} s)",
                    not_before - now
                ),
            ));
        }

        if matches!(claims.aud, AudienceClaim::Missing) {
            return Err(missing("aud"));
        }
        let audience = match claims.aud.into_matching(&expected.audiences) {
            Ok(audience) => audience,
            Err(found) => {
                return Err(IdTokenError::forbidden(
                    ForbiddenReason::WrongAudience,
                    format!("audience {found} is not this service's"),
                ))
            }
        };

        let Some(email) = claims.email else {
            return Err(IdTokenError::forbidden(
                ForbiddenReason::WrongEmail,
                "the token names no account email",
            ));
        };
        if !expected.emails.contains(&email) {
            return Err(IdTokenError::forbidden(
                ForbiddenReason::WrongEmail,
                format!("account {} is not allowed", quoted(&email)),
            ));
        }
        if !claims
            .email_verified
            .as_ref()
            .is_some_and(EmailVerified::is_true)
        {
            return Err(IdTokenError::unauthenticated(
                EmailNotVerified,
                format!("Google does not vouch for account {}", quoted(&email)),
            ));
        }

        Ok(VerifiedIdentity {
            email,
            audience,
            subject: claims.sub,
            issued_at: iat,
            expires_at: exp,
        })
    }
}

fn missing(claim: &str) -> IdTokenError {
    IdTokenError::unauthenticated(
        UnauthenticatedReason::MissingClaim,
        format!("the token has no valid {claim} claim"),
    )
}

/// The claims we read. Every field is optional here so a missing one gets a precise refusal
/// rather than a generic decoding error.
#[derive(Deserialize)]
struct GoogleClaims {
    iss: Option<String>,
    #[serde(default)]
    aud: AudienceClaim,
    exp: Option<u64>,
    iat: Option<u64>,
    nbf: Option<u64>,
    email: Option<String>,
    email_verified: Option<EmailVerified>,
    sub: Option<String>,
}

/// `aud` is a string in Google ID tokens; RFC 7519 also allows an array.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum AudienceClaim {
    One(String),
    Many(Vec<String>),
    #[default]
    Missing,
}

impl AudienceClaim {
    /// The first expected audience the token names, or how the token's audience reads.
    fn into_matching(self, expected: &HashSet<String>) -> Result<String, String> {
        match self {
            Self::One(aud) if expected.contains(&aud) => Ok(aud),
            Self::One(aud) => Err(quoted(&aud)),
            Self::Many(auds) => {
                let shown = quoted(&auds.join(", "));
                auds.into_iter()
                    .find(|aud| expected.contains(aud))
                    .ok_or(shown)
            }
            Self::Missing => Err("(none)".to_owned()),
        }
    }
}

/// Google sends a boolean; some older tokens carried the string `"true"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum EmailVerified {
    Bool(bool),
    Text(String),
}

impl EmailVerified {
    fn is_true(&self) -> bool {
        match self {
            Self::Bool(verified) => *verified,
            Self::Text(text) => text == "true",
        }
    }
}

#[derive(Deserialize)]
struct TokenHeader {
    alg: String,
    kid: Option<String>,
}

/// Reads the header ourselves (rather than `jsonwebtoken::decode_header`) so `alg: none` and
/// friends are refused by name, before any key lookup could be triggered.
fn signing_key_id(token: &str) -> Result<String, IdTokenError> {
    use UnauthenticatedReason::*;
    let malformed = |detail: &str| IdTokenError::unauthenticated(MalformedToken, detail);
    if token.len() > MAX_TOKEN_BYTES {
        return Err(malformed("the token is too long"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("the token is not three dot-separated parts"));
    };
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| malformed("the token header is not base64url"))?;
    let header: TokenHeader = serde_json::from_slice(&header)
        .map_err(|_| malformed("the token header is not a JSON object with an alg"))?;
    if header.alg != "RS256" {
        return Err(IdTokenError::unauthenticated(
            DisallowedAlgorithm,
            format!("algorithm {} is not RS256", quoted(&header.alg)),
        ));
    }
    header
        .kid
        .ok_or_else(|| malformed("the token header names no key (kid)"))
}

fn signature_error(error: jsonwebtoken::errors::Error) -> IdTokenError {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::InvalidSignature => IdTokenError::unauthenticated(
            UnauthenticatedReason::InvalidSignature,
            "the signature does not verify with Google's key",
        ),
        ErrorKind::InvalidAlgorithm => IdTokenError::unauthenticated(
            UnauthenticatedReason::DisallowedAlgorithm,
            "the algorithm is not RS256",
        ),
        _ => IdTokenError::unauthenticated(
            UnauthenticatedReason::MalformedToken,
            format!("the token does not decode: {error}"),
        ),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
