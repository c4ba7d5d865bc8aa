//! One open StreamingPull stream as the fake sees it: where its deliveries go, how much it may
//! have outstanding, how long its leases are, and how to end it.

use crate::flow_control::FlowControl;
use crate::proto::{ReceivedMessage, StreamingPullRequest, StreamingPullResponse};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;
use tonic::Status;

/// What a client asked for when it opened a stream (its first request), kept for tests to check
/// that the subscriber passes on its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    pub client_id: String,
    pub stream_ack_deadline_seconds: i32,
    pub max_outstanding_messages: i64,
    pub max_outstanding_bytes: i64,
    pub protocol_version: i64,
}

impl From<&StreamingPullRequest> for StreamSettings {
    fn from(first: &StreamingPullRequest) -> Self {
        Self {
            client_id: first.client_id.clone(),
            stream_ack_deadline_seconds: first.stream_ack_deadline_seconds,
            max_outstanding_messages: first.max_outstanding_messages,
            max_outstanding_bytes: first.max_outstanding_bytes,
            protocol_version: first.protocol_version,
        }
    }
}

/// The outbound half of a stream: the response channel tonic drains onto the wire.
pub(crate) type Outbound = UnboundedSender<Result<StreamingPullResponse, Status>>;

#[derive(Debug)]
pub(crate) struct PullStream {
    pub(crate) flow: FlowControl,
    /// The lease each delivery on this stream starts with.
    pub(crate) ack_deadline: Duration,
    outbound: Outbound,
    /// Cancelled when the fake ends the stream, so the task reading the client's requests stops.
    ended: CancellationToken,
}

impl PullStream {
    pub(crate) fn new(
        settings: &StreamSettings,
        outbound: Outbound,
        ended: CancellationToken,
    ) -> Self {
        Self {
            flow: FlowControl::new(
                settings.max_outstanding_messages,
                settings.max_outstanding_bytes,
            ),
            ack_deadline: Duration::from_secs(
                u64::try_from(settings.stream_ack_deadline_seconds).unwrap_or(0),
            ),
            outbound,
            ended,
        }
    }

    /// Sends one batch. `false` when the client is gone (the response side was dropped).
    pub(crate) fn deliver(&self, received_messages: Vec<ReceivedMessage>) -> bool {
        self.outbound
            .send(Ok(StreamingPullResponse {
                received_messages,
                ..Default::default()
            }))
            .is_ok()
    }

    /// Ends the stream with `status`, as the service does when it drops a stream.
    pub(crate) fn end_with(self, status: Status) {
        let _ = self.outbound.send(Err(status));
        self.ended.cancel();
    }
}
