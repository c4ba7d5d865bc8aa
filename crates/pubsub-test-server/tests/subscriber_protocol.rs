//! The fake's protocol spoken directly, through the generated tonic client: what
//! `google-cloud-pubsub` never sends (acks and deadline changes on the stream, bad requests),
//! and behaviour easier to pin down without a library in between (expiry with no client
//! extending, dead-lettering, streams sharing a backlog, byte limits).

use pubsub_test_server::proto::subscriber_client::SubscriberClient;
use pubsub_test_server::proto::{
    AcknowledgeRequest, ModifyAckDeadlineRequest, ReceivedMessage, StreamingPullRequest,
    StreamingPullResponse,
};
use pubsub_test_server::{PublishOptions, PubsubTestServer, SubscriptionConfig};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tonic::codegen::tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

const SUBSCRIPTION: &str = "projects/p/subscriptions/s";
const WAIT: Duration = Duration::from_secs(10);
const NO_ATTRIBUTES: [(&str, &str); 0] = [];

/// A StreamingPull stream held open by the test.
struct RawStream {
    requests: mpsc::UnboundedSender<StreamingPullRequest>,
    responses: Streaming<StreamingPullResponse>,
}

impl RawStream {
    async fn open(
        client: &mut SubscriberClient<Channel>,
        first: StreamingPullRequest,
    ) -> Result<Self, Status> {
        let (requests, outbound) = mpsc::unbounded_channel();
        requests.send(first).expect("queue the first request");
        let responses = client
            .streaming_pull(UnboundedReceiverStream::new(outbound))
            .await?
            .into_inner();
        Ok(Self {
            requests,
            responses,
        })
    }

    async fn next_batch(&mut self) -> Result<Vec<ReceivedMessage>, Status> {
        let response = tokio::time::timeout(WAIT, self.responses.message())
            .await
            .expect("a response within the wait")?
            .expect("the stream is still open");
        Ok(response.received_messages)
    }

    async fn receive(&mut self, count: usize) -> Vec<ReceivedMessage> {
        let mut received = Vec::new();
        while received.len() < count {
            received.extend(self.next_batch().await.expect("no stream error"));
        }
        received
    }

    fn send(&self, request: StreamingPullRequest) {
        self.requests.send(request).expect("stream request queued");
    }
}

fn first_request(max_messages: i64, max_bytes: i64) -> StreamingPullRequest {
    StreamingPullRequest {
        subscription: SUBSCRIPTION.to_string(),
        stream_ack_deadline_seconds: 10,
        max_outstanding_messages: max_messages,
        max_outstanding_bytes: max_bytes,
        client_id: "protocol-test".to_string(),
        ..Default::default()
    }
}

async fn fake_and_client(
    config: SubscriptionConfig,
) -> (PubsubTestServer, SubscriberClient<Channel>) {
    let fake = PubsubTestServer::start().await;
    fake.create_subscription_with(SUBSCRIPTION, config);
    let client = SubscriberClient::connect(fake.endpoint())
        .await
        .expect("connect to the fake");
    (fake, client)
}

fn message_id(received: &ReceivedMessage) -> &str {
    &received.message.as_ref().expect("a message").message_id
}

#[tokio::test]
async fn acks_and_nacks_on_the_stream_are_honoured_beside_the_rpcs() {
    let (fake, mut client) = fake_and_client(SubscriptionConfig::default()).await;
    let first = fake.publish(SUBSCRIPTION, b"1".to_vec(), NO_ATTRIBUTES);
    let second = fake.publish(SUBSCRIPTION, b"2".to_vec(), NO_ATTRIBUTES);
    let mut stream = RawStream::open(&mut client, first_request(0, 0))
        .await
        .unwrap();
    let received = stream.receive(2).await;
    assert_eq!(
        received.iter().map(message_id).collect::<Vec<_>>(),
        [first.as_str(), second.as_str()]
    );

    stream.send(StreamingPullRequest {
        ack_ids: vec![received[0].ack_id.clone()],
        modify_deadline_seconds: vec![0],
        modify_deadline_ack_ids: vec![received[1].ack_id.clone()],
        ..Default::default()
    });
    let redelivered = stream.receive(1).await;
    assert_eq!(message_id(&redelivered[0]), second);
    assert_ne!(
        redelivered[0].ack_id, received[1].ack_id,
        "a new ack id per delivery"
    );

    client
        .acknowledge(AcknowledgeRequest {
            subscription: SUBSCRIPTION.to_string(),
            ack_ids: vec![redelivered[0].ack_id.clone()],
        })
        .await
        .expect("Acknowledge");
    let state = fake
        .wait_for(SUBSCRIPTION, WAIT, |s| s.acked.len() == 2)
        .await
        .expect("both acked");
    assert_eq!(state.acked, [first, second]);
    assert_eq!((state.nacks, state.outstanding, state.late_acks), (1, 0, 0));
}

