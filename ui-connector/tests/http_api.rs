//! The connector's own HTTP API over real HTTP against a real Redis: status, readiness, CORS,
//! conversation integration keys and metrics.

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
async fn status_ready_and_cors() {
    let redis = RedisServer::start();
    let connector = start(&redis, |c| {
        c.setting(
            "CORS_ALLOWED_ORIGINS",
            "https://desk.example, https://other.example",
        )
    })
    .await;
    let response = connector
        .http
        .get(format!("{}/status", connector.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "Hello, cross-origin-world!");
    let ready = connector
        .http
        .get(format!("{}/ready", connector.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    let preflight = |origin: &'static str| {
        connector
            .http
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/register", connector.base),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let allowed = preflight("https://desk.example").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://desk.example"
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    // Socket.IO's HTTP transport is under the same policy.
    let polling = connector
        .http
        .get(format!(
            "{}/socket.io/?EIO=4&transport=polling",
            connector.base
        ))
        .header("origin", "https://desk.example")
        .send()
        .await
        .unwrap();
    assert_eq!(polling.status(), 200);
    assert_eq!(
        polling.headers()["access-control-allow-origin"],
        "https://desk.example"
    );
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

#[tokio::test]
async fn integration_keys_store_find_delete_and_expire() {
    use reqwest::Method;
    let redis = RedisServer::start();
    let connector = start(&redis, |c| c.setting("INTEGRATION_KEY_TTL_SECONDS", "1")).await;
    let body = json!({"conversationIntegrationKey": "call-42", "conversationName": "projects/p/conversations/c42"});

    // A token is required for every method.
    let anonymous = connector
        .keys(Method::POST, None, Some(body.clone()), true)
        .await;
    assert_eq!(anonymous.status(), 401);
    let anonymous = connector
        .keys(Method::GET, Some("call-42"), None, true)
        .await;
    assert_eq!(anonymous.status(), 401);

    let stored = connector
        .keys(Method::POST, None, Some(body.clone()), false)
        .await;
    assert_eq!(stored.status(), 200);
    // Stored under the SHA-256 of the key, never the key itself.
    let keys = redis.command("KEYS *");
    assert!(!keys.contains("call-42"), "{keys}");
    assert!(keys.contains("integration-key:"), "{keys}");

    let found = connector
        .keys(Method::GET, Some("call-42"), None, false)
        .await;
    assert_eq!(found.status(), 200);
    assert_eq!(
        found.json::<serde_json::Value>().await.unwrap(),
        json!({"conversationName": "projects/p/conversations/c42"})
    );

    for bad in [
        json!({}),
        json!({"conversationIntegrationKey": "k"}),
        json!({"conversationName": "n"}),
    ] {
        let response = connector.keys(Method::POST, None, Some(bad), false).await;
        assert_eq!(response.status(), 400);
        assert_eq!(response.text().await.unwrap(), "Bad request");
    }
    let missing_query = connector.keys(Method::GET, None, None, false).await;
    assert_eq!(missing_query.status(), 400);
    let unknown = connector.keys(Method::GET, Some("nope"), None, false).await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.text().await.unwrap(), "Not found");

    let deleted = connector
        .keys(Method::DELETE, Some("call-42"), None, false)
        .await;
    assert_eq!(deleted.status(), 200);
    let again = connector
        .keys(Method::DELETE, Some("call-42"), None, false)
        .await;
    assert_eq!(again.status(), 404);

    // Entries expire (1 s here) instead of piling up.
    connector.keys(Method::POST, None, Some(body), false).await;
    tokio::time::sleep(Duration::from_millis(2100)).await; // the expiry under test
    let expired = connector
        .keys(Method::GET, Some("call-42"), None, false)
        .await;
    assert_eq!(expired.status(), 404);
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
        gcp_agent_assist_user: String::new(),
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
    assert!(reason.starts_with("Bad Request: malformed Engine.IO request"), "{reason}");
}
