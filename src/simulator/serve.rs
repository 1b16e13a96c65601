//! Serving the simulated site over Modbus: TCP on loopback (one port per TCP device) and RTU
//! on pseudo-terminals (one line per serial setting, devices told apart by unit id), RS-485
//! devices behind simulated Ethernet gateways (one loopback port per gateway kind: Modbus TCP
//! from a protocol converter, or RTU frames over TCP from a transparent one), plus the task
//! that steps the site in real time. Both servers run over any async byte stream, so a
//! deterministic run can connect the controller through in-memory pipes instead.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::devices::model::{Parity, SerialDefaults, Transport};
use crate::devices::regmap::Table;

use super::bank::Exception;
use super::framing::{
    crc_ok, exception_pdu, parse_pdu, read_response, rtu_request_len, with_crc, RtuLen,
};
use super::scenario::{FaultKind, Gateway};
use super::site::{DeviceId, DeviceInfo, SharedSite};

/// Which device answers to which unit id on one stream.
pub type Units = HashMap<u8, DeviceId>;

/// Serial settings for a line whose devices' model has none on record.
pub const DEFAULT_SERIAL: SerialDefaults = SerialDefaults {
    baud: 9600,
    parity: Parity::None,
    stop_bits: 1,
};

/// Silence after which a partial RTU frame is dropped (a real line resynchronises on the gap).
const RTU_FRAME_GAP: Duration = Duration::from_millis(100);

/// The model step the real-time clock advances by.
pub const STEP: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("pseudo-terminal: {0}")]
    Pty(#[from] tokio_serial::Error),
    #[error("pseudo-terminal has no name")]
    PtyName,
    #[error("bad Modbus TCP header (protocol {protocol}, length {length})")]
    BadHeader { protocol: u16, length: u16 },
}

/// How an answer is spoiled on its way out, by a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spoil {
    None,
    /// Wrong bytes: the master must reject the frame.
    Garble,
    /// Another unit's address in the answer.
    WrongUnit,
}

/// What a device answers to one request PDU: `None` is no answer at all.
fn answer(site: &SharedSite, device: DeviceId, pdu: &[u8]) -> Option<(Vec<u8>, Spoil)> {
    // A poisoned lock means a panic elsewhere; staying silent is what a dead device does.
    let mut s = site.lock().ok()?;
    if s.fault_active(device, FaultKind::MeterSilent) {
        return None;
    }
    let spoil = if s.fault_active(device, FaultKind::GarbledFrames) {
        Spoil::Garble
    } else if s.fault_active(device, FaultKind::WrongUnit) {
        Spoil::WrongUnit
    } else {
        Spoil::None
    };
    let fc = pdu.first().copied().unwrap_or(0);
    if s.fault_active(device, FaultKind::Exceptions) {
        return Some((exception_pdu(fc, Exception(0x04)), spoil));
    }
    let no_value = s.fault_active(device, FaultKind::NoValue);
    let out = |r: Result<Vec<u8>, Exception>| r.unwrap_or_else(|e| exception_pdu(fc, e));
    let response = out(parse_pdu(pdu).and_then(|req| match req.written() {
        None => s
            .read(device, req.table(), req.addr(), req.count())
            .map(|w| match no_value && req.table() != Table::Coil {
                true => read_response(req.table(), &vec![0xFFFF; w.len()]),
                false => read_response(req.table(), &w),
            }),
        // A write is answered with the echo of its address and value (FC5, FC6) or count
        // (FC16): the first five bytes of the request.
        Some(words) => s
            .write(device, req.table(), req.addr(), &words)
            .map(|()| pdu[..5].to_vec()),
    }));
    Some((response, spoil))
}

/// Idle time after which the served models drop a TCP connection (Alfen: 60 s), if any.
fn idle_close(site: &SharedSite, units: &Units) -> Option<Duration> {
    let s = site.lock().ok()?;
    s.devices()
        .iter()
        .filter(|d| units.values().any(|u| *u == d.index))
        .filter_map(|d| d.model.charger.and_then(|c| c.idle_close_s))
        .min()
        .map(|s| Duration::from_secs(u64::from(s)))
}

