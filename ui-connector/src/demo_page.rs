//! The test page (`ui-connector/demo/`), embedded in the binary and served at `/` in every
//! mode, as the Python connector served its test page at `/` in every deployment
//! (`ui-connector/main.py:83-87` at 9425334; operators use it to check a deployment).
//!
//! - [`PageMode::Local`] (`ui-connector --local`): the page registers with any token, and also
//!   posts sample events (served at `/demo/samples/`) through the push endpoints local mode
//!   serves: a complete playground.
//! - [`PageMode::Production`]: the page asks for a token of the desktop platform that
//!   `AUTH_OPTION` checks and registers with it, exactly as a desktop does; there are no
//!   samples to post (events come from Pub/Sub through the interceptor).
//!
//! Serving it weakens nothing: the files are static (the same bytes for everybody, no state, no
//! secret; only `<body data-mode>` differs per mode), and the page only calls the connector's
//! public APIs, which check what they always check. Its content security policy keeps it
//! same-origin, unframeable and free of inline script. Everything is compiled in with
//! `include_str!`, so the binary serves the page from anywhere, with no build step.

use axum::body::Bytes;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::HeaderName;
use axum::routing::get;
use axum::Router;

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JSON: &str = "application/json";

/// Same-origin scripts, styles and calls (`'self'` covers the page's own WebSocket), no
/// framing, no inline script, no plugins, no forms posting anywhere.
const POLICY: &str = "default-src 'self'; connect-src 'self'; object-src 'none'; \
                      base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What the page is served for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageMode {
    /// `ui-connector --local`: samples to post, any token accepted.
    Local,
    /// A deployed connector: the page asks for a platform token; nothing to post.
    Production,
}

impl PageMode {
    /// The value of `<body data-mode>`, which the page's CSS and script read.
    fn attribute(self) -> &'static str {
        match self {
            PageMode::Local => "local",
            PageMode::Production => "production",
        }
    }
}

/// The page as written: `<body data-mode="local">`.
const PAGE: &str = include_str!("../demo/index.html");
const LOCAL_BODY: &str = "<body data-mode=\"local\">";

/// Path, content type and body of every file served in both modes (the page aside).
const ASSETS: &[(&str, &str, &str)] = &[
    ("/demo/demo.js", JAVASCRIPT, include_str!("../demo/demo.js")),
    ("/demo/demo.css", CSS, include_str!("../demo/demo.css")),
    (
        "/demo/socket.io.min.js",
        JAVASCRIPT,
        include_str!("../demo/socket.io.min.js"),
    ),
];

/// The samples local mode's page posts.
const SAMPLES: &[(&str, &str, &str)] = &[
    (
        "/demo/samples/human-agent-assistant-event.json",
        JSON,
        include_str!("../../cloud-pubsub-interceptor/samples/human-agent-assistant-event.json"),
    ),
    (
        "/demo/samples/conversation-lifecycle-event.json",
        JSON,
        include_str!("../../cloud-pubsub-interceptor/samples/conversation-lifecycle-event.json"),
    ),
    (
        "/demo/samples/new-message-event.json",
        JSON,
        include_str!("../../cloud-pubsub-interceptor/samples/new-message-event.json"),
    ),
    (
        "/demo/samples/new-recognition-result-notification-event.json",
        JSON,
        include_str!(
            "../../cloud-pubsub-interceptor/samples/new-recognition-result-notification-event.json"
        ),
    ),
    (
        "/demo/samples/virtual-agent-event.json",
        JSON,
        include_str!("../../cloud-pubsub-interceptor/samples/virtual-agent-event.json"),
    ),
    (
        "/demo/samples/new-recognition-result-notification-event.attributes.json",
        JSON,
        include_str!(
            "../../cloud-pubsub-interceptor/samples/new-recognition-result-notification-event.attributes.json"
        ),
    ),
];

