//! Live events at the Rust level: the real interceptor and connector on one real Redis, with
//! the Rust Socket.IO client of `socketio-test-client` (the Node suite in `tests/socketio`
//! checks the same paths with npm's `socket.io-client`).

use std::time::Duration;

use agent_assist_core::EventType;
use agent_assist_test_support::{
    Event, PushEnvelope, RedisServer, SocketClient, TestConnector, TestInterceptor,
};
use serde_json::{json, Value};

const CONVERSATION: &str = "projects/p/locations/global/conversations/live";
const JOINED: &str = "projects/p/conversations/live";

async fn push(interceptor: &TestInterceptor, n: u32) {
    let data = json!({"conversation": CONVERSATION, "n": n}).to_string();
    let envelope = PushEnvelope::new(data).message_id(format!("live-{n}"));
    let (status, text) = interceptor
        .push(EventType::NewMessageEvent, &envelope)
        .await;
    assert_eq!(status, 204, "{text}");
}

async fn next(socket: &mut SocketClient) -> Event {
    tokio::time::timeout(Duration::from_secs(5), socket.next_event())
        .await
        .expect("an event within 5 s")
        .expect("a readable frame")
        .expect("still connected")
}

/// The `n` of the Dialogflow event an event carries.
fn n_of(event: &Event) -> u64 {
    let data: Value = serde_json::from_str(event.payload["data"].as_str().unwrap()).unwrap();
    data["n"].as_u64().unwrap()
}

#[tokio::test]
async fn joined_sockets_get_each_event_once_in_order() {
    let redis = RedisServer::start();
    let interceptor = TestInterceptor::on(&redis).await;
    let connector = TestConnector::builder().redis(&redis).spawn().await;
    let mut socket = connector.socket().await;
    let ack = socket.join(CONVERSATION).await.unwrap();
    assert_eq!(ack, json!([true, JOINED]));
    for n in 1..=3 {
        push(&interceptor, n).await;
    }
    let mut offsets = Vec::new();
    for n in 1..=3 {
        let event = next(&mut socket).await;
        assert_eq!(event.name, "new-message-event");
        assert_eq!(event.payload["conversation_name"], JOINED);
        assert_eq!(n_of(&event), n);
        offsets.push(event.payload["offset"].as_u64().unwrap());
    }
    assert_eq!(offsets[1], offsets[0] + 1);
    assert_eq!(offsets[2], offsets[1] + 1);
    assert_eq!(connector.metrics().events_delivered(), 3);
}

#[tokio::test]
async fn a_rejoin_with_since_recovers_what_was_missed() {
    let redis = RedisServer::start();
    let interceptor = TestInterceptor::on(&redis).await;
    let connector = TestConnector::builder().redis(&redis).spawn().await;
    let mut first = connector.socket().await;
    first.join(CONVERSATION).await.unwrap();
    push(&interceptor, 1).await;
    let seen = next(&mut first).await.payload["offset"].as_u64().unwrap();
    drop(first);
    push(&interceptor, 2).await;
    push(&interceptor, 3).await;

    let mut again = connector.socket().await;
    let ack = again
        .join(json!({"conversation_name": JOINED, "since": seen}))
        .await
        .unwrap();
    assert_eq!(ack[2], json!({"recovered": true, "offset": seen + 2}));
    assert_eq!(n_of(&next(&mut again).await), 2);
    assert_eq!(n_of(&next(&mut again).await), 3);
}

#[tokio::test]
async fn shutdown_closes_every_socket() {
    let redis = RedisServer::start();
    let connector = TestConnector::builder().redis(&redis).spawn().await;
    let mut socket = connector.socket().await;
    socket.join(CONVERSATION).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), connector.stop())
        .await
        .expect("the connector drains within 10 s")
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), socket.next_event())
        .await
        .expect("the socket is told at once");
    assert!(matches!(ended, Ok(None)), "{ended:?}");
}
