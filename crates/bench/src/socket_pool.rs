//! Many Socket.IO clients at once: connected and joined with bounded concurrency, each then
//! served by its own task that hands events to a shared handler. Dropping the pool closes every
//! socket.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use tokio::task::JoinHandle;

use socketio_test_client::{source_address, SocketClient};

use crate::payload::clock_ns_at;

/// Longest time one client may take to connect and join.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Called with the socket's index in the pool, the event arguments and the arrival time.
pub type EventHandler = Arc<dyn Fn(usize, &str, u64) + Send + Sync>;

/// What to open.
pub struct PoolSpec<'a> {
    pub server: SocketAddr,
    pub token: &'a str,
    /// The conversation each socket joins (one socket per entry).
    pub conversations: Vec<String>,
    /// Connections in progress at once.
    pub concurrency: usize,
    /// Offset into the source addresses (so pools on one machine spread over all of them).
    pub source_offset: usize,
}

pub struct SocketPool {
    tasks: Vec<JoinHandle<()>>,
    ended: Arc<AtomicUsize>,
    /// How long connecting and joining every socket took.
    pub open_time: Duration,
}

impl SocketPool {
    /// Connects and joins every socket, each served by its task as soon as it has joined;
    /// fails (closing those already open) if any socket cannot connect or join.
    pub async fn open(spec: PoolSpec<'_>, handler: EventHandler) -> anyhow::Result<Self> {
        let started = Instant::now();
        let server = spec.server;
        let source_offset = spec.source_offset;
        let token = spec.token;
        let ended = Arc::new(AtomicUsize::new(0));
        let results: Vec<anyhow::Result<JoinHandle<()>>> =
            futures::stream::iter(spec.conversations.into_iter().enumerate())
                .map(|(index, conversation)| {
                    let handler = handler.clone();
                    let ended = ended.clone();
                    async move {
                        let client = tokio::time::timeout(JOIN_TIMEOUT, async {
                            let source = source_address(source_offset + index);
                            let mut client =
                                SocketClient::connect_from(server, source, token).await?;
                            client.join(conversation.as_str()).await?;
                            anyhow::Ok(client)
                        })
                        .await
                        .context("timed out")
                        .and_then(|r| r)
                        .with_context(|| format!("socket {index} ({conversation})"))?;
                        Ok(tokio::spawn(async move {
                            let _ = client
                                .run(|event, at| handler(index, event, clock_ns_at(at)))
                                .await;
                            ended.fetch_add(1, Ordering::Relaxed);
                        }))
                    }
                })
                .buffer_unordered(spec.concurrency.max(1))
                .collect()
                .await;
        let open_time = started.elapsed();
        let mut tasks = Vec::with_capacity(results.len());
        let mut first_error = None;
        for result in results {
            match result {
                Ok(task) => tasks.push(task),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let pool = Self {
            tasks,
            ended,
            open_time,
        };
        match first_error {
            None => Ok(pool),
            Some(e) => {
                pool.close().await;
                Err(e)
            }
        }
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Sockets the server has closed since they joined (should stay 0).
    pub fn ended_by_server(&self) -> usize {
        self.ended.load(Ordering::Relaxed)
    }

    /// Closes every socket and waits until their tasks are gone.
    pub async fn close(mut self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for SocketPool {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
