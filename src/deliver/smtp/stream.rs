//! The sockets under lettre's SMTP connection: [`Plain`], our plaintext
//! socket (keeps the EHLO answer, shares its writing half with pipelined
//! transactions), and [`TlsStream`], lettre's implicit-TLS stream as a
//! tokio stream.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use lettre::transport::smtp::client::AsyncTokioStream;

use super::Writer;

/// Our plaintext socket as lettre's connection sees it: reads keep the first
/// bytes (the EHLO answer, to see PIPELINING), writes share the writing half
/// with pipelined transactions (never at the same time: a session serves one
/// send at a time).
#[derive(Debug)]
pub(super) struct Plain {
    pub(super) read: tokio::net::tcp::OwnedReadHalf,
    pub(super) write: Writer,
    pub(super) seen: Arc<Mutex<Vec<u8>>>,
    pub(super) peer: SocketAddr,
}

impl AsyncTokioStream for Plain {
    fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.peer)
    }
}

impl tokio::io::AsyncRead for Plain {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.read).poll_read(cx, buf);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() < 4096 {
            seen.extend_from_slice(&buf.filled()[before..]);
        }
        r
    }
}

impl Plain {
    fn with_writer<T>(
        &self,
        cx: &mut Context<'_>,
        f: impl FnOnce(Pin<&mut tokio::net::tcp::OwnedWriteHalf>, &mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        match self.write.try_lock() {
            Ok(mut w) => f(Pin::new(&mut *w), cx),
            Err(_) => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}

impl tokio::io::AsyncWrite for Plain {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.with_writer(cx, |w, cx| w.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.with_writer(cx, |w, cx| w.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.with_writer(cx, |w, cx| w.poll_shutdown(cx))
    }
}

/// lettre's TLS stream (futures-io) as the tokio stream its connection
/// takes, for implicit TLS on a socket we opened.
#[allow(deprecated)]
#[derive(Debug)]
pub(super) struct TlsStream(pub(super) lettre::transport::smtp::client::AsyncNetworkStream);

#[allow(deprecated)]
impl AsyncTokioStream for TlsStream {
    fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.peer_addr()
    }
}

impl tokio::io::AsyncRead for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let slice = buf.initialize_unfilled();
        match futures_io::AsyncRead::poll_read(Pin::new(&mut self.0), cx, slice) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl tokio::io::AsyncWrite for TlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        futures_io::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        futures_io::AsyncWrite::poll_flush(Pin::new(&mut self.0), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        futures_io::AsyncWrite::poll_close(Pin::new(&mut self.0), cx)
    }
}