/// Serve Modbus TCP (MBAP framing) on one connection until the peer closes it.
pub async fn serve_tcp_stream<S>(
    mut stream: S,
    site: SharedSite,
    units: Units,
) -> Result<(), ServeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let idle = idle_close(&site, &units);
    loop {
        let mut header = [0u8; 7];
        let read = stream.read_exact(&mut header);
        let got = match idle {
            Some(limit) => match tokio::time::timeout(limit, read).await {
                Ok(r) => r,
                Err(_) => return Ok(()),
            },
            None => read.await,
        };
        match got {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let protocol = u16::from_be_bytes([header[2], header[3]]);
        let length = u16::from_be_bytes([header[4], header[5]]);
        if protocol != 0 || !(2..=254).contains(&length) {
            return Err(ServeError::BadHeader { protocol, length });
        }
        let mut pdu = vec![0u8; usize::from(length) - 1];
        stream.read_exact(&mut pdu).await?;
        let unit = header[6];
        let reply = match units.get(&unit) {
            Some(dev) => answer(&site, *dev, &pdu),
            // A gateway's answer for a unit that is not there: fast and unambiguous.
            None => Some((exception_pdu(pdu[0], Exception(0x0B)), Spoil::None)),
        };
        let Some((mut body, spoil)) = reply else {
            continue;
        };
        if spoil == Spoil::Garble {
            // A wrong byte count / echo: the master must reject the frame.
            if let Some(b) = body.get_mut(1) {
                *b ^= 0x5A;
            }
        }
        let mut frame = Vec::with_capacity(7 + body.len());
        frame.extend_from_slice(&header[..4]);
        frame.extend_from_slice(&(body.len() as u16 + 1).to_be_bytes());
        frame.push(match spoil {
            Spoil::WrongUnit => unit.wrapping_add(1),
            _ => unit,
        });
        frame.extend(body);
        stream.write_all(&frame).await?;
        stream.flush().await?;
    }
}

/// Serve Modbus RTU on one line until it closes: requests to other unit ids are left to
/// whoever else is on the line (nobody answers broadcast reads).
pub async fn serve_rtu_stream<S>(
    mut stream: S,
    site: SharedSite,
    units: Units,
) -> Result<(), ServeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 256];
    loop {
        let n = if buf.is_empty() {
            stream.read(&mut chunk).await?
        } else {
            match tokio::time::timeout(RTU_FRAME_GAP, stream.read(&mut chunk)).await {
                Ok(r) => r?,
                Err(_) => {
                    buf.clear();
                    continue;
                }
            }
        };
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        while let RtuLen::Complete(len) = rtu_request_len(&buf) {
            let frame: Vec<u8> = buf.drain(..len).collect();
            if !crc_ok(&frame) {
                // Noise: start over at the next byte boundary the line offers.
                buf.clear();
                break;
            }
            let Some(dev) = units.get(&frame[0]) else {
                continue;
            };
            let Some((pdu, spoil)) = answer(&site, *dev, &frame[1..len - 2]) else {
                continue;
            };
            let mut out = vec![match spoil {
                Spoil::WrongUnit => frame[0].wrapping_add(1),
                _ => frame[0],
            }];
            out.extend(pdu);
            let mut out = with_crc(out);
            if spoil == Spoil::Garble {
                if let Some(last) = out.last_mut() {
                    *last ^= 0xFF;
                }
            }
            stream.write_all(&out).await?;
            stream.flush().await?;
        }
    }
}

/// Where one device is served.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    Tcp {
        port: u16,
    },
    Rtu {
        bus: String,
        path: PathBuf,
        serial: SerialDefaults,
    },
    /// Behind the simulated protocol-converting gateway: Modbus TCP on this loopback port.
    GatewayTcp {
        port: u16,
    },
    /// Behind the simulated transparent serial converter: RTU frames over TCP on this port.
    GatewayRtu {
        port: u16,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub device: DeviceInfo,
    pub link: Link,
}

/// A site being served: its endpoints, and the tasks and pseudo-terminals that serve it
/// (dropping this stops them all).
pub struct ServedSite {
    pub site: SharedSite,
    pub endpoints: Vec<Endpoint>,
    tasks: JoinSet<()>,
    /// The far ends of the pseudo-terminals, held open so the lines stay up between the
    /// controller's connections.
    _far_ends: Vec<tokio_serial::SerialStream>,
}

impl ServedSite {
    /// Wait until a serving task ends (normally never).
    pub async fn join_next(&mut self) -> Option<()> {
        self.tasks.join_next().await.map(|_| ())
    }
}

/// How a loopback TCP port frames its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// Modbus TCP (MBAP header): a TCP device, or a protocol-converting gateway.
    Mbap,
    /// Bare RTU frames: a transparent serial converter.
    Rtu,
}

