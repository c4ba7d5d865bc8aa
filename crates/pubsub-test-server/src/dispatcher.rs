//! The one task that delivers messages and expires leases.
//!
//! It runs whenever the broker reports a change (publish, ack, nack, a stream opening) and when
//! the earliest lease runs out, so redelivery after expiry happens on time without polling.
//! It outlives restarts of the gRPC listener: leases keep running out while the fake is
//! stopped, as they would while a client is cut off from the real service.

use crate::broker::Broker;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub(crate) fn spawn(broker: Arc<Broker>, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let next_deadline = broker.tick(Instant::now());
            let expiry = async {
                match next_deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = broker.work() => {}
                _ = expiry => {}
            }
        }
    })
}
