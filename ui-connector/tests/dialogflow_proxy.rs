//! The Dialogflow proxy end to end: the real connector router on 127.0.0.1, a stand-in
//! Dialogflow (and token server) on 127.0.0.1, driven with `reqwest` and, for paths a URL
//! library would normalise, raw HTTP/1.1.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use agent_assist_test_support::TestConnector;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use ui_connector::dialogflow_proxy::ProxyConfig;
use ui_connector::jwt::{now_secs, Claims, JwtKeys};

const PROJECT: &str = "test-project";
const CLIENT_EMAIL: &str = "connector@test-project.iam.gserviceaccount.com";
const KEY_ID: &str = "test-key-1";
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

/// `{"name":"projects/test-project/locations/global/conversations/gzip","lifecycleState":"IN_PROGRESS"}`
/// compressed with `gzip -9n`.
const GZIP_BODY: [u8; 105] = [
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xab, 0x56, 0xca, 0x4b, 0xcc, 0x4d,
    0x55, 0xb2, 0x52, 0x2a, 0x28, 0xca, 0xcf, 0x4a, 0x4d, 0x2e, 0x29, 0xd6, 0x2f, 0x49, 0x2d, 0x2e,
    0xd1, 0x85, 0xf2, 0xf4, 0x73, 0xf2, 0x93, 0x13, 0x4b, 0x32, 0xf3, 0xf3, 0x8a, 0xf5, 0xd3, 0x73,
    0xf2, 0x93, 0x12, 0x73, 0xf4, 0x93, 0xf3, 0xf3, 0xca, 0x52, 0x8b, 0x8a, 0x61, 0x82, 0x55, 0x99,
    0x05, 0x4a, 0x3a, 0x4a, 0x39, 0x99, 0x69, 0xa9, 0xc9, 0x95, 0xc9, 0x39, 0xa9, 0xc1, 0x25, 0x89,
    0x25, 0x20, 0xc3, 0x3c, 0xfd, 0xe2, 0x03, 0x82, 0xfc, 0xdd, 0x83, 0x5c, 0x83, 0x83, 0x95, 0x6a,
    0x01, 0xbf, 0x0b, 0xff, 0x26, 0x63, 0x00, 0x00, 0x00,
];

/// Chunks of the large streamed response.
const BIG_CHUNK: usize = 256 * 1024;
const BIG_CHUNKS: usize = 16;

// ---------------------------------------------------------------------------------------------
// Keys and files

/// A fresh RSA key from `openssl` when it is installed, else the fixed test key below:
/// (PKCS#8 private key PEM, public key PEM).
fn rsa_key() -> &'static (String, String) {
    static KEY: OnceLock<(String, String)> = OnceLock::new();
    KEY.get_or_init(|| {
        generate_with_openssl().unwrap_or_else(|| {
            (
                FALLBACK_PRIVATE_KEY.to_owned(),
                FALLBACK_PUBLIC_KEY.to_owned(),
            )
        })
    })
}

fn generate_with_openssl() -> Option<(String, String)> {
    use std::process::{Command, Stdio};
    let private = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let private = String::from_utf8(private.stdout).ok()?;
    let dir = TempDir::new();
    let path = dir.path.join("key.pem");
    std::fs::write(&path, &private).ok()?;
    let public = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&path)
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let public = String::from_utf8(public.stdout).ok()?;
    private
        .contains("BEGIN PRIVATE KEY")
        .then_some((private, public))
}

/// The PKCS#1 `RSAPublicKey` inside a 2048-bit key's SubjectPublicKeyInfo PEM (what
/// `jsonwebtoken` takes without its `use_pem` feature).
fn pkcs1_public_key(spki_pem: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = spki_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    // SEQUENCE { SEQUENCE { rsaEncryption OID, NULL }, BIT STRING (0 unused bits) { ... } }
    const SPKI_RSA_2048_PREFIX: [u8; 24] = [
        0x30, 0x82, 0x01, 0x22, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
        0x01, 0x01, 0x05, 0x00, 0x03, 0x82, 0x01, 0x0f, 0x00,
    ];
    assert_eq!(
        der[..24],
        SPKI_RSA_2048_PREFIX,
        "not a 2048-bit RSA public key"
    );
    der[24..].to_vec()
}

/// A directory removed when dropped.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "dialogflow-proxy-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self { path }
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn service_account_key(token_uri: &str) -> String {
    json!({
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": KEY_ID,
        "private_key": rsa_key().0,
        "client_email": CLIENT_EMAIL,
        "client_id": "123",
        "token_uri": token_uri,
    })
    .to_string()
}

// ---------------------------------------------------------------------------------------------
// Stand-in Dialogflow

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone, Default)]
struct StandIn {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Released by the test once it has the first chunk of `/big`.
    big_gate: Arc<Mutex<Option<oneshot::Receiver<()>>>>,
}