async fn accept_loop(listener: TcpListener, site: SharedSite, units: Units, framing: Framing) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let (site, units) = (site.clone(), units.clone());
                    conns.spawn(async move {
                        let served = match framing {
                            Framing::Mbap => serve_tcp_stream(stream, site, units).await,
                            Framing::Rtu => serve_rtu_stream(stream, site, units).await,
                        };
                        if let Err(e) = served {
                            tracing::debug!("simulated TCP connection ended: {e}");
                        }
                    });
                }
                Err(e) => tracing::warn!("accept failed: {e}"),
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// RTU devices that share one line: those with the same serial settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RtuLine {
    pub bus: String,
    pub serial: SerialDefaults,
    pub devices: Vec<DeviceInfo>,
}

impl RtuLine {
    pub fn units(&self) -> Units {
        self.devices.iter().map(|d| (d.unit, d.index)).collect()
    }
}

/// Group the RTU devices into lines, one per distinct serial setting, named `sim-rtu`,
/// `sim-rtu-2`, … A device behind a gateway is on a line too (the gateway's); `serve_site`
/// serves those on the gateway's port instead.
pub fn rtu_lines(devices: &[DeviceInfo]) -> Vec<RtuLine> {
    let mut lines: Vec<RtuLine> = Vec::new();
    for d in devices.iter().filter(|d| d.transport == Transport::Rtu) {
        let serial = d.model.serial.unwrap_or(DEFAULT_SERIAL);
        match lines.iter_mut().find(|l| l.serial == serial) {
            Some(line) => line.devices.push(d.clone()),
            None => lines.push(RtuLine {
                bus: match lines.len() {
                    0 => "sim-rtu".to_string(),
                    n => format!("sim-rtu-{}", n + 1),
                },
                serial,
                devices: vec![d.clone()],
            }),
        }
    }
    lines
}

/// Bind every device: each TCP device on its own loopback port, devices behind a gateway on
/// one loopback port per gateway kind, the other RTU devices on one pseudo-terminal per
/// distinct serial setting. Must run inside a tokio runtime.
pub async fn serve_site(site: SharedSite) -> Result<ServedSite, ServeError> {
    let devices = site.lock().map(|s| s.devices()).unwrap_or_default();
    let mut tasks = JoinSet::new();
    let mut endpoints = Vec::new();
    let mut far_ends = Vec::new();
    for d in devices.iter().filter(|d| d.transport == Transport::Tcp) {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let units = Units::from([(d.unit, d.index)]);
        tasks.spawn(accept_loop(listener, site.clone(), units, Framing::Mbap));
        endpoints.push(Endpoint {
            device: d.clone(),
            link: Link::Tcp { port },
        });
    }
    for gateway in [Gateway::Tcp, Gateway::Rtu] {
        let behind: Vec<&DeviceInfo> = devices
            .iter()
            .filter(|d| d.gateway == Some(gateway))
            .collect();
        if behind.is_empty() {
            continue;
        }
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let units: Units = behind.iter().map(|d| (d.unit, d.index)).collect();
        let (framing, link) = match gateway {
            Gateway::Tcp => (Framing::Mbap, Link::GatewayTcp { port }),
            Gateway::Rtu => (Framing::Rtu, Link::GatewayRtu { port }),
        };
        tasks.spawn(accept_loop(listener, site.clone(), units, framing));
        endpoints.extend(behind.into_iter().map(|d| Endpoint {
            device: d.clone(),
            link: link.clone(),
        }));
    }
    let on_lines: Vec<DeviceInfo> = devices
        .iter()
        .filter(|d| d.gateway.is_none())
        .cloned()
        .collect();
    for line in rtu_lines(&on_lines) {
        let (near, far) = tokio_serial::SerialStream::pair()?;
        let path = tokio_serial::SerialPort::name(&far).ok_or(ServeError::PtyName)?;
        let units = line.units();
        let s = site.clone();
        tasks.spawn(async move {
            if let Err(e) = serve_rtu_stream(near, s, units).await {
                tracing::warn!("simulated RTU line ended: {e}");
            }
        });
        far_ends.push(far);
        for d in line.devices {
            endpoints.push(Endpoint {
                device: d,
                link: Link::Rtu {
                    bus: line.bus.clone(),
                    path: PathBuf::from(&path),
                    serial: line.serial,
                },
            });
        }
    }
    Ok(ServedSite {
        site,
        endpoints,
        tasks,
        _far_ends: far_ends,
    })
}

/// Step the site with the (tokio) clock: every [`STEP`], by the time that really passed ×
/// `speed`, so the simulation keeps pace even when a tick comes late.
pub fn spawn_stepper(site: SharedSite, speed: f64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(STEP);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = tokio::time::Instant::now();
        loop {
            tick.tick().await;
            let now = tokio::time::Instant::now();
            let dt = now.duration_since(last).as_secs_f64() * speed;
            last = now;
            match site.lock() {
                Ok(mut s) => s.step(dt),
                Err(_) => return,
            }
        }
    })
}
