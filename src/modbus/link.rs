//! The pool of links built from the validated config, and [`DeviceLink`]: one device (a unit
//! id behind a TCP connection, on a serial line, or on the line behind a serial converter
//! reached over TCP) with its own counters and label.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::error::ModbusError;
use super::request::Request;
use super::rtu::{RtuBus, RtuSettings};
use super::stats::{Stats, StatsSnapshot};
use super::tcp::{Connector, TcpLink};
use super::RegisterIo;
use crate::config::{Bus, Device, Link};

/// Building a device's link from the config failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("device refers to bus {0:?}, which is not configured")]
    UnknownBus(String),
}

/// Every link of the site: one task per TCP endpoint, one per serial line and one per serial
/// converter, however many devices share it.
pub struct Links {
    connector: Arc<dyn Connector>,
    tcp: Mutex<HashMap<(String, u16), TcpLink>>,
    rtu: Mutex<HashMap<String, RtuBus>>,
    converters: Mutex<HashMap<(String, u16), RtuBus>>,
}

impl fmt::Debug for Links {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Links").finish_non_exhaustive()
    }
}

impl Links {
    pub fn new(connector: Arc<dyn Connector>) -> Self {
        Links {
            connector,
            tcp: Mutex::new(HashMap::new()),
            rtu: Mutex::new(HashMap::new()),
            converters: Mutex::new(HashMap::new()),
        }
    }

    /// The shared connection to `host:port`, started on first use; requests through the
    /// returned handle use `timeout`. Must be called within a tokio runtime.
    pub fn tcp(&self, host: &str, port: u16, timeout: Duration) -> TcpLink {
        let mut tcp = self.tcp.lock().unwrap_or_else(PoisonError::into_inner);
        tcp.entry((host.to_owned(), port))
            .or_insert_with(|| TcpLink::spawn(self.connector.clone(), host, port, timeout))
            .with_timeout(timeout)
    }

    /// The line behind the transparent serial converter at `host:port` (RTU frames over TCP),
    /// started on first use with `frame_gap`; requests through the returned handle use
    /// `timeout`. Must be called within a tokio runtime.
    pub fn rtu_over_tcp(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
        frame_gap: Duration,
    ) -> RtuBus {
        let mut converters = self
            .converters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        converters
            .entry((host.to_owned(), port))
            .or_insert_with(|| {
                let settings = RtuSettings {
                    name: format!("{host}:{port}"),
                    timeout,
                    frame_gap,
                };
                RtuBus::over_tcp(self.connector.clone(), host, port, settings)
            })
            .with_timeout(timeout)
    }

    /// The task owning `bus`'s serial line, started on first use. Must be called within a
    /// tokio runtime.
    pub fn rtu(&self, bus: &Bus) -> RtuBus {
        let mut rtu = self.rtu.lock().unwrap_or_else(PoisonError::into_inner);
        rtu.entry(bus.name.clone())
            .or_insert_with(|| RtuBus::open(bus))
            .clone()
    }

    /// Use `bus` for the line called `name` instead of opening a serial device (the
    /// simulator's in-memory lines). Replaces any bus of that name.
    pub fn insert_rtu(&self, name: &str, bus: RtuBus) {
        let mut rtu = self.rtu.lock().unwrap_or_else(PoisonError::into_inner);
        rtu.insert(name.to_owned(), bus);
    }

    /// The link of one configured device.
    pub fn device(&self, dev: &Device, buses: &[Bus]) -> Result<DeviceLink, LinkError> {
        match &dev.link {
            Link::Tcp {
                host,
                port,
                timeout,
            } => Ok(DeviceLink::tcp(self.tcp(host, *port, *timeout), dev.unit)),
            Link::RtuOverTcp {
                host,
                port,
                timeout,
                frame_gap,
            } => Ok(DeviceLink::rtu_over_tcp(
                self.rtu_over_tcp(host, *port, *timeout, *frame_gap),
                dev.unit,
            )),
            Link::Rtu { bus: name } => {
                let known = {
                    let rtu = self.rtu.lock().unwrap_or_else(PoisonError::into_inner);
                    rtu.get(name).cloned()
                };
                let bus = match known {
                    Some(bus) => bus,
                    None => {
                        let bus = buses
                            .iter()
                            .find(|b| &b.name == name)
                            .ok_or_else(|| LinkError::UnknownBus(name.clone()))?;
                        self.rtu(bus)
                    }
                };
                Ok(DeviceLink::rtu(bus, dev.unit))
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Via {
    Tcp(TcpLink),
    Rtu(RtuBus),
}

/// One device: its unit id on a shared link, its counters, and a label for logs.
#[derive(Debug, Clone)]
pub struct DeviceLink {
    unit: u8,
    via: Via,
    stats: Arc<Stats>,
    label: Arc<str>,
}

impl DeviceLink {
    /// Unit `unit` behind a TCP connection; labelled "tcp host:port unit N".
    pub fn tcp(link: TcpLink, unit: u8) -> Self {
        let label = format!("tcp {}:{} unit {unit}", link.host(), link.port());
        Self::new(unit, Via::Tcp(link), label)
    }

    /// Unit `unit` on a serial line; labelled "rtu bus-name unit N".
    pub fn rtu(bus: RtuBus, unit: u8) -> Self {
        let label = format!("rtu {} unit {unit}", bus.name());
        Self::new(unit, Via::Rtu(bus), label)
    }

    /// Unit `unit` on the line behind a serial converter; labelled "rtu-over-tcp host:port
    /// unit N" (the line is named after the converter's address).
    pub fn rtu_over_tcp(bus: RtuBus, unit: u8) -> Self {
        let label = format!("rtu-over-tcp {} unit {unit}", bus.name());
        Self::new(unit, Via::Rtu(bus), label)
    }

    fn new(unit: u8, via: Via, label: String) -> Self {
        DeviceLink {
            unit,
            via,
            stats: Arc::new(Stats::default()),
            label: label.into(),
        }
    }

    pub fn unit(&self) -> u8 {
        self.unit
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }
}

impl RegisterIo for DeviceLink {
    async fn call(&self, request: Request) -> Result<Vec<u16>, ModbusError> {
        let outcome = match &self.via {
            Via::Tcp(link) => link.call(self.unit, request).await,
            Via::Rtu(bus) => bus.call(self.unit, request).await,
        };
        if outcome.reconnected {
            self.stats.reconnected();
        }
        self.stats.record(&self.label, &outcome.result);
        outcome.result
    }
}
