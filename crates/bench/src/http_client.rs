//! A keep-alive HTTP/1.1 client connection (raw hyper), one request at a time, as each of
//! Pub/Sub's push connections is: the load generators open as many as the concurrency they
//! want. Every request is bounded by [`REQUEST_TIMEOUT`].

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Longest wait for one response.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub struct HttpConnection {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
}

impl HttpConnection {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = tokio::time::timeout(REQUEST_TIMEOUT, TcpStream::connect(addr))
            .await
            .context("connect timed out")??;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes the connection.
            let _ = connection.await;
        });
        Ok(Self {
            sender,
            host: HeaderValue::from_str(&addr.to_string())?,
        })
    }

    /// `POST path` with a JSON body; returns the status (the body is read and dropped).
    pub async fn post_json(&mut self, path: &str, body: Bytes) -> anyhow::Result<u16> {
        self.post_json_authorized(path, body, None).await
    }

    /// [`post_json`](Self::post_json) with an `Authorization` header when given (a push token).
    pub async fn post_json_authorized(
        &mut self,
        path: &str,
        body: Bytes,
        authorization: Option<&HeaderValue>,
    ) -> anyhow::Result<u16> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, "application/json");
        if let Some(authorization) = authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        Ok(self.send(request.body(Full::new(body))?).await?.0)
    }

    /// `GET path`; returns the status and the body.
    pub async fn get(&mut self, path: &str) -> anyhow::Result<(u16, Bytes)> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header(HOST, self.host.clone())
            .body(Full::new(Bytes::new()))?;
        self.send(request).await
    }

    async fn send(&mut self, request: Request<Full<Bytes>>) -> anyhow::Result<(u16, Bytes)> {
        tokio::time::timeout(REQUEST_TIMEOUT, async {
            self.sender.ready().await?;
            let response = self.sender.send_request(request).await?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            Ok((status, body))
        })
        .await
        .context("request timed out")?
    }
}
