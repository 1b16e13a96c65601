//! Modbus RTU: one task owns each RS-485 line and serialises every device's requests on it,
//! keeping the line silent for `frame_gap` between an answer and the next request.
//!
//! A timeout or a garbled answer does not kill the line: the client context (whose decoder
//! state is then unknown) is dropped, whatever is still arriving is read and discarded until
//! the line is quiet, and a fresh context is made on the same port. If the port itself fails
//! (USB adapter unplugged), it is reopened by path with backoff.
//!
//! A transparent serial converter (RTU frames tunnelled over TCP) is the same line at the end
//! of a TCP connection: the same task and timing rules, with the connection as the "port",
//! re-made with backoff when it fails. A reused connection that proves dead (the converter
//! restarted, or drops idle clients) is re-made within the request that found out.

use std::fmt;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_modbus::client::Context;
use tokio_modbus::slave::Slave;

use super::backoff::Backoff;
use super::error::{ErrorKind, ModbusError};
use super::exchange::{self, Job, Outcome};
use super::request::Request;
use super::tcp::{AsyncStream, BoxedStream, Connector};
use crate::config::Bus;
use crate::devices::model::Parity;

/// Quiet time that ends discarding after a failed request, when `frame_gap` is shorter.
const MIN_QUIET: Duration = Duration::from_millis(20);
/// Upper bound on discarding, so a chattering line cannot stall the bus forever.
const MAX_DRAIN: Duration = Duration::from_secs(1);

/// How a bus behaves, apart from how its port is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtuSettings {
    /// The bus name from the config, used in labels and logs.
    pub name: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Silence kept between an answer and the next request.
    pub frame_gap: Duration,
}

impl From<&Bus> for RtuSettings {
    fn from(bus: &Bus) -> Self {
        RtuSettings {
            name: bus.name.clone(),
            timeout: bus.timeout,
            frame_gap: bus.frame_gap,
        }
    }
}

/// Handle to the task owning one serial line. Cheap to clone.
#[derive(Clone)]
pub struct RtuBus {
    tx: mpsc::Sender<Job>,
    name: Arc<str>,
    timeout: Duration,
}

impl fmt::Debug for RtuBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RtuBus")
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl RtuBus {
    /// Start the task owning the serial device of `bus`. Must be called within a tokio
    /// runtime. The port is opened on the first request, and reopened after it fails.
    pub fn open(bus: &Bus) -> RtuBus {
        Self::spawn(PortSource::Path(bus.clone()), RtuSettings::from(bus))
    }

    /// A bus over an already open stream (a pseudo-terminal, an in-memory pipe). If the
    /// stream fails it cannot be reopened, and every later request fails with a link error.
    pub fn from_stream<S: AsyncStream + 'static>(stream: S, settings: RtuSettings) -> RtuBus {
        Self::spawn(PortSource::Stream(Some(Box::new(stream))), settings)
    }

    /// The line behind a transparent serial converter at `host:port`, reached through
    /// `connector` on the first request and reconnected with backoff after a failure.
    /// `settings.timeout` also bounds each connection attempt.
    pub fn over_tcp(
        connector: Arc<dyn Connector>,
        host: &str,
        port: u16,
        settings: RtuSettings,
    ) -> RtuBus {
        let source = PortSource::Tcp {
            connector,
            host: host.to_owned(),
            port,
            timeout: settings.timeout,
        };
        Self::spawn(source, settings)
    }

    /// The same line, with another per-request timeout (devices on one converter may be
    /// configured differently).
    pub fn with_timeout(&self, timeout: Duration) -> RtuBus {
        RtuBus {
            timeout,
            ..self.clone()
        }
    }

    fn spawn(source: PortSource, settings: RtuSettings) -> RtuBus {
        let (tx, rx) = mpsc::channel(exchange::QUEUE);
        let task = BusTask {
            source,
            frame_gap: settings.frame_gap,
            port: None,
            ctx: None,
            ever_open: false,
            backoff: Backoff::default(),
            last_done: None,
            dirty: false,
        };
        tokio::spawn(task.run(rx));
        RtuBus {
            tx,
            name: settings.name.into(),
            timeout: settings.timeout,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) async fn call(&self, unit: u8, request: Request) -> Outcome {
        exchange::submit(&self.tx, unit, request, self.timeout).await
    }
}

