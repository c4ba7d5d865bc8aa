//! `POST /register` and `POST /register-app`: where agent desktops and applications exchange
//! their platform's credentials for one of the connector's tokens (see [`crate::jwt`]).
//!
//! Same routes and success shape as the Python service: `200 {"token": "<jwt>"}`. Every failure
//! is JSON `{"error": "<message>"}`:
//!
//! | Status | When |
//! |---|---|
//! | 400 | `/register-app` only: the body is not `{"accountSid", "authToken"}` |
//! | 401 | the provider refused the credentials, or the check is not configured (`AUTH_OPTION` / `APP_AUTH_OPTION` unset: fail closed); carries `Authentication: valid token required` (`valid application level auth required` for `/register-app`) like the Python service |
//! | 503 | the provider could not give an answer (unreachable, timed out after `AUTH_TIMEOUT_SECONDS`, answered 5xx or 429, or answered 200 with an unreadable body) |
//!
//! Provider outages are not 401 on purpose: no token is issued either way (fail closed), but a
//! 401 tells the desktop its agent is not allowed in, while a 503 tells it to try again. The
//! two are also logged differently: a refusal is a `warn` with the reason, an outage an `error`.
//!
//! Bodies are read whatever their content type (the Python service used `force=True`). A
//! `/register` body is never a reason to refuse: the Python service read it with
//! `get_json(force=True, silent=True)` (`ui-connector/main.py:104` at 9425334), so an empty,
//! unparsable or non-object body means "no user" and still gets a token.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRef, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{AuthError, Authenticators};
use crate::jwt::JwtKeys;
use crate::metrics::ConnectorMetrics;

/// What registration needs.
#[derive(Clone, FromRef)]
pub struct RegistrationState {
    pub auth: Arc<Authenticators>,
    pub jwt: Arc<JwtKeys>,
    pub metrics: Arc<ConnectorMetrics>,
}

pub fn routes(state: RegistrationState) -> Router {
    Router::new()
        .route("/register", post(register))
        .route("/register-app", post(register_app))
        .with_state(state)
}

/// A token issued: `200 {"token": "<jwt>"}`.
type Issued = Json<Value>;

/// Why no token was issued.
#[derive(Debug)]
pub enum RegistrationError {
    /// 400: the body is not what the route takes.
    BadRequest(String),
    /// 401 or 503, as the check's [`AuthError`] says.
    Check {
        route: &'static Route,
        provider: &'static str,
        error: AuthError,
    },
}

impl RegistrationError {
    /// The `outcome` label of `connector_registrations_total`.
    fn outcome(&self) -> &'static str {
        match self {
            RegistrationError::BadRequest(_) => "bad_request",
            RegistrationError::Check {
                error: AuthError::Unavailable(_),
                ..
            } => "provider_unavailable",
            RegistrationError::Check { .. } => "refused",
        }
    }
}

/// Counts a registration by outcome.
fn counted(
    metrics: &ConnectorMetrics,
    result: Result<Issued, RegistrationError>,
) -> Result<Issued, RegistrationError> {
    metrics.registration(match &result {
        Ok(_) => "accepted",
        Err(e) => e.outcome(),
    });
    result
}

/// `POST /register`: the `Authorization` header carries the desktop platform's token; the body
/// is usually empty, `{}`, or `{"gcp_agent_assist_user": "<name>"}` (see [`requested_user`]
/// for what the token's user is made of any body).
async fn register(
    State(state): State<RegistrationState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Issued, RegistrationError> {
    counted(
        &state.metrics,
        register_platform(&state, &headers, &body).await,
    )
}

async fn register_platform(
    state: &RegistrationState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Issued, RegistrationError> {
    // Not-quite-ASCII headers go to the provider as they are (lossily), which refuses them.
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let provider = state.auth.platform_name().unwrap_or("none");
    state
        .auth
        .verify_platform(&authorization)
        .await
        .map_err(|error| RegistrationError::Check {
            route: &REGISTER,
            provider,
            error,
        })?;
    // The body is read once the platform vouched for the caller, as the Python service did.
    let user = requested_user(body);
    tracing::info!(provider, user = %user, "desktop registered");
    Ok(Json(json!({ "token": state.jwt.issue_for(user) })))
}

/// `POST /register-app`: body `{"accountSid": "...", "authToken": "..."}`; the token's user is
/// the `accountSid`.
async fn register_app(
    State(state): State<RegistrationState>,
    body: Bytes,
) -> Result<Issued, RegistrationError> {
    counted(&state.metrics, register_application(&state, &body).await)
}

async fn register_application(
    state: &RegistrationState,
    body: &[u8],
) -> Result<Issued, RegistrationError> {
    let Some(provider) = state.auth.app_name() else {
        return Err(RegistrationError::Check {
            route: &REGISTER_APP,
            provider: "none",
            error: AuthError::Disabled,
        });
    };
    #[derive(Deserialize)]
    struct AppCredentials {
        #[serde(rename = "accountSid")]
        account_sid: String,
        #[serde(rename = "authToken")]
        auth_token: String,
    }
    let credentials = match serde_json::from_slice::<AppCredentials>(body) {
        Ok(c) if !c.account_sid.is_empty() && !c.auth_token.is_empty() => c,
        Ok(_) => {
            return Err(RegistrationError::BadRequest(
                "accountSid and authToken must not be empty".into(),
            ))
        }
        Err(e) => {
            return Err(RegistrationError::BadRequest(format!(
                "the body must be JSON {{\"accountSid\": \"...\", \"authToken\": \"...\"}}: {}",
                describe_json_error(&e)
            )))
        }
    };
    state
        .auth
        .verify_app(&credentials.account_sid, &credentials.auth_token)
        .await
        .map_err(|error| RegistrationError::Check {
            route: &REGISTER_APP,
            provider,
            error,
        })?;
    tracing::info!(provider, account = %credentials.account_sid, "application registered");
    Ok(Json(
        json!({ "token": state.jwt.issue(&credentials.account_sid) }),
    ))
}

/// The user a `/register` body asks for, as the Python service derives it
/// (`auth.py:70-73` and `main.py:104` at 9425334: `user_info = get_json(force=True,
/// silent=True)`, then `user_info.get('gcp_agent_assist_user')` if `user_info` is truthy):
///
/// - no body, unparsable JSON, or a falsy JSON value (`null`, `{}`, `[]`, `0`, `false`, `""`):
///   `""`;
/// - an object: its `gcp_agent_assist_user` as given, any JSON value (a number stays a
///   number), or `null` when the object does not have the field;
/// - any other truthy value (`[1]`, `"abc"`, `1`): `""` (Python answered 500 there; a token
///   without a user is what the body's sender gets from every other body that names none).
fn requested_user(body: &[u8]) -> Value {
    let no_user = || Value::String(String::new());
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut fields)) if !fields.is_empty() => fields
            .remove("gcp_agent_assist_user")
            .unwrap_or(Value::Null),
        _ => no_user(),
    }
}