/// The page at `/` and its assets under `/demo/` for `mode`. Stateless, so it merges into any
/// router.
pub fn routes<S: Clone + Send + Sync + 'static>(mode: PageMode) -> Router<S> {
    assert!(PAGE.contains(LOCAL_BODY), "index.html marks its body");
    let page = match mode {
        PageMode::Local => Bytes::from_static(PAGE.as_bytes()),
        PageMode::Production => Bytes::from(PAGE.replacen(
            LOCAL_BODY,
            &format!("<body data-mode=\"{}\">", mode.attribute()),
            1,
        )),
    };
    let samples: &[(&str, &str, &str)] = match mode {
        PageMode::Local => SAMPLES,
        PageMode::Production => &[],
    };
    let files = ASSETS
        .iter()
        .chain(samples)
        .map(|&(path, content_type, body)| {
            (path, content_type, Bytes::from_static(body.as_bytes()))
        });
    std::iter::once(("/", HTML, page)).chain(files).fold(
        Router::new(),
        |router, (path, content_type, body)| {
            router.route(
                path,
                get(move || {
                    let body = body.clone();
                    async move {
                        // `no-cache`: a rebuilt binary's page is picked up on the next load.
                        (
                            [
                                (CONTENT_TYPE, content_type),
                                (CACHE_CONTROL, "no-cache"),
                                (CONTENT_SECURITY_POLICY, POLICY),
                                (X_CONTENT_TYPE_OPTIONS, "nosniff"),
                                (REFERRER_POLICY, "no-referrer"),
                                (HeaderName::from_static("x-frame-options"), "DENY"),
                            ],
                            body,
                        )
                    }
                }),
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use agent_assist_core::EventType;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    const PLACEHOLDER: &str =
        "projects/demo-project/locations/global/conversations/demo-conversation";

    /// GETs `path` of local mode's page; returns status, content type and body.
    async fn get_path(path: &str) -> (StatusCode, Option<String>, String) {
        get_in(PageMode::Local, path).await
    }

    async fn get_in(mode: PageMode, path: &str) -> (StatusCode, Option<String>, String) {
        let response = routes::<()>(mode)
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn serves_the_page_and_its_assets_with_their_content_types() {
        let expected = [
            ("/", HTML, "<title>Agent Assist"),
            ("/demo/demo.js", JAVASCRIPT, "join-conversation"),
            ("/demo/demo.css", CSS, ".event-list"),
            ("/demo/socket.io.min.js", JAVASCRIPT, "Socket.IO v4"),
        ];
        for (path, content_type, marker) in expected {
            let (status, served_type, body) = get_path(path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(served_type.as_deref(), Some(content_type), "{path}");
            assert!(body.contains(marker), "{path} lacks {marker:?}");
        }
    }

    #[tokio::test]
    async fn serves_a_sample_of_every_event_type() {
        for kind in EventType::ALL {
            let (status, content_type, body) =
                get_path(&format!("/demo/samples/{kind}.json")).await;
            assert_eq!(status, StatusCode::OK, "{kind}");
            assert_eq!(content_type.as_deref(), Some(JSON));
            let sample: serde_json::Value = serde_json::from_str(&body).unwrap();
            // Pub/Sub samples are Dialogflow events; the virtual agent's is a CX webhook call.
            let conversation = if kind.is_pubsub() {
                &sample["conversation"]
            } else {
                &sample["sessionInfo"]["parameters"]["agent_assist_conversation"]
            };
            assert_eq!(conversation, PLACEHOLDER, "{kind}");
        }
        let (status, _, body) =
            get_path("/demo/samples/new-recognition-result-notification-event.attributes.json")
                .await;
        assert_eq!(status, StatusCode::OK);
        let attributes: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(attributes["participant_role"].is_string());
        assert!(attributes["message_id"].is_string());
    }

    #[tokio::test]
    async fn every_script_and_stylesheet_the_page_names_is_served() {
        let (_, _, html) = get_path("/").await;
        let referenced: Vec<&str> = ["src=\"", "href=\""]
            .iter()
            .flat_map(|attr| html.split(*attr).skip(1))
            .filter_map(|rest| rest.split('"').next())
            .filter(|url| url.starts_with('/'))
            .collect();
        assert_eq!(referenced.len(), 3, "{referenced:?}");
        for url in referenced {
            let (status, _, _) = get_path(url).await;
            assert_eq!(status, StatusCode::OK, "{url}");
        }
    }

    #[tokio::test]
    async fn the_page_posts_for_the_samples_placeholder() {
        // demo.js substitutes this exact name; the join field starts with it.
        let (_, _, js) = get_path("/demo/demo.js").await;
        assert!(js.contains(&format!("const PLACEHOLDER = '{PLACEHOLDER}';")));
        let (_, _, html) = get_path("/").await;
        assert!(html.contains(&format!("value=\"{PLACEHOLDER}\"")));
        // And it has a post button for every event type.
        for kind in EventType::ALL {
            assert!(html.contains(&format!("data-kind=\"{kind}\"")), "{kind}");
        }
    }

    #[tokio::test]
    async fn other_paths_are_not_found() {
        for path in ["/demo/", "/demo/missing.js", "/demo/samples/unknown.json"] {
            let (status, _, _) = get_path(path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        }
    }

    /// The Python connector served its test page at `/` in every deployment
    /// (`ui-connector/main.py:83-87` at 9425334): so does a production connector, marked so
    /// that it asks for a platform token and offers nothing to post.
    #[tokio::test]
    async fn production_serves_the_page_without_samples() {
        let (status, content_type, html) = get_in(PageMode::Production, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type.as_deref(), Some(HTML));
        assert!(html.contains("<body data-mode=\"production\">"));
        assert!(!html.contains(LOCAL_BODY));
        assert!(html.contains("id=\"platform-token\""));
        for path in ["/demo/demo.js", "/demo/demo.css", "/demo/socket.io.min.js"] {
            assert_eq!(
                get_in(PageMode::Production, path).await.0,
                StatusCode::OK,
                "{path}"
            );
        }
        for kind in EventType::ALL {
            let (status, _, _) =
                get_in(PageMode::Production, &format!("/demo/samples/{kind}.json")).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{kind}");
        }
        let (_, _, local) = get_path("/").await;
        assert!(local.contains(LOCAL_BODY));
    }

    #[tokio::test]
    async fn the_page_is_locked_to_its_origin() {
        let response = routes::<()>(PageMode::Production)
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let policy = response.headers()[CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        for directive in [
            "default-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(policy.contains(directive), "{policy}");
        }
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        assert_eq!(response.headers()["x-frame-options"], "DENY");
        // No inline script for the policy to refuse: every script is a file.
        let (_, _, html) = get_path("/").await;
        assert_eq!(
            html.matches("<script").count(),
            html.matches("<script src=").count()
        );
    }
}