enum PortSource {
    Path(Bus),
    /// Taken when first used; `None` afterwards.
    Stream(Option<BoxedStream>),
    /// A TCP connection to a transparent serial converter.
    Tcp {
        connector: Arc<dyn Connector>,
        host: String,
        port: u16,
        timeout: Duration,
    },
}

/// The open port, shared between the current client context and the task, so that the
/// context can be dropped and re-made without closing the port, and so the task can discard
/// input itself. Only one of them reads at a time: the task owns both.
#[derive(Clone)]
struct SharedPort {
    stream: Arc<Mutex<BoxedStream>>,
    /// Bytes received, to tell a garbled answer from silence when a request times out.
    bytes_in: Arc<AtomicU64>,
}

impl fmt::Debug for SharedPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedPort")
    }
}

impl SharedPort {
    fn new(stream: BoxedStream) -> Self {
        SharedPort {
            stream: Arc::new(Mutex::new(stream)),
            bytes_in: Arc::new(AtomicU64::new(0)),
        }
    }

    fn bytes_in(&self) -> u64 {
        self.bytes_in.load(Ordering::Relaxed)
    }

    fn with<R>(&self, f: impl FnOnce(Pin<&mut dyn AsyncStream>) -> R) -> R {
        // A poll never panics halfway through in a way that leaves the stream unusable, so a
        // poisoned lock is still a usable port.
        let mut guard = self.stream.lock().unwrap_or_else(PoisonError::into_inner);
        f(Pin::new(&mut **guard))
    }
}

impl AsyncRead for SharedPort {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = self.with(|s| s.poll_read(cx, buf));
        let read = buf.filled().len().saturating_sub(before);
        self.bytes_in.fetch_add(read as u64, Ordering::Relaxed);
        poll
    }
}

