//! A minimal Socket.IO v5 client over Engine.IO v4 WebSocket transport: just what a desktop does
//! to receive live events, cheap enough to run ten thousand of in one process (the benchmark)
//! and exact enough to assert on (the tests).
//!
//! The exchange, as text frames on `ws://<connector>/socket.io/?EIO=4&transport=websocket`:
//! - server `0{"sid":..,"pingInterval":..}` (Engine.IO open);
//! - client `40{"token":"<jwt>"}` (Socket.IO connect with auth), server `40{"sid":..}`, or
//!   `44{"message":..}` when the token is refused;
//! - client `42<id>["join-conversation",<argument>]`, server acknowledges `43<id>[true,"<name>"]`;
//! - events arrive as `42["<event>",{...}]`;
//! - the server pings with `2`, the client answers `3`; `41` or a close ends the session.
//!
//! The desktops themselves use npm's `socket.io-client`; the Node suite in
//! `ui-connector/tests/socketio` checks the connector against it. This client exists so that
//! Rust tests can drive live events (and fault scenarios such as a client that stops reading)
//! without Node.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use anyhow::{bail, Context};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Number of loopback source addresses clients are spread over (127.0.0.2 ..= 127.0.0.17); each
/// has its own ephemeral port range (see `/proc/sys/net/ipv4/ip_local_port_range`), so tens of
/// thousands of connections to one port do not run out of ephemeral ports.
pub const SOURCE_ADDRESSES: usize = 16;

/// The source address of client number `index`.
pub fn source_address(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 2 + (index % SOURCE_ADDRESSES) as u8)
}

/// Small buffers: tungstenite's default 128 KiB read buffer is zero-filled on every read, which
/// would make each idle client cost 128 KiB of resident memory in the load generator. Frames
/// larger than the buffer are still read whole (the buffer grows for them).
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
}

/// Opens an Engine.IO session over long-polling and returns its session id.
async fn polling_handshake(server: SocketAddr) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(server).await.context("TCP connect")?;
    let request = format!(
        "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    let open = text
        .find("0{")
        .map(|start| &text[start + 1..])
        .with_context(|| format!("no Engine.IO open packet in {text:?}"))?;
    let end = open.find('}').map(|i| i + 1).unwrap_or(open.len());
    let packet: Value = serde_json::from_str(&open[..end])?;
    packet["sid"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no sid in {packet}"))
}

/// A connected, authenticated Socket.IO client.
pub struct SocketClient {
    ws: WebSocketStream<TcpStream>,
    next_ack: u64,
    /// Event frames (`["<event>",...]`) that arrived while waiting for something else, with
    /// their arrival time.
    early: VecDeque<(String, Instant)>,
}

/// Why [`SocketClient::run`] returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The server closed the connection or disconnected the socket.
    ByServer,
}

/// One event as a test reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    /// The first argument (the connector's events have exactly one).
    pub payload: Value,
}

impl SocketClient {
    /// Connects from 127.0.0.1 and authenticates with `token`.
    pub async fn connect(server: SocketAddr, token: &str) -> anyhow::Result<Self> {
        Self::connect_from(server, Ipv4Addr::LOCALHOST, token).await
    }

    /// Connects from `source` to `server` and authenticates with `token`; an error carries the
    /// server's refusal (`connection refused: {"message": ...}`).
    pub async fn connect_from(
        server: SocketAddr,
        source: Ipv4Addr,
        token: &str,
    ) -> anyhow::Result<Self> {
        let socket = TcpSocket::new_v4()?;
        socket
            .bind(SocketAddr::from((source, 0)))
            .with_context(|| format!("bind {source}"))?;
        let stream = socket.connect(server).await.context("TCP connect")?;
        stream.set_nodelay(true)?;
        // Closing resets the connection instead of leaving it in TIME_WAIT for a minute: tens
        // of thousands of those would hold ports other programs on the machine may want.
        stream.set_zero_linger()?;
        let url = format!("ws://{server}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(ws_config()))
            .await
            .context("WebSocket handshake")?;
        let mut client = Self {
            ws,
            next_ack: 0,
            early: VecDeque::new(),
        };
        let open = client.next_text().await?;
        if !open.starts_with('0') {
            bail!("expected an Engine.IO open packet, got {open:?}");
        }
        let connect = format!("40{}", serde_json::json!({ "token": token }));
        client.ws.send(Message::text(connect)).await?;
        loop {
            let frame = client.next_text().await?;
            if frame.starts_with("40") {
                return Ok(client);
            }
            if let Some(reason) = frame.strip_prefix("44") {
                bail!("connection refused: {reason}");
            }
            client.handle_other(frame).await?;
        }
    }

    /// Connects as browsers' `socket.io-client` does by default: a long-polling handshake, then
    /// an upgrade of that session to WebSocket (`2probe`, `3probe`, `5`), then the Socket.IO
    /// connect with `token` over the WebSocket.
    pub async fn connect_upgrading(server: SocketAddr, token: &str) -> anyhow::Result<Self> {
        let session = polling_handshake(server).await?;
        let stream = TcpStream::connect(server).await.context("TCP connect")?;
        stream.set_nodelay(true)?;
        let url = format!("ws://{server}/socket.io/?EIO=4&transport=websocket&sid={session}");
        let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(ws_config()))
            .await
            .context("WebSocket upgrade")?;
        let mut client = Self {
            ws,
            next_ack: 0,
            early: VecDeque::new(),
        };
        client.ws.send(Message::text("2probe")).await?;
        let probe = client.next_text().await?;
        if probe != "3probe" {
            bail!("expected 3probe, got {probe:?}");
        }
        client.ws.send(Message::text("5")).await?;
        let connect = format!("40{}", serde_json::json!({ "token": token }));
        client.ws.send(Message::text(connect)).await?;
        loop {
            let frame = client.next_text().await?;
            if frame.starts_with("40") {
                return Ok(client);
            }
            if let Some(reason) = frame.strip_prefix("44") {
                bail!("connection refused: {reason}");
            }
            client.handle_other(frame).await?;
        }
    }