/// A JSON error without echoing the body (it may hold credentials).
fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof => "it is not valid JSON".into(),
        Category::Data => "a field is missing or has the wrong type".into(),
        Category::Io => "it could not be read".into(),
    }
}

/// What a failure response says, per route.
#[derive(Debug)]
pub struct Route {
    path: &'static str,
    /// The setting that enables the check.
    setting: &'static str,
    /// The `Authentication` header of a 401, as the Python service sent it.
    authentication: &'static str,
    /// What the client presented.
    what: &'static str,
}

const REGISTER: Route = Route {
    path: "/register",
    setting: "AUTH_OPTION",
    authentication: "valid token required",
    what: "the token",
};

const REGISTER_APP: Route = Route {
    path: "/register-app",
    setting: "APP_AUTH_OPTION",
    authentication: "valid application level auth required",
    what: "the credentials",
};

impl IntoResponse for RegistrationError {
    /// The answer, logged by kind (never with the credentials).
    fn into_response(self) -> Response {
        let (route, provider, e) = match self {
            RegistrationError::BadRequest(message) => {
                return error(StatusCode::BAD_REQUEST, message)
            }
            RegistrationError::Check {
                route,
                provider,
                error,
            } => (route, provider, error),
        };
        let Route {
            path,
            setting,
            authentication,
            what,
        } = *route;
        match e {
            AuthError::Disabled => {
                tracing::warn!(
                    route = path,
                    "registration refused: {setting} is not set, so nobody can register"
                );
                unauthorised(
                format!("Could not authenticate user: registration is not enabled on this server ({setting} is not set)"),
                authentication,
            )
            }
            AuthError::Refused(reason) => {
                tracing::warn!(route = path, provider, %reason, "registration refused by the provider check");
                unauthorised(
                    format!("Could not authenticate user: {provider} did not accept {what}"),
                    authentication,
                )
            }
            AuthError::Unavailable(reason) => {
                tracing::error!(
                    route = path,
                    provider,
                    %reason,
                    "registration failed: the provider is unavailable (answered 503)"
                );
                error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("Could not authenticate user: {provider} could not be asked to check {what}; try again later"),
            )
            }
        }
    }
}

fn unauthorised(message: String, authentication: &'static str) -> Response {
    let mut response = error(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(
        HeaderName::from_static("authentication"),
        HeaderValue::from_static(authentication),
    );
    response
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each body and the user the Python service writes for it (`auth.py:70-73`,
    /// `main.py:104` at 9425334; observed with the pinned Flask 3.1.0 in the research note).
    #[test]
    fn user_from_body_as_python_derives_it() {
        use serde_json::json;
        let cases: [(&[u8], Value); 15] = [
            (b"", json!("")),
            (b" \n", json!("")),
            (b"not json", json!("")),
            (b"{", json!("")),
            (b"null", json!("")),
            (b"{}", json!("")),
            (b"[]", json!("")),
            (b"0", json!("")),
            (b"false", json!("")),
            (
                br#"{"gcp_agent_assist_user": "a@example.com", "x": 1}"#,
                json!("a@example.com"),
            ),
            (br#"{"gcp_agent_assist_user": 5}"#, json!(5)),
            (
                br#"{"gcp_agent_assist_user": {"a": [1]}}"#,
                json!({"a": [1]}),
            ),
            (br#"{"gcp_agent_assist_user": null}"#, Value::Null),
            (br#"{"x": 1}"#, Value::Null),
            (b"[1, 2]", json!("")),
        ];
        for (body, user) in cases {
            assert_eq!(
                requested_user(body),
                user,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