impl AsyncWrite for SharedPort {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.with(|s| s.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        self.with(|s| s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        self.with(|s| s.poll_shutdown(cx))
    }
}

/// Open a serial device: the bus's baud, parity and stop bits, always 8 data bits.
fn open_serial(bus: &Bus) -> Result<BoxedStream, ModbusError> {
    let parity = match bus.parity {
        Parity::None => tokio_serial::Parity::None,
        Parity::Even => tokio_serial::Parity::Even,
        Parity::Odd => tokio_serial::Parity::Odd,
    };
    let stop_bits = match bus.stop_bits {
        2 => tokio_serial::StopBits::Two,
        _ => tokio_serial::StopBits::One,
    };
    let builder = tokio_serial::new(path_str(&bus.device), bus.baud)
        .data_bits(tokio_serial::DataBits::Eight)
        .parity(parity)
        .stop_bits(stop_bits);
    tokio_serial::SerialStream::open(&builder)
        .map(|s| Box::new(s) as BoxedStream)
        .map_err(|err| ModbusError::Link(format!("open {}: {err}", bus.device.display())))
}

fn path_str(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

struct BusTask {
    source: PortSource,
    frame_gap: Duration,
    port: Option<SharedPort>,
    ctx: Option<Context>,
    /// A port opened after this one is a reconnect.
    ever_open: bool,
    backoff: Backoff,
    /// When the line last went quiet after an exchange.
    last_done: Option<Instant>,
    /// Input may still be arriving from a failed exchange.
    dirty: bool,
}

impl BusTask {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        // Ends when every handle is gone; the port is closed with the task.
        while let Some(job) = rx.recv().await {
            let outcome = self.handle(job.unit, &job.request, job.timeout).await;
            // Answer first, then clean up the line: the caller need not wait for that.
            let _ = job.reply.send(outcome);
            if self.dirty {
                self.drain().await;
            }
        }
    }

    async fn handle(&mut self, unit: u8, request: &Request, timeout: Duration) -> Outcome {
        let mut reconnected = false;
        // At most two rounds: the second only when a reused connection to a serial converter
        // proved dead (it dropped an idle client, or restarted), as for a TCP link.
        for round in 0..2 {
            let fresh = self.port.is_none();
            match self.ensure_port().await {
                Ok(reopened) => reconnected |= reopened,
                Err(err) => {
                    return Outcome {
                        result: Err(err),
                        reconnected,
                    }
                }
            }
            let Some(port) = self.port.clone() else {
                break;
            };
            if let Some(done) = self.last_done {
                tokio::time::sleep_until(done + self.frame_gap).await;
            }
            let ctx = self.ctx.get_or_insert_with(|| {
                tokio_modbus::client::rtu::attach_slave(port.clone(), Slave(unit))
            });
            let before = port.bytes_in();
            let mut result = exchange::execute(ctx, unit, request, timeout).await;
            self.last_done = Some(Instant::now());

            // tokio-modbus's RTU decoder skips bytes that fail the CRC and waits for a valid
            // frame, so a corrupted answer surfaces as a timeout; bytes did arrive, though.
            if let Err(ModbusError::Timeout(_)) = result {
                let received = port.bytes_in().saturating_sub(before);
                if received > 0 {
                    result = Err(ModbusError::BadFrame(format!(
                        "{received} bytes received, no valid answer within {timeout:?}"
                    )));
                }
            }

            match &result {
                Ok(_) | Err(ModbusError::Exception { .. }) => self.backoff.reset(),
                Err(err) => {
                    self.ctx = None;
                    if err.kind() == ErrorKind::Link {
                        self.port = None;
                        let retry = round == 0 && !fresh;
                        if retry && matches!(self.source, PortSource::Tcp { .. }) {
                            continue;
                        }
                        self.backoff.failed(Instant::now());
                    } else {
                        self.dirty = true;
                    }
                }
            }
            return Outcome {
                result,
                reconnected,
            };
        }
        Outcome {
            result: Err(ModbusError::Link("port closed".into())),
            reconnected,
        }
    }

    /// Make sure a port is open; `Ok(true)` when it had to be reopened.
    async fn ensure_port(&mut self) -> Result<bool, ModbusError> {
        if self.port.is_some() {
            return Ok(false);
        }
        let stream = match &mut self.source {
            PortSource::Stream(stream) => stream
                .take()
                .ok_or_else(|| ModbusError::Link("stream closed".into()))?,
            PortSource::Path(bus) => {
                if let Err(wait) = self.backoff.ready(Instant::now()) {
                    return Err(ModbusError::Link(format!(
                        "{} unavailable, next attempt in {wait:?}",
                        bus.device.display()
                    )));
                }
                match open_serial(bus) {
                    Ok(stream) => stream,
                    Err(err) => {
                        self.backoff.failed(Instant::now());
                        return Err(err);
                    }
                }
            }
            PortSource::Tcp {
                connector,
                host,
                port,
                timeout,
            } => {
                if let Err(wait) = self.backoff.ready(Instant::now()) {
                    return Err(ModbusError::Link(format!(
                        "{host}:{port} down, next attempt in {wait:?}"
                    )));
                }
                let connect = connector.connect(host, *port);
                let connected = match tokio::time::timeout(*timeout, connect).await {
                    Ok(Ok(stream)) => Ok(stream),
                    Ok(Err(err)) => Err(format!("connect {host}:{port}: {err}")),
                    Err(_elapsed) => Err(format!(
                        "connect {host}:{port}: no answer within {timeout:?}"
                    )),
                };
                match connected {
                    Ok(stream) => stream,
                    Err(msg) => {
                        self.backoff.failed(Instant::now());
                        return Err(ModbusError::Link(msg));
                    }
                }
            }
        };
        self.port = Some(SharedPort::new(stream));
        let reopened = self.ever_open;
        self.ever_open = true;
        Ok(reopened)
    }

    /// Read and discard input until the line has been quiet for a while, so the remains of
    /// a late or garbled answer are not taken for the start of the next one.
    async fn drain(&mut self) {
        self.dirty = false;
        let Some(mut port) = self.port.clone() else {
            return;
        };
        let quiet = self.frame_gap.max(MIN_QUIET);
        let deadline = Instant::now() + MAX_DRAIN;
        let mut buf = [0u8; 256];
        while Instant::now() < deadline {
            match tokio::time::timeout(quiet, port.read(&mut buf)).await {
                Err(_quiet) => break,
                Ok(Ok(n)) if n > 0 => continue,
                Ok(Ok(_)) | Ok(Err(_)) => {
                    // End of stream or a read error: the port is gone.
                    self.port = None;
                    self.backoff.failed(Instant::now());
                    break;
                }
            }
        }
        self.last_done = Some(Instant::now());
    }
}
