//! Lingering close: when the server is done with a connection, it keeps reading (and
//! discarding) until the client closes its end, for at most [`LINGER`].
//!
//! Without it, a stop loses the end of replies. At a graceful stop, the HTTP/2 server
//! sends a call's last frames (the gRPC status trailers), half-closes and drops the socket
//! at once. A client that meanwhile writes flow-control updates then gets EPIPE, and
//! hyper's client drops the connection before reading the frames still waiting in its
//! socket: a call that succeeded is reported as a broken pipe. Lingering keeps our read
//! side open, so the client's writes succeed, it reads everything, sees the end of the
//! stream and closes; then we close too.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnixListenerStream;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::server::{Connected, UdsConnectInfo};

/// The longest a closed connection waits for its client to close.
pub const LINGER: Duration = Duration::from_secs(1);

/// Hands out [`Lingering`] connections and waits until all of them are fully closed.
#[derive(Debug)]
pub struct Lingerer {
    open: mpsc::Sender<()>,
    closed: mpsc::Receiver<()>,
}

impl Default for Lingerer {
    fn default() -> Self {
        let (open, closed) = mpsc::channel(1);
        Lingerer { open, closed }
    }
}

impl Lingerer {
    /// A lingerer with no connections.
    pub fn new() -> Self {
        Lingerer::default()
    }

    /// The connections accepted on `listener`, each closing lingering.
    pub fn incoming(
        &self,
        listener: UnixListener,
    ) -> impl Stream<Item = io::Result<Lingering>> + Send + 'static {
        let open = self.open.clone();
        UnixListenerStream::new(listener).map(move |accepted| {
            accepted.map(|stream| Lingering {
                stream: Some(stream),
                open: open.clone(),
            })
        })
    }

    /// Waits until every connection accepted through this lingerer is closed, lingering
    /// included; connections still being served keep it waiting.
    pub async fn closed(self) {
        let Lingerer { open, mut closed } = self;
        drop(open);
        // Nothing is ever sent: recv answers None once every wrapped connection is gone.
        let _ = closed.recv().await;
    }
}

/// A served connection that closes lingering (see the module documentation).
#[derive(Debug)]
pub struct Lingering {
    /// Some until dropped.
    stream: Option<UnixStream>,
    /// Held until the connection is fully closed.
    open: mpsc::Sender<()>,
}

impl Lingering {
    fn stream(self: Pin<&mut Self>) -> Pin<&mut UnixStream> {
        Pin::new(
            self.get_mut()
                .stream
                .as_mut()
                .expect("present until dropped"),
        )
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let (Some(mut stream), Ok(runtime)) =
            (self.stream.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let open = self.open.clone();
        runtime.spawn(async move {
            let mut sink = [0u8; 4096];
            let drain = async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} };
            let _ = tokio::time::timeout(LINGER, drain).await;
            drop(open);
        });
    }
}

impl AsyncRead for Lingering {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.stream().poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.stream().poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_flush(cx)
    }
    /// Half-closes: the client sees the end of our data, we still read its frames.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_shutdown(cx)
    }
}

impl Connected for Lingering {
    type ConnectInfo = UdsConnectInfo;
    fn connect_info(&self) -> UdsConnectInfo {
        self.stream
            .as_ref()
            .expect("present until dropped")
            .connect_info()
    }
}
