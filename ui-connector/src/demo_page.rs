//! The demo page (`ui-connector/demo/`) and the sample events it posts, embedded in the binary.
//!
//! Local mode mounts [`routes`] so `ui-connector --local` is a complete playground: open `/`,
//! register, connect, join a conversation, post samples through the interceptor's push endpoints
//! and watch them (and their recovery after a disconnect) arrive. Everything is compiled in with
//! `include_str!`, so the binary serves the page from anywhere, with no files to deploy and no
//! build step for the page itself.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::routing::get;
use axum::Router;

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JSON: &str = "application/json";

/// Path, content type and body of every file served.
const ASSETS: &[(&str, &str, &str)] = &[
    ("/", HTML, include_str!("../demo/index.html")),
    ("/demo/demo.js", JAVASCRIPT, include_str!("../demo/demo.js")),
    ("/demo/demo.css", CSS, include_str!("../demo/demo.css")),
    (
        "/demo/socket.io.min.js",
        JAVASCRIPT,
        include_str!("../demo/socket.io.min.js"),
    ),
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

/// The page at `/` and its assets under `/demo/`. Stateless, so it merges into any router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    ASSETS
        .iter()
        .fold(Router::new(), |router, &(path, content_type, body)| {
            router.route(
                path,
                get(move || async move {
                    // `no-cache`: a rebuilt binary's page is picked up on the next load.
                    (
                        [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")],
                        body,
                    )
                }),
            )
        })
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

    /// GETs `path`; returns status, content type and body.
    async fn get_path(path: &str) -> (StatusCode, Option<String>, String) {
        let response = routes::<()>()
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
}
