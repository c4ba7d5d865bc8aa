//! Local mode serves the Dialogflow CX webhook on its own port and bus, without credentials
//! (as it accepts every desktop token): a call reaches a desktop joined over Socket.IO, and a
//! context waiting for its integration key arrives when `/conversation-name` maps the key.

use std::time::Duration;

use agent_assist_test_support::{SocketClient, TestConnector};
use serde_json::{json, Value};

const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

fn cx_request(id: &str, parameters: Value) -> Value {
    json!({
        "detectIntentResponseId": id,
        "fulfillmentInfo": {"tag": "handoff"},
        "intentInfo": {"displayName": "order.status"},
        "sessionInfo": {"session": "projects/p/locations/global/agents/a/sessions/s", "parameters": parameters},
    })
}

async fn post(connector: &TestConnector, path: &str, body: &Value) -> (u16, Value) {
    let response = connector
        .http()
        .post(connector.url(path))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn next_context(socket: &mut SocketClient) -> (Value, Value) {
    let event = tokio::time::timeout(EVENT_TIMEOUT, socket.next_event())
        .await
        .expect("an event in time")
        .unwrap()
        .expect("still connected");
    assert_eq!(event.name, "virtual-agent-event");
    let context = serde_json::from_str(event.payload["data"].as_str().unwrap()).unwrap();
    (event.payload, context)
}

#[tokio::test]
async fn local_mode_serves_the_webhook_without_credentials() {
    let connector = TestConnector::builder().local_mode().spawn().await;
    let mut desktop = connector.socket().await;
    desktop
        .join("projects/demo-project/conversations/local")
        .await
        .unwrap();

    let request = cx_request(
        "d-local",
        json!({"agent_assist_conversation": "projects/demo-project/conversations/local", "order": "A-17"}),
    );
    let (status, answer) = post(&connector, "/dialogflow-cx-webhook", &request).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["sessionInfo"]["parameters"]["agent_assist_conversation"],
        "projects/demo-project/conversations/local"
    );
    let (event, context) = next_context(&mut desktop).await;
    assert_eq!(
        event["conversation_name"],
        "projects/demo-project/conversations/local"
    );
    assert_eq!(context["parameters"]["order"], "A-17");
    assert_eq!(context["intent"]["displayName"], "order.status");

    // The flexible webhook too.
    let response = connector
        .http()
        .get(connector.url(
            "/dialogflow-cx-webhook/flexible?conversation=projects/demo-project/conversations/local&order=A-18",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (_, context) = next_context(&mut desktop).await;
    assert_eq!(context["query"]["order"], "A-18");
}

#[tokio::test]
async fn local_mode_publishes_a_waiting_context_when_the_key_is_mapped() {
    let connector = TestConnector::builder().local_mode().spawn().await;
    let request = cx_request("d-wait", json!({"conversation_integration_key": "call-1"}));
    let (status, answer) = post(&connector, "/dialogflow-cx-webhook", &request).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer["sessionInfo"]["parameters"]["agent_assist_context_pending"],
        true
    );

    let mut desktop = connector.socket().await;
    desktop
        .join("projects/demo-project/locations/global/conversations/waited")
        .await
        .unwrap();
    let response = connector
        .http()
        .post(connector.url("/conversation-name"))
        .bearer_auth(connector.token("agent@example.com"))
        .json(&json!({
            "conversationIntegrationKey": "call-1",
            "conversationName": "projects/demo-project/locations/global/conversations/waited",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (event, context) = next_context(&mut desktop).await;
    assert_eq!(
        event["conversation_name"],
        "projects/demo-project/conversations/waited"
    );
    assert_eq!(context["detectIntentResponseId"], "d-wait");
}