#[tokio::test]
async fn an_unacked_message_expires_and_is_dead_lettered_after_its_attempts() {
    let config = SubscriptionConfig::default()
        .with_ack_deadline_cap(Duration::from_millis(100))
        .with_dead_letter_after(2);
    let (fake, mut client) = fake_and_client(config).await;
    let id = fake.publish(SUBSCRIPTION, b"poison".to_vec(), NO_ATTRIBUTES);
    let mut stream = RawStream::open(&mut client, first_request(0, 0))
        .await
        .unwrap();

    let first = stream.receive(1).await;
    assert_eq!(
        (message_id(&first[0]), first[0].delivery_attempt),
        (id.as_str(), 1)
    );
    let second = stream.receive(1).await;
    assert_eq!(
        (message_id(&second[0]), second[0].delivery_attempt),
        (id.as_str(), 2)
    );

    let state = fake
        .wait_for(SUBSCRIPTION, WAIT, |s| !s.dead_lettered.is_empty())
        .await
        .expect("dead-lettered after the second expiry");
    assert_eq!(state.dead_lettered, std::slice::from_ref(&id));
    assert_eq!(
        (state.expirations, state.outstanding, state.backlog),
        (2, 0, 0)
    );

    // The stale ack of a dead-lettered message is ignored, not an error.
    client
        .acknowledge(AcknowledgeRequest {
            subscription: SUBSCRIPTION.to_string(),
            ack_ids: vec![second[0].ack_id.clone()],
        })
        .await
        .expect("a stale ack is accepted");
    assert_eq!(fake.snapshot(SUBSCRIPTION).late_acks, 1);
}

#[tokio::test]
async fn a_deadline_extension_keeps_the_lease() {
    let config = SubscriptionConfig::default().with_ack_deadline_cap(Duration::from_secs(1));
    let (fake, mut client) = fake_and_client(config).await;
    fake.publish(SUBSCRIPTION, b"x".to_vec(), NO_ATTRIBUTES);
    let mut stream = RawStream::open(&mut client, first_request(0, 0))
        .await
        .unwrap();
    let received = stream.receive(1).await;

    // Extending every 100 ms keeps a 1 s lease alive well past its first deadline.
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    for _ in 0..15 {
        ticker.tick().await;
        client
            .modify_ack_deadline(ModifyAckDeadlineRequest {
                subscription: SUBSCRIPTION.to_string(),
                ack_ids: vec![received[0].ack_id.clone()],
                ack_deadline_seconds: 60,
            })
            .await
            .expect("ModifyAckDeadline");
    }
    let state = fake.snapshot(SUBSCRIPTION);
    assert_eq!((state.expirations, state.outstanding), (0, 1), "{state:?}");
    assert_eq!(state.extensions, 15);
    stream.send(StreamingPullRequest {
        ack_ids: vec![received[0].ack_id.clone()],
        ..Default::default()
    });
    fake.wait_for(SUBSCRIPTION, WAIT, |s| s.acked.len() == 1)
        .await
        .expect("acked on the stream");
}

