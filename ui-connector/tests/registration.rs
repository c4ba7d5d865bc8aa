//! `POST /register` and `POST /register-app` end to end: the real router served on loopback,
//! driven over HTTP, with each desktop platform stood in by a small local server that records
//! what it received and answers as told.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_assist_core::config::Settings;
use agent_assist_test_support::TestConnector;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use ui_connector::auth::{AppAuthConfig, AuthConfig, AuthError, Authenticators, PlatformConfig};

const PROJECT: &str = "test-project";
const ORG_18: &str = "00D5g000004XyZaEAK";
const ORG_15: &str = "00D5g000004XyZa";
const OTHER_ORG_18: &str = "00D5g000009QqQqEAK";
const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";
const FIVE9_SECRET: &str = "five9-shared-secret-0123456789";

// ---------------------------------------------------------------------------------------------
// Stand-in providers

/// One request a stand-in received.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    query: Option<String>,
    authorization: Option<String>,
    body: String,
}

#[derive(Clone)]
enum Reply {
    /// Answer with this status and JSON body.
    Json(u16, Value),
    /// Never answer (the connector's timeout must fire).
    Hang,
}

struct StandIn {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl StandIn {
    async fn start(reply: Reply) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .fallback(stand_in)
            .with_state((reply, received.clone()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, received }
    }

    fn ok(body: Value) -> Reply {
        Reply::Json(200, body)
    }

    fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The one request received (fails when there were none or several).
    fn only_request(&self) -> Received {
        let requests = self.requests();
        assert_eq!(
            requests.len(),
            1,
            "expected exactly one request: {requests:?}"
        );
        requests[0].clone()
    }
}

async fn stand_in(
    State((reply, received)): State<(Reply, Arc<Mutex<Vec<Received>>>)>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    received.lock().unwrap().push(Received {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        authorization: parts
            .headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: String::from_utf8(body.to_vec()).unwrap(),
    });
    match reply {
        Reply::Json(status, body) => {
            (StatusCode::from_u16(status).unwrap(), Json(body)).into_response()
        }
        Reply::Hang => std::future::pending().await,
    }
}

/// A loopback address where nothing listens.
async fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

// ---------------------------------------------------------------------------------------------
// The connector

fn auth_config(settings: &[(&'static str, &str)]) -> AuthConfig {
    try_auth_config(settings).expect("valid auth settings")
}

fn try_auth_config(
    settings: &[(&'static str, &str)],
) -> Result<AuthConfig, agent_assist_core::config::ConfigError> {
    AuthConfig::from_settings(&Settings::from_pairs(settings.iter().copied()))
}

struct Connector {
    app: TestConnector,
    url: String,
    http: reqwest::Client,
    /// The same checks the connector runs, built from the same settings (to call directly).
    auth: Authenticators,
    auth_config: AuthConfig,
}

/// What the connector answered.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    body: Value,
    authentication: Option<String>,
}

impl Connector {
    async fn start(settings: &[(&'static str, &str)]) -> Self {
        let auth_config = auth_config(settings);
        let mut builder = TestConnector::builder().memory_bus();
        for (name, value) in settings {
            builder = builder.setting(name, *value);
        }
        let app = builder.spawn().await;
        Self {
            url: app.url(""),
            app,
            http: reqwest::Client::new(),
            auth: Authenticators::new(&auth_config).unwrap(),
            auth_config,
        }
    }

    async fn post(
        &self,
        path: &str,
        authorization: Option<&str>,
        body: Option<&str>,
        content_type: Option<&str>,
    ) -> Answer {
        let mut request = self.http.post(format!("{}{path}", self.url));
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        if let Some(body) = body {
            request = request.body(body.to_owned());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let authentication = response
            .headers()
            .get("authentication")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.expect("every answer is JSON");
        Answer {
            status,
            body,
            authentication,
        }
    }

    /// `POST /register` with a JSON body.
    async fn register(&self, authorization: Option<&str>, body: Option<&str>) -> Answer {
        self.post(
            "/register",
            authorization,
            body,
            body.map(|_| "application/json"),
        )
        .await
    }

    async fn register_app(&self, body: &str) -> Answer {
        self.post("/register-app", None, Some(body), Some("application/json"))
            .await
    }

    /// The answer is a 200 whose token verifies and names `user`.
    fn assert_token_for(&self, answer: &Answer, user: &str) {
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        let token = answer.body["token"].as_str().expect("a token");
        let claims = self.app.jwt().verify(token).expect("the token verifies");
        assert_eq!(claims.gcp_agent_assist_user, user);
        assert_eq!(claims.gcp_agent_assist_project, PROJECT);
    }
}

fn assert_unauthorised(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{answer:?}");
    assert!(answer.body.get("token").is_none());
    let message = answer.body["error"].as_str().expect("an error message");
    assert!(
        message.starts_with("Could not authenticate user"),
        "{message}"
    );
    assert!(answer.authentication.is_some(), "{answer:?}");
}

fn assert_unavailable(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{answer:?}");
    assert!(answer.body.get("token").is_none());
    let message = answer.body["error"].as_str().expect("an error message");
    assert!(message.contains("try again later"), "{message}");
}

fn assert_bad_request(answer: &Answer, mentions: &str) {
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{answer:?}");
    let message = answer.body["error"].as_str().expect("an error message");
    assert!(
        message.contains(mentions),
        "{message:?} should mention {mentions:?}"
    );
}

fn salesforce(option: &str, org: &str, stand_in: &StandIn) -> Vec<(&'static str, String)> {
    vec![
        ("AUTH_OPTION", option.to_owned()),
        ("SALESFORCE_ORGANIZATION_ID", org.to_owned()),
        ("SALESFORCE_BASE_URL", stand_in.url.clone()),
        ("AUTH_TIMEOUT_SECONDS", "5".to_owned()),
    ]
}

fn refs<'a>(settings: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    settings.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn userinfo(org: &str) -> Value {
    json!({"user_id": "005000000000001AAA", "organization_id": org, "email": "a@example.com"})
}

// ---------------------------------------------------------------------------------------------
// Salesforce

#[tokio::test]
async fn salesforce_accepts_tokens_of_the_configured_org() {
    let provider = StandIn::start(StandIn::ok(userinfo(ORG_18))).await;
    let connector = Connector::start(&refs(&salesforce("Salesforce", ORG_18, &provider))).await;

    let answer = connector
        .register(
            Some("sf-token-1"),
            Some(r#"{"gcp_agent_assist_user": "agent@example.com"}"#),
        )
        .await;
    connector.assert_token_for(&answer, "agent@example.com");
    let request = provider.only_request();
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/services/oauth2/userinfo");
    assert_eq!(request.query, None);
    assert_eq!(request.authorization.as_deref(), Some("Bearer sf-token-1"));

    // A header that already says Bearer is not doubled.
    let answer = connector.register(Some("Bearer sf-token-2"), None).await;
    connector.assert_token_for(&answer, "");
    assert_eq!(
        provider.requests()[1].authorization.as_deref(),
        Some("Bearer sf-token-2")
    );
}

#[tokio::test]
async fn salesforce_refuses_other_orgs_and_refused_tokens() {
    // Another organisation.
    let provider = StandIn::start(StandIn::ok(userinfo(OTHER_ORG_18))).await;
    let connector = Connector::start(&refs(&salesforce("Salesforce", ORG_18, &provider))).await;
    let answer = connector.register(Some("sf-token"), Some("{}")).await;
    assert_unauthorised(&answer);
    assert_eq!(
        answer.authentication.as_deref(),
        Some("valid token required")
    );
    assert!(answer.body["error"]
        .as_str()
        .unwrap()
        .contains("Salesforce"));

    // The plain Salesforce option compares exactly: the 15-character form is another string.
    let provider = StandIn::start(StandIn::ok(userinfo(ORG_15))).await;
    let connector = Connector::start(&refs(&salesforce("Salesforce", ORG_18, &provider))).await;
    assert_unauthorised(&connector.register(Some("sf-token"), None).await);

    // No organisation in the answer.
    let provider = StandIn::start(StandIn::ok(json!({"user_id": "005"}))).await;
    let connector = Connector::start(&refs(&salesforce("Salesforce", ORG_18, &provider))).await;
    assert_unauthorised(&connector.register(Some("sf-token"), None).await);

    // Salesforce refuses the token.
    let provider = StandIn::start(Reply::Json(
        401,
        json!([{"errorCode": "INVALID_SESSION_ID"}]),
    ))
    .await;
    let connector = Connector::start(&refs(&salesforce("Salesforce", ORG_18, &provider))).await;
    assert_unauthorised(&connector.register(Some("expired-token"), None).await);
    assert_eq!(provider.requests().len(), 1);

    // No token at all: refused without asking Salesforce.
    assert_unauthorised(&connector.register(None, None).await);
    assert_unauthorised(&connector.register(Some("Bearer "), None).await);
    assert_eq!(provider.requests().len(), 1);
}

#[tokio::test]
async fn salesforce_lwc_sends_the_token_as_access_token_and_matches_15_characters() {
    // Configured with the 15-character id, Salesforce reports the 18-character one.
    let provider = StandIn::start(StandIn::ok(userinfo(ORG_18))).await;
    let mut settings = salesforce("SalesforceLWC", ORG_15, &provider);
    let connector = Connector::start(&refs(&settings)).await;
    let answer = connector
        .register(
            Some("Bearer 00Dx!AQ+token/with=chars"),
            Some(r#"{"gcp_agent_assist_user": "lwc-agent"}"#),
        )
        .await;
    connector.assert_token_for(&answer, "lwc-agent");
    let request = provider.only_request();
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/services/oauth2/userinfo");
    assert_eq!(
        request.authorization, None,
        "the token travels in the query"
    );
    let query: HashMap<String, String> =
        url_pairs(request.query.as_deref().expect("a query string"));
    assert_eq!(
        query.get("access_token").map(String::as_str),
        Some("00Dx!AQ+token/with=chars"),
        "Bearer stripped, the rest encoded intact"
    );

    // A token without Bearer is sent as it is.
    connector.assert_token_for(&connector.register(Some("raw-token"), None).await, "");
    let query = url_pairs(provider.requests()[1].query.as_deref().unwrap());
    assert_eq!(query["access_token"], "raw-token");

    // Configured with the 18-character id, Salesforce reports the 15-character one.
    let provider = StandIn::start(StandIn::ok(userinfo(ORG_15))).await;
    settings = salesforce("SalesforceLWC", ORG_18, &provider);
    let connector = Connector::start(&refs(&settings)).await;
    connector.assert_token_for(&connector.register(Some("t"), None).await, "");

    // Another organisation, a mere prefix, a case change: refused.
    for reported in [OTHER_ORG_18, "00D5g", "00d5g000004xyzaEAK", ""] {
        let provider = StandIn::start(StandIn::ok(userinfo(reported))).await;
        let connector =
            Connector::start(&refs(&salesforce("SalesforceLWC", ORG_18, &provider))).await;
        assert_unauthorised(&connector.register(Some("t"), None).await);
    }

    // Salesforce refuses the token.
    let provider = StandIn::start(Reply::Json(403, json!({"error": "bad_token"}))).await;
    let connector = Connector::start(&refs(&salesforce("SalesforceLWC", ORG_18, &provider))).await;
    assert_unauthorised(&connector.register(Some("t"), None).await);
}

fn url_pairs(query: &str) -> HashMap<String, String> {
    reqwest::Url::parse(&format!("http://x/?{query}"))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Genesys Cloud, Twilio Flex, Five9, Skip, unset

#[tokio::test]
async fn genesys_cloud_accepts_on_200_and_refuses_otherwise() {
    let provider = StandIn::start(StandIn::ok(json!({"id": "user-1"}))).await;
    let connector = Connector::start(&[
        ("AUTH_OPTION", "GenesysCloud"),
        ("GENESYS_CLOUD_BASE_URL", &provider.url),
    ])
    .await;
    let answer = connector
        .register(
            Some("genesys-token"),
            Some(r#"{"gcp_agent_assist_user": "g"}"#),
        )
        .await;
    connector.assert_token_for(&answer, "g");
    let request = provider.only_request();
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/api/v2/users/me");
    assert_eq!(
        request.authorization.as_deref(),
        Some("Bearer genesys-token")
    );

    for status in [401, 403, 404] {
        let provider =
            StandIn::start(Reply::Json(status, json!({"code": "bad.credentials"}))).await;
        let connector = Connector::start(&[
            ("AUTH_OPTION", "GenesysCloud"),
            ("GENESYS_CLOUD_BASE_URL", &provider.url),
        ])
        .await;
        assert_unauthorised(&connector.register(Some("genesys-token"), None).await);
        assert_eq!(provider.requests().len(), 1);
    }
}

#[tokio::test]
async fn twilio_flex_posts_the_token_to_verify() {
    let provider = StandIn::start(StandIn::ok(json!({"isValid": true}))).await;
    let connector = Connector::start(&[
        ("AUTH_OPTION", "Twilio"),
        ("TWILIO_FLEX_BASE_URL", &provider.url),
    ])
    .await;
    let answer = connector
        .register(
            Some("flex-jwe-token"),
            Some(r#"{"gcp_agent_assist_user": "t"}"#),
        )
        .await;
    connector.assert_token_for(&answer, "t");
    let request = provider.only_request();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/verify");
    assert_eq!(request.authorization, None);
    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body, json!({"Token": "flex-jwe-token"}));

    let provider = StandIn::start(Reply::Json(401, json!({"isValid": false}))).await;
    let connector = Connector::start(&[
        ("AUTH_OPTION", "Twilio"),
        ("TWILIO_FLEX_BASE_URL", &provider.url),
    ])
    .await;
    assert_unauthorised(&connector.register(Some("wrong"), None).await);
    assert_unauthorised(&connector.register(None, None).await);
    assert_eq!(provider.requests().len(), 1, "no token, no call");
}

#[tokio::test]
async fn five9_compares_the_trust_token() {
    let connector = Connector::start(&[
        ("AUTH_OPTION", "Five9"),
        ("FIVE9_TRUST_TOKEN", FIVE9_SECRET),
    ])
    .await;
    let answer = connector
        .register(
            Some(&format!("Bearer {FIVE9_SECRET}")),
            Some(r#"{"gcp_agent_assist_user": "five9-agent"}"#),
        )
        .await;
    connector.assert_token_for(&answer, "five9-agent");

    let prefix = &FIVE9_SECRET[..10];
    let wrong = [
        None,
        Some(String::new()),
        Some(FIVE9_SECRET.to_owned()), // no Bearer
        Some("Bearer ".to_owned()),
        Some("Bearer wrong".to_owned()),
        Some(format!("Bearer {prefix}")),
        Some(format!("Bearer {FIVE9_SECRET}x")),
        Some(format!("Basic {FIVE9_SECRET}")),
    ];
    for header in wrong {
        let answer = connector.register(header.as_deref(), None).await;
        assert_unauthorised(&answer);
    }
}

#[tokio::test]
async fn skip_accepts_everybody() {
    let connector = Connector::start(&[("AUTH_OPTION", "Skip")]).await;
    connector.assert_token_for(&connector.register(None, None).await, "");
    connector.assert_token_for(
        &connector
            .register(
                Some("anything"),
                Some(r#"{"gcp_agent_assist_user": "local"}"#),
            )
            .await,
        "local",
    );
}

#[tokio::test]
async fn unset_options_refuse_everybody() {
    for settings in [vec![], vec![("AUTH_OPTION", " ")]] {
        let connector = Connector::start(&settings).await;
        let answer = connector.register(Some("token"), Some("{}")).await;
        assert_unauthorised(&answer);
        assert!(answer.body["error"]
            .as_str()
            .unwrap()
            .contains("AUTH_OPTION"));

        let answer = connector
            .register_app(r#"{"accountSid": "AC1", "authToken": "t"}"#)
            .await;
        assert_unauthorised(&answer);
        assert_eq!(
            answer.authentication.as_deref(),
            Some("valid application level auth required")
        );
        assert!(answer.body["error"]
            .as_str()
            .unwrap()
            .contains("APP_AUTH_OPTION"));
    }
}

// ---------------------------------------------------------------------------------------------
// Provider outages: 503, never a token

/// The settings that point `option` at `url`, with `timeout` seconds.
fn provider_settings(option: &str, url: &str, timeout: &str) -> Vec<(&'static str, String)> {
    let mut settings = vec![("AUTH_TIMEOUT_SECONDS", timeout.to_owned())];
    match option {
        "Salesforce" | "SalesforceLWC" => {
            settings.push(("AUTH_OPTION", option.to_owned()));
            settings.push(("SALESFORCE_ORGANIZATION_ID", ORG_18.to_owned()));
            settings.push(("SALESFORCE_BASE_URL", url.to_owned()));
        }
        "GenesysCloud" => {
            settings.push(("AUTH_OPTION", option.to_owned()));
            settings.push(("GENESYS_CLOUD_BASE_URL", url.to_owned()));
        }
        "Twilio" => {
            settings.push(("AUTH_OPTION", option.to_owned()));
            settings.push(("TWILIO_FLEX_BASE_URL", url.to_owned()));
        }
        "TwilioApp" => {
            settings.push(("APP_AUTH_OPTION", "Twilio".to_owned()));
            settings.push(("TWILIO_ACCOUNT_SID", TWILIO_SID.to_owned()));
            settings.push(("TWILIO_ACCOUNTS_BASE_URL", url.to_owned()));
        }
        other => panic!("no provider {other}"),
    }
    settings
}

const HTTP_PROVIDERS: [&str; 5] = [
    "Salesforce",
    "SalesforceLWC",
    "GenesysCloud",
    "Twilio",
    "TwilioApp",
];

/// The provider check's own error (what gets logged) must not carry the token, even for
/// `SalesforceLWC`, whose request URL does.
async fn assert_reason_hides_the_token(connector: &Connector, option: &str) {
    const SECRET: &str = "leak-check-token";
    let result = if option == "TwilioApp" {
        connector.auth.verify_app(TWILIO_SID, SECRET).await
    } else {
        connector
            .auth
            .verify_platform(&format!("Bearer {SECRET}"))
            .await
    };
    match result {
        Err(AuthError::Unavailable(reason)) => {
            assert!(!reason.contains(SECRET), "{option}: {reason}")
        }
        other => panic!("{option}: expected Unavailable, got {other:?}"),
    }
}

async fn attempt(connector: &Connector, option: &str) -> Answer {
    if option == "TwilioApp" {
        connector
            .register_app(&format!(
                r#"{{"accountSid": "{TWILIO_SID}", "authToken": "tok"}}"#
            ))
            .await
    } else {
        connector.register(Some("token"), None).await
    }
}

#[tokio::test]
async fn provider_timeouts_answer_503() {
    for option in HTTP_PROVIDERS {
        let provider = StandIn::start(Reply::Hang).await;
        let connector =
            Connector::start(&refs(&provider_settings(option, &provider.url, "0.2"))).await;
        assert_eq!(connector.auth_config.timeout, Duration::from_millis(200));
        let answer = attempt(&connector, option).await;
        assert_unavailable(&answer);
        assert_eq!(
            provider.requests().len(),
            1,
            "{option}: the provider was asked"
        );
        assert_reason_hides_the_token(&connector, option).await;
    }
}

#[tokio::test]
async fn unreachable_providers_answer_503() {
    for option in HTTP_PROVIDERS {
        let url = dead_url().await;
        let connector = Connector::start(&refs(&provider_settings(option, &url, "5"))).await;
        let answer = attempt(&connector, option).await;
        assert_unavailable(&answer);
        assert!(
            answer.body["error"]
                .as_str()
                .unwrap()
                .contains(if option == "TwilioApp" {
                    "Twilio"
                } else {
                    option
                }),
            "{answer:?}"
        );
        assert_reason_hides_the_token(&connector, option).await;
    }
}

#[tokio::test]
async fn provider_errors_and_unreadable_answers_answer_503() {
    for option in HTTP_PROVIDERS {
        for reply in [
            Reply::Json(500, json!({"error": "internal"})),
            Reply::Json(503, json!({"error": "maintenance"})),
            Reply::Json(429, json!({"error": "slow down"})),
        ] {
            let provider = StandIn::start(reply).await;
            let connector =
                Connector::start(&refs(&provider_settings(option, &provider.url, "5"))).await;
            assert_unavailable(&attempt(&connector, option).await);
        }
    }
    // 200 with a body that is not the expected JSON (e.g. a proxy's HTML page).
    for option in ["Salesforce", "SalesforceLWC", "TwilioApp"] {
        let provider = StandIn::start(StandIn::ok(json!("<html>"))).await;
        let connector =
            Connector::start(&refs(&provider_settings(option, &provider.url, "5"))).await;
        assert_unavailable(&attempt(&connector, option).await);
    }
}

// ---------------------------------------------------------------------------------------------
// /register bodies

/// The user a token carries, read from its payload the way desktops read a token (the
/// Salesforce LWC decodes it to find `exp`): plain base64url JSON.
fn token_user(answer: &Answer) -> Value {
    let token = answer.body["token"].as_str().expect("a token");
    let payload = token.split('.').nth(1).expect("a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    let claims: Value = serde_json::from_slice(&bytes).expect("JSON claims");
    claims["gcp_agent_assist_user"].clone()
}

/// `/register` reads its body as the Python service does: `get_json(force=True, silent=True)`
/// (`ui-connector/main.py:104` at 9425334) whatever the content type, so an unparsable body is
/// no body; then `generate_jwt` (`auth.py:70-78`) writes `""` for a falsy body and
/// `body.get('gcp_agent_assist_user')` otherwise, as given (a number stays a number, an object
/// without the field gives `null`). Python answered 500 for truthy non-objects; we give `""`.
#[tokio::test]
async fn register_bodies() {
    let provider = StandIn::start(StandIn::ok(userinfo(ORG_18))).await;
    let connector = Connector::start(&refs(&salesforce("Salesforce", ORG_18, &provider))).await;

    let cases: [(Option<&str>, Option<&str>, Value); 14] = [
        (None, None, json!("")),
        (Some(""), None, json!("")),
        (Some("{}"), Some("application/json"), json!("")),
        (Some("null"), Some("application/json"), json!("")),
        (Some("not json"), Some("application/json"), json!("")),
        (Some("not json"), None, json!("")),
        (Some("[]"), Some("application/json"), json!("")),
        (
            Some(r#"{"gcp_agent_assist_user": "plain"}"#),
            Some("text/plain"),
            json!("plain"),
        ),
        (
            Some(r#"{"gcp_agent_assist_user": 7}"#),
            Some("application/json"),
            json!(7),
        ),
        (
            Some(r#"{"gcp_agent_assist_user": {"a": [1]}}"#),
            Some("application/json"),
            json!({"a": [1]}),
        ),
        (
            Some(r#"{"gcp_agent_assist_user": null}"#),
            Some("application/json"),
            Value::Null,
        ),
        (Some(r#"{"x": 1}"#), Some("application/json"), Value::Null),
        (Some("[1, 2]"), Some("application/json"), json!("")),
        (Some(r#""abc""#), Some("application/json"), json!("")),
    ];
    for (body, content_type, user) in &cases {
        let answer = connector
            .post("/register", Some("t"), *body, *content_type)
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{body:?}: {answer:?}");
        assert_eq!(&token_user(&answer), user, "{body:?}");
        let token = answer.body["token"].as_str().unwrap();
        connector
            .app
            .jwt()
            .verify(token)
            .expect("the token verifies");
    }
    assert_eq!(provider.requests().len(), cases.len());

    // The platform is asked first (`main.py:101-103`): whatever the body, no token without it.
    let refused = StandIn::start(Reply::Json(401, json!({"error": "invalid_token"}))).await;
    let connector_refusing =
        Connector::start(&refs(&salesforce("Salesforce", ORG_18, &refused))).await;
    assert_unauthorised(
        &connector_refusing
            .post("/register", Some("t"), Some("not json"), None)
            .await,
    );

    // Only POST.
    let response = connector
        .http
        .get(format!("{}/register", connector.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

// ---------------------------------------------------------------------------------------------
// /register-app

fn twilio_app(provider: &StandIn) -> Vec<(&'static str, String)> {
    vec![
        ("APP_AUTH_OPTION", "Twilio".to_owned()),
        ("TWILIO_ACCOUNT_SID", TWILIO_SID.to_owned()),
        (
            "TWILIO_ACCOUNTS_BASE_URL",
            format!("{}/2010-04-01/Accounts/", provider.url),
        ),
    ]
}

#[tokio::test]
async fn register_app_accepts_the_configured_twilio_account() {
    let provider = StandIn::start(StandIn::ok(
        json!({"sid": TWILIO_SID, "friendly_name": "Main", "status": "active"}),
    ))
    .await;
    let connector = Connector::start(&refs(&twilio_app(&provider))).await;
    let answer = connector
        .register_app(&format!(
            r#"{{"accountSid": "{TWILIO_SID}", "authToken": "auth-token-1"}}"#
        ))
        .await;
    connector.assert_token_for(&answer, TWILIO_SID);
    let request = provider.only_request();
    assert_eq!(request.method, "GET");
    assert_eq!(
        request.path,
        format!("/2010-04-01/Accounts/{TWILIO_SID}.json")
    );
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{TWILIO_SID}:auth-token-1"));
    assert_eq!(
        request.authorization.as_deref(),
        Some(format!("Basic {basic}").as_str())
    );
    // /register is still closed: only APP_AUTH_OPTION is set.
    assert_unauthorised(&connector.register(Some("t"), None).await);
}

#[tokio::test]
async fn register_app_refusals() {
    let body = format!(r#"{{"accountSid": "{TWILIO_SID}", "authToken": "wrong"}}"#);

    // Twilio refuses the credentials.
    let provider = StandIn::start(Reply::Json(401, json!({"code": 20003}))).await;
    let connector = Connector::start(&refs(&twilio_app(&provider))).await;
    let answer = connector.register_app(&body).await;
    assert_unauthorised(&answer);
    assert_eq!(
        answer.authentication.as_deref(),
        Some("valid application level auth required")
    );

    // Twilio answers for another account.
    let provider = StandIn::start(StandIn::ok(
        json!({"sid": "AC99999999999999999999999999999999"}),
    ))
    .await;
    let connector = Connector::start(&refs(&twilio_app(&provider))).await;
    assert_unauthorised(&connector.register_app(&body).await);
    let provider_requests = provider.requests().len();

    // Bad bodies: 400, Twilio not asked.
    for (bad, mentions) in [
        ("", "not valid JSON"),
        ("not json", "not valid JSON"),
        (r#"{"accountSid": "AC1"}"#, "missing"),
        (r#"{"accountSid": 1, "authToken": "t"}"#, "wrong type"),
        (
            r#"{"accountSid": "", "authToken": "t"}"#,
            "must not be empty",
        ),
        (
            r#"{"accountSid": "AC1", "authToken": ""}"#,
            "must not be empty",
        ),
    ] {
        assert_bad_request(&connector.register_app(bad).await, mentions);
    }
    assert_eq!(provider.requests().len(), provider_requests);
}

// ---------------------------------------------------------------------------------------------
// Configuration

#[test]
fn configuration_defaults() {
    let config = auth_config(&[]);
    assert!(config.platform.is_none());
    assert!(config.app.is_none());
    assert_eq!(config.timeout, Duration::from_secs(5));

    let config = auth_config(&[
        ("AUTH_OPTION", "Salesforce"),
        ("SALESFORCE_ORGANIZATION_ID", ORG_18),
    ]);
    match config.platform {
        Some(PlatformConfig::Salesforce(c)) => {
            assert_eq!(c.base_url, "https://login.salesforce.com");
            assert_eq!(c.organization_id, ORG_18);
        }
        other => panic!("{other:?}"),
    }

    let config = auth_config(&[
        ("AUTH_OPTION", " SalesforceLWC "),
        ("SALESFORCE_ORGANIZATION_ID", ORG_15),
        ("SALESFORCE_DOMAIN", "example.my.salesforce.com"),
        ("AUTH_TIMEOUT_SECONDS", "1.5"),
    ]);
    match config.platform {
        Some(PlatformConfig::SalesforceLwc(c)) => {
            assert_eq!(c.base_url, "https://example.my.salesforce.com")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(config.timeout, Duration::from_millis(1500));

    match auth_config(&[("AUTH_OPTION", "GenesysCloud")]).platform {
        Some(PlatformConfig::GenesysCloud(c)) => {
            assert_eq!(c.base_url, "https://api.mypurecloud.com")
        }
        other => panic!("{other:?}"),
    }
    match auth_config(&[
        ("AUTH_OPTION", "GenesysCloud"),
        ("GENESYS_CLOUD_ENVIRONMENT", "mypurecloud.de"),
    ])
    .platform
    {
        Some(PlatformConfig::GenesysCloud(c)) => {
            assert_eq!(c.base_url, "https://api.mypurecloud.de")
        }
        other => panic!("{other:?}"),
    }
    match auth_config(&[
        ("AUTH_OPTION", "Twilio"),
        ("TWILIO_FLEX_ENVIRONMENT", "my-flex-1234.twil.io"),
    ])
    .platform
    {
        Some(PlatformConfig::Twilio(c)) => assert_eq!(c.base_url, "https://my-flex-1234.twil.io"),
        other => panic!("{other:?}"),
    }
    match auth_config(&[
        ("APP_AUTH_OPTION", "Twilio"),
        ("TWILIO_ACCOUNT_SID", TWILIO_SID),
    ])
    .app
    {
        Some(AppAuthConfig::Twilio(c)) => {
            assert_eq!(
                c.accounts_base_url,
                "https://api.twilio.com/2010-04-01/Accounts"
            );
            assert_eq!(c.account_sid, TWILIO_SID);
        }
        other => panic!("{other:?}"),
    }

    // The Five9 secret never shows in Debug output (the config is logged at start by some).
    let config = auth_config(&[
        ("AUTH_OPTION", "Five9"),
        ("FIVE9_TRUST_TOKEN", FIVE9_SECRET),
    ]);
    let debug = format!("{config:?}");
    assert!(!debug.contains(FIVE9_SECRET), "{debug}");
    assert!(matches!(config.platform, Some(PlatformConfig::Five9(_))));
    assert!(matches!(
        auth_config(&[("AUTH_OPTION", "Skip")]).platform,
        Some(PlatformConfig::Skip)
    ));
}

#[test]
fn configuration_errors_name_the_setting() {
    let cases: &[(&[(&'static str, &str)], &str)] = &[
        (&[("AUTH_OPTION", "Okta")], "AUTH_OPTION"),
        (&[("AUTH_OPTION", "salesforce")], "AUTH_OPTION"),
        (
            &[("AUTH_OPTION", "Salesforce")],
            "SALESFORCE_ORGANIZATION_ID",
        ),
        (
            &[
                ("AUTH_OPTION", "Salesforce"),
                ("SALESFORCE_ORGANIZATION_ID", "YOUR_ORGANIZATION_ID"),
            ],
            "SALESFORCE_ORGANIZATION_ID",
        ),
        (
            &[
                ("AUTH_OPTION", "SalesforceLWC"),
                ("SALESFORCE_ORGANIZATION_ID", "00D5g"),
            ],
            "SALESFORCE_ORGANIZATION_ID",
        ),
        (
            &[
                ("AUTH_OPTION", "SalesforceLWC"),
                ("SALESFORCE_ORGANIZATION_ID", ORG_18),
            ],
            "SALESFORCE_DOMAIN",
        ),
        (
            &[
                ("AUTH_OPTION", "Salesforce"),
                ("SALESFORCE_ORGANIZATION_ID", ORG_18),
                ("SALESFORCE_DOMAIN", "https://example.my.salesforce.com"),
            ],
            "SALESFORCE_DOMAIN",
        ),
        (
            &[
                ("AUTH_OPTION", "Salesforce"),
                ("SALESFORCE_ORGANIZATION_ID", ORG_18),
                ("SALESFORCE_BASE_URL", "ftp://example.com"),
            ],
            "SALESFORCE_BASE_URL",
        ),
        (
            &[
                ("AUTH_OPTION", "GenesysCloud"),
                ("GENESYS_CLOUD_BASE_URL", "not a url"),
            ],
            "GENESYS_CLOUD_BASE_URL",
        ),
        (
            &[
                ("AUTH_OPTION", "GenesysCloud"),
                ("GENESYS_CLOUD_ENVIRONMENT", "a/b"),
            ],
            "GENESYS_CLOUD_ENVIRONMENT",
        ),
        (&[("AUTH_OPTION", "Twilio")], "TWILIO_FLEX_ENVIRONMENT"),
        (
            &[
                ("AUTH_OPTION", "Twilio"),
                ("TWILIO_FLEX_ENVIRONMENT", "YOUR_DOMAIN.twil.io"),
            ],
            "TWILIO_FLEX_ENVIRONMENT",
        ),
        (&[("AUTH_OPTION", "Five9")], "FIVE9_TRUST_TOKEN"),
        (
            &[
                ("AUTH_OPTION", "Five9"),
                ("FIVE9_TRUST_TOKEN", "YOUR_FIVE9_TRUST_TOKEN"),
            ],
            "FIVE9_TRUST_TOKEN",
        ),
        (&[("APP_AUTH_OPTION", "Twilio")], "TWILIO_ACCOUNT_SID"),
        (
            &[
                ("APP_AUTH_OPTION", "Twilio"),
                ("TWILIO_ACCOUNT_SID", "YOUR_TWILIO_ACCOUNT_SID"),
            ],
            "TWILIO_ACCOUNT_SID",
        ),
        (
            &[
                ("APP_AUTH_OPTION", "Twilio"),
                ("TWILIO_ACCOUNT_SID", TWILIO_SID),
                ("TWILIO_ACCOUNTS_BASE_URL", "https://example.com/?q=1"),
            ],
            "TWILIO_ACCOUNTS_BASE_URL",
        ),
        (&[("APP_AUTH_OPTION", "Okta")], "APP_AUTH_OPTION"),
        (&[("AUTH_TIMEOUT_SECONDS", "0")], "AUTH_TIMEOUT_SECONDS"),
        (&[("AUTH_TIMEOUT_SECONDS", "-1")], "AUTH_TIMEOUT_SECONDS"),
        (&[("AUTH_TIMEOUT_SECONDS", "five")], "AUTH_TIMEOUT_SECONDS"),
        (&[("AUTH_TIMEOUT_SECONDS", "NaN")], "AUTH_TIMEOUT_SECONDS"),
        (
            &[("AUTH_TIMEOUT_SECONDS", "100000")],
            "AUTH_TIMEOUT_SECONDS",
        ),
    ];
    for (settings, variable) in cases {
        let error = try_auth_config(settings).expect_err(&format!("{settings:?} must fail"));
        assert_eq!(error.variable, *variable, "{settings:?}: {error}");
        assert!(error.to_string().contains(variable), "{error}");
    }
    let error = try_auth_config(&[("AUTH_OPTION", "Okta")]).unwrap_err();
    assert!(
        error.reason.contains("SalesforceLWC"),
        "lists the options: {error}"
    );
}
