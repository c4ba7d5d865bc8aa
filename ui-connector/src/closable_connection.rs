//! Connections the connector can close from outside, one by one.
//!
//! A desktop that stops reading fills its socket's packet buffer, and then nothing can be
//! queued for it any more, not even Socket.IO's disconnect packet; socketioxide offers no way
//! to close one socket's transport. So the connector accepts connections through a
//! [`ClosableListener`]: every request carries the [`CloseHandle`] of the TCP connection it
//! arrived on (as axum's `ConnectInfo`), and closing the handle makes that connection's next read
//! and write fail, even one blocked on a full TCP window. The WebSocket on top ends, the
//! socket is disconnected, and its buffers are freed.
//!
//! A socket that upgraded from long-polling to WebSocket keeps the request parts of its polling
//! handshake, whose connection is not its WebSocket; [`UpgradedConnections`] remembers the
//! handle of each upgrade request by session id, which Socket.IO sockets share with their
//! Engine.IO session.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Closes one accepted connection; cheap to clone.
#[derive(Clone, Default)]
pub struct CloseHandle(Arc<Switch>);

#[derive(Default)]
struct Switch {
    closed: AtomicBool,
    reader: AtomicWaker,
    writer: AtomicWaker,
}

impl CloseHandle {
    /// Makes the connection's reads and writes fail from now on (waking any that wait).
    pub fn close(&self) {
        self.0.closed.store(true, Ordering::SeqCst);
        self.0.reader.wake();
        self.0.writer.wake();
    }

    fn is_closed(&self) -> bool {
        self.0.closed.load(Ordering::SeqCst)
    }
}

impl std::fmt::Debug for CloseHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloseHandle")
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// A TCP listener whose connections carry a [`CloseHandle`].
pub struct ClosableListener(TcpListener);

impl ClosableListener {
    pub fn new(listener: TcpListener) -> Self {
        Self(listener)
    }
}

impl Listener for ClosableListener {
    type Io = ClosableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, address) = Listener::accept(&mut self.0).await;
        (
            ClosableStream {
                inner: stream,
                handle: CloseHandle::default(),
            },
            address,
        )
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

impl Connected<IncomingStream<'_, ClosableListener>> for CloseHandle {
    fn connect_info(stream: IncomingStream<'_, ClosableListener>) -> Self {
        stream.io().handle.clone()
    }
}

/// A TCP stream that fails once its handle is closed.
pub struct ClosableStream {
    inner: TcpStream,
    handle: CloseHandle,
}

fn closed_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "closed by the connector")
}

/// Polls `io`, failing when `handle` is closed; a poll that waits registers with `waker` so
/// that closing wakes it.
fn guarded<T>(
    handle: &CloseHandle,
    waker: &AtomicWaker,
    cx: &mut Context<'_>,
    io: impl FnOnce(&mut Context<'_>) -> Poll<io::Result<T>>,
) -> Poll<io::Result<T>> {
    if handle.is_closed() {
        return Poll::Ready(Err(closed_error()));
    }
    match io(cx) {
        Poll::Pending => {
            waker.register(cx.waker());
            if handle.is_closed() {
                Poll::Ready(Err(closed_error()))
            } else {
                Poll::Pending
            }
        }
        ready => ready,
    }
}

impl AsyncRead for ClosableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        guarded(&this.handle, &this.handle.0.reader, cx, |cx| {
            Pin::new(&mut this.inner).poll_read(cx, buf)
        })
    }
}

impl AsyncWrite for ClosableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        guarded(&this.handle, &this.handle.0.writer, cx, |cx| {
            Pin::new(&mut this.inner).poll_write(cx, buf)
        })
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        guarded(&this.handle, &this.handle.0.writer, cx, |cx| {
            Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
        })
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        guarded(&this.handle, &this.handle.0.writer, cx, |cx| {
            Pin::new(&mut this.inner).poll_flush(cx)
        })
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The connection of each WebSocket that upgraded from long-polling, by session id.
#[derive(Default)]
pub struct UpgradedConnections {
    by_session: Mutex<HashMap<String, CloseHandle>>,
}

impl UpgradedConnections {
    pub fn remember(&self, session: &str, handle: CloseHandle) {
        self.by_session
            .lock()
            .expect("upgraded connections lock")
            .insert(session.to_owned(), handle);
    }

    pub fn take(&self, session: &str) -> Option<CloseHandle> {
        self.by_session
            .lock()
            .expect("upgraded connections lock")
            .remove(session)
    }

    pub fn forget(&self, session: &str) {
        self.take(session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::task::ArcWake;

    /// A waker that records being woken.
    #[derive(Default)]
    struct Woken(AtomicBool);

    impl ArcWake for Woken {
        fn wake_by_ref(this: &Arc<Self>) {
            this.0.store(true, Ordering::SeqCst);
        }
    }

    /// An accepted connection whose peer never reads nor writes.
    async fn accepted() -> (ClosableStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut listener = ClosableListener::new(listener);
        let peer = TcpStream::connect(address).await.unwrap();
        let (stream, _) = listener.accept().await;
        (stream, peer)
    }

    #[tokio::test]
    async fn closing_wakes_and_fails_a_write_blocked_on_a_full_window() {
        let (mut stream, _peer) = accepted().await;
        let woken = Arc::new(Woken::default());
        let waker = futures::task::waker(woken.clone());
        let mut cx = Context::from_waker(&waker);
        let chunk = vec![0u8; 64 * 1024];
        // Write until the peer's window and our send buffer are full.
        while let Poll::Ready(written) = Pin::new(&mut stream).poll_write(&mut cx, &chunk) {
            written.unwrap();
        }
        assert!(!woken.0.load(Ordering::SeqCst));
        stream.handle.clone().close();
        assert!(
            woken.0.load(Ordering::SeqCst),
            "the waiting writer is woken"
        );
        match Pin::new(&mut stream).poll_write(&mut cx, &chunk) {
            Poll::Ready(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionAborted),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn closing_wakes_and_fails_a_waiting_read() {
        let (mut stream, _peer) = accepted().await;
        let woken = Arc::new(Woken::default());
        let waker = futures::task::waker(woken.clone());
        let mut cx = Context::from_waker(&waker);
        let mut storage = [0u8; 16];
        let mut buf = ReadBuf::new(&mut storage);
        assert!(Pin::new(&mut stream)
            .poll_read(&mut cx, &mut buf)
            .is_pending());
        stream.handle.clone().close();
        assert!(
            woken.0.load(Ordering::SeqCst),
            "the waiting reader is woken"
        );
        assert!(matches!(
            Pin::new(&mut stream).poll_read(&mut cx, &mut buf),
            Poll::Ready(Err(_))
        ));
    }
}