#[tokio::test]
async fn streams_share_the_backlog_within_their_own_limits() {
    let (fake, mut client) = fake_and_client(SubscriptionConfig::default()).await;
    for i in 0..10 {
        fake.publish(SUBSCRIPTION, format!("{i}").into_bytes(), NO_ATTRIBUTES);
    }
    let mut one = RawStream::open(&mut client, first_request(3, 0))
        .await
        .unwrap();
    let mut two = RawStream::open(&mut client, first_request(3, 0))
        .await
        .unwrap();
    let state = fake
        .wait_for(SUBSCRIPTION, WAIT, |s| s.outstanding == 6)
        .await
        .expect("each stream filled to its limit");
    assert_eq!(state.backlog, 4);
    assert_eq!(one.receive(3).await.len(), 3);
    assert_eq!(two.receive(3).await.len(), 3);
}

#[tokio::test]
async fn the_byte_limit_sends_one_large_message_at_a_time() {
    let (fake, mut client) = fake_and_client(SubscriptionConfig::default()).await;
    fake.publish(SUBSCRIPTION, vec![b'a'; 1000], NO_ATTRIBUTES);
    fake.publish(SUBSCRIPTION, vec![b'b'; 1000], NO_ATTRIBUTES);
    let mut stream = RawStream::open(&mut client, first_request(0, 1500))
        .await
        .unwrap();
    let first = stream.receive(1).await;
    let state = fake
        .wait_for(SUBSCRIPTION, WAIT, |s| s.outstanding == 1)
        .await
        .expect("one outstanding");
    assert_eq!(state.backlog, 1, "the second does not fit beside the first");
    stream.send(StreamingPullRequest {
        ack_ids: vec![first[0].ack_id.clone()],
        ..Default::default()
    });
    assert_eq!(
        stream.receive(1).await.len(),
        1,
        "sent once the first is acked"
    );
}

#[tokio::test]
async fn a_closed_stream_leaves_its_leases_to_run_out_or_be_acked() {
    let (fake, mut client) = fake_and_client(SubscriptionConfig::default()).await;
    fake.publish(SUBSCRIPTION, b"x".to_vec(), NO_ATTRIBUTES);
    let mut stream = RawStream::open(&mut client, first_request(0, 0))
        .await
        .unwrap();
    let received = stream.receive(1).await;
    drop(stream);
    let state = fake
        .wait_for(SUBSCRIPTION, WAIT, |s| s.open_streams == 0)
        .await
        .expect("the fake notices the client left");
    assert_eq!(state.outstanding, 1);
    client
        .acknowledge(AcknowledgeRequest {
            subscription: SUBSCRIPTION.to_string(),
            ack_ids: vec![received[0].ack_id.clone()],
        })
        .await
        .expect("Acknowledge");
    assert_eq!(fake.snapshot(SUBSCRIPTION).acked.len(), 1);
}

#[tokio::test]
async fn bad_requests_get_the_status_the_service_gives() {
    let (fake, mut client) = fake_and_client(SubscriptionConfig::default()).await;
    let code_of = |r: Result<RawStream, Status>| r.err().map(|s| s.code());

    let unnamed = StreamingPullRequest {
        subscription: String::new(),
        ..first_request(0, 0)
    };
    assert_eq!(
        code_of(RawStream::open(&mut client, unnamed).await),
        Some(Code::InvalidArgument)
    );
    let short_deadline = StreamingPullRequest {
        stream_ack_deadline_seconds: 5,
        ..first_request(0, 0)
    };
    assert_eq!(
        code_of(RawStream::open(&mut client, short_deadline).await),
        Some(Code::InvalidArgument)
    );
    let unknown = StreamingPullRequest {
        subscription: "projects/p/subscriptions/unknown".to_string(),
        ..first_request(0, 0)
    };
    assert_eq!(
        code_of(RawStream::open(&mut client, unknown).await),
        Some(Code::NotFound)
    );

    let empty_ack = client
        .acknowledge(AcknowledgeRequest {
            subscription: SUBSCRIPTION.to_string(),
            ack_ids: vec![],
        })
        .await;
    assert_eq!(empty_ack.unwrap_err().code(), Code::InvalidArgument);
    let too_long = client
        .modify_ack_deadline(ModifyAckDeadlineRequest {
            subscription: SUBSCRIPTION.to_string(),
            ack_ids: vec!["ack-1-1".to_string()],
            ack_deadline_seconds: 601,
        })
        .await;
    assert_eq!(too_long.unwrap_err().code(), Code::InvalidArgument);
    let elsewhere = client
        .acknowledge(AcknowledgeRequest {
            subscription: "projects/p/subscriptions/unknown".to_string(),
            ack_ids: vec!["ack-1-1".to_string()],
        })
        .await;
    assert_eq!(elsewhere.unwrap_err().code(), Code::NotFound);

    // A malformed request mid-stream ends that stream with INVALID_ARGUMENT.
    let mut stream = RawStream::open(&mut client, first_request(0, 0))
        .await
        .unwrap();
    stream.send(StreamingPullRequest {
        modify_deadline_seconds: vec![10, 10],
        modify_deadline_ack_ids: vec!["ack-1-1".to_string()],
        ..Default::default()
    });
    let ended = stream.next_batch().await.expect_err("the stream ends");
    assert_eq!(ended.code(), Code::InvalidArgument);
    fake.wait_for(SUBSCRIPTION, WAIT, |s| s.open_streams == 0)
        .await
        .expect("the stream is gone");
}

