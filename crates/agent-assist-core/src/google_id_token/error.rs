//! Why a Google ID token was refused, in three classes that map to three HTTP answers.
//!
//! The class matters more than the detail: Pub/Sub retries every non-2xx push and dead-letters
//! after the subscription's last attempt, so a push refused because *we* could not get Google's
//! keys must be a 503 (our fault, retry) and never a 401 (their fault). The reason is a small
//! closed set with stable labels so services can count refusals per reason without unbounded
//! metric cardinality; the detail is for logs and the response body.

use axum::http::StatusCode;

/// The three answers a refused request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectionClass {
    /// No token, or not a valid Google ID token: 401.
    Unauthenticated,
    /// A valid Google ID token, but for another audience or account: 403.
    Forbidden,
    /// Google's signing keys could not be fetched and no cached key matches: 503, retry later.
    KeysUnavailable,
}

impl RejectionClass {
    pub fn status(self) -> StatusCode {
        match self {
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Stable label, e.g. for a metric.
    pub fn label(self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::KeysUnavailable => "keys_unavailable",
        }
    }
}

/// Why a request is [`RejectionClass::Unauthenticated`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnauthenticatedReason {
    /// No `Authorization` header.
    MissingAuthorization,
    /// An `Authorization` header that is not `Bearer <token>`.
    NotBearer,
    /// Not a JWS compact token, or a header or payload that does not decode.
    MalformedToken,
    /// Any algorithm but RS256 (`none`, HS256 with the public key as secret, ...).
    DisallowedAlgorithm,
    /// A `kid` that is not among Google's current keys (after at most one re-fetch).
    UnknownKey,
    /// The signature does not verify against the key named by `kid`.
    InvalidSignature,
    /// `iss` is not Google.
    WrongIssuer,
    /// `exp` is in the past (beyond the clock skew).
    Expired,
    /// `iat` (or `nbf`) is in the future (beyond the clock skew).
    NotYetValid,
    /// A claim Google always sets is missing. (A claim of the wrong type makes the payload not
    /// decode: [`Self::MalformedToken`].)
    MissingClaim,
    /// The token names an allowed account but Google does not vouch for its email.
    EmailNotVerified,
}

impl UnauthenticatedReason {
    pub fn label(self) -> &'static str {
        match self {
            Self::MissingAuthorization => "missing_authorization",
            Self::NotBearer => "not_bearer",
            Self::MalformedToken => "malformed_token",
            Self::DisallowedAlgorithm => "disallowed_algorithm",
            Self::UnknownKey => "unknown_key",
            Self::InvalidSignature => "invalid_signature",
            Self::WrongIssuer => "wrong_issuer",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::MissingClaim => "missing_claim",
            Self::EmailNotVerified => "email_not_verified",
        }
    }
}

/// Why a request is [`RejectionClass::Forbidden`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForbiddenReason {
    /// `aud` is not one of the expected audiences.
    WrongAudience,
    /// `email` is missing or not one of the allowed accounts.
    WrongEmail,
}

impl ForbiddenReason {
    pub fn label(self) -> &'static str {
        match self {
            Self::WrongAudience => "wrong_audience",
            Self::WrongEmail => "wrong_email",
        }
    }
}

/// A refused Google ID token. `detail` is meant for logs and response bodies: it never holds
/// the token, and values copied from the token are shortened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IdTokenError {
    #[error("unauthenticated ({}): {detail}", reason.label())]
    Unauthenticated {
        reason: UnauthenticatedReason,
        detail: String,
    },
    #[error("forbidden ({}): {detail}", reason.label())]
    Forbidden {
        reason: ForbiddenReason,
        detail: String,
    },
    #[error("Google's signing keys are unavailable: {detail}")]
    KeysUnavailable { detail: String },
}

impl IdTokenError {
    pub(crate) fn unauthenticated(
        reason: UnauthenticatedReason,
        detail: impl Into<String>,
    ) -> Self {
        Self::Unauthenticated {
            reason,
            detail: detail.into(),
        }
    }

    pub(crate) fn forbidden(reason: ForbiddenReason, detail: impl Into<String>) -> Self {
        Self::Forbidden {
            reason,
            detail: detail.into(),
        }
    }

    pub(crate) fn keys_unavailable(detail: impl Into<String>) -> Self {
        Self::KeysUnavailable {
            detail: detail.into(),
        }
    }

    pub fn class(&self) -> RejectionClass {
        match self {
            Self::Unauthenticated { .. } => RejectionClass::Unauthenticated,
            Self::Forbidden { .. } => RejectionClass::Forbidden,
            Self::KeysUnavailable { .. } => RejectionClass::KeysUnavailable,
        }
    }

    /// 401, 403 or 503.
    pub fn status(&self) -> StatusCode {
        self.class().status()
    }

    /// Stable reason label (e.g. `expired`, `wrong_audience`, `keys_unavailable`) for counting.
    pub fn reason_label(&self) -> &'static str {
        match self {
            Self::Unauthenticated { reason, .. } => reason.label(),
            Self::Forbidden { reason, .. } => reason.label(),
            Self::KeysUnavailable { .. } => RejectionClass::KeysUnavailable.label(),
        }
    }

    pub fn detail(&self) -> &str {
        match self {
            Self::Unauthenticated { detail, .. }
            | Self::Forbidden { detail, .. }
            | Self::KeysUnavailable { detail } => detail,
        }
    }
}

/// Shortens a value copied from a token before it goes into a detail message: tokens are
/// attacker-controlled, and a log line should not carry kilobytes of them.
pub(crate) fn quoted(value: &str) -> String {
    const MAX_CHARS: usize = 80;
    if value.chars().count() <= MAX_CHARS {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(MAX_CHARS).collect();
        format!("{head:?}...")
    }
}