    /// Emits `event` with `argument` and returns the acknowledgement's arguments.
    pub async fn emit_with_ack(&mut self, event: &str, argument: Value) -> anyhow::Result<Value> {
        let id = self.next_ack;
        self.next_ack += 1;
        let packet = format!("42{id}{}", serde_json::json!([event, argument]));
        self.ws.send(Message::text(packet)).await?;
        let ack_prefix = format!("43{id}");
        loop {
            let frame = self.next_text().await?;
            if let Some(arguments) = frame.strip_prefix(&ack_prefix) {
                return Ok(serde_json::from_str(arguments)?);
            }
            self.handle_other(frame).await?;
        }
    }

    /// Joins a conversation (a name, or `{conversation_name, since}`) and returns the
    /// acknowledgement; an error unless it starts with `true`.
    pub async fn join(&mut self, argument: impl Into<Value>) -> anyhow::Result<Value> {
        let ack = self
            .emit_with_ack("join-conversation", argument.into())
            .await?;
        if ack.get(0) != Some(&Value::Bool(true)) {
            bail!("join-conversation refused: {ack}");
        }
        Ok(ack)
    }

    /// The next event; `None` once the server disconnected the socket or closed the connection.
    pub async fn next_event(&mut self) -> anyhow::Result<Option<Event>> {
        let frame = match self.early.pop_front() {
            Some((frame, _)) => frame,
            None => loop {
                let frame = match self.next_text().await {
                    Ok(frame) => frame,
                    Err(_) => return Ok(None),
                };
                if frame.starts_with("42") {
                    break frame;
                }
                if frame == "1" || frame.starts_with("41") {
                    return Ok(None);
                }
                if frame == "2" {
                    self.ws.send(Message::text("3")).await?;
                }
            },
        };
        let arguments: Vec<Value> = serde_json::from_str(&frame[2..])?;
        let mut arguments = arguments.into_iter();
        let name = match arguments.next() {
            Some(Value::String(name)) => name,
            other => bail!("an event without a name: {other:?}"),
        };
        Ok(Some(Event {
            name,
            payload: arguments.next().unwrap_or(Value::Null),
        }))
    }

    /// Receives until the server ends the connection, answering pings and passing each event's
    /// arguments (`["<event>",{...}]`) with its arrival time to `on_event` (the benchmark).
    pub async fn run(mut self, mut on_event: impl FnMut(&str, Instant)) -> anyhow::Result<Ended> {
        for (frame, at) in std::mem::take(&mut self.early) {
            on_event(&frame[2..], at);
        }
        while let Some(message) = self.ws.next().await {
            let Message::Text(text) = message? else {
                continue;
            };
            let at = Instant::now();
            let frame = text.as_str();
            if let Some(arguments) = frame.strip_prefix("42") {
                on_event(arguments, at);
            } else if frame == "2" {
                self.ws.send(Message::text("3")).await?;
            } else if frame == "1" || frame.starts_with("41") {
                return Ok(Ended::ByServer);
            }
        }
        Ok(Ended::ByServer)
    }

    async fn next_text(&mut self) -> anyhow::Result<String> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
                Some(Ok(Message::Close(_))) | None => bail!("connection closed by the server"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// A frame that is not the one being waited for: pings are answered, events kept for
    /// later, anything else ignored.
    async fn handle_other(&mut self, frame: String) -> anyhow::Result<()> {
        if frame == "2" {
            self.ws.send(Message::text("3")).await?;
        } else if frame.starts_with("42") {
            self.early.push_back((frame, Instant::now()));
        } else if frame == "1" || frame.starts_with("41") {
            bail!("disconnected by the server");
        }
        Ok(())
    }
}