#[tokio::test]
async fn methods_the_fake_does_not_implement_are_unimplemented_and_logged() {
    let (fake, _) = fake_and_client(SubscriptionConfig::default()).await;
    let channel = Channel::from_shared(fake.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = "/google.pubsub.v1.Subscriber/GetSubscription";
    let answer = grpc
        .unary::<AcknowledgeRequest, AcknowledgeRequest, _>(
            tonic::Request::new(AcknowledgeRequest::default()),
            http::uri::PathAndQuery::from_static(path),
            tonic_prost::ProstCodec::default(),
        )
        .await;
    assert_eq!(answer.unwrap_err().code(), Code::Unimplemented);
    assert!(fake.calls().iter().any(|c| c == path), "{:?}", fake.calls());
}

#[tokio::test]
async fn a_message_published_with_a_chosen_id_and_time_comes_again_under_its_id() {
    let (fake, mut client) = fake_and_client(SubscriptionConfig::default()).await;
    let time = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_439_044_120);
    let id = fake.publish_with(
        SUBSCRIPTION,
        b"chosen".to_vec(),
        NO_ATTRIBUTES,
        PublishOptions::default()
            .message_id("5200000000000001")
            .publish_time(time),
    );
    assert_eq!(id, "5200000000000001");
    let mut stream = RawStream::open(&mut client, first_request(0, 0))
        .await
        .unwrap();
    let received = stream.receive(1).await;
    let message = received[0].message.as_ref().unwrap();
    let publish_time = message.publish_time.as_ref().unwrap();
    assert_eq!(
        (publish_time.seconds, publish_time.nanos),
        (1_795_439_044, 120_000_000)
    );
    stream.send(StreamingPullRequest {
        ack_ids: vec![received[0].ack_id.clone()],
        ..Default::default()
    });
    fake.wait_for(SUBSCRIPTION, WAIT, |s| s.acked.len() == 1)
        .await
        .expect("acked");

    // Published again under its id once acknowledged: a redelivery, counted as the second.
    fake.publish_with(
        SUBSCRIPTION,
        b"chosen".to_vec(),
        NO_ATTRIBUTES,
        PublishOptions::default().message_id(&id),
    );
    let again = stream.receive(1).await;
    assert_eq!(message_id(&again[0]), id);
    assert_eq!(fake.snapshot(SUBSCRIPTION).deliveries_of(&id), 2);
    // Ids the fake picks do not collide with chosen ones that look like them.
    let next = fake.publish(SUBSCRIPTION, b"next".to_vec(), NO_ATTRIBUTES);
    assert_ne!(next, id);
}

#[tokio::test]
#[should_panic(expected = "still pending")]
async fn a_pending_message_id_cannot_be_published_again() {
    let fake = PubsubTestServer::start().await;
    fake.create_subscription(SUBSCRIPTION);
    let id = fake.publish(SUBSCRIPTION, b"1".to_vec(), NO_ATTRIBUTES);
    fake.publish_with(
        SUBSCRIPTION,
        b"1".to_vec(),
        NO_ATTRIBUTES,
        PublishOptions::default().message_id(id),
    );
}
