//! Live events at the Rust level: the real interceptor and connector on one real Redis, with
//! the Rust Socket.IO client of `socketio-test-client` (the Node suite in `tests/socketio`
//! checks the same paths with npm's `socket.io-client`).

use std::time::Duration;

use agent_assist_core::EventType;
use agent_assist_intake::PubsubMessage;
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

/// A desktop that stops reading while 2,000 events flow (issue 10). Its socket used to be
/// logged as too slow and left connected: the disconnect packet could not be queued on its full
/// buffer. Its connection must be closed for real, counted, and its re-join told what history
/// no longer holds; a desktop that keeps reading is not held up.
async fn a_socket_that_stops_reading_is_closed(connect_upgrading: bool) {
    let redis = RedisServer::start();
    let interceptor = TestInterceptor::on(&redis).await;
    let connector = TestConnector::builder()
        .redis(&redis)
        .adjust(|config| config.slow_socket_grace = Duration::from_millis(300))
        .spawn()
        .await;
    let token = connector.token("agent@example.com");
    let mut stalled = if connect_upgrading {
        SocketClient::connect_upgrading(connector.address(), &token).await
    } else {
        SocketClient::connect(connector.address(), &token).await
    }
    .unwrap();
    stalled.join(CONVERSATION).await.unwrap();
    let mut reader = connector.socket().await;
    reader.join(CONVERSATION).await.unwrap();
    push(&interceptor, 0).await;
    let seen = next(&mut stalled).await.payload["offset"].as_u64().unwrap();
    assert_eq!(n_of(&next(&mut reader).await), 0);

    // 2,000 events of 8 KiB: far more than the socket buffer and the TCP windows hold. The
    // stalled desktop reads nothing from here on.
    let filler = "x".repeat(8 * 1024);
    let reading = tokio::spawn(async move {
        for n in 1..=2000 {
            assert_eq!(
                n_of(&next(&mut reader).await),
                n,
                "the reader gets every event"
            );
        }
    });
    // Straight onto the bus (the push path is the interceptor's tests' concern), to keep the
    // test short.
    for n in 1..=2000u64 {
        let data = json!({"conversation": CONVERSATION, "n": n, "filler": filler}).to_string();
        let message = PubsubMessage {
            data: data.into_bytes(),
            message_id: Some(format!("stall-{n}")),
            ..PubsubMessage::default()
        };
        let event = message
            .to_event(EventType::NewMessageEvent, chrono::Utc::now())
            .unwrap();
        connector.bus().publish(&event).await.unwrap();
    }
    reading.await.unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while connector.metrics().sockets_connected() != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stalled socket was not closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(connector.metrics().slow_sockets(), 1);
    // Reading again, the desktop finds its connection gone (after what was already in flight).
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(_)) = stalled.next_event().await {}
    })
    .await;
    assert!(ended.is_ok(), "the connection ends");

    let mut again = connector.socket().await;
    let ack = again
        .join(json!({"conversation_name": JOINED, "since": seen}))
        .await
        .unwrap();
    assert_eq!(ack[2]["recovered"], false, "{ack}");
    assert_eq!(
        n_of(&next(&mut again).await),
        1901,
        "what history kept follows"
    );
}

#[tokio::test]
async fn a_websocket_that_stops_reading_is_closed() {
    a_socket_that_stops_reading_is_closed(false).await;
}

#[tokio::test]
async fn an_upgraded_socket_that_stops_reading_is_closed() {
    a_socket_that_stops_reading_is_closed(true).await;
}
