//! Modbus TCP: one connection per host:port, shared by every unit id behind it (a gateway, or a
//! charger that exposes several sockets), owned by one task so requests never interleave.
//!
//! The connection is made lazily and re-made after any failure. A device that closes idle
//! connections (Alfen does after 60 s) is handled by retrying the request once on a fresh
//! connection when a reused one turns out to be dead. After a timeout the connection is
//! dropped: a late answer would otherwise be read as the answer to the next request.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_modbus::client::Context;
use tokio_modbus::slave::Slave;

use super::backoff::Backoff;
use super::error::{ErrorKind, ModbusError};
use super::exchange::{self, Job, Outcome};
use super::request::Request;

/// A byte stream a Modbus client can run over.
pub trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> AsyncStream for T {}

/// A connected stream of any kind: a real socket, or an in-memory pipe in the simulation.
pub type BoxedStream = Box<dyn AsyncStream>;

/// How a TCP link reaches its device; swapped for an in-memory transport in simulation.
pub trait Connector: Send + Sync + 'static {
    fn connect(&self, host: &str, port: u16) -> BoxFuture<'static, io::Result<BoxedStream>>;
}

/// Real TCP, with Nagle off: Modbus requests are tiny and latency-bound.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpConnector;

impl Connector for TcpConnector {
    fn connect(&self, host: &str, port: u16) -> BoxFuture<'static, io::Result<BoxedStream>> {
        let host = host.to_owned();
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as BoxedStream)
        })
    }
}

/// Handle to the shared connection to one host:port. Cheap to clone.
#[derive(Clone)]
pub struct TcpLink {
    tx: mpsc::Sender<Job>,
    host: Arc<str>,
    port: u16,
    timeout: Duration,
}

impl fmt::Debug for TcpLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpLink")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl TcpLink {
    /// Start the task owning the connection to `host:port`. Must be called within a tokio
    /// runtime. Nothing is connected until the first request.
    pub fn spawn(
        connector: Arc<dyn Connector>,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> TcpLink {
        let (tx, rx) = mpsc::channel(exchange::QUEUE);
        let task = LinkTask {
            connector,
            host: host.to_owned(),
            port,
            conn: None,
            ever_connected: false,
            backoff: Backoff::default(),
        };
        tokio::spawn(task.run(rx));
        TcpLink {
            tx,
            host: host.into(),
            port,
            timeout,
        }
    }

    /// The same connection, with another per-request timeout (devices behind one gateway
    /// may be configured differently).
    pub fn with_timeout(&self, timeout: Duration) -> TcpLink {
        TcpLink {
            timeout,
            ..self.clone()
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) async fn call(&self, unit: u8, request: Request) -> Outcome {
        exchange::submit(&self.tx, unit, request, self.timeout).await
    }
}

/// tokio-modbus wants a `Debug` transport; a boxed stream has none to offer.
struct Transport(BoxedStream);

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Transport")
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

struct LinkTask {
    connector: Arc<dyn Connector>,
    host: String,
    port: u16,
    conn: Option<Context>,
    /// A connection made after this one is a reconnect.
    ever_connected: bool,
    backoff: Backoff,
}

impl LinkTask {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        // Ends when every handle is gone; the connection is dropped with the task.
        while let Some(job) = rx.recv().await {
            let outcome = self.handle(job.unit, &job.request, job.timeout).await;
            // The caller may have given up waiting; nothing to do then.
            let _ = job.reply.send(outcome);
        }
    }

    async fn handle(&mut self, unit: u8, request: &Request, timeout: Duration) -> Outcome {
        let mut reconnected = false;
        // At most two rounds: the second only when a reused connection proved dead.
        for round in 0..2 {
            let fresh = self.conn.is_none();
            if fresh {
                if round == 0 {
                    if let Err(wait) = self.backoff.ready(Instant::now()) {
                        let msg =
                            format!("{}:{} down, next attempt in {wait:?}", self.host, self.port);
                        return Outcome {
                            result: Err(ModbusError::Link(msg)),
                            reconnected,
                        };
                    }
                }
                match connect(self.connector.as_ref(), &self.host, self.port, timeout).await {
                    Ok(ctx) => {
                        reconnected |= self.ever_connected;
                        self.ever_connected = true;
                        self.conn = Some(ctx);
                    }
                    Err(err) => {
                        self.backoff.failed(Instant::now());
                        return Outcome {
                            result: Err(err),
                            reconnected,
                        };
                    }
                }
            }
            let Some(ctx) = self.conn.as_mut() else {
                break;
            };
            let result = exchange::execute(ctx, unit, request, timeout).await;
            match &result {
                Ok(_) | Err(ModbusError::Exception { .. }) => self.backoff.reset(),
                Err(err) => {
                    // Timeout: a late answer would desynchronise the stream. Bad frame: the
                    // stream position is unknown. Link: the socket is gone. Start over.
                    self.conn = None;
                    if err.kind() == ErrorKind::Link {
                        if !fresh && round == 0 {
                            // Most likely the device closed an idle connection.
                            continue;
                        }
                        self.backoff.failed(Instant::now());
                    }
                }
            }
            return Outcome {
                result,
                reconnected,
            };
        }
        Outcome {
            result: Err(ModbusError::Link("no connection".into())),
            reconnected,
        }
    }
}

/// Connect and attach a client context, within `timeout`.
async fn connect(
    connector: &dyn Connector,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<Context, ModbusError> {
    match tokio::time::timeout(timeout, connector.connect(host, port)).await {
        Ok(Ok(stream)) => Ok(tokio_modbus::client::tcp::attach_slave(
            Transport(stream),
            Slave::tcp_device(),
        )),
        Ok(Err(err)) => Err(ModbusError::Link(format!("connect {host}:{port}: {err}"))),
        Err(_elapsed) => Err(ModbusError::Link(format!(
            "connect {host}:{port}: no answer within {timeout:?}"
        ))),
    }
}
