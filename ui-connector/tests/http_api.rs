//! The connector's own HTTP API over real HTTP against a real Redis: status, readiness, CORS,
//! the Engine.IO handshake, the test page, conversation integration keys and metrics. Where an
//! answer is the Python service's, the test cites the Python source (commit 9425334 of
//! GoogleCloudPlatform/agent-assist-integrations, paths under `aa-integration-backend/`).

use std::time::Duration;

use agent_assist_test_support::{ConnectorBuilder, RedisServer, TestConnector};
use serde_json::json;
use ui_connector::jwt::Claims;

struct Connector {
    app: TestConnector,
    base: String,
    http: reqwest::Client,
    token: String,
}

async fn start(
    redis: &RedisServer,
    adjust: impl FnOnce(ConnectorBuilder) -> ConnectorBuilder,
) -> Connector {
    let app = adjust(TestConnector::builder().redis(redis)).spawn().await;
    let token = app.token("agent@example.com");
    Connector {
        base: app.url(""),
        app,
        http: reqwest::Client::new(),
        token,
    }
}

#[tokio::test]
async fn status_and_ready() {
    let redis = RedisServer::start();
    let connector = start(&redis, |c| c).await;
    let response = connector
        .http
        .get(format!("{}/status", connector.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // `ui-connector/main.py:90-95` at 9425334.
    assert_eq!(response.text().await.unwrap(), "Hello, cross-origin-world!");
    let ready = connector
        .http
        .get(format!("{}/ready", connector.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

/// The CORS answers of the Python service (`ui-connector/main.py:35-36` and
/// `config.py:38` at 9425334): Flask-Cors 5.0.0 on HTTP routes echoes an allowed origin and
/// never allows credentials; python-engineio 4.11.2 (`base_server.py:312-330`, its
/// `cors_credentials=True` default) echoes the origin on `/socket.io/` with
/// `Access-Control-Allow-Credentials: true`, with `*` as with a list.
#[tokio::test]
async fn cors_answers_as_python_does() {
    let redis = RedisServer::start();
    for (origins, allowed, refused) in [
        (
            "https://desk.example, https://other.example",
            "https://desk.example",
            Some("https://evil.example"),
        ),
        ("*", "https://any.example", None),
    ] {
        let connector = start(&redis, |c| c.setting("CORS_ALLOWED_ORIGINS", origins)).await;
        let socket_io = format!("{}/socket.io/?EIO=4&transport=polling", connector.base);
        let register = format!("{}/register", connector.base);

        // Socket.IO: the origin echoed, credentials allowed (withCredentials clients connect).
        let polling = connector
            .http
            .get(&socket_io)
            .header("origin", allowed)
            .send()
            .await
            .unwrap();
        assert_eq!(polling.status(), 200, "{origins}");
        assert_eq!(polling.headers()["access-control-allow-origin"], allowed);
        assert_eq!(
            polling.headers()["access-control-allow-credentials"],
            "true"
        );
        let preflight = connector
            .http
            .request(reqwest::Method::OPTIONS, &socket_io)
            .header("origin", allowed)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.headers()["access-control-allow-origin"], allowed);
        assert_eq!(
            preflight.headers()["access-control-allow-credentials"],
            "true"
        );

        // HTTP routes: the origin echoed (not `*`), no credentials, and a preflight names the
        // requested headers: `Authorization` is never covered by a wildcard.
        let preflight = connector
            .http
            .request(reqwest::Method::OPTIONS, &register)
            .header("origin", allowed)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.headers()["access-control-allow-origin"], allowed);
        assert!(preflight
            .headers()
            .get("access-control-allow-credentials")
            .is_none());
        assert_eq!(
            preflight.headers()["access-control-allow-headers"],
            "authorization,content-type"
        );
        let methods = preflight.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .to_owned();
        for method in ["GET", "POST", "PATCH", "DELETE"] {
            assert!(methods.contains(method), "{methods}");
        }
        let status = connector
            .http
            .get(format!("{}/status", connector.base))
            .header("origin", allowed)
            .send()
            .await
            .unwrap();
        assert_eq!(status.headers()["access-control-allow-origin"], allowed);
        assert!(status.headers()["vary"]
            .to_str()
            .unwrap()
            .contains("origin"));

        if let Some(refused) = refused {
            for url in [&register, &socket_io] {
                let response = connector
                    .http
                    .request(reqwest::Method::OPTIONS, url)
                    .header("origin", refused)
                    .header("access-control-request-method", "POST")
                    .send()
                    .await
                    .unwrap();
                assert!(response
                    .headers()
                    .get("access-control-allow-origin")
                    .is_none());
                assert!(response
                    .headers()
                    .get("access-control-allow-credentials")
                    .is_none());
            }
        }
    }
}

/// The Engine.IO handshake announces python-engineio's `maxPayload` (`max_http_buffer_size`
/// default 1,000,000, `engineio/base_server.py:35-41` in python-engineio 4.11.2, pinned by
/// `ui-connector/requirements.txt` at 9425334; the Python service sets no other value).
#[tokio::test]
async fn handshake_announces_pythons_max_payload() {
    let redis = RedisServer::start();
    let connector = start(&redis, |c| c).await;
    let handshake = connector
        .http
        .get(format!(
            "{}/socket.io/?EIO=4&transport=polling",
            connector.base
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let open: serde_json::Value =
        serde_json::from_str(handshake.strip_prefix('0').expect("an open packet")).unwrap();
    assert_eq!(open["maxPayload"], 1_000_000, "{handshake}");
    assert_eq!(open["pingInterval"], 25_000);
    assert_eq!(open["pingTimeout"], 20_000);
}

/// `GET /` serves the test page in production too, as the Python connector did in every
/// deployment (`ui-connector/main.py:83-87` at 9425334).
#[tokio::test]
async fn the_test_page_is_served_in_production() {
    let redis = RedisServer::start();
    let connector = start(&redis, |c| c).await;
    let page = connector
        .http
        .get(format!("{}/", connector.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let html = page.text().await.unwrap();
    assert!(html.contains("<body data-mode=\"production\">"), "{html}");
    // No sample to post, and no push endpoint behind them: production is the connector only.
    let sample = connector
        .http
        .get(format!(
            "{}/demo/samples/new-message-event.json",
            connector.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(sample.status(), 404);
    let push = connector
        .http
        .post(format!("{}/new-message-event", connector.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(push.status(), 404);
}

impl Connector {
    /// A `/conversation-name` call: `key` goes in the query, `body` in a POST; with the token
    /// unless `anonymous`.
    async fn keys(
        &self,
        method: reqwest::Method,
        key: Option<&str>,
        body: Option<serde_json::Value>,
        anonymous: bool,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .request(method, format!("{}/conversation-name", self.base));
        if let Some(key) = key {
            request = request.query(&[("conversationIntegrationKey", key)]);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        if !anonymous {
            request = request.header("authorization", format!("Bearer {}", self.token));
        }
        request.send().await.unwrap()
    }
}

/// The SHA-256 hex digest the Python connector stores an integration key under
/// (`hashlib.sha256(key.encode('utf-8')).hexdigest()`, `ui-connector/main.py:195` at 9425334).
fn python_digest(key: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

/// Redis's inline reply to `GET`, as the value (`None` for nil).
fn redis_get(redis: &RedisServer, key: &str) -> Option<String> {
    let reply = redis.command(&format!("GET {key}"));
    (!reply.starts_with("$-1")).then(|| reply.lines().nth(1).unwrap_or_default().to_owned())
}

/// Every answer of `/conversation-name` pinned to the Python service's
/// (`ui-connector/main.py:186-238` at 9425334).
#[tokio::test]
async fn integration_keys_answer_as_python_does() {
    use reqwest::Method;
    let redis = RedisServer::start();
    let connector = start(&redis, |c| c).await;
    let name = "projects/p/locations/global/conversations/c42";
    let body = json!({"conversationIntegrationKey": "call-42", "conversationName": name});

    // A token is required for every method (`auth.py:92-104`).
    for (method, key, body) in [
        (Method::POST, None, Some(body.clone())),
        (Method::GET, Some("call-42"), None),
        (Method::DELETE, Some("call-42"), None),
    ] {
        let anonymous = connector.keys(method, key, body, true).await;
        assert_eq!(anonymous.status(), 401);
    }

    // POST answers `{<key>: <name>}`, both as posted (main.py:203, and Python's readme).
    let stored = connector
        .keys(Method::POST, None, Some(body.clone()), false)
        .await;
    assert_eq!(stored.status(), 200);
    assert_eq!(
        stored.json::<serde_json::Value>().await.unwrap(),
        json!({"call-42": name})
    );
    // GET answers the name as posted (main.py:219).
    let found = connector
        .keys(Method::GET, Some("call-42"), None, false)
        .await;
    assert_eq!(found.status(), 200);
    assert_eq!(
        found.json::<serde_json::Value>().await.unwrap(),
        json!({"conversationName": name})
    );
    // An unknown key is 200 with an empty name (main.py:219): the Salesforce LWC polls until a
    // name appears.
    let unknown = connector.keys(Method::GET, Some("nope"), None, false).await;
    assert_eq!(unknown.status(), 200);
    assert_eq!(
        unknown.json::<serde_json::Value>().await.unwrap(),
        json!({"conversationName": ""})
    );
    // A missing or empty key or name is `Bad request` (main.py:200-201, 216-217, 233-234).
    for bad in [
        json!({}),
        json!({"conversationIntegrationKey": "k"}),
        json!({"conversationName": name}),
        json!({"conversationIntegrationKey": "", "conversationName": name}),
        json!({"conversationIntegrationKey": "k", "conversationName": ""}),
    ] {
        let response = connector
            .keys(Method::POST, None, Some(bad.clone()), false)
            .await;
        assert_eq!(response.status(), 400, "{bad}");
        assert_eq!(response.text().await.unwrap(), "Bad request");
    }
    for method in [Method::GET, Method::DELETE] {
        for key in [None, Some("")] {
            let response = connector.keys(method.clone(), key, None, false).await;
            assert_eq!(response.status(), 400, "{method} {key:?}");
            assert_eq!(response.text().await.unwrap(), "Bad request");
        }
    }
    // DELETE answers `Success` (main.py:238), then `Not found` (main.py:235-236).
    let deleted = connector
        .keys(Method::DELETE, Some("call-42"), None, false)
        .await;
    assert_eq!(deleted.status(), 200);
    assert_eq!(deleted.text().await.unwrap(), "Success");
    let again = connector
        .keys(Method::DELETE, Some("call-42"), None, false)
        .await;
    assert_eq!(again.status(), 404);
    assert_eq!(again.text().await.unwrap(), "Not found");
    let gone = connector
        .keys(Method::GET, Some("call-42"), None, false)
        .await;
    assert_eq!(
        gone.json::<serde_json::Value>().await.unwrap(),
        json!({"conversationName": ""})
    );
}

/// Python connectors and ours on one Redis share integration keys both ways: the Python
/// connector stores `SET <sha256 hex> <name>` with no prefix and no TTL (`main.py:195,199`),
/// reads with `GET` (212-213) and removes with `DEL` (229-230). Entries of earlier versions of
/// this connector (`agent-assist:integration-key:<digest>`) are still read and deleted.
#[tokio::test]
async fn integration_keys_are_shared_with_python_connectors() {
    use reqwest::Method;
    let redis = RedisServer::start();
    let connector = start(&redis, |c| c.setting("INTEGRATION_KEY_TTL_SECONDS", "600")).await;
    assert_eq!(
        python_digest("+15551234"),
        "905a43770135d0e3915dc6e53354c7f71b9619a37adef11e55e6876dd5f2501e",
        "the digest observed in Redis behind the Python connector"
    );

    // Written by a Python connector: found and deleted by ours.
    let python_name = "projects/p/locations/global/conversations/from-python";
    redis.command(&format!("SET {} {python_name}", python_digest("+15551234")));
    let found = connector
        .keys(Method::GET, Some("+15551234"), None, false)
        .await;
    assert_eq!(
        found.json::<serde_json::Value>().await.unwrap(),
        json!({"conversationName": python_name})
    );
    let deleted = connector
        .keys(Method::DELETE, Some("+15551234"), None, false)
        .await;
    assert_eq!(deleted.text().await.unwrap(), "Success");
    assert_eq!(redis_get(&redis, &python_digest("+15551234")), None);

    // Written by ours: exactly where a Python connector reads it, the key itself never stored,
    // and with a TTL (ours expire).
    let name = "projects/p/locations/global/conversations/from-rust";
    let stored = connector
        .keys(
            Method::POST,
            None,
            Some(json!({"conversationIntegrationKey": "call-7", "conversationName": name})),
            false,
        )
        .await;
    assert_eq!(stored.status(), 200);
    assert_eq!(
        redis_get(&redis, &python_digest("call-7")).as_deref(),
        Some(name)
    );
    let ttl: u64 = redis
        .command(&format!("TTL {}", python_digest("call-7")))
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&ttl), "{ttl}");
    assert!(!redis.command("KEYS *").contains("call-7"));
    // A Python connector overwrites it: ours sees the new name at once (one copy).
    let overwritten = "projects/p/locations/global/conversations/overwritten";
    redis.command(&format!("SET {} {overwritten}", python_digest("call-7")));
    let found = connector
        .keys(Method::GET, Some("call-7"), None, false)
        .await;
    assert_eq!(
        found.json::<serde_json::Value>().await.unwrap(),
        json!({"conversationName": overwritten})
    );

    // Written by an earlier version of ours: read when no shared entry exists, deleted with it.
    let legacy_key = format!("agent-assist:integration-key:{}", python_digest("old-1"));
    let legacy_name = "projects/p/conversations/legacy";
    redis.command(&format!("SET {legacy_key} {legacy_name}"));
    let found = connector
        .keys(Method::GET, Some("old-1"), None, false)
        .await;
    assert_eq!(
        found.json::<serde_json::Value>().await.unwrap(),
        json!({"conversationName": legacy_name})
    );
    let deleted = connector
        .keys(Method::DELETE, Some("old-1"), None, false)
        .await;
    assert_eq!(deleted.status(), 200);
    assert_eq!(redis_get(&redis, &legacy_key), None);
}

/// Where Python stored whatever it was given (`main.py:194-199`), ours refuses with a reason:
/// keys are bounded (1 KiB, no control characters), names are conversation names.
#[tokio::test]
async fn integration_keys_and_names_are_validated() {
    use reqwest::Method;
    let redis = RedisServer::start();
    let connector = start(&redis, |c| c).await;
    let name = "projects/p/locations/global/conversations/c1";
    let long_key = "k".repeat(1025);
    for (body, reason) in [
        (
            json!({"conversationIntegrationKey": long_key, "conversationName": name}),
            "longer than 1024 bytes",
        ),
        (
            json!({"conversationIntegrationKey": "a\u{1}b", "conversationName": name}),
            "control characters",
        ),
        (
            json!({"conversationIntegrationKey": 5, "conversationName": name}),
            "must be a string",
        ),
        (
            json!({"conversationIntegrationKey": "k", "conversationName": "not a name"}),
            "conversationName",
        ),
        (
            json!({"conversationIntegrationKey": "k", "conversationName": 5}),
            "conversationName must be a string",
        ),
    ] {
        let response = connector
            .keys(Method::POST, None, Some(body.clone()), false)
            .await;
        assert_eq!(response.status(), 400, "{body}");
        let text = response.text().await.unwrap();
        assert!(
            text.starts_with("Bad request: ") && text.contains(reason),
            "{body}: {text}"
        );
    }
    for method in [Method::GET, Method::DELETE] {
        let response = connector
            .keys(method, Some(&"k".repeat(1025)), None, false)
            .await;
        assert_eq!(response.status(), 400);
        assert!(response
            .text()
            .await
            .unwrap()
            .contains("longer than 1024 bytes"));
    }
    // The largest key is accepted.
    let largest = connector
        .keys(
            Method::POST,
            None,
            Some(json!({"conversationIntegrationKey": "k".repeat(1024), "conversationName": name})),
            false,
        )
        .await;
    assert_eq!(largest.status(), 200);
    // Nothing was written for a refused request (Python wrote first, then answered 400).
    assert_eq!(redis.command("DBSIZE").trim(), ":1");
}

#[tokio::test]
async fn integration_keys_expire() {
    use reqwest::Method;
    let redis = RedisServer::start();
    let connector = start(&redis, |c| c.setting("INTEGRATION_KEY_TTL_SECONDS", "1")).await;
    let body = json!({"conversationIntegrationKey": "call-42", "conversationName": "projects/p/conversations/c42"});
    // Entries expire (1 s here) instead of piling up.
    connector.keys(Method::POST, None, Some(body), false).await;
    tokio::time::sleep(Duration::from_millis(2100)).await; // the expiry under test
    let expired = connector
        .keys(Method::GET, Some("call-42"), None, false)
        .await;
    assert_eq!(
        expired.json::<serde_json::Value>().await.unwrap(),
        json!({"conversationName": ""})
    );
}

#[tokio::test]
async fn rejected_tokens_say_why() {
    let redis = RedisServer::start();
    let connector = start(&redis, |c| c).await;
    let url = format!(
        "{}/conversation-name?conversationIntegrationKey=k",
        connector.base
    );
    let expired = connector.app.jwt().sign(&Claims {
        exp: ui_connector::jwt::now_secs() - 5,
        gcp_agent_assist_project: "test-project".into(),
        gcp_agent_assist_user: "".into(),
    });
    for (header, reason) in [
        (None, "missing token"),
        (Some("Bearer nonsense".to_owned()), "malformed token"),
        (Some(format!("Bearer {expired}")), "token has expired"),
    ] {
        let mut request = connector.http.get(&url);
        if let Some(header) = header {
            request = request.header("authorization", header);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.json::<serde_json::Value>().await.unwrap()["error"],
            reason
        );
    }
}

#[tokio::test]
async fn metrics_are_exposed() {
    let redis = RedisServer::start();
    let connector = start(&redis, |c| c).await;
    // No AUTH_OPTION in this configuration: registration is refused, and counted.
    let refused = connector
        .http
        .post(format!("{}/register", connector.base))
        .header("authorization", "Bearer platform-token")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let text = connector
        .http
        .get(format!("{}/metrics", connector.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "connector_sockets_connected",
        "connector_events_delivered_total",
        "connector_conversations_subscribed",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    assert!(
        text.contains(r#"connector_registrations_total{outcome="refused"} 1"#),
        "{text}"
    );
}

/// Every refusal on `/socket.io/` says why, and handshakes RFC 6455 refuses are refused
/// (issue 10: they were bare 400s, and any `Sec-WebSocket-Version` was accepted).
#[tokio::test]
async fn engine_io_refusals_say_why() {
    let redis = RedisServer::start();
    let connector = start(&redis, |c| c).await;
    let url = |query: &str| format!("{}/socket.io/?{query}", connector.base);

    let no_upgrade = connector
        .http
        .get(url("EIO=4&transport=websocket"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_upgrade.status(), 400);
    assert!(no_upgrade
        .text()
        .await
        .unwrap()
        .contains("needs a WebSocket handshake"));

    let old_version = connector
        .http
        .get(url("EIO=4&transport=websocket"))
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "8")
        .send()
        .await
        .unwrap();
    assert_eq!(old_version.status(), 426);
    assert_eq!(old_version.headers()["sec-websocket-version"], "13");

    let unknown_transport = connector
        .http
        .get(url("EIO=4&transport=carrier-pigeon"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_transport.status(), 400);
    assert!(unknown_transport
        .text()
        .await
        .unwrap()
        .contains("unknown transport"));

    // A garbage polling payload on a real session: socketioxide refuses it, with a reason now.
    let open = connector
        .http
        .get(url("EIO=4&transport=polling"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let session: serde_json::Value = serde_json::from_str(&open[1..]).unwrap();
    let sid = session["sid"].as_str().unwrap();
    let garbage = connector
        .http
        .post(url(&format!("EIO=4&transport=polling&sid={sid}")))
        .body("\u{1e}\u{1e}not an engine.io packet")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
    let reason = garbage.text().await.unwrap();
    assert!(
        reason.starts_with("Bad Request: malformed Engine.IO request"),
        "{reason}"
    );
}