impl StandIn {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn only(&self) -> Seen {
        let seen = self.seen();
        assert_eq!(seen.len(), 1, "{seen:#?}");
        seen.into_iter().next().unwrap()
    }

    fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }
}

async fn spawn(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn start_stand_in() -> (StandIn, SocketAddr) {
    let stand_in = StandIn::default();
    let app = Router::new()
        .fallback(dialogflow)
        .with_state(stand_in.clone());
    (stand_in, spawn(app).await)
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json; charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

/// Answers like Dialogflow; the last path segment picks a behaviour.
async fn dialogflow(State(stand_in): State<StandIn>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let path = parts.uri.path().to_owned();
    stand_in.seen.lock().unwrap().push(Seen {
        method: parts.method.clone(),
        path: path.clone(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers.clone(),
        body,
    });
    let last = path.rsplit('/').next().unwrap_or_default();
    match last {
        "gzip" => (
            [
                ("content-type", "application/json; charset=UTF-8"),
                ("content-encoding", "gzip"),
                ("vary", "Origin, X-Origin, Referer"),
            ],
            Bytes::from_static(&GZIP_BODY),
        )
            .into_response(),
        "missing" => json_response(
            StatusCode::NOT_FOUND,
            json!({"error": {"code": 404, "message": "Conversation not found.", "status": "NOT_FOUND"}}),
        ),
        "throttled" => {
            let mut response = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": {"code": 429, "message": "Quota exceeded.", "status": "RESOURCE_EXHAUSTED"}}),
            );
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("7"));
            response
        }
        "hang" => std::future::pending().await,
        "hop" => {
            let mut response = json_response(StatusCode::OK, json!({"hop": true}));
            let headers = response.headers_mut();
            headers.insert("x-end-to-end", HeaderValue::from_static("kept"));
            headers.append("x-repeated", HeaderValue::from_static("one"));
            headers.append("x-repeated", HeaderValue::from_static("two"));
            headers.insert("connection", HeaderValue::from_static("x-hop-named"));
            headers.insert("x-hop-named", HeaderValue::from_static("dropped"));
            headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
            headers.insert("proxy-authenticate", HeaderValue::from_static("Basic"));
            headers.insert(
                "alt-svc",
                HeaderValue::from_static("h3=\":443\"; ma=2592000"),
            );
            response
        }
        "stall" => {
            // One chunk, then silence with the connection open.
            let (mut tx, rx) = futures::channel::mpsc::channel::<Bytes>(1);
            tokio::spawn(async move {
                use futures::SinkExt;
                tx.send(Bytes::from_static(b"{\"partial\":")).await.unwrap();
                std::future::pending::<()>().await;
                drop(tx);
            });
            (
                [("content-type", "application/json")],
                Body::from_stream(rx.map(Ok::<_, std::convert::Infallible>)),
            )
                .into_response()
        }
        "big" => {
            let gate = stand_in
                .big_gate
                .lock()
                .unwrap()
                .take()
                .expect("one /big call");
            let (mut tx, rx) = futures::channel::mpsc::channel::<Bytes>(1);
            tokio::spawn(async move {
                use futures::SinkExt;
                tx.send(big_chunk(0)).await.unwrap();
                // The client must have the first chunk before the rest is even produced.
                gate.await.unwrap();
                for i in 1..BIG_CHUNKS {
                    tx.send(big_chunk(i)).await.unwrap();
                }
            });
            (
                [("content-type", "application/octet-stream")],
                Body::from_stream(rx.map(Ok::<_, std::convert::Infallible>)),
            )
                .into_response()
        }
        _ => {
            let mut response =
                json_response(StatusCode::OK, json!({"stand_in": true, "path": path}));
            response
                .headers_mut()
                .insert("x-upstream", HeaderValue::from_static("dialogflow"));
            response
        }
    }
}

fn big_chunk(i: usize) -> Bytes {
    Bytes::from(vec![b'a' + (i % 26) as u8; BIG_CHUNK])
}

/// A stand-in OAuth token endpoint counting its calls.
async fn start_token_server() -> (Arc<Mutex<Vec<String>>>, SocketAddr) {
    let calls: Arc<Mutex<Vec<String>>> = Arc::default();
    let app = Router::new()
        .route(
            "/token",
            axum::routing::post(
                |State(calls): State<Arc<Mutex<Vec<String>>>>, body: String| async move {
                    calls.lock().unwrap().push(body);
                    axum::Json(json!({
                        "access_token": "test-token-123",
                        "expires_in": 3600,
                        "token_type": "Bearer",
                    }))
                },
            ),
        )
        .with_state(calls.clone());
    (calls, spawn(app).await)
}

// ---------------------------------------------------------------------------------------------
// The connector

struct Harness {
    base: String,
    addr: SocketAddr,
    upstream: StandIn,
    app: TestConnector,
    token: String,
    client: reqwest::Client,
    _dir: TempDir,
}

/// The connector with its proxy pointed at a fresh stand-in, a service-account key as its
/// credentials, then `adjust` applied to the proxy settings.
async fn start(adjust: impl FnOnce(&mut ProxyConfig) + Send + 'static) -> Harness {
    let (upstream, upstream_addr) = start_stand_in().await;
    let dir = TempDir::new();
    // The library signs its own JWTs for service accounts; this address is never called.
    let key_path = dir.write(
        "service_account.json",
        &service_account_key("http://127.0.0.1:9/token"),
    );
    let app = TestConnector::builder()
        .memory_bus()
        .setting("DIALOGFLOW_API_ENDPOINT", format!("http://{upstream_addr}"))
        .setting("DIALOGFLOW_TIMEOUT_SECONDS", "10")
        .adjust(move |config| {
            config.proxy.credentials_file = Some(key_path);
            adjust(&mut config.proxy);
        })
        .spawn()
        .await;
    let token = app.token("agent@example.com");
    let client = reqwest::Client::builder().no_gzip().build().unwrap();
    Harness {
        base: app.url(""),
        addr: app.address(),
        upstream,
        app,
        token,
        client,
        _dir: dir,
    }
}

impl Harness {
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", self.token))
    }

    /// Sends `request_target` byte for byte (no URL normalisation) and returns the status.
    async fn raw(&self, method: &str, request_target: &str) -> u16 {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        let request = format!(
            "{method} {request_target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}",
            self.token
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let text = String::from_utf8_lossy(&response);
        text.split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {text:?}"))
    }
}

async fn json_body(response: reqwest::Response) -> Value {
    let bytes = response.bytes().await.unwrap();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

/// The proxy's own errors: JSON with the code and a message.
async fn assert_json_error(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let body = json_body(response).await;
    assert_eq!(body["error"]["code"], status, "{body}");
    let message = body["error"]["message"].as_str().unwrap().to_owned();
    assert_eq!(body["message"], message.as_str());
    assert!(!message.is_empty());
    message
}

const LOC: &str = "/v2/projects/test-project/locations/global";

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn every_route_and_method_is_forwarded() {
    let h = start(|_| {}).await;
    // (method, path after /projects/test-project/locations/, query, body)
    let cases: &[(Method, &str, Option<&str>, Option<&str>)] = &[
        (
            Method::POST,
            "global/conversations",
            None,
            Some(r#"{"conversationProfile":"x"}"#),
        ),
        (
            Method::POST,
            "us-central1/conversations",
            Some("conversationId=c-1"),
            Some("{}"),
        ),
        (
            Method::POST,
            "global/suggestions:searchKnowledge",
            None,
            Some(r#"{"query":{"text":"hi"}}"#),
        ),
        (
            Method::POST,
            "global/statelessSuggestion:generate",
            None,
            Some(r#"{"generator":{}}"#),
        ),
        (Method::GET, "global/conversations/c1", None, None),
        (
            Method::GET,
            "europe-west2/conversations/c1/messages",
            Some("pageSize=5&filter=a%3Db"),
            None,
        ),
        (
            Method::GET,
            "global/conversations/c1/participants",
            None,
            None,
        ),
        (
            Method::GET,
            "global/conversations/c1/participants/p1",
            None,
            None,
        ),
        (
            Method::POST,
            "global/conversations/c1/participants/p1:analyzeContent",
            None,
            Some(r#"{"textInput":{"text":"hello"}}"#),
        ),
        (
            Method::POST,
            "global/conversations/c1/participants",
            None,
            Some(r#"{"role":"HUMAN_AGENT"}"#),
        ),
        (
            Method::POST,
            "global/conversations/c1/messages:batchCreate",
            None,
            Some(r#"{"requests":[]}"#),
        ),
        (
            Method::POST,
            "global/conversations/c1/suggestions:suggestConversationSummary",
            None,
            Some("{}"),
        ),
        (
            Method::PATCH,
            "global/conversations/c1/participants/p1",
            Some("updateMask=role"),
            Some(r#"{"role":"END_USER"}"#),
        ),
        (
            Method::PATCH,
            "global/answerRecords/a1",
            Some("updateMask=answerFeedback"),
            Some(r#"{"answerFeedback":{"clicked":true}}"#),
        ),
        (Method::GET, "global/conversationProfiles/cp1", None, None),
        (Method::GET, "global/conversationModels/m1", None, None),
        (Method::GET, "us-central1/generators/g1", None, None),
    ];
    for version in ["v2", "v2beta1"] {
        for (method, rest, query, body) in cases {
            h.upstream.clear();
            let path = format!("/{version}/projects/{PROJECT}/locations/{rest}");
            let url = match query {
                Some(q) => format!("{path}?{q}"),
                None => path.clone(),
            };
            let mut request = h
                .request(method.clone(), &url)
                .header("cookie", "session=desktop")
                .header("x-goog-user-project", "someone-elses-project")
                .header("accept", "application/json")
                .header("accept-language", "fr-CA");
            if let Some(body) = body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.to_string());
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200, "{method} {url}");
            assert_eq!(response.headers()["x-upstream"], "dialogflow");
            assert_eq!(json_body(response).await["path"], path.as_str());

            let seen = h.upstream.only();
            assert_eq!(&seen.method, method, "{url}");
            assert_eq!(seen.path, path);
            assert_eq!(seen.query.as_deref(), *query);
            assert_eq!(seen.body, body.unwrap_or_default().as_bytes(), "{url}");
            let auth = seen.headers["authorization"].to_str().unwrap();
            assert!(auth.starts_with("Bearer "), "{auth}");
            assert!(!auth.contains(&h.token), "the desktop's JWT went upstream");
            assert!(seen.headers.get("cookie").is_none());
            assert!(seen.headers.get("x-goog-user-project").is_none());
            assert_eq!(seen.headers["accept"], "application/json");
            assert_eq!(seen.headers["accept-language"], "fr-CA");
            assert!(seen.headers["user-agent"]
                .to_str()
                .unwrap()
                .starts_with("agent-assist-ui-connector/"));
            if body.is_some() {
                assert_eq!(seen.headers["content-type"], "application/json");
            }
        }
    }
}

#[tokio::test]
async fn complete_is_sent_with_an_empty_body() {
    let h = start(|_| {}).await;
    let response = h
        .request(Method::POST, &format!("{LOC}/conversations/c1:complete"))
        .header("content-type", "application/json")
        .body(r#"{"ignored":true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = h.upstream.only();
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.path, format!("{LOC}/conversations/c1:complete"));
    assert!(seen.body.is_empty());
    assert_eq!(seen.headers["content-length"], "0");
}

#[tokio::test]
async fn wrong_methods_are_405() {
    let h = start(|_| {}).await;
    let cases = [
        (Method::GET, format!("{LOC}/conversations"), "POST"),
        (Method::PATCH, format!("{LOC}/conversations"), "POST"),
        (
            Method::DELETE,
            format!("{LOC}/conversations/c1"),
            "GET, POST, PATCH",
        ),
        (
            Method::PUT,
            format!("{LOC}/conversations/c1"),
            "GET, POST, PATCH",
        ),
        (
            Method::GET,
            format!("{LOC}/suggestions:searchKnowledge"),
            "POST",
        ),
        (
            Method::GET,
            format!("{LOC}/statelessSuggestion:generate"),
            "POST",
        ),
        (Method::GET, format!("{LOC}/answerRecords/a1"), "PATCH"),
        (Method::POST, format!("{LOC}/answerRecords/a1"), "PATCH"),
        (
            Method::PATCH,
            format!("{LOC}/conversationProfiles/cp1"),
            "GET",
        ),
        (Method::POST, format!("{LOC}/conversationModels/m1"), "GET"),
        (Method::DELETE, format!("{LOC}/generators/g1"), "GET"),
    ];
    for (method, path, allow) in cases {
        let response = h.request(method.clone(), &path).send().await.unwrap();
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
        assert_json_error(response, 405).await;
    }
    assert!(h.upstream.seen().is_empty());
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let h = start(|_| {}).await;
    let cases = [
        (Method::GET, format!("{LOC}/agents/a1")),
        (Method::GET, format!("{LOC}/answerRecords")),
        (Method::PATCH, format!("{LOC}/answerRecords")),
        (Method::GET, format!("{LOC}/conversationProfiles")),
        (Method::POST, format!("{LOC}/suggestions:searchKnowledge/x")),
        (
            Method::POST,
            format!("{LOC}/statelessSuggestion:generate/x"),
        ),
        (Method::GET, LOC.to_owned()),
        (
            Method::POST,
            "/v2/projects/test-project/agent/sessions/s1:detectIntent".to_owned(),
        ),
        (
            Method::GET,
            "/v2/projects/test-project/conversations/c1".to_owned(),
        ),
        (
            Method::POST,
            "/v2/projects/test-project/locations/global/Conversations".to_owned(),
        ),
        (
            Method::GET,
            "/version2/projects/test-project/locations/global/conversations/c1".to_owned(),
        ),
    ];
    for (method, path) in cases {
        let response = h.request(method.clone(), &path).send().await.unwrap();
        assert_json_error(response, 404).await;
    }
    // Outside the proxy's paths altogether: the app's own 404.
    let response = h
        .request(Method::GET, "/v2/operations/o1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(h.upstream.seen().is_empty());
}

#[tokio::test]
async fn unsafe_paths_are_400_and_never_sent() {
    let h = start(|_| {}).await;
    let conv = "/v2/projects/test-project/locations/global/conversations";
    let cases = [
        format!("{conv}/.."),
        format!("{conv}/c1/../../../other-project"),
        format!("{conv}/."),
        format!("{conv}/%2e%2e"),
        format!("{conv}/%2E"),
        format!("{conv}/c1%2F..%2F..%2Fx"),
        format!("{conv}/c1%2fx"),
        format!("{conv}/c1%5Cx"),
        format!("{conv}/c1%5cx"),
        format!("{conv}/c1\\x"),
        format!("{conv}/c1@evil.example"),
        format!("{conv}/c1%40evil.example"),
        format!("{conv}//evil.example"),
        format!("{conv}/c1/"),
        format!("{conv}/c1%zz"),
        "/v2/projects//locations/global/conversations".to_owned(),
        "/v2/projects/test-project%2F../locations/global/conversations".to_owned(),
        "/v2/projects/test-project/locations/evil.example/conversations".to_owned(),
        "/v2/projects/test-project/locations/evil.example:443/conversations".to_owned(),
        "/v2/projects/test-project/locations/x@evil.example/conversations".to_owned(),
        "/v2/projects/test-project/locations/glob%61l/conversations".to_owned(),
        "/v2/projects/test-project/locations/-global/conversations".to_owned(),
    ];
    for target in &cases {
        for method in ["GET", "POST"] {
            assert_eq!(h.raw(method, target).await, 400, "{method} {target}");
        }
    }
    // Shapes outside the proxy's routes never reach it either.
    assert_eq!(
        h.raw(
            "POST",
            "//evil.example/v2/projects/test-project/locations/global/conversations"
        )
        .await,
        404
    );
    assert!(h.upstream.seen().is_empty(), "{:#?}", h.upstream.seen());
    // The same raw client gets through with a sound path.
    assert_eq!(h.raw("POST", &format!("{conv}/c1:complete")).await, 200);
    assert_eq!(h.upstream.only().path, format!("{conv}/c1:complete"));
}

#[tokio::test]
async fn projects_outside_the_allow_list_are_403() {
    let h = start(|p| p.allowed_projects = vec![PROJECT.into(), "123456789012".into()]).await;
    for path in [
        "/v2/projects/other-project/locations/global/conversations",
        "/v2/projects/test-project-2/locations/global/conversations",
        "/v2/projects/TEST-PROJECT/locations/global/conversations",
        "/v2/projects/test%2Dproject/locations/global/conversations",
    ] {
        let response = h
            .request(Method::POST, path)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_json_error(response, 403).await;
    }
    assert!(h.upstream.seen().is_empty());
    // Project numbers work when listed.
    let response = h
        .request(
            Method::GET,
            "/v2/projects/123456789012/locations/global/conversations/c1",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        h.upstream.only().path,
        "/v2/projects/123456789012/locations/global/conversations/c1"
    );
}

#[tokio::test]
async fn missing_and_invalid_jwts_are_401() {
    let h = start(|_| {}).await;
    let path = format!("{LOC}/conversations/c1");
    let url = format!("{}{path}", h.base);

    let response = h.client.get(&url).send().await.unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(assert_json_error(response, 401).await, "missing token");

    let other = JwtKeys::new(b"another-secret", PROJECT.into(), Duration::from_secs(60));
    let expired = h.app.jwt().sign(&Claims {
        exp: now_secs() - 10,
        gcp_agent_assist_project: PROJECT.into(),
        gcp_agent_assist_user: "agent".into(),
    });
    let foreign = h.app.jwt().sign(&Claims {
        exp: now_secs() + 600,
        gcp_agent_assist_project: "other-project".into(),
        gcp_agent_assist_user: "agent".into(),
    });
    for (authorization, reason) in [
        ("Bearer ".to_owned(), "missing token"),
        ("garbage".to_owned(), "malformed token"),
        (
            format!("Bearer {}", other.issue("agent")),
            "invalid token signature",
        ),
        (format!("Bearer {expired}"), "token has expired"),
        (foreign, "token is for another project"),
    ] {
        let response = h
            .client
            .post(&url)
            .header("authorization", authorization)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(assert_json_error(response, 401).await, reason);
    }
    assert!(h.upstream.seen().is_empty());
    // Without the `Bearer ` prefix the token is accepted too.
    let response = h
        .client
        .get(&url)
        .header("authorization", &h.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn upstream_errors_are_relayed_unchanged() {
    let h = start(|_| {}).await;
    let response = h
        .request(Method::GET, &format!("{LOC}/conversations/missing"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=UTF-8"
    );
    assert_eq!(
        json_body(response).await,
        json!({"error": {"code": 404, "message": "Conversation not found.", "status": "NOT_FOUND"}})
    );

    let response = h
        .request(
            Method::POST,
            &format!("{LOC}/conversations/c1/participants/throttled"),
        )
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(
        json_body(response).await,
        json!({"error": {"code": 429, "message": "Quota exceeded.", "status": "RESOURCE_EXHAUSTED"}})
    );

    // Both relayed calls are counted by status.
    let metrics = h
        .client
        .get(format!("{}/metrics", h.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for status in [404, 429] {
        let line = format!("connector_proxy_requests_total{{status=\"{status}\"}} 1");
        assert!(metrics.contains(&line), "{line} missing from:\n{metrics}");
    }
    assert!(
        metrics.contains("connector_proxy_request_seconds_count 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn compressed_bodies_pass_through_unchanged() {
    let h = start(|_| {}).await;
    let response = h
        .request(Method::GET, &format!("{LOC}/conversations/gzip"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    assert_eq!(response.headers()["vary"], "Origin, X-Origin, Referer");
    let body = response.bytes().await.unwrap();
    assert_eq!(&body[..], &GZIP_BODY[..]);
    assert_eq!(h.upstream.only().headers["accept-encoding"], "gzip");
}

#[tokio::test]
async fn hop_by_hop_headers_are_dropped_both_ways() {
    let h = start(|_| {}).await;
    let response = h
        .request(Method::GET, &format!("{LOC}/conversations/hop"))
        .header("connection", "accept-language")
        .header("accept-language", "fr-CA")
        .header("keep-alive", "timeout=5")
        .header("te", "trailers")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .header("x-desktop-extra", "not forwarded")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers["x-end-to-end"], "kept");
    let repeated: Vec<_> = headers.get_all("x-repeated").iter().collect();
    assert_eq!(repeated, ["one", "two"]);
    for dropped in ["x-hop-named", "keep-alive", "proxy-authenticate", "alt-svc"] {
        assert!(headers.get(dropped).is_none(), "{dropped} was relayed");
    }
    if let Some(connection) = headers.get("connection") {
        assert!(!connection.to_str().unwrap().contains("x-hop-named"));
    }

    let seen = h.upstream.only();
    for dropped in [
        "accept-language",
        "keep-alive",
        "te",
        "proxy-authorization",
        "x-desktop-extra",
    ] {
        assert!(
            seen.headers.get(dropped).is_none(),
            "{dropped} was forwarded"
        );
    }
}

#[tokio::test]
async fn large_responses_are_streamed() {
    let h = start(|_| {}).await;
    let (release, gate) = oneshot::channel();
    *h.upstream.big_gate.lock().unwrap() = Some(gate);
    let check = async {
        let mut response = h
            .request(Method::GET, &format!("{LOC}/conversations/big"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let mut received = Vec::with_capacity(BIG_CHUNK * BIG_CHUNKS);
        // The stand-in holds back everything after the first chunk until told to go on, so this
        // only completes if the proxy relays data before the upstream body is complete.
        while received.len() < BIG_CHUNK {
            let chunk = response.chunk().await.unwrap().expect("body ended early");
            received.extend_from_slice(&chunk);
        }
        assert_eq!(received.len(), BIG_CHUNK);
        release.send(()).unwrap();
        while let Some(chunk) = response.chunk().await.unwrap() {
            received.extend_from_slice(&chunk);
        }
        received
    };
    // A guard so a buffering proxy fails the test instead of hanging it; not synchronisation.
    let received = tokio::time::timeout(Duration::from_secs(60), check)
        .await
        .expect("the proxy did not stream the response");
    assert_eq!(received.len(), BIG_CHUNK * BIG_CHUNKS);
    for (i, chunk) in received.chunks(BIG_CHUNK).enumerate() {
        assert_eq!(chunk, &big_chunk(i)[..], "chunk {i}");
    }
}

#[tokio::test]
async fn unreachable_upstream_is_502() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let h = start(move |p| p.api_endpoint = Some(format!("http://127.0.0.1:{port}"))).await;
    let response = h
        .request(Method::GET, &format!("{LOC}/conversations/c1"))
        .send()
        .await
        .unwrap();
    assert_json_error(response, 502).await;
}

#[tokio::test]
async fn slow_upstream_is_504() {
    let h = start(|p| p.timeout = Duration::from_secs(1)).await;
    let started = std::time::Instant::now();
    let response = h
        .request(Method::POST, &format!("{LOC}/conversations/hang"))
        .body("{}")
        .send()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_json_error(response, 504).await;
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert_eq!(h.upstream.only().path, format!("{LOC}/conversations/hang"));
}

#[tokio::test]
async fn a_stalled_response_body_is_cut_off() {
    let h = start(|p| p.timeout = Duration::from_secs(1)).await;
    let check = async {
        let mut response = h
            .request(Method::GET, &format!("{LOC}/conversations/stall"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let mut received = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => received.extend_from_slice(&chunk),
                Ok(None) => panic!("the body ended cleanly after {received:?}"),
                Err(_) => break,
            }
        }
        received
    };
    let received = tokio::time::timeout(Duration::from_secs(30), check)
        .await
        .expect("the stalled body was never cut off");
    assert_eq!(received, br#"{"partial":"#);
}

#[tokio::test]
async fn request_bodies_over_the_limit_are_413() {
    let h = start(|p| p.max_request_bytes = 1024).await;
    let path = format!("{LOC}/conversations/c1/participants/p1:analyzeContent");
    let response = h
        .request(Method::POST, &path)
        .header("content-type", "application/json")
        .body(vec![b' '; 2048])
        .send()
        .await
        .unwrap();
    assert_json_error(response, 413).await;
    // Without a Content-Length (chunked), counted while reading.
    let chunks = futures::stream::iter(
        (0..4).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 512]))),
    );
    let response = h
        .request(
            Method::PATCH,
            &format!("{LOC}/conversations/c1/participants/p1"),
        )
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_json_error(response, 413).await;
    assert!(h.upstream.seen().is_empty());
    // At the limit is fine.
    let response = h
        .request(Method::POST, &path)
        .body(vec![b' '; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(h.upstream.only().body.len(), 1024);
}

#[tokio::test]
async fn service_account_credentials_sign_the_upstream_token() {
    let (token_calls, token_addr) = start_token_server().await;
    let dir = TempDir::new();
    let key_path = dir.write(
        "sa.json",
        &service_account_key(&format!("http://{token_addr}/token")),
    );
    let h = start(move |p| p.credentials_file = Some(key_path)).await;
    for _ in 0..2 {
        let response = h
            .request(Method::GET, &format!("{LOC}/conversationProfiles/cp1"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let seen = h.upstream.seen();
    assert_eq!(seen.len(), 2);
    let auth = seen[0].headers["authorization"].to_str().unwrap();
    // Cached by the library: the same token both times.
    assert_eq!(auth, seen[1].headers["authorization"].to_str().unwrap());
    let jwt = auth.strip_prefix("Bearer ").expect("a bearer token");

    // google-cloud-auth signs its own JWT for service-account keys (scope in the claims)
    // instead of exchanging it at token_uri: check it is signed by the generated key.
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), Some(KEY_ID));
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_aud = false;
    validation.set_issuer(&[CLIENT_EMAIL]);
    let key = jsonwebtoken::DecodingKey::from_rsa_der(&pkcs1_public_key(&rsa_key().1));
    let claims = jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], CLIENT_EMAIL);
    assert_eq!(claims["scope"], CLOUD_PLATFORM);
    assert!(token_calls.lock().unwrap().is_empty());
    assert!(seen[0].headers.get("x-goog-user-project").is_none());
}

#[tokio::test]
async fn user_credentials_are_exchanged_at_the_token_uri() {
    let (token_calls, token_addr) = start_token_server().await;
    let dir = TempDir::new();
    let path = dir.write(
        "authorized_user.json",
        &json!({
            "type": "authorized_user",
            "client_id": "test-client-id",
            "client_secret": "test-client-secret",
            "refresh_token": "test-refresh-token",
            "token_uri": format!("http://{token_addr}/token"),
        })
        .to_string(),
    );
    let h = start(move |p| p.credentials_file = Some(path)).await;
    let response = h
        .request(Method::POST, &format!("{LOC}/conversations"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        h.upstream.only().headers["authorization"],
        "Bearer test-token-123"
    );
    let calls = token_calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let exchange: Value = serde_json::from_str(&calls[0]).unwrap();
    assert_eq!(exchange["grant_type"], "refresh_token");
    assert_eq!(exchange["refresh_token"], "test-refresh-token");
}

#[tokio::test]
async fn missing_credentials_are_503_and_the_rest_still_works() {
    let h =
        start(|p| p.credentials_file = Some(PathBuf::from("/nonexistent/credentials.json"))).await;
    for _ in 0..2 {
        let response = h
            .request(Method::GET, &format!("{LOC}/conversations/c1"))
            .send()
            .await
            .unwrap();
        let message = assert_json_error(response, 503).await;
        assert!(message.contains("credentials"), "{message}");
        assert!(!message.contains("nonexistent"), "{message}");
    }
    assert!(h.upstream.seen().is_empty());
    let status = h
        .client
        .get(format!("{}/status", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 200);
}

// ---------------------------------------------------------------------------------------------

/// TEST-ONLY RSA key, used when `openssl` is not installed. It signs nothing but test tokens.
const FALLBACK_PRIVATE_KEY: &str = r"-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDMgyaqQegeZpWV
DMzngMTp6a45dQtfbuCin0Y/6yO4fIMQ5MKszB6ayqtWrtI+FeL8UFrBN10IkB05
O5nRrNlCks3Ls2qB/pbU8VAIGjSWsNQVy0qKBo1FcHeoVUiVu6MuLJpNddi0DWFv
XrEduU5NJNj/zI/3GPjyq8UFeDEIpzAPWKBAmK+ln1KUiyQU1V+HIDadbct56UDa
Owj7TRClfX0oyP+Ke1GZJif2idqKNkRESX6WBdSKwTAlTG5gOOLthdQCrng6F+XP
OvmaMU3Euh28QwvYZoxp8r4WoA0Ehdd21LAgz0vtUmzzjL8rebLHs+QLth5ubawG
PWg1C1g7AgMBAAECggEACOJ/vlt7o+p4ACWHYggARgXpaZnx+F+URxcH/G87j4sV
P0QjnacxLdoKhIsMG4y5iOr4GQx4hbk2aSNI5POPQsBRoX0LbldVooL9+O7OhGdt
PKnRdK/2g42bHTHgo+Smy7Losd8h9Cc1VEXMXbVht0yXrXvrxePiA4TpMSTOGIk6
6l6aau1dMug00g6GxTte8WwlsvatbWKz569T6v1L43BM2rG00mR1Hv6fYaZaUc6w
aMHLD7p9O7xLwhWVJ7LwLn+0ZQAEN/yX2CIwFDSlKwMEny+/n9yapvPd90v1B0KS
sQp+EvNZS01zPSVqABzrWMwgWLxRplgP3MnybXBdgQKBgQD7Lo9bNIzz1rzOX64L
1B6CqE1mWJBJo3uf6RoKCywDYNHJ0HlidPzH3R599PfVwa8rKvuOXS2nXm2QOAyg
alH+BZ9ZSabPn0prVXjHCaOFrIiwR8BrnIJDOJ5MwZ06ytTvWqZj/jytMT5DjAWo
RyeFnWjKkWU2+F3xIOOgzZsluwKBgQDQb2sDmhl6p/Xq2X6vhlcHW7xefOhhsA2i
Z9beF0RxpqjyY9/dNrUVqO5ozxuLeZj02ndj2XTHr1+kztAMyPtFOW65PVD6j5w8
WsuauX1PCo3sCRrOqiK62pN+o7zS7NXhcjoYg7tQZ/E5+EpW4NJSiPH3hIlONAP+
Io3lAtAvgQKBgFFyuJOHh8ktsY1t4x78ymPttSNhxm/KbjTdPk9RbhUuWPiK/EFb
0/fvEIshWxfaNTXXOzjfqAUkjnx8YEPIFgw7wH8QbeHXMid50K8hxf97gds/ePqs
BmVLv7D9+0DsMn3mtBuqffxfAmSey9rUL9GYyDkfSmW3xaaB1q323b8vAoGBAKxK
LM8BZeY5R9Ekjs9P4Eg4z+/al8uH1v1TkAxsdyrqc+RIIheczPpmdQs1hrM3g/OB
Uga7DQiyMgDs4pRu3SRPYPLFeFZktuQ8uOfgQ3A+bSmaLQp/H84MNrcLaV2AXxrH
bLYuzXqdMIyWa/x8Qd3vTPMoHscBv/slXNzcAnIBAoGAK2SbxkNFyrTGHl7mNlCG
FZDMuEIpmT2hRHIW4EUBI7nor6DnAmqWLp8GWqzJEgwkpJFQ9rVZpg4UFvFpTkQm
qPSmQXQPffZ6/+7sx8yL15lhSnJiusoaJJVTt/Efoh9jNE4wEiOF1MaKxmEfWcNo
8I9hf6gGFyanWpczK6YIc98=
-----END PRIVATE KEY-----
";
const FALLBACK_PUBLIC_KEY: &str = r"-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAzIMmqkHoHmaVlQzM54DE
6emuOXULX27gop9GP+sjuHyDEOTCrMwemsqrVq7SPhXi/FBawTddCJAdOTuZ0azZ
QpLNy7Nqgf6W1PFQCBo0lrDUFctKigaNRXB3qFVIlbujLiyaTXXYtA1hb16xHblO
TSTY/8yP9xj48qvFBXgxCKcwD1igQJivpZ9SlIskFNVfhyA2nW3LeelA2jsI+00Q
pX19KMj/intRmSYn9onaijZEREl+lgXUisEwJUxuYDji7YXUAq54Ohflzzr5mjFN
xLodvEML2GaMafK+FqANBIXXdtSwIM9L7VJs84y/K3myx7PkC7Yebm2sBj1oNQtY
OwIDAQAB
-----END PUBLIC KEY-----
";
