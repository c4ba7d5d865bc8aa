//! The `google.pubsub.v1.Subscriber` gRPC service of the fake: StreamingPull, Acknowledge and
//! ModifyAckDeadline, translated onto the broker. Every other Subscriber method answers
//! UNIMPLEMENTED (the generated default), which the call log makes visible.

use crate::broker::Broker;
use crate::proto::subscriber_server::Subscriber;
use crate::proto::{
    AcknowledgeRequest, ModifyAckDeadlineRequest, StreamingPullRequest, StreamingPullResponse,
};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::codegen::tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};

#[derive(Debug, Clone)]
pub(crate) struct SubscriberService {
    pub(crate) broker: Arc<Broker>,
}

#[tonic::async_trait]
impl Subscriber for SubscriberService {
    async fn modify_ack_deadline(
        &self,
        request: Request<ModifyAckDeadlineRequest>,
    ) -> Result<Response<()>, Status> {
        let request = request.into_inner();
        self.broker.modify_ack_deadline(
            &request.subscription,
            &request.ack_ids,
            request.ack_deadline_seconds,
        )?;
        Ok(Response::new(()))
    }

    async fn acknowledge(
        &self,
        request: Request<AcknowledgeRequest>,
    ) -> Result<Response<()>, Status> {
        let request = request.into_inner();
        self.broker
            .acknowledge(&request.subscription, &request.ack_ids)?;
        Ok(Response::new(()))
    }

    type StreamingPullStream = UnboundedReceiverStream<Result<StreamingPullResponse, Status>>;

    async fn streaming_pull(
        &self,
        request: Request<Streaming<StreamingPullRequest>>,
    ) -> Result<Response<Self::StreamingPullStream>, Status> {
        let mut inbound = request.into_inner();
        let first = inbound.message().await?.ok_or_else(|| {
            Status::invalid_argument("StreamingPull needs a first request naming a subscription")
        })?;
        let (outbound, responses) = mpsc::unbounded_channel();
        let ended = CancellationToken::new();
        let id = self
            .broker
            .open_stream(&first, outbound.clone(), ended.clone())?;
        let broker = self.broker.clone();
        let subscription = first.subscription;
        // Reads the client's later requests (acks, deadline changes, keepalives) until the
        // client closes its side, the connection drops, or the fake ends the stream.
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    _ = ended.cancelled() => break,
                    next = inbound.message() => next,
                };
                match next {
                    Ok(Some(request)) => {
                        if let Err(status) = broker.stream_request(&subscription, id, &request) {
                            let _ = outbound.send(Err(status));
                            break;
                        }
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            broker.close_stream(&subscription, id);
        });
        Ok(Response::new(UnboundedReceiverStream::new(responses)))
    }
}
