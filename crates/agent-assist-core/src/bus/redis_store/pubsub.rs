//! The listener's pub/sub connection, in either mode, split into the half that subscribes
//! ([`PubSubSink`]) and the half that receives ([`PubSubStream`]).
//!
//! Standalone, it is the crate's classic pub/sub connection (`SUBSCRIBE`); its stream ends when
//! the connection is lost, and the listener reconnects. On a Redis Cluster it is the crate's
//! cluster connection speaking RESP3, subscribed with `SSUBSCRIBE`, its pushes sent to a channel.
//! That connection survives topology changes, but its subscriptions may not, and it says so only
//! through pushes (found by the spike in `crates/redis-test-server/tests/sharded_*`):
//! - after a slot migrates, or its primary becomes a replica (failover), the old owner sends
//!   `sunsubscribe` for the slot's channels, which the crate records as an unsubscribe we asked
//!   for and never undoes: [`Delivery::Dropped`];
//! - when a node's connection breaks (crash), a `Disconnection` push; the crate subscribes again
//!   only when something makes it refresh its slot map: [`Delivery::NodeLost`].
//!
//! In both cases the listener subscribes again itself and fills the gap from history.

use std::time::Duration;

use futures::StreamExt;
use redis::cluster_async::ClusterConnection;
use redis::{ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::mpsc;

use super::connection::ClusterSettings;
use crate::bus::BusError;

/// Where the listener's connections come from.
pub(crate) enum PubSubSource {
    Standalone(redis::Client),
    Cluster(ClusterSettings),
}

/// What the receiving half brings.
pub(crate) enum Delivery {
    /// A live event.
    Message(redis::Msg),
    /// The server ended our subscription to this channel on its own (cluster: the slot moved, or
    /// its primary was demoted), or confirmed an unsubscribe of ours.
    Dropped(String),
    /// A cluster node's connection broke: the subscriptions it carried are gone.
    NodeLost,
    /// Nothing for the listener (subscription confirmations).
    Nothing,
}

/// The subscribing half.
pub(crate) enum PubSubSink {
    Standalone(redis::aio::PubSubSink),
    Cluster {
        connection: ClusterConnection,
        timeout: Duration,
    },
}

/// The receiving half.
pub(crate) enum PubSubStream {
    Standalone(redis::aio::PubSubStream),
    Cluster(mpsc::UnboundedReceiver<PushInfo>),
}

impl PubSubSource {
    /// A new connection, within `timeout`.
    pub(crate) async fn connect(
        &self,
        timeout: Duration,
    ) -> Result<(PubSubSink, PubSubStream), BusError> {
        let connect = async {
            match self {
                PubSubSource::Standalone(client) => {
                    let (sink, stream) = client.get_async_pubsub().await?.split();
                    Ok::<_, BusError>((
                        PubSubSink::Standalone(sink),
                        PubSubStream::Standalone(stream),
                    ))
                }
                PubSubSource::Cluster(settings) => {
                    let (pushes_tx, pushes) = mpsc::unbounded_channel();
                    let connection = settings
                        .builder()
                        .use_protocol(ProtocolVersion::RESP3)
                        .push_sender(pushes_tx)
                        .build()?
                        .get_async_connection()
                        .await?;
                    Ok((
                        PubSubSink::Cluster {
                            connection,
                            timeout,
                        },
                        PubSubStream::Cluster(pushes),
                    ))
                }
            }
        };
        match tokio::time::timeout(timeout, connect).await {
            Ok(result) => result,
            Err(_) => Err(BusError::Timeout(timeout)),
        }
    }
}

impl PubSubSink {
    /// Subscribes to `channels`. On a cluster, one `SSUBSCRIBE` at a time: concurrent
    /// subscriptions redirected to a newly promoted primary can each open a connection to it,
    /// and the crate keeps only the last one, silently losing the others (spike,
    /// `sharded_pubsub_failover.rs`).
    pub(crate) async fn subscribe(&mut self, channels: Vec<String>) -> Result<(), BusError> {
        match self {
            PubSubSink::Standalone(sink) => Ok(sink.subscribe(channels).await?),
            PubSubSink::Cluster {
                connection,
                timeout,
            } => {
                for channel in channels {
                    match tokio::time::timeout(*timeout, connection.ssubscribe(&channel)).await {
                        Ok(result) => result?,
                        Err(_) => return Err(BusError::Timeout(*timeout)),
                    }
                }
                Ok(())
            }
        }
    }

    pub(crate) async fn unsubscribe(&mut self, channel: String) -> Result<(), BusError> {
        match self {
            PubSubSink::Standalone(sink) => Ok(sink.unsubscribe(channel).await?),
            PubSubSink::Cluster {
                connection,
                timeout,
            } => match tokio::time::timeout(*timeout, connection.sunsubscribe(&channel)).await {
                Ok(result) => Ok(result?),
                Err(_) => Err(BusError::Timeout(*timeout)),
            },
        }
    }
}

impl PubSubStream {
    /// The next delivery; `None` once the connection is gone for good.
    pub(crate) async fn next(&mut self) -> Option<Delivery> {
        match self {
            PubSubStream::Standalone(stream) => stream.next().await.map(Delivery::Message),
            PubSubStream::Cluster(pushes) => pushes.recv().await.map(Self::classify),
        }
    }

    fn classify(push: PushInfo) -> Delivery {
        match push.kind {
            PushKind::SMessage => {
                redis::Msg::from_push_info(push).map_or(Delivery::Nothing, Delivery::Message)
            }
            PushKind::SUnsubscribe => match push.data.first() {
                Some(Value::BulkString(channel)) => {
                    Delivery::Dropped(String::from_utf8_lossy(channel).into_owned())
                }
                _ => Delivery::Nothing,
            },
            PushKind::Disconnection => Delivery::NodeLost,
            _ => Delivery::Nothing,
        }
    }
}
